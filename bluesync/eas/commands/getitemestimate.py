"""
GetItemEstimate (MS-ASCMD 2.2.1.9): how many changes a Sync would bring.

It reads the sync state named by the key without changing it (the spec:
"the server does not update the SyncKey on GetItemEstimate").
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import Logger

from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.eas.syncoptions import OptionsError, parse_options
from bluesync.store.folders import parse_server_id
from bluesync.sync.engine import SyncEngine
from bluesync.web.rendering import Response

log = Logger()

NS = "GetItemEstimate:"
G = "{GetItemEstimate:}"
A = "{AirSync:}"

# MS-ASCMD 2.2.3.177.7: Status (GetItemEstimate).
SUCCESS = 1
INVALID_COLLECTION = 2
NOT_PRIMED = 3
INVALID_KEY = 4


def _sub(parent, name: str, text=None):
    element = etree.SubElement(parent, G + name)
    if text is not None:
        element.text = str(text)
    return element


def _text(element, *names: str) -> str | None:
    for name in names:
        found = element.find(name)
        if found is not None:
            return (found.text or "").strip()
    return None


async def handle(ctx: CommandContext) -> Response:
    document = ctx.document
    store = ctx.server.store
    root = etree.Element(G + "GetItemEstimate", nsmap={None: NS})
    collections = document.find(G + "Collections") if document is not None else None
    if document is None or document.tag != G + "GetItemEstimate" or collections is None:
        log.info("{account}: malformed GetItemEstimate", account=ctx.account.address)
        response = _sub(root, "Response")
        _sub(response, "Status", INVALID_COLLECTION)
        return wbxml_response(root)
    engine = SyncEngine(store, ctx.server.clock)
    for element in collections.findall(G + "Collection"):
        collection_id = _text(element, G + "CollectionId") or ""
        # 12.1 puts SyncKey and FilterType in the GetItemEstimate namespace,
        # later versions in AirSync's.
        key = _text(element, A + "SyncKey", G + "SyncKey")
        response = _sub(root, "Response")
        folder = await store.folders.get(ctx.account.id, parse_server_id(collection_id))
        if folder is None:
            _sub(response, "Status", INVALID_COLLECTION)
            continue
        try:
            options = parse_options(element.findall(A + "Options"))
        except OptionsError:
            _sub(response, "Status", INVALID_COLLECTION)
            continue
        filter_text = _text(element, G + "FilterType", A + "FilterType")
        filter_type = int(filter_text) if filter_text and filter_text.isdigit() else options.filter_type
        if key in (None, "", "0"):
            status, estimate = NOT_PRIMED, None
        else:
            state = await engine.resolve(ctx.device.id, folder, key)
            if state is None:
                status, estimate = INVALID_KEY, None
            else:
                status = SUCCESS
                estimate = await engine.estimate(ctx.account.id, folder, state, filter_type)
        _sub(response, "Status", status)
        collection = _sub(response, "Collection")
        _sub(collection, "CollectionId", collection_id)
        if estimate is not None:
            _sub(collection, "Estimate", estimate)
    return wbxml_response(root)

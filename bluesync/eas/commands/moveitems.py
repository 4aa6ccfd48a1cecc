"""
MoveItems (MS-ASCMD 2.2.1.12): move items between two folders of the
account, one Move element at a time, in request order.

Status per Move (2.2.3.177.10):

    1  invalid source: SrcFldId is not a live folder of this account, or
       SrcMsgId is not an item of it (another account's folder or item is
       answered exactly like a missing one, and SrcMsgId must name an item
       of SrcFldId: "folderid:itemid")
    2  invalid destination: DstFldId is not a live folder of this account
    3  success, with DstMsgId, the item's new ServerId "dstfolder:itemid"
       (the item keeps its id; its ServerId follows its folder)
    4  SrcFldId and DstFldId are the same folder
    5  the move cannot be done: the folders hold different classes
       (e.g. a message into a calendar)
    7  another request holds the item right now; the client retries

DstMsgId is sent only on success.  A request that is not a MoveItems
document, has no Move, or a Move without SrcMsgId, SrcFldId or DstFldId is
malformed: 14.0 and later get the common status 103 (InvalidXML, 2.2.2) in
a MoveItems/Status element, 12.1 (which has no common status codes) gets
HTTP 400.

Echoes.  The moving device has already moved its copy and learnt the new
ServerId from DstMsgId; sending it the Add in the destination would make it
hold the message twice.  So the tombstone and the add are recorded as the
device's own changes in its sync states of both folders, in the move's
transaction (ItemStore.move_by_device), and the sync engine does not send
them back, as for changes it makes through Sync.  Every other device sees a
Delete in the source folder and an Add in the destination.
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.store.folders import parse_server_id as parse_folder_id
from bluesync.store.items import ItemLocked
from bluesync.store.items import parse_server_id as parse_item_id
from bluesync.web.rendering import Response

log = Logger()

NS = "Move"

INVALID_SOURCE = 1
INVALID_DESTINATION = 2
SUCCESS = 3
SAME_FOLDER = 4
CANNOT_MOVE = 5
LOCKED = 7

# MS-ASCMD 2.2.2: common status for a request that does not follow the schema.
INVALID_XML = 103

# Bounds the work one request can ask for (a move is one short
# transaction); far above what a phone's bulk move sends.
MAX_MOVES = 5000


def q(name: str) -> str:
    return wbxml.qname(NS, name)


class Malformed(ValueError):
    pass


def parse_moves(document) -> list[tuple[str, str, str]]:
    """
    (SrcMsgId, SrcFldId, DstFldId) of each Move, in order.
    """
    if document is None or document.tag != q("MoveItems"):
        raise Malformed("the document is not a MoveItems request")
    moves = []
    for element in document:
        if element.tag != q("Move"):
            raise Malformed(f"unexpected element {element.tag}")
        values = []
        for name in ("SrcMsgId", "SrcFldId", "DstFldId"):
            found = element.find(q(name))
            if found is None or not (found.text or "").strip():
                raise Malformed(f"Move without {name}")
            values.append(found.text.strip())
        moves.append(tuple(values))
    if not moves:
        raise Malformed("no Move")
    if len(moves) > MAX_MOVES:
        raise Malformed(f"{len(moves)} moves in one request")
    return moves


def _malformed(ctx: CommandContext, reason: str) -> Response:
    log.info("{account} {device}: malformed MoveItems: {reason}", account=ctx.account.address,
             device=ctx.request.device_id, reason=reason)
    if ctx.version_number < 14.0:
        return Response(400)
    root = etree.Element(q("MoveItems"), nsmap={None: NS + ":"})
    etree.SubElement(root, q("Status")).text = str(INVALID_XML)
    return wbxml_response(root)


async def handle(ctx: CommandContext) -> Response:
    try:
        moves = parse_moves(ctx.document)
    except Malformed as e:
        return _malformed(ctx, str(e))
    root = etree.Element(q("MoveItems"), nsmap={None: NS + ":"})
    folders = {}
    for source_item, source_folder, destination in moves:
        status, new_id = await _move(ctx, folders, source_item, source_folder, destination)
        response = etree.SubElement(root, q("Response"))
        etree.SubElement(response, q("SrcMsgId")).text = source_item
        etree.SubElement(response, q("Status")).text = str(status)
        if new_id is not None:
            etree.SubElement(response, q("DstMsgId")).text = new_id
    return wbxml_response(root)


async def _folder(ctx: CommandContext, cache: dict, server_id: str):
    folder_id = parse_folder_id(server_id)
    if folder_id not in cache:
        cache[folder_id] = await ctx.server.store.folders.get(ctx.account.id, folder_id)
    return cache[folder_id]


async def _move(ctx: CommandContext, cache: dict, source_item: str, source_id: str,
                destination_id: str) -> tuple[int, str | None]:
    account = ctx.account
    source = await _folder(ctx, cache, source_id)
    if source is None:
        return _refused(ctx, INVALID_SOURCE, source_item, "no such source folder")
    destination = await _folder(ctx, cache, destination_id)
    if destination is None:
        return _refused(ctx, INVALID_DESTINATION, source_item, "no such destination folder")
    if source.id == destination.id:
        return _refused(ctx, SAME_FOLDER, source_item, "source and destination are the same")
    if source.content_class != destination.content_class:
        return _refused(ctx, CANNOT_MOVE, source_item,
                        f"{source.content_class} item into a {destination.content_class} folder")
    parsed = parse_item_id(source_item)
    if parsed is None or parsed[0] != source.id:
        return _refused(ctx, INVALID_SOURCE, source_item, "not an item of the source folder")
    try:
        moved = await ctx.server.store.items.move_by_device(
            account.id, source.id, parsed[1], destination.id, ctx.device.id
        )
    except ItemLocked:
        return _refused(ctx, LOCKED, source_item, "item locked")
    if moved is None:
        return _refused(ctx, INVALID_SOURCE, source_item, "no such item in the source folder")
    log.info("{account} {device}: moved {item} from {source} to {destination}", account=account.address,
             device=ctx.request.device_id, item=parsed[1], source=source.id, destination=destination.id)
    return SUCCESS, f"{destination.id}:{parsed[1]}"


def _refused(ctx: CommandContext, status: int, source_item: str, reason: str) -> tuple[int, None]:
    log.info("{account} {device}: MoveItems {item}: status {status}, {reason}", account=ctx.account.address,
             device=ctx.request.device_id, item=source_item, status=status, reason=reason)
    return status, None

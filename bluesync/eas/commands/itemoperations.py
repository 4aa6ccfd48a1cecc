"""
ItemOperations (MS-ASCMD 2.2.1.10): Fetch, EmptyFolderContents and Move,
executed in request order, each answered with its own status.

Fetch (2.2.3.67.1), Store "Mailbox" only:

- a whole item, by airsync:CollectionId + airsync:ServerId or by
  search:LongId (a Search result; ours are "folderid:itemid", like a
  ServerId).  Options: airsync:MIMESupport, airsyncbase:BodyPreference,
  airsyncbase:BodyPartPreference (14.1+, HTML only, as in MS-ASAIRS
  2.2.2.10), and Schema, which restricts the properties returned to the
  ones it names (MS-ASEMAIL 3.2.5.2).  The ApplicationData children a Sync
  Add would carry are sent in itemoperations:Properties.
- an attachment, by airsyncbase:FileReference ("folderid:itemid:partindex",
  see bluesync/items/email.py): airsyncbase:ContentType and the bytes in
  itemoperations:Data, base64 (2.2.3.39.2).  Options/Range "m-n" (zero-based,
  inclusive, 2.2.3.143.2) asks for a slice: the answer names the slice
  actually sent in Range, and Total is the attachment's size.

Multipart (2.2.1.10.1): with MS-ASAcceptMultiPart: T the bytes travel as
parts of an application/vnd.ms-sync.multipart body (bluesync/eas/multipart.py)
and itemoperations:Part replaces itemoperations:Data, or airsyncbase:Data in
a fetched item's Body.

EmptyFolderContents (2.2.3.58) deletes every item of a folder of the
account, leaving a tombstone per item, so every device is sent the deletes;
with Options/DeleteSubFolders the user folders below it go too (FolderSync
reports them).  The spec names Deleted Items as the usual target and
restricts nothing, so any folder of the account may be emptied.

Move (2.2.3.117.1, 14.0+, MS-ASCON 2.2.2.7-2.2.2.10) moves every message of
a conversation from all folders but Sent Items to DstFldId.  MoveAlways
must be present (2.2.3.118: Status 155 otherwise).  It also asks that
future messages of the conversation follow: the account keeps a rule
(bluesync/store/conversations.py) that delivery applies, until a later
MoveAlways of the conversation replaces it, its folder is deleted, or it
goes unused for [mail] conversation_rule_days.

Status values (2.2.3.177.8, and MS-ASCON 2.2.2.10 for Move):

    1    success
    2    protocol error: not an ItemOperations document, an unknown
         operation (Move before 14.0), an operation missing what names its
         target, or an option with an unusable value
    6    the item, folder, conversation or destination does not exist
         (another account's is answered exactly like a missing one)
    8    Range malformed, or starting beyond the attachment's end
    9    a Store other than Mailbox (no document library access)
    11   the attachment exceeds the policy's max_attachment_size
    14   the item cannot be converted (a content class we cannot serve)
    15   the FileReference names no attachment of ours (MS-ASAIRS 2.2.2.24.3
         gives 15 for an empty one)
    16   attachments are disabled by the policy
    155  Move without MoveAlways
    156  Move to a folder that does not hold mail
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass, field

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas import attachments, render
from bluesync.eas.context import CommandContext
from bluesync.eas.multipart import Payloads
from bluesync.eas.syncoptions import OptionsError, SyncOptions, parse_options
from bluesync.items import email
from bluesync.store.folders import SENT_ITEMS, NoSuchFolder, SpecialFolder
from bluesync.store.folders import parse_server_id as parse_folder_id
from bluesync.store.items import parse_server_id as parse_item_id
from bluesync.web.rendering import Response

log = Logger()

NS = "ItemOperations"

SUCCESS = 1
PROTOCOL_ERROR = 2
NOT_FOUND = 6
BAD_RANGE = 8
UNKNOWN_STORE = 9
TOO_LARGE = 11
CONVERSION_FAILED = 14
BAD_ATTACHMENT = 15
BLOCKED = 16
MOVE_ALWAYS_REQUIRED = 155
NOT_A_MAIL_FOLDER = 156

# Bounds the work one request can ask for, far above what clients batch.
MAX_OPERATIONS = 1000

_RANGE = re.compile(r"^\s*(\d{1,10})\s*-\s*(\d{1,10})\s*$")


def q(name: str) -> str:
    return wbxml.qname(NS, name)


A = "{AirSync:}"
B = "{AirSyncBase:}"
SEARCH_LONG_ID = "{Search:}LongId"
LINK_ID = "{DocumentLibrary:}LinkId"


class Malformed(ValueError):
    """
    The request as a whole is not an ItemOperations request (Status 2).
    """


@dataclass
class FetchRequest:
    store: str | None = None
    collection_id: str | None = None
    server_id: str | None = None
    long_id: str | None = None
    link_id: str | None = None
    file_reference: str | None = None
    options: SyncOptions = field(default_factory=SyncOptions)
    body_part: email.BodyPreference | None = None
    schema: list[str] | None = None
    range: str | None = None
    error: str | None = None


@dataclass
class EmptyRequest:
    collection_id: str | None
    delete_subfolders: bool


@dataclass
class MoveRequest:
    conversation_id: bytes | None
    destination: str | None
    move_always: bool
    error: str | None = None


def _text(element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else (found.text or "").strip()


def _body_part_preference(element) -> email.BodyPreference:
    """
    MS-ASAIRS 2.2.2.11: a BodyPartPreference has the children of a
    BodyPreference, so syncoptions reads it as one.
    """
    copy = deepcopy(element)
    copy.tag = B + "BodyPreference"
    options = etree.Element(q("Options"))
    options.append(copy)
    return parse_options([options]).body_preferences[0]


def _fetch_request(element) -> FetchRequest:
    request = FetchRequest(
        store=_text(element, q("Store")),
        collection_id=_text(element, A + "CollectionId"),
        server_id=_text(element, A + "ServerId"),
        long_id=_text(element, SEARCH_LONG_ID),
        link_id=_text(element, LINK_ID),
        file_reference=_text(element, B + "FileReference"),
    )
    options = element.find(q("Options"))
    if options is None:
        return request
    try:
        request.options = parse_options([options])
        part = options.find(B + "BodyPartPreference")
        if part is not None:
            request.body_part = _body_part_preference(part)
    except OptionsError as e:
        request.error = str(e)
    schema = options.find(q("Schema"))
    if schema is not None and len(schema):
        request.schema = [child.tag for child in schema]
    request.range = _text(options, q("Range"))
    return request


def _empty_request(element) -> EmptyRequest:
    options = element.find(q("Options"))
    return EmptyRequest(
        _text(element, A + "CollectionId"),
        options is not None and options.find(q("DeleteSubFolders")) is not None,
    )


def _move_request(element) -> MoveRequest:
    options = element.find(q("Options"))
    request = MoveRequest(None, _text(element, q("DstFldId")),
                          options is not None and options.find(q("MoveAlways")) is not None)
    found = element.find(q("ConversationId"))
    if found is not None:
        try:
            request.conversation_id = wbxml.opaque(found)
        except wbxml.WBXMLError as e:
            request.error = str(e)
    return request


def parse_request(document, version: float) -> list:
    if document is None or document.tag != q("ItemOperations"):
        raise Malformed("the document is not an ItemOperations request")
    operations = []
    for element in document:
        if element.tag == q("Fetch"):
            operations.append(_fetch_request(element))
        elif element.tag == q("EmptyFolderContents"):
            operations.append(_empty_request(element))
        elif element.tag == q("Move") and version >= 14.0:
            operations.append(_move_request(element))
        else:
            raise Malformed(f"unknown operation {element.tag}")
    if len(operations) > MAX_OPERATIONS:
        raise Malformed(f"{len(operations)} operations in one request")
    return operations


def _sub(parent, tag: str, text=None):
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


class ItemOperations:
    """
    One ItemOperations request.
    """

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account
        self.payloads = Payloads(ctx.request.accept_multipart)
        # Contacts, events and tasks are rendered for the device's zone and family.
        self.reader = render.reader_for(ctx)

    def note(self, operation: str, status: int, reason: str) -> None:
        log.info("{account} {device}: ItemOperations {operation}: status {status}, {reason}",
                 account=self.account.address, device=self.ctx.request.device_id, operation=operation,
                 status=status, reason=reason)

    async def run(self) -> Response:
        root = etree.Element(q("ItemOperations"), nsmap={None: NS + ":"})
        try:
            operations = parse_request(self.ctx.document, self.ctx.version_number)
        except Malformed as e:
            self.note("request", PROTOCOL_ERROR, str(e))
            _sub(root, q("Status"), PROTOCOL_ERROR)
            return self.payloads.response(root)
        _sub(root, q("Status"), SUCCESS)
        response = _sub(root, q("Response"))
        for operation in operations:
            if isinstance(operation, FetchRequest):
                await self.fetch(response, operation)
            elif isinstance(operation, EmptyRequest):
                await self.empty(response, operation)
            else:
                await self.move(response, operation)
        return self.payloads.response(root)

    # ------------------------------------------------------------- Fetch

    async def fetch(self, parent, request: FetchRequest) -> None:
        element = _sub(parent, q("Fetch"))
        status = _sub(element, q("Status"))
        identifiers = (request.file_reference, request.long_id, request.server_id, request.link_id)
        if request.link_id is not None:
            _sub(element, LINK_ID, request.link_id)
        if request.long_id is not None:
            _sub(element, SEARCH_LONG_ID, request.long_id)
        if request.collection_id is not None:
            _sub(element, A + "CollectionId", request.collection_id)
        if request.server_id is not None:
            _sub(element, A + "ServerId", request.server_id)
        if request.file_reference is not None:
            _sub(element, B + "FileReference", request.file_reference)
        if not request.store:
            result = self._refused("Fetch", PROTOCOL_ERROR, "no Store")
        elif request.store.replace(" ", "").lower() != "mailbox" or request.link_id is not None:
            result = self._refused("Fetch", UNKNOWN_STORE, f"Store {request.store!r} is not supported")
        elif sum(value is not None for value in identifiers) != 1:
            result = self._refused("Fetch", PROTOCOL_ERROR, "not exactly one of FileReference, LongId, ServerId")
        elif request.error is not None:
            result = self._refused("Fetch", PROTOCOL_ERROR, request.error)
        elif request.file_reference is not None:
            result = await self._attachment(element, request)
        else:
            result = await self._item(element, request)
        status.text = str(result)

    def _refused(self, operation: str, status: int, reason: str) -> int:
        self.note(operation, status, reason)
        return status

    async def _find_item(self, server_id: str | None, collection_id: str | None):
        parsed = parse_item_id(server_id)
        if parsed is None:
            return None
        folder_id, item_id = parsed
        if collection_id is not None and parse_folder_id(collection_id) != folder_id:
            return None
        found = await self.store.items.get_many(self.account.id, [item_id], folder_id)
        return found.get(item_id)

    async def _item(self, element, request: FetchRequest) -> int:
        server_id = request.long_id if request.long_id is not None else request.server_id
        item = await self._find_item(server_id, None if request.long_id is not None else request.collection_id)
        if item is None:
            return self._refused("Fetch", NOT_FOUND, f"no item {server_id!r}")
        version = self.ctx.version
        try:
            data = render.application_data(item, item.server_id, version, request.options, self.reader)
            body_part = None
            if request.body_part is not None and data is not None:
                body_part = self._body_part(item, request.body_part)
        except Exception:
            # A converter bug must cost this item, not the whole request.
            log.failure("{account}: cannot render item {item}", account=self.account.address, item=item.id)
            data = None
        if data is None:
            return self._refused("Fetch", CONVERSION_FAILED, f"cannot serve a {item.content_class} item")
        _sub(element, A + "Class", item.content_class)
        properties = _sub(element, q("Properties"))
        for child in list(data):
            if request.schema is None or child.tag in request.schema:
                properties.append(child)
            if child.tag == B + "Body" and body_part is not None and \
                    (request.schema is None or B + "BodyPart" in request.schema):
                properties.append(body_part)
        body_data = properties.find(B + "Body/" + B + "Data")
        if body_data is not None:
            self.payloads.extract(body_data)
        return SUCCESS

    def _body_part(self, item, preference: email.BodyPreference):
        """
        airsyncbase:BodyPart (MS-ASAIRS 2.2.2.10): the message part of the
        message, HTML only (Type 2; other types are not defined for it).
        bluesync does not split a message from the conversation it quotes,
        so the part is the whole HTML body, truncated as asked.  14.1+.
        """
        if self.ctx.version_number < 14.1 or preference.type != email.BODY_HTML:
            return None
        options = SyncOptions(body_preferences=(preference,))
        body = render.application_data(item, item.server_id, self.ctx.version, options).find(B + "Body")
        part = etree.Element(B + "BodyPart")
        _sub(part, B + "Status", SUCCESS)
        for child in list(body):
            part.append(child)
        return part

    async def _attachment(self, element, request: FetchRequest) -> int:
        reference = request.file_reference
        attachment = await attachments.find(self.store, self.account.id, reference)
        if attachment is None:
            return self._refused("Fetch", BAD_ATTACHMENT, f"no attachment {reference!r}")
        policy = self.ctx.server.config.policy
        if not policy.attachments_enabled:
            return self._refused("Fetch", BLOCKED, "attachments are disabled by policy")
        if policy.max_attachment_size and attachment.size > policy.max_attachment_size:
            return self._refused("Fetch", TOO_LARGE, f"attachment of {attachment.size} bytes")
        payload = attachment.data
        properties = etree.Element(q("Properties"))
        _sub(properties, B + "ContentType", attachment.content_type)
        if request.range is not None:
            match = _RANGE.match(request.range)
            start, end = (int(match.group(1)), int(match.group(2))) if match else (1, 0)
            if start > end or start >= len(payload):
                return self._refused("Fetch", BAD_RANGE, f"Range {request.range!r} of {len(payload)} bytes")
            end = min(end, len(payload) - 1)
            _sub(properties, q("Range"), f"{start}-{end}")
            _sub(properties, q("Total"), len(payload))
            payload = payload[start:end + 1]
        self.payloads.attach(properties, payload)
        element.append(properties)
        return SUCCESS

    # ----------------------------------------------- EmptyFolderContents

    async def empty(self, parent, request: EmptyRequest) -> None:
        element = _sub(parent, q("EmptyFolderContents"))
        status = _sub(element, q("Status"))
        if request.collection_id is not None:
            _sub(element, A + "CollectionId", request.collection_id)
        status.text = str(await self._empty(request))

    async def _empty(self, request: EmptyRequest) -> int:
        if not request.collection_id:
            return self._refused("EmptyFolderContents", PROTOCOL_ERROR, "no CollectionId")
        folder = await self.store.folders.get(self.account.id, parse_folder_id(request.collection_id))
        if folder is None:
            return self._refused("EmptyFolderContents", NOT_FOUND, f"no folder {request.collection_id!r}")
        count = await self.store.items.empty_folder(self.account.id, folder.id)
        if count is None:
            return self._refused("EmptyFolderContents", NOT_FOUND, f"folder {folder.id} went away")
        removed = 0
        if request.delete_subfolders:
            for child in await self.store.folders.list(self.account.id):
                if child.parent_id != folder.id:
                    continue
                try:
                    await self.store.folders.delete(self.account.id, child.id)
                    removed += 1
                except (NoSuchFolder, SpecialFolder):
                    continue
        log.info("{account} {device}: emptied folder {folder}: {count} items, {removed} subfolders",
                 account=self.account.address, device=self.ctx.request.device_id, folder=folder.id,
                 count=count, removed=removed)
        return SUCCESS

    # --------------------------------------------------------------- Move

    async def move(self, parent, request: MoveRequest) -> None:
        element = _sub(parent, q("Move"))
        status = _sub(element, q("Status"))
        if request.conversation_id is not None:
            wbxml.set_opaque(_sub(element, q("ConversationId")), request.conversation_id)
        status.text = str(await self._move(request))

    async def _move(self, request: MoveRequest) -> int:
        if request.error is not None or not request.conversation_id or not request.destination:
            return self._refused("Move", PROTOCOL_ERROR, request.error or "no ConversationId or DstFldId")
        if not request.move_always:
            return self._refused("Move", MOVE_ALWAYS_REQUIRED, "no MoveAlways")
        destination = await self.store.folders.get(self.account.id, parse_folder_id(request.destination))
        if destination is None:
            return self._refused("Move", NOT_FOUND, f"no folder {request.destination!r}")
        if destination.content_class != "Email":
            return self._refused("Move", NOT_A_MAIL_FOLDER, f"folder {destination.id} holds no mail")
        folders = await self.store.folders.list(self.account.id)
        sent = [folder.id for folder in folders if folder.type == SENT_ITEMS]
        # The rule first: a message delivered while the conversation moves
        # either is moved with it or follows the rule.
        rules = self.store.conversations
        replaced = await rules.always_move(self.account.id, request.conversation_id, destination.id)
        try:
            found, moved = await self.store.items.move_conversation(
                self.account.id, request.conversation_id, destination.id, sent
            )
        except Exception:
            await rules.restore(self.account.id, request.conversation_id, replaced)
            raise
        if not found:
            await rules.restore(self.account.id, request.conversation_id, replaced)
            return self._refused("Move", NOT_FOUND, f"no conversation {request.conversation_id.hex()}")
        log.info("{account} {device}: moved {count} messages of conversation {conversation} to {folder}",
                 account=self.account.address, device=self.ctx.request.device_id, count=len(moved),
                 conversation=request.conversation_id.hex(), folder=destination.id)
        return SUCCESS


async def handle(ctx: CommandContext) -> Response:
    return await ItemOperations(ctx).run()

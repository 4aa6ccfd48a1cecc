"""
Search (MS-ASCMD 2.2.1.16): the mailbox by words, folder and date, and the
global address list by name.

- Mailbox: the Query is one And (2.2.3.10) of FreeText, airsync:Class,
  airsync:CollectionId, ConversationId, GreaterThan and LessThan on
  email:DateReceived.  Words match subject, body, sender and recipients,
  the last word as a prefix (phones search while the user types); hits come
  newest first.  Each Result carries airsync:Class, a LongId that is the
  item's ServerId ("folder:item", so ItemOperations, SmartReply,
  SmartForward and MeetingResponse take it as is), airsync:CollectionId and
  Properties holding the email ApplicationData children, rendered with the
  request's BodyPreference and MIMESupport like a Sync.  Results are not
  cached: every request is a fresh search (RebuildResults is always
  honoured), which the index makes cheap.
- GAL: the enabled accounts, each word of the query a prefix of a word of
  the display name or address (2.2.3.142.2), with gal:DisplayName, Alias,
  FirstName and LastName when the name shows them, and EmailAddress.
- DocumentLibrary: bluesync serves no SharePoint or UNC share; the answer
  is Store Status 13 (access blocked), as an Exchange server gives when the
  administrator has turned document access off.

A Range asks for at most 100 results (2.2.3.143.3); a larger one is
answered with the first 100 of it, and the response Range says which.
Total is exact when the page ends the result or the matches are few
(bluesync.store.search.COUNT_LIMIT), "at least that many" otherwise, and
always past a full page (2.2.3.184.3 calls it an estimate).  Malformed requests get Store Status
2 (invalid request) or 8 (too complex: Or, several And, FreeText outside
And), with a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas import render
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.eas.syncoptions import OptionsError, SyncOptions, parse_options
from bluesync.store import fulltext
from bluesync.store.folders import parse_server_id
from bluesync.store.search import DirectoryEntry, MailboxQuery, NoSuchFolder
from bluesync.web.rendering import Response

log = Logger()

NS = "Search:"
S = "{Search:}"
A = "{AirSync:}"
GAL = "{GAL:}"
EMAIL = "{Email:}"

# MS-ASCMD 2.2.3.177.13: Status of the Search element...
SUCCESS = 1
SERVER_ERROR = 3
# ...and of the Store element.
INVALID_REQUEST = 2
BAD_LINK = 4
ACCESS_DENIED = 5
NOT_FOUND = 6
CONNECTION_FAILED = 7
TOO_COMPLEX = 8
TIMED_OUT = 10
FOLDER_SYNC_REQUIRED = 11
END_OF_RANGE = 12
ACCESS_BLOCKED = 13
CREDENTIALS_REQUIRED = 14
# ...and of gal:Picture: the user has no photo.
NO_PICTURE = 173

# MS-ASCMD 2.2.3.143.3: the default Range and the most results per request.
DEFAULT_RANGE = (0, 99)
MAX_RESULTS = 100
MAX_QUERY_LENGTH = 1024


class SearchError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class StoreRequest:
    name: str
    query: etree._Element | None
    options: etree._Element | None
    range: tuple[int, int] = DEFAULT_RANGE
    deep: bool = False
    picture: bool = False
    sync_options: SyncOptions = field(default_factory=SyncOptions)

    @property
    def offset(self) -> int:
        return self.range[0]

    @property
    def limit(self) -> int:
        return min(self.range[1] - self.range[0] + 1, MAX_RESULTS)


@dataclass
class StoreAnswer:
    status: int = SUCCESS
    results: list = field(default_factory=list)   # Result elements
    offset: int = 0
    total: int | None = None


def parse_range(text: str | None) -> tuple[int, int]:
    """
    "m-n", zero-based and inclusive (MS-ASCMD 2.2.3.143.3).
    """
    first, dash, last = (text or "").strip().partition("-")
    if not dash or not first.isdigit() or not last.isdigit() or len(first) > 9 or len(last) > 9:
        raise SearchError(INVALID_REQUEST, f"Range {text!r} is not m-n")
    start, end = int(first), int(last)
    if start > end:
        raise SearchError(INVALID_REQUEST, f"Range {text!r} ends before it starts")
    return start, end


def parse_date(text: str | None) -> datetime:
    """
    A Value of GreaterThan or LessThan: an EAS date-time such as
    "2008-04-01T00:00:00.000Z" (UTC when no offset is given).
    """
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise SearchError(INVALID_REQUEST, f"date {text!r} is not an EAS date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_request(document) -> StoreRequest:
    if document is None or document.tag != S + "Search":
        raise SearchError(INVALID_REQUEST, "the document is not a Search request")
    stores = document.findall(S + "Store")
    if len(stores) != 1:
        raise SearchError(INVALID_REQUEST, f"{len(stores)} Store elements")
    store = stores[0]
    name = store.find(S + "Name")
    if name is None or not (name.text or "").strip():
        raise SearchError(INVALID_REQUEST, "Store without Name")
    request = StoreRequest((name.text or "").strip(), store.find(S + "Query"), store.find(S + "Options"))
    if request.query is None:
        raise SearchError(INVALID_REQUEST, "Store without Query")
    options = request.options
    if options is not None:
        ranges = options.findall(S + "Range")
        if len(ranges) > 1:
            raise SearchError(INVALID_REQUEST, "several Range elements")
        if ranges:
            request.range = parse_range(ranges[0].text)
        request.deep = options.find(S + "DeepTraversal") is not None
        request.picture = options.find(S + "Picture") is not None
        try:
            # The airsync:MIMESupport and airsyncbase:BodyPreference children
            # mean what they mean in a Sync collection's Options.
            request.sync_options = parse_options([options])
        except OptionsError as e:
            raise SearchError(INVALID_REQUEST, str(e)) from None
    return request


def _single(parent, tag: str, what: str):
    found = parent.findall(tag)
    if len(found) > 1:
        raise SearchError(INVALID_REQUEST, f"several {what} elements")
    return found[0] if found else None


def _date_bound(element) -> datetime | None:
    """
    GreaterThan or LessThan: email:DateReceived, then Value (2.2.3.86).
    """
    if element is None:
        return None
    children = list(element)
    if len(children) != 2 or children[0].tag != EMAIL + "DateReceived" or children[1].tag != S + "Value":
        raise SearchError(INVALID_REQUEST, f"{etree.QName(element).localname} is not DateReceived and Value")
    return parse_date(children[1].text)


@dataclass
class MailboxRequest:
    query: MailboxQuery
    content_classes: tuple[str, ...] = ()


def parse_mailbox_query(query, deep: bool) -> MailboxRequest:
    """
    The And of a mailbox Query (MS-ASCMD 2.2.3.142.2, 2.2.3.10).
    """
    children = list(query)
    if (query.text or "").strip() and not children:
        raise SearchError(INVALID_REQUEST, "a mailbox Query is an And, not text")
    ands = [c for c in children if c.tag == S + "And"]
    others = [c for c in children if c.tag != S + "And"]
    if len(ands) > 1 or any(c.tag in (S + "FreeText", S + "Or") for c in others):
        raise SearchError(TOO_COMPLEX, "only one And, holding the FreeText, is supported")
    if others or not ands:
        raise SearchError(INVALID_REQUEST, "a mailbox Query holds one And")
    conjunction = ands[0]
    if conjunction.find(S + "Or") is not None or conjunction.find(S + "And") is not None:
        raise SearchError(TOO_COMPLEX, "nested Or and And are not supported")
    known = {S + "FreeText", A + "Class", A + "CollectionId", S + "ConversationId", S + "GreaterThan",
             S + "LessThan"}
    for child in conjunction:
        if child.tag not in known:
            raise SearchError(INVALID_REQUEST, f"unexpected {child.tag} in And")
    free_text = _single(conjunction, S + "FreeText", "FreeText")
    text = None
    if free_text is not None:
        text = free_text.text or ""
        if len(text) > MAX_QUERY_LENGTH:
            raise SearchError(TOO_COMPLEX, "FreeText too long")
    folder_ids = []
    for element in conjunction.findall(A + "CollectionId"):
        folder_id = parse_server_id((element.text or "").strip())
        if folder_id is None:
            raise SearchError(INVALID_REQUEST, f"CollectionId {element.text!r} is not ours")
        folder_ids.append(folder_id)
    conversation = _single(conjunction, S + "ConversationId", "ConversationId")
    conversation_id = None
    if conversation is not None:
        try:
            conversation_id = wbxml.opaque(conversation)
        except wbxml.WBXMLError:
            raise SearchError(INVALID_REQUEST, "ConversationId is not opaque data") from None
    classes = tuple((c.text or "").strip() for c in conjunction.findall(A + "Class"))
    return MailboxRequest(
        MailboxQuery(
            text=text,
            folder_ids=tuple(folder_ids),
            deep=deep,
            received_after=_date_bound(_single(conjunction, S + "GreaterThan", "GreaterThan")),
            received_before=_date_bound(_single(conjunction, S + "LessThan", "LessThan")),
            conversation_id=conversation_id,
        ),
        classes,
    )


def _element(parent, tag: str, text=None):
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def document(store_answer: StoreAnswer):
    """
    The response: the request itself always succeeds (Search Status 1);
    how the store fared is the Store's Status.
    """
    root = etree.Element(S + "Search", nsmap={None: NS})
    _element(root, S + "Status", SUCCESS)
    store = _element(_element(root, S + "Response"), S + "Store")
    _element(store, S + "Status", store_answer.status)
    if store_answer.status != SUCCESS:
        return root
    if store_answer.results:
        for result in store_answer.results:
            store.append(result)
        first = store_answer.offset
        _element(store, S + "Range", f"{first}-{first + len(store_answer.results) - 1}")
    else:
        # No match: one empty Result (MS-ASCMD 2.2.3.155.3).
        _element(store, S + "Result")
    if store_answer.total is not None:
        _element(store, S + "Total", store_answer.total)
    return root


class SearchHandler:
    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account

    def _refused(self, status: int, message: str) -> StoreAnswer:
        log.info("{account} {device}: Search refused with status {status}: {error}",
                 account=self.account.address, device=self.ctx.request.device_id, status=status, error=message)
        return StoreAnswer(status)

    async def run(self) -> Response:
        try:
            request = parse_request(self.ctx.document)
            name = request.name.lower()
            if name == "mailbox":
                answer = await self.mailbox(request)
            elif name == "gal":
                answer = await self.gal(request)
            elif name == "documentlibrary":
                answer = self._refused(ACCESS_BLOCKED, "document libraries are not served")
            else:
                raise SearchError(INVALID_REQUEST, f"unknown store {request.name!r}")
        except SearchError as e:
            answer = self._refused(e.status, str(e))
        return wbxml_response(document(answer))

    async def mailbox(self, request: StoreRequest) -> StoreAnswer:
        if self.ctx.version_number < 12.0:
            raise SearchError(INVALID_REQUEST, "mailbox search needs protocol 12.0 or later")
        mailbox = parse_mailbox_query(request.query, request.deep)
        if mailbox.content_classes and "Email" not in mailbox.content_classes:
            # Only email is indexed; a search of other classes finds nothing.
            return StoreAnswer(SUCCESS, [], request.offset, 0)
        try:
            found = await self.store.search.mailbox(self.account.id, mailbox.query, request.offset, request.limit)
        except NoSuchFolder as e:
            # A folder the device believes in is gone (or was never this
            # account's): it must refresh its hierarchy.
            raise SearchError(FOLDER_SYNC_REQUIRED, f"no folder {e}") from None
        items = await self.store.items.get_many(self.account.id, [hit.item_id for hit in found.hits])
        results = []
        for hit in found.hits:
            item = items.get(hit.item_id)
            if item is None or item.folder_id != hit.folder_id:
                continue  # moved or deleted in between
            data = render.application_data(item, hit.server_id, self.ctx.version, request.sync_options)
            if data is None:
                continue
            result = etree.Element(S + "Result")
            _element(result, A + "Class", item.content_class)
            _element(result, S + "LongId", hit.server_id)
            _element(result, A + "CollectionId", hit.folder_id)
            properties = _element(result, S + "Properties")
            properties.extend(list(data))
            results.append(result)
        log.debug("{account}: mailbox search found {total}", account=self.account.address, total=found.total)
        return StoreAnswer(SUCCESS, results, request.offset, found.total)

    async def gal(self, request: StoreRequest) -> StoreAnswer:
        text = (request.query.text or "").strip()
        if len(request.query) or not fulltext.words(text):
            raise SearchError(INVALID_REQUEST, "a GAL Query is a non-empty string")
        if len(text) > MAX_QUERY_LENGTH:
            raise SearchError(TOO_COMPLEX, "GAL query too long")
        entries, total = await self.store.search.directory(text, request.offset + request.limit)
        picture = request.picture and self.ctx.version_number >= 14.1
        results = [self._gal_result(entry, picture) for entry in entries[request.offset:]]
        return StoreAnswer(SUCCESS, results, request.offset, total)

    def _gal_result(self, entry: DirectoryEntry, picture: bool):
        """
        One person, in the order of the GAL code page (MS-ASCMD 2.2.3.139.2).
        """
        result = etree.Element(S + "Result")
        properties = _element(result, S + "Properties")
        _element(properties, GAL + "DisplayName", entry.display_name or entry.address)
        _element(properties, GAL + "Alias", entry.alias)
        names = entry.first_last
        if names is not None:
            _element(properties, GAL + "FirstName", names[0])
            _element(properties, GAL + "LastName", names[1])
        _element(properties, GAL + "EmailAddress", entry.address)
        if picture:
            _element(_element(properties, GAL + "Picture"), GAL + "Status", NO_PICTURE)
        return result


async def handle(ctx: CommandContext) -> Response:
    return await SearchHandler(ctx).run()

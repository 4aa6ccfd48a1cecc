"""
Find (MS-ASCMD 2.2.1.2, protocol 16.1 only): the mailbox by KQL words, or
the global address list by name, for a phone's search box.

It runs on the machinery of Search (bluesync.eas.commands.search): the
mailbox's full-text index, newest first, and the directory of accounts.

- Mailbox (MailBoxSearchCriterion): the Query holds airsync:Class, which
  must be Email (2.2.3.27.1), an optional airsync:CollectionId and the
  FreeText, read as KQL (bluesync.store.kql).  Without a CollectionId the
  whole mailbox is searched (2.2.3.30.1); with one, that folder, and its
  subfolders too with DeepTraversal (2.2.3.41.1).  Each Result carries
  airsync:Class, the item's airsync:ServerId (the one Sync gives it, so
  ItemOperations, SmartReply and the rest take it as is), its
  airsync:CollectionId and the list properties of 2.2.3.139.1; no body.
- GAL (GALSearchCriterion): the enabled accounts, each word of the Query a
  prefix of a word of the name or address, with gal:DisplayName, Alias,
  FirstName and LastName when the name shows them, and EmailAddress.  A
  GAL entry is no mailbox item, so its Result holds Properties only.
  Accounts have no photos: a Picture option is accepted and no gal:Picture
  is ever sent.

Paging: SearchId names a search.  Its first request must ask for a Range
starting at 0 (2.2.3.143.1); later pages with the same SearchId may start
anywhere up to 999.  A later page of a search the device never began is
answered StartWithRangeZero.  The device's recent SearchIds are kept in
PostgreSQL, so paging works across bluesync processes; results are
recomputed for every page, as for Search.  A response holds at most 100
results, and its Range says which.  Total is exact when the page ends the
result or the matches are few, "at least that many" otherwise (2.2.3.184.1
calls it an estimate).  The response Store is "Mailbox" (2.2.3.178.1).

Status (2.2.3.177.2), with its parent element:
- Find 2: the document is not a Find request of this shape (no SearchId or
  not a GUID, not exactly one criterion, a missing Query, Class or
  FreeText, an element that does not belong).
- Find 3: the CollectionId is not a live folder of this account (deleted
  since the device's last FolderSync, or never its own): FolderSync first.
- Response 2: the search itself does not validate: a Class other than
  Email, a CollectionId that no FolderSync hands out, a Range that is not
  m-n with 0 <= m <= n <= 999, a FreeText without words, too long, or with
  KQL that bluesync does not evaluate (OR, NOT, size: ...), an empty GAL
  Query.
- Response 4: a Range not starting at 0 for a SearchId not begun.
Every refusal is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from twisted.logger import Logger

from bluesync.eas.context import CommandContext
from bluesync.eas.drafts import is_drafts
from bluesync.eas.render import email_state
from bluesync.eas.responses import wbxml_response
from bluesync.items import email
from bluesync.items.records import from_record
from bluesync.store import fulltext, kql
from bluesync.store.folders import parse_server_id
from bluesync.store.search import DirectoryEntry, MailboxQuery, NoSuchFolder
from bluesync.web.rendering import Response

log = Logger()

NS = "Find:"
F = "{Find:}"
A = "{AirSync:}"
GAL = "{GAL:}"
ITEMOPERATIONS = "{ItemOperations:}"

# The protocol versions that have the command (MS-ASWBXML code page 25).
VERSIONS = frozenset({"16.1"})

# MS-ASCMD 2.2.3.177.2.
SUCCESS = 1
INVALID_REQUEST = 2
FOLDER_SYNC_REQUIRED = 3
START_WITH_RANGE_ZERO = 4

# The default Range of a mailbox search (2.2.3.143.1 refers to Search's,
# 2.2.3.143.3), the highest index a Range may name, and the most results
# one response carries.
DEFAULT_RANGE = (0, 99)
MAX_INDEX = 999
MAX_RESULTS = 100
MAX_QUERY_LENGTH = 1024
STORE = "Mailbox"

# MS-ASDTYPE 2.7.4 GUID, as FindRequest.xsd (MS-ASCMD 6.7) spells it.
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


class FindError(Exception):
    """
    A refusal: C{status} goes in the Find element, or with C{in_response}
    in the Response element.
    """

    def __init__(self, status: int, message: str, in_response: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.in_response = in_response


def _invalid(message: str) -> FindError:
    return FindError(INVALID_REQUEST, message)


def _failed_validation(message: str) -> FindError:
    return FindError(INVALID_REQUEST, message, in_response=True)


@dataclass(frozen=True)
class FindRequest:
    search_id: str
    gal: bool
    query: etree._Element
    range_text: str | None
    deep: bool


def _only(parent, allowed: dict[str, tuple[int, int]]) -> dict[str, list]:
    """
    The children of C{parent} by tag, refusing any tag not in C{allowed}
    or present a number of times outside its (least, most).
    """
    found: dict[str, list] = {tag: [] for tag in allowed}
    for child in parent:
        if not isinstance(child.tag, str) or child.tag not in found:
            raise _invalid(f"unexpected {child.tag} in {etree.QName(parent).localname}")
        found[child.tag].append(child)
    for tag, (least, most) in allowed.items():
        if not least <= len(found[tag]) <= most:
            raise _invalid(f"{len(found[tag])} {etree.QName(tag).localname} in {etree.QName(parent).localname}")
    return found


def parse_request(document) -> FindRequest:
    """
    The shape of the request (MS-ASCMD 6.7); values are checked later.
    """
    if document is None or document.tag != F + "Find":
        raise _invalid("the document is not a Find request")
    top = _only(document, {F + "SearchId": (1, 1), F + "ExecuteSearch": (1, 1)})
    search_id = (top[F + "SearchId"][0].text or "").strip()
    if not _GUID.match(search_id):
        raise _invalid(f"SearchId {search_id[:64]!r} is not a GUID")
    criteria = _only(top[F + "ExecuteSearch"][0],
                     {F + "MailBoxSearchCriterion": (0, 1), F + "GALSearchCriterion": (0, 1)})
    present = [tag for tag, elements in criteria.items() if elements]
    if len(present) != 1:
        raise _invalid("ExecuteSearch holds neither or both criteria")
    gal = present[0] == F + "GALSearchCriterion"
    criterion = _only(criteria[present[0]][0], {F + "Query": (1, 1), F + "Options": (0, 1)})
    query = criterion[F + "Query"][0]
    range_text, deep = None, False
    if criterion[F + "Options"]:
        options = _only(criterion[F + "Options"][0],
                        {F + "Range": (0, 1), F + "DeepTraversal": (0, 1), F + "Picture": (0, 1)})
        if options[F + "Range"]:
            range_text = options[F + "Range"][0].text or ""
        # DeepTraversal "is not used" with GALSearchCriterion (2.2.3.41.1).
        deep = bool(options[F + "DeepTraversal"]) and not gal
        for picture in options[F + "Picture"]:
            limits = _only(picture, {F + "MaxSize": (0, 1), F + "MaxPictures": (0, 1)})
            for element in limits[F + "MaxSize"] + limits[F + "MaxPictures"]:
                if not (element.text or "").strip().isdigit():
                    raise _invalid(f"{etree.QName(element).localname} is not a number")
    return FindRequest(search_id.lower(), gal, query, range_text, deep)


def parse_range(text: str | None) -> tuple[int, int]:
    """
    "m-n" with 0 <= m <= n <= 999 (MS-ASCMD 2.2.3.143.1).
    """
    if text is None:
        return DEFAULT_RANGE
    first, dash, last = text.strip().partition("-")
    if not dash or not first.isdigit() or not last.isdigit() or len(first) > 3 or len(last) > 3:
        raise _failed_validation(f"Range {text[:32]!r} is not m-n")
    start, end = int(first), int(last)
    if not start <= end <= MAX_INDEX:
        raise _failed_validation(f"Range {text!r} is out of order or past {MAX_INDEX}")
    return start, end


@dataclass(frozen=True)
class MailboxCriterion:
    tsquery: str
    folder_id: int | None


def parse_mailbox_query(query) -> MailboxCriterion:
    """
    Class, CollectionId and FreeText (MS-ASCMD 2.2.3.142.1).
    """
    if (query.text or "").strip() and not len(query):
        raise _invalid("a mailbox Query is a container")
    parts = _only(query, {A + "Class": (1, 1), A + "CollectionId": (0, 1), F + "FreeText": (1, 1)})
    content_class = (parts[A + "Class"][0].text or "").strip()
    if content_class != "Email":
        raise _failed_validation(f"Class {content_class[:32]!r}: only Email is searched")
    folder_id = None
    if parts[A + "CollectionId"]:
        collection = (parts[A + "CollectionId"][0].text or "").strip()
        folder_id = parse_server_id(collection)
        if folder_id is None:
            raise _failed_validation(f"CollectionId {collection[:64]!r} is not one FolderSync hands out")
    free_text = parts[F + "FreeText"][0].text or ""
    if len(free_text) > MAX_QUERY_LENGTH:
        raise _failed_validation("FreeText too long")
    try:
        tsquery = kql.tsquery(free_text)
    except kql.KQLError as e:
        raise _failed_validation(f"FreeText {free_text[:64]!r}: {e}") from None
    if tsquery is None:
        raise _failed_validation("FreeText without a word")
    return MailboxCriterion(tsquery, folder_id)


def _element(parent, tag: str, text=None):
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


@dataclass
class Answer:
    status: int = SUCCESS                 # of the Find element
    response_status: int | None = None    # of the Response element; None: no Response
    results: list | None = None
    offset: int = 0
    total: int = 0


def document(answer: Answer):
    root = etree.Element(F + "Find", nsmap={None: NS})
    _element(root, F + "Status", answer.status)
    if answer.response_status is None:
        return root
    response = _element(root, F + "Response")
    _element(response, ITEMOPERATIONS + "Store", STORE)
    _element(response, F + "Status", answer.response_status)
    if answer.response_status != SUCCESS:
        return root
    for result in answer.results or ():
        response.append(result)
    if answer.results:
        _element(response, F + "Range", f"{answer.offset}-{answer.offset + len(answer.results) - 1}")
    _element(response, F + "Total", answer.total)
    return root


class FindHandler:
    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account

    def _refused(self, error: FindError) -> Answer:
        log.info("{account} {device}: Find refused with status {status}: {error}",
                 account=self.account.address, device=self.ctx.request.device_id, status=error.status,
                 error=str(error))
        if error.in_response:
            return Answer(SUCCESS, error.status)
        return Answer(error.status)

    async def run(self) -> Response:
        try:
            request = parse_request(self.ctx.document)
            first, last = parse_range(request.range_text)
            mailbox = None if request.gal else parse_mailbox_query(request.query)
            gal_text = self._gal_text(request.query) if request.gal else ""
            await self._page(request.search_id, first)
            limit = min(last - first + 1, MAX_RESULTS)
            if mailbox is not None:
                answer = await self.mailbox(mailbox, request.deep, first, limit)
            else:
                answer = await self.gal(gal_text, first, limit)
        except FindError as e:
            answer = self._refused(e)
        return wbxml_response(document(answer))

    async def _page(self, search_id: str, first: int) -> None:
        """
        Begin the search at Range 0; page on only in a search begun.
        """
        device_id = self.ctx.device.id
        if first == 0:
            await self.store.search.begin_find(device_id, search_id)
        elif not await self.store.search.find_begun(device_id, search_id):
            raise FindError(START_WITH_RANGE_ZERO, f"Range starts at {first} in search {search_id}, never begun",
                            in_response=True)

    @staticmethod
    def _gal_text(query) -> str:
        text = (query.text or "").strip()
        if len(query):
            raise _invalid("a GAL Query is a string")
        if len(text) > MAX_QUERY_LENGTH:
            raise _failed_validation("GAL Query too long")
        if not fulltext.words(text):
            raise _failed_validation("GAL Query without a word")
        return text

    async def mailbox(self, criterion: MailboxCriterion, deep: bool, offset: int, limit: int) -> Answer:
        query = MailboxQuery(
            tsquery=criterion.tsquery,
            folder_ids=(criterion.folder_id,) if criterion.folder_id is not None else (),
            deep=deep,
        )
        try:
            found = await self.store.search.mailbox(self.account.id, query, offset, limit)
        except NoSuchFolder as e:
            # Deleted since the device's FolderSync, or never this
            # account's: the two are told apart nowhere.
            raise FindError(FOLDER_SYNC_REQUIRED, f"no folder {e}") from None
        items = await self.store.items.get_many(self.account.id, [hit.item_id for hit in found.hits],
                                                with_content=False)
        folders = {folder.id: folder for folder in await self.store.folders.list(self.account.id)}
        results = []
        for hit in found.hits:
            item = items.get(hit.item_id)
            folder = folders.get(hit.folder_id)
            if item is None or folder is None or item.folder_id != hit.folder_id or item.content_class != "Email":
                continue  # moved or deleted in between
            summary = from_record(email.MessageSummary, item.summary)
            result = etree.Element(F + "Result")
            _element(result, A + "Class", "Email")
            _element(result, A + "ServerId", hit.server_id)
            _element(result, A + "CollectionId", hit.folder_id)
            result.append(email.find_properties(summary, email_state(item), is_draft=is_drafts(folder)))
            results.append(result)
        log.debug("{account}: Find found {total}", account=self.account.address, total=found.total)
        return Answer(SUCCESS, SUCCESS, results, offset, found.total)

    async def gal(self, text: str, offset: int, limit: int) -> Answer:
        entries, total = await self.store.search.directory(text, offset + limit)
        results = [self._gal_result(entry) for entry in entries[offset:]]
        return Answer(SUCCESS, SUCCESS, results, offset, total)

    @staticmethod
    def _gal_result(entry: DirectoryEntry):
        """
        One person, with what an account knows of itself, in the order of
        MS-ASCMD 2.2.3.139.1.
        """
        result = etree.Element(F + "Result")
        properties = _element(result, F + "Properties")
        _element(properties, GAL + "DisplayName", entry.display_name or entry.address)
        _element(properties, GAL + "Alias", entry.alias)
        names = entry.first_last
        if names is not None:
            _element(properties, GAL + "FirstName", names[0])
            _element(properties, GAL + "LastName", names[1])
        _element(properties, GAL + "EmailAddress", entry.address)
        return result


async def handle(ctx: CommandContext) -> Response:
    return await FindHandler(ctx).run()

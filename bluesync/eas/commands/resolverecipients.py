"""
ResolveRecipients (MS-ASCMD 2.2.1.15): turn what the user typed in To into
people of the global address list (the accounts table).

Each To is answered by one Response (2.2.3.153.6), in request order:

- an address ("alice@example.org", or "Alice <alice@example.org>")
  resolves when it is an account's address or alias (Status 1), else
  Status 4: bluesync knows no address outside its own accounts, and has no
  personal contacts to look in yet;
- a name resolves by word prefix as the GAL search does: one match is
  Status 1; several are suggestions, Status 2 (or 3 when more exist than
  MaxAmbiguousRecipients allows), unless exactly one display name is the
  whole text typed, which then resolves;
- RecipientCount is the number of matches, so a client can tell how many
  suggestions were left out (2.2.3.100).

bluesync keeps no S/MIME certificates, no free/busy and no photos yet, so
when asked for them each Recipient says so with the statuses of 2.2.3.177.12:
Certificates 7 (no valid certificate), Availability 163 (free/busy could
not be retrieved; 160 past 100 recipients), Picture 173 (no photo).
A malformed request gets the top-level Status 5 (protocol error).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parseaddr

from lxml import etree
from twisted.logger import Logger

from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.store import fulltext
from bluesync.store.search import DirectoryEntry
from bluesync.web.rendering import Response

log = Logger()

NS = "ResolveRecipients:"
R = "{ResolveRecipients:}"

# MS-ASCMD 2.2.3.177.12.
SUCCESS = 1
PROTOCOL_ERROR = 5
SERVER_ERROR = 6
RESOLVED = 1
AMBIGUOUS = 2
AMBIGUOUS_PARTIAL = 3
UNRESOLVED = 4
NO_VALID_CERTIFICATE = 7
CERTIFICATE_LIMIT = 8
AVAILABILITY_TOO_MANY_RECIPIENTS = 160
AVAILABILITY_TOO_MANY_MEMBERS = 161
AVAILABILITY_FAILED = 163
NO_PICTURE = 173

# MS-ASCMD 2.2.3.145: Type of a Recipient.
GAL_ENTRY = 1
CONTACT = 2

# The request may hold up to 1,000 To elements (2.2.3.183; beyond is a
# protocol error), each at most 256 characters; free/busy is for at most
# 100 of them (2.2.3.16).
MAX_RECIPIENTS = 1000
MAX_TO_LENGTH = 256
MAX_AVAILABILITY_RECIPIENTS = 100
# Suggestions per ambiguous name when the client does not say
# (MaxAmbiguousRecipients, 0-9999): enough for a picker on a phone screen.
DEFAULT_SUGGESTIONS = 20


class ResolveError(Exception):
    pass


@dataclass
class Options:
    certificates: int = 1               # CertificateRetrieval: 1 none, 2 full, 3 mini
    max_ambiguous: int = DEFAULT_SUGGESTIONS
    availability: bool = False
    picture: bool = False


def _number(element, low: int, high: int, what: str) -> int:
    text = (element.text or "").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ResolveError(f"{what} {text!r} out of range {low}-{high}")
    return int(text)


def _time(element, what: str) -> datetime:
    if element is None:
        raise ResolveError(f"Availability without {what}")
    try:
        moment = datetime.fromisoformat((element.text or "").strip())
    except ValueError:
        raise ResolveError(f"{what} {element.text!r} is not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_request(document) -> tuple[list[str], Options]:
    if document is None or document.tag != R + "ResolveRecipients":
        raise ResolveError("the document is not a ResolveRecipients request")
    names = []
    options = Options()
    for child in document:
        if child.tag == R + "To":
            name = (child.text or "").strip()
            if not name or len(name) > MAX_TO_LENGTH:
                raise ResolveError("a To is empty or longer than 256 characters")
            names.append(name)
        elif child.tag == R + "Options":
            options = parse_options(child)
        else:
            raise ResolveError(f"unexpected {child.tag}")
    if not names or len(names) > MAX_RECIPIENTS:
        raise ResolveError(f"{len(names)} To elements")
    return names, options


def parse_options(element) -> Options:
    options = Options()
    for child in element:
        if child.tag == R + "CertificateRetrieval":
            options.certificates = _number(child, 1, 3, "CertificateRetrieval")
        elif child.tag == R + "MaxCertificates":
            _number(child, 0, 9999, "MaxCertificates")
        elif child.tag == R + "MaxAmbiguousRecipients":
            options.max_ambiguous = _number(child, 0, 9999, "MaxAmbiguousRecipients")
        elif child.tag == R + "Availability":
            start = _time(child.find(R + "StartTime"), "StartTime")
            end = _time(child.find(R + "EndTime"), "EndTime")
            if end <= start:
                raise ResolveError("Availability ends before it starts")
            options.availability = True
        elif child.tag == R + "Picture":
            for limit in child:
                if limit.tag in (R + "MaxSize", R + "MaxPictures"):
                    _number(limit, 0, 2**31 - 1, etree.QName(limit).localname)
            options.picture = True
        else:
            raise ResolveError(f"unexpected option {child.tag}")
    return options


def _element(parent, name: str, text=None):
    element = etree.SubElement(parent, R + name)
    if text is not None:
        element.text = str(text)
    return element


class ResolveHandler:
    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.search = ctx.server.store.search

    async def run(self) -> Response:
        root = etree.Element(R + "ResolveRecipients", nsmap={None: NS})
        try:
            names, options = parse_request(self.ctx.document)
        except ResolveError as e:
            log.info("{account} {device}: ResolveRecipients refused: {error}",
                     account=self.ctx.account.address, device=self.ctx.request.device_id, error=str(e))
            _element(root, "Status", PROTOCOL_ERROR)
            return wbxml_response(root)
        _element(root, "Status", SUCCESS)
        too_many_for_availability = len(names) > MAX_AVAILABILITY_RECIPIENTS
        for name in names:
            status, total, entries = await self.resolve(name, options.max_ambiguous)
            response = _element(root, "Response")
            _element(response, "To", name)
            _element(response, "Status", status)
            _element(response, "RecipientCount", total)
            for entry in entries:
                self._recipient(response, entry, options, too_many_for_availability, status == RESOLVED)
        return wbxml_response(root)

    async def resolve(self, name: str, limit: int) -> tuple[int, int, list[DirectoryEntry]]:
        """
        (Response Status, number of matches, the entries to send).
        """
        _, address = parseaddr(name)
        if "@" in name:
            entry = await self.search.by_address(address or name)
            return (RESOLVED, 1, [entry]) if entry else (UNRESOLVED, 0, [])
        if not fulltext.words(name):
            return UNRESOLVED, 0, []
        entries, total = await self.search.directory(name, max(limit, DEFAULT_SUGGESTIONS))
        if total == 0:
            return UNRESOLVED, 0, []
        if total == 1:
            return RESOLVED, 1, entries
        wanted = " ".join(name.split()).casefold()
        exact = [e for e in entries if " ".join(e.display_name.split()).casefold() == wanted]
        if len(exact) == 1:
            return RESOLVED, 1, exact
        shown = entries[:limit]
        return (AMBIGUOUS if total <= limit else AMBIGUOUS_PARTIAL), total, shown

    def _recipient(self, response, entry: DirectoryEntry, options: Options, too_many: bool, resolved: bool) -> None:
        """
        One Recipient, its children in schema order (2.2.3.145).
        """
        recipient = _element(response, "Recipient")
        _element(recipient, "Type", GAL_ENTRY)
        _element(recipient, "DisplayName", entry.display_name or entry.address)
        _element(recipient, "EmailAddress", entry.address)
        if options.availability and resolved and self.ctx.version_number >= 14.0:
            # Free/busy only for a uniquely resolved recipient (2.2.3.16).
            availability = _element(recipient, "Availability")
            _element(availability, "Status", AVAILABILITY_TOO_MANY_RECIPIENTS if too_many else AVAILABILITY_FAILED)
        if options.certificates in (2, 3):
            certificates = _element(recipient, "Certificates")
            _element(certificates, "Status", NO_VALID_CERTIFICATE)
            _element(certificates, "CertificateCount", 0)
            _element(certificates, "RecipientCount", 1)
        if options.picture and self.ctx.version_number >= 14.1:
            _element(_element(recipient, "Picture"), "Status", NO_PICTURE)


async def handle(ctx: CommandContext) -> Response:
    return await ResolveHandler(ctx).run()

"""
Helpers shared by the PIM converters (contacts, calendar, tasks, notes):
element building and reading in the team's namespace convention, the
MS-ASDTYPE date forms, AirSyncBase:Body in and out, the all-day date
rule, and keeping EAS elements no converter maps as X- properties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Collection, Iterable, Sequence

from lxml import etree

from bluesync.items.email import BodyPreference, truncate_utf8
from bluesync.items.html2text import html_to_text, text_to_html
from bluesync.wbxml import CODE_PAGES

AIRSYNC = "AirSync:"
AIRSYNCBASE = "AirSyncBase:"
CALENDAR = "Calendar:"
CONTACTS = "Contacts:"
CONTACTS2 = "Contacts2:"
TASKS = "Tasks:"
NOTES = "Notes:"

UTC = timezone.utc
BODY_PLAIN, BODY_HTML, BODY_RTF, BODY_MIME = 1, 2, 3, 4

# Prefix of the properties that keep EAS elements no converter maps.
X_EAS = "X-BLUESYNC-EAS-"

# The code pages each class's ApplicationData draws from: unmapped
# elements of these are kept, anything else is dropped.
CALENDAR_PAGES = frozenset({CALENDAR, AIRSYNCBASE})
CONTACTS_PAGES = frozenset({CONTACTS, CONTACTS2, AIRSYNCBASE})
TASKS_PAGES = frozenset({TASKS, AIRSYNCBASE})
NOTES_PAGES = frozenset({NOTES, AIRSYNCBASE})

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class ConversionError(ValueError):
    """
    An ApplicationData the server cannot store. `status` is the Sync
    Status for the item (MS-ASCMD 2.2.3.177.17: 6, "error in client/server
    conversion").
    """

    def __init__(self, message: str, status: int = 6) -> None:
        super().__init__(message)
        self.status = status


def version_tuple(version: str) -> tuple[int, int]:
    try:
        major, _, minor = version.strip().partition(".")
        return int(major), int(minor or 0)
    except (ValueError, AttributeError):
        raise ValueError(f"not an ActiveSync protocol version: {version!r}") from None


def clean(text: str) -> str:
    return _XML_INVALID.sub("", text)


def el(parent: etree._Element, namespace: str, name: str,
       text: object | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text is not None:
        element.text = clean(str(text))
    return element


def application_data() -> etree._Element:
    return etree.Element(f"{{{AIRSYNC}}}ApplicationData")


def find(parent: etree._Element, namespace: str, name: str) -> etree._Element | None:
    return parent.find(f"{{{namespace}}}{name}")


def text(parent: etree._Element, namespace: str, name: str) -> str | None:
    """The element's text ("" when empty), None when absent."""
    element = find(parent, namespace, name)
    if element is None:
        return None
    return element.text or ""


# The widest integer any ActiveSync content element carries (xs:int and
# xs:unsignedInt in the MS-AS* schemas); anything beyond is refused here so
# that no huge number reaches the iCalendar or vCard writers.
INTEGER_RANGE = (-(2 ** 31), 2 ** 32 - 1)


def integer(parent: etree._Element, namespace: str, name: str,
            low: int = INTEGER_RANGE[0], high: int = INTEGER_RANGE[1]) -> int | None:
    """
    The element's integer, None if absent or empty.

    @raise ConversionError: not an integer, or outside C{low}..C{high}
        (the schema's range for the element).
    """
    value = text(parent, namespace, name)
    if value is None or not value.strip():
        return None
    stripped = value.strip()
    try:
        number = int(stripped) if len(stripped) <= 20 else None
    except ValueError:
        number = None
    if number is None:
        raise ConversionError(f"{namespace}{name} is not an integer: {value[:40]!r}")
    if not low <= number <= high:
        raise ConversionError(f"{namespace}{name} {number} is outside {low}..{high}")
    return number


def split_tag(tag: str) -> tuple[str, str]:
    """"{Calendar:}Subject" -> ("Calendar:", "Subject")."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


# ---------------------------------------------------------------------------
# Dates (MS-ASDTYPE 2.3 dateTime, 2.7.2 Compact DateTime)

_DATETIME = re.compile(
    r"^\s*(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d{1,6}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE)


def parse_datetime(value: str | None) -> datetime | None:
    """
    An EAS date: "2026-11-26T10:00:00.000Z" (dateTime) or "20261126T100000Z"
    (compact), as an aware UTC datetime. A value without a zone is read as
    UTC, as devices that omit the Z mean it. ConversionError if it is not
    a date; None for None.
    """
    if value is None:
        return None
    found = _DATETIME.match(value)
    if not found:
        raise ConversionError(f"not an ActiveSync date: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0),
                          int(minute or 0), int(second or 0),
                          int((fraction or "0").ljust(6, "0")), tzinfo=UTC)
    except ValueError:
        raise ConversionError(f"not an ActiveSync date: {value!r}") from None
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def compact(moment: datetime) -> str:
    """MS-ASDTYPE 2.7.2: "20261126T100000Z"."""
    return utc(moment).strftime("%Y%m%dT%H%M%SZ")


def iso(moment: datetime) -> str:
    """MS-ASDTYPE 2.3: "2026-11-26T10:00:00.000Z"."""
    moment = utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def device_date(moment: datetime, tz: tzinfo | None = None) -> date:
    """
    The calendar date a device means by a date-only value (a birthday, an
    all-day event's start) sent as an instant. The rule:

    1. exactly 00:00:00Z is that UTC date (the literal form, and for a
       client at UTC+0 both readings agree);
    2. with the device's zone `tz`: the local time rounded to the nearest
       local midnight, noon staying on its own day (devices send local
       midnight, or local noon as BlackBerry does, as UTC), except that
       exactly 12:00:00Z is the literal date unless the zone is 12 hours or
       more from UTC there;
    3. without a zone: rounded to the nearest UTC midnight, noon staying on
       its own day. This is right for every client between UTC-12 and
       UTC+11:59; clients further east need `tz`.
    """
    moment = utc(moment)
    clock = moment.timetz().replace(tzinfo=None)
    if clock == time(0):
        return moment.date()
    if tz is not None:
        local = moment.astimezone(tz)
        offset = abs(local.utcoffset() or timedelta(0))
        if clock == time(12) and offset < timedelta(hours=12):
            return moment.date()
        return _nearest_midnight(local.replace(tzinfo=None))
    return _nearest_midnight(moment.replace(tzinfo=None))


def _nearest_midnight(naive: datetime) -> date:
    if naive.time() > time(12):
        return naive.date() + timedelta(days=1)
    return naive.date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """Midnight starting `day` in `tz`, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


# ---------------------------------------------------------------------------
# AirSyncBase:Body (MS-ASAIRS 2.2.2.9)

@dataclass(frozen=True)
class Body:
    """A body a device sent: plain text, and the HTML when it sent HTML."""
    text: str
    html: str | None = None


def read_body(data: etree._Element) -> Body | None:
    """
    The AirSyncBase:Body of an ApplicationData, None when absent. HTML is
    kept and also converted to text (the text is what the standard stores
    in NOTE / DESCRIPTION); RTF cannot be decoded here and counts as empty.
    """
    body = find(data, AIRSYNCBASE, "Body")
    if body is None:
        return None
    body_type = integer(body, AIRSYNCBASE, "Type") or BODY_PLAIN
    content = text(body, AIRSYNCBASE, "Data") or ""
    content = content.replace("\r\n", "\n")
    if body_type == BODY_HTML:
        return Body(html_to_text(content), content)
    if body_type == BODY_RTF:
        return Body("")
    return Body(content)


def body_element(parent: etree._Element, body: Body,
                 preferences: Sequence[BodyPreference] = ()) -> None:
    """
    Write AirSyncBase:Body per the first preference we can serve: plain
    (1) or HTML (2); RTF and MIME requests get plain text. TruncationSize
    counts UTF-8 bytes; AllOrNone sends no Data when it would be cut.
    """
    preference = BodyPreference(BODY_PLAIN)
    for candidate in preferences:
        if candidate.type in (BODY_PLAIN, BODY_HTML):
            preference = candidate
            break
    else:
        if preferences:
            first = preferences[0]
            preference = BodyPreference(BODY_PLAIN, first.truncation_size,
                                        first.all_or_none, first.preview)
    if preference.type == BODY_HTML:
        content = body.html if body.html is not None else text_to_html(body.text)
    else:
        content = body.text
    content = clean(re.sub(r"\r?\n", "\r\n", content))
    size = len(content.encode("utf-8"))
    element = el(parent, AIRSYNCBASE, "Body")
    el(element, AIRSYNCBASE, "Type", preference.type)
    el(element, AIRSYNCBASE, "EstimatedDataSize", size)
    limit = preference.truncation_size
    if limit is not None and size > limit:
        el(element, AIRSYNCBASE, "Truncated", 1)
        if not preference.all_or_none:
            cut, _ = truncate_utf8(content, limit)
            if cut:
                el(element, AIRSYNCBASE, "Data", cut)
    else:
        el(element, AIRSYNCBASE, "Data", content)
    if preference.preview:
        plain = " ".join(body.text.split())
        el(element, AIRSYNCBASE, "Preview", plain[:min(preference.preview, 255)])


def native_body_type(body: Body) -> int:
    return BODY_HTML if body.html is not None else BODY_PLAIN


# ---------------------------------------------------------------------------
# Elements no converter maps, kept as X- properties

_PAGES = {page.name.upper(): page for page in CODE_PAGES.values()}


def kept_name(element: etree._Element) -> str | None:
    """X-BLUESYNC-EAS-<PAGE>-<NAME> for an element, None if not an EAS tag."""
    if not isinstance(element.tag, str):
        return None
    namespace, name = split_tag(element.tag)
    if not namespace.endswith(":") or not re.fullmatch(r"[A-Za-z0-9]+", name):
        return None
    return f"{X_EAS}{namespace[:-1].upper()}-{name.upper()}"


def kept_value(element: etree._Element) -> tuple[str, bool]:
    """(value, is_xml): the text of a leaf, the XML of a container."""
    if len(element):
        copy = etree.fromstring(etree.tostring(element))
        etree.cleanup_namespaces(copy)
        return etree.tostring(copy, encoding="unicode"), True
    return element.text or "", False


def restore(name: str, value: str, is_xml: bool, namespaces: Collection[str]) -> etree._Element | None:
    """
    The element a kept property holds, None if it names no EAS tag of
    C{namespaces} (the class's own pages: what an older bluesync kept from
    other pages is not sent on).
    """
    if not name.upper().startswith(X_EAS):
        return None
    rest = name[len(X_EAS):].upper()
    page_name, _, tag_name = rest.partition("-")
    page = _PAGES.get(page_name)
    if page is None or page.uri not in namespaces:
        return None
    tag = next((t for t in page.tags if t.name.upper() == tag_name), None)
    if tag is None:
        return None
    if is_xml:
        try:
            element = etree.fromstring(value)
        except etree.XMLSyntaxError:
            return None
        if element.tag != f"{{{page.uri}}}{tag.name}":
            return None
        return element
    element = etree.Element(f"{{{page.uri}}}{tag.name}")
    if value:
        element.text = clean(value)
    return element


def unmapped(data: etree._Element, mapped: Iterable[str], namespaces: Collection[str]) -> list[etree._Element]:
    """
    Children of `data` whose "{ns}Name" tag is not in `mapped` but is in
    one of the class's own C{namespaces}, to be kept and sent back to other
    devices.  Elements of other pages (an AirSync or Email element inside a
    task, say) are no part of the item and are dropped, never stored and
    echoed to every device.
    """
    known = set(mapped)
    return [child for child in data
            if isinstance(child.tag, str) and child.tag not in known
            and split_tag(child.tag)[0] in namespaces]


def tags(namespace: str, *names: str) -> set[str]:
    return {f"{{{namespace}}}{name}" for name in names}


def supported(element: etree._Element, version: str) -> bool:
    """Whether the code pages define this element in protocol `version`."""
    from bluesync.wbxml import tag_for
    tag = tag_for(element.tag) if isinstance(element.tag, str) else None
    if tag is None:
        return False
    major, minor = version_tuple(version)
    return f"{major}.{minor}" in tag.versions


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"

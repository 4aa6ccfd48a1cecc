"""
The contacts content class: vCard 3.0 <-> EAS ApplicationData (MS-ASCNTC,
Contacts and Contacts2 code pages), with the vobject library.

    from_eas(data, version, *, tz=None, uid=None) -> (vcf bytes, columns)
    to_eas(stored, version, *, tz=None, family=None, body_preferences=()) -> ApplicationData
    merge(stored, from_device) -> vcf bytes
    columns(stored) -> {"uid", "file_as", "display_name", "email"}

vCard 3.0 (RFC 2426): what iOS, macOS and most CardDAV servers and
gateways write and read; vobject reads 2.1 and 4.0 imports too.

Mapping (vCard <- EAS):

    N                 LastName;FirstName;MiddleName;Title;Suffix
    FN                built from the names (else company, else e-mail)
    NICKNAME          Contacts2:NickName
    X-PHONETIC-FIRST-NAME / -LAST-NAME / X-PHONETIC-ORG   Yomi* (Apple's names)
    ORG               CompanyName;Department
    TITLE             JobTitle
    EMAIL;TYPE=INTERNET  Email1Address..Email3Address, in order (the first
                      with TYPE=pref); a "Name <addr>" value keeps its
                      display form in X-BLUESYNC-EAS-CONTACTS-EMAILnADDRESS
    TEL               MobilePhoneNumber CELL; HomePhoneNumber and
                      Home2PhoneNumber HOME (in order); BusinessPhoneNumber
                      and Business2PhoneNumber WORK; HomeFaxNumber HOME,FAX;
                      BusinessFaxNumber WORK,FAX; CarPhoneNumber CAR;
                      PagerNumber PAGER; RadioPhoneNumber X-RADIO;
                      AssistantPhoneNumber X-ASSISTANT; CompanyMainPhone MAIN;
                      MMS X-MMS
    ADR               Home/Business/Other*: TYPE=HOME / WORK / OTHER;
                      ;;Street;City;State;PostalCode;Country
    BDAY, X-ANNIVERSARY   Birthday, Anniversary as dates (see below)
    URL               WebPage
    NOTE              AirSyncBase:Body (HTML kept in X-BLUESYNC-EAS-BODYHTML)
    CATEGORIES        Categories
    X-CHILD           each Child of Children
    X-SPOUSE X-MANAGER X-ASSISTANT   Spouse, Contacts2:ManagerName, AssistantName
    IMPP              Contacts2:IMAddress, IMAddress2, IMAddress3, in order
    PHOTO;ENCODING=b  Picture (at most 48 KB of base64, MS-ASCNTC 2.2.2.58;
                      more is refused with status 6)

Every other element (FileAs, OfficeLocation, CustomerId, GovernmentId,
AccountName, Alias, ...) is kept as X-BLUESYNC-EAS-<PAGE>-<NAME> and sent
back as it came; WeightedRank (a GAL ranking the server computes) is
dropped.

Birthdays and anniversaries are stored as dates (BDAY:1980-05-18). A
device's value is read by `_eas.device_date` with the device's zone `tz`
(MS-ASCNTC 2.2.2.6 says the time part "SHOULD be ignored"; devices send
local midnight, midnight UTC or noon). Sent back per device family:
"android" (AOSP-derived Exchange clients, which round to the nearest UTC
day) gets the date at 00:00:00.000Z; every other family gets local noon in
`tz` as UTC, which is the right local day for clients that convert to
local time in any zone from UTC-12 to UTC+14 and the right UTC day for
those that take the date within 12 hours of UTC; without `tz`, noon UTC.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import date, datetime, time, tzinfo
from typing import Sequence

import vobject
from lxml import etree

from bluesync.items import _eas
from bluesync.items._eas import AIRSYNCBASE, CONTACTS, CONTACTS2, Body, ConversionError, el, text
from bluesync.items.email import BodyPreference

__all__ = ["ConversionError", "PICTURE_LIMIT", "columns", "from_eas", "merge", "to_eas"]

PICTURE_LIMIT = 48 * 1024          # bytes of base64 text (MS-ASCNTC 2.2.2.58)
ANDROID = "android"

# Phone elements: (page, element, vCard types, rank among equal types).
PHONES = (
    (CONTACTS, "MobilePhoneNumber", ("CELL",), 0),
    (CONTACTS, "HomePhoneNumber", ("HOME",), 0),
    (CONTACTS, "Home2PhoneNumber", ("HOME",), 1),
    (CONTACTS, "BusinessPhoneNumber", ("WORK",), 0),
    (CONTACTS, "Business2PhoneNumber", ("WORK",), 1),
    (CONTACTS, "HomeFaxNumber", ("HOME", "FAX"), 0),
    (CONTACTS, "BusinessFaxNumber", ("WORK", "FAX"), 0),
    (CONTACTS, "CarPhoneNumber", ("CAR",), 0),
    (CONTACTS, "PagerNumber", ("PAGER",), 0),
    (CONTACTS, "RadioPhoneNumber", ("X-RADIO",), 0),
    (CONTACTS, "AssistantPhoneNumber", ("X-ASSISTANT",), 0),
    (CONTACTS2, "CompanyMainPhone", ("MAIN",), 0),
    (CONTACTS2, "MMS", ("X-MMS",), 0),
)
ADDRESSES = (("Home", "HOME"), ("Business", "WORK"), ("Other", "OTHER"))
SIMPLE = (   # vCard property <-> element, single text values
    ("NICKNAME", CONTACTS2, "NickName"),
    ("TITLE", CONTACTS, "JobTitle"),
    ("URL", CONTACTS, "WebPage"),
    ("X-PHONETIC-FIRST-NAME", CONTACTS, "YomiFirstName"),
    ("X-PHONETIC-LAST-NAME", CONTACTS, "YomiLastName"),
    ("X-PHONETIC-ORG", CONTACTS, "YomiCompanyName"),
    ("X-SPOUSE", CONTACTS, "Spouse"),
    ("X-MANAGER", CONTACTS2, "ManagerName"),
    ("X-ASSISTANT", CONTACTS, "AssistantName"),
)
_IGNORED = _eas.tags(CONTACTS, "WeightedRank", "Body", "BodySize", "BodyTruncated",
                     "CompressedRTF") | _eas.tags(AIRSYNCBASE, "NativeBodyType")

_MAPPED = (
    _eas.tags(CONTACTS, "FirstName", "MiddleName", "LastName", "Title", "Suffix",
              "CompanyName", "Department", "Email1Address", "Email2Address",
              "Email3Address", "Birthday", "Anniversary", "Categories", "Children",
              "Picture")
    | {f"{{{page}}}{name}" for page, name, _, _ in PHONES}
    | {f"{{{CONTACTS}}}{kind}Address{part}" for kind, _ in ADDRESSES
       for part in ("Street", "City", "State", "PostalCode", "Country")}
    | {f"{{{page}}}{name}" for _, page, name in SIMPLE}
    | _eas.tags(CONTACTS2, "IMAddress", "IMAddress2", "IMAddress3")
    | _eas.tags(AIRSYNCBASE, "Body")
    | _IGNORED
)

# vCard properties an EAS contact defines: a device's Change replaces them.
MAPPED_PROPERTIES = frozenset(
    {"N", "FN", "ORG", "EMAIL", "TEL", "ADR", "BDAY", "X-ANNIVERSARY", "NOTE",
     "CATEGORIES", "X-CHILD", "IMPP", "PHOTO", "X-BLUESYNC-EAS-BODYHTML"}
    | {prop for prop, _, _ in SIMPLE})

KEPT_EMAIL = "X-BLUESYNC-EAS-CONTACTS-EMAIL{}ADDRESS"


# ---------------------------------------------------------------------------
# Dates

def _date_from_device(value: str | None, tz: tzinfo | None) -> date | None:
    if not value or not value.strip():
        return None
    return _eas.device_date(_eas.parse_datetime(value), tz)


def date_for_device(day: date, *, tz: tzinfo | None = None, family: str | None = None) -> str:
    """A stored date as the dateTime a device family reads back as that day."""
    if family == ANDROID:
        return _eas.iso(datetime.combine(day, time(0), _eas.UTC))
    if tz is None:
        return _eas.iso(datetime.combine(day, time(12), _eas.UTC))
    return _eas.iso(datetime.combine(day, time(12), tz))


def _parse_vcard_date(value: str) -> date | None:
    value = value.strip()
    found = re.match(r"^(\d{4})-?(\d{2})-?(\d{2})", value)
    if not found:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# EAS -> vCard

def _add(card, name: str, value, **params):
    line = card.add(name.lower())
    line.value = value
    for key, param in params.items():
        if param:
            line.params[key.upper()] = list(param) if isinstance(param, (list, tuple)) else [param]
    return line


_ADDRESS = re.compile(r"^\s*(?:\"?([^\"<]*?)\"?\s*)?<([^<>\s]+@[^<>\s]+)>\s*$")


def _bare_address(value: str) -> str:
    found = _ADDRESS.match(value)
    return found.group(2) if found else value.strip()


def _picture(value: str) -> bytes:
    compact = "".join(value.split())
    if len(compact) > PICTURE_LIMIT:
        raise ConversionError(f"Picture is {len(compact)} bytes of base64, over 48 KB")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ConversionError("Picture is not base64") from None


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[:4] == b"GIF8":
        return "GIF"
    return "JPEG"


def _display_name(given: str, middle: str, family: str, prefix: str, suffix: str,
                  company: str, email: str) -> str:
    name = " ".join(part for part in (prefix, given, middle, family, suffix) if part)
    return name or company or email


def _build(data: etree._Element, version: tuple[int, int], tz: tzinfo | None,
           uid: str | None):
    card = vobject.vCard()
    get = lambda page, name: text(data, page, name)          # noqa: E731
    names = {key: get(CONTACTS, element) or "" for key, element in (
        ("family", "LastName"), ("given", "FirstName"), ("additional", "MiddleName"),
        ("prefix", "Title"), ("suffix", "Suffix"))}
    company = get(CONTACTS, "CompanyName") or ""
    department = get(CONTACTS, "Department")
    emails = [get(CONTACTS, f"Email{n}Address") for n in (1, 2, 3)]
    first_email = next((_bare_address(e) for e in emails if e), "")
    _add(card, "N", vobject.vcard.Name(**names))
    _add(card, "FN", _display_name(names["given"], names["additional"], names["family"],
                                   names["prefix"], names["suffix"], company, first_email))
    if company or department is not None:
        _add(card, "ORG", [company] + ([department] if department else []))
    for prop, page, element in SIMPLE:
        value = get(page, element)
        if value:
            _add(card, prop, value)
    preferred = True
    for number, value in enumerate(emails, start=1):
        if not value:
            continue
        bare = _bare_address(value)
        types = ["INTERNET"] + (["pref"] if preferred else [])
        line = _add(card, "EMAIL", bare, type=types)
        line.params["X-EAS-SLOT"] = [str(number)]
        preferred = False
        if bare != value.strip():
            _add(card, KEPT_EMAIL.format(number), value)
    for page, element, types, _ in PHONES:
        value = get(page, element)
        if value:
            _add(card, "TEL", value, type=list(types) + (["VOICE"] if types in (("HOME",), ("WORK",)) else []))
    for kind, vtype in ADDRESSES:
        parts = {part: get(CONTACTS, f"{kind}Address{part}") for part in
                 ("Street", "City", "State", "PostalCode", "Country")}
        if any(parts.values()):
            _add(card, "ADR", vobject.vcard.Address(
                street=parts["Street"] or "", city=parts["City"] or "",
                region=parts["State"] or "", code=parts["PostalCode"] or "",
                country=parts["Country"] or ""), type=[vtype])
    for prop, element in (("BDAY", "Birthday"), ("X-ANNIVERSARY", "Anniversary")):
        day = _date_from_device(get(CONTACTS, element), tz)
        if day is not None:
            _add(card, prop, day.isoformat())
    for index in ("", "2", "3"):
        value = get(CONTACTS2, f"IMAddress{index}")
        if value:
            _add(card, "IMPP", value)
    categories = _eas.find(data, CONTACTS, "Categories")
    if categories is not None and len(categories):
        _add(card, "CATEGORIES", [c.text or "" for c in categories])
    children = _eas.find(data, CONTACTS, "Children")
    if children is not None:
        for child in children:
            if child.text:
                _add(card, "X-CHILD", child.text)
    picture = get(CONTACTS, "Picture")
    if picture:
        photo = _picture(picture)
        line = _add(card, "PHOTO", photo, encoding="b", type=_image_type(photo))
        line.encoding_param = "b"
    body = _eas.read_body(data)
    if body is not None:
        _add(card, "NOTE", body.text)
        if body.html is not None:
            _add(card, "X-BLUESYNC-EAS-BODYHTML", body.html)
    for element in _eas.unmapped(data, _MAPPED):
        name = _eas.kept_name(element)
        if name is None:
            continue
        value, is_xml = _eas.kept_value(element)
        _add(card, name, value, **({"x_format": "XML"} if is_xml else {}))
    _add(card, "UID", uid or str(uuid.uuid4()))
    _add(card, "PRODID", "-//bluesync//bluesync EAS server//EN")
    return card


def from_eas(data: etree._Element, version: str, *, tz: tzinfo | None = None,
             uid: str | None = None) -> tuple[bytes, dict]:
    """
    A device's contact ApplicationData as a stored vCard 3.0 and its
    columns. `tz` is the device's zone (birthdays); `uid` the vCard UID (a
    fresh UUID otherwise). ConversionError (status 6) for a bad Picture or
    date.
    """
    v = _eas.version_tuple(version)
    card = _build(data, v, tz, uid)
    stored = card.serialize().encode("utf-8")
    return stored, columns(stored)


# ---------------------------------------------------------------------------
# vCard -> EAS

def _parse(stored: bytes | str):
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", errors="replace")
    try:
        card = vobject.readOne(stored, ignoreUnreadable=True)
    except Exception as error:              # vobject raises many kinds
        raise ConversionError(f"not a vCard: {error}") from None
    if card.name.upper() != "VCARD":
        raise ConversionError("not a VCARD")
    return card


def _lines(card, name: str) -> list:
    return list(card.contents.get(name.lower(), []))


def _types(line) -> set[str]:
    found = set()
    for value in line.params.get("TYPE", []):
        for part in str(value).split(","):
            found.add(part.strip().upper())
    return found - {"VOICE", "PREF", "INTERNET", ""}


def _pref(line) -> bool:
    types = {str(t).upper() for v in line.params.get("TYPE", []) for t in str(v).split(",")}
    return "PREF" in types or bool(line.params.get("PREF"))


def _slot(line) -> int:
    value = line.params.get("X-EAS-SLOT", ["9"])[0]
    return int(value) if str(value).isdigit() else 9


def _text_value(line) -> str:
    value = line.value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _classify_phones(card) -> dict[str, tuple[str, object]]:
    """EAS element -> (number, vCard line) for the TEL lines EAS can carry."""
    lines = _lines(card, "TEL")
    taken: dict[str, tuple[str, object]] = {}
    used: set[int] = set()

    def claim(element_key: str, index: int) -> None:
        taken[element_key] = (_text_value(lines[index]).strip(), lines[index])
        used.add(index)

    # Exact type matches first, in file order (rank by position).
    for page, element, types, rank in PHONES:
        matches = [i for i, line in enumerate(lines)
                   if i not in used and _types(line) == set(types)]
        if rank < len(matches) + rank and matches:
            claim(f"{{{page}}}{element}", matches[0])
    # Looser matches: mobile synonyms, faxes and plain numbers.
    loose = (
        (("CELL", "IPHONE", "MOBILE"), f"{{{CONTACTS}}}MobilePhoneNumber"),
        (("FAX",), f"{{{CONTACTS}}}BusinessFaxNumber"),
        (("FAX",), f"{{{CONTACTS}}}HomeFaxNumber"),
        (("WORK",), f"{{{CONTACTS}}}BusinessPhoneNumber"),
        (("WORK",), f"{{{CONTACTS}}}Business2PhoneNumber"),
        (("HOME",), f"{{{CONTACTS}}}HomePhoneNumber"),
        (("HOME",), f"{{{CONTACTS}}}Home2PhoneNumber"),
        ((), f"{{{CONTACTS}}}HomePhoneNumber"),
        ((), f"{{{CONTACTS}}}Home2PhoneNumber"),
        ((), f"{{{CONTACTS}}}BusinessPhoneNumber"),
    )
    for wanted, key in loose:
        if key in taken:
            continue
        for i, line in enumerate(lines):
            if i in used:
                continue
            types = _types(line) - {"OTHER"}
            if (wanted and types & set(wanted)) or (not wanted and not types):
                claim(key, i)
                break
    return taken


def _classify_emails(card) -> list[object]:
    lines = _lines(card, "EMAIL")
    return sorted(lines, key=lambda line: (_slot(line), not _pref(line)))[:3]


def _classify_addresses(card) -> dict[str, object]:
    found: dict[str, object] = {}
    for line in _lines(card, "ADR"):
        types = _types(line)
        kind = ("Business" if "WORK" in types else "Home" if "HOME" in types
                else "Other")
        if kind not in found:
            found[kind] = line
        elif "Other" not in found:
            found["Other"] = line
    return found


def _kept(card) -> list[tuple[str, str, bool]]:
    found = []
    for line in card.getChildren():
        name = line.name.upper()
        if name.startswith(_eas.X_EAS):
            is_xml = str(line.params.get("X-FORMAT", [""])[0]).upper() == "XML"
            found.append((name, _text_value(line), is_xml))
    return found


def to_eas(stored: bytes | str, version: str, *, tz: tzinfo | None = None,
           family: str | None = None,
           body_preferences: Sequence[BodyPreference] = ()) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a stored vCard. Elements follow the
    Contacts code page's token order, AirSyncBase:Body where the 2.5
    Contacts:Body token stood, then Contacts2. `tz` and `family` choose
    how birthdays are sent (see the module docstring).
    """
    v = _eas.version_tuple(version)
    version_text = _eas.version_text(v)
    card = _parse(stored)
    values: dict[str, str | etree._Element] = {}

    def put(page: str, name: str, value) -> None:
        if value is not None and value != "":
            values[f"{{{page}}}{name}"] = value

    if "n" in card.contents:
        name = card.n.value
        if isinstance(name, vobject.vcard.Name):
            for part, element in (("family", "LastName"), ("given", "FirstName"),
                                  ("additional", "MiddleName"), ("prefix", "Title"),
                                  ("suffix", "Suffix")):
                value = getattr(name, part)
                put(CONTACTS, element, " ".join(value) if isinstance(value, list) else value)
    if "org" in card.contents:
        org = card.org.value if isinstance(card.org.value, list) else [str(card.org.value)]
        put(CONTACTS, "CompanyName", org[0] if org else "")
        if len(org) > 1:
            put(CONTACTS, "Department", org[1])
    for prop, page, element in SIMPLE:
        lines = _lines(card, prop)
        if lines:
            put(page, element, _text_value(lines[0]))
    kept = {name: (value, is_xml) for name, value, is_xml in _kept(card)}
    for number, line in enumerate(_classify_emails(card), start=1):
        bare = _text_value(line).strip()
        display = kept.get(KEPT_EMAIL.format(_slot(line)) if _slot(line) <= 3 else "", (None,))[0]
        value = display if display and _bare_address(display) == bare else bare
        put(CONTACTS, f"Email{number}Address", value)
    for key, (number, _) in _classify_phones(card).items():
        values[key] = number
    for kind, line in _classify_addresses(card).items():
        address = line.value
        if not isinstance(address, vobject.vcard.Address):
            continue

        def part(value) -> str:
            return "\n".join(value) if isinstance(value, list) else str(value or "")
        street = "\n".join(p for p in (part(address.box), part(address.extended),
                                       part(address.street)) if p)
        put(CONTACTS, f"{kind}AddressStreet", street)
        put(CONTACTS, f"{kind}AddressCity", part(address.city))
        put(CONTACTS, f"{kind}AddressState", part(address.region))
        put(CONTACTS, f"{kind}AddressPostalCode", part(address.code))
        put(CONTACTS, f"{kind}AddressCountry", part(address.country))
    for prop, element in (("BDAY", "Birthday"), ("X-ANNIVERSARY", "Anniversary")):
        lines = _lines(card, prop)
        if lines:
            day = _parse_vcard_date(_text_value(lines[0]))
            if day is not None:
                put(CONTACTS, element, date_for_device(day, tz=tz, family=family))
    for index, line in zip(("", "2", "3"), _lines(card, "IMPP")):
        put(CONTACTS2, f"IMAddress{index}", _text_value(line))
    cats = []
    for line in _lines(card, "CATEGORIES"):
        cats.extend(str(c) for c in (line.value if isinstance(line.value, list) else [line.value]) if c)
    if cats:
        container = etree.Element(f"{{{CONTACTS}}}Categories")
        for cat in cats:
            el(container, CONTACTS, "Category", cat)
        values[f"{{{CONTACTS}}}Categories"] = container
    children = [_text_value(line) for line in _lines(card, "X-CHILD")]
    if children:
        container = etree.Element(f"{{{CONTACTS}}}Children")
        for child in children:
            el(container, CONTACTS, "Child", child)
        values[f"{{{CONTACTS}}}Children"] = container
    photos = _lines(card, "PHOTO")
    if photos and isinstance(photos[0].value, bytes):
        encoded = base64.b64encode(photos[0].value).decode("ascii")
        if len(encoded) <= PICTURE_LIMIT:
            put(CONTACTS, "Picture", encoded)
    notes = _lines(card, "NOTE")
    html = _lines(card, "X-BLUESYNC-EAS-BODYHTML")
    body = None
    if notes or html:
        body = Body(_text_value(notes[0]) if notes else "",
                    _text_value(html[0]) if html else None)
    return _serve(values, body, kept, v, version_text, body_preferences)


_ORDER = [f"{{{page.uri}}}{tag.name}" for number in (1, 12)
          for page in [__import__("bluesync.wbxml", fromlist=["CODE_PAGES"]).CODE_PAGES[number]]
          for tag in sorted(page.tags, key=lambda t: t.token) if not tag.alias]


def _serve(values: dict, body: Body | None, kept: dict, v: tuple[int, int],
           version_text: str, body_preferences) -> etree._Element:
    data = _eas.application_data()
    for name, (value, is_xml) in kept.items():
        if name.startswith("X-BLUESYNC-EAS-CONTACTS-EMAIL") or name == "X-BLUESYNC-EAS-BODYHTML":
            continue
        element = _eas.restore(name, value, is_xml)
        if element is not None and element.tag not in values:
            values[element.tag] = element
    for tag in _ORDER:
        if tag == f"{{{CONTACTS}}}Body" and body is not None:
            _eas.body_element(data, body, body_preferences)
            continue
        value = values.pop(tag, None)
        if value is None:
            continue
        if isinstance(value, etree._Element):
            element = value
        else:
            element = etree.Element(tag)
            element.text = _eas.clean(value)
        if _eas.supported(element, version_text):
            data.append(element)
    if body is not None and data.find(f"{{{AIRSYNCBASE}}}Body") is None:
        _eas.body_element(data, body, body_preferences)
    for element in values.values():
        if isinstance(element, etree._Element) and _eas.supported(element, version_text):
            data.append(element)
    return data


# ---------------------------------------------------------------------------
# Columns and merge

def columns(stored: bytes | str) -> dict:
    """uid, file_as (FileAs, else "Last, First", else FN), display_name, email."""
    card = _parse(stored)
    display = _text_value(card.fn) if "fn" in card.contents else ""
    file_as = ""
    for name, value, _ in _kept(card):
        if name == "X-BLUESYNC-EAS-CONTACTS-FILEAS":
            file_as = value
    if not file_as and "n" in card.contents and isinstance(card.n.value, vobject.vcard.Name):
        family, given = str(card.n.value.family or ""), str(card.n.value.given or "")
        file_as = ", ".join(p for p in (family, given) if p)
    emails = _classify_emails(card)
    return {
        "uid": _text_value(card.uid) if "uid" in card.contents else "",
        "file_as": file_as or display,
        "display_name": display,
        "email": _text_value(emails[0]).strip().lower() if emails else "",
    }


def merge(stored: bytes | str, from_device: bytes | str) -> bytes:
    """
    A device's Change applied to a stored vCard: what EAS carries comes
    from `from_device` (converted by from_eas); TEL, EMAIL and ADR lines EAS
    could not carry, every other property (groups and labels included), and
    the stored UID stay.
    """
    old = _parse(stored)
    new = _parse(from_device)
    carried_phones = {id(line) for _, line in _classify_phones(old).values()}
    carried_emails = {id(line) for line in _classify_emails(old)}
    carried_addresses = {id(line) for line in _classify_addresses(old).values()}
    if "uid" in old.contents:
        new.contents.pop("uid", None)
    for line in list(old.getChildren()):
        name = line.name.upper()
        if name in ("VERSION", "PRODID"):
            continue
        if name == "TEL" and id(line) in carried_phones:
            continue
        if name == "EMAIL" and id(line) in carried_emails:
            continue
        if name == "ADR" and id(line) in carried_addresses:
            continue
        if name in MAPPED_PROPERTIES and name not in ("TEL", "EMAIL", "ADR"):
            continue
        if name.startswith(_eas.X_EAS):
            continue
        if name in new.contents and name not in ("TEL", "EMAIL", "ADR", "UID") and \
                name.lower() in new.contents:
            continue
        new.add(line)
    return new.serialize().encode("utf-8")

"""
The contacts content class: vCard 3.0 <-> EAS ApplicationData (MS-ASCNTC,
Contacts and Contacts2 code pages), read and written by
bluesync.items.vcard.

    from_eas(data, version, *, tz=None, uid=None) -> (vcf bytes, columns)
    to_eas(stored, version, *, tz=None, family=None, body_preferences=()) -> ApplicationData
    merge(stored, from_device) -> vcf bytes
    columns(stored) -> {"uid", "file_as", "display_name", "email"}

vCard 3.0 (RFC 2426): what iOS, macOS and most CardDAV servers and
gateways write and read; 2.1 and 4.0 imports are read too (vcard.py
holds any card in 3.0 form).

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
import functools
import re
import uuid
from datetime import date, datetime, time, tzinfo
from typing import Sequence

from lxml import etree

from bluesync.items import _eas
from bluesync.items.vcard import Card, Property, VCardError, escape, join_fields, parse_one
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

def _add(card: Card, name: str, value: str, **params) -> Property:
    """A text property; `params` (keyword x_eas_slot is X-EAS-SLOT) are lists or single values."""
    found = {key.upper().replace("_", "-"): list(param) if isinstance(param, (list, tuple)) else [param]
             for key, param in params.items() if param}
    return card.add(name, escape(value), found)


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
           uid: str | None) -> Card:
    card = Card()
    get = lambda page, name: text(data, page, name)          # noqa: E731
    names = {key: get(CONTACTS, element) or "" for key, element in (
        ("family", "LastName"), ("given", "FirstName"), ("additional", "MiddleName"),
        ("prefix", "Title"), ("suffix", "Suffix"))}
    company = get(CONTACTS, "CompanyName") or ""
    department = get(CONTACTS, "Department")
    emails = [get(CONTACTS, f"Email{n}Address") for n in (1, 2, 3)]
    first_email = next((_bare_address(e) for e in emails if e), "")
    card.add("N", join_fields([names[key] for key in ("family", "given", "additional", "prefix", "suffix")]))
    _add(card, "FN", _display_name(names["given"], names["additional"], names["family"],
                                   names["prefix"], names["suffix"], company, first_email))
    if company or department is not None:
        card.add("ORG", join_fields([company] + ([department] if department else [])))
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
        _add(card, "EMAIL", bare, type=types, x_eas_slot=str(number))
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
            card.add("ADR", join_fields(["", "", *(parts[p] or "" for p in (
                "Street", "City", "State", "PostalCode", "Country"))]), {"TYPE": [vtype]})
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
        card.add("CATEGORIES", ",".join(escape(c.text or "") for c in categories))
    children = _eas.find(data, CONTACTS, "Children")
    if children is not None:
        for child in children:
            if child.text:
                _add(card, "X-CHILD", child.text)
    picture = get(CONTACTS, "Picture")
    if picture:
        photo = _picture(picture)
        card.add("PHOTO", base64.b64encode(photo).decode("ascii"),
                 {"ENCODING": ["b"], "TYPE": [_image_type(photo)]})
    body = _eas.read_body(data)
    if body is not None:
        _add(card, "NOTE", body.text)
        if body.html is not None:
            _add(card, "X-BLUESYNC-EAS-BODYHTML", body.html)
    for element in _eas.unmapped(data, _MAPPED, _eas.CONTACTS_PAGES):
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
    return card.serialize().encode("utf-8"), _columns(card)


# ---------------------------------------------------------------------------
# vCard -> EAS

def _parse(stored: bytes | str | Card) -> Card:
    if isinstance(stored, Card):
        return stored
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", errors="replace")
    try:
        return parse_one(stored)
    except VCardError as error:
        raise ConversionError(f"not a vCard: {error}") from None


def _lines(card: Card, name: str) -> list[Property]:
    return card.all(name)


def _types(line: Property) -> set[str]:
    return line.types() - {"VOICE", "PREF", "INTERNET", ""}


def _pref(line: Property) -> bool:
    return "PREF" in line.types() or bool(line.params.get("PREF"))


def _slot(line: Property) -> int:
    value = line.param("X-EAS-SLOT") or "9"
    return int(value) if value.isdigit() else 9


def _text_value(line: Property) -> str:
    return line.text()


def _classify_phones(card) -> dict[str, tuple[str, object]]:
    """EAS element -> (number, vCard line) for the TEL lines EAS can carry."""
    lines = _lines(card, "TEL")
    if not lines:
        return {}
    kinds = [_types(line) for line in lines]
    taken: dict[str, tuple[str, object]] = {}
    used: set[int] = set()

    def claim(element_key: str, index: int) -> None:
        taken[element_key] = (_text_value(lines[index]).strip(), lines[index])
        used.add(index)

    # Exact type matches first, in file order (rank by position).
    for page, element, types, rank in PHONES:
        wanted = set(types)
        matches = [i for i, kind in enumerate(kinds) if i not in used and kind == wanted]
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
        for i, kind in enumerate(kinds):
            if i in used:
                continue
            types = kind - {"OTHER"}
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


def _kept(card: Card) -> list[tuple[str, str, bool]]:
    found = []
    for line in card.properties:
        if line.name.startswith(_eas.X_EAS):
            # X_FORMAT: what cards stored before vcard.py wrote.
            form = line.param("X-FORMAT") or line.param("X_FORMAT") or ""
            found.append((line.name, line.text(), form.upper() == "XML"))
    return found


def to_eas(stored: bytes | str | Card, version: str, *, tz: tzinfo | None = None,
           family: str | None = None,
           body_preferences: Sequence[BodyPreference] = ()) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a stored vCard. Elements follow the
    Contacts code page's token order, AirSyncBase:Body where the 2.5
    Contacts:Body token stood, then Contacts2. `tz` and `family` choose
    how birthdays are sent (see the module docstring). `stored` may be
    a card vcard.read already parsed (the import's check).
    """
    v = _eas.version_tuple(version)
    version_text = _eas.version_text(v)
    card = _parse(stored)
    values: dict[str, str | etree._Element] = {}

    def put(page: str, name: str, value) -> None:
        if value is not None and value != "":
            values[f"{{{page}}}{name}"] = value

    name = card.first("N")
    if name is not None:
        for parts, element in zip(name.fields(), ("LastName", "FirstName", "MiddleName", "Title", "Suffix")):
            put(CONTACTS, element, " ".join(p for p in parts if p))
    org_line = card.first("ORG")
    if org_line is not None:
        org = org_line.components()
        put(CONTACTS, "CompanyName", org[0])
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
        # box;extended;street;city;region;code;country, a field's list one line each.
        address = ["\n".join(p for p in parts if p) for parts in line.fields()]
        address += [""] * (7 - len(address))
        put(CONTACTS, f"{kind}AddressStreet", "\n".join(p for p in address[:3] if p))
        for part, element in zip(address[3:], ("City", "State", "PostalCode", "Country")):
            put(CONTACTS, f"{kind}Address{element}", part)
    for prop, element in (("BDAY", "Birthday"), ("X-ANNIVERSARY", "Anniversary")):
        lines = _lines(card, prop)
        if lines:
            day = _parse_vcard_date(_text_value(lines[0]))
            if day is not None:
                put(CONTACTS, element, date_for_device(day, tz=tz, family=family))
    for index, line in zip(("", "2", "3"), _lines(card, "IMPP")):
        put(CONTACTS2, f"IMAddress{index}", _text_value(line))
    cats = [c for line in _lines(card, "CATEGORIES") for c in line.values() if c]
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
    photo = card.first("PHOTO")
    picture = photo.binary() if photo is not None else None
    if picture is not None:
        encoded = base64.b64encode(picture).decode("ascii")
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


_POSITION = {tag: position for position, tag in enumerate(_ORDER)}
_BODY_POSITION = _POSITION[f"{{{CONTACTS}}}Body"]


def _serve(values: dict, body: Body | None, kept: dict, v: tuple[int, int],
           version_text: str, body_preferences) -> etree._Element:
    """The elements in code page token order; AirSyncBase:Body where Contacts:Body stood."""
    data = _eas.application_data()
    for name, (value, is_xml) in kept.items():
        if name.startswith("X-BLUESYNC-EAS-CONTACTS-EMAIL") or name == "X-BLUESYNC-EAS-BODYHTML":
            continue
        element = _eas.restore(name, value, is_xml, _eas.CONTACTS_PAGES)
        if element is not None and element.tag not in values:
            values[element.tag] = element
    values.pop(_ORDER[_BODY_POSITION], None)
    placed = [tag for tag in values if tag in _POSITION]
    placed.sort(key=_POSITION.__getitem__)
    for tag in placed:
        if body is not None and _POSITION[tag] > _BODY_POSITION:
            _eas.body_element(data, body, body_preferences)
            body = None
        value = values.pop(tag)
        if not _supported(tag, version_text):
            continue
        if isinstance(value, etree._Element):
            data.append(value)
        else:
            etree.SubElement(data, tag).text = _eas.clean(value)
    if body is not None:
        _eas.body_element(data, body, body_preferences)
    for element in values.values():
        if isinstance(element, etree._Element) and _eas.supported(element, version_text):
            data.append(element)
    return data


@functools.lru_cache(maxsize=None)
def _supported(tag: str, version_text: str) -> bool:
    """_eas.supported for a tag of _ORDER: asked a dozen times per contact served."""
    return _eas.supported(etree.Element(tag), version_text)


# ---------------------------------------------------------------------------
# Columns and merge

def columns(stored: bytes | str | Card) -> dict:
    """uid, file_as (FileAs, else "Last, First", else FN), display_name, email."""
    return _columns(_parse(stored))


def _columns(card: Card) -> dict:
    fn = card.first("FN")
    display = fn.text() if fn is not None else ""
    file_as = ""
    for name, value, _ in _kept(card):
        if name == "X-BLUESYNC-EAS-CONTACTS-FILEAS":
            file_as = value
    n = card.first("N")
    if not file_as and n is not None:
        fields = [" ".join(p for p in parts if p) for parts in n.fields()[:2]] + ["", ""]
        file_as = ", ".join(p for p in (fields[0], fields[1]) if p)
    emails = _classify_emails(card)
    uid = card.first("UID")
    return {
        "uid": uid.text() if uid is not None else "",
        "file_as": file_as or display,
        "display_name": display,
        "email": emails[0].text().strip().lower() if emails else "",
    }


def merge(stored: bytes | str, from_device: bytes | str) -> bytes:
    """
    A device's Change applied to a stored vCard: what EAS carries comes
    from `from_device` (converted by from_eas); TEL, EMAIL and ADR lines EAS
    could not carry, every other property (groups and labels included), and
    the stored UID stay, written as they were read.
    """
    old = _parse(stored)
    new = _parse(from_device)
    carried = {id(line) for _, line in _classify_phones(old).values()}
    carried |= {id(line) for line in _classify_emails(old)}
    carried |= {id(line) for line in _classify_addresses(old).values()}
    if old.first("UID") is not None:
        new.remove("UID")
    for line in old.properties:
        name = line.name
        if name in ("VERSION", "PRODID") or id(line) in carried or name.startswith(_eas.X_EAS):
            continue
        if name in MAPPED_PROPERTIES and name not in ("TEL", "EMAIL", "ADR"):
            continue
        new.append(line)
    return new.serialize().encode("utf-8")

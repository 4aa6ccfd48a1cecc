"""
vCard text <-> a small model of cards and properties: what contacts.py
converts to EAS and back, and what the import reads.

    read(text, strict=True) -> iterator of Card or VCardError, one per card
    parse_one(text, strict=False) -> Card
    decode(data) -> str
    Card.serialize() -> vCard 3.0 text

Our own rather than a general library because a contact is read on every
Sync that sends it and 5,000 at a time by an import: a card is read in
tens of microseconds, and it is read lazily (a value is unescaped, split
or base64-decoded only when asked for).

Reading (RFC 6350 3.2, RFC 2426, vCard 2.1):

- lines end in CRLF, LF or CR; a line starting with a space or a tab
  continues the previous one (the one whitespace is dropped); blank lines
  are skipped;
- `group.NAME;PARAM=a,"b;c";BARE:value`: names upper-cased, groups kept,
  parameter names upper-cased and their values kept as written; a bare
  2.1 parameter is a TYPE (`TEL;WORK;VOICE:`) or, for QUOTED-PRINTABLE,
  BASE64, 7BIT and 8BIT, an ENCODING;
- 2.1 QUOTED-PRINTABLE values (soft line breaks `=` at the end of a line
  join the next line) are decoded with their CHARSET and held as 3.0
  text; 2.1 BASE64 values may continue on lines without the leading
  space; BASE64 becomes ENCODING=b. A 2.1 value's commas are literal, so
  they are held escaped. What is read is thus always in 3.0 form, and
  a 2.1 card's properties written back (a device's change merged into an
  imported card) are 3.0.
- values keep their escaping (`raw`); text() unescapes \\n \\N \\, \\; \\\\
  (and \\: and \\" that some writers send; any other backslash stays),
  fields() splits N / ADR / ORG on unescaped ';' and values() on
  unescaped ','.

Strict reading (the import) refuses a card with a line it cannot read,
naming the line; forgiving reading (stored cards, served to devices)
skips such a line, as a device would, so one bad line never hides a
contact.

Writing is vCard 3.0 as bluesync has always stored it: BEGIN, VERSION,
PRODID, UID, then the properties sorted by name (in their order within a
name), parameters sorted by name, lines folded at 75 octets without
splitting a UTF-8 sequence, except PHOTO, which is never folded (Apple's
Contacts mis-reads folded photos).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["Card", "Property", "VCardError", "decode", "escape", "join_fields", "parse_one", "read"]

FOLD_AT = 75                # octets, RFC 6350 3.2
_FIRST = {"VERSION": 0, "PRODID": 1, "UID": 2}
_BARE_ENCODINGS = {"QUOTED-PRINTABLE", "BASE64", "7BIT", "8BIT"}
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_GROUP = re.compile(r"[A-Za-z0-9_.-]+\Z")
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=\s]+\Z")
_UNESCAPES = {"n": "\n", "N": "\n", "\\": "\\", ",": ",", ";": ";", ":": ":", '"': '"'}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_COMMA_2_1 = re.compile(r"(?<!\\),")
_SPECIAL = re.compile(r"[\\;,\r\n]")


class VCardError(ValueError):
    """
    A card (or text outside any card) that cannot be read: `line` is
    where, `card_line` the card's BEGIN line (None for text outside
    cards), both counted from 1 in the text read.
    """

    def __init__(self, message: str, line: int, card_line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.card_line = card_line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


# ---------------------------------------------------------------------------
# Values

def escape(text: str) -> str:
    """A text value as a vCard 3.0 value (RFC 2426 5: \\\\ \\; \\, \\n)."""
    if _SPECIAL.search(text) is None:
        return text
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), raw)


def join_fields(fields) -> str:
    """N, ADR or ORG from its fields, each a text or a list of texts (joined by ',')."""
    return ";".join(",".join(escape(v) for v in f) if isinstance(f, (list, tuple)) else escape(f)
                    for f in fields)


def _split(raw: str, separator: str) -> list[str]:
    """`raw` cut on the separators no backslash escapes, still escaped."""
    if "\\" not in raw:
        return raw.split(separator)
    parts, current, i, n = [], [], 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            current.append(raw[i:i + 2])
            i += 2
            continue
        if c == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


# ---------------------------------------------------------------------------
# The model

@dataclass(slots=True, eq=False)
class Property:
    """
    One content line. `raw` is the value as vCard 3.0 text, still
    escaped; `params` maps upper-case names to the values as written.
    """

    name: str
    raw: str
    params: dict[str, list[str]] = field(default_factory=dict)
    group: str | None = None
    line: int = 0

    def text(self) -> str:
        """The value as text, unescaped."""
        return unescape(self.raw)

    def values(self) -> list[str]:
        """A list value (CATEGORIES, NICKNAME): cut on unescaped commas."""
        return [unescape(part) for part in _split(self.raw, ",")]

    def fields(self) -> list[list[str]]:
        """A structured value (N, ADR): its ';' fields, each cut on ','."""
        return [[unescape(part) for part in _split(f, ",")] for f in _split(self.raw, ";")]

    def components(self) -> list[str]:
        """ORG: its ';' fields, commas kept (they are never lists there)."""
        return [unescape(f) for f in _split(self.raw, ";")]

    def param(self, name: str) -> str | None:
        found = self.params.get(name)
        return found[0] if found else None

    def types(self) -> set[str]:
        """The TYPE values, upper-case, comma lists (2.1, 3.0, 4.0 forms) cut."""
        found = self.params.get("TYPE")
        if not found:
            return set()
        return {part.strip().upper() for value in found for part in value.split(",")}

    def binary(self, *, strict: bool = False) -> bytes | None:
        """
        An inline binary value (ENCODING=b, or a 4.0 data: URI with
        ;base64), None for anything else. Undecodable base64 is None, or
        ValueError when `strict`.
        """
        raw = self.raw
        encoding = (self.param("ENCODING") or "").upper()
        if encoding not in ("B", "BASE64"):
            if not raw[:5].lower() == "data:":
                return None
            head, comma, raw = raw.partition(",")
            if not comma or not head.lower().endswith(";base64"):
                return None
        compact = "".join(raw.split())
        try:
            return base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            if strict:
                raise ValueError(f"{self.name} is not base64") from None
        try:
            return base64.b64decode(compact)
        except (binascii.Error, ValueError):
            return None

    def serialize(self) -> str:
        out = [f"{self.group}.{self.name}" if self.group else self.name]
        for key in sorted(self.params):
            values = self.params[key]
            if values:
                out.append(f";{key}=" + ",".join(_param_value(v) for v in values))
        out.append(":")
        out.append(self.raw)
        line = "".join(out)
        return line if self.name == "PHOTO" else _fold(line)


def _param_value(value: str) -> str:
    value = value.replace('"', "")
    if "," in value or ";" in value or ":" in value:
        return f'"{value}"'
    return value


def _fold(line: str) -> str:
    if len(line) <= FOLD_AT and line.isascii():
        return line
    encoded = line.encode("utf-8")
    if len(encoded) <= FOLD_AT:
        return line
    pieces, start, limit = [], 0, FOLD_AT
    while len(encoded) - start > limit:
        end = start + limit
        while encoded[end] & 0xC0 == 0x80:      # inside a UTF-8 sequence
            end -= 1
        pieces.append(encoded[start:end])
        start, limit = end, FOLD_AT - 1         # continuations start with a space
    pieces.append(encoded[start:])
    return b"\r\n ".join(pieces).decode("utf-8")


@dataclass(slots=True, eq=False)
class Card:
    """
    A vCard: its properties in file order, `line` its BEGIN line and
    `source` its physical lines as read (what the import stores).
    """

    properties: list[Property] = field(default_factory=list)
    line: int = 1
    source: list[str] = field(default_factory=list)
    version: str = "3.0"
    _index: dict[str, list[Property]] | None = field(default=None, repr=False)

    def all(self, name: str) -> list[Property]:
        if self._index is None:
            index: dict[str, list[Property]] = {}
            for prop in self.properties:
                index.setdefault(prop.name, []).append(prop)
            self._index = index
        return self._index.get(name, [])

    def first(self, name: str) -> Property | None:
        found = self.all(name)
        return found[0] if found else None

    def add(self, name: str, raw: str, params: dict[str, list[str]] | None = None,
            group: str | None = None) -> Property:
        """Add a property whose value `raw` is already escaped (see escape, join_fields)."""
        prop = Property(name.upper(), raw, params or {}, group)
        self.append(prop)
        return prop

    def append(self, prop: Property) -> None:
        self.properties.append(prop)
        self._index = None

    def remove(self, name: str) -> None:
        self.properties = [p for p in self.properties if p.name != name]
        self._index = None

    def serialize(self) -> str:
        """The card as vCard 3.0 text, CRLF line ends."""
        props = [p for p in self.properties if p.name != "VERSION"]
        props.sort(key=lambda p: (_FIRST.get(p.name, 3), p.name.lower() if p.name not in _FIRST else ""))
        lines = ["BEGIN:VCARD", "VERSION:3.0"]
        lines.extend(p.serialize() for p in props)
        lines.append("END:VCARD\r\n")
        return "\r\n".join(lines)


# ---------------------------------------------------------------------------
# Reading

def decode(data: bytes) -> str:
    """
    A file's text: UTF-8 (with or without a byte order mark); lines that
    are not UTF-8 are read as Windows-1252, which is what Outlook and old
    phones write 2.1 cards in.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for line in data.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
    return "\n".join(lines)


def _is_begin(line: str) -> bool:
    return line[:1] in "Bb" and line.strip().upper() == "BEGIN:VCARD"


def _is_end(line: str) -> bool:
    return line[:1] in "Ee" and line.strip().upper() == "END:VCARD"


def read(text: str, *, strict: bool = True, first_line: int = 1) -> Iterator[Card | VCardError]:
    """
    The cards of a text, each a Card or the VCardError saying why it
    cannot be read; a run of text outside cards is one VCardError
    (card_line None). A broken card never stops the reading of the next.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = None            # index of the current card's BEGIN line
    stray = False
    for index, line in enumerate(lines):
        if start is None:
            if _is_begin(line):
                start, stray = index, False
            elif line.strip() and not stray:
                stray = True
                yield VCardError("text outside BEGIN:VCARD/END:VCARD", index + first_line)
            continue
        if _is_begin(line):
            yield VCardError("no END:VCARD before the next card", start + first_line, start + first_line)
            start = index
        elif _is_end(line):
            try:
                yield _card(lines, start, index, strict, first_line)
            except VCardError as error:
                yield error
            start = None
    if start is not None:
        yield VCardError("no END:VCARD", start + first_line, start + first_line)


def parse_one(text: str, *, strict: bool = False) -> Card:
    """
    The first card of a text (a stored contact).

    @raise VCardError: there is no card, or (when `strict`) it is broken.
    """
    for found in read(text, strict=strict):
        if isinstance(found, Card):
            return found
        if found.card_line is not None:
            raise found
    raise VCardError("no BEGIN:VCARD", 1)


def _card(lines: list[str], start: int, end: int, strict: bool, first_line: int) -> Card:
    """The card between lines[start] (BEGIN) and lines[end] (END)."""
    card = Card(line=start + first_line, source=lines[start:end + 1])
    card_line = start + first_line
    logical: list[tuple[int, str]] = []
    current: list[str] | None = None
    number = 0
    for index in range(start + 1, end):
        line = lines[index]
        if current is not None:
            if line[:1] in (" ", "\t"):
                current.append(line[1:])
                continue
            last = current[-1]
            if last[-1:] == "=" and _quoted_printable(current[0]):
                current[-1] = last[:-1]         # a soft line break
                current.append(line)
                continue
            if ":" not in line and _BASE64_LINE.match(line) and _base64(current[0]):
                current.append(line.strip())    # 2.1 base64 continued without a space
                continue
            logical.append((number, "".join(current) if len(current) > 1 else current[0]))
            current = None
        if not line or line.isspace():
            continue
        current, number = [line], index + first_line
    if current is not None:
        logical.append((number, "".join(current)))
    properties = card.properties
    for number, text in logical:
        try:
            properties.append(_property(text, number))
        except VCardError as error:
            if strict:
                error.card_line = card_line
                raise
    version = card.first("VERSION")
    card.version = version.raw.strip() if version is not None else "3.0"
    old = card.version.startswith(("2.", "1."))
    for prop in properties:
        if prop.params or old:
            try:
                _normalize(prop, old, strict)
            except VCardError as error:
                error.card_line = card_line
                raise
    if strict:
        for prop in card.properties:
            if (prop.param("ENCODING") or "").upper() == "B":
                try:
                    prop.binary(strict=True)
                except ValueError as error:
                    raise VCardError(str(error), prop.line, card_line) from None
    return card


def _quoted_printable(first: str) -> bool:
    return "QUOTED-PRINTABLE" in first[:first.find(":")].upper()


def _base64(first: str) -> bool:
    return "BASE64" in first[:first.find(":")].upper()


def _property(text: str, number: int) -> Property:
    colon = text.find(":")
    if colon < 0:
        raise VCardError(f"not a property (no ':'): {text[:40]!r}", number)
    if text.find('"', 0, colon) >= 0:
        head, value = _split_quoted(text, number)
    else:
        head, value = text[:colon], text[colon + 1:]
    params: dict[str, list[str]] = {}
    if ";" in head:
        parts = _split_params(head) if '"' in head else head.split(";")
        head = parts[0]
        for part in parts[1:]:
            key, equals, values = part.partition("=")
            key = key.strip().upper()
            if not equals:
                if not key:
                    continue
                if key in _BARE_ENCODINGS:
                    params.setdefault("ENCODING", []).append(key)
                else:
                    params.setdefault("TYPE", []).append(key)
                continue
            if not key:
                raise VCardError(f"a parameter without a name: {part!r}", number)
            items = [item.strip() for item in (_split_param_values(values) if '"' in values
                                               else values.split(","))]
            if any(items):
                params.setdefault(key, []).extend(item for item in items if item)
    if "." in head:
        group, _, name = head.strip().rpartition(".")
        if not _GROUP.match(group):
            raise VCardError(f"not a property name: {head[:40]!r}", number)
    else:
        group, name = None, head.strip()
    if not _NAME.match(name):
        raise VCardError(f"not a property name: {head[:40]!r}", number)
    return Property(name.upper(), value, params, group, number)


def _split_quoted(text: str, number: int) -> tuple[str, str]:
    """Name and parameters, value: cut at the first ':' outside quotes."""
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c == ":" and not quoted:
            return text[:i], text[i + 1:]
    raise VCardError("a quoted parameter value is not closed", number)


def _split_params(head: str) -> list[str]:
    parts, current, quoted = [], [], False
    for c in head:
        if c == '"':
            quoted = not quoted
            current.append(c)
        elif c == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def _split_param_values(values: str) -> list[str]:
    found, current, quoted = [], [], False
    for c in values:
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            found.append("".join(current))
            current = []
        else:
            current.append(c)
    found.append("".join(current))
    return found


def _normalize(prop: Property, old: bool, strict: bool) -> None:
    """
    A property in 3.0 form: QUOTED-PRINTABLE decoded, BASE64 as b, and
    for a 2.1 (`old`) card, commas escaped.
    """
    encodings = prop.params.get("ENCODING")
    if encodings:
        encoding = encodings[0].upper()
        if encoding == "QUOTED-PRINTABLE":
            charset = prop.param("CHARSET") or "utf-8"
            data = binascii.a2b_qp(prop.raw.encode("utf-8", errors="replace"))
            try:
                value = data.decode(charset)
            except LookupError:
                if strict:
                    raise VCardError(f"unknown CHARSET {charset!r}", prop.line) from None
                value = data.decode("utf-8", errors="replace")
            except UnicodeDecodeError:
                value = data.decode("cp1252", errors="replace")
            prop.params.pop("ENCODING")
            prop.params.pop("CHARSET", None)
            prop.raw = _as_3_0(value) if old else value.replace("\r\n", "\\n").replace("\n", "\\n")
            return
        if encoding == "BASE64":
            prop.params["ENCODING"] = ["b"]
            prop.raw = "".join(prop.raw.split())
            return
        if encoding == "B":
            if " " in prop.raw or "\t" in prop.raw:
                prop.raw = "".join(prop.raw.split())
            return
        if encoding in ("7BIT", "8BIT"):
            prop.params.pop("ENCODING")
    if old:
        prop.params.pop("CHARSET", None)
        prop.raw = _as_3_0(prop.raw)


def _as_3_0(value: str) -> str:
    """A 2.1 value as 3.0 text: its commas are literal, its line breaks real."""
    if "," in value:
        value = _COMMA_2_1.sub(r"\\,", value)
    if "\n" in value or "\r" in value:
        value = value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return value

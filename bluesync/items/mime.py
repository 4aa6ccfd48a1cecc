"""
MIME walking for stored RFC 5322 messages: header decoding, body
extraction, the attachment walk, and the text form of a raw message.

Everything here tolerates ugly mail. Messages are parsed with the standard
library's bytes parser and the compat32 policy, which never raises on bad
headers; header values are then decoded by hand (raw 8-bit bytes, RFC 2047
encoded words with bad padding, unknown charsets) so that no malformed input
can end in an exception.

The part walk is the contract behind attachment FileReferences: parts are
numbered in depth-first pre-order starting with the message itself as 0,
descending into multipart/* containers only (an attached message/rfc822 is
one part). A FileReference names an attachment by that number, so the
numbering depends only on the stored bytes, never on how parts are
classified.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.generator
import email.parser
import email.utils
import io
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import Compat32, compat32

from bluesync.items.html2text import html_to_text, text_to_html

__all__ = [
    "Attachment", "MessageParts", "analyse", "attachment_list",
    "decode_bytes", "decode_header_value", "header_text", "mime_text",
    "parse_bytes", "part_bytes", "part_text", "walk_parts",
]

# Deeper nesting than this is treated as opaque leaves: no real mail needs
# it, and it bounds the recursion on hostile input.
MAX_DEPTH = 40

# The charset used for 8-bit bytes that are not UTF-8 and have no usable
# declared charset: Windows-1252 is what such mail almost always is, and it
# is a superset of the printable ISO-8859-1 range.
FALLBACK_CHARSET = "cp1252"

_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ksc5601": "cp949",
    "x-sjis": "cp932", "shift-jis": "cp932", "shift_jis": "cp932",
    "sjis": "cp932", "x-ms-cp932": "cp932", "windows-31j": "cp932",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "euc-cn": "gb18030", "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6", "windows-874": "cp874",
    "tis-620": "cp874", "iso-2022-jp": "iso2022_jp_ext",
    "big5-hkscs": "big5hkscs", "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman", "ansi_x3.4-1968": "ascii",
    "iso_8859-1": "latin-1", "iso-8859-1": "cp1252", "latin1": "cp1252",
    "us-ascii": "ascii", "ascii": "ascii", "utf8": "utf-8",
}
# Names that codecs knows but that are not charsets a mail can declare.
_NOT_CHARSETS = frozenset({
    "unicode_escape", "raw_unicode_escape", "punycode", "idna", "mbcs",
    "oem", "undefined", "charmap", "unicode_internal", "palmos",
})


def lookup_charset(name: str | None) -> str | None:
    """The Python codec name for a MIME charset name, or None if unusable."""
    if not name or not isinstance(name, str):
        return None
    name = name.strip().strip("\"'").lower()
    # RFC 2231 language suffix ("utf-8*en") in encoded words.
    name = name.split("*", 1)[0]
    if not name or len(name) > 40:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("-", "_") in _NOT_CHARSETS:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """
    Decode bytes in a declared charset, never raising: an unknown or absent
    charset tries UTF-8 and then Windows-1252; bytes the charset cannot
    decode become U+FFFD.
    """
    codec = lookup_charset(charset)
    if codec is None or codec == "ascii":
        if data.isascii():
            return data.decode("ascii")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            codec = FALLBACK_CHARSET
    try:
        return data.decode(codec, "replace")
    except Exception:
        return data.decode(FALLBACK_CHARSET, "replace")


def _raw_header_bytes(value: str) -> bytes:
    # The compat32 bytes parser stores non-ASCII header bytes as surrogates.
    return value.encode("ascii", "surrogateescape")


def decode_8bit(value: str, charset: str | None = None) -> str:
    """Turn a header value holding raw 8-bit bytes into text."""
    if value.isascii():
        return value
    try:
        data = _raw_header_bytes(value)
    except UnicodeEncodeError:
        # Already text (a header set from Python code, not parsed bytes).
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if lookup_charset(charset) in (None, "ascii", "utf-8"):
            charset = None
        return decode_bytes(data, charset)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=", re.S)
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _decode_b(text: str) -> bytes:
    data = _B64_JUNK.sub(b"", text.encode("ascii", "ignore"))
    if len(data) % 4 == 1:
        data = data[:-1]
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


def _decode_q(text: str) -> bytes:
    try:
        return binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8", "replace")


def decode_rfc2047(value: str) -> str:
    """
    Decode RFC 2047 encoded words leniently: whitespace between adjacent
    encoded words is dropped, adjacent words in one charset are decoded
    together (a multi-byte character may be split across them), bad base64
    padding is repaired, and undecodable bytes become U+FFFD.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position:match.start()]
        if between and (pending_charset is None or between.strip()):
            flush()
            out.append(between)
        charset, encoding, text = match.groups()
        data = _decode_b(text) if encoding in "bB" else _decode_q(text)
        charset_key = charset.lower().split("*", 1)[0]
        if pending_charset is not None and pending_charset != charset_key:
            flush()
        pending_charset = charset_key
        pending.extend(data)
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def unfold(value: str) -> str:
    value = _FOLD.sub("", value)
    return value.replace("\r", " ").replace("\n", " ")


def raw_header(msg: Message, name: str) -> str | None:
    """The first value of a header as stored (unfolded, undecoded)."""
    wanted = name.lower()
    try:
        for key, value in msg.raw_items():
            if key.lower() == wanted and isinstance(value, str):
                return unfold(value)
    except Exception:
        return None
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    try:
        return [unfold(v) for k, v in msg.raw_items() if k.lower() == wanted and isinstance(v, str)]
    except Exception:
        return []


def decode_header_value(value: str, charset: str | None = None) -> str:
    """Raw header value -> display text (8-bit bytes, then RFC 2047)."""
    text = decode_rfc2047(decode_8bit(value, charset))
    return " ".join(_CONTROL.sub("", text).split())


def header_text(msg: Message, name: str) -> str:
    """A header decoded to text, "" when absent."""
    value = raw_header(msg, name)
    if value is None:
        return ""
    # The charset serves only raw 8-bit bytes (decode_8bit), and finding
    # it parses Content-Type again: an ASCII value does without.
    return decode_header_value(value, None if value.isascii() else content_charset(msg))


def content_charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return charset if isinstance(charset, str) else None


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def content_param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return value if isinstance(value, str) else None


def disposition(part: Message) -> str:
    value = raw_header(part, "Content-Disposition")
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def filename(part: Message) -> str:
    """The attachment's file name (RFC 2231, RFC 2047 and 8-bit tolerated)."""
    name = None
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        name = content_param(part, "name")
    if not name:
        return ""
    if not isinstance(name, str):
        return ""
    name = decode_header_value(name, content_charset(part))
    # Never let a path through.
    name = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name if name.strip(".") else ""


def parse_bytes(raw: bytes) -> Message:
    """Parse stored bytes; never raises (an empty message at worst)."""
    try:
        return email.parser.BytesParser(policy=compat32).parsebytes(raw)
    except Exception:
        return Message()


def is_container(part: Message) -> bool:
    try:
        return part.get_content_maintype() == "multipart" and part.is_multipart()
    except Exception:
        return False


def children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def walk_parts(msg: Message) -> list[tuple[int, Message, int]]:
    """
    All parts in depth-first pre-order as (index, part, depth), the message
    itself being index 0. Only multipart containers are descended into.
    """
    result: list[tuple[int, Message, int]] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        result.append((len(result), part, depth))
        if depth < MAX_DEPTH and is_container(part):
            for child in reversed(children(part)):
                stack.append((child, depth + 1))
    return result


def part_bytes(part: Message) -> bytes:
    """The decoded content of a leaf part (an attached message as bytes)."""
    try:
        if part.is_multipart():
            # message/rfc822, message/delivery-status and other message/*
            # types are parsed into sub-messages: serialise them back.
            out = io.BytesIO()
            for index, sub in enumerate(children(part)):
                if index:
                    out.write(b"\n")
                generator = email.generator.BytesGenerator(out, mangle_from_=False, policy=compat32)
                generator.flatten(sub)
            return out.getvalue()
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            return data
    except Exception:
        pass
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("ascii", "surrogateescape")
    return b""


_NOT_BASE64_DATA = {ord(c): None for c in "= \t\r\n"}


def part_size(part: Message) -> int:
    """
    The decoded size of a leaf part, without decoding base64 (the common
    case for attachments): every 4 base64 characters are 3 bytes.
    """
    try:
        if not part.is_multipart():
            encoding = (raw_header(part, "Content-Transfer-Encoding") or "").strip().lower()
            payload = part.get_payload()
            if encoding == "base64" and isinstance(payload, str) and payload.isascii():
                return len(payload.translate(_NOT_BASE64_DATA)) * 3 // 4
    except Exception:
        pass
    return len(part_bytes(part))


def part_text(part: Message) -> str:
    """A text part decoded to str with "\\n" line ends."""
    text = decode_bytes(part_bytes(part), content_charset(part))
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------
# Structure: which parts make the body, which are attachments.

@dataclass(frozen=True)
class Attachment:
    """One attachment of a stored message, found by the part walk."""
    index: int                    # position in walk_parts(): the FileReference suffix
    filename: str                 # display name, never empty
    content_type: str
    data: bytes                   # decoded content (b"" from analyse(with_data=False))
    size: int                     # decoded size in bytes (exact for valid base64)
    content_id: str | None        # without the angle brackets
    content_location: str | None
    is_inline: bool
    method: int                   # AirSyncBase:Method: 1 normal, 5 embedded message


@dataclass
class _Segment:
    """A stretch of body: the plain and/or HTML alternatives of it."""
    plain: Message | None = None
    html: Message | None = None


@dataclass
class MessageParts:
    """The analysed structure of a message."""
    message: Message
    parts: list[tuple[int, Message, int]]
    segments: list[_Segment]
    calendar: Message | None      # the iMIP text/calendar part, if any
    calendar_method: str          # its METHOD, upper case ("" if none)
    attachments: list[Attachment]

    def has_plain(self) -> bool:
        return any(s.plain is not None for s in self.segments)

    def has_html(self) -> bool:
        return any(s.html is not None for s in self.segments)

    def plain_text(self) -> str:
        """The body as plain text; HTML-only stretches are converted."""
        pieces = []
        for segment in self.segments:
            if segment.plain is not None:
                pieces.append(part_text(segment.plain))
            elif segment.html is not None:
                pieces.append(html_to_text(part_text(segment.html)))
        if len(pieces) <= 1:
            return pieces[0] if pieces else ""
        return "\n".join(piece.rstrip("\n") for piece in pieces if piece.strip())

    def html_text(self) -> str:
        """The body as HTML; plain-only stretches are converted."""
        pieces = []
        for segment in self.segments:
            if segment.html is not None:
                pieces.append(part_text(segment.html))
            elif segment.plain is not None:
                pieces.append(text_to_html(part_text(segment.plain)))
        if not pieces:
            return ""
        if len(pieces) == 1:
            return pieces[0]
        return "\n<hr>\n".join(pieces)

    def body_charset(self) -> str | None:
        """The charset of the main body part (HTML preferred), if declared."""
        for segment in self.segments:
            part = segment.html or segment.plain
            if part is not None:
                return content_charset(part) or "us-ascii"
        return None


def _is_body_text(part: Message) -> bool:
    ctype = content_type(part)
    if ctype not in ("text/plain", "text/html"):
        return False
    if disposition(part) == "attachment":
        return False
    return not filename(part)


def _leaf_segments(part: Message) -> list[_Segment]:
    if part.get_content_maintype() == "multipart" and not part.is_multipart():
        # A multipart without a usable boundary: its text is all we have.
        return [_Segment(plain=part)]
    if _is_body_text(part):
        if content_type(part) == "text/html":
            return [_Segment(html=part)]
        return [_Segment(plain=part)]
    return []


def _segments(part: Message, depth: int) -> list[_Segment]:
    if depth >= MAX_DEPTH or not is_container(part):
        return _leaf_segments(part)
    subtype = part.get_content_subtype()
    kids = children(part)
    if not kids:
        return []
    if subtype == "alternative":
        merged = _Segment()
        for kid in kids:
            for segment in _segments(kid, depth + 1):
                if merged.plain is None and segment.plain is not None:
                    merged.plain = segment.plain
                if segment.html is not None:
                    merged.html = segment.html     # the last HTML is the richest
        return [merged] if merged.plain or merged.html else []
    if subtype == "related":
        root = kids[0]
        start = content_param(part, "start")
        if start:
            for kid in kids:
                if (raw_header(kid, "Content-ID") or "").strip() == start.strip():
                    root = kid
                    break
        return _segments(root, depth + 1)
    if subtype in ("signed", "report", "encrypted"):
        return _segments(kids[0], depth + 1)
    # mixed, parallel, digest, unknown: the first part is the body, later
    # inline text parts (footers, Apple Mail fragments) continue it.
    result = _segments(kids[0], depth + 1)
    for kid in kids[1:]:
        if is_container(kid) and kid.get_content_subtype() == "alternative":
            result.extend(_segments(kid, depth + 1))
        elif not is_container(kid) and _is_body_text(kid):
            result.extend(_leaf_segments(kid))
    return result


_ICAL_METHOD = re.compile(r"^METHOD[;:](?:[^:\r\n]*:)?\s*([A-Za-z-]+)", re.M | re.I)


def _calendar_method(part: Message) -> str:
    method = content_param(part, "method")
    if method:
        return method.strip().upper()
    text = part_text(part)
    text = re.sub(r"\n[ \t]", "", text)
    match = _ICAL_METHOD.search(text)
    return match.group(1).upper() if match else ""


_DEFAULT_EXTENSIONS = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
    "image/bmp": ".bmp", "image/tiff": ".tif", "image/webp": ".webp",
    "image/heic": ".heic", "application/pdf": ".pdf", "text/plain": ".txt",
    "text/html": ".html", "text/calendar": ".ics", "text/vcard": ".vcf",
    "text/x-vcard": ".vcf", "text/csv": ".csv", "message/rfc822": ".eml",
    "message/delivery-status": ".txt", "text/rfc822-headers": ".txt",
    "message/disposition-notification": ".txt",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m", "application/x-pkcs7-mime": ".p7m",
    "application/zip": ".zip", "application/ms-tnef": ".dat",
    "audio/mpeg": ".mp3", "audio/wav": ".wav", "video/mp4": ".mp4",
}
_DEFAULT_NAMES = {
    "application/pkcs7-signature": "smime.p7s",
    "application/x-pkcs7-signature": "smime.p7s",
    "application/pkcs7-mime": "smime.p7m",
    "application/x-pkcs7-mime": "smime.p7m",
    "message/delivery-status": "details.txt",
    "text/rfc822-headers": "headers.txt",
    "application/ms-tnef": "winmail.dat",
}


def _display_name(part: Message, ctype: str, index: int) -> str:
    name = filename(part)
    if name:
        return name
    if ctype in _DEFAULT_NAMES:
        return _DEFAULT_NAMES[ctype]
    if ctype == "message/rfc822":
        inner = children(part)
        subject = header_text(inner[0], "Subject") if inner else ""
        subject = re.sub(r'[\\/:*?"<>|]+', " ", subject).strip()[:100]
        return f"{subject or 'message'}.eml"
    return f"attachment{index}{_DEFAULT_EXTENSIONS.get(ctype, '.bin')}"


def _content_id(part: Message) -> str | None:
    value = raw_header(part, "Content-ID")
    if not value:
        return None
    value = decode_8bit(value).strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


def analyse(msg: Message, *, with_data: bool = True) -> MessageParts:
    """Find the body parts, the iMIP part and the attachments of a message."""
    parts = walk_parts(msg)
    segments = _segments(msg, 0)
    body_ids = {id(p) for s in segments for p in (s.plain, s.html) if p is not None}

    calendar = None
    calendar_method = ""
    for _, part, _ in parts:
        if is_container(part) or id(part) in body_ids:
            continue
        if content_type(part) == "text/calendar" and (
                disposition(part) != "attachment" or content_param(part, "method")):
            calendar = part
            calendar_method = _calendar_method(part)
            break
    hide_calendar = calendar is not None and calendar_method in (
        "REQUEST", "CANCEL", "REPLY", "COUNTER")

    related_ids = set()
    for _, part, _ in parts:
        if is_container(part) and part.get_content_subtype() == "related":
            related_ids.update(id(kid) for kid in children(part))

    html_source = None
    attachments = []
    for index, part, depth in parts:
        if (is_container(part) and depth < MAX_DEPTH) or id(part) in body_ids:
            continue
        if hide_calendar and part is calendar:
            continue
        ctype = content_type(part)
        data = part_bytes(part) if with_data else b""
        size = len(data) if with_data else part_size(part)
        cid = _content_id(part)
        location = raw_header(part, "Content-Location")
        location = decode_8bit(location).strip() or None if location else None
        inline = False
        if cid and disposition(part) != "attachment":
            if id(part) in related_ids:
                inline = True
            else:
                if html_source is None:
                    html_source = "\n".join(
                        part_text(s.html) for s in segments if s.html is not None)
                inline = ("cid:" + cid) in html_source
        attachments.append(Attachment(
            index=index,
            filename=_display_name(part, ctype, index),
            content_type=ctype,
            data=data,
            size=size,
            content_id=cid,
            content_location=location,
            is_inline=inline,
            method=5 if ctype == "message/rfc822" else 1,
        ))
    return MessageParts(msg, parts, segments, calendar, calendar_method, attachments)


def attachment_list(raw: bytes) -> list[Attachment]:
    """All attachments of a stored message, in walk order."""
    return analyse(parse_bytes(raw)).attachments


# ---------------------------------------------------------------------------
# The raw message as text, for AirSyncBase:Type 4 (MIME) bodies.

class _VerbatimHeaders(Compat32):
    """
    compat32 with headers written as they are held: our repaired header
    values are already text, and compat32 would otherwise wrap any non-ASCII
    value whole in one encoded word, destroying address and parameter
    syntax.
    """

    def fold(self, name: str, value: str) -> str:  # noqa: D102 - policy API
        value = str(value).replace("\r\n", "\n").replace("\r", "\n")
        value = value.replace("\n", self.linesep)
        return f"{name}: {value}{self.linesep}"


_VERBATIM = _VerbatimHeaders(linesep="\r\n")


def _has_8bit(value: object) -> bool:
    return isinstance(value, str) and not value.isascii()


def _repair_8bit(msg: Message) -> None:
    """Make a parsed message 7-bit clean in its bodies, text in its headers."""
    for part in msg.walk():
        items = list(part.raw_items())
        if any(_has_8bit(v) for _, v in items):
            charset = content_charset(part)
            for key in {k for k, _ in items}:
                del part[key]
            for key, value in items:
                part[key] = decode_8bit(value, charset) if _has_8bit(value) else value
        # Message has no public accessor for the undecoded payload; the
        # bytes parser keeps 8-bit bytes there as surrogates.
        if not part.is_multipart() and _has_8bit(part._payload):
            data = part.get_payload(decode=True)
            if not isinstance(data, bytes):
                data = b""
            del part["Content-Transfer-Encoding"]
            part.set_payload(base64.encodebytes(data).decode("ascii"))
            part["Content-Transfer-Encoding"] = "base64"


def mime_text(raw: bytes) -> str:
    """
    The stored message as a str for a MIME body (WBXML strings are UTF-8).

    A message that is valid UTF-8 (all 7-bit mail, and 8-bit UTF-8 mail) is
    returned byte for byte, so S/MIME signatures stay valid. Any other
    8-bit message cannot be carried unchanged in a UTF-8 string: it is
    re-serialised with every 8-bit body part re-encoded as base64 (content
    and charset preserved) and 8-bit header bytes decoded to text (UTF-8 if
    valid, else the part's charset or Windows-1252). If even that fails, the
    bytes are decoded as UTF-8 with U+FFFD for the bad bytes.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        msg = parse_bytes(raw)
        _repair_8bit(msg)
        out = io.StringIO()
        email.generator.Generator(out, mangle_from_=False, policy=_VERBATIM).flatten(msg)
        text = out.getvalue()
        text.encode("utf-8")
        return text
    except Exception:
        return raw.decode("utf-8", "replace")

"""
What a parsed message says about itself beyond its body: display forms of
address headers, dates, message ids, the conversation id and index,
importance, message class and Windows code page. Pure helpers for
L{bluesync.items.email.parse_message}; the rules are documented there.
"""

from __future__ import annotations

import base64
import binascii
import email.utils as _email_utils
import hashlib
import re
from datetime import datetime, timezone
from email.message import Message

from bluesync.items import mime

UTC = timezone.utc
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


_CPIDS = {
    "utf-8": 65001, "ascii": 20127, "utf-7": 65000, "utf-16": 1200,
    "utf-16-le": 1200, "utf-16-be": 1201, "latin-1": 28591,
    "cp1252": 1252, "cp1250": 1250, "cp1251": 1251, "cp1253": 1253,
    "cp1254": 1254, "cp1255": 1255, "cp1256": 1256, "cp1257": 1257,
    "cp1258": 1258, "iso8859-2": 28592, "iso8859-3": 28593,
    "iso8859-4": 28594, "iso8859-5": 28595, "iso8859-6": 28596,
    "iso8859-7": 28597, "iso8859-8": 28598, "iso8859-9": 28599,
    "iso8859-13": 28603, "iso8859-15": 28605, "cp932": 932,
    "shift_jis": 932, "euc_jp": 51932, "iso2022_jp": 50220,
    "iso2022_jp_ext": 50220, "gb18030": 54936, "gb2312": 936, "gbk": 936,
    "hz": 52936, "big5": 950, "big5hkscs": 950, "cp950": 950,
    "euc_kr": 51949, "cp949": 949, "iso2022_kr": 50225, "koi8-r": 20866,
    "koi8-u": 21866, "cp874": 874, "mac-roman": 10000, "cp866": 866,
    "cp850": 850, "cp437": 437,
}
# Names whose Windows code page differs from that of the codec we decode
# them with (we decode ISO-8859-1 as its superset Windows-1252, and so on).
_CPID_BY_NAME = {
    "iso-8859-1": 28591, "latin1": 28591, "gb2312": 936, "gbk": 936,
    "shift_jis": 932, "x-sjis": 932, "iso-8859-8-i": 38598,
    "tis-620": 874, "us-ascii": 20127, "windows-874": 874,
}


def internet_cpid(charset: str | None) -> int:
    """The Windows code page id for a MIME charset (UTF-8's when unknown)."""
    if not charset:
        return 65001
    name = charset.strip().strip("\"'").lower()
    if name in _CPID_BY_NAME:
        return _CPID_BY_NAME[name]
    codec = mime.lookup_charset(name)
    return _CPIDS.get(codec or "", 65001)


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date as aware UTC, or None if missing or implausible."""
    if not value:
        return None
    try:
        parsed = _email_utils.parsedate_to_datetime(value.strip())
    except Exception:
        return None
    if parsed is None:
        return None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if not 1970 <= parsed.year <= 9999:
        return None
    return parsed


def utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _quote_name(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def addresses(msg: Message, header: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, decoded."""
    values = mime.raw_headers(msg, header)
    if not values:
        return []
    # Only raw 8-bit bytes need the charset (see mime.header_text).
    charset = None if all(value.isascii() for value in values) else mime.content_charset(msg)
    texts = [mime.decode_8bit(value, charset) for value in values]
    try:
        pairs = _email_utils.getaddresses(texts)
    except Exception:
        pairs = []
    result = []
    for name, address in pairs:
        name = mime.decode_header_value(name or "", charset).strip().strip('"').strip()
        address = "".join((address or "").split())
        if not address and not name:
            continue
        result.append((name, address))
    return result


def display(pairs: list[tuple[str, str]]) -> str:
    """Addresses as Email:To shows them: '"Name" <addr>' or 'addr', comma-joined."""
    shown = []
    for name, address in pairs:
        if name and address and name != address:
            shown.append(f'"{_quote_name(name)}" <{address}>')
        else:
            shown.append(address or name)
    return ", ".join(shown)


_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw|rif|r|enc|odp|pd|ynt|res|vl|fs|"
    r"doorst|atb|bls|rv|πρθ|השב|回复|转发|答复)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE)


def thread_topic(subject: str) -> str:
    """The subject without reply and forward prefixes (Re:, Fwd:, AW:, ...)."""
    return _REPLY_PREFIX.sub("", subject).strip()


_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str) -> list[str]:
    """The <ids> of a Message-ID, In-Reply-To or References value."""
    ids = _MESSAGE_ID.findall(value)
    if ids:
        return ids
    # Some mailers forget the angle brackets.
    return [f"<{token}>" for token in value.split() if "@" in token]


def _thread_index(msg: Message) -> bytes | None:
    value = mime.raw_header(msg, "Thread-Index")
    if not value:
        return None
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if len(data) >= 22 else None


def filetime_header(moment: datetime) -> bytes:
    """The 5-byte conversation index header: FILETIME bits 63..24."""
    delta = moment - _FILETIME_EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return ((ticks >> 24) & 0xFF_FFFF_FFFF).to_bytes(5, "big")


def conversation(msg: Message, message_id: str, in_reply_to: str,
                 references: tuple[str, ...], topic: str,
                 date: datetime) -> tuple[bytes, bytes]:
    """
    (ConversationId, ConversationIndex). The id is the MD5 of the root
    Message-ID (first References id, else In-Reply-To, else Message-ID),
    else the Thread-Index GUID, else the MD5 of the normalised topic. The
    index is Thread-Index's time bytes and response levels, else the
    5-byte FILETIME header of the date.
    """
    thread_index = _thread_index(msg)
    if thread_index is not None:
        levels = thread_index[22:]
        levels = levels[:len(levels) - len(levels) % 5]
        index = thread_index[1:6] + levels
    else:
        index = filetime_header(date)
    root = references[0] if references else in_reply_to or message_id
    if root:
        conversation_id = hashlib.md5(b"message-id:" + root.lower().encode("utf-8")).digest()
    elif thread_index is not None:
        conversation_id = thread_index[6:22]
    else:
        key = " ".join(topic.lower().split())
        conversation_id = hashlib.md5(b"topic:" + key.encode("utf-8")).digest()
    return conversation_id, index


def importance(msg: Message) -> int:
    """0 low, 1 normal, 2 high from Importance, X-Priority, X-MSMail-Priority, Priority."""
    value = mime.header_text(msg, "Importance").lower()
    if value in ("high", "urgent"):
        return 2
    if value == "low":
        return 0
    if value == "normal":
        return 1
    value = mime.header_text(msg, "X-Priority")
    match = re.match(r"\s*(\d)", value)
    if match:
        level = int(match.group(1))
        return 2 if level in (1, 2) else 0 if level in (4, 5) else 1
    value = mime.header_text(msg, "X-MSMail-Priority").lower()
    if value in ("high", "low"):
        return 2 if value == "high" else 0
    value = mime.header_text(msg, "Priority").lower()
    if value in ("urgent", "non-urgent"):
        return 2 if value == "urgent" else 0
    return 1


_ACTION = re.compile(r"^Action:\s*([A-Za-z-]+)", re.M | re.I)
_DISPOSITION = re.compile(r"^Disposition:[^;\n]*;\s*([A-Za-z-]+)", re.M | re.I)
_PARTSTAT = re.compile(r"PARTSTAT=([A-Za-z-]+)", re.I)
_SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_SMIME_SIGNATURES = ("application/pkcs7-signature", "application/x-pkcs7-signature")


def _report_class(msg: Message, parts: mime.MessageParts) -> str | None:
    report_type = (mime.content_param(msg, "report-type") or "").lower()
    for _, part, _ in parts.parts:
        ctype = mime.content_type(part)
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            text = mime.decode_bytes(mime.part_bytes(part))
            actions = {a.lower() for a in _ACTION.findall(text)}
            if not actions or "failed" in actions:
                return "REPORT.IPM.Note.NDR"
            if actions & {"delivered", "relayed", "expanded"}:
                return "REPORT.IPM.Note.DR"
            return None                       # only "delayed": not a report we map
        if ctype == "message/disposition-notification":
            text = mime.decode_bytes(mime.part_bytes(part))
            match = _DISPOSITION.search(text)
            if match and match.group(1).lower() in ("deleted", "denied"):
                return "REPORT.IPM.Note.IPNNRN"
            return "REPORT.IPM.Note.IPNRN"
    if report_type == "delivery-status":
        return "REPORT.IPM.Note.NDR"
    return None


def message_class(msg: Message, parts: mime.MessageParts) -> str:
    """The Email:MessageClass: S/MIME, reports, iMIP methods, else IPM.Note."""
    top = mime.content_type(msg)
    if top in _SMIME_TYPES:
        return "IPM.Note.SMIME"
    if top == "multipart/signed":
        protocol = (mime.content_param(msg, "protocol") or "").lower()
        if protocol in _SMIME_SIGNATURES:
            return "IPM.Note.SMIME.MultipartSigned"
    if top == "multipart/report":
        report = _report_class(msg, parts)
        if report:
            return report
    method = parts.calendar_method
    if method == "REQUEST":
        return "IPM.Schedule.Meeting.Request"
    if method == "CANCEL":
        return "IPM.Schedule.Meeting.Canceled"
    if method == "REPLY" and parts.calendar is not None:
        match = _PARTSTAT.search(mime.part_text(parts.calendar))
        status = match.group(1).upper() if match else ""
        if status == "ACCEPTED":
            return "IPM.Schedule.Meeting.Resp.Pos"
        if status == "DECLINED":
            return "IPM.Schedule.Meeting.Resp.Neg"
        return "IPM.Schedule.Meeting.Resp.Tent"
    return "IPM.Note"


def received_header_date(msg: Message) -> datetime | None:
    """The date of the newest Received header that has a usable one."""
    for value in mime.raw_headers(msg, "Received"):
        if ";" in value:
            parsed = parse_date(value.rsplit(";", 1)[1])
            if parsed is not None:
                return parsed
    return None

"""
The messages a phone sends, made ready for the world: pure functions, no
I/O, no reactor.

- L{prepare} checks and completes what the device wrote (SendMail, and
  the last step of SmartReply and SmartForward): the From must be one of
  the account's addresses (its display name is the device's business), a
  missing From, Date or Message-ID is added, and the recipients are read
  from To, Cc and Bcc.  It returns two forms: the one stored in Sent
  Items, and the one transmitted, without Bcc (RFC 5322 3.6.3).
- L{reply} and L{forward} build the outgoing message of SmartReply and
  SmartForward (MS-ASCMD 2.2.1.20, 2.2.1.19) from the device's message and
  the stored original: threading headers, and unless the device sent
  ReplaceMime (2.2.3.148) the quoted original text, and for a forward the
  original's attachments.
- L{delivery_report} writes the RFC 3464 non-delivery report the sender
  finds in their Inbox when a recipient fails for good.

Header fields the device wrote are kept byte for byte; only fields we add
or remove change.  When the body must change, it is regenerated with the
email package and only the content fields of the top-level header come
from that regeneration.
"""

from __future__ import annotations

import email.charset
import email.generator
import email.message
import email.utils
import html
import io
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from typing import Collection, Iterable

from bluesync.items import classify, mime
from bluesync.items.email import html_body, plain_body

__all__ = [
    "ComposeError", "ForgedSender", "InvalidMessage", "NoRecipients", "UnresolvedRecipient",
    "Outgoing", "Failure", "prepare", "reply", "forward", "reply_verb", "delivery_report",
    "REPLY", "REPLY_ALL", "FORWARD",
]

# MS-ASEMAIL 2.2.2.44 LastVerbExecuted.
REPLY, REPLY_ALL, FORWARD = 1, 2, 3

_CONTENT_FIELDS = frozenset({
    b"content-type", b"content-transfer-encoding", b"content-disposition", b"content-id",
    b"content-description", b"mime-version",
})
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_BODY_TAG = re.compile(r"<body\b[^>]*>(.*?)(?:</body\s*>|\Z)", re.I | re.S)
_BODY_END = re.compile(r"</body\s*>", re.I)
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class ComposeError(ValueError):
    """
    The device's message cannot be sent as it is.
    """


class InvalidMessage(ComposeError):
    """Not a MIME message at all (MS-ASCMD status 107 InvalidMIME)."""


class NoRecipients(ComposeError):
    """No To, Cc or Bcc address (status 119 MessageHasNoRecipient)."""


class UnresolvedRecipient(ComposeError):
    """A recipient that is not an address (status 116 MessageRecipientUnresolved)."""


class ForgedSender(ComposeError):
    """A From or Sender address the account does not own (status 130 AccessDenied)."""


@dataclass(frozen=True)
class Outgoing:
    stored: bytes                   # the Sent Items copy, with Bcc
    transmitted: bytes              # what every recipient receives, without Bcc
    sender: str                     # the envelope sender (MAIL FROM)
    recipients: tuple[str, ...]     # To, Cc and Bcc addresses, each once
    message_id: str
    message_id_given: bool          # False: we made it up


# ---------------------------------------------------------------------------
# Raw header fields

@dataclass
class _Raw:
    fields: list[bytes]     # each field with its continuation lines and line ends
    rest: bytes             # the empty line and the body
    newline: bytes

    def names(self) -> list[bytes]:
        return [_field_name(f) for f in self.fields]

    def has(self, name: bytes) -> bool:
        return name in self.names()

    def without(self, *names: bytes) -> list[bytes]:
        return [f for f in self.fields if _field_name(f) not in names]

    def field(self, name: str, value: str) -> bytes:
        return f"{name}: {value}".encode("utf-8") + self.newline

    def join(self, fields: Iterable[bytes]) -> bytes:
        return b"".join(fields) + self.rest


def _field_name(field: bytes) -> bytes:
    match = _FIELD_NAME.match(field)
    return match.group(1).lower() if match else b""


def _split(raw: bytes) -> _Raw:
    """
    The header fields and the rest.  A message must start with a header
    field; a line that is neither a field nor a continuation ends the
    header as a blank line would (the rest then keeps that line).
    """
    lines = raw.splitlines(keepends=True)
    if not lines or not _FIELD_NAME.match(lines[0]):
        raise InvalidMessage("the message does not start with a header field")
    newline = b"\r\n" if lines[0].endswith(b"\r\n") else b"\n"
    fields: list[bytes] = []
    index = 0
    for index, line in enumerate(lines):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
            continue
        if _FIELD_NAME.match(line):
            if not line.endswith((b"\n", b"\r")):
                line += newline
            fields.append(line)
            continue
        break
    else:
        index = len(lines)
    rest = b"".join(lines[index:])
    if not rest:
        rest = newline
    elif rest[:1] not in (b"\r", b"\n"):
        # No blank line before the body: add the one RFC 5322 requires.
        rest = newline + rest
    return _Raw(fields, rest, newline)


def _header_message(raw: _Raw) -> Message:
    """The header fields alone, parsed, for reading addresses and dates."""
    return mime.parse_bytes(b"".join(raw.fields) + raw.newline)


# ---------------------------------------------------------------------------
# SendMail

def prepare(raw: bytes, *, address: str, display_name: str, own_addresses: Collection[str],
            hostname: str, now: datetime) -> Outgoing:
    """
    Check and complete a message the account's device submits.

    @param address: the account's address, used for a missing From.
    @param own_addresses: every address the account may send as (its
        address and aliases), lower case.
    @raise ComposeError: one of its subclasses, naming what is wrong.
    """
    parsed = _split(raw)
    headers = _header_message(parsed)
    own = {a.lower() for a in own_addresses}
    added: list[bytes] = []

    senders = classify.addresses(headers, "From")
    if not senders and not parsed.has(b"from"):
        added.append(parsed.field("From", _format_address(display_name, address)))
        envelope = address
    else:
        addresses = [a for _, a in senders]
        if not addresses or any(a.lower() not in own for a in addresses):
            raise ForgedSender(f"From {', '.join(addresses) or '(unreadable)'} is not the account's")
        envelope = addresses[0].lower()
    for _, sender in classify.addresses(headers, "Sender"):
        if sender.lower() not in own:
            raise ForgedSender(f"Sender {sender} is not the account's")

    recipients = _recipients(headers)

    if not parsed.has(b"date"):
        added.append(parsed.field("Date", email.utils.format_datetime(_utc(now))))
    message_ids = classify.message_ids(mime.decode_8bit(mime.raw_header(headers, "Message-ID") or ""))
    if message_ids:
        message_id = message_ids[0]
    else:
        message_id = f"<{uuid.uuid4().hex}@{hostname}>"
        added.append(parsed.field("Message-ID", message_id))

    fields = added + parsed.fields
    stored = parsed.join(fields)
    transmitted = parsed.join(f for f in fields if _field_name(f) != b"bcc")
    return Outgoing(stored, transmitted, envelope, recipients, message_id, bool(message_ids))


def _recipients(headers: Message) -> tuple[str, ...]:
    found: dict[str, str] = {}
    for name in ("To", "Cc", "Bcc"):
        for display, address in classify.addresses(headers, name):
            if not address:
                # A group's name ("undisclosed-recipients:;") carries nobody.
                continue
            if not _is_address(address):
                raise UnresolvedRecipient(f"{name} {display or address!r} is not an address")
            found.setdefault(address.lower(), address)
    if not found:
        raise NoRecipients("no To, Cc or Bcc address")
    return tuple(found.values())


def _is_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    if not (at and local and domain):
        return False
    return not any(c.isspace() or c in '<>,;"' for c in address)


def _format_address(name: str, address: str) -> str:
    if not name:
        return address
    return email.utils.formataddr((name, address), charset="utf-8")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def reply_verb(outgoing: Outgoing, original: bytes, own_addresses: Collection[str]) -> int:
    """
    REPLY_ALL when the reply goes to anyone the original was addressed to
    besides the account itself, else REPLY: SmartReply carries no flag,
    only the recipients tell Reply from Reply All.
    """
    headers = mime.parse_bytes(_split_or_empty(original))
    own = {a.lower() for a in own_addresses}
    others = {a.lower() for name in ("To", "Cc") for _, a in classify.addresses(headers, name)} - own
    return REPLY_ALL if others & {r.lower() for r in outgoing.recipients} else REPLY


def _split_or_empty(raw: bytes) -> bytes:
    try:
        parsed = _split(raw)
    except InvalidMessage:
        return b"\r\n"
    return b"".join(parsed.fields) + parsed.newline


# ---------------------------------------------------------------------------
# SmartReply and SmartForward

@dataclass(frozen=True)
class _Original:
    message: Message
    message_id: str
    references: tuple[str, ...]
    from_: str
    to: str
    cc: str
    date: str
    subject: str


def _original(raw: bytes) -> _Original:
    msg = mime.parse_bytes(raw)
    ids = classify.message_ids(mime.decode_8bit(mime.raw_header(msg, "Message-ID") or ""))
    references = classify.message_ids(" ".join(mime.decode_8bit(v) for v in mime.raw_headers(msg, "References")))
    if not references:
        references = classify.message_ids(mime.decode_8bit(mime.raw_header(msg, "In-Reply-To") or ""))[:1]
    return _Original(
        message=msg,
        message_id=ids[0] if ids else "",
        references=tuple(references),
        from_=_people(classify.addresses(msg, "From")),
        to=_people(classify.addresses(msg, "To")),
        cc=_people(classify.addresses(msg, "Cc")),
        date=mime.header_text(msg, "Date"),
        subject=mime.header_text(msg, "Subject"),
    )


def _people(pairs: list[tuple[str, str]]) -> str:
    """Addresses as people read them in a quote: Carol <carol@example.net>."""
    return ", ".join(f"{name} <{address}>" if name and address else name or address for name, address in pairs)


def _threading(parsed: _Raw, original: _Original, in_reply_to: bool) -> list[bytes]:
    """
    In-Reply-To and References (RFC 5322 3.6.4) when the device did not
    write them, so the reply joins the original's thread everywhere.
    """
    if not original.message_id:
        return []
    added = []
    if in_reply_to and not parsed.has(b"in-reply-to"):
        added.append(parsed.field("In-Reply-To", original.message_id))
    if not parsed.has(b"references"):
        chain = [r for r in original.references if r != original.message_id][-20:]
        added.append(parsed.field("References", " ".join([*chain, original.message_id])))
    return added


def reply(raw: bytes, original_raw: bytes, *, replace_mime: bool) -> bytes:
    """
    The SmartReply message: the device's message with the original's text
    quoted after it, unless C{replace_mime} (the device quoted it itself).
    """
    parsed = _split(raw)
    original = _original(original_raw)
    fields = _threading(parsed, original, in_reply_to=True) + parsed.fields
    if replace_mime:
        return parsed.join(fields)
    attribution = f"On {original.date or 'an earlier date'}, {original.from_ or 'the sender'} wrote:"
    plain = plain_body(original_raw)
    quoted_plain = "\n\n" + attribution + "\n" + "\n".join(
        ">" + (" " + line if line else "") for line in plain.rstrip("\n").split("\n")) + "\n"
    quoted_html = (
        f"<br><div>{html.escape(attribution)}</div>"
        '<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">'
        f"{_body_content(html_body(original_raw))}</blockquote>"
    )
    message = mime.parse_bytes(parsed.join(parsed.fields))
    _append_text(message, quoted_plain, quoted_html)
    return _with_body(parsed, fields, message)


def forward(raw: bytes, original_raw: bytes, *, replace_mime: bool) -> bytes:
    """
    The SmartForward message: the device's message, then unless
    C{replace_mime} the original's text under a forward header and the
    original's attachments (inline images too, which its HTML refers to).
    """
    parsed = _split(raw)
    original = _original(original_raw)
    fields = _threading(parsed, original, in_reply_to=False) + parsed.fields
    if replace_mime:
        return parsed.join(fields)
    summary = [("From", original.from_), ("Date", original.date), ("Subject", original.subject),
               ("To", original.to), ("Cc", original.cc)]
    summary = [(name, value) for name, value in summary if value]
    heading = "---------- Forwarded message ----------"
    forwarded_plain = "\n\n" + heading + "\n" + "".join(f"{n}: {v}\n" for n, v in summary) + "\n" + plain_body(
        original_raw)
    forwarded_html = (
        f"<br><div>{html.escape(heading)}<br>"
        + "".join(f"{html.escape(n)}: {html.escape(v)}<br>" for n, v in summary)
        + f"</div><br>{_body_content(html_body(original_raw))}"
    )
    message = mime.parse_bytes(parsed.join(parsed.fields))
    _append_text(message, forwarded_plain, forwarded_html)
    attachments = _attachment_parts(original.message)
    if attachments:
        _attach(message, attachments)
    return _with_body(parsed, fields, message)


def _body_content(markup: str) -> str:
    """What is inside <body>, so a quoted document nests in ours."""
    match = _BODY_TAG.search(markup)
    return match.group(1) if match else markup


def _append_text(message: Message, plain: str, markup: str) -> None:
    """
    Append to the message's body, in each form it has: text to the plain
    part, markup before the end of the HTML part.  A message with no text
    body (only attachments) gets a plain part first.
    """
    segments = mime.analyse(message, with_data=False).segments
    segment = segments[0] if segments else None
    if segment is None or (segment.plain is None and segment.html is None):
        _prepend_part(message, plain.lstrip("\n"))
        return
    if segment.plain is not None:
        _set_text(segment.plain, mime.part_text(segment.plain).rstrip("\n") + plain)
    if segment.html is not None:
        current = mime.part_text(segment.html)
        match = None
        for match in _BODY_END.finditer(current):
            pass
        if match is not None:
            updated = current[:match.start()] + markup + current[match.start():]
        else:
            updated = current + markup
        _set_text(segment.html, updated)


def _set_text(part: Message, text: str) -> None:
    """
    Replace a text part's content, in UTF-8 quoted-printable.  Its
    parameters go (the old charset; format=flowed, which our quoting would
    break).
    """
    content_type = mime.content_type(part)
    del part["Content-Transfer-Encoding"]
    del part["Content-Type"]
    part["Content-Type"] = content_type
    part.set_payload(text.replace("\n", "\r\n"), charset=_UTF8_QP)


def _content_fields(part: Message) -> list[tuple[str, str]]:
    return [(k, v) for k, v in part.items() if k.lower().encode() in _CONTENT_FIELDS and k.lower() != "mime-version"]


def _mixed(message: Message) -> Message:
    """
    Make the message multipart/mixed if it is not, moving its current
    content into the first part; return it.
    """
    if mime.is_container(message) and message.get_content_subtype() == "mixed":
        return message
    body = Message()
    for name, value in _content_fields(message):
        body[name] = value
    body.set_payload(message.get_payload())
    for name, _ in _content_fields(message):
        del message[name]
    message["Content-Type"] = "multipart/mixed"
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    message.set_payload([body])
    return message


def _prepend_part(message: Message, text: str) -> None:
    container = _mixed(message)
    part = Message()
    part["Content-Type"] = "text/plain"
    _set_text(part, text)
    container.get_payload().insert(0, part)


def _attach(message: Message, parts: list[Message]) -> None:
    container = _mixed(message)
    for part in parts:
        container.attach(part)


def _attachment_parts(original: Message) -> list[Message]:
    """
    The original's attachment parts, as they are (headers and encoding).
    A message that is one attachment (index 0) gives a part holding its
    content fields and body.
    """
    analysed = mime.analyse(original, with_data=False)
    by_index = {index: part for index, part, _ in analysed.parts}
    parts = []
    for attachment in analysed.attachments:
        part = by_index.get(attachment.index)
        if part is None:
            continue
        if attachment.index == 0:
            whole = Message()
            for name, value in _content_fields(part):
                whole[name] = value
            whole.set_payload(part.get_payload())
            part = whole
        parts.append(part)
    return parts


def _flatten(message: Message) -> bytes:
    out = io.BytesIO()
    generator = email.generator.BytesGenerator(out, mangle_from_=False, maxheaderlen=0)
    generator.flatten(message)
    return re.sub(rb"\r?\n", b"\r\n", out.getvalue())


def _with_body(parsed: _Raw, fields: list[bytes], message: Message) -> bytes:
    """
    The device's header fields (plus ours), with the content fields and
    the body of the regenerated C{message}.
    """
    generated = _split(_flatten(message))
    content = [f for f in generated.fields if _field_name(f) in _CONTENT_FIELDS - {b"mime-version"}]
    kept = [f for f in fields if _field_name(f) not in _CONTENT_FIELDS - {b"mime-version"}]
    if not any(_field_name(f) == b"mime-version" for f in kept):
        kept.append(parsed.field("MIME-Version", "1.0"))
    out = _Raw(kept + [_crlf(f) if parsed.newline == b"\r\n" else f for f in content], b"", parsed.newline)
    rest = generated.rest if parsed.newline == b"\r\n" else generated.rest.replace(b"\r\n", b"\n")
    return out.join(out.fields) + rest


def _crlf(field: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", field)


# ---------------------------------------------------------------------------
# Non-delivery reports

@dataclass(frozen=True)
class Failure:
    """One recipient that failed for good."""
    recipient: str
    status: str          # RFC 3463 enhanced code, e.g. "5.1.1"
    diagnostic: str      # e.g. "smtp; 550 5.1.1 No such user", or ""


def enhanced_status(code: int, text: str) -> str:
    """
    The RFC 3463 status of an SMTP reply: the one the relay wrote, else the
    generic one of its class.
    """
    match = _ENHANCED.match(text)
    if match and match.group(1) == str(code // 100):
        return ".".join(match.groups())
    return f"{code // 100}.0.0"


def delivery_report(*, original: bytes, failures: Iterable[Failure], recipient: str, hostname: str,
                    arrival: datetime, now: datetime, remote_mta: str = "",
                    include_limit: int = 256 * 1024) -> bytes:
    """
    A multipart/report; report-type=delivery-status message (RFC 3464,
    RFC 6522) telling C{recipient} (the sender of C{original}) which
    recipients it did not reach and why: a readable part, the
    machine-readable message/delivery-status part, and the original (whole
    when under C{include_limit} bytes, else its header as
    text/rfc822-headers).

    A recipient address that is not ASCII cannot be written in the
    ASCII-only message/delivery-status (RFC 3464 names it C{rfc822}, an
    ASCII type): such a report is the RFC 6533 form instead, its status part
    message/global-delivery-status with those addresses as C{utf-8;}
    (utf-8-addr-unitext), and the original returned as message/global (or
    message/global-headers) when its header is not ASCII either.  Reports
    for ASCII addresses keep the older form every mail client reads.
    """
    failures = list(failures)
    international = not all(failure.recipient.isascii() for failure in failures)
    original_headers = mime.parse_bytes(_split_or_empty(original))
    subject = mime.header_text(original_headers, "Subject")
    boundary = f"=_report_{uuid.uuid4().hex}"
    lines = [
        "Your message could not be delivered to "
        + ("this recipient:" if len(failures) == 1 else "these recipients:"),
        "",
    ]
    for failure in failures:
        reason = failure.diagnostic.partition(";")[2].strip() or _status_text(failure.status)
        lines.append(f"  {failure.recipient}: {reason}")
    lines += ["", f"Subject: {subject}" if subject else "", ""]
    readable = "\r\n".join(lines).rstrip("\r\n") + "\r\n"

    status = [f"Reporting-MTA: dns; {hostname}", f"Arrival-Date: {email.utils.format_datetime(_utc(arrival))}", ""]
    for failure in failures:
        status.append(f"Final-Recipient: {_address_field(failure.recipient)}")
        status.append("Action: failed")
        status.append(f"Status: {failure.status}")
        if remote_mta and failure.diagnostic.startswith("smtp;"):
            status.append(f"Remote-MTA: dns; {remote_mta}")
        if failure.diagnostic:
            status.append(f"Diagnostic-Code: {_one_line(failure.diagnostic)}")
        status.append(f"Last-Attempt-Date: {email.utils.format_datetime(_utc(now))}")
        status.append("")
    delivery_status = "\r\n".join(status)

    global_header = international and not _split_or_empty(original).isascii()
    if len(original) <= include_limit:
        returned_type = "message/global" if global_header else "message/rfc822"
        returned = re.sub(rb"\r?\n", b"\r\n", original)
    else:
        returned_type = "message/global-headers" if global_header else "text/rfc822-headers"
        returned = re.sub(rb"\r?\n", b"\r\n", _split_or_empty(original))
    # RFC 6522: report-type names the subtype of the status part.
    status_type = "global-delivery-status" if international else "delivery-status"

    header = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: {recipient}",
        f"Subject: Undeliverable: {_one_line(subject)}" if subject else "Subject: Undeliverable message",
        f"Date: {email.utils.format_datetime(_utc(now))}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type={status_type}; boundary="{boundary}"',
    ]
    body = [
        "",
        "This is a delivery status notification in MIME format.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        readable,
        f"--{boundary}",
        f"Content-Type: message/{status_type}",
        *(["Content-Transfer-Encoding: 8bit"] if international else []),
        "",
        delivery_status,
        f"--{boundary}",
        f"Content-Type: {returned_type}",
        "",
        "",
    ]
    head = "\r\n".join(header + body).encode("utf-8")
    return head + returned.rstrip(b"\r\n") + f"\r\n\r\n--{boundary}--\r\n".encode("ascii")


def _address_field(address: str) -> str:
    """
    An address as a Final-Recipient value: C{rfc822} when it is ASCII,
    else RFC 6533's C{utf-8} type in its utf-8-addr-unitext form (UTF-8
    kept, space, controls, "\\", "+" and "=" written as \\x{HEX}, so a
    reader can tell the encoding apart from the address).
    """
    if address.isascii():
        return f"rfc822; {address}"
    return "utf-8; " + "".join(
        f"\\x{{{ord(c):X}}}" if c.isascii() and (not c.isprintable() or c in " \\+=") else c
        for c in address)


def _one_line(text: str) -> str:
    return " ".join(text.split())


_STATUS_TEXT = {
    "1": "the address is not valid there",
    "2": "the mailbox cannot receive mail",
    "3": "the receiving mail system refused it",
    "4": "it could not be routed in time",
    "5": "the mail protocol exchange failed",
    "6": "its content was refused",
    "7": "it was refused by policy",
}


def _status_text(status: str) -> str:
    if status == "4.4.7":
        return "delivery was attempted for too long"
    return _STATUS_TEXT.get(status.split(".")[1] if status.count(".") == 2 else "", "delivery failed")

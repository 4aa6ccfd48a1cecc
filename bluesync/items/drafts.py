"""
Drafts (MS-ASEMAIL 16.0 and 16.1): what a device writes in a Sync Add or
Change of the Drafts folder <-> the stored RFC 5322 message.

A 16.x device composes a draft field by field (To, Cc, email2:Bcc,
Subject, Importance, airsyncbase:Body, and airsyncbase:Attachments with Add
and Delete children, MS-ASAIRS 2.2.2.2, 2.2.2.21), never as MIME.  The
server keeps it as a message like any other, so that serving it, fetching
its attachments and finally sending it use the same code as for mail.
Pure: no I/O, no reactor.

Decided here:

- The stored message has one shape: a single text/plain or text/html body
  part, and when there are attachments a multipart/mixed whose first part
  is that body and whose other parts are the attachments, in the order
  they were added.  The body is always there (empty if the device gave
  none), so it is part 1 and attachments are parts 2, 3, ... of the part
  walk of items/mime.py, which is what FileReferences count
  (FileReference = ServerId ":" part number).
- Each attachment a device adds carries an X-Bluesync-Attachment header
  naming the device and its ClientId, so a resent Change (its answer was
  lost) finds the attachment it already added and answers with the same
  FileReference instead of adding it twice.  The header is removed from
  the message that is sent (L{sendable}).
- Deleting an attachment renumbers the ones after it; L{Draft.renumbered}
  says so, and the caller then lets the device that made the change hear
  the whole draft again (the spec's Change response only maps the
  attachments just added).
- A Delete naming no attachment of the draft is ignored: after a resent
  Change it names one that is already gone.
- An absent element leaves the field as it is; an empty one clears it
  (16.x ghosting, MS-ASCMD 2.2.3.11).
- From is always the account's address and display name; Date is the time
  of the last save; Message-ID is set once and kept, as are In-Reply-To,
  References and any other header the message had.
"""

from __future__ import annotations

import base64
import email.charset
import email.generator
import email.header
import email.utils
import io
import mimetypes
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.policy import compat32
from lxml import etree

from bluesync import wbxml
from bluesync.items import classify, mime
from bluesync.items.email import AIRSYNC, AIRSYNCBASE, EMAIL, EMAIL2
from bluesync.items.email_changes import UNCHANGED

__all__ = [
    "UNCHANGED", "DraftError", "NewAttachment", "DraftEdit", "Sender", "Draft",
    "parse_edit", "build", "apply", "added_by", "sendable", "attachment_ids",
]

BODY_PLAIN, BODY_HTML = 1, 2
# MS-ASAIRS 2.2.2.31.1: Method of an attachment a client adds.
METHOD_NORMAL, METHOD_EMBEDDED, METHOD_OLE = 1, 5, 6

ATTACHMENT_HEADER = "X-Bluesync-Attachment"
MAX_CLIENT_ID = 64

_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
# Headers a draft's fields own: replaced on every save, never kept.
_MANAGED = frozenset({
    "from", "sender", "to", "cc", "bcc", "subject", "date", "importance", "x-priority",
    "x-msmail-priority", "priority", "mime-version", "content-type", "content-transfer-encoding",
    "content-disposition", "content-id", "content-description", "content-location",
})
_IMPORTANCE = {0: "low", 1: "normal", 2: "high"}
_POLICY = compat32.clone(linesep="\r\n")


class DraftError(ValueError):
    """
    The draft the device wrote cannot be stored (Sync Status 6 for it).
    """


@dataclass(frozen=True)
class NewAttachment:
    """An airsyncbase:Add (MS-ASAIRS 2.2.2.2)."""

    client_id: str
    display_name: str
    content: bytes
    method: int = METHOD_NORMAL
    content_type: str | None = None
    content_id: str | None = None
    content_location: str | None = None
    is_inline: bool = False


@dataclass(frozen=True)
class DraftEdit:
    """
    The draft fields of one Add or Change; UNCHANGED where the request
    said nothing.  C{body} is (AirSyncBase:Type, text).
    """

    to: object = UNCHANGED
    cc: object = UNCHANGED
    bcc: object = UNCHANGED
    subject: object = UNCHANGED
    importance: object = UNCHANGED
    body: object = UNCHANGED
    add: tuple[NewAttachment, ...] = ()
    delete: tuple[str, ...] = ()        # FileReferences

    @property
    def changes_content(self) -> bool:
        return bool(self.add or self.delete) or any(
            value is not UNCHANGED
            for value in (self.to, self.cc, self.bcc, self.subject, self.importance, self.body))


@dataclass(frozen=True)
class Sender:
    address: str
    display_name: str = ""


@dataclass(frozen=True)
class Draft:
    """
    A saved draft: the message bytes, the part number of each attachment
    added by this edit (keyed by the device's ClientId), and whether an
    attachment the draft already had got another part number.
    """

    raw: bytes
    attachments: dict[str, int]
    renumbered: bool = False


# ---------------------------------------------------------------------------
# Reading the request

def _child_text(element, namespace: str, name: str) -> str | None:
    found = element.find(f"{{{namespace}}}{name}")
    return None if found is None else (found.text or "")


def _body(element) -> tuple[int, str]:
    body_type = (_child_text(element, AIRSYNCBASE, "Type") or "").strip()
    if body_type not in ("1", "2"):
        # 3 (RTF) and 4 (MIME) are not how 16.x drafts are written.
        raise DraftError(f"draft body of Type {body_type or '(none)'}")
    return int(body_type), _child_text(element, AIRSYNCBASE, "Data") or ""


def _attachment(element) -> NewAttachment:
    client_id = (_child_text(element, AIRSYNCBASE, "ClientId") or "").strip()
    name = _child_text(element, AIRSYNCBASE, "DisplayName")
    method = (_child_text(element, AIRSYNCBASE, "Method") or "").strip()
    content = element.find(f"{{{AIRSYNCBASE}}}Content")
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        raise DraftError("attachment without a usable ClientId")
    if name is None or not name.strip():
        raise DraftError(f"attachment {client_id} without a DisplayName")
    if content is None:
        raise DraftError(f"attachment {client_id} without Content")
    if method not in (str(METHOD_NORMAL), str(METHOD_EMBEDDED), str(METHOD_OLE)):
        raise DraftError(f"attachment {client_id} with Method {method or '(none)'}")
    try:
        data = wbxml.opaque(content)
    except wbxml.WBXMLError as e:
        raise DraftError(str(e)) from None
    inline = (_child_text(element, AIRSYNCBASE, "IsInline") or "0").strip() == "1"
    content_id = (_child_text(element, AIRSYNCBASE, "ContentId") or "").strip().strip("<>") or None
    return NewAttachment(
        client_id=client_id,
        display_name=_one_line(name),
        content=data,
        method=int(method),
        content_type=(_child_text(element, AIRSYNCBASE, "ContentType") or "").strip().lower() or None,
        content_id=_one_line(content_id) if content_id else None,
        content_location=_one_line(_child_text(element, AIRSYNCBASE, "ContentLocation") or "") or None,
        is_inline=inline,
    )


def parse_edit(application_data) -> DraftEdit:
    """
    The draft fields of an airsync:ApplicationData element.  Read, Flag
    and Categories are item state, read by email_changes.client_change.

    @raise DraftError: an element is there but unusable.
    """
    if application_data is None:
        return DraftEdit()
    fields: dict = {}
    add: list[NewAttachment] = []
    delete: list[str] = []
    for element in application_data:
        tag = element.tag
        if tag == f"{{{EMAIL}}}To":
            fields["to"] = element.text or ""
        elif tag == f"{{{EMAIL}}}Cc":
            fields["cc"] = element.text or ""
        elif tag == f"{{{EMAIL2}}}Bcc":
            fields["bcc"] = element.text or ""
        elif tag == f"{{{EMAIL}}}Subject":
            fields["subject"] = element.text or ""
        elif tag == f"{{{EMAIL}}}Importance":
            value = (element.text or "").strip()
            if value not in ("0", "1", "2"):
                raise DraftError(f"Importance {value!r}")
            fields["importance"] = int(value)
        elif tag == f"{{{AIRSYNCBASE}}}Body":
            fields["body"] = _body(element)
        elif tag == f"{{{AIRSYNCBASE}}}Attachments":
            for child in element:
                if child.tag == f"{{{AIRSYNCBASE}}}Add":
                    add.append(_attachment(child))
                elif child.tag == f"{{{AIRSYNCBASE}}}Delete":
                    reference = (_child_text(child, AIRSYNCBASE, "FileReference") or "").strip()
                    if not reference:
                        raise DraftError("attachment Delete without a FileReference")
                    delete.append(reference)
    client_ids = [a.client_id for a in add]
    if len(set(client_ids)) != len(client_ids):
        raise DraftError("two attachments with one ClientId")
    return DraftEdit(**fields, add=tuple(add), delete=tuple(delete))


# ---------------------------------------------------------------------------
# Writing the message

# Part numbers in the one shape drafts are written in: the message is 0,
# the body 1, the attachments follow (items/mime.py walk_parts).
FIRST_ATTACHMENT = 2


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()


def _encoded(text: str) -> str:
    text = _one_line(text)
    if text.isascii():
        return text
    return email.header.Header(text, "utf-8").encode()


def _address_list(text: str) -> str:
    """
    The device's recipient string as an RFC 5322 address list (names
    RFC 2047 encoded).  EAS devices separate recipients with commas, some
    with semicolons.
    """
    pairs = email.utils.getaddresses([_one_line(text).replace(";", ",")])
    formatted = []
    for name, address in pairs:
        if not address:
            continue
        formatted.append(email.utils.formataddr((name, address), charset="utf-8"))
    return ", ".join(formatted)


def _content_type(attachment: NewAttachment) -> str:
    if attachment.method == METHOD_EMBEDDED:
        return "message/rfc822"
    if attachment.content_type and _TOKEN.match(attachment.content_type):
        return attachment.content_type
    guessed, _ = mimetypes.guess_type(attachment.display_name, strict=False)
    return guessed or "application/octet-stream"


def _filename_parameter(filename: str):
    return filename if filename.isascii() else ("utf-8", "", filename)


def _body_part(body_type: int, text: str) -> Message:
    part = Message()
    part["Content-Type"] = "text/html" if body_type == BODY_HTML else "text/plain"
    part.set_payload(text.replace("\r\n", "\n").replace("\r", "\n"), charset=_UTF8_QP)
    del part["MIME-Version"]
    return part


def _attachment_part(attachment: NewAttachment, origin: str) -> Message:
    part = Message()
    content_type = _content_type(attachment)
    part["Content-Type"] = content_type
    filename = _filename_parameter(attachment.display_name)
    if content_type != "message/rfc822":
        part.set_param("name", filename)
    part.add_header("Content-Disposition", "inline" if attachment.is_inline else "attachment", filename=filename)
    if attachment.content_id:
        part["Content-ID"] = f"<{attachment.content_id}>"
    if attachment.content_location:
        part["Content-Location"] = _encoded(attachment.content_location)
    part[ATTACHMENT_HEADER] = f"{origin}/{attachment.client_id}"
    if content_type == "message/rfc822":
        # RFC 2046 5.2.1: never base64; the message is a part of its own.
        part.set_payload([mime.parse_bytes(attachment.content)])
    else:
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(attachment.content).decode("ascii"))
    return part


def _kept_part(part: Message, found: mime.Attachment) -> Message:
    """
    An attachment the draft keeps, as it is stored (no decoding and
    encoding again), given a file name if it had none: in the draft's
    shape a nameless inline text part would be read as more body.
    """
    if not mime.filename(part):
        disposition = mime.disposition(part) or "attachment"
        del part["Content-Disposition"]
        part.add_header("Content-Disposition", disposition, filename=_filename_parameter(found.filename))
    return part


def _flatten(message: Message) -> bytes:
    out = io.BytesIO()
    email.generator.BytesGenerator(out, mangle_from_=False, policy=_POLICY).flatten(message)
    return out.getvalue()


def _write(headers: list[tuple[str, str]], body: tuple[int, str], attachments: list[Message]) -> bytes:
    """
    The draft's shape: the body part alone, or a multipart/mixed of the
    body part and the attachment parts, so attachment i (from 0) is part
    FIRST_ATTACHMENT + i.
    """
    message = Message()
    for name, value in headers:
        message[name] = value
    message["MIME-Version"] = "1.0"
    if attachments:
        message["Content-Type"] = "multipart/mixed"
        message.set_payload([_body_part(*body)] + attachments)
    else:
        part = _body_part(*body)
        for name, value in part.items():
            message[name] = value
        message.set_payload(part.get_payload())
    return _flatten(message)


def _field_headers(fields: dict, sender: Sender, now: datetime) -> list[tuple[str, str]]:
    headers = [
        ("From", email.utils.formataddr((sender.display_name, sender.address), charset="utf-8")),
        ("Date", email.utils.format_datetime(now.astimezone(timezone.utc))),
    ]
    for name, key in (("To", "to"), ("Cc", "cc"), ("Bcc", "bcc")):
        value = _address_list(fields.get(key) or "")
        if value:
            headers.append((name, value))
    if fields.get("subject"):
        headers.append(("Subject", _encoded(fields["subject"])))
    importance = fields.get("importance", 1)
    if importance != 1:
        headers.append(("Importance", _IMPORTANCE[importance]))
    return headers


def _given(edit: DraftEdit) -> dict:
    return {key: getattr(edit, key) for key in ("to", "cc", "bcc", "subject", "importance", "body")
            if getattr(edit, key) is not UNCHANGED}


def build(edit: DraftEdit, *, sender: Sender, now: datetime, hostname: str, origin: str) -> Draft:
    """
    The message of a new draft (a Sync Add).  C{origin} names the device
    (its attachments are tagged with it); C{hostname} completes the new
    Message-ID.
    """
    fields = _given(edit)
    headers = _field_headers(fields, sender, now)
    headers.insert(2, ("Message-ID", f"<{uuid.uuid4().hex}@{hostname}>"))
    raw = _write(headers, fields.get("body") or (BODY_PLAIN, ""), [_attachment_part(a, origin) for a in edit.add])
    return Draft(raw, {a.client_id: FIRST_ATTACHMENT + i for i, a in enumerate(edit.add)})


def _current_fields(message: Message, parts: mime.MessageParts) -> dict:
    def addresses(name: str) -> str:
        return ", ".join(
            email.utils.formataddr((display, address)) for display, address in classify.addresses(message, name)
            if address)

    return {
        "to": addresses("To"),
        "cc": addresses("Cc"),
        "bcc": addresses("Bcc"),
        "subject": mime.header_text(message, "Subject"),
        "importance": classify.importance(message),
        "body": (BODY_HTML, parts.html_text()) if parts.has_html() else (BODY_PLAIN, parts.plain_text()),
    }


def _tag(part: Message) -> str | None:
    tag = part.get(ATTACHMENT_HEADER)
    return str(tag).strip() if tag else None


def apply(raw: bytes, edit: DraftEdit, *, file_reference_prefix: str, sender: Sender, now: datetime,
          hostname: str, origin: str) -> Draft:
    """
    The message of a stored draft after a Sync Change: the fields given
    replace the stored ones, attachments named by FileReference (prefix
    C{file_reference_prefix}, i.e. the draft's ServerId and a colon) are
    removed, new ones are appended.  Works on any stored message, not only
    on drafts written by L{build}.
    """
    message = mime.parse_bytes(raw)
    parts = mime.analyse(message, with_data=False)
    fields = _current_fields(message, parts)
    fields.update(_given(edit))

    by_index = {index: part for index, part, _ in parts.parts}
    deleted = set()
    for reference in edit.delete:
        head, sep, number = reference.rpartition(":")
        if sep and f"{head}:" == file_reference_prefix and number.isdigit():
            deleted.add(int(number))
    kept = [found for found in parts.attachments if found.index not in deleted]
    kept_parts = [_kept_part(by_index[found.index], found) for found in kept]
    numbers = {_tag(part): FIRST_ATTACHMENT + i for i, part in enumerate(kept_parts) if _tag(part)}
    added = [a for a in edit.add if f"{origin}/{a.client_id}" not in numbers]
    for i, attachment in enumerate(added):
        numbers[f"{origin}/{attachment.client_id}"] = FIRST_ATTACHMENT + len(kept_parts) + i

    headers = _field_headers(fields, sender, now)
    if message.get("Message-ID") is None:
        headers.insert(2, ("Message-ID", f"<{uuid.uuid4().hex}@{hostname}>"))
    for name, value in message.items():
        if name.lower() not in _MANAGED:
            headers.append((name, value))
    written = _write(headers, fields["body"], kept_parts + [_attachment_part(a, origin) for a in added])
    return Draft(
        written,
        {a.client_id: numbers[f"{origin}/{a.client_id}"] for a in edit.add},
        renumbered=[found.index for found in kept] != [FIRST_ATTACHMENT + i for i in range(len(kept))],
    )


def added_by(raw: bytes, origin: str) -> dict[str, int]:
    """
    ClientId -> part number of the attachments device C{origin} added to a
    stored draft: what a resent Add is answered with again.
    """
    prefix = f"{origin}/"
    found = {}
    for index, part, _ in mime.walk_parts(mime.parse_bytes(raw)):
        tag = _tag(part)
        if tag and tag.startswith(prefix):
            found[tag[len(prefix):]] = index
    return found


def sendable(raw: bytes) -> bytes:
    """
    The draft as it goes out: without our attachment tags, which name the
    devices of the account.
    """
    if ATTACHMENT_HEADER.encode("ascii").lower() not in raw.lower():
        return raw
    message = mime.parse_bytes(raw)
    for _, part, _ in mime.walk_parts(message):
        del part[ATTACHMENT_HEADER]
    return _flatten(message)


def attachment_ids(attachments: dict[str, int], file_reference_prefix: str) -> etree._Element | None:
    """
    The ApplicationData of a Sync Add or Change response that maps each
    attachment ClientId to its FileReference (MS-ASAIRS 2.2.2.7, 2.2.2.14),
    or None when no attachment was added.
    """
    if not attachments:
        return None
    data = etree.Element(f"{{{AIRSYNC}}}ApplicationData")
    container = etree.SubElement(data, f"{{{AIRSYNCBASE}}}Attachments")
    for client_id, index in attachments.items():
        element = etree.SubElement(container, f"{{{AIRSYNCBASE}}}Attachment")
        etree.SubElement(element, f"{{{AIRSYNCBASE}}}ClientId").text = client_id
        etree.SubElement(element, f"{{{AIRSYNCBASE}}}FileReference").text = f"{file_reference_prefix}{index}"
    return data

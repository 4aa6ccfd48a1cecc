"""
The email content class: stored RFC 5322 messages <-> EAS ApplicationData.

This is the only module that knows EAS email field names (MS-ASEMAIL,
MS-ASAIRS, the email parts of MS-ASCMD). It is pure: no I/O, no reactor, no
database. Two halves:

- `parse_message(raw)` at delivery: the `MessageSummary` the store indexes
  and the sync needs. It never raises, whatever the bytes.
- `application_data(...)` / `change_data(...)` when serving a Sync Add or
  Change, an ItemOperations Fetch or a Search result: an lxml
  `{AirSync:}ApplicationData` element in the team-wide namespace convention
  (the code page name followed by a colon: "{Email:}Subject").

Rules decided here (see the docstrings for details):

- ConversationId: MD5 of the conversation's root Message-ID (first
  References id, else In-Reply-To, else the message's own Message-ID); the
  Thread-Index GUID only when the message has none of these; else an MD5 of
  the normalised thread topic. So replies from any client join their thread.
- ConversationIndex: from Thread-Index when present (its 5 time bytes and
  its 5-byte response levels, i.e. the EAS form without the reserved byte and
  the GUID), else the 5-byte header built from the Date as Exchange does (the
  high 40 bits of the FILETIME).
- FileReference: f"{file_reference_prefix}{n}", n being the attachment's
  position in the depth-first pre-order part walk of `mime.walk_parts`
  (the message itself is part 0).
- TruncationSize and MIMETruncation are applied in bytes of the UTF-8 text
  sent (MS-ASAIRS describes AllOrNone in bytes); a cut never splits a UTF-8
  sequence. EstimatedDataSize is the full size in the same bytes.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from lxml import etree

from bluesync.items import classify, mime
from bluesync.items.html2text import html_to_text, text_to_html

__all__ = [
    "Attachment", "BodyPreference", "Flag", "ItemState", "MessageSummary", "Rendition", "rendition", "prepare",
    "MIME_TRUNCATION_SIZES", "application_data", "attachment", "attachments",
    "change_data", "find_properties", "html_body", "html_to_text", "invitation",
    "parse_message", "plain_body", "text_to_html",
]

Attachment = mime.Attachment

AIRSYNC = "AirSync:"
AIRSYNCBASE = "AirSyncBase:"
EMAIL = "Email:"
EMAIL2 = "Email2:"
TASKS = "Tasks:"
FIND = "Find:"

PREVIEW_LIMIT = 255
SEARCH_TEXT_LIMIT = 100_000

# MS-ASCMD 2.2.3.111: MIMETruncation codes -> size limit (None: no limit).
MIME_TRUNCATION_SIZES: dict[int, int | None] = {
    0: 0, 1: 4096, 2: 5120, 3: 7168, 4: 10240, 5: 20480, 6: 51200,
    7: 102400, 8: None,
}

BODY_PLAIN, BODY_HTML, BODY_RTF, BODY_MIME = 1, 2, 3, 4

UTC = timezone.utc


# ---------------------------------------------------------------------------
# Parsing at delivery

@dataclass(frozen=True)
class MessageSummary:
    """What the store indexes for a message and the sync needs to serve it."""
    subject: str
    from_: str                      # display string for Email:From
    sender: str                     # Sender header when it differs from From, else ""
    to: str                         # display strings, comma-joined
    cc: str
    bcc: str
    reply_to: str
    display_to: str                 # To names only, "; "-joined (Email:DisplayTo)
    date: datetime                  # aware UTC; the Date header or `received`
    received: datetime              # aware UTC; when it reached us (Email:DateReceived)
    message_id: str                 # "<id@host>" or ""
    in_reply_to: str
    references: tuple[str, ...]
    thread_topic: str
    size: int                       # len(raw)
    importance: int                 # 0 low, 1 normal, 2 high
    has_attachments: bool           # any attachment that is not inline
    message_class: str
    content_class: str
    internet_cpid: int
    native_body_type: int           # 1 plain, 2 HTML
    conversation_id: bytes          # 16 bytes
    conversation_index: bytes       # 5 + 5n bytes
    preview_text: str
    body_text_for_search: str
    recipients: tuple[str, ...]     # bare lower-case addresses from To/Cc/Bcc


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _safe_text(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _summarise(raw: bytes, received: datetime | None,
               parts: mime.MessageParts | None = None) -> MessageSummary:
    if parts is None:
        parts = mime.analyse(mime.parse_bytes(raw), with_data=False)
    msg = parts.message

    subject = mime.header_text(msg, "Subject")
    from_pairs = classify.addresses(msg, "From")
    to_pairs = classify.addresses(msg, "To")
    cc_pairs = classify.addresses(msg, "Cc")
    bcc_pairs = classify.addresses(msg, "Bcc")
    sender_pairs = classify.addresses(msg, "Sender")
    from_addresses = {a.lower() for _, a in from_pairs}
    sender = ""
    if sender_pairs and sender_pairs[0][1].lower() not in from_addresses:
        sender = classify.display(sender_pairs[:1])

    date = classify.parse_date(mime.raw_header(msg, "Date"))
    arrival = classify.utc(received) if received is not None else classify.received_header_date(msg)
    if arrival is None:
        arrival = date or datetime.now(UTC).replace(microsecond=0)
    if date is None:
        date = arrival

    message_ids = classify.message_ids(mime.decode_8bit(mime.raw_header(msg, "Message-ID") or ""))
    message_id = message_ids[0] if message_ids else ""
    reply_ids = classify.message_ids(mime.decode_8bit(mime.raw_header(msg, "In-Reply-To") or ""))
    in_reply_to = reply_ids[0] if reply_ids else ""
    references = tuple(classify.message_ids(" ".join(
        mime.decode_8bit(v) for v in mime.raw_headers(msg, "References"))))

    topic = mime.header_text(msg, "Thread-Topic") or classify.thread_topic(subject)
    conversation_id, conversation_index = classify.conversation(
        msg, message_id, in_reply_to, references, topic, date)

    message_class = classify.message_class(msg, parts)
    content_class = ("urn:content-classes:calendarmessage"
                     if message_class.startswith("IPM.Schedule.Meeting")
                     else "urn:content-classes:message")

    plain = _safe_text(parts.plain_text()) if parts.segments else ""
    recipients = []
    for _, address in to_pairs + cc_pairs + bcc_pairs:
        address = address.lower()
        if "@" in address and address not in recipients:
            recipients.append(address)

    return MessageSummary(
        subject=subject,
        from_=classify.display(from_pairs),
        sender=sender,
        to=classify.display(to_pairs),
        cc=classify.display(cc_pairs),
        bcc=classify.display(bcc_pairs),
        reply_to=classify.display(classify.addresses(msg, "Reply-To")),
        display_to="; ".join(name or address for name, address in to_pairs),
        date=date,
        received=arrival,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        thread_topic=topic,
        size=len(raw),
        importance=classify.importance(msg),
        has_attachments=any(not a.is_inline for a in parts.attachments),
        message_class=message_class,
        content_class=content_class,
        internet_cpid=classify.internet_cpid(parts.body_charset()),
        native_body_type=BODY_HTML if parts.has_html() else BODY_PLAIN,
        conversation_id=conversation_id,
        conversation_index=conversation_index,
        preview_text=_collapse(plain[:PREVIEW_LIMIT * 8])[:PREVIEW_LIMIT],
        body_text_for_search=plain[:SEARCH_TEXT_LIMIT],
        recipients=tuple(recipients),
    )


def prepare(raw: bytes, received: datetime | None = None) -> tuple["MessageSummary", "Rendition"]:
    """
    parse_message() and rendition() from one parse of the MIME structure,
    which is most of the cost of each: what delivery stores.  Never raises.
    """
    try:
        parts = mime.analyse(mime.parse_bytes(raw), with_data=False)
    except Exception:
        return parse_message(raw, received), rendition(raw)
    try:
        summary = _summarise(raw, received, parts)
    except Exception:
        summary = parse_message(raw, received)
    return summary, _rendition_of(parts)


def parse_message(raw: bytes, received: datetime | None = None) -> MessageSummary:
    """
    Summarise a stored message at delivery. Never raises.

    `received` is when the message reached us (the LMTP delivery time); when
    omitted, the newest Received header's date is used, then the Date
    header, then the current time. `date` falls back to `received` when the
    Date header is missing or garbage.
    """
    try:
        return _summarise(raw, received)
    except Exception:
        # Belt and braces: every step above is written not to raise, but a
        # message must be deliverable whatever happens.
        moment = (classify.utc(received) if received is not None
                  else datetime.now(UTC).replace(microsecond=0))
        return MessageSummary(
            subject="", from_="", sender="", to="", cc="", bcc="",
            reply_to="", display_to="", date=moment, received=moment,
            message_id="", in_reply_to="", references=(), thread_topic="",
            size=len(raw), importance=1, has_attachments=False,
            message_class="IPM.Note",
            content_class="urn:content-classes:message",
            internet_cpid=65001, native_body_type=BODY_PLAIN,
            conversation_id=hashlib.md5(b"raw:" + raw).digest(),
            conversation_index=classify.filetime_header(moment),
            preview_text="", body_text_for_search="", recipients=(),
        )


# ---------------------------------------------------------------------------
# Serving

@dataclass(frozen=True)
class BodyPreference:
    """One AirSyncBase:BodyPreference from the client."""
    type: int                        # 1 plain, 2 HTML, 3 RTF (served as 1), 4 MIME
    truncation_size: int | None = None   # bytes of the UTF-8 text
    all_or_none: bool = False
    preview: int = 0                 # 14.0+: Preview characters, 0..255


@dataclass(frozen=True)
class Flag:
    """An Email:Flag on a message (MS-ASEMAIL 2.2.2.34)."""
    status: int = 2                  # Email:Status: 0 cleared, 1 complete, 2 active
    flag_type: str | None = "for Follow Up"
    subject: str | None = None       # tasks:Subject
    date_completed: datetime | None = None
    complete_time: datetime | None = None
    start_date: datetime | None = None
    due_date: datetime | None = None
    utc_start_date: datetime | None = None
    utc_due_date: datetime | None = None
    reminder_set: bool | None = None
    reminder_time: datetime | None = None
    ordinal_date: datetime | None = None
    sub_ordinal_date: str | None = None


@dataclass(frozen=True)
class ItemState:
    """The mutable per-item state kept in DB columns."""
    read: bool = False
    flag: Flag | None = None         # None: unflagged (an empty Email:Flag is sent)
    categories: tuple[str, ...] = ()
    last_verb_executed: int | None = None   # 1 reply, 2 reply all, 3 forward
    last_verb_time: datetime | None = None


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _el(parent: etree._Element, namespace: str, name: str,
        text: object | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text is not None:
        text = str(text)
        try:
            element.text = text
        except ValueError:
            # lxml checks every text it is given and refuses exactly what
            # _XML_INVALID matches, so only text that needs cleaning pays
            # for a second scan (a 5 KB body cost twice its setting).
            element.text = _XML_INVALID.sub("", text)
    return element


def _set_opaque(element: etree._Element, data: bytes) -> etree._Element:
    """
    Put binary data in an element the WBXML codec sends as OPAQUE
    (Email2:ConversationId, Email2:ConversationIndex): base64 in the text.
    """
    element.text = base64.b64encode(data).decode("ascii")
    return element


def eas_datetime(moment: datetime) -> str:
    """MS-ASDTYPE dateTime: "2024-05-01T09:30:00.000Z" (UTC)."""
    moment = classify.utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _version(version: str) -> tuple[int, int]:
    try:
        major, _, minor = version.strip().partition(".")
        return int(major), int(minor or 0)
    except (ValueError, AttributeError):
        raise ValueError(f"not an ActiveSync protocol version: {version!r}") from None


def _crlf(text: str) -> str:
    return re.sub(r"\r?\n|\r", "\r\n", text)


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most `limit` UTF-8 bytes on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    cut = max(limit, 0)
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8"), True


@dataclass(frozen=True)
class Rendition:
    """
    What serving a message needs besides its summary, computed once at
    delivery: the body as plain text and as HTML, and the attachment list
    (without data).  Serving from it skips parsing the MIME structure on
    every Sync, which dominated the cost of an initial sync.
    """

    plain: str
    html: str
    attachments: tuple[mime.Attachment, ...]


def rendition(raw: bytes) -> Rendition:
    """
    Never raises: a message too broken to analyse gets an empty rendition
    and is served from its raw bytes.
    """
    try:
        return _rendition_of(mime.analyse(mime.parse_bytes(raw), with_data=False))
    except Exception:
        return Rendition("", "", ())


def _rendition_of(parts: mime.MessageParts) -> Rendition:
    try:
        return Rendition(
            _XML_INVALID.sub("", _crlf(parts.plain_text())),
            _XML_INVALID.sub("", _crlf(parts.html_text())),
            tuple(parts.attachments),
        )
    except Exception:
        return Rendition("", "", ())


class _BodySource:
    """The body of one message in the forms a client may ask for, lazily."""

    def __init__(self, raw: bytes, parts: mime.MessageParts | None,
                 prepared: Rendition | None = None) -> None:
        self.raw = raw
        self.parts = parts
        self.cache: dict[int, str] = {}
        if prepared is not None:
            self.cache[BODY_PLAIN] = prepared.plain
            self.cache[BODY_HTML] = prepared.html

    def text(self, body_type: int) -> str:
        if body_type not in self.cache:
            if body_type == BODY_MIME:
                text = mime.mime_text(self.raw)
            elif body_type == BODY_HTML:
                text = _crlf(self.parts.html_text())
            else:
                text = _crlf(self.parts.plain_text())
            self.cache[body_type] = _XML_INVALID.sub("", text)
        return self.cache[body_type]


@dataclass
class _BodyChoice:
    type: int
    text: str
    size: int
    limit: int | None
    send_data: bool
    preview: int


def _choose_body(source: _BodySource, preferences: Sequence[BodyPreference], *,
                 mime_allowed: bool, mime_truncation: int | None) -> _BodyChoice:
    """
    The first preference the message can satisfy (MS-ASAIRS 2.2.2.12,
    2.2.2.3.2): plain and HTML always can (by conversion), RTF is served as
    plain, MIME only when MIMESupport allows it for this message. A
    preference with AllOrNone whose body would be truncated is passed over
    for the next one; if none is left, that type is sent without Data and
    with Truncated set.
    """
    passed_over: _BodyChoice | None = None
    for preference in preferences:
        body_type = preference.type
        if body_type == BODY_RTF:
            body_type = BODY_PLAIN
        if body_type == BODY_MIME and not mime_allowed:
            continue
        if body_type not in (BODY_PLAIN, BODY_HTML, BODY_MIME):
            continue
        limit = preference.truncation_size
        if body_type == BODY_MIME and limit is None and mime_truncation is not None:
            limit = MIME_TRUNCATION_SIZES.get(mime_truncation)
        text = source.text(body_type)
        size = len(text.encode("utf-8"))
        choice = _BodyChoice(body_type, text, size, limit, True, preference.preview)
        if preference.all_or_none and limit is not None and size > limit:
            if passed_over is None:
                choice.send_data = False
                passed_over = choice
            continue
        return choice
    if passed_over is not None:
        return passed_over
    text = source.text(BODY_PLAIN)
    return _BodyChoice(BODY_PLAIN, text, len(text.encode("utf-8")), None, True, 0)


def _body_element(parent: etree._Element, choice: _BodyChoice, summary: MessageSummary,
                  version: tuple[int, int]) -> None:
    body = _el(parent, AIRSYNCBASE, "Body")
    _el(body, AIRSYNCBASE, "Type", choice.type)
    _el(body, AIRSYNCBASE, "EstimatedDataSize", choice.size)
    if not choice.send_data:
        _el(body, AIRSYNCBASE, "Truncated", 1)
    else:
        data, truncated = choice.text, False
        if choice.limit is not None:
            data, truncated = truncate_utf8(choice.text, choice.limit)
        if truncated:
            _el(body, AIRSYNCBASE, "Truncated", 1)
        if data or not truncated:
            _el(body, AIRSYNCBASE, "Data", data)
    if version >= (14, 0) and choice.preview > 0:
        _el(body, AIRSYNCBASE, "Preview", summary.preview_text[:min(choice.preview, PREVIEW_LIMIT)])


def _attachments_element(parent: etree._Element, attachments: list[mime.Attachment],
                         file_reference_prefix: str) -> None:
    container = _el(parent, AIRSYNCBASE, "Attachments")
    for item in attachments:
        element = _el(container, AIRSYNCBASE, "Attachment")
        _el(element, AIRSYNCBASE, "DisplayName", item.filename)
        _el(element, AIRSYNCBASE, "FileReference", f"{file_reference_prefix}{item.index}")
        _el(element, AIRSYNCBASE, "Method", item.method)
        _el(element, AIRSYNCBASE, "EstimatedDataSize", item.size)
        if item.content_id:
            _el(element, AIRSYNCBASE, "ContentId", item.content_id)
        if item.content_location:
            _el(element, AIRSYNCBASE, "ContentLocation", item.content_location)
        _el(element, AIRSYNCBASE, "IsInline", 1 if item.is_inline else 0)


def _flag_element(parent: etree._Element, flag: Flag | None) -> None:
    element = _el(parent, EMAIL, "Flag")
    if flag is None:
        return
    if flag.subject is not None:
        _el(element, TASKS, "Subject", flag.subject)
    # MS-ASEMAIL 2.2.2.74: Email:Status (Email page token 0x3B, which
    # Z-Push calls FlagStatus; the codec accepts that name as an alias).
    _el(element, EMAIL, "Status", flag.status)
    if flag.flag_type is not None:
        _el(element, EMAIL, "FlagType", flag.flag_type)
    for namespace, name, value in (
            (TASKS, "DateCompleted", flag.date_completed),
            (EMAIL, "CompleteTime", flag.complete_time),
            (TASKS, "StartDate", flag.start_date),
            (TASKS, "DueDate", flag.due_date),
            (TASKS, "UtcStartDate", flag.utc_start_date),
            (TASKS, "UtcDueDate", flag.utc_due_date)):
        if value is not None:
            _el(element, namespace, name, eas_datetime(value))
    if flag.reminder_set is not None:
        _el(element, TASKS, "ReminderSet", 1 if flag.reminder_set else 0)
    if flag.reminder_time is not None:
        _el(element, TASKS, "ReminderTime", eas_datetime(flag.reminder_time))
    if flag.ordinal_date is not None:
        _el(element, TASKS, "OrdinalDate", eas_datetime(flag.ordinal_date))
    if flag.sub_ordinal_date is not None:
        _el(element, TASKS, "SubOrdinalDate", flag.sub_ordinal_date)


def _categories_element(parent: etree._Element, categories: Sequence[str]) -> None:
    element = _el(parent, EMAIL, "Categories")
    for category in categories:
        _el(element, EMAIL, "Category", category)


def _reply_state(parent: etree._Element, state: ItemState) -> None:
    if state.last_verb_executed is not None:
        _el(parent, EMAIL2, "LastVerbExecuted", state.last_verb_executed)
    if state.last_verb_time is not None:
        _el(parent, EMAIL2, "LastVerbExecutionTime", eas_datetime(state.last_verb_time))


def _mime_allowed(mime_support: int, summary: MessageSummary) -> bool:
    """MS-ASCMD 2.2.3.110: 0 never, 1 S/MIME messages only, 2 always."""
    if mime_support == 2:
        return True
    return mime_support == 1 and summary.message_class.startswith("IPM.Note.SMIME")


def application_data(raw: bytes, summary: MessageSummary, state: ItemState, *,
                     version: str,
                     body_preferences: Sequence[BodyPreference] = (),
                     mime_support: int = 0,
                     mime_truncation: int | None = None,
                     file_reference_prefix: str,
                     received_as_bcc: bool = False,
                     is_draft: bool = False,
                     meeting_request: etree._Element | None = None,
                     prepared: Rendition | None = None,
                     ) -> etree._Element:
    """
    The {AirSync:}ApplicationData of an email for a Sync Add, an
    ItemOperations Fetch or a Search result.

    Elements follow the order Exchange sends (the MS-ASEMAIL examples):
    To, Cc, [Email2:Bcc], From, Subject, ReplyTo, DateReceived, DisplayTo,
    ThreadTopic, Importance, Read, Attachments, Body, MessageClass,
    [MeetingRequest], InternetCPID, Flag, ContentClass, NativeBodyType, then
    from 14.0 ConversationId, ConversationIndex, LastVerbExecuted,
    LastVerbExecutionTime, ReceivedAsBcc, Sender, Categories, and from 16.0
    IsDraft.

    Without body preferences the body is sent as untruncated plain text.
    `meeting_request` is the Email:MeetingRequest element built by the
    calendar converter for IPM.Schedule.Meeting.* messages (see
    `invitation()`); it is placed after MessageClass. `is_draft` (16.0+)
    marks a message of the Drafts folder: Email2:IsDraft is 1 and the Bcc
    recipients are sent.  `prepared` is the message's `rendition()`, when
    the store kept one: the MIME structure is then not parsed again.
    """
    v = _version(version)
    if prepared is not None:
        attachment_list = list(prepared.attachments)
        source = _BodySource(raw, None, prepared)
    else:
        parts = mime.analyse(mime.parse_bytes(raw), with_data=False)
        attachment_list = parts.attachments
        source = _BodySource(raw, parts)
    choice = _choose_body(source, list(body_preferences) or [BodyPreference(BODY_PLAIN)],
                          mime_allowed=_mime_allowed(mime_support, summary),
                          mime_truncation=mime_truncation)

    data = etree.Element(f"{{{AIRSYNC}}}ApplicationData")
    if summary.to:
        _el(data, EMAIL, "To", summary.to)
    if summary.cc:
        _el(data, EMAIL, "Cc", summary.cc)
    if v >= (16, 0) and is_draft and summary.bcc:
        _el(data, EMAIL2, "Bcc", summary.bcc)
    if summary.from_:
        _el(data, EMAIL, "From", summary.from_)
    if summary.subject:
        _el(data, EMAIL, "Subject", summary.subject)
    if summary.reply_to:
        _el(data, EMAIL, "ReplyTo", summary.reply_to)
    _el(data, EMAIL, "DateReceived", eas_datetime(summary.received))
    if summary.display_to:
        _el(data, EMAIL, "DisplayTo", summary.display_to)
    if summary.thread_topic:
        _el(data, EMAIL, "ThreadTopic", summary.thread_topic)
    _el(data, EMAIL, "Importance", summary.importance)
    _el(data, EMAIL, "Read", 1 if state.read else 0)
    if attachment_list:
        _attachments_element(data, attachment_list, file_reference_prefix)
    _body_element(data, choice, summary, v)
    _el(data, EMAIL, "MessageClass", summary.message_class)
    if meeting_request is not None:
        data.append(meeting_request)
    _el(data, EMAIL, "InternetCPID", summary.internet_cpid)
    _flag_element(data, state.flag)
    _el(data, EMAIL, "ContentClass", summary.content_class)
    _el(data, AIRSYNCBASE, "NativeBodyType", summary.native_body_type)
    if v >= (14, 0):
        _set_opaque(_el(data, EMAIL2, "ConversationId"), summary.conversation_id)
        _set_opaque(_el(data, EMAIL2, "ConversationIndex"), summary.conversation_index)
        _reply_state(data, state)
        if received_as_bcc:
            _el(data, EMAIL2, "ReceivedAsBcc", 1)
        if summary.sender:
            _el(data, EMAIL2, "Sender", summary.sender)
        _categories_element(data, state.categories)
    if v >= (16, 0):
        _el(data, EMAIL2, "IsDraft", 1 if is_draft else 0)
    return data


def _display_names(shown: str) -> str:
    """
    The names of an address list as Email:To shows it, "; "-joined like
    Email:DisplayTo (an address stands for a missing name).
    """
    if not shown:
        return ""
    try:
        pairs = email.utils.getaddresses([shown])
    except Exception:
        return shown
    return "; ".join(name or address for name, address in pairs if name or address)


def find_properties(summary: MessageSummary, state: ItemState, *, is_draft: bool = False) -> etree._Element:
    """
    The Find:Properties of a message in a Find command result (MS-ASCMD
    2.2.3.139.1): what a list of search results shows, in the order the
    specification lists it, and no body.  DisplayCc and DisplayBcc are
    names like Email:DisplayTo; only the sender's own copies (Sent Items,
    Drafts) have Bcc recipients to show.
    """
    properties = etree.Element(f"{{{FIND}}}Properties")
    if summary.subject:
        _el(properties, EMAIL, "Subject", summary.subject)
    _el(properties, EMAIL, "DateReceived", eas_datetime(summary.received))
    if summary.display_to:
        _el(properties, EMAIL, "DisplayTo", summary.display_to)
    display_cc = _display_names(summary.cc)
    if display_cc:
        _el(properties, FIND, "DisplayCc", display_cc)
    display_bcc = _display_names(summary.bcc)
    if display_bcc:
        _el(properties, FIND, "DisplayBcc", display_bcc)
    _el(properties, EMAIL, "Importance", summary.importance)
    _el(properties, EMAIL, "Read", 1 if state.read else 0)
    _el(properties, EMAIL2, "IsDraft", 1 if is_draft else 0)
    if summary.preview_text:
        _el(properties, FIND, "Preview", summary.preview_text[:PREVIEW_LIMIT])
    _el(properties, FIND, "HasAttachments", 1 if summary.has_attachments else 0)
    if summary.from_:
        _el(properties, EMAIL, "From", summary.from_)
    return properties


def change_data(state: ItemState, *, version: str) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a Sync Change: the mutable state only
    (Read, Flag, and from 14.0 the reply state and Categories; an empty
    Categories element means "none").
    """
    v = _version(version)
    data = etree.Element(f"{{{AIRSYNC}}}ApplicationData")
    _el(data, EMAIL, "Read", 1 if state.read else 0)
    _flag_element(data, state.flag)
    if v >= (14, 0):
        _reply_state(data, state)
        _categories_element(data, state.categories)
    return data


# ---------------------------------------------------------------------------
# Attachments and bodies for other modules

def attachments(raw: bytes) -> list[Attachment]:
    """All attachments of a stored message, in FileReference order."""
    try:
        return mime.attachment_list(raw)
    except Exception:
        return []


def attachment(raw: bytes, index: int) -> Attachment | None:
    """The attachment a FileReference suffix names, or None."""
    for item in attachments(raw):
        if item.index == index:
            return item
    return None


def plain_body(raw: bytes) -> str:
    """The message body as plain text ("\\n" line ends)."""
    try:
        return mime.analyse(mime.parse_bytes(raw), with_data=False).plain_text()
    except Exception:
        return ""


def html_body(raw: bytes) -> str:
    """The message body as HTML (plain text converted when there is no HTML)."""
    try:
        return mime.analyse(mime.parse_bytes(raw), with_data=False).html_text()
    except Exception:
        return ""


def invitation(raw: bytes) -> str | None:
    """
    The iCalendar text of an iMIP message (text/calendar with a METHOD), for
    the calendar converter to build Email:MeetingRequest from; None if the
    message carries none.
    """
    try:
        parts = mime.analyse(mime.parse_bytes(raw), with_data=False)
    except Exception:
        return None
    if parts.calendar is None:
        return None
    return mime.part_text(parts.calendar)

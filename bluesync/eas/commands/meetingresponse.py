"""
MeetingResponse (MS-ASCMD 2.2.1.11): the user accepts (UserResponse 1),
tentatively accepts (2) or declines (3) a meeting, named by the meeting
request message in the Inbox or by the event in a calendar
(CollectionId + RequestId, or search:LongId, which is our ServerId), the
whole meeting or (14.1+) one occurrence of it (InstanceId, its original
start).

What it does, per Request, in this order:

1. Checks: a meeting request message (IPM.Schedule.Meeting.Request) or
   an event someone else organises; else Status 2 (2.2.3.177.9), as for
   an InstanceId given with a message, or naming no occurrence; a
   malformed InstanceId is 104, one of a meeting that does not recur 146.
2. The answer to the organizer, when the device asks for it: in 16.0 and
   16.1 only with SendResponse (2.2.3.163; its airsyncbase:Body is the
   text, ProposedStartTime/ProposedEndTime make it a COUNTER unless the
   meeting disallows new time proposals). Earlier clients send their
   answer themselves with SendMail (2.2.1.11), so nothing is sent for
   them. The reply is an iMIP REPLY (RFC 6047, RFC 5546 3.2.3) sent
   through composemail.send_message: a local organizer gets it in the
   Inbox and their event records the answer; others get it through the
   relay queue. If it cannot be sent (no relay), Status 3 and nothing
   changes.
3. The user's calendar: accepted or tentative, the event (added if the
   request's event is missing) carries the user's PARTSTAT and shows
   busy or tentative, and its ServerId is the CalendarId (2.2.3.18);
   declined, it is removed (a declined occurrence leaves the series) and
   no CalendarId is sent.
4. The meeting request message goes to Deleted Items, as Exchange does:
   it has been answered.

A document that is not a MeetingResponse request at all is answered HTTP
400 (there is no top-level Status to carry 103).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas import meetings, render
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.items import _eas, _ical, imip, scheduling
from bluesync.items._eas import ConversionError
from bluesync.items.email import invitation
from bluesync.mail import calendar_ingest
from bluesync.store.folders import DELETED_ITEMS
from bluesync.store.folders import parse_server_id as parse_folder_id
from bluesync.store.items import parse_server_id as parse_item_id
from bluesync.web.rendering import Response

log = Logger()

NS = "MeetingResponse"
LONG_ID = "{Search:}LongId"
BODY_DATA = "{AirSyncBase:}Body/{AirSyncBase:}Data"
UTC = timezone.utc

# MS-ASCMD 2.2.3.177.9, and the common codes 2.2.2 names for InstanceId.
SUCCESS = 1
INVALID_REQUEST = 2
MAILBOX_ERROR = 3
SERVER_ERROR = 4
INVALID_DATETIME = 104
NOT_RECURRING = 146

MAX_REQUESTS = 100
VERBS = {1: "Accepted", 2: "Tentative", 3: "Declined"}


def q(name: str) -> str:
    return wbxml.qname(NS, name)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Answer:
    """One Request of the document."""
    request_id: str
    collection_id: str | None
    response: int
    instance_text: str | None = None
    instance: datetime | None = None
    send: bool = False
    body: str | None = None
    proposed_start: datetime | None = None
    proposed_end: datetime | None = None


@dataclass
class Result:
    request_id: str | None
    status: int
    calendar_id: str | None = None
    instance_id: str | None = None


def _text(element, name: str) -> str | None:
    found = element.find(q(name))
    return None if found is None else (found.text or "").strip()


def read_request(element, version: float) -> Answer:
    """
    One Request as an L{Answer}.

    @raise Refused: with the Status it gets.
    """
    long_id = element.find(LONG_ID)
    request_id = (long_id.text or "").strip() if long_id is not None else _text(element, "RequestId")
    collection_id = None if long_id is not None else _text(element, "CollectionId")
    if not request_id:
        raise Refused(INVALID_REQUEST, "no RequestId or LongId")
    if long_id is not None and element.find(q("RequestId")) is not None:
        raise Refused(INVALID_REQUEST, "LongId with RequestId")
    response = _text(element, "UserResponse")
    if response not in ("1", "2", "3"):
        raise Refused(INVALID_REQUEST, f"UserResponse {response!r}")
    answer = Answer(request_id, collection_id, int(response))
    instance = _text(element, "InstanceId")
    if instance is not None:
        if version < 14.1:
            raise Refused(INVALID_REQUEST, "InstanceId before 14.1")
        try:
            answer.instance = _eas.parse_datetime(instance)
        except ConversionError:
            raise Refused(INVALID_DATETIME, f"InstanceId {instance!r}") from None
        if answer.instance is None:
            raise Refused(INVALID_DATETIME, "empty InstanceId")
        answer.instance_text = instance
    send = element.find(q("SendResponse"))
    if send is not None and version >= 16.0:
        answer.send = True
        answer.body = send.findtext(BODY_DATA)
        try:
            answer.proposed_start = _eas.parse_datetime(_text(send, "ProposedStartTime") or None)
            answer.proposed_end = _eas.parse_datetime(_text(send, "ProposedEndTime") or None)
        except ConversionError as e:
            raise Refused(INVALID_DATETIME, str(e)) from None
    return answer


async def handle(ctx: CommandContext) -> Response:
    document = ctx.document
    requests = [] if document is None else [e for e in document if e.tag == q("Request")]
    if document is None or document.tag != q("MeetingResponse") or not requests or len(requests) > MAX_REQUESTS:
        log.info("{account} {device}: malformed MeetingResponse", account=ctx.account.address,
                 device=ctx.request.device_id)
        return Response(400)
    root = etree.Element(q("MeetingResponse"), nsmap={None: NS + ":"})
    for element in requests:
        result = await _respond(ctx, element)
        entry = etree.SubElement(root, q("Result"))
        if result.request_id:
            etree.SubElement(entry, q("RequestId")).text = result.request_id
        etree.SubElement(entry, q("Status")).text = str(result.status)
        if result.calendar_id is not None:
            etree.SubElement(entry, q("CalendarId")).text = result.calendar_id
        if result.instance_id is not None and ctx.version_number >= 16.0:
            etree.SubElement(entry, q("InstanceId")).text = result.instance_id
    return wbxml_response(root)


async def _respond(ctx: CommandContext, element) -> Result:
    request_id = _text(element, "RequestId") or element.findtext(LONG_ID)
    try:
        answer = read_request(element, ctx.version_number)
        return await respond(ctx, answer)
    except Refused as e:
        log.info("{account} {device}: MeetingResponse {request}: status {status}, {reason}",
                 account=ctx.account.address, device=ctx.request.device_id, request=request_id,
                 status=e.status, reason=str(e))
        return Result(request_id, e.status)


@dataclass
class _Target:
    content: bytes               # the event as stored, or as the request makes it
    folder: object               # the calendar folder it is (or goes) in
    item_id: int | None          # None: not stored yet
    message: object = None       # the meeting request message, if that was named


async def _target(ctx: CommandContext, answer: Answer, own: set[str]) -> _Target:
    store = ctx.server.store
    account = ctx.account
    parsed = parse_item_id(answer.request_id)
    if parsed is None:
        raise Refused(INVALID_REQUEST, "not one of our ServerIds")
    if answer.collection_id is not None and parse_folder_id(answer.collection_id) != parsed[0]:
        raise Refused(INVALID_REQUEST, "RequestId is not in CollectionId")
    folder = await store.folders.get(account.id, parsed[0])
    item = (await store.items.get_many(account.id, [parsed[1]], folder.id)).get(parsed[1]) if folder else None
    if item is None:
        raise Refused(INVALID_REQUEST, "no such item")
    if item.content_class == "Calendar":
        organizer = scheduling.organizer_of(item.content)
        if not organizer or organizer in own:
            raise Refused(INVALID_REQUEST, "an event the user organises")
        return _Target(item.content, folder, item.id)
    if item.content_class != "Email":
        raise Refused(INVALID_REQUEST, f"a {item.content_class} item")
    if answer.instance is not None:
        raise Refused(INVALID_REQUEST, "InstanceId with a meeting request message")
    ics = invitation(item.content)
    try:
        request = imip.parse(ics) if ics is not None else None
    except ConversionError:
        request = None
    if request is None or request.method != "REQUEST" or not request.uid:
        raise Refused(INVALID_REQUEST, "not a meeting request")
    if request.organizer is None or request.organizer.email.lower() in own:
        raise Refused(INVALID_REQUEST, "a meeting the user organises")
    found = await calendar_ingest.find_event(store, account, request.uid)
    if found is None:
        raise Refused(MAILBOX_ERROR, "the account has no Calendar folder")
    if found.item_id is not None:
        stored = (await store.items.get_many(account.id, [found.item_id], found.folder.id)).get(found.item_id)
        if stored is not None:
            return _Target(stored.content, found.folder, stored.id, item)
    try:
        content = scheduling.received(ics, own)
    except ConversionError as e:
        raise Refused(INVALID_REQUEST, str(e)) from None
    return _Target(content, found.folder, None, item)


async def respond(ctx: CommandContext, answer: Answer) -> Result:
    """Apply one answer (see the module docstring); its Result."""
    store = ctx.server.store
    account = ctx.account
    own = await calendar_ingest.own_addresses(store, account)
    tz = render.reader_for(ctx).tz
    target = await _target(ctx, answer, own)
    try:
        if answer.instance is not None and not _recurs(target.content):
            raise Refused(NOT_RECURRING, "InstanceId of a meeting that does not recur")
        scheduling.responded(target.content, own, answer.response, answer.instance, tz)
    except scheduling.NoSuchInstance as e:
        raise Refused(INVALID_REQUEST, str(e)) from None
    except ConversionError as e:
        raise Refused(INVALID_REQUEST, str(e)) from None
    if answer.send:
        await _reply(ctx, answer, target, own, tz)

    item_id = target.item_id

    def edit(content: bytes):
        result = scheduling.responded(content, own, answer.response, answer.instance, tz)
        return calendar_ingest.DELETE if result is None else result

    if item_id is not None:
        outcome, _ = await calendar_ingest.rewrite(store, account, target.folder, item_id, edit, tz)
        if outcome == "gone":
            item_id = None
    if item_id is None and answer.response != 3:
        item_id = await calendar_ingest.add_event(
            store, account, target.folder,
            scheduling.responded(target.content, own, answer.response, answer.instance, tz), tz)
    if target.message is not None:
        await _file_away(ctx, target.message)
    calendar_id = f"{target.folder.id}:{item_id}" if item_id is not None and answer.response != 3 else None
    log.info("{account} {device}: meeting {request} {verb}{instance}; event {event}, reply {sent}",
             account=account.address, device=ctx.request.device_id, request=answer.request_id,
             verb=VERBS[answer.response].lower(), instance=f" ({answer.instance_text})" if answer.instance else "",
             event=calendar_id or "removed", sent="sent" if answer.send else "not asked for")
    return Result(answer.request_id, SUCCESS, calendar_id, answer.instance_text)


def _recurs(content: bytes) -> bool:
    calendar = _ical.parse(content)
    return any("RRULE" in e or "RDATE" in e for e in calendar.walk("VEVENT") if "RECURRENCE-ID" not in e)


async def _reply(ctx: CommandContext, answer: Answer, target: _Target, own: set[str], tz) -> None:
    """The iMIP REPLY (or COUNTER) to the organizer; Refused(3) if it cannot go."""
    account = ctx.account
    organizer = scheduling.organizer_of(target.content)
    attendee = scheduling.own_attendee(target.content, own) or account.address
    now = datetime.fromtimestamp(ctx.server.clock.seconds(), UTC).replace(microsecond=0)
    source = scheduling.reply_source(target.content, answer.instance, tz)
    ics = imip.reply(source, attendee, answer.response, now=now, comment=answer.body or None)
    method = "REPLY"
    title = meetings.summary(target.content)
    subject = f"{VERBS[answer.response]}: {title}"
    if answer.proposed_start is not None:
        if _disallows_counter(target.content):
            log.info("{account}: meeting {request} disallows new time proposals; proposal dropped",
                     account=account.address, request=answer.request_id)
        else:
            ics = _counter(ics, answer.proposed_start, answer.proposed_end)
            method = "COUNTER"
            subject = f"New Time Proposed: {title}"
    if not await meetings.send(ctx, to=[organizer], subject=subject, body=answer.body or "", ics=ics,
                               method=method, command="MeetingResponse"):
        raise Refused(MAILBOX_ERROR, f"the {method} to {organizer} could not be sent")


def _disallows_counter(content: bytes) -> bool:
    for event in _ical.parse(content).walk("VEVENT"):
        value = event.get("X-MICROSOFT-DISALLOW-COUNTER")
        if value is not None and _ical.x_text(value).upper() == "TRUE":
            return True
    return False


def _counter(reply: bytes, start: datetime, end: datetime | None) -> bytes:
    """A REPLY turned into the COUNTER proposing a new time (RFC 5546 3.2.7)."""
    calendar = _ical.parse(reply)
    calendar.pop("METHOD", None)
    calendar.add("METHOD", "COUNTER")
    for event in calendar.walk("VEVENT"):
        finish = end
        if finish is None and "DTSTART" in event and "DTEND" in event:
            length = event["DTEND"].dt - event["DTSTART"].dt
            finish = start + length if isinstance(length, timedelta) else None
        for name in ("DTSTART", "DTEND", "DURATION"):
            event.pop(name, None)
        event.add("DTSTART", _eas.utc(start))
        if finish is not None:
            event.add("DTEND", _eas.utc(finish))
    return _ical.serialise(calendar)


async def _file_away(ctx: CommandContext, message) -> None:
    """The answered request leaves the Inbox for Deleted Items."""
    store = ctx.server.store
    trash = await store.folders.by_type(ctx.account.id, DELETED_ITEMS)
    if trash is None or trash.id == message.folder_id:
        return
    await store.items.move(ctx.account.id, message.folder_id, message.id, trash.id)

"""
Meetings on the ActiveSync side (issue 7).

- L{meeting_request}: the Email:MeetingRequest element (MS-ASEMAIL
  2.2.2.48) of a meeting message, built from its iCalendar through the
  calendar converter, for render.py to place after MessageClass.
- L{after_write}: the organizer's side. After a 16.0 or 16.1 device
  added, changed or deleted an event in a calendar (bluesync/eas/pim.py,
  commands/sync.py), the attendees hear of it by iMIP (RFC 6047): REQUEST
  for a new meeting or a change (a new SEQUENCE when the change matters,
  RFC 5546 2.1.4), CANCEL for a deleted meeting or removed attendees. Mail
  goes through composemail.send_message, so local attendees get it in
  their Inbox (and calendar) at once and others through the relay queue.
  Older clients send their meeting mail themselves with SendMail
  (MS-ASCAL 3.1.4.5, the MS-ASCMD 4.16 example), as they send their
  answers (MS-ASCMD 2.2.1.11); from 16.0 the server does (the client
  does not even name the organizer, MS-ASCAL 2.2.2.35), so doing it for
  them too would invite everyone twice.
- L{imip_message}: the multipart/alternative (text/plain + text/calendar;
  method=...) such mail is, also used for MeetingResponse replies.
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
from datetime import datetime, timezone, tzinfo
from email.message import EmailMessage

from lxml import etree
from twisted.internet import defer
from twisted.logger import Logger

from bluesync.eas import composemail
from bluesync.eas.context import CommandContext
from bluesync.items import _eas, _ical, calendar, imip, scheduling
from bluesync.items import timezone as tzblob
from bluesync.items._eas import AIRSYNCBASE, CALENDAR, ConversionError, find, text
from bluesync.mail import calendar_ingest

log = Logger()

EMAIL = "Email:"
EMAIL2 = "Email2:"
UTC = timezone.utc

# MS-ASEMAIL 2.2.2.39 InstanceType.
SINGLE, RECURRING_MASTER, EXCEPTION = 0, 1, 3
# MS-ASEMAIL 2.2.2.47 MeetingMessageType.
SILENT, INITIAL, FULL_UPDATE = 0, 1, 2

_RECURRENCE_ORDER = ("Type", "Interval", "Until", "Occurrences", "WeekOfMonth", "DayOfMonth",
                     "DayOfWeek", "MonthOfYear")
_RECURRENCE_EMAIL2 = ("CalendarType", "IsLeapMonth", "FirstDayOfWeek")


# ---------------------------------------------------------------------------
# Email:MeetingRequest

def _el(parent, namespace: str, name: str, value=None):
    return _eas.el(parent, namespace, name, value)


def _iso(compact: str | None) -> str | None:
    moment = _eas.parse_datetime(compact) if compact else None
    return _eas.iso(moment) if moment is not None else None


def _organizer(event) -> str | None:
    value = event.get("ORGANIZER")
    if value is None:
        return None
    who = scheduling.address(value)
    name = str(value.params.get("CN", "") or "")
    return email.utils.formataddr((name, who)) if name else who


def _response_requested(event, owner: str | None) -> int:
    for who, value in scheduling.attendees_of(event).items():
        if owner and who == owner.lower():
            return 1 if str(value.params.get("RSVP", "")).upper() == "TRUE" else 0
    return 1


def _intended_busy(event, data) -> int:
    for name in (scheduling.INTENDED, scheduling.BUSY):
        if name in event:
            value = calendar.BUSY_VALUES.get(_ical.x_text(event[name]).upper())
            if value is not None and not (name == scheduling.BUSY and value == 1):
                return value
    busy = text(data, CALENDAR, "BusyStatus") if data is not None else None
    return int(busy) if busy and busy.isdigit() and busy != "1" else 2


def _recurrences(parent, data) -> None:
    source = find(data, CALENDAR, "Recurrence") if data is not None else None
    if source is None:
        return
    recurrence = _el(_el(parent, EMAIL, "Recurrences"), EMAIL, "Recurrence")
    for name in _RECURRENCE_ORDER:
        value = text(source, CALENDAR, name)
        if value is None:
            continue
        _el(recurrence, EMAIL, name, _iso(value) if name == "Until" else value)
    for name in _RECURRENCE_EMAIL2:
        value = text(source, CALENDAR, name)
        if value is not None:
            _el(recurrence, EMAIL2, name, value)


def _stamp(event, data) -> str:
    """DtStamp is required: the message's DTSTAMP, else the event's, else the FILETIME epoch."""
    stamp = getattr(event.get("DTSTAMP"), "dt", None)
    if isinstance(stamp, datetime):
        return _eas.iso(stamp)
    found = _iso(text(data, CALENDAR, "DtStamp")) if data is not None else None
    return found or _eas.iso(datetime(1601, 1, 1, tzinfo=UTC))


def meeting_request(ics: str | bytes | None, version: str, *, tz: tzinfo | None = None,
                    owner: str | None = None):
    """
    The Email:MeetingRequest of a meeting message (MS-ASEMAIL 2.2.2.48),
    children in the order of the spec's list: AllDayEvent, StartTime,
    DtStamp, EndTime, InstanceType, Location (airsyncbase:Location from
    16.0), Organizer, RecurrenceId, Reminder (seconds), ResponseRequested,
    Recurrences, Sensitivity, BusyStatus (the one the organizer intends,
    not the tentative one an unanswered meeting shows), TimeZone,
    GlobalObjId (up to 14.1; calendar:UID from 16.0), DisallowNewTimeProposal
    (14.0+), email2:MeetingMessageType (14.1+). None when the message has
    no readable meeting. `owner` is the account's address (its RSVP is
    ResponseRequested).
    """
    if ics is None:
        return None
    try:
        parsed = imip.parse(ics)
    except ConversionError:
        return None
    v = _eas.version_tuple(version)
    event = parsed.event
    data = None
    if "DTSTART" in event:
        try:
            data = calendar.to_eas(ics, version, tz=tz, owner=owner)
        except Exception as e:           # an odd event still makes a message
            log.info("meeting {uid}: event not readable for MeetingRequest: {error}", uid=parsed.uid, error=str(e))
            data = None
    element = etree.Element(f"{{{EMAIL}}}MeetingRequest")
    if data is not None:
        _el(element, EMAIL, "AllDayEvent", text(data, CALENDAR, "AllDayEvent") or "0")
        _el(element, EMAIL, "StartTime", _iso(text(data, CALENDAR, "StartTime")))
    _el(element, EMAIL, "DtStamp", _stamp(event, data))
    if data is not None:
        _el(element, EMAIL, "EndTime", _iso(text(data, CALENDAR, "EndTime")))
    recurring = "RRULE" in event or "RDATE" in event
    instance = parsed.recurrence_id
    _el(element, EMAIL, "InstanceType", EXCEPTION if instance is not None else
        RECURRING_MASTER if recurring else SINGLE)
    if data is not None:
        if v >= (16, 0):
            location = find(data, AIRSYNCBASE, "Location")
            if location is not None:
                element.append(location)
        elif text(data, CALENDAR, "Location") is not None:
            _el(element, EMAIL, "Location", text(data, CALENDAR, "Location"))
    organizer = _organizer(event)
    if organizer:
        _el(element, EMAIL, "Organizer", organizer)
    if instance is not None:
        _el(element, EMAIL, "RecurrenceId", _eas.iso(instance if isinstance(instance, datetime)
                                                     else datetime.combine(instance, datetime.min.time(), UTC)))
    reminder = text(data, CALENDAR, "Reminder") if data is not None else None
    if reminder and reminder.isdigit():
        _el(element, EMAIL, "Reminder", int(reminder) * 60)
    _el(element, EMAIL, "ResponseRequested", _response_requested(event, owner))
    _recurrences(element, data)
    _el(element, EMAIL, "Sensitivity", (text(data, CALENDAR, "Sensitivity") if data is not None else None) or "0")
    _el(element, EMAIL, "BusyStatus", _intended_busy(event, data))
    # The Calendar page spells the token Timezone (MS-ASCAL); older code TimeZone.
    zone = (text(data, CALENDAR, "Timezone") or text(data, CALENDAR, "TimeZone")) if data is not None else None
    if not zone:
        start = getattr(event.get("DTSTART"), "dt", None)
        zone = tzblob.from_zone(tz or UTC, start.year if start is not None else 2000).to_base64()
    _el(element, EMAIL, "TimeZone", zone)
    if v < (16, 0):
        value = scheduling.global_obj_id(parsed.uid, instance)
        _el(element, EMAIL, "GlobalObjId", base64.b64encode(value).decode("ascii"))
    else:
        _el(element, CALENDAR, "UID", parsed.uid)
    if v >= (14, 0):
        counter = event.get("X-MICROSOFT-DISALLOW-COUNTER")
        _el(element, EMAIL, "DisallowNewTimeProposal",
            1 if counter is not None and _ical.x_text(counter).upper() == "TRUE" else 0)
    if v >= (14, 1):
        kind = SILENT if parsed.method != "REQUEST" else FULL_UPDATE if parsed.sequence > 0 else INITIAL
        _el(element, EMAIL2, "MeetingMessageType", kind)
    return element


# ---------------------------------------------------------------------------
# iMIP mail

def imip_message(*, sender: str, sender_name: str, to: list[str], subject: str, body: str,
                 ics: bytes, method: str) -> bytes:
    """
    An iMIP message (RFC 6047 2.4): multipart/alternative with the text
    for people and the text/calendar part with the same METHOD.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.utils.formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["MIME-Version"] = "1.0"
    message.set_content(body or "", subtype="plain", charset="utf-8")
    message.add_alternative(ics.decode("utf-8"), subtype="calendar", charset="utf-8",
                            params={"method": method})
    return message.as_bytes()


def summary(stored: bytes | str) -> str:
    try:
        return calendar.columns(stored)["subject"] or ""
    except Exception:
        return ""


def _when(stored: bytes | str) -> str:
    try:
        found = calendar.columns(stored)
    except Exception:
        return ""
    return f"When: {found['start']:%Y-%m-%d %H:%M} UTC"


async def deliverable(ctx: CommandContext, recipients: list[str]) -> list[str]:
    """
    The recipients mail can reach now: all, or only local accounts when
    no relay is configured (the others are logged, and the local ones
    still hear of the meeting).
    """
    outbound = ctx.server.outbound
    if outbound is not None and outbound.relay_configured:
        return recipients
    kept = []
    for recipient in recipients:
        if await ctx.server.store.accounts.by_address(recipient) is not None:
            kept.append(recipient)
    if len(kept) < len(recipients):
        log.warn("{account}: meeting mail to {recipients} not sent: no SMTP relay, set {setting}",
                 account=ctx.account.address, recipients=[r for r in recipients if r not in kept],
                 setting="[mail] relay_host")
    return kept


async def send(ctx: CommandContext, *, to: list[str], subject: str, body: str, ics: bytes,
               method: str, command: str) -> bool:
    """Send one iMIP message from the account; whether it was accepted."""
    to = await deliverable(ctx, to)
    if not to:
        return False
    message = imip_message(sender=ctx.account.address, sender_name=ctx.account.display_name, to=to,
                           subject=subject, body=body, ics=ics, method=method)
    try:
        await composemail.send_message(ctx, message, command=command)
    except composemail.ComposeFailure as e:
        log.warn("{account}: {method} to {to} not sent: {status} {reason}", account=ctx.account.address,
                 method=method, to=to, status=e.status, reason=str(e))
        return False
    return True


# ---------------------------------------------------------------------------
# The organizer's side of Sync

def _now(ctx: CommandContext) -> datetime:
    return datetime.fromtimestamp(ctx.server.clock.seconds(), UTC).replace(microsecond=0)


async def after_write(ctx: CommandContext, folder, item_id: int, before: bytes | None, after: bytes | None,
                      own_changes: dict[int, int] | None = None, tz: tzinfo | None = None) -> None:
    """
    Tell a meeting's attendees what a 16.x device just did to it: call
    after a calendar Add (C{before} None), Change, or Delete (C{after}
    None) from a device has been stored. The ORGANIZER and SEQUENCE the
    mail needs are written to the event and recorded in C{own_changes}
    (item id -> modseq, the Sync's own changes) so the device is not sent
    its own event back. Never raises: the device's change is stored
    whatever mail can or cannot be sent.
    """
    if folder.content_class != "Calendar" or ctx.version_number < 16.0:
        return
    try:
        await _after_write(ctx, folder, item_id, before, after, own_changes, tz)
    except defer.CancelledError:
        raise
    except Exception:
        log.failure("{account}: meeting mail for event {item} failed", account=ctx.account.address, item=item_id)


async def before_delete(ctx: CommandContext, folder, item_id: int | None) -> bytes | None:
    """The content of a calendar event about to be deleted (for L{after_write}); None otherwise."""
    if folder.content_class != "Calendar" or item_id is None or ctx.version_number < 16.0:
        return None
    item = (await ctx.server.store.items.get_many(ctx.account.id, [item_id], folder.id)).get(item_id)
    return item.content if item is not None else None


async def _after_write(ctx, folder, item_id, before, after, own_changes, tz) -> None:
    store = ctx.server.store
    account = ctx.account
    own = await calendar_ingest.own_addresses(store, account)
    try:
        plan = scheduling.plan(before, after, own)
    except ConversionError as e:
        log.info("{account}: event {item} not readable for meeting mail: {error}", account=account.address,
                 item=item_id, error=str(e))
        return
    if plan.empty:
        return
    now = _now(ctx)
    current = after
    if after is not None and plan.request_to:
        ready = scheduling.prepared(after, account.address, account.display_name, plan.bump)
        if ready != after:
            current = await _store_prepared(ctx, folder, item_id, after, ready, plan.bump, own_changes, tz)
            if current is None:
                return
    if plan.cancel_all and before is not None:
        await send(ctx, to=scheduling.invitees(before, own),
                   subject=f"Canceled: {summary(before)}", body=f"{summary(before)} is canceled.",
                   ics=imip.cancel(before, now=now), method="CANCEL", command="Sync")
    if plan.cancel_to and before is not None:
        await send(ctx, to=plan.cancel_to, subject=f"Canceled: {summary(before)}",
                   body=f"You are no longer invited to {summary(before)}.",
                   ics=imip.cancel(before, now=now, attendees=plan.cancel_to), method="CANCEL", command="Sync")
    if plan.request_to and current is not None:
        title = summary(current)
        subject = f"Updated: {title}" if scheduling.sequence_of(current) > 0 else title
        await send(ctx, to=plan.request_to, subject=subject, body=f"{title}\n{_when(current)}",
                   ics=imip.request(current, now=now), method="REQUEST", command="Sync")
    log.info("{account}: meeting {item}: REQUEST to {request}, CANCEL to {cancel}{all}",
             account=account.address, item=item_id, request=plan.request_to, cancel=plan.cancel_to,
             all=" and everyone" if plan.cancel_all else "")


async def _store_prepared(ctx, folder, item_id, after, ready, bump, own_changes, tz) -> bytes | None:
    """Write the ORGANIZER / SEQUENCE the mail needs; the content sent, None if the event is gone."""
    account = ctx.account
    written: list[bytes] = []

    def edit(content: bytes):
        result = ready if content == after else scheduling.prepared(content, account.address,
                                                                    account.display_name, bump)
        written.append(result)
        return result

    outcome, modseq = await calendar_ingest.rewrite(ctx.server.store, account, folder, item_id, edit, tz)
    if outcome == "gone":
        return None
    if modseq is not None and own_changes is not None:
        own_changes[item_id] = modseq
    return written[-1] if written else after

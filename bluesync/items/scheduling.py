"""
What iTIP messages (RFC 5546) do to stored events: pure functions from
iCalendar text to iCalendar text, no I/O. The mail layer applies inbound
iMIP with them (bluesync/mail/calendar_ingest.py); MeetingResponse and the
organizer's side of Sync use them too (bluesync/eas/meetings.py).

    received(invitation, own, stored=None) -> bytes          REQUEST, attendee side
    cancelled(invitation, stored, tz=None) -> bytes | None   CANCEL (None: remove the event)
    replied(stored, reply, sender) -> bytes | None           REPLY, organizer side (None: no change)
    responded(stored, own, response, instance=None, tz=None) -> bytes | None
                                                             the user's answer (None: remove)
    plan(before, after, own) -> Plan                         what an organizer's edit sends
    prepared(stored, organizer, name, bump) -> bytes         ORGANIZER set, SEQUENCE bumped
    global_obj_id(uid, instance=None) -> bytes               MS-ASEMAIL 2.2.2.37

`own` is the set of the account's addresses (lower case). An attendee's
copy of a meeting keeps the organizer's event as sent, with the user's
PARTSTAT on the attendee line that is theirs, and a busy status that
shows an unanswered or tentative meeting as tentative: the intended one
is kept in X-MICROSOFT-CDO-INTENDEDSTATUS (as Outlook writes it) and
comes back when the meeting is accepted.
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

import icalendar
from dateutil import rrule as dateutil_rrule

from bluesync.items import _eas, _ical
from bluesync.items._eas import UTC, ConversionError
from bluesync.items.calendar import KEPT_MEETING_STATUS, delete_instance

__all__ = [
    "NoSuchInstance", "Plan", "attendees_of", "cancelled", "global_obj_id", "invitees", "is_organizer",
    "occurrence", "organizer_of", "own_attendee", "partstat_of", "plan", "prepared", "received", "replied",
    "reply_source", "responded",
    "sent_by_organizer", "sequence_of", "uid_from_global_obj_id",
]

BUSY = "X-MICROSOFT-CDO-BUSYSTATUS"
INTENDED = "X-MICROSOFT-CDO-INTENDEDSTATUS"
RESPONSES = {1: "ACCEPTED", 2: "TENTATIVE", 3: "DECLINED"}
UNANSWERED = ("", "NEEDS-ACTION", "TENTATIVE")
RECEIVED = "3"          # MeetingStatus: a meeting received (MS-ASCAL 2.2.2.29)

# Properties whose change is one attendees must hear about (RFC 5546
# 2.1.4: the organizer increments SEQUENCE for these).
SIGNIFICANT = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "SUMMARY",
               "LOCATION", "DESCRIPTION", "STATUS")

# MS-ASEMAIL 2.2.2.37 / MS-OXOCAL 2.2.1.27: the class id that starts every GlobalObjectId.
CLASS_ID = bytes.fromhex("040000008200E00074C5B7101A82E008")


# ---------------------------------------------------------------------------
# Reading

def address(value) -> str:
    text = str(value or "").strip()
    return (text[7:] if text.lower().startswith("mailto:") else text).strip().lower()


def _events(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return [c for c in calendar.subcomponents if c.name == "VEVENT"]


def _master(calendar: icalendar.Calendar) -> icalendar.Event | None:
    return next((e for e in _events(calendar) if "RECURRENCE-ID" not in e), None)


def _key(event) -> str | None:
    """An occurrence's identity: its RECURRENCE-ID in UTC (None: the master)."""
    if "RECURRENCE-ID" not in event:
        return None
    return instance_key(event["RECURRENCE-ID"].dt)


def instance_key(value) -> str:
    if isinstance(value, datetime):
        return _eas.compact(value)
    return value.isoformat()


def sequence_of(stored: bytes | str) -> int:
    master = _master(_ical.parse(stored))
    if master is None:
        events = _events(_ical.parse(stored))
        master = events[0] if events else None
    return int(master.get("SEQUENCE", 0)) if master is not None else 0


def organizer_of(stored: bytes | str) -> str:
    """The organizer's address, lower case ("" when there is none)."""
    for event in _events(_ical.parse(stored)):
        if "ORGANIZER" in event:
            return address(event["ORGANIZER"])
    return ""


def is_organizer(stored: bytes | str, own: set[str]) -> bool:
    return organizer_of(stored) in own


def sent_by_organizer(stored: bytes | str, sender: str) -> bool:
    """
    Whether C{sender} (the From of an iTIP message) is the ORGANIZER of
    every event of the stored meeting, or the SENT-BY acting for it (RFC
    5546 3.2, RFC 6047 3): anyone may invite, but only the organizer may
    change or cancel a meeting already in someone's calendar.  The stored
    event decides, not the message: its sender writes its SENT-BY.
    """
    sender = sender.lower()
    events = _events(_ical.parse(stored))
    for event in events:
        value = event.get("ORGANIZER")
        if value is None or sender not in (address(value), address(value.params.get("SENT-BY", ""))):
            return False
    return bool(sender) and bool(events)


def attendees_of(event) -> dict[str, object]:
    """Address (lower case) -> ATTENDEE value, in order."""
    return {address(value): value for value in _ical.values(event, "ATTENDEE")}


def partstat_of(stored: bytes | str, own: set[str], key: str | None = None) -> str:
    for event in _events(_ical.parse(stored)):
        if _key(event) == key:
            return _partstat(event, own)
    return ""


def _partstat(event, own: set[str]) -> str:
    for addr, value in attendees_of(event).items():
        if addr in own:
            return str(value.params.get("PARTSTAT", "")).upper()
    return ""


# ---------------------------------------------------------------------------
# The attendee's copy

def _set_partstat(event, own: set[str], partstat: str) -> bool:
    """Give the user's ATTENDEE lines this PARTSTAT; whether one was found."""
    found = False
    for addr, value in attendees_of(event).items():
        if addr in own:
            value.params["PARTSTAT"] = partstat
            if partstat != "NEEDS-ACTION":
                value.params.pop("RSVP", None)
            found = True
    return found


def _intended(event) -> str:
    if INTENDED in event:
        return _ical.x_text(event[INTENDED]).upper()
    if BUSY in event:
        shown = _ical.x_text(event[BUSY]).upper()
        # An organizer's client may itself send TENTATIVE for the attendee's copy.
        return "BUSY" if shown == "TENTATIVE" else shown
    if str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
        return "FREE"
    return "BUSY"


def _show_as(event, partstat: str) -> None:
    """The busy status an answer gives (an unanswered meeting shows tentative)."""
    intended = _intended(event)
    event.pop(INTENDED, None)
    _ical.add_text(event, INTENDED, intended)
    shown = "TENTATIVE" if intended == "BUSY" and partstat in UNANSWERED else intended
    event.pop(BUSY, None)
    _ical.add_text(event, BUSY, shown)


def _mark_received(event) -> None:
    event.pop(KEPT_MEETING_STATUS, None)
    _ical.add_text(event, KEPT_MEETING_STATUS, RECEIVED)


def _alarms(event) -> list:
    return [c for c in event.subcomponents if c.name == "VALARM"]


def received(invitation: bytes | str, own: set[str], stored: bytes | str | None = None) -> bytes:
    """
    The attendee's event after a REQUEST (RFC 5546 3.2.2): the
    organizer's VEVENTs as sent, the user's PARTSTAT NEEDS-ACTION (kept
    from `stored` when the SEQUENCE did not change, so a resent request
    does not undo an answer), MeetingStatus 3, tentative until answered,
    and the user's own reminders kept. A request for one occurrence
    replaces that occurrence of the stored series only.
    """
    source = _ical.parse(invitation)
    uid = str((_master(source) or (_events(source) or [{}])[0]).get("UID", ""))
    incoming = [e for e in _events(source) if str(e.get("UID", "")) == uid]
    if not incoming:
        raise ConversionError("no VEVENT in the request")
    previous = _ical.parse(stored) if stored is not None else None
    old = {_key(e): e for e in _events(previous)} if previous is not None else {}
    calendar = _ical.new_calendar()
    zones = {str(z.get("TZID")): z for z in source.walk("VTIMEZONE")}
    keep = []
    if previous is not None and all(_key(e) is not None for e in incoming) and None in old:
        # One occurrence: the rest of the stored series stays.
        replaced = {_key(e) for e in incoming}
        keep = [e for e in _events(previous) if _key(e) not in replaced]
        for zone in previous.walk("VTIMEZONE"):
            zones.setdefault(str(zone.get("TZID")), zone)
    for zone in zones.values():
        calendar.add_component(zone)
    for event in keep:
        calendar.add_component(event)
    for event in incoming:
        before = old.get(_key(event))
        partstat = _partstat(event, own)
        if partstat not in ("ACCEPTED", "TENTATIVE", "DECLINED"):
            partstat = "NEEDS-ACTION"
        if before is not None and int(before.get("SEQUENCE", 0)) == int(event.get("SEQUENCE", 0)):
            partstat = _partstat(before, own) or partstat
        _set_partstat(event, own, partstat)
        _show_as(event, partstat)
        _mark_received(event)
        if before is not None and not _alarms(event):
            for alarm in _alarms(before):
                event.add_component(alarm)
        calendar.add_component(event)
    return _ical.serialise(calendar)


def cancelled(invitation: bytes | str, stored: bytes | str, tz: tzinfo | None = None) -> bytes | None:
    """
    The attendee's event after a CANCEL (RFC 5546 3.2.5): None when the
    whole meeting is cancelled (the event is removed); for occurrences,
    the series without them (EXDATEs).
    """
    source = _ical.parse(invitation)
    events = _events(source)
    if not events or any("RECURRENCE-ID" not in e for e in events):
        return None
    previous = _ical.parse(stored)
    if _master(previous) is None:
        return None
    result: bytes | str = stored
    for event in events:
        result = delete_instance(result, _instance_id(event["RECURRENCE-ID"].dt), tz=tz)
    return result


def replied(stored: bytes | str, reply: bytes | str, sender: str) -> bytes | None:
    """
    The organizer's event after an attendee's REPLY (RFC 5546 3.2.3): the
    PARTSTAT of that attendee, in the occurrence the reply names or (for
    the whole meeting) in the series and every occurrence. Only an
    attendee of the event may answer, and only from their own address
    (or the one the SENT-BY of the stored event names for them: the
    reply's own SENT-BY is whatever its sender wrote); a reply to an
    older SEQUENCE is stale. None when nothing changes.
    """
    calendar = _ical.parse(stored)
    answer = _ical.parse(reply)
    sender = sender.lower()
    changed = False
    for event in _events(answer):
        key = _key(event)
        targets = [e for e in _events(calendar) if key is None or _key(e) == key]
        master = _master(calendar)
        reference = next((e for e in targets if _key(e) == key), master)
        if reference is None or int(event.get("SEQUENCE", 0)) < int(reference.get("SEQUENCE", 0)):
            continue
        for value in _ical.values(event, "ATTENDEE"):
            who = address(value)
            partstat = str(value.params.get("PARTSTAT", "")).upper()
            if not partstat:
                continue
            for target in targets:
                line = attendees_of(target).get(who)
                if line is None or sender not in (who, address(line.params.get("SENT-BY", ""))):
                    continue
                if str(line.params.get("PARTSTAT", "")).upper() != partstat:
                    line.params["PARTSTAT"] = partstat
                    line.params.pop("RSVP", None)
                    line.params.pop("X-EAS-ATTENDEESTATUS", None)
                    changed = True
    return _ical.serialise(calendar) if changed else None


class NoSuchInstance(ValueError):
    """MeetingResponse names an occurrence the meeting does not have."""


def responded(stored: bytes | str, own: set[str], response: int, instance: datetime | None = None,
              tz: tzinfo | None = None) -> bytes | None:
    """
    The attendee's event after the user answers (MeetingResponse
    UserResponse 1 accept, 2 tentative, 3 decline): None when the whole
    meeting is declined (the event is removed); a declined occurrence
    leaves the series (an EXDATE); otherwise the user's PARTSTAT and the
    busy status it implies, for the whole meeting or the one occurrence
    `instance` (its original start), made an exception if it was not one.

    @raise NoSuchInstance: `instance` is not an occurrence of the event.
    """
    partstat = RESPONSES[response]
    calendar = _ical.parse(stored)
    if instance is None:
        if partstat == "DECLINED":
            return None
        for event in _events(calendar):
            _set_partstat(event, own, partstat)
            _show_as(event, partstat)
        return _ical.serialise(calendar)
    master = _master(calendar)
    if master is None or "RRULE" not in master and "RDATE" not in master:
        raise NoSuchInstance("not a recurring meeting")
    original = _occurrence(master, instance, tz)
    if original is None:
        raise NoSuchInstance(f"no occurrence at {instance.isoformat()}")
    if partstat == "DECLINED":
        return delete_instance(stored, _instance_id(original), tz=tz)
    key = instance_key(original)
    override = next((e for e in _events(calendar) if _key(e) == key), None)
    if override is None:
        override = _override(master, original)
        calendar.add_component(override)
    _set_partstat(override, own, partstat)
    _show_as(override, partstat)
    return _ical.serialise(calendar)


def reply_source(stored: bytes | str, instance: datetime | None = None, tz: tzinfo | None = None) -> bytes:
    """
    The event as the REQUEST an answer replies to (for imip.reply): all of
    it, or only the occurrence starting at `instance`, as an exception.

    @raise NoSuchInstance: `instance` is not an occurrence of the event.
    """
    calendar = _ical.parse(stored)
    events = _events(calendar)
    if instance is not None:
        master = _master(calendar)
        original = _occurrence(master, instance, tz) if master is not None else None
        if original is None:
            raise NoSuchInstance(f"no occurrence at {instance.isoformat()}")
        key = instance_key(original)
        events = [next((e for e in events if _key(e) == key), None) or _override(master, original)]
    result = _ical.new_calendar()
    result.add("METHOD", "REQUEST")
    for zone in calendar.walk("VTIMEZONE"):
        result.add_component(zone)
    for event in events:
        result.add_component(event)
    return _ical.serialise(result)


def own_attendee(stored: bytes | str, own: set[str]) -> str | None:
    """The user's address as the event's ATTENDEE lines write it."""
    for event in _events(_ical.parse(stored)):
        for addr, value in attendees_of(event).items():
            if addr in own:
                text = str(value)
                return text[7:] if text.lower().startswith("mailto:") else text
    return None


def occurrence(stored: bytes | str, instance: datetime, tz: tzinfo | None = None):
    """The original start of the occurrence at `instance` (UTC), or None."""
    master = _master(_ical.parse(stored))
    return _occurrence(master, instance, tz) if master is not None else None


def _instance_id(original) -> str:
    if isinstance(original, datetime):
        return _eas.compact(original)
    return _eas.compact(datetime.combine(original, time(0), UTC))


def _occurrence(master, instance: datetime, tz: tzinfo | None):
    """The master's occurrence starting at `instance`, as its RECURRENCE-ID value."""
    start = master["DTSTART"].dt
    instance = _eas.utc(instance)
    if not isinstance(start, datetime):
        # An all-day occurrence is named by its date at 00:00Z (16.x) or by
        # local midnight in the user's zone (older clients).
        days = {instance.date(), instance.astimezone(tz).date() if tz is not None else instance.date()}
        rule_start = datetime.combine(start, time(0))
        wanted = [datetime.combine(day, time(0)) for day in sorted(days)]
    else:
        zone = start.tzinfo or tz or UTC
        rule_start = start if start.tzinfo else start.replace(tzinfo=zone)
        wanted = [instance]
    try:
        rules = dateutil_rrule.rruleset()
        for rule in _ical.values(master, "RRULE"):
            rules.rrule(dateutil_rrule.rrulestr(_rule_text(rule, rule_start), dtstart=rule_start))
        for value in _ical.values(master, "RDATE"):
            for item in getattr(value, "dts", [value]):
                rules.rdate(_aligned(item.dt, rule_start))
        for moment in wanted:
            found = rules.between(moment - timedelta(seconds=1), moment + timedelta(seconds=1), inc=True)
            if found:
                return found[0] if isinstance(start, datetime) else found[0].date()
    except (ValueError, TypeError):
        return None
    return None


def _aligned(value, like: datetime):
    if isinstance(value, datetime):
        if value.tzinfo is None and like.tzinfo is not None:
            return value.replace(tzinfo=like.tzinfo)
        return value
    return datetime.combine(value, time(0), like.tzinfo)


def _rule_text(rule, start: datetime) -> str:
    """An RRULE as dateutil reads it with `start` (UNTIL in the same form)."""
    text = rule.to_ical().decode()
    until = rule.get("UNTIL")
    if not until:
        return text
    moment = until[0]
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(23, 59, 59), start.tzinfo)
    elif moment.tzinfo is None and start.tzinfo is not None:
        moment = moment.replace(tzinfo=start.tzinfo)
    parts = [p for p in text.split(";") if not p.startswith("UNTIL=")]
    if start.tzinfo is None:
        parts.append("UNTIL=" + moment.replace(tzinfo=None).strftime("%Y%m%dT%H%M%S"))
    else:
        parts.append("UNTIL=" + moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return ";".join(parts)


_NOT_COPIED = {"RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", "DTSTART", "DTEND", "DURATION"}


def _override(master, original) -> icalendar.Event:
    """An exception VEVENT for one occurrence, as the series has it."""
    override = icalendar.Event()
    for name, value in master.property_items(recursive=False):
        if name in ("BEGIN", "END") or name in _NOT_COPIED:
            continue
        # A copy: the exception's attendees change apart from the series'.
        override.add(name, copy.deepcopy(value))
    start = master["DTSTART"]
    end = master.get("DTEND")
    duration = (end.dt - start.dt) if end is not None else master.get("DURATION", None)
    duration = getattr(duration, "dt", duration)
    if duration is None:
        duration = timedelta(0) if isinstance(start.dt, datetime) else timedelta(days=1)
    params = {"TZID": start.params["TZID"]} if "TZID" in start.params else None
    value = original
    if isinstance(original, datetime) and isinstance(start.dt, datetime):
        value = original.astimezone(start.dt.tzinfo) if start.dt.tzinfo else original.replace(tzinfo=None)
    override.add("RECURRENCE-ID", value, parameters=params)
    override.add("DTSTART", value, parameters=params)
    override.add("DTEND", value + duration, parameters=params)
    for alarm in _alarms(master):
        override.add_component(copy.deepcopy(alarm))
    return override


# ---------------------------------------------------------------------------
# The organizer's side

@dataclass
class Plan:
    """
    What an organizer's edit of a meeting sends: REQUEST to `request_to`
    (a new SEQUENCE first when `bump`), CANCEL to `cancel_to`; `cancel_all`
    when the meeting itself is gone or cancelled.
    """
    request_to: list[str] = field(default_factory=list)
    cancel_to: list[str] = field(default_factory=list)
    cancel_all: bool = False
    bump: bool = False

    @property
    def empty(self) -> bool:
        return not (self.request_to or self.cancel_to or self.cancel_all)


def _invitees(calendar, own: set[str]) -> list[str]:
    found: dict[str, None] = {}
    for event in _events(calendar):
        for addr, value in attendees_of(event).items():
            if addr and addr not in own and "@" in addr:
                found.setdefault(addr)
    return list(found)


def invitees(stored: bytes | str, own: set[str]) -> list[str]:
    """The attendees of an event other than the account, lower case, in order."""
    return _invitees(_ical.parse(stored), own)


def _organised(calendar, own: set[str]) -> bool:
    """A meeting the account organises: ORGANIZER is its, or absent with attendees."""
    master = _master(calendar) or (_events(calendar) or [None])[0]
    if master is None:
        return False
    if "ORGANIZER" in master:
        return address(master["ORGANIZER"]) in own
    return bool(_invitees(calendar, own))


def _cancelled(calendar) -> bool:
    master = _master(calendar)
    return master is not None and str(master.get("STATUS", "")).upper() == "CANCELLED"


def _signature(calendar) -> dict:
    """What attendees must be told about when it changes, per occurrence."""
    found = {}
    for event in _events(calendar):
        found[_key(event)] = tuple(
            tuple(v.to_ical() if hasattr(v, "to_ical") else str(v) for v in _ical.values(event, name))
            for name in SIGNIFICANT)
    return found


def plan(before: bytes | str | None, after: bytes | str | None, own: set[str]) -> Plan:
    """
    The iTIP messages an organizer's Add, Change or Delete calls for (RFC
    5546 3.2.2, 3.2.5): a new meeting invites everyone; a change of time,
    place, recurrence, title or description re-invites everyone with a
    new SEQUENCE; attendees added alone get the request, attendees removed
    a cancellation; a deleted or cancelled meeting cancels for all. Events
    the account does not organise, and changes of reminder, categories or
    busy status, send nothing.
    """
    old = _ical.parse(before) if before is not None else None
    new = _ical.parse(after) if after is not None else None
    old_meeting = old is not None and _organised(old, own) and bool(_invitees(old, own)) and not _cancelled(old)
    new_meeting = new is not None and _organised(new, own) and bool(_invitees(new, own))
    result = Plan()
    if new is None or (new_meeting and _cancelled(new)):
        result.cancel_all = old_meeting
        return result
    if not new_meeting:
        if old_meeting:
            result.cancel_to = _invitees(old, own)
        return result
    invitees = _invitees(new, own)
    if not old_meeting:
        result.request_to = invitees
        return result
    previous = _invitees(old, own)
    result.cancel_to = [a for a in previous if a not in invitees]
    if _signature(old) != _signature(new):
        result.request_to = invitees
        result.bump = True
    else:
        result.request_to = [a for a in invitees if a not in previous]
    return result


def prepared(stored: bytes | str, organizer: str, name: str, bump: bool) -> bytes:
    """
    The organizer's stored event ready to be sent: ORGANIZER set to the
    account where the device left it out, and SEQUENCE one higher in
    every VEVENT when `bump` (RFC 5546 2.1.4).
    """
    calendar = _ical.parse(stored)
    for event in _events(calendar):
        if "ORGANIZER" not in event:
            event.add("ORGANIZER", icalendar.vCalAddress(f"mailto:{organizer}"),
                      parameters={"CN": name} if name else None)
        if bump:
            sequence = int(event.get("SEQUENCE", 0)) + 1
            event.pop("SEQUENCE", None)
            event.add("SEQUENCE", sequence)
    return _ical.serialise(calendar)


# ---------------------------------------------------------------------------
# GlobalObjId

def global_obj_id(uid: str, instance: date | datetime | None = None) -> bytes:
    """
    The Outlook GlobalObjectId of a meeting (MS-ASEMAIL 2.2.2.37,
    MS-OXOCAL 2.2.1.27): a UID that is itself a hex GlobalObjectId (as
    Outlook and Exchange write them) is decoded; any other UID is wrapped
    as a "vCal-Uid" identifier, which a client turns back into the UID
    (MS-ASEMAIL 3.1.4.7). `instance` fills the instance date of one
    occurrence. Creation time is left zero: clients do not read it, and
    the same meeting keeps one identifier.
    """
    text = uid.strip()
    data = None
    if len(text) % 2 == 0 and text[:32].upper() == CLASS_ID.hex().upper():
        try:
            data = bytes.fromhex(text)
        except ValueError:
            data = None
    if data is None or len(data) < 40:
        payload = b"vCal-Uid" + struct.pack("<I", 1) + text.encode("utf-8") + b"\x00"
        data = CLASS_ID + b"\x00" * 4 + b"\x00" * 8 + b"\x00" * 8 + struct.pack("<I", len(payload)) + payload
    if instance is not None:
        day = instance.date() if isinstance(instance, datetime) else instance
        data = data[:16] + struct.pack(">HBB", day.year, day.month, day.day) + data[20:]
    return data


def uid_from_global_obj_id(data: bytes) -> str:
    """The UID a client derives from a GlobalObjId (MS-ASEMAIL 3.1.4.7)."""
    if len(data) >= 53 and data[40:48] == b"vCal-Uid":
        (count,) = struct.unpack("<I", data[36:40])
        if 13 <= count <= len(data) - 40:
            return data[52:40 + count - 1].decode("utf-8")
    return (data[:16] + b"\x00" * 4 + data[20:]).hex().upper()

"""
iTIP/iMIP helpers (RFC 5546, RFC 6047) for meetings: read an invitation,
answer it, and write requests and cancellations. Pure: they build and read
iCalendar text; the mail layer wraps it in a text/calendar MIME part with
the same METHOD.

    parse(ics) -> Invitation(method, uid, sequence, organizer, attendees, event, calendar)
    reply(invitation_or_ics, attendee, response, *, now, comment=None) -> bytes   (METHOD:REPLY)
    request(stored, *, now, sequence=None) -> bytes                             (METHOD:REQUEST)
    cancel(stored, *, now, attendees=None) -> bytes                             (METHOD:CANCEL)

`response` uses the MeetingResponse UserResponse values (MS-ASCMD
2.2.3.185): 1 accepted, 2 tentative, 3 declined (or the PARTSTAT names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import icalendar

from bluesync.items import _eas, _ical
from bluesync.items._eas import ConversionError

__all__ = ["Invitation", "Participant", "cancel", "parse", "reply", "request"]

RESPONSES = {1: "ACCEPTED", 2: "TENTATIVE", 3: "DECLINED",
             "ACCEPTED": "ACCEPTED", "TENTATIVE": "TENTATIVE", "DECLINED": "DECLINED"}


@dataclass(frozen=True)
class Participant:
    email: str
    name: str = ""
    partstat: str = ""
    role: str = ""
    rsvp: bool = False


@dataclass
class Invitation:
    method: str                       # REQUEST, CANCEL, REPLY, COUNTER, ...
    uid: str
    sequence: int
    organizer: Participant | None
    attendees: list[Participant]
    event: icalendar.Event            # the master (or the only) VEVENT
    calendar: icalendar.Calendar = field(repr=False)
    recurrence_id: object = None      # set when the message is about one occurrence


def _address(value) -> str:
    text = str(value)
    return text[7:] if text.lower().startswith("mailto:") else text


def _participant(value) -> Participant:
    params = getattr(value, "params", {})
    return Participant(
        email=_address(value).strip(), name=str(params.get("CN", "")),
        partstat=str(params.get("PARTSTAT", "")).upper(),
        role=str(params.get("ROLE", "")).upper(),
        rsvp=str(params.get("RSVP", "")).upper() == "TRUE")


def parse(ics: bytes | str) -> Invitation:
    """An iMIP message's calendar; ConversionError if it has no VEVENT or METHOD."""
    calendar = _ical.parse(ics)
    method = str(calendar.get("METHOD", "")).upper()
    if not method:
        raise ConversionError("an iTIP message needs a METHOD")
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise ConversionError("no VEVENT in the iTIP message")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    event = masters[0] if masters else events[0]
    organizer = _participant(event["ORGANIZER"]) if "ORGANIZER" in event else None
    return Invitation(
        method=method, uid=str(event.get("UID", "")),
        sequence=int(event.get("SEQUENCE", 0)), organizer=organizer,
        attendees=[_participant(a) for a in _ical.values(event, "ATTENDEE")],
        event=event, calendar=calendar,
        recurrence_id=event["RECURRENCE-ID"].dt if "RECURRENCE-ID" in event else None)


def _itip_calendar(method: str, source: icalendar.Calendar) -> icalendar.Calendar:
    calendar = _ical.new_calendar()
    calendar.add("METHOD", method)
    for timezone in source.walk("VTIMEZONE"):
        calendar.add_component(timezone)
    return calendar


def _copy(event, names) -> icalendar.Event:
    copy = icalendar.Event()
    for name in names:
        for value in _ical.values(event, name):
            copy.add(name, value)
    return copy


def reply(invitation: Invitation | bytes | str, attendee: str, response,
          *, now: datetime, comment: str | None = None) -> bytes:
    """
    METHOD:REPLY from `attendee` (an address) to the organizer, with
    PARTSTAT ACCEPTED, TENTATIVE or DECLINED (RFC 5546 3.2.3): the event's
    UID, SEQUENCE, RECURRENCE-ID, DTSTART/DTEND, ORGANIZER and just that
    ATTENDEE.
    """
    if not isinstance(invitation, Invitation):
        invitation = parse(invitation)
    partstat = RESPONSES.get(response if isinstance(response, int) else str(response).upper())
    if partstat is None:
        raise ValueError(f"not a meeting response: {response!r}")
    calendar = _itip_calendar("REPLY", invitation.calendar)
    events = [c for c in invitation.calendar.subcomponents if c.name == "VEVENT"]
    for source in events:
        event = _copy(source, ("UID", "SEQUENCE", "RECURRENCE-ID", "DTSTART", "DTEND",
                               "DURATION", "SUMMARY", "ORGANIZER"))
        event.add("DTSTAMP", _eas.utc(now))
        wanted = attendee.lower()
        found = None
        for value in _ical.values(source, "ATTENDEE"):
            if _address(value).lower() == wanted:
                found = value
        params = {"PARTSTAT": partstat}
        if found is not None and found.params.get("CN"):
            params["CN"] = found.params["CN"]
        event.add("ATTENDEE", icalendar.vCalAddress(f"mailto:{attendee}"), parameters=params)
        if comment:
            _ical.add_text(event, "COMMENT", comment)
        calendar.add_component(event)
    return _ical.serialise(calendar)


def request(stored: bytes | str, *, now: datetime, sequence: int | None = None) -> bytes:
    """
    METHOD:REQUEST for the attendees of a stored event (every VEVENT of
    it, overrides included), with RSVP=TRUE and PARTSTAT=NEEDS-ACTION for
    attendees who have not answered, and SEQUENCE set when given.
    """
    source = _ical.parse(stored)
    calendar = _itip_calendar("REQUEST", source)
    for event in [c for c in source.subcomponents if c.name == "VEVENT"]:
        if "ORGANIZER" not in event:
            raise ConversionError("a meeting request needs an ORGANIZER")
        copy = icalendar.Event()
        for name, value in event.property_items(recursive=False):
            if name in ("BEGIN", "END", "DTSTAMP", "SEQUENCE") or name.startswith(_eas.X_EAS):
                continue
            copy.add(name, value)
        copy.add("DTSTAMP", _eas.utc(now))
        copy.add("SEQUENCE", sequence if sequence is not None else int(event.get("SEQUENCE", 0)))
        for attendee in _ical.values(copy, "ATTENDEE"):
            attendee.params.setdefault("PARTSTAT", "NEEDS-ACTION")
            if attendee.params["PARTSTAT"] == "NEEDS-ACTION":
                attendee.params["RSVP"] = "TRUE"
        for component in event.subcomponents:
            copy.add_component(component)
        calendar.add_component(copy)
    return _ical.serialise(calendar)


def cancel(stored: bytes | str, *, now: datetime, attendees: list[str] | None = None) -> bytes:
    """
    METHOD:CANCEL of a stored event (RFC 5546 3.2.5): STATUS:CANCELLED,
    SEQUENCE one higher, to every attendee or to the given addresses only
    (those removed from the meeting).
    """
    source = _ical.parse(stored)
    calendar = _itip_calendar("CANCEL", source)
    events = [c for c in source.subcomponents if c.name == "VEVENT"]
    master = next((e for e in events if "RECURRENCE-ID" not in e), events[0] if events else None)
    if master is None:
        raise ConversionError("no VEVENT to cancel")
    event = _copy(master, ("UID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "ORGANIZER",
                           "RRULE", "RECURRENCE-ID"))
    event.add("DTSTAMP", _eas.utc(now))
    event.add("SEQUENCE", int(master.get("SEQUENCE", 0)) + 1)
    event.add("STATUS", "CANCELLED")
    wanted = {a.lower() for a in attendees} if attendees is not None else None
    for value in _ical.values(master, "ATTENDEE"):
        if wanted is None or _address(value).lower() in wanted:
            event.add("ATTENDEE", value)
    calendar.add_component(event)
    return _ical.serialise(calendar)

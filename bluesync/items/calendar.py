"""
The calendar content class: iCalendar VEVENT <-> EAS ApplicationData
(MS-ASCAL), with the icalendar library.

    from_eas(data, version, *, tz=None, uid=None, now=None) -> (ics bytes, columns)
    to_eas(stored, version, *, tz=None, body_preferences=(), owner=None) -> ApplicationData
    merge(stored, from_device) -> ics bytes
    columns(stored, *, tz=None) -> dict
    change_instance(stored, instance_id, data, version, *, tz=None) -> ics bytes   (16.x)
    delete_instance(stored, instance_id, *, tz=None) -> ics bytes                  (16.x)

`tz` is the device's (or account's) time zone: it reads floating times and
all-day dates, and is the zone sent with all-day events to 12.1-14.1
devices when the event came without one. `columns` are what the sync needs:
uid, subject, start and end (aware UTC; for an all-day event the midnights
of its dates in `tz`, default UTC), all_day, recurring, last_end (end of
the last occurrence, None when the recurrence never ends: for FilterType),
tzid.

Mapping (iCalendar property <- EAS element):

    DTSTART/DTEND;TZID   StartTime, EndTime, Timezone (blob -> IANA zone when
                         one matches, else a VTIMEZONE of the blob's rules;
                         the blob itself is kept so it goes back unchanged)
    VALUE=DATE           AllDayEvent=1 (see "All-day events" below)
    SUMMARY LOCATION     Subject, Location (16.x: AirSyncBase:Location
                         DisplayName; its other fields kept, Latitude and
                         Longitude also as GEO)
    DESCRIPTION          AirSyncBase:Body (HTML also as X-ALT-DESC;FMTTYPE=text/html)
    ORGANIZER;CN         OrganizerName, OrganizerEmail
    ATTENDEE             Attendee: Email, Name -> CN, AttendeeStatus ->
                         PARTSTAT (2 TENTATIVE, 3 ACCEPTED, 4 DECLINED,
                         5 NEEDS-ACTION, 0 none), AttendeeType -> ROLE (1
                         REQ-PARTICIPANT, 2 OPT-PARTICIPANT, 3
                         CUTYPE=RESOURCE;ROLE=NON-PARTICIPANT)
    VALARM TRIGGER       Reminder (minutes before the start)
    TRANSP, X-MICROSOFT-CDO-BUSYSTATUS   BusyStatus (0 free .. 4 elsewhere)
    CLASS                Sensitivity (0 PUBLIC, 1 X-PERSONAL, 2 PRIVATE,
                         3 CONFIDENTIAL)
    STATUS:CANCELLED     MeetingStatus 5, 7, 13, 15 (the value itself is kept)
    UID                  UID (16.x: ClientUid when the device sends no UID)
    CATEGORIES DTSTAMP   Categories, DtStamp
    RRULE                Recurrence (see _recurrence)
    EXDATE               Exception with Deleted=1
    VEVENT+RECURRENCE-ID Exception with changed fields; the override holds
                         every property, and an Exception sends the fields
                         that differ from the series, plus its times
    X-MICROSOFT-DISALLOW-COUNTER   DisallowNewTimeProposal

ExceptionStartTime (up to 14.1) and AirSyncBase:InstanceId (16.x) are the
occurrence's original start in UTC.

Any other element is kept as X-BLUESYNC-EAS-<PAGE>-<NAME> and sent back to
devices whose version defines it; iCalendar properties EAS cannot carry
stay in the stored object through `merge`.

All-day events (AllDayEvent=1) are stored as DATE values (DTEND exclusive).
A device's StartTime is read with `_eas.device_date` in the zone of its
Timezone blob (12.1-14.1 devices send local midnight as UTC) or, without
one, literally (16.x sends the date at 00:00Z and no Timezone, MS-ASCAL
2.2.2.46). Served to 12.1-14.1: midnight of the date in the zone of the
kept blob, else `tz`, else UTC, with that zone's blob; to 16.x: the date
at 00:00:00Z and no Timezone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Sequence

import icalendar
from dateutil import rrule as dateutil_rrule
from lxml import etree

from bluesync.items import _eas, _ical, _recurrence
from bluesync.items import timezone as tzblob
from bluesync.items._eas import (
    AIRSYNCBASE, CALENDAR, UTC, Body, ConversionError, el, find, integer, text,
)
from bluesync.items.email import BodyPreference

__all__ = [
    "ConversionError", "change_instance", "columns", "delete_instance",
    "from_eas", "merge", "to_eas",
]

BUSY_NAMES = {0: "FREE", 1: "TENTATIVE", 2: "BUSY", 3: "OOF", 4: "WORKINGELSEWHERE"}
BUSY_VALUES = {name: value for value, name in BUSY_NAMES.items()}
CLASS_NAMES = {0: "PUBLIC", 1: "X-PERSONAL", 2: "PRIVATE", 3: "CONFIDENTIAL"}
CLASS_VALUES = {name: value for value, name in CLASS_NAMES.items()}
PARTSTAT_NAMES = {2: "TENTATIVE", 3: "ACCEPTED", 4: "DECLINED", 5: "NEEDS-ACTION"}
PARTSTAT_VALUES = {"TENTATIVE": 2, "ACCEPTED": 3, "DECLINED": 4, "NEEDS-ACTION": 5,
                   "DELEGATED": 5}

KEPT_TIMEZONE = "X-BLUESYNC-EAS-CALENDAR-TIMEZONE"
KEPT_MEETING_STATUS = "X-BLUESYNC-EAS-CALENDAR-MEETINGSTATUS"
KEPT_CALENDAR_TYPE = "X-BLUESYNC-EAS-CALENDAR-CALENDARTYPE"
KEPT_LEAP_MONTH = "X-BLUESYNC-EAS-CALENDAR-ISLEAPMONTH"
KEPT_LOCATION = "X-BLUESYNC-EAS-AIRSYNCBASE-LOCATION"
KEPT_CLIENT_UID = "X-BLUESYNC-EAS-CALENDAR-CLIENTUID"
_SPECIAL_KEPT = {KEPT_TIMEZONE, KEPT_MEETING_STATUS, KEPT_CALENDAR_TYPE,
                 KEPT_LEAP_MONTH, KEPT_LOCATION, KEPT_CLIENT_UID}

# Properties the EAS item defines: a device's version replaces the stored one.
MAPPED_PROPERTIES = frozenset({
    "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "SUMMARY", "LOCATION",
    "DESCRIPTION", "X-ALT-DESC", "ORGANIZER", "ATTENDEE", "TRANSP",
    "X-MICROSOFT-CDO-BUSYSTATUS", "CLASS", "CATEGORIES", "RRULE", "EXDATE",
    "RECURRENCE-ID", "GEO", "X-MICROSOFT-DISALLOW-COUNTER",
})

_MAPPED_ELEMENTS = _eas.tags(
    CALENDAR, "Timezone", "AllDayEvent", "StartTime", "EndTime", "Subject",
    "Location", "OrganizerName", "OrganizerEmail", "Attendees", "Reminder",
    "BusyStatus", "Sensitivity", "MeetingStatus", "UID", "ClientUid",
    "Categories", "DtStamp", "Recurrence", "Exceptions",
    "DisallowNewTimeProposal", "Body", "BodyTruncated",
) | _eas.tags(AIRSYNCBASE, "Body", "Location", "NativeBodyType")

_EXCEPTION_ELEMENTS = _eas.tags(
    CALENDAR, "Deleted", "ExceptionStartTime", "Subject", "StartTime",
    "EndTime", "Location", "Categories", "Sensitivity", "BusyStatus",
    "AllDayEvent", "Reminder", "DtStamp", "MeetingStatus", "Attendees", "Body",
) | _eas.tags(AIRSYNCBASE, "Body", "Location", "InstanceId", "NativeBodyType")


# ---------------------------------------------------------------------------
# EAS -> iCalendar

@dataclass
class _Context:
    version: tuple[int, int]
    tz: tzinfo | None
    zone: tzinfo                       # the event's zone
    tzid: str | None                   # None: UTC
    all_day: bool
    hint: tzinfo | None                # the zone all-day instants are read in
    zones: dict


def _zone_of(data: etree._Element, year: int, tz: tzinfo | None
             ) -> tuple[tzblob.TimeZoneInfo | None, tzinfo]:
    value = text(data, CALENDAR, "Timezone")
    info = None
    if value:
        try:
            info = tzblob.TimeZoneInfo.from_base64(value)
        except ValueError:
            info = None
        if info is not None and tzblob.is_empty(info):
            info = None
    if info is not None:
        return info, tzblob.tzinfo_for(info, year)
    return None, tz or UTC


def _put_time(component, name: str, moment: datetime, ctx: _Context) -> None:
    if ctx.tzid is None:
        component.add(name, moment.astimezone(UTC))
    else:
        local = moment.astimezone(ctx.zone).replace(tzinfo=None)
        component.add(name, local, parameters={"TZID": ctx.tzid})


def _put_date(component, name: str, day: date) -> None:
    component.add(name, day)


def _original(value: str | None, ctx: _Context):
    """An occurrence's original start (UTC text) as RECURRENCE-ID/EXDATE value."""
    moment = _eas.parse_datetime(value)
    if moment is None:
        return None
    if ctx.all_day:
        return _eas.device_date(moment, ctx.hint)
    return moment


def _rounded_now(now: datetime) -> datetime:
    now = _eas.utc(now).replace(second=0, microsecond=0)
    minutes = 30 - now.minute % 30
    return now + timedelta(minutes=minutes if minutes != 30 else 0)


def _times(data: etree._Element, now: datetime | None) -> tuple[datetime, datetime]:
    """StartTime and EndTime, substituted as MS-ASCAL 3.2.4.4 says when absent."""
    start = _eas.parse_datetime(text(data, CALENDAR, "StartTime"))
    end = _eas.parse_datetime(text(data, CALENDAR, "EndTime"))
    if start is not None and end is not None:
        return start, max(start, end)
    if now is None:
        raise ConversionError("calendar item without StartTime or EndTime")
    rounded = _rounded_now(now)
    now = _eas.utc(now)
    if start is None and end is None:
        return rounded, rounded + timedelta(minutes=30)
    if start is None:
        if end < now or rounded > end:
            raise ConversionError("EndTime without StartTime is in the past")
        return rounded, end
    if start > now:
        raise ConversionError("StartTime in the future without EndTime")
    return start, rounded + timedelta(minutes=30)


def _add_location(component, data: etree._Element, ctx: _Context) -> None:
    if ctx.version >= (16, 0):
        location = find(data, AIRSYNCBASE, "Location")
        if location is None:
            return
        name = text(location, AIRSYNCBASE, "DisplayName") or ""
        _ical.add_text(component, "LOCATION", name)
        latitude = text(location, AIRSYNCBASE, "Latitude")
        longitude = text(location, AIRSYNCBASE, "Longitude")
        if latitude and longitude:
            try:
                component.add("GEO", (float(latitude), float(longitude)))
            except ValueError:
                pass
        if len(location) > 1 or (len(location) == 1 and find(location, AIRSYNCBASE, "DisplayName") is None):
            _ical.add_kept(component, location)
    else:
        value = text(data, CALENDAR, "Location")
        if value is not None:
            _ical.add_text(component, "LOCATION", value)


def _add_attendees(component, attendees: etree._Element | None) -> None:
    if attendees is None:
        return
    for attendee in attendees.findall(f"{{{CALENDAR}}}Attendee"):
        email = (text(attendee, CALENDAR, "Email") or "").strip()
        if not email:
            continue
        params: dict[str, str] = {}
        name = text(attendee, CALENDAR, "Name")
        if name:
            params["CN"] = name
        status = integer(attendee, CALENDAR, "AttendeeStatus")
        if status in PARTSTAT_NAMES:
            params["PARTSTAT"] = PARTSTAT_NAMES[status]
        elif status == 0:
            params["X-EAS-ATTENDEESTATUS"] = "0"
        kind = integer(attendee, CALENDAR, "AttendeeType")
        if kind == 1:
            params["ROLE"] = "REQ-PARTICIPANT"
        elif kind == 2:
            params["ROLE"] = "OPT-PARTICIPANT"
        elif kind == 3:
            params["CUTYPE"] = "RESOURCE"
            params["ROLE"] = "NON-PARTICIPANT"
        component.add("ATTENDEE", icalendar.vCalAddress(f"mailto:{email}"), parameters=params)


def _add_reminder(component, minutes: int | None, summary: str) -> None:
    if minutes is None:
        return
    alarm = icalendar.Alarm()
    alarm.add("ACTION", "DISPLAY")
    _ical.add_text(alarm, "DESCRIPTION", summary or "Reminder")
    alarm.add("TRIGGER", timedelta(minutes=-max(0, minutes)))
    component.add_component(alarm)


def _add_common(component, data: etree._Element, ctx: _Context, *, exception: bool) -> None:
    """The fields an item and an exception share, in iCalendar."""
    subject = text(data, CALENDAR, "Subject")
    if subject is not None:
        _ical.add_text(component, "SUMMARY", subject)
    _add_location(component, data, ctx)
    _ical.add_body(component, _eas.read_body(data))
    sensitivity = integer(data, CALENDAR, "Sensitivity")
    if sensitivity is not None:
        component.add("CLASS", CLASS_NAMES.get(sensitivity, "PRIVATE"))
    busy = integer(data, CALENDAR, "BusyStatus")
    if busy is not None:
        component.add("TRANSP", "TRANSPARENT" if busy == 0 else "OPAQUE")
        component.add("X-MICROSOFT-CDO-BUSYSTATUS", BUSY_NAMES.get(busy, "BUSY"))
    categories = find(data, CALENDAR, "Categories")
    if categories is not None:
        _ical.set_categories(component, [c.text or "" for c in categories])
    meeting = integer(data, CALENDAR, "MeetingStatus")
    if meeting is not None:
        _ical.add_text(component, KEPT_MEETING_STATUS, str(meeting))
        if meeting & 4:
            component.add("STATUS", "CANCELLED")
    _add_attendees(component, find(data, CALENDAR, "Attendees"))
    _add_reminder(component, integer(data, CALENDAR, "Reminder"), subject or "")


def _event_from_eas(data: etree._Element, version: tuple[int, int], tz: tzinfo | None,
                    uid: str | None, now: datetime | None
                    ) -> tuple[icalendar.Event, list[icalendar.Event], dict]:
    start, end = _times(data, now)
    info, zone = _zone_of(data, start.year, tz)
    all_day = integer(data, CALENDAR, "AllDayEvent") == 1
    hint = zone if info is not None else tz
    tzid = None if _ical.is_utc(zone) else _ical.tzid_of(zone)
    ctx = _Context(version, tz, zone, tzid, all_day, hint, {})
    event = icalendar.Event()
    event_uid = (text(data, CALENDAR, "UID") or text(data, CALENDAR, "ClientUid")
                 or uid or str(uuid.uuid4()))
    _ical.add_text(event, "UID", event_uid.strip())
    client_uid = text(data, CALENDAR, "ClientUid")
    if client_uid:
        _ical.add_text(event, KEPT_CLIENT_UID, client_uid)
    stamp = _eas.parse_datetime(text(data, CALENDAR, "DtStamp")) or (
        _eas.utc(now) if now is not None else start)
    event.add("DTSTAMP", stamp)
    if all_day:
        first = _eas.device_date(start, hint)
        last = _eas.device_date(end, hint)
        _put_date(event, "DTSTART", first)
        _put_date(event, "DTEND", last if last > first else first + timedelta(days=1))
    else:
        _put_time(event, "DTSTART", start, ctx)
        _put_time(event, "DTEND", end, ctx)
        if tzid is not None:
            ctx.zones[tzid] = (zone, start.year)
    if info is not None:
        _ical.add_text(event, KEPT_TIMEZONE, info.to_base64())
    organizer = (text(data, CALENDAR, "OrganizerEmail") or "").strip()
    if organizer:
        name = text(data, CALENDAR, "OrganizerName")
        event.add("ORGANIZER", icalendar.vCalAddress(f"mailto:{organizer}"),
                  parameters={"CN": name} if name else None)
    elif text(data, CALENDAR, "OrganizerName"):
        _ical.add_text(event, "X-BLUESYNC-EAS-CALENDAR-ORGANIZERNAME",
                       text(data, CALENDAR, "OrganizerName") or "")
    _add_common(event, data, ctx, exception=False)
    if integer(data, CALENDAR, "DisallowNewTimeProposal") == 1:
        event.add("X-MICROSOFT-DISALLOW-COUNTER", "TRUE")
    elif integer(data, CALENDAR, "DisallowNewTimeProposal") == 0:
        event.add("X-MICROSOFT-DISALLOW-COUNTER", "FALSE")
    overrides: list[icalendar.Event] = []
    recurrence = find(data, CALENDAR, "Recurrence")
    if recurrence is not None:
        _add_recurrence(event, _recurrence.read(recurrence, CALENDAR), ctx)
        exceptions = find(data, CALENDAR, "Exceptions")
        if exceptions is not None:
            for exception in exceptions.findall(f"{{{CALENDAR}}}Exception"):
                override = _exception_from_eas(event, exception, ctx)
                if override is not None:
                    overrides.append(override)
    for element in _eas.unmapped(data, _MAPPED_ELEMENTS, _eas.CALENDAR_PAGES):
        _ical.add_kept(event, element)
    return event, overrides, ctx.zones


def _add_recurrence(event, recurrence: _recurrence.Recurrence, ctx: _Context) -> None:
    until = None
    if recurrence.until:
        moment = _eas.parse_datetime(recurrence.until)
        until = _eas.device_date(moment, ctx.hint) if ctx.all_day else moment
    event.add("RRULE", _recurrence.to_rrule(recurrence, until))
    if recurrence.calendar_type is not None:
        _ical.add_text(event, KEPT_CALENDAR_TYPE, str(recurrence.calendar_type))
    if recurrence.is_leap_month is not None:
        _ical.add_text(event, KEPT_LEAP_MONTH, str(recurrence.is_leap_month))


def _exception_from_eas(master, exception: etree._Element, ctx: _Context):
    """Deleted: an EXDATE on `master` (returns None); else an override VEVENT."""
    if ctx.version >= (16, 0):
        original_text = text(exception, AIRSYNCBASE, "InstanceId") or text(
            exception, CALENDAR, "ExceptionStartTime")
    else:
        original_text = text(exception, CALENDAR, "ExceptionStartTime") or text(
            exception, AIRSYNCBASE, "InstanceId")
    original = _original(original_text, ctx)
    if original is None:
        raise ConversionError("Exception without ExceptionStartTime or InstanceId")
    if integer(exception, CALENDAR, "Deleted") == 1:
        _add_exdate(master, original, ctx)
        return None
    return _override(master, original, exception, ctx)


def _add_exdate(master, original, ctx: _Context) -> None:
    if isinstance(original, date) and not isinstance(original, datetime):
        master.add("EXDATE", original)
    elif ctx.tzid is None:
        master.add("EXDATE", original.astimezone(UTC))
    else:
        master.add("EXDATE", original.astimezone(ctx.zone).replace(tzinfo=None),
                   parameters={"TZID": ctx.tzid})


_INHERITED = ("SUMMARY", "LOCATION", "DESCRIPTION", "X-ALT-DESC", "CLASS", "TRANSP",
              "X-MICROSOFT-CDO-BUSYSTATUS", "CATEGORIES", "ORGANIZER", "ATTENDEE",
              "GEO", "STATUS", KEPT_MEETING_STATUS, KEPT_LOCATION)


def _override(master, original, exception: etree._Element, ctx: _Context) -> icalendar.Event:
    override = icalendar.Event()
    _ical.add_text(override, "UID", str(master["UID"]))
    if isinstance(original, datetime):
        _put_time(override, "RECURRENCE-ID", original, ctx)
    else:
        _put_date(override, "RECURRENCE-ID", original)
    stamp = _eas.parse_datetime(text(exception, CALENDAR, "DtStamp"))
    override.add("DTSTAMP", stamp or master["DTSTAMP"].dt)
    all_day = integer(exception, CALENDAR, "AllDayEvent")
    exception_all_day = ctx.all_day if all_day is None else all_day == 1
    master_start = master["DTSTART"].dt
    master_end = master["DTEND"].dt
    duration = master_end - master_start
    start = _eas.parse_datetime(text(exception, CALENDAR, "StartTime"))
    end = _eas.parse_datetime(text(exception, CALENDAR, "EndTime"))
    if exception_all_day:
        first = _eas.device_date(start, ctx.hint) if start else (
            original if not isinstance(original, datetime) else _eas.device_date(original, ctx.hint))
        last = _eas.device_date(end, ctx.hint) if end else first + timedelta(days=max(1, duration.days))
        _put_date(override, "DTSTART", first)
        _put_date(override, "DTEND", last if last > first else first + timedelta(days=1))
    else:
        if start is None:
            start = original if isinstance(original, datetime) else _eas.local_midnight(original, ctx.zone)
        if end is None:
            end = start + (duration if isinstance(duration, timedelta) else timedelta(hours=1))
        _put_time(override, "DTSTART", start, ctx)
        _put_time(override, "DTEND", max(start, end), ctx)
    # Fields the exception gives replace the series' ones; others are inherited.
    given = icalendar.Event()
    _add_common(given, exception, ctx, exception=True)
    given_names = {name for name, _ in given.property_items(recursive=False)} - {"BEGIN", "END"}
    for name in _INHERITED:
        source = given if name in given_names else master
        for value in _ical.values(source, name):
            override.add(name, value)
    alarms = given.walk("VALARM") if find(exception, CALENDAR, "Reminder") is not None else [
        a for a in master.subcomponents if a.name == "VALARM"]
    for alarm in alarms:
        override.add_component(alarm)
    for element in _eas.unmapped(exception, _EXCEPTION_ELEMENTS, _eas.CALENDAR_PAGES):
        _ical.add_kept(override, element)
    return override


def from_eas(data: etree._Element, version: str, *, tz: tzinfo | None = None,
             uid: str | None = None, now: datetime | None = None) -> tuple[bytes, dict]:
    """
    A device's calendar ApplicationData as stored iCalendar and its columns.

    `uid` is used when the device sends neither UID nor ClientUid (a fresh
    UUID otherwise); `now` fills DtStamp and the MS-ASCAL 3.2.4.4 defaults
    for a missing StartTime/EndTime. Raises ConversionError (status 6).
    """
    v = _eas.version_tuple(version)
    event, overrides, zones = _event_from_eas(data, v, tz, uid, now)
    calendar = _ical.new_calendar()
    calendar.add_component(event)
    for override in overrides:
        calendar.add_component(override)
    _ical.add_timezones(calendar, zones)
    stored = _ical.serialise(calendar)
    return stored, columns(stored, tz=tz)


# ---------------------------------------------------------------------------
# iCalendar -> EAS

def _split(calendar: icalendar.Calendar) -> tuple[icalendar.Event, list[icalendar.Event]]:
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise ConversionError("no VEVENT in the stored calendar")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    master = masters[0] if masters else events[0]
    uid = str(master.get("UID", ""))
    overrides = [e for e in events if e is not master and "RECURRENCE-ID" in e
                 and str(e.get("UID", "")) == uid]
    return master, overrides


@dataclass
class _Serve:
    version: tuple[int, int]
    zone: tzinfo
    all_day: bool
    blob: str | None


def _as_utc(value, serve: _Serve) -> datetime:
    """A DATE-TIME (aware, UTC or floating) or DATE as the UTC instant EAS sends."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=serve.zone)
        return value.astimezone(UTC)
    if serve.version >= (16, 0) and serve.all_day:
        return datetime.combine(value, time(0), UTC)
    return _eas.local_midnight(value, serve.zone)


def _event_zone(master, tz: tzinfo | None) -> tuple[tzinfo, int]:
    start = master["DTSTART"].dt
    year = start.year
    if isinstance(start, datetime) and start.tzinfo is not None:
        return start.tzinfo, year
    kept = _ical.kept_value(master, KEPT_TIMEZONE)
    if kept:
        try:
            return tzblob.tzinfo_for(tzblob.TimeZoneInfo.from_base64(kept), year), year
        except ValueError:
            pass
    return tz or UTC, year


def _blob(master, zone: tzinfo, year: int) -> str:
    info = tzblob.from_zone(zone, year) if not isinstance(zone, tzblob.RuleTimeZone) else zone.info
    kept = _ical.kept_value(master, KEPT_TIMEZONE)
    if kept:
        try:
            kept_info = tzblob.TimeZoneInfo.from_base64(kept)
        except ValueError:
            kept_info = None
        if kept_info is not None and kept_info.rules() == info.rules():
            return kept
    return info.to_base64()


def _end_of(component):
    start = component["DTSTART"].dt
    if "DTEND" in component:
        return component["DTEND"].dt
    if "DURATION" in component:
        return start + component["DURATION"].dt
    if isinstance(start, datetime):
        return start
    return start + timedelta(days=1)


def _reminder(component) -> int | None:
    for alarm in component.subcomponents:
        if alarm.name != "VALARM" or "TRIGGER" not in alarm:
            continue
        trigger = alarm["TRIGGER"].dt
        if isinstance(trigger, timedelta):
            if str(alarm["TRIGGER"].params.get("RELATED", "START")).upper() == "END":
                start, end = component["DTSTART"].dt, _end_of(component)
                trigger += (end - start) if isinstance(end - start, timedelta) else timedelta(0)
            minutes = int(-trigger.total_seconds() // 60)
        elif isinstance(trigger, datetime) and isinstance(component["DTSTART"].dt, datetime):
            minutes = int((component["DTSTART"].dt - trigger).total_seconds() // 60)
        else:
            continue
        return max(0, minutes)
    return None


def _busy(component) -> int | None:
    value = component.get("X-MICROSOFT-CDO-BUSYSTATUS")
    if value is not None and _ical.x_text(value).upper() in BUSY_VALUES:
        return BUSY_VALUES[_ical.x_text(value).upper()]
    transp = component.get("TRANSP")
    if transp is not None:
        return 0 if str(transp).upper() == "TRANSPARENT" else 2
    return None


def _sensitivity(component) -> int | None:
    value = component.get("CLASS")
    if value is None:
        return None
    return CLASS_VALUES.get(str(value).upper(), 2)


def _address(value) -> str:
    text_value = str(value)
    return text_value[7:] if text_value.lower().startswith("mailto:") else text_value


def _attendees(component) -> list[dict]:
    found = []
    for value in _ical.values(component, "ATTENDEE"):
        params = getattr(value, "params", {})
        email = _address(value)
        entry = {"email": email, "name": params.get("CN") or email}
        partstat = str(params.get("PARTSTAT", "")).upper()
        if partstat in PARTSTAT_VALUES:
            entry["status"] = PARTSTAT_VALUES[partstat]
        elif params.get("X-EAS-ATTENDEESTATUS") == "0":
            entry["status"] = 0
        cutype = str(params.get("CUTYPE", "")).upper()
        role = str(params.get("ROLE", "")).upper()
        if cutype in ("RESOURCE", "ROOM"):
            entry["type"] = 3
        elif role == "OPT-PARTICIPANT":
            entry["type"] = 2
        elif role in ("REQ-PARTICIPANT", "CHAIR"):
            entry["type"] = 1
        found.append(entry)
    return found


def _attendees_element(parent, attendees: list[dict]) -> None:
    container = el(parent, CALENDAR, "Attendees")
    for entry in attendees:
        attendee = el(container, CALENDAR, "Attendee")
        el(attendee, CALENDAR, "Email", entry["email"])
        el(attendee, CALENDAR, "Name", entry["name"])
        if "status" in entry:
            el(attendee, CALENDAR, "AttendeeStatus", entry["status"])
        if "type" in entry:
            el(attendee, CALENDAR, "AttendeeType", entry["type"])


def _body(component) -> Body | None:
    if "DESCRIPTION" not in component and "X-ALT-DESC" not in component:
        return None
    plain = _ical.x_text(component.get("DESCRIPTION"))
    html = None
    for value in _ical.values(component, "X-ALT-DESC"):
        if str(getattr(value, "params", {}).get("FMTTYPE", "")).lower() == "text/html":
            html = _ical.x_text(value)
    if html is not None and not plain:
        plain = _eas.html_to_text(html)
    return Body(plain, html)


def _location_element(parent, component, serve: _Serve) -> None:
    location = component.get("LOCATION")
    if serve.version < (16, 0):
        if location is not None:
            el(parent, CALENDAR, "Location", _ical.x_text(location))
        return
    kept = None
    for name, value, is_xml in _ical.kept(component):
        if name == KEPT_LOCATION and is_xml:
            kept = _eas.restore(name, value, True, _eas.CALENDAR_PAGES)
    if location is None and kept is None:
        return
    name = _ical.x_text(location) if location is not None else ""
    if kept is not None:
        display = find(kept, AIRSYNCBASE, "DisplayName")
        if display is None:
            display = etree.Element(f"{{{AIRSYNCBASE}}}DisplayName")
            kept.insert(0, display)
        display.text = name or None
        parent.append(kept)
        return
    element = el(parent, AIRSYNCBASE, "Location")
    el(element, AIRSYNCBASE, "DisplayName", name)
    geo = component.get("GEO")
    if geo is not None:
        el(element, AIRSYNCBASE, "Latitude", geo.latitude)
        el(element, AIRSYNCBASE, "Longitude", geo.longitude)


def _meeting_status(component, attendees: list[dict], owner: str | None) -> int | None:
    kept = _ical.kept_value(component, KEPT_MEETING_STATUS)
    if kept is not None and kept.strip().isdigit():
        return int(kept)
    cancelled = str(component.get("STATUS", "")).upper() == "CANCELLED"
    if not attendees and "ORGANIZER" not in component:
        return 5 if cancelled else 0
    organizer = _address(component.get("ORGANIZER", "")).lower()
    received = bool(owner) and organizer != (owner or "").lower()
    status = 3 if received else 1
    return status + 4 if cancelled else status


def _categories_element(parent, cats: list[str]) -> None:
    container = el(parent, CALENDAR, "Categories")
    for cat in cats:
        el(container, CALENDAR, "Category", cat)


def _recurrence_element(parent, master, serve: _Serve) -> bool:
    rules = _ical.values(master, "RRULE")
    if not rules:
        return False
    start = master["DTSTART"].dt
    local_start = start.astimezone(serve.zone) if isinstance(start, datetime) and start.tzinfo else start
    found = _recurrence.from_rrule(rules[0], local_start)
    if found is None:
        return False
    recurrence, until = found
    if until is not None and recurrence.occurrences is None:
        if isinstance(until, datetime):
            value = _as_utc(until, serve)
        else:
            value = _as_utc(until, serve) if serve.all_day else _eas.local_midnight(until, serve.zone)
        recurrence = _replace(recurrence, until=_eas.compact(value))
    calendar_type = _ical.kept_value(master, KEPT_CALENDAR_TYPE)
    leap = _ical.kept_value(master, KEPT_LEAP_MONTH)
    if calendar_type and calendar_type.isdigit():
        recurrence = _replace(recurrence, calendar_type=int(calendar_type))
    if leap and leap.isdigit():
        recurrence = _replace(recurrence, is_leap_month=int(leap))
    if recurrence.interval is None:
        recurrence = _replace(recurrence, interval=1)
    _recurrence.write(parent, CALENDAR, recurrence, serve.version)
    return True


def _replace(recurrence, **changes):
    from dataclasses import replace
    return replace(recurrence, **changes)


def _instance_element(parent, original, serve: _Serve) -> None:
    value = _eas.compact(_as_utc(original, serve))
    if serve.version >= (16, 0):
        el(parent, AIRSYNCBASE, "InstanceId", value)
    else:
        el(parent, CALENDAR, "ExceptionStartTime", value)


def _same(a, b) -> bool:
    return _ical.x_text(a) == _ical.x_text(b) if a is not None and b is not None else a is b


def _exceptions_element(parent, master, overrides, serve: _Serve, tz, body_preferences,
                        owner) -> None:
    entries = []
    for value in _ical.values(master, "EXDATE"):
        for item in getattr(value, "dts", [value]):
            entries.append((_as_utc(item.dt, serve), None))
    for override in overrides:
        entries.append((_as_utc(override["RECURRENCE-ID"].dt, serve), override))
    if not entries:
        return
    entries.sort(key=lambda pair: pair[0])
    container = el(parent, CALENDAR, "Exceptions")
    master_attendees = _attendees(master)
    master_body = _body(master)
    for original, override in entries:
        exception = el(container, CALENDAR, "Exception")
        if override is None:
            el(exception, CALENDAR, "Deleted", 1)
            _instance_element(exception, original, serve)
            continue
        _instance_element(exception, original, serve)
        if not _same(override.get("SUMMARY"), master.get("SUMMARY")):
            el(exception, CALENDAR, "Subject", _ical.x_text(override.get("SUMMARY")))
        start = override["DTSTART"].dt
        override_all_day = not isinstance(start, datetime)
        sub = _Serve(serve.version, serve.zone, override_all_day, serve.blob)
        el(exception, CALENDAR, "StartTime", _eas.compact(_as_utc(start, sub)))
        el(exception, CALENDAR, "EndTime", _eas.compact(_as_utc(_end_of(override), sub)))
        body = _body(override)
        if body is not None and body != master_body:
            _eas.body_element(exception, body, body_preferences)
        if not _same(override.get("LOCATION"), master.get("LOCATION")):
            _location_element(exception, override, serve)
        cats = _ical.categories(override)
        if cats != _ical.categories(master):
            _categories_element(exception, cats)
        for name, getter in (("Sensitivity", _sensitivity), ("BusyStatus", _busy)):
            value = getter(override)
            if value is not None and value != getter(master):
                el(exception, CALENDAR, name, value)
        if override_all_day != serve.all_day:
            el(exception, CALENDAR, "AllDayEvent", 1 if override_all_day else 0)
        reminder = _reminder(override)
        if reminder != _reminder(master) and reminder is not None:
            el(exception, CALENDAR, "Reminder", reminder)
        stamp = override.get("DTSTAMP")
        if stamp is not None and master.get("DTSTAMP") is not None and stamp.dt != master["DTSTAMP"].dt:
            el(exception, CALENDAR, "DtStamp", _eas.compact(stamp.dt))
        attendees = _attendees(override)
        meeting = _meeting_status(override, attendees, owner)
        if meeting != _meeting_status(master, master_attendees, owner) and meeting is not None:
            el(exception, CALENDAR, "MeetingStatus", meeting)
        if attendees != master_attendees:
            _attendees_element(exception, attendees)
        for name, value, is_xml in _ical.kept(override):
            if name in _SPECIAL_KEPT:
                continue
            element = _eas.restore(name, value, is_xml, _eas.CALENDAR_PAGES)
            if element is not None and _eas.supported(element, _eas.version_text(serve.version)):
                exception.append(element)


def to_eas(stored: bytes | str, version: str, *, tz: tzinfo | None = None,
           body_preferences: Sequence[BodyPreference] = (),
           owner: str | None = None) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a stored event for a Sync Add/Change,
    an ItemOperations Fetch or a Search result, in the order Exchange sends
    (the MS-ASCAL examples). `owner` is the account's address: it tells a
    meeting it organises (MeetingStatus 1) from one it received (3) when
    the item carries no MeetingStatus of its own.
    """
    v = _eas.version_tuple(version)
    version_text = _eas.version_text(v)
    master, overrides = _split(_ical.parse(stored))
    if "DTSTART" not in master:
        raise ConversionError("VEVENT without DTSTART")
    start = master["DTSTART"].dt
    all_day = not isinstance(start, datetime)
    zone, year = _event_zone(master, tz)
    serve = _Serve(v, zone, all_day, None)
    data = _eas.application_data()
    if not (all_day and v >= (16, 0)):
        el(data, CALENDAR, "Timezone", _blob(master, zone, year))
    stamp = master.get("DTSTAMP")
    el(data, CALENDAR, "DtStamp", _eas.compact(stamp.dt if stamp is not None else _as_utc(start, serve)))
    el(data, CALENDAR, "StartTime", _eas.compact(_as_utc(start, serve)))
    if "SUMMARY" in master:
        el(data, CALENDAR, "Subject", _ical.x_text(master["SUMMARY"]))
    el(data, CALENDAR, "UID", str(master.get("UID", "")))
    organizer = master.get("ORGANIZER")
    if organizer is not None:
        email = _address(organizer)
        el(data, CALENDAR, "OrganizerName", organizer.params.get("CN") or email)
        el(data, CALENDAR, "OrganizerEmail", email)
    elif _ical.kept_value(master, "X-BLUESYNC-EAS-CALENDAR-ORGANIZERNAME") is not None:
        el(data, CALENDAR, "OrganizerName",
           _ical.kept_value(master, "X-BLUESYNC-EAS-CALENDAR-ORGANIZERNAME"))
    attendees = _attendees(master)
    if attendees:
        _attendees_element(data, attendees)
    if v < (16, 0):
        _location_element(data, master, serve)
    el(data, CALENDAR, "EndTime", _eas.compact(_as_utc(_end_of(master), serve)))
    recurring = _recurrence_element(data, master, serve)
    body = _body(master)
    if body is not None:
        _eas.body_element(data, body, body_preferences)
    sensitivity = _sensitivity(master)
    if sensitivity is not None:
        el(data, CALENDAR, "Sensitivity", sensitivity)
    busy = _busy(master)
    if busy is not None:
        el(data, CALENDAR, "BusyStatus", busy)
    el(data, CALENDAR, "AllDayEvent", 1 if all_day else 0)
    reminder = _reminder(master)
    if reminder is not None:
        el(data, CALENDAR, "Reminder", reminder)
    if recurring:
        _exceptions_element(data, master, overrides, serve, tz, body_preferences, owner)
    meeting = _meeting_status(master, attendees, owner)
    if meeting is not None:
        el(data, CALENDAR, "MeetingStatus", meeting)
    if body is not None:
        el(data, AIRSYNCBASE, "NativeBodyType", _eas.native_body_type(body))
    counter = master.get("X-MICROSOFT-DISALLOW-COUNTER")
    if counter is not None and v >= (14, 0):
        el(data, CALENDAR, "DisallowNewTimeProposal",
           1 if _ical.x_text(counter).upper() == "TRUE" else 0)
    cats = _ical.categories(master)
    if cats or "CATEGORIES" in master:
        _categories_element(data, cats)
    if v >= (16, 0):
        _location_element(data, master, serve)
    for name, value, is_xml in _ical.kept(master):
        if name in _SPECIAL_KEPT:
            continue
        element = _eas.restore(name, value, is_xml, _eas.CALENDAR_PAGES)
        if element is not None and _eas.supported(element, version_text):
            data.append(element)
    return data


# ---------------------------------------------------------------------------
# Columns, merge, 16.x instances

def _last_end(master, overrides, start_utc: datetime, end_utc: datetime, zone: tzinfo,
              serve: _Serve) -> datetime | None:
    rules = _ical.values(master, "RRULE")
    if not rules:
        return end_utc
    rule = rules[0]
    if not rule.get("COUNT") and not rule.get("UNTIL"):
        return None
    start = master["DTSTART"].dt
    duration = end_utc - start_utc
    if isinstance(start, datetime):
        local = start if start.tzinfo is not None else start.replace(tzinfo=zone)
    else:
        local = datetime.combine(start, time(0), zone)
    text_rule = rule.to_ical().decode()
    if not isinstance(start, datetime) or local.tzinfo is not None:
        # dateutil wants UNTIL in the same form as DTSTART.
        until = rule.get("UNTIL")
        if until:
            moment = until[0]
            if not isinstance(moment, datetime):
                moment = datetime.combine(moment, time(23, 59, 59), local.tzinfo)
            elif moment.tzinfo is None:
                moment = moment.replace(tzinfo=local.tzinfo)
            parts = [p for p in text_rule.split(";") if not p.startswith("UNTIL=")]
            parts.append("UNTIL=" + moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
            text_rule = ";".join(parts)
    try:
        occurrences = dateutil_rrule.rrulestr(text_rule, dtstart=local)
        last = None
        for index, moment in enumerate(occurrences):
            last = moment
            if index > 100_000:
                return None
    except (ValueError, TypeError):
        return None
    ends = [] if last is None else [last.astimezone(UTC) + duration]
    for override in overrides:
        ends.append(_as_utc(_end_of(override), serve))
    return max(ends) if ends else end_utc


def columns(stored: bytes | str, *, tz: tzinfo | None = None) -> dict:
    """What the sync indexes for a stored event (see the module docstring)."""
    master, overrides = _split(_ical.parse(stored))
    start = master["DTSTART"].dt
    all_day = not isinstance(start, datetime)
    zone, _ = _event_zone(master, tz)
    serve = _Serve((14, 1), zone, all_day, None)
    start_utc = _as_utc(start, serve)
    end_utc = max(start_utc, _as_utc(_end_of(master), serve))
    tzid = None
    if isinstance(start, datetime) and start.tzinfo is not None and not _ical.is_utc(start.tzinfo):
        tzid = _ical.tzid_of(start.tzinfo)
    return {
        "uid": str(master.get("UID", "")),
        "subject": _ical.x_text(master.get("SUMMARY")) if "SUMMARY" in master else "",
        "start": start_utc,
        "end": end_utc,
        "all_day": all_day,
        "recurring": "RRULE" in master,
        "last_end": _last_end(master, overrides, start_utc, end_utc, zone, serve),
        "tzid": tzid,
    }


_MERGE_KEEP_PARAMS = ("CN", "PARTSTAT", "ROLE", "CUTYPE", "X-EAS-ATTENDEESTATUS")


# STATUS is carried below, unless the stored event was cancelled.
_CARRY_MAPPED = MAPPED_PROPERTIES | {"STATUS"}


def _carry(old, new) -> None:
    """Copy into `new` what `old` has that EAS does not define."""
    _ical.carry_unmapped(old, new, _CARRY_MAPPED)
    if "STATUS" not in new and "STATUS" in old and str(old["STATUS"]).upper() != "CANCELLED":
        new.add("STATUS", old["STATUS"])
    # Attendee parameters EAS does not carry (RSVP, DELEGATED-TO, ...).
    old_attendees = {_address(a).lower(): a for a in _ical.values(old, "ATTENDEE")}
    for attendee in _ical.values(new, "ATTENDEE"):
        previous = old_attendees.get(_address(attendee).lower())
        if previous is None:
            continue
        for key, value in previous.params.items():
            if key not in _MERGE_KEEP_PARAMS and key not in attendee.params:
                attendee.params[key] = value
    old_alarms = [c for c in old.subcomponents if c.name == "VALARM"]
    for alarm in old_alarms[1:]:
        new.add_component(alarm)
    for component in old.subcomponents:
        if component.name != "VALARM":
            new.add_component(component)


def merge(stored: bytes | str, from_device: bytes | str) -> bytes:
    """
    A device's Change applied to a stored event: the fields EAS defines
    come from `from_device` (already converted by from_eas), the rest of the
    stored object stays (properties, attendee parameters, extra alarms,
    other components). The stored UID is kept.
    """
    old_calendar = _ical.parse(stored)
    new_calendar = _ical.parse(from_device)
    old_master, old_overrides = _split(old_calendar)
    new_master, new_overrides = _split(new_calendar)
    uid = old_master.get("UID")
    for component in [new_master, *new_overrides]:
        if uid is not None:
            component.pop("UID", None)
            _ical.add_text(component, "UID", str(uid))
    _carry(old_master, new_master)
    by_id = {}
    for override in old_overrides:
        by_id[_eas.compact(_as_utc(override["RECURRENCE-ID"].dt, _Serve((14, 1), UTC, False, None)))
              if isinstance(override["RECURRENCE-ID"].dt, datetime)
              else override["RECURRENCE-ID"].dt.isoformat()] = override
    for override in new_overrides:
        value = override["RECURRENCE-ID"].dt
        key = (_eas.compact(_as_utc(value, _Serve((14, 1), UTC, False, None)))
               if isinstance(value, datetime) else value.isoformat())
        if key in by_id:
            _carry(by_id[key], override)
    for component in old_calendar.subcomponents:
        if component.name == "VTIMEZONE":
            tzid = str(component.get("TZID"))
            if tzid not in {str(c.get("TZID")) for c in new_calendar.walk("VTIMEZONE")}:
                new_calendar.subcomponents.insert(0, component)
        elif component.name not in ("VEVENT",) or (
                str(component.get("UID", "")) != str(uid or "")):
            new_calendar.add_component(component)
    for name, value in old_calendar.property_items(recursive=False):
        if name not in ("BEGIN", "END", "PRODID", "VERSION") and name not in new_calendar:
            new_calendar.add(name, value)
    return _ical.serialise(new_calendar)


def _instance_context(master, tz: tzinfo | None, version: tuple[int, int]) -> _Context:
    zone, year = _event_zone(master, tz)
    start = master["DTSTART"].dt
    all_day = not isinstance(start, datetime)
    tzid = None
    if isinstance(start, datetime) and start.tzinfo is not None and not _ical.is_utc(start.tzinfo):
        tzid = master["DTSTART"].params.get("TZID") or _ical.tzid_of(start.tzinfo)
    elif isinstance(start, datetime) and start.tzinfo is None:
        tzid = None
    kept = _ical.kept_value(master, KEPT_TIMEZONE)
    hint = zone if kept else tz
    return _Context(version, tz, zone, tzid, all_day, hint, {})


def _same_instance(value, original) -> bool:
    if isinstance(original, datetime) and isinstance(value, datetime):
        return _eas.utc(value) == _eas.utc(original) if value.tzinfo else False
    return value == original


def _drop_instance(calendar, master, original, ctx: _Context) -> None:
    for component in list(calendar.subcomponents):
        if component.name == "VEVENT" and "RECURRENCE-ID" in component and \
                str(component.get("UID")) == str(master.get("UID")):
            value = component["RECURRENCE-ID"].dt
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=ctx.zone)
            if _same_instance(value, original):
                calendar.subcomponents.remove(component)


def change_instance(stored: bytes | str, instance_id: str, data: etree._Element,
                    version: str, *, tz: tzinfo | None = None) -> bytes:
    """
    A 16.x Sync Change of one occurrence (AirSyncBase:InstanceId beside the
    ServerId, MS-ASCAL 2.2.2.22): the occurrence becomes an override VEVENT
    built from `data` like an Exception.
    """
    calendar = _ical.parse(stored)
    master, _ = _split(calendar)
    ctx = _instance_context(master, tz, _eas.version_tuple(version))
    original = _original(instance_id, ctx)
    if original is None:
        raise ConversionError("empty InstanceId")
    _drop_instance(calendar, master, original, ctx)
    calendar.add_component(_override(master, original, data, ctx))
    return _ical.serialise(calendar)


def delete_instance(stored: bytes | str, instance_id: str, *, tz: tzinfo | None = None) -> bytes:
    """A 16.x Sync Delete of one occurrence: an EXDATE, its override removed."""
    calendar = _ical.parse(stored)
    master, _ = _split(calendar)
    ctx = _instance_context(master, tz, (16, 0))
    original = _original(instance_id, ctx)
    if original is None:
        raise ConversionError("empty InstanceId")
    _drop_instance(calendar, master, original, ctx)
    _add_exdate(master, original, ctx)
    return _ical.serialise(calendar)

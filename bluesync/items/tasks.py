"""
The tasks content class: iCalendar VTODO <-> EAS ApplicationData
(MS-ASTASK).

    from_eas(data, version, *, tz=None, uid=None, now=None) -> (ics bytes, columns)
    to_eas(stored, version, *, tz=None, body_preferences=()) -> ApplicationData
    merge(stored, from_device) -> ics bytes
    columns(stored, *, tz=None) -> {"uid", "subject", "complete", "due" (UTC or None),
                                    "date_completed"}

Mapping (VTODO <- EAS):

    SUMMARY DESCRIPTION CATEGORIES   Subject, Body, Categories
    PRIORITY          Importance (0 low -> 9, 1 normal -> 5, 2 high -> 1)
    DTSTART, DUE      StartDate/UtcStartDate, DueDate/UtcDueDate
    STATUS COMPLETED  Complete (COMPLETED + PERCENT-COMPLETE:100, else
                      NEEDS-ACTION), DateCompleted
    VALARM TRIGGER;VALUE=DATE-TIME   ReminderSet=1 with ReminderTime
    CLASS             Sensitivity (as in calendar.py)
    RRULE             Recurrence (Regenerate, DeadOccur and Start kept as
                      X-BLUESYNC-EAS-TASKS-*)

Task dates. MS-ASTASK sends each date twice: Utc*Date the instant, and
*Date the same wall-clock time in the user's zone written as if UTC. Tasks
are date-only on phones and in Outlook: when *Date is at 00:00 the VTODO
gets a DATE (DUE;VALUE=DATE:20261127), else the UTC DATE-TIME. The device's
Utc* value is kept, and sent back while it still names that day; otherwise
Utc* is computed from `tz` (the device's zone, default UTC).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, tzinfo
from typing import Sequence

import icalendar
from lxml import etree

from bluesync.items import _eas, _ical, _recurrence
from bluesync.items._eas import AIRSYNCBASE, TASKS, UTC, ConversionError, el, integer, text
from bluesync.items.calendar import CLASS_NAMES, CLASS_VALUES
from bluesync.items.email import BodyPreference

__all__ = ["ConversionError", "columns", "from_eas", "merge", "to_eas"]

IMPORTANCE_PRIORITY = {0: 9, 1: 5, 2: 1}
MAPPED_PROPERTIES = frozenset({
    "UID", "DTSTAMP", "SUMMARY", "DESCRIPTION", "X-ALT-DESC", "CATEGORIES",
    "PRIORITY", "DTSTART", "DUE", "STATUS", "COMPLETED", "PERCENT-COMPLETE",
    "CLASS", "RRULE",
})
_MAPPED = _eas.tags(
    TASKS, "Subject", "Importance", "StartDate", "UtcStartDate", "DueDate",
    "UtcDueDate", "Complete", "DateCompleted", "ReminderSet", "ReminderTime",
    "Sensitivity", "Categories", "Recurrence", "Body", "BodySize", "BodyTruncated",
) | _eas.tags(AIRSYNCBASE, "Body", "NativeBodyType")
KEPT_UTC = {"DTSTART": "X-BLUESYNC-EAS-TASKS-UTCSTARTDATE",
            "DUE": "X-BLUESYNC-EAS-TASKS-UTCDUEDATE"}
KEPT_LOCAL = {"DTSTART": "X-BLUESYNC-EAS-TASKS-STARTDATE",
              "DUE": "X-BLUESYNC-EAS-TASKS-DUEDATE"}
KEPT_RECURRENCE = ("Start", "Regenerate", "DeadOccur", "CalendarType", "IsLeapMonth")


def _importance(priority) -> int | None:
    if priority is None:
        return None
    value = int(priority)
    if value == 0:
        return None
    return 2 if value <= 4 else 1 if value == 5 else 0


def _put_task_date(todo, name: str, local_text: str | None, utc_text: str | None,
                   tz: tzinfo | None) -> None:
    local = _eas.parse_datetime(local_text)
    instant = _eas.parse_datetime(utc_text)
    if local is None and instant is None:
        return
    if local is not None and local.time() == time(0):
        todo.add(name, local.date())
        if instant is not None:
            _ical.add_text(todo, KEPT_UTC[name], _eas.iso(instant))
        return
    if instant is None:
        # Only the wall-clock form: read it in the device's zone.
        instant = local.replace(tzinfo=tz or UTC).astimezone(UTC)
    todo.add(name, instant)
    if local is not None:
        _ical.add_text(todo, KEPT_LOCAL[name], _eas.iso(local))


def from_eas(data: etree._Element, version: str, *, tz: tzinfo | None = None,
             uid: str | None = None, now: datetime | None = None) -> tuple[bytes, dict]:
    """A device's task ApplicationData as stored iCalendar and its columns."""
    v = _eas.version_tuple(version)
    todo = icalendar.Todo()
    _ical.add_text(todo, "UID", uid or str(uuid.uuid4()))
    todo.add("DTSTAMP", _eas.utc(now) if now is not None else datetime(2000, 1, 1, tzinfo=UTC))
    subject = text(data, TASKS, "Subject")
    if subject is not None:
        _ical.add_text(todo, "SUMMARY", subject)
    _ical.add_body(todo, _eas.read_body(data))
    importance = integer(data, TASKS, "Importance")
    if importance is not None:
        todo.add("PRIORITY", IMPORTANCE_PRIORITY.get(importance, 5))
    _put_task_date(todo, "DTSTART", text(data, TASKS, "StartDate"),
                   text(data, TASKS, "UtcStartDate"), tz)
    _put_task_date(todo, "DUE", text(data, TASKS, "DueDate"),
                   text(data, TASKS, "UtcDueDate"), tz)
    complete = integer(data, TASKS, "Complete") == 1
    todo.add("STATUS", "COMPLETED" if complete else "NEEDS-ACTION")
    if complete:
        todo.add("PERCENT-COMPLETE", 100)
        done = _eas.parse_datetime(text(data, TASKS, "DateCompleted"))
        if done is not None:
            todo.add("COMPLETED", done)
    sensitivity = integer(data, TASKS, "Sensitivity")
    if sensitivity is not None:
        todo.add("CLASS", CLASS_NAMES.get(sensitivity, "PRIVATE"))
    categories = _eas.find(data, TASKS, "Categories")
    if categories is not None:
        _ical.set_categories(todo, [c.text or "" for c in categories])
    reminder = _eas.parse_datetime(text(data, TASKS, "ReminderTime"))
    if integer(data, TASKS, "ReminderSet") == 1 and reminder is not None:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        _ical.add_text(alarm, "DESCRIPTION", subject or "Reminder")
        alarm.add("TRIGGER", reminder)
        todo.add_component(alarm)
    elif reminder is not None:
        _ical.add_text(todo, "X-BLUESYNC-EAS-TASKS-REMINDERTIME", _eas.iso(reminder))
    recurrence = _eas.find(data, TASKS, "Recurrence")
    if recurrence is not None:
        parsed = _recurrence.read(recurrence, TASKS)
        until = _eas.parse_datetime(parsed.until)
        todo.add("RRULE", _recurrence.to_rrule(parsed, until))
        if "DTSTART" not in todo and parsed.start:
            todo.add("DTSTART", _eas.parse_datetime(parsed.start).date())
        for name in KEPT_RECURRENCE:
            value = text(recurrence, TASKS, name)
            if value is not None:
                _ical.add_text(todo, f"X-BLUESYNC-EAS-TASKS-{name.upper()}", value)
    for element in _eas.unmapped(data, _MAPPED, _eas.TASKS_PAGES):
        _ical.add_kept(todo, element)
    calendar = _ical.new_calendar()
    calendar.add_component(todo)
    stored = _ical.serialise(calendar)
    del v
    return stored, columns(stored, tz=tz)


def _todo(stored: bytes | str) -> tuple[icalendar.Calendar, icalendar.Todo]:
    calendar = _ical.parse(stored)
    todos = [c for c in calendar.subcomponents if c.name == "VTODO"]
    if not todos:
        raise ConversionError("no VTODO in the stored calendar")
    return calendar, todos[0]


def _task_dates(todo, name: str, tz: tzinfo | None) -> tuple[datetime, datetime] | None:
    """(UTC instant, local-as-UTC) for a VTODO date property."""
    value = _ical.dt_value(todo, name)
    if value is None:
        return None
    zone = tz or UTC
    if not isinstance(value, datetime):
        local = datetime.combine(value, time(0), UTC)
        kept = _ical.kept_value(todo, KEPT_UTC[name])
        instant = _eas.parse_datetime(kept) if kept else None
        if instant is None or abs(instant - local) > timedelta(hours=14):
            instant = datetime.combine(value, time(0), zone).astimezone(UTC)
        return instant, local
    instant = value.replace(tzinfo=zone) if value.tzinfo is None else value
    instant = instant.astimezone(UTC)
    kept = _ical.kept_value(todo, KEPT_LOCAL[name])
    local = _eas.parse_datetime(kept) if kept else None
    if local is None or abs(local - instant) > timedelta(hours=14):
        local = instant.astimezone(zone).replace(tzinfo=UTC)
    return instant, local


def to_eas(stored: bytes | str, version: str, *, tz: tzinfo | None = None,
           body_preferences: Sequence[BodyPreference] = ()) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a stored task, in the MS-ASTASK
    example order: Body, Subject, Importance, UtcStartDate, StartDate,
    UtcDueDate, DueDate, Categories, Recurrence, Complete, DateCompleted,
    Sensitivity, ReminderTime, ReminderSet.
    """
    v = _eas.version_tuple(version)
    _, todo = _todo(stored)
    data = _eas.application_data()
    if "DESCRIPTION" in todo or "X-ALT-DESC" in todo:
        _eas.body_element(data, _ical.stored_body(todo), body_preferences)
    el(data, TASKS, "Subject", _ical.x_text(todo.get("SUMMARY")) if "SUMMARY" in todo else "")
    importance = _importance(todo.get("PRIORITY"))
    el(data, TASKS, "Importance", 1 if importance is None else importance)
    for name, utc_name, local_name in (("DTSTART", "UtcStartDate", "StartDate"),
                                       ("DUE", "UtcDueDate", "DueDate")):
        found = _task_dates(todo, name, tz)
        if found is not None:
            el(data, TASKS, utc_name, _eas.iso(found[0]))
            el(data, TASKS, local_name, _eas.iso(found[1]))
    cats = _ical.categories(todo)
    if cats or "CATEGORIES" in todo:
        container = el(data, TASKS, "Categories")
        for cat in cats:
            el(container, TASKS, "Category", cat)
    _recurrence_element(data, todo, v, tz)
    complete = str(todo.get("STATUS", "")).upper() == "COMPLETED" or "COMPLETED" in todo
    el(data, TASKS, "Complete", 1 if complete else 0)
    if complete:
        done = _ical.dt_value(todo, "COMPLETED")
        if done is not None:
            el(data, TASKS, "DateCompleted", _eas.iso(done))
    sensitivity = todo.get("CLASS")
    if sensitivity is not None:
        el(data, TASKS, "Sensitivity", CLASS_VALUES.get(str(sensitivity).upper(), 2))
    reminder = _reminder(todo, tz)
    if reminder is not None:
        el(data, TASKS, "ReminderTime", _eas.iso(reminder))
        el(data, TASKS, "ReminderSet", 1)
    else:
        kept = _ical.kept_value(todo, "X-BLUESYNC-EAS-TASKS-REMINDERTIME")
        if kept:
            el(data, TASKS, "ReminderTime", kept)
        el(data, TASKS, "ReminderSet", 0)
    skip = {"X-BLUESYNC-EAS-TASKS-REMINDERTIME", *KEPT_UTC.values(), *KEPT_LOCAL.values(),
            *(f"X-BLUESYNC-EAS-TASKS-{n.upper()}" for n in KEPT_RECURRENCE)}
    for name, value, is_xml in _ical.kept(todo):
        if name in skip:
            continue
        element = _eas.restore(name, value, is_xml, _eas.TASKS_PAGES)
        if element is not None and _eas.supported(element, _eas.version_text(v)):
            data.append(element)
    return data


def _reminder(todo, tz: tzinfo | None) -> datetime | None:
    for alarm in todo.subcomponents:
        if alarm.name != "VALARM" or "TRIGGER" not in alarm:
            continue
        trigger = alarm["TRIGGER"].dt
        if isinstance(trigger, datetime):
            return _eas.utc(trigger)
        anchor_name = "DUE" if str(alarm["TRIGGER"].params.get("RELATED", "")).upper() == "END" \
            else ("DTSTART" if "DTSTART" in todo else "DUE")
        anchor = _task_dates(todo, anchor_name, tz) if anchor_name in todo else None
        if anchor is not None and isinstance(trigger, timedelta):
            return anchor[0] + trigger
    return None


def _recurrence_element(data, todo, v: tuple[int, int], tz: tzinfo | None) -> None:
    rules = _ical.values(todo, "RRULE")
    start = _ical.dt_value(todo, "DTSTART") or _ical.dt_value(todo, "DUE")
    if not rules or start is None:
        return
    found = _recurrence.from_rrule(rules[0], start)
    if found is None:
        return
    recurrence, until = found
    from dataclasses import replace
    if until is not None and recurrence.occurrences is None:
        if not isinstance(until, datetime):
            until = datetime.combine(until, time(0), UTC)
        recurrence = replace(recurrence, until=_eas.iso(until))
    kept = {name: _ical.kept_value(todo, f"X-BLUESYNC-EAS-TASKS-{name.upper()}")
            for name in KEPT_RECURRENCE}
    start_text = kept["Start"]
    if not start_text:
        moment = start if isinstance(start, datetime) else datetime.combine(start, time(0), UTC)
        start_text = _eas.iso(moment)
    recurrence = replace(
        recurrence, start=start_text,
        interval=recurrence.interval or 1,
        regenerate=int(kept["Regenerate"]) if (kept["Regenerate"] or "").isdigit() else 0,
        dead_occur=int(kept["DeadOccur"]) if (kept["DeadOccur"] or "").isdigit() else 0,
        calendar_type=int(kept["CalendarType"]) if (kept["CalendarType"] or "").isdigit() else None,
        is_leap_month=int(kept["IsLeapMonth"]) if (kept["IsLeapMonth"] or "").isdigit() else None)
    _recurrence.write(data, TASKS, recurrence, v, tasks=True)


def columns(stored: bytes | str, *, tz: tzinfo | None = None) -> dict:
    """uid, subject, complete, due (UTC instant or None), date_completed."""
    _, todo = _todo(stored)
    due = _task_dates(todo, "DUE", tz)
    done = _ical.dt_value(todo, "COMPLETED")
    return {
        "uid": str(todo.get("UID", "")),
        "subject": _ical.x_text(todo.get("SUMMARY")) if "SUMMARY" in todo else "",
        "complete": str(todo.get("STATUS", "")).upper() == "COMPLETED" or "COMPLETED" in todo,
        "due": due[0] if due else None,
        "date_completed": _eas.utc(done) if isinstance(done, datetime) else None,
    }


def merge(stored: bytes | str, from_device: bytes | str) -> bytes:
    """A device's Change applied to a stored task, keeping what EAS cannot carry."""
    old_calendar, old = _todo(stored)
    new_calendar, new = _todo(from_device)
    new.pop("UID", None)
    new.pop("DTSTAMP", None)
    _ical.add_text(new, "UID", str(old.get("UID", "")))
    if "DTSTAMP" in old:
        new.add("DTSTAMP", old["DTSTAMP"].dt)
    _ical.carry_unmapped(old, new, MAPPED_PROPERTIES)
    alarms = [c for c in old.subcomponents if c.name == "VALARM"]
    for alarm in alarms[1:]:
        new.add_component(alarm)
    for component in old_calendar.subcomponents:
        if component is not old:
            new_calendar.add_component(component)
    return _ical.serialise(new_calendar)

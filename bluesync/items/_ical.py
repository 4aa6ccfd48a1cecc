"""
iCalendar helpers for the calendar, task and note converters (icalendar
library): a new VCALENDAR, X- properties as escaped text, compact
VTIMEZONEs from EAS-style yearly rules, and parsing stored text.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from typing import Collection, Iterable

import icalendar
from icalendar import vText
from lxml import etree

from bluesync.items import _eas, timezone as tzblob

PRODID = "-//bluesync//bluesync EAS server//EN"


def new_calendar() -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    return calendar


def parse(stored: bytes | str) -> icalendar.Calendar:
    """A stored or imported iCalendar object; ConversionError if unreadable."""
    try:
        calendar = icalendar.Calendar.from_ical(stored)
    except Exception as error:          # icalendar raises ValueError and others
        raise _eas.ConversionError(f"not iCalendar: {error}") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise _eas.ConversionError("not a VCALENDAR")
    return calendar


def serialise(calendar: icalendar.Calendar) -> bytes:
    return calendar.to_ical()


_UNESCAPE = re.compile(r"\\([\\;,nN])")


def x_text(value) -> str:
    """The text of a property, unescaping X- properties icalendar leaves raw."""
    if value is None:
        return ""
    if isinstance(value, vText):
        return str(value)
    raw = value.to_ical().decode("utf-8") if hasattr(value, "to_ical") else str(value)
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), raw)


def add_text(component, name: str, value: str, params: dict | None = None) -> None:
    component.add(name, vText(value), parameters=params or None)


def add_body(component, body: _eas.Body | None) -> None:
    """
    A device's body (L{_eas.read_body}) as DESCRIPTION, the plain text any
    iCalendar reader shows, and its HTML, when it sent some, as X-ALT-DESC
    with FMTTYPE=text/html (Microsoft's extension, MS-OXCICAL), so the
    formatting survives the round trip.
    """
    if body is None:
        return
    add_text(component, "DESCRIPTION", body.text)
    if body.html is not None:
        add_text(component, "X-ALT-DESC", body.html, {"FMTTYPE": "text/html"})


def stored_body(component) -> _eas.Body:
    """
    The body of a stored note or task for L{_eas.body_element}:
    DESCRIPTION, and the last X-ALT-DESC as its HTML.
    """
    html = None
    for value in values(component, "X-ALT-DESC"):
        html = x_text(value)
    return _eas.Body(x_text(component.get("DESCRIPTION")), html)


def carry_unmapped(old, new, mapped: Collection[str]) -> None:
    """
    Copy into C{new}, a component converted from a device's Change, the
    properties of C{old}, the stored one, that EAS cannot carry: those
    not in C{mapped} and not already in C{new}, all their values, so a
    phone's edit never erases what another client stored.  Kept EAS
    elements (X-BLUESYNC-EAS-*) are not copied: the Change sent its own.
    """
    present = {name for name, _ in new.property_items(recursive=False)}
    for name in dict.fromkeys(name for name, _ in old.property_items(recursive=False)):
        if name in ("BEGIN", "END") or name in mapped or name in present \
                or name.upper().startswith(_eas.X_EAS):
            continue
        for value in values(old, name):
            new.add(name, value)


def add_kept(component, element: etree._Element) -> None:
    """Keep an unmapped EAS element as X-BLUESYNC-EAS-<PAGE>-<NAME>."""
    name = _eas.kept_name(element)
    if name is None:
        return
    value, is_xml = _eas.kept_value(element)
    add_text(component, name, value, {"X-FORMAT": "XML"} if is_xml else None)


def kept(component) -> list[tuple[str, str, bool]]:
    """(name, value, is_xml) of the X-BLUESYNC-EAS-* properties of a component."""
    found = []
    for name, value in component.property_items(recursive=False):
        if name.upper().startswith(_eas.X_EAS):
            is_xml = getattr(value, "params", {}).get("X-FORMAT", "").upper() == "XML"
            found.append((name.upper(), x_text(value), is_xml))
    return found


def kept_value(component, name: str) -> str | None:
    for found, value, _ in kept(component):
        if found == name.upper():
            return value
    return None


def values(component, name: str) -> list:
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def categories(component) -> list[str]:
    found: list[str] = []
    for prop in values(component, "CATEGORIES"):
        cats = getattr(prop, "cats", None)
        if cats is None:
            cats = [part for part in re.split(r"(?<!\\),", x_text(prop))]
        found.extend(str(c) for c in cats if str(c))
    return found


def set_categories(component, cats: Iterable[str]) -> None:
    cats = [c for c in cats if c]
    if cats:
        component.add("CATEGORIES", cats)


# ---------------------------------------------------------------------------
# Time zones

def tzid_of(tz: tzinfo) -> str:
    if isinstance(tz, tzblob.RuleTimeZone):
        return (tz.info.standard_name or "Custom").strip() or "Custom"
    key = getattr(tz, "key", None) or getattr(tz, "_tzid", None) or getattr(tz, "zone", None)
    if key:
        return str(key)
    return str(tz.tzname(datetime(2000, 1, 1)) or "Custom")


def is_utc(tz: tzinfo | None) -> bool:
    if tz is None:
        return False
    if getattr(tz, "key", None) in ("UTC", "Etc/UTC"):
        return True
    probe = [datetime(2026, 1, 15), datetime(2026, 7, 15)]
    return tz is _eas.UTC or (all(tz.utcoffset(p) == timedelta(0) for p in probe)
                              and (tz.tzname(probe[0]) or "").upper() in ("UTC", "Z", "GMT"))


def _offset(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


def vtimezone(tz: tzinfo, year: int, tzid: str | None = None) -> icalendar.Timezone:
    """
    A compact VTIMEZONE for `tz`: its rules in `year` as yearly RRULEs (as
    Outlook and Exchange write them). Clients that know the TZID use their
    own tz database; the rest get rules that are right for current dates.
    """
    info = tz.info if isinstance(tz, tzblob.RuleTimeZone) else tzblob.from_zone(tz, year)
    component = icalendar.Timezone()
    component.add("TZID", tzid or tzid_of(tz))
    standard_offset = _offset(-(info.bias + info.standard_bias))
    if not info.has_dst:
        part = icalendar.TimezoneStandard()
        part.add("DTSTART", datetime(1601, 1, 1))
        part.add("TZOFFSETFROM", standard_offset)
        part.add("TZOFFSETTO", standard_offset)
        component.add_component(part)
        return component
    daylight_offset = _offset(-(info.bias + info.daylight_bias))
    for cls, rule, before, after in (
            (icalendar.TimezoneStandard, info.standard_date, daylight_offset, standard_offset),
            (icalendar.TimezoneDaylight, info.daylight_date, standard_offset, daylight_offset)):
        part = cls()
        first = rule.moment(1601) if not rule.year else rule.moment(rule.year)
        part.add("DTSTART", first or datetime(1601, 1, 1))
        part.add("TZOFFSETFROM", before)
        part.add("TZOFFSETTO", after)
        if not rule.year:
            ordinal = -1 if rule.day >= 5 else rule.day
            day = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"][rule.day_of_week % 7]
            part.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": [rule.month],
                               "BYDAY": [f"{ordinal}{day}"]})
        component.add_component(part)
    return component


def add_timezones(calendar: icalendar.Calendar, zones: dict[str, tuple[tzinfo, int]]) -> None:
    """Add a VTIMEZONE for each TZID used, replacing any older one."""
    existing = {str(tz.get("TZID")) for tz in calendar.walk("VTIMEZONE")}
    for tzid, (tz, year) in zones.items():
        if tzid in existing:
            continue
        calendar.subcomponents.insert(0, vtimezone(tz, year, tzid))


def as_date(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    return value


def dt_value(component, name: str):
    prop = component.get(name)
    if prop is None:
        return None
    return getattr(prop, "dt", None)

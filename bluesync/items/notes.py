"""
The notes content class (MS-ASNOTE, protocol 14.0 and later): iCalendar
VJOURNAL <-> EAS ApplicationData.

    from_eas(data, version, *, uid=None, now=None) -> (ics bytes, columns)
    to_eas(stored, version, *, body_preferences=()) -> ApplicationData
    merge(stored, from_device) -> ics bytes
    columns(stored) -> {"uid", "subject", "last_modified" (UTC or None)}

VJOURNAL (RFC 5545 3.6.3) is the standard's note: SUMMARY <- Subject,
DESCRIPTION <- AirSyncBase:Body (HTML also in X-ALT-DESC), CATEGORIES <-
Categories, LAST-MODIFIED <- LastModifiedDate, X-BLUESYNC-EAS-NOTES-
MESSAGECLASS <- MessageClass (IPM.StickyNote unless the device says
otherwise). A VJOURNAL has no DTSTART here: a note is not an entry of a day.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Sequence

import icalendar
from lxml import etree

from bluesync.items import _eas, _ical
from bluesync.items._eas import AIRSYNCBASE, NOTES, UTC, ConversionError, el, text
from bluesync.items.email import BodyPreference

__all__ = ["ConversionError", "DEFAULT_MESSAGE_CLASS", "columns", "from_eas", "merge", "to_eas"]

DEFAULT_MESSAGE_CLASS = "IPM.StickyNote"
KEPT_CLASS = "X-BLUESYNC-EAS-NOTES-MESSAGECLASS"
MAPPED_PROPERTIES = frozenset({"UID", "DTSTAMP", "SUMMARY", "DESCRIPTION", "X-ALT-DESC",
                               "CATEGORIES", "LAST-MODIFIED", KEPT_CLASS})
_MAPPED = _eas.tags(NOTES, "Subject", "MessageClass", "LastModifiedDate", "Categories") | \
    _eas.tags(AIRSYNCBASE, "Body", "NativeBodyType")


def from_eas(data: etree._Element, version: str, *, uid: str | None = None,
             now: datetime | None = None) -> tuple[bytes, dict]:
    """A device's note as stored iCalendar (VJOURNAL) and its columns."""
    if _eas.version_tuple(version) < (14, 0):
        raise ConversionError("notes need protocol 14.0 or later")
    journal = icalendar.Journal()
    _ical.add_text(journal, "UID", uid or str(uuid.uuid4()))
    modified = _eas.parse_datetime(text(data, NOTES, "LastModifiedDate"))
    stamp = modified or (_eas.utc(now) if now is not None else None)
    journal.add("DTSTAMP", stamp or datetime(2000, 1, 1, tzinfo=UTC))
    subject = text(data, NOTES, "Subject")
    if subject is not None:
        _ical.add_text(journal, "SUMMARY", subject)
    _ical.add_body(journal, _eas.read_body(data))
    categories = _eas.find(data, NOTES, "Categories")
    if categories is not None:
        _ical.set_categories(journal, [c.text or "" for c in categories])
    if modified is not None:
        journal.add("LAST-MODIFIED", modified)
    message_class = text(data, NOTES, "MessageClass")
    if message_class:
        _ical.add_text(journal, KEPT_CLASS, message_class)
    for element in _eas.unmapped(data, _MAPPED, _eas.NOTES_PAGES):
        _ical.add_kept(journal, element)
    calendar = _ical.new_calendar()
    calendar.add_component(journal)
    stored = _ical.serialise(calendar)
    return stored, columns(stored)


def _journal(stored: bytes | str):
    calendar = _ical.parse(stored)
    journals = [c for c in calendar.subcomponents if c.name == "VJOURNAL"]
    if not journals:
        raise ConversionError("no VJOURNAL in the stored calendar")
    return calendar, journals[0]


def to_eas(stored: bytes | str, version: str, *,
           body_preferences: Sequence[BodyPreference] = ()) -> etree._Element:
    """
    The {AirSync:}ApplicationData of a stored note, in the MS-ASNOTE
    example order: Subject, Body, MessageClass, LastModifiedDate, Categories.
    """
    v = _eas.version_tuple(version)
    _, journal = _journal(stored)
    data = _eas.application_data()
    el(data, NOTES, "Subject", _ical.x_text(journal.get("SUMMARY")) if "SUMMARY" in journal else "")
    _eas.body_element(data, _ical.stored_body(journal), body_preferences)
    el(data, NOTES, "MessageClass", _ical.kept_value(journal, KEPT_CLASS) or DEFAULT_MESSAGE_CLASS)
    modified = _ical.dt_value(journal, "LAST-MODIFIED") or _ical.dt_value(journal, "DTSTAMP")
    if isinstance(modified, datetime):
        el(data, NOTES, "LastModifiedDate", _eas.iso(modified))
    container = el(data, NOTES, "Categories")
    for cat in _ical.categories(journal):
        el(container, NOTES, "Category", cat)
    for name, value, is_xml in _ical.kept(journal):
        if name == KEPT_CLASS:
            continue
        element = _eas.restore(name, value, is_xml, _eas.NOTES_PAGES)
        if element is not None and _eas.supported(element, _eas.version_text(v)):
            data.append(element)
    return data


def columns(stored: bytes | str) -> dict:
    _, journal = _journal(stored)
    modified = _ical.dt_value(journal, "LAST-MODIFIED")
    return {
        "uid": str(journal.get("UID", "")),
        "subject": _ical.x_text(journal.get("SUMMARY")) if "SUMMARY" in journal else "",
        "last_modified": _eas.utc(modified) if isinstance(modified, datetime) else None,
    }


def merge(stored: bytes | str, from_device: bytes | str) -> bytes:
    """A device's Change applied to a stored note, keeping what EAS cannot carry."""
    old_calendar, old = _journal(stored)
    new_calendar, new = _journal(from_device)
    new.pop("UID", None)
    _ical.add_text(new, "UID", str(old.get("UID", "")))
    _ical.carry_unmapped(old, new, MAPPED_PROPERTIES)
    for component in old_calendar.subcomponents:
        if component is not old:
            new_calendar.add_component(component)
    return _ical.serialise(new_calendar)

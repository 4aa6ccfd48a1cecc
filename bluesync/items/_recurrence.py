"""
EAS Recurrence (MS-ASCAL 2.2.2.39, MS-ASTASK 2.2.2.19) <-> RFC 5545 RRULE,
shared by the calendar and task converters.

    Type 0 daily       FREQ=DAILY (DayOfWeek -> BYDAY)
    Type 1 weekly      FREQ=WEEKLY;BYDAY=<DayOfWeek bits>
    Type 2 monthly     FREQ=MONTHLY;BYMONTHDAY=<DayOfMonth>
    Type 3 monthly nth FREQ=MONTHLY;BYDAY=<n><day>, or BYDAY=<days>;BYSETPOS=<n>
                       for several days (WeekOfMonth 5 = last = -1);
                       DayOfWeek 127 with WeekOfMonth 5 = BYMONTHDAY=-1
    Type 5 yearly      FREQ=YEARLY;BYMONTH=<MonthOfYear>;BYMONTHDAY=<DayOfMonth>
    Type 6 yearly nth  FREQ=YEARLY;BYMONTH=<MonthOfYear>;BYDAY=<n><day> (as type 3)

Interval <-> INTERVAL, Occurrences <-> COUNT, Until <-> UNTIL,
FirstDayOfWeek <-> WKST. CalendarType and IsLeapMonth (non-Gregorian
calendars; RRULE has only RFC 7529's RSCALE, which few clients know) are
kept by the caller as X- properties. An RRULE EAS cannot express gives None
from `from_rrule` and the item is sent without its recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from lxml import etree

from bluesync.items._eas import ConversionError, el, integer, text

DAY_BITS = {"SU": 1, "MO": 2, "TU": 4, "WE": 8, "TH": 16, "FR": 32, "SA": 64}
DAY_NAMES = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]        # FirstDayOfWeek order
ALL_DAYS = 127


@dataclass(frozen=True)
class Recurrence:
    """A decoded Recurrence element; dates are raw text until the caller reads them."""
    type: int
    interval: int | None = None
    until: str | None = None
    occurrences: int | None = None
    day_of_week: int | None = None
    day_of_month: int | None = None
    week_of_month: int | None = None
    month_of_year: int | None = None
    first_day_of_week: int | None = None
    calendar_type: int | None = None
    is_leap_month: int | None = None
    # Tasks only (MS-ASTASK 2.2.2.19)
    start: str | None = None
    regenerate: int | None = None
    dead_occur: int | None = None


def read(element: etree._Element, namespace: str) -> Recurrence:
    kind = integer(element, namespace, "Type")
    if kind is None or kind not in (0, 1, 2, 3, 5, 6):
        raise ConversionError(f"unsupported recurrence type {kind!r}")
    # Ranges from MS-ASCAL 2.2.2 / MS-ASTASK 2.2.2 (Interval and
    # Occurrences are at most 999); a value outside them is a conversion
    # error for this item, never a number the iCalendar writer chokes on.
    return Recurrence(
        type=kind,
        interval=integer(element, namespace, "Interval", 0, 999),
        until=text(element, namespace, "Until") or None,
        occurrences=integer(element, namespace, "Occurrences", 0, 999),
        day_of_week=integer(element, namespace, "DayOfWeek", 0, 127),
        day_of_month=integer(element, namespace, "DayOfMonth", 1, 31),
        week_of_month=integer(element, namespace, "WeekOfMonth", 1, 5),
        month_of_year=integer(element, namespace, "MonthOfYear", 1, 12),
        first_day_of_week=integer(element, namespace, "FirstDayOfWeek", 0, 6),
        calendar_type=integer(element, namespace, "CalendarType", 0, 255),
        is_leap_month=integer(element, namespace, "IsLeapMonth", 0, 1),
        start=text(element, namespace, "Start") or None,
        regenerate=integer(element, namespace, "Regenerate", 0, 1),
        dead_occur=integer(element, namespace, "DeadOccur", 0, 1),
    )


# Element order: the MS-ASCAL and MS-ASTASK schemas.
_CALENDAR_ORDER = ("Type", "Occurrences", "Interval", "WeekOfMonth", "DayOfWeek",
                   "MonthOfYear", "Until", "DayOfMonth", "CalendarType",
                   "IsLeapMonth", "FirstDayOfWeek")
_TASKS_ORDER = ("Type", "Start", "Until", "Occurrences", "Interval", "DayOfWeek",
                "DayOfMonth", "WeekOfMonth", "MonthOfYear", "Regenerate",
                "DeadOccur", "CalendarType", "IsLeapMonth", "FirstDayOfWeek")
_FIELDS = {
    "Type": "type", "Occurrences": "occurrences", "Interval": "interval",
    "WeekOfMonth": "week_of_month", "DayOfWeek": "day_of_week",
    "MonthOfYear": "month_of_year", "Until": "until", "DayOfMonth": "day_of_month",
    "CalendarType": "calendar_type", "IsLeapMonth": "is_leap_month",
    "FirstDayOfWeek": "first_day_of_week", "Start": "start",
    "Regenerate": "regenerate", "DeadOccur": "dead_occur",
}


def write(parent: etree._Element, namespace: str, recurrence: Recurrence,
          version: tuple[int, int], *, tasks: bool = False) -> etree._Element:
    element = el(parent, namespace, "Recurrence")
    for name in (_TASKS_ORDER if tasks else _CALENDAR_ORDER):
        value = getattr(recurrence, _FIELDS[name])
        if value is None:
            continue
        if name in ("CalendarType", "IsLeapMonth") and version < (14, 0):
            continue
        if name == "FirstDayOfWeek" and version < (14, 1):
            continue
        el(element, namespace, name, value)
    return element


def _days(mask: int | None) -> list[str]:
    if not mask:
        return []
    return [name for name in DAY_NAMES if mask & DAY_BITS[name]]


def _ordinal(week: int | None) -> int:
    if week is None or not 1 <= week <= 5:
        raise ConversionError(f"WeekOfMonth must be 1..5, not {week!r}")
    return -1 if week == 5 else week


def to_rrule(recurrence: Recurrence, until: date | datetime | None) -> dict:
    """The RRULE (as an icalendar vRecur mapping) of a Recurrence."""
    rule: dict = {}
    kind = recurrence.type
    days = _days(recurrence.day_of_week)
    if kind == 0:
        rule["FREQ"] = "DAILY"
        if days and recurrence.day_of_week != ALL_DAYS:
            rule["BYDAY"] = days
    elif kind == 1:
        rule["FREQ"] = "WEEKLY"
        if days:
            rule["BYDAY"] = days
    elif kind == 2:
        rule["FREQ"] = "MONTHLY"
        if recurrence.day_of_month:
            rule["BYMONTHDAY"] = [recurrence.day_of_month]
    elif kind in (3, 6):
        rule["FREQ"] = "MONTHLY" if kind == 3 else "YEARLY"
        if kind == 6:
            if not recurrence.month_of_year:
                raise ConversionError("a yearly nth recurrence needs MonthOfYear")
            rule["BYMONTH"] = [recurrence.month_of_year]
        ordinal = _ordinal(recurrence.week_of_month)
        if recurrence.day_of_week == ALL_DAYS:
            if ordinal == -1:
                rule["BYMONTHDAY"] = [-1]
            else:
                rule["BYMONTHDAY"] = [ordinal]
        elif len(days) == 1:
            rule["BYDAY"] = [f"{ordinal}{days[0]}"]
        elif days:
            rule["BYDAY"] = days
            rule["BYSETPOS"] = [ordinal]
        else:
            raise ConversionError("an nth recurrence needs DayOfWeek")
    elif kind == 5:
        rule["FREQ"] = "YEARLY"
        if recurrence.month_of_year:
            rule["BYMONTH"] = [recurrence.month_of_year]
        if recurrence.day_of_month:
            rule["BYMONTHDAY"] = [recurrence.day_of_month]
    if recurrence.interval and recurrence.interval > 1:
        rule["INTERVAL"] = recurrence.interval
    if recurrence.occurrences:
        rule["COUNT"] = recurrence.occurrences
    elif until is not None:
        rule["UNTIL"] = until
    if recurrence.first_day_of_week is not None and 0 <= recurrence.first_day_of_week <= 6:
        rule["WKST"] = DAY_NAMES[recurrence.first_day_of_week]
    return rule


def _single(rule, name: str) -> list:
    value = rule.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _split_day(value: str) -> tuple[int | None, str]:
    value = str(value).upper()
    return (int(value[:-2]) if value[:-2] not in ("", "+") else None), value[-2:]


def from_rrule(rule, start: date | datetime) -> tuple[Recurrence, object] | None:
    """
    (Recurrence without Until, the RRULE's UNTIL value or None) for an RRULE,
    or None if EAS cannot express it. `start` is DTSTART (local).
    """
    freq = (_single(rule, "FREQ") or [""])[0].upper()
    interval = int((_single(rule, "INTERVAL") or [1])[0])
    count = _single(rule, "COUNT")
    until = (_single(rule, "UNTIL") or [None])[0]
    byday = [_split_day(day) for day in _single(rule, "BYDAY")]
    bymonthday = [int(v) for v in _single(rule, "BYMONTHDAY")]
    bymonth = [int(v) for v in _single(rule, "BYMONTH")]
    bysetpos = [int(v) for v in _single(rule, "BYSETPOS")]
    others = set(str(k).upper() for k in rule) - {
        "FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH",
        "BYSETPOS", "WKST"}
    if others:
        return None
    wkst = (_single(rule, "WKST") or [None])[0]
    first_day = DAY_NAMES.index(str(wkst).upper()) if wkst and str(wkst).upper() in DAY_NAMES else None
    start_day = DAY_NAMES[(start.weekday() + 1) % 7]

    def mask(days: list[str]) -> int:
        return sum(DAY_BITS[d] for d in set(days) if d in DAY_BITS)

    def week(ordinal: int) -> int | None:
        if ordinal == -1:
            return 5
        return ordinal if 1 <= ordinal <= 4 else None

    base = Recurrence(type=0, interval=interval,
                      occurrences=int(count[0]) if count else None,
                      first_day_of_week=first_day)
    plain_days = [d for n, d in byday if n is None]
    if freq == "DAILY":
        if bymonthday or bymonth or bysetpos or len(plain_days) != len(byday):
            return None
        found = replace(base, type=0, day_of_week=mask(plain_days) or None)
    elif freq == "WEEKLY":
        if bymonthday or bymonth or bysetpos or len(plain_days) != len(byday):
            return None
        found = replace(base, type=1, day_of_week=mask(plain_days or [start_day]))
    elif freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        if yearly:
            if len(bymonth) > 1:
                return None
            month = bymonth[0] if bymonth else start.month
        elif bymonth:
            return None
        else:
            month = None
        if byday:
            if bymonthday:
                return None
            if len(byday) == 1 and byday[0][0] is not None and not bysetpos:
                ordinal, day = byday[0]
                weeks = week(ordinal)
                if weeks is None:
                    return None
                found = replace(base, type=6 if yearly else 3, week_of_month=weeks,
                                day_of_week=mask([day]), month_of_year=month)
            elif len(plain_days) == len(byday) and len(bysetpos) == 1:
                weeks = week(bysetpos[0])
                if weeks is None:
                    return None
                found = replace(base, type=6 if yearly else 3, week_of_month=weeks,
                                day_of_week=mask(plain_days), month_of_year=month)
            else:
                return None
        elif bysetpos:
            return None
        elif bymonthday:
            if len(bymonthday) != 1:
                return None
            day = bymonthday[0]
            if day == -1:
                found = replace(base, type=6 if yearly else 3, week_of_month=5,
                                day_of_week=ALL_DAYS, month_of_year=month)
            elif 1 <= day <= 31:
                found = replace(base, type=5 if yearly else 2, day_of_month=day,
                                month_of_year=month)
            else:
                return None
        else:
            found = replace(base, type=5 if yearly else 2, day_of_month=start.day,
                            month_of_year=month)
    else:
        return None
    return found, until

"""
The EAS time zone blob (MS-ASDTYPE 2.7.6, MS-ASCAL 2.2.2.46) <-> tzinfo.

The blob is a Windows TIME_ZONE_INFORMATION: 172 bytes, little-endian,

    Bias          int32     minutes west of UTC (UTC-8 -> 480)
    StandardName  32 WCHAR  description, NUL padded (not always terminated)
    StandardDate  SYSTEMTIME  when daylight time ends
    StandardBias  int32     added to Bias during standard time (usually 0)
    DaylightName  32 WCHAR
    DaylightDate  SYSTEMTIME  when daylight time begins
    DaylightBias  int32     added to Bias during daylight time (usually -60)

sent base64-encoded in Calendar:TimeZone. A SYSTEMTIME is eight uint16
(year, month, day of week, day, hour, minute, second, milliseconds). With
year 0 it is a yearly rule: "the `day`-th `day of week` of `month`" where
day 5 means the last one, at `hour:minute` local time *before* the change
(so a European DaylightDate says 02:00 standard time, its StandardDate
03:00 daylight time). Month 0 in both dates means no daylight saving.

A blob describes one year's rules only; devices send the rules in force
now. So:

- `from_zone(zone, year)` finds the zone's two transitions in `year` and
  expresses them as such rules (a zone with a one-off change in that year,
  or none, is sent as its standard offset without DST);
- `RuleTimeZone(info)` is a tzinfo applying a blob's rules to every year;
- `match_zone(info, year)` finds the IANA zone whose rules in `year` are
  the blob's, preferring the zone the blob's names point at, so that
  stored iCalendar carries a real TZID (and so history) whenever possible;
- `tzinfo_for(info, year)` is the matched ZoneInfo, else a RuleTimeZone.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BLOB_SIZE", "COMMON_ZONES", "RuleTimeZone", "SystemTime", "TimeZoneInfo",
    "UTC_INFO", "from_zone", "match_zone", "tzinfo_for", "zone",
]

BLOB_SIZE = 172
UTC = timezone.utc
_STRUCT = struct.Struct("<i64s8Hi64s8Hi")
assert _STRUCT.size == BLOB_SIZE


@dataclass(frozen=True)
class SystemTime:
    """A SYSTEMTIME; with year 0 a yearly "nth weekday of month" rule."""
    year: int = 0
    month: int = 0
    day_of_week: int = 0     # 0 Sunday .. 6 Saturday
    day: int = 0             # rule: week 1..5 (5 = last); absolute: day of month
    hour: int = 0
    minute: int = 0
    second: int = 0
    milliseconds: int = 0

    def fields(self) -> tuple[int, ...]:
        return (self.year, self.month, self.day_of_week, self.day, self.hour,
                self.minute, self.second, self.milliseconds)

    def moment(self, year: int) -> datetime | None:
        """The naive local time this rule names in `year` (None: no rule)."""
        if not 1 <= self.month <= 12:
            return None
        clock = timedelta(hours=self.hour, minutes=self.minute, seconds=self.second)
        if self.year:
            # An absolute date: Windows applies it to its own year only, but
            # devices that send one mean "this date every year".
            try:
                return datetime(year, self.month, max(1, self.day)) + clock
            except ValueError:
                return None
        first = date(year, self.month, 1)
        # Python weekday(): Monday 0; SYSTEMTIME: Sunday 0.
        offset = (self.day_of_week - (first.weekday() + 1) % 7) % 7
        day = 1 + offset + 7 * (max(1, min(self.day, 5)) - 1)
        last = (date(year + self.month // 12, self.month % 12 + 1, 1) - timedelta(days=1)).day
        while day > last:
            day -= 7
        return datetime(year, self.month, day) + clock


@dataclass(frozen=True)
class TimeZoneInfo:
    """A decoded TIME_ZONE_INFORMATION; biases in minutes west of UTC."""
    bias: int = 0
    standard_name: str = ""
    standard_date: SystemTime = SystemTime()
    standard_bias: int = 0
    daylight_name: str = ""
    daylight_date: SystemTime = SystemTime()
    daylight_bias: int = 0

    @property
    def has_dst(self) -> bool:
        return (self.standard_date.month != 0 and self.daylight_date.month != 0
                and self.daylight_bias != self.standard_bias)

    def rules(self) -> tuple:
        """What the blob says about time, without its names (for comparison)."""
        if not self.has_dst:
            return (self.bias + self.standard_bias,)
        return (self.bias, self.standard_bias, self.daylight_bias,
                self.standard_date.fields(), self.daylight_date.fields())

    def pack(self) -> bytes:
        return _STRUCT.pack(
            self.bias, _wchars(self.standard_name), *self.standard_date.fields(),
            self.standard_bias, _wchars(self.daylight_name), *self.daylight_date.fields(),
            self.daylight_bias)

    def to_base64(self) -> str:
        return base64.b64encode(self.pack()).decode("ascii")

    @classmethod
    def unpack(cls, data: bytes) -> "TimeZoneInfo":
        """Decode a blob; ValueError if it is not 172 bytes."""
        if len(data) != BLOB_SIZE:
            raise ValueError(f"a time zone blob has {BLOB_SIZE} bytes, not {len(data)}")
        fields = _STRUCT.unpack(data)
        return cls(
            bias=fields[0], standard_name=_unwchars(fields[1]),
            standard_date=SystemTime(*fields[2:10]), standard_bias=fields[10],
            daylight_name=_unwchars(fields[11]),
            daylight_date=SystemTime(*fields[12:20]), daylight_bias=fields[20])

    @classmethod
    def from_base64(cls, text: str) -> "TimeZoneInfo":
        """Decode Calendar:TimeZone text; ValueError if it is not a blob."""
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("time zone text is not base64") from None
        return cls.unpack(data)


UTC_INFO = TimeZoneInfo(standard_name="UTC", daylight_name="UTC")


def _wchars(text: str) -> bytes:
    data = text.encode("utf-16-le")[:64]
    if len(data) % 2:
        data = data[:-1]
    return data.ljust(64, b"\0")


def _unwchars(data: bytes) -> str:
    text = data.decode("utf-16-le", errors="replace")
    return text.split("\0", 1)[0]


# ---------------------------------------------------------------------------
# Zone -> blob

# IANA zones first tried when a blob is matched, in order of preference
# among zones sharing the same rules (the first of a group wins unless the
# blob's names point at another). Devices send blobs for these all the time.
COMMON_ZONES: tuple[str, ...] = (
    "UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris",
    "Europe/Berlin", "Europe/Amsterdam", "Europe/Brussels", "Europe/Madrid",
    "Europe/Rome", "Europe/Vienna", "Europe/Zurich", "Europe/Stockholm",
    "Europe/Oslo", "Europe/Copenhagen", "Europe/Warsaw", "Europe/Prague",
    "Europe/Budapest", "Europe/Belgrade", "Europe/Athens", "Europe/Helsinki",
    "Europe/Kiev", "Europe/Bucharest", "Europe/Sofia", "Europe/Istanbul",
    "Europe/Moscow", "Africa/Lagos", "Africa/Johannesburg", "Africa/Cairo",
    "Africa/Nairobi", "Africa/Casablanca", "Asia/Jerusalem", "Asia/Beirut",
    "Asia/Dubai", "Asia/Tehran", "Asia/Karachi", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Dhaka", "Asia/Yangon", "Asia/Bangkok",
    "Asia/Jakarta", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Singapore",
    "Asia/Taipei", "Asia/Manila", "Australia/Perth", "Asia/Tokyo",
    "Asia/Seoul", "Australia/Darwin", "Australia/Adelaide",
    "Australia/Brisbane", "Australia/Sydney", "Australia/Melbourne",
    "Australia/Hobart", "Pacific/Guam", "Pacific/Noumea", "Pacific/Auckland",
    "Pacific/Fiji", "Pacific/Tongatapu", "Pacific/Apia", "Pacific/Kiritimati",
    "Atlantic/Azores", "Atlantic/Cape_Verde", "America/Noronha",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
    "America/Montevideo", "America/Santiago", "America/St_Johns",
    "America/Halifax", "America/Puerto_Rico", "America/Caracas",
    "America/New_York", "America/Toronto", "America/Bogota", "America/Lima",
    "America/Havana", "America/Chicago", "America/Mexico_City",
    "America/Regina", "America/Denver", "America/Phoenix", "America/Edmonton",
    "America/Los_Angeles", "America/Vancouver", "America/Tijuana",
    "America/Anchorage", "Pacific/Honolulu", "Pacific/Pago_Pago",
    "Etc/GMT+12",
)

# Windows zone ids (as devices put them in StandardName) -> IANA, for the
# zones above (CLDR windowsZones). Names are only a tie-break: rules decide.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC", "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GTB Standard Time": "Europe/Bucharest", "FLE Standard Time": "Europe/Kiev",
    "E. Europe Standard Time": "Europe/Chisinau", "Turkey Standard Time": "Europe/Istanbul",
    "Russian Standard Time": "Europe/Moscow", "W. Central Africa Standard Time": "Africa/Lagos",
    "South Africa Standard Time": "Africa/Johannesburg", "Egypt Standard Time": "Africa/Cairo",
    "E. Africa Standard Time": "Africa/Nairobi", "Morocco Standard Time": "Africa/Casablanca",
    "Israel Standard Time": "Asia/Jerusalem", "Middle East Standard Time": "Asia/Beirut",
    "Arabian Standard Time": "Asia/Dubai", "Iran Standard Time": "Asia/Tehran",
    "Pakistan Standard Time": "Asia/Karachi", "India Standard Time": "Asia/Kolkata",
    "Nepal Standard Time": "Asia/Kathmandu", "Bangladesh Standard Time": "Asia/Dhaka",
    "Myanmar Standard Time": "Asia/Yangon", "SE Asia Standard Time": "Asia/Bangkok",
    "China Standard Time": "Asia/Shanghai", "Singapore Standard Time": "Asia/Singapore",
    "Taipei Standard Time": "Asia/Taipei", "W. Australia Standard Time": "Australia/Perth",
    "Tokyo Standard Time": "Asia/Tokyo", "Korea Standard Time": "Asia/Seoul",
    "AUS Central Standard Time": "Australia/Darwin",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney", "Tasmania Standard Time": "Australia/Hobart",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "New Zealand Standard Time": "Pacific/Auckland", "Fiji Standard Time": "Pacific/Fiji",
    "Tonga Standard Time": "Pacific/Tongatapu", "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati", "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Montevideo Standard Time": "America/Montevideo",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Atlantic Standard Time": "America/Halifax", "SA Western Standard Time": "America/La_Paz",
    "Venezuela Standard Time": "America/Caracas", "Eastern Standard Time": "America/New_York",
    "SA Pacific Standard Time": "America/Bogota", "Cuba Standard Time": "America/Havana",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "Alaskan Standard Time": "America/Anchorage", "Hawaiian Standard Time": "Pacific/Honolulu",
    "UTC-11": "Pacific/Pago_Pago", "Dateline Standard Time": "Etc/GMT+12",
}
_WINDOWS_BY_ZONE: dict[str, str] = {}
for _name, _iana in WINDOWS_ZONES.items():
    _WINDOWS_BY_ZONE.setdefault(_iana, _name)


def zone(name: str) -> tzinfo | None:
    """ZoneInfo(name), or None for a name tzdata does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_minutes(tz: tzinfo, moment: datetime) -> int:
    offset = moment.astimezone(tz).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, int, int]]:
    """(UTC instant, offset before, offset after) of each change in `year`."""
    found = []
    start = datetime(year, 1, 1, tzinfo=UTC) - timedelta(hours=14)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) + timedelta(hours=14)
    step = timedelta(hours=6)
    moment = start
    before = _offset_minutes(tz, moment)
    while moment < end:
        following = moment + step
        after = _offset_minutes(tz, following)
        if after != before:
            low, high = moment, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if _offset_minutes(tz, middle) == before:
                    low = middle
                else:
                    high = middle
            local = high.replace(second=0, microsecond=0) + timedelta(minutes=before)
            if local.year == year:
                found.append((high.replace(second=0, microsecond=0), before, after))
        moment, before = following, after
    return found


def _rule(local: datetime) -> SystemTime:
    """The "nth weekday of month" rule naming a local time (5 = last)."""
    last = (date(local.year + local.month // 12, local.month % 12 + 1, 1) - timedelta(days=1)).day
    week = 5 if local.day + 7 > last else (local.day - 1) // 7 + 1
    return SystemTime(0, local.month, (local.weekday() + 1) % 7, week,
                      local.hour, local.minute, local.second, 0)


def _tz(value: tzinfo | str) -> tzinfo:
    if isinstance(value, str):
        found = zone(value)
        if found is None:
            raise ValueError(f"unknown time zone {value!r}")
        return found
    return value


def _zone_key(tz: tzinfo) -> str | None:
    key = getattr(tz, "key", None)
    if key:
        return key
    if tz is UTC:
        return "UTC"
    return None


def from_zone(value: tzinfo | str, year: int) -> TimeZoneInfo:
    """
    The blob describing `value`'s rules in `year`.

    DaylightDate is the local standard time at which DST starts and
    StandardDate the local daylight time at which it ends, as Windows
    writes them. A zone whose offset changes other than as a yearly DST
    pair in that year is described by its offset at the end of the year.
    """
    tz = _tz(value)
    key = _zone_key(tz)
    windows = _WINDOWS_BY_ZONE.get(key or "", "")
    changes = _transitions(tz, year)
    mid_year = datetime(year, 7, 1, tzinfo=UTC)
    new_year = datetime(year, 1, 1, tzinfo=UTC)
    if len(changes) == 2 and changes[0][1] == changes[1][2] and changes[0][2] == changes[1][1]:
        first, second = changes
        # The smaller offset is standard time (true of every zone but a
        # couple with "negative DST", which Windows also describes this way).
        standard = min(first[1], first[2])
        daylight = max(first[1], first[2])
        starts_dst = first if first[2] == daylight else second
        ends_dst = second if starts_dst is first else first
        daylight_date = _rule(starts_dst[0] + timedelta(minutes=standard))
        standard_date = _rule(ends_dst[0] + timedelta(minutes=daylight))
        std_name = windows or _name(tz, new_year if first[2] == daylight else mid_year, key)
        dst_name = (windows.replace("Standard", "Daylight") if windows
                    else _name(tz, starts_dst[0] + timedelta(hours=1), key))
        return TimeZoneInfo(
            bias=-standard, standard_name=std_name, standard_date=standard_date,
            standard_bias=0, daylight_name=dst_name, daylight_date=daylight_date,
            daylight_bias=-(daylight - standard))
    offset = _offset_minutes(tz, datetime(year, 12, 31, 12, tzinfo=UTC))
    name = windows or _name(tz, mid_year, key)
    return TimeZoneInfo(bias=-offset, standard_name=name, daylight_name=name)


def _name(tz: tzinfo, moment: datetime, key: str | None) -> str:
    if key:
        return key[:32]
    return (moment.astimezone(tz).tzname() or "")[:32]


# ---------------------------------------------------------------------------
# Blob -> tzinfo

class RuleTimeZone(tzinfo):
    """
    A tzinfo applying a blob's yearly rules to every year.

    Local times in the hour skipped at the start of DST are read as
    standard time (fold ignored); in the repeated hour, fold=0 is the
    daylight (first) reading and fold=1 the standard one, as PEP 495 says.
    """

    def __init__(self, info: TimeZoneInfo) -> None:
        self.info = info
        self._standard = timedelta(minutes=-(info.bias + info.standard_bias))
        self._daylight = timedelta(minutes=-(info.bias + info.daylight_bias))

    def __repr__(self) -> str:
        return f"RuleTimeZone({self.info.standard_name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleTimeZone) and other.info.rules() == self.info.rules()

    def __hash__(self) -> int:
        return hash(self.info.rules())

    def _is_dst(self, local: datetime) -> bool:
        if not self.info.has_dst:
            return False
        naive = local.replace(tzinfo=None)
        begins = self.info.daylight_date.moment(naive.year)
        ends = self.info.standard_date.moment(naive.year)
        if begins is None or ends is None:
            return False
        shift = self._daylight - self._standard
        # Local wall times: DST runs from `begins` (standard clock) to
        # `ends` (daylight clock). The repeated hour is [ends - shift, ends).
        if begins < ends:
            in_dst = begins + shift <= naive < ends
        else:                                       # southern hemisphere
            in_dst = not (ends <= naive < begins + shift)
        if in_dst and ends - shift <= naive < ends and local.fold:
            return False
        return in_dst

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return self._standard
        return self._daylight if self._is_dst(dt) else self._standard

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        return self._daylight - self._standard if self._is_dst(dt) else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        if dt is not None and self._is_dst(dt):
            return self.info.daylight_name or "DST"
        return self.info.standard_name or "STD"

    def fromutc(self, dt: datetime) -> datetime:
        naive = dt.replace(tzinfo=None)
        standard = naive + self._standard
        if not self.info.has_dst:
            return standard.replace(tzinfo=self)
        begins = self.info.daylight_date.moment(standard.year)
        ends = self.info.standard_date.moment(standard.year)
        if begins is None or ends is None:
            return standard.replace(tzinfo=self)
        begins_utc = begins - self._standard
        ends_utc = ends - self._daylight
        if begins_utc < ends_utc:
            in_dst = begins_utc <= naive < ends_utc
        else:
            in_dst = not (ends_utc <= naive < begins_utc)
        if in_dst:
            return (naive + self._daylight).replace(tzinfo=self)
        shift = self._daylight - self._standard
        fold = 1 if ends - shift <= standard < ends else 0
        return standard.replace(tzinfo=self, fold=fold)


@lru_cache(maxsize=512)
def _zone_rules(name: str, year: int) -> tuple | None:
    tz = zone(name)
    if tz is None:
        return None
    return from_zone(tz, year).rules()


def match_zone(info: TimeZoneInfo, year: int) -> ZoneInfo | None:
    """
    The IANA zone whose rules in `year` are those of the blob, or None.

    Candidates are the zone the blob's StandardName names (a Windows id or
    an IANA name), then COMMON_ZONES in order.
    """
    wanted = info.rules()
    candidates: list[str] = []
    for name in (info.standard_name, info.daylight_name):
        name = name.strip()
        if name in WINDOWS_ZONES:
            candidates.append(WINDOWS_ZONES[name])
        elif "/" in name or name == "UTC":
            candidates.append(name)
    candidates.extend(COMMON_ZONES)
    for name in candidates:
        if _zone_rules(name, year) == wanted:
            found = zone(name)
            if isinstance(found, ZoneInfo):
                return found
    return None


def tzinfo_for(info: TimeZoneInfo, year: int) -> tzinfo:
    """The matched IANA zone for a blob, else a RuleTimeZone of its rules."""
    return match_zone(info, year) or RuleTimeZone(info)


def is_empty(info: TimeZoneInfo) -> bool:
    """An all-zero blob (sent by some servers and devices for "no zone")."""
    return info == TimeZoneInfo()

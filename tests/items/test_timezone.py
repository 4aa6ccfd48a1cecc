"""
Tests for L{bluesync.items.timezone}: the EAS TIME_ZONE_INFORMATION blob.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items.timezone import (
    RuleTimeZone, SystemTime, TimeZoneInfo, from_zone, match_zone, tzinfo_for,
)

UTC = timezone.utc

# Sent by a real Exchange server (Pacific time, names cut at 32 WCHARs).
PACIFIC_BLOB = (
    "4AEAACgAVQBUAEMALQAwADgAOgAwADAAKQAgAFAAYQBjAGkAZgBpAGMAIABUAGkAbQBlACAAKABVAFMA"
    "IAAmACAAQwAAAAsAAAABAAIAAAAAAAAAAAAAACgAVQBUAEMALQAwADgAOgAwADAAKQAgAFAAYQBjAGkA"
    "ZgBpAGMAIABUAGkAbQBlACAAKABVAFMAIAAmACAAQwAAAAMAAAACAAIAAAAAAAAAxP///w==")

ZONES = ("Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "Pacific/Kiritimati", "Pacific/Honolulu", "America/Los_Angeles")


class BlobTests(SynchronousTestCase):
    """
    Decoding and encoding the 172-byte structure.
    """

    def test_known_good_pacific(self):
        """A real Pacific Time blob decodes to the US rules and re-encodes byte for byte."""
        info = TimeZoneInfo.from_base64(PACIFIC_BLOB)
        self.assertEqual(info.bias, 480)
        self.assertEqual(info.daylight_bias, -60)
        self.assertEqual(info.standard_date, SystemTime(0, 11, 0, 1, 2))
        self.assertEqual(info.daylight_date, SystemTime(0, 3, 0, 2, 2))
        self.assertEqual(info.standard_name, "(UTC-08:00) Pacific Time (US & C")
        self.assertEqual(info.to_base64(), PACIFIC_BLOB)

    def test_pacific_matches_los_angeles(self):
        """The Pacific blob is matched by its rules to America/Los_Angeles."""
        info = TimeZoneInfo.from_base64(PACIFIC_BLOB)
        self.assertEqual(match_zone(info, 2026), ZoneInfo("America/Los_Angeles"))
        self.assertEqual(from_zone("America/Los_Angeles", 2026).rules(), info.rules())

    def test_wrong_size(self):
        """A blob that is not 172 bytes is refused."""
        self.assertRaises(ValueError, TimeZoneInfo.unpack, b"\0" * 171)
        self.assertRaises(ValueError, TimeZoneInfo.from_base64, "not base64!")


class FromZoneTests(SynchronousTestCase):
    """
    L{from_zone} expresses a zone's transitions as nth-weekday rules.
    """

    def test_paris(self):
        """Paris: last Sunday of March 02:00 standard, last Sunday of October 03:00 summer."""
        info = from_zone("Europe/Paris", 2026)
        self.assertEqual((info.bias, info.daylight_bias), (-60, -60))
        self.assertEqual(info.daylight_date, SystemTime(0, 3, 0, 5, 2))
        self.assertEqual(info.standard_date, SystemTime(0, 10, 0, 5, 3))
        self.assertEqual(info.standard_name, "Romance Standard Time")

    def test_new_york(self):
        """New York: second Sunday of March, first Sunday of November, 02:00."""
        info = from_zone("America/New_York", 2026)
        self.assertEqual(info.bias, 300)
        self.assertEqual(info.daylight_date, SystemTime(0, 3, 0, 2, 2))
        self.assertEqual(info.standard_date, SystemTime(0, 11, 0, 1, 2))

    def test_sydney(self):
        """Sydney (southern hemisphere): DST from the first Sunday of October to April's."""
        info = from_zone("Australia/Sydney", 2026)
        self.assertEqual(info.bias, -600)
        self.assertEqual(info.daylight_date, SystemTime(0, 10, 0, 1, 2))
        self.assertEqual(info.standard_date, SystemTime(0, 4, 0, 1, 3))

    def test_zones_without_dst(self):
        """Kolkata, Kiritimati (UTC+14) and Honolulu (UTC-10) have no DST rule."""
        for name, bias in (("Asia/Kolkata", -330), ("Pacific/Kiritimati", -840),
                           ("Pacific/Honolulu", 600)):
            info = from_zone(name, 2026)
            self.assertEqual(info.bias, bias)
            self.assertFalse(info.has_dst)
            self.assertEqual(info.standard_date.month, 0)

    def test_round_trip_matches(self):
        """Every test zone's blob is matched back to that zone."""
        for name in ZONES:
            info = TimeZoneInfo.unpack(from_zone(name, 2026).pack())
            self.assertEqual(match_zone(info, 2026), ZoneInfo(name))


class RuleTimeZoneTests(SynchronousTestCase):
    """
    L{RuleTimeZone} applies a blob's rules like the real zone.
    """

    def test_agrees_with_zoneinfo(self):
        """For each zone, every half hour of 2026 has the same local time both ways."""
        for name in ZONES:
            rules, real = RuleTimeZone(from_zone(name, 2026)), ZoneInfo(name)
            moment = datetime(2026, 1, 1, tzinfo=UTC)
            while moment.year == 2026:
                mine, theirs = moment.astimezone(rules), moment.astimezone(real)
                self.assertEqual((mine.replace(tzinfo=None), mine.utcoffset(), mine.fold),
                                 (theirs.replace(tzinfo=None), theirs.utcoffset(), theirs.fold))
                self.assertEqual(theirs.replace(tzinfo=rules).astimezone(UTC), moment)
                moment += timedelta(minutes=30)

    def test_unknown_rules(self):
        """A blob no zone matches gives a RuleTimeZone with its offsets."""
        info = TimeZoneInfo(bias=-77, standard_name="Odd")
        tz = tzinfo_for(info, 2026)
        self.assertIsInstance(tz, RuleTimeZone)
        self.assertEqual(datetime(2026, 6, 1, tzinfo=tz).utcoffset(), timedelta(minutes=77))

    @settings(max_examples=200, deadline=None)
    @given(st.integers(-720, 840), st.integers(1, 12), st.integers(1, 5),
           st.integers(0, 6), st.integers(0, 23), st.integers(1, 12), st.integers(1, 5))
    def test_pack_round_trip(self, bias, month, week, weekday, hour, month2, week2):
        """Any blob survives pack/unpack and base64."""
        info = TimeZoneInfo(bias, "Std", SystemTime(0, month, weekday, week, hour), 0,
                            "Dst", SystemTime(0, month2, weekday, week2, hour), -60)
        self.assertEqual(TimeZoneInfo.from_base64(info.to_base64()), info)

"""
Tests for L{bluesync.items.calendar}.
"""

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import calendar
from bluesync.items.timezone import from_zone

DATA = Path(__file__).parent / "data"
UTC = timezone.utc
PARIS = from_zone("Europe/Paris", 2026).to_base64()


def xml(body: str):
    return etree.fromstring(
        '<ApplicationData xmlns="AirSync:" xmlns:c="Calendar:" xmlns:b="AirSyncBase:">'
        + body + "</ApplicationData>")


def flat(element) -> list[tuple[str, str]]:
    return [(node.tag, (node.text or "").strip()) for node in element.iter()]


# A weekly Thursday meeting at 10:00 Paris time from 5 March 2026 (CET),
# across the switch to CEST on 29 March: 19 March deleted, 2 April
# (08:00Z after the switch) moved to Friday 3 April 14:00.
WEEKLY = f"""<c:Timezone>{PARIS}</c:Timezone><c:DtStamp>20260301T120000Z</c:DtStamp>
<c:StartTime>20260305T090000Z</c:StartTime><c:Subject>Weekly sync</c:Subject><c:UID>abc-123</c:UID>
<c:OrganizerName>Ann</c:OrganizerName><c:OrganizerEmail>ann@example.org</c:OrganizerEmail>
<c:Attendees><c:Attendee><c:Email>bob@example.org</c:Email><c:Name>Bob</c:Name>
<c:AttendeeStatus>3</c:AttendeeStatus><c:AttendeeType>1</c:AttendeeType></c:Attendee></c:Attendees>
<c:Location>Room 1</c:Location><c:EndTime>20260305T100000Z</c:EndTime>
<c:Recurrence><c:Type>1</c:Type><c:Occurrences>10</c:Occurrences><c:Interval>1</c:Interval><c:DayOfWeek>16</c:DayOfWeek></c:Recurrence>
<c:Sensitivity>0</c:Sensitivity><c:BusyStatus>2</c:BusyStatus><c:AllDayEvent>0</c:AllDayEvent><c:Reminder>15</c:Reminder>
<c:Exceptions><c:Exception><c:Deleted>1</c:Deleted><c:ExceptionStartTime>20260319T090000Z</c:ExceptionStartTime></c:Exception>
<c:Exception><c:ExceptionStartTime>20260402T080000Z</c:ExceptionStartTime><c:Subject>Moved</c:Subject>
<c:StartTime>20260403T120000Z</c:StartTime><c:EndTime>20260403T130000Z</c:EndTime></c:Exception></c:Exceptions>
<c:MeetingStatus>1</c:MeetingStatus><c:ResponseRequested>1</c:ResponseRequested>"""


class WeeklyParisTests(SynchronousTestCase):
    """
    A recurring event with a deleted and a moved occurrence across DST.
    """

    def test_round_trip_exact(self):
        """EAS -> iCalendar -> EAS gives back exactly the elements the device sent."""
        data = xml(WEEKLY)
        stored, _ = calendar.from_eas(data, "14.1")
        self.assertEqual(flat(calendar.to_eas(stored, "14.1")), flat(data))

    def test_stored_form(self):
        """The store holds a Paris TZID, an EXDATE and an override at local 10:00."""
        stored, columns = calendar.from_eas(xml(WEEKLY), "14.1")
        cal = icalendar.Calendar.from_ical(stored)
        master, override = cal.walk("VEVENT")
        paris = ZoneInfo("Europe/Paris")
        self.assertEqual(master["DTSTART"].dt, datetime(2026, 3, 5, 10, tzinfo=paris))
        self.assertEqual(str(master["RRULE"].to_ical(), "ascii"), "FREQ=WEEKLY;COUNT=10;BYDAY=TH")
        self.assertEqual(master["EXDATE"].dts[0].dt, datetime(2026, 3, 19, 10, tzinfo=paris))
        self.assertEqual(override["RECURRENCE-ID"].dt, datetime(2026, 4, 2, 10, tzinfo=paris))
        self.assertEqual(override["DTSTART"].dt, datetime(2026, 4, 3, 14, tzinfo=paris))
        self.assertEqual(str(override["SUMMARY"]), "Moved")
        self.assertTrue(columns["recurring"])
        self.assertEqual(columns["last_end"], datetime(2026, 5, 7, 9, tzinfo=UTC))

    def test_version_16_instance_ids(self):
        """16.x gets InstanceId instead of ExceptionStartTime, and AirSyncBase:Location."""
        stored, _ = calendar.from_eas(xml(WEEKLY), "14.1")
        data = calendar.to_eas(stored, "16.1")
        ids = [e.text for e in data.iter("{AirSyncBase:}InstanceId")]
        self.assertEqual(ids, ["20260319T090000Z", "20260402T080000Z"])
        self.assertIsNone(data.find(".//{Calendar:}ExceptionStartTime"))
        self.assertEqual(data.findtext("{AirSyncBase:}Location/{AirSyncBase:}DisplayName"), "Room 1")

    def test_instance_change_and_delete(self):
        """16.x instance operations add an override and an EXDATE."""
        stored, _ = calendar.from_eas(xml(WEEKLY), "14.1")
        changed = calendar.change_instance(stored, "20260409T080000Z", xml(
            "<c:Subject>Later</c:Subject><c:StartTime>20260409T100000Z</c:StartTime>"
            "<c:EndTime>20260409T110000Z</c:EndTime>"), "16.1")
        deleted = calendar.delete_instance(changed, "20260416T080000Z")
        data = calendar.to_eas(deleted, "14.1")
        starts = [(e.findtext("{Calendar:}Deleted"), e.findtext("{Calendar:}ExceptionStartTime"))
                  for e in data.iter("{Calendar:}Exception")]
        self.assertEqual(starts, [("1", "20260319T090000Z"), (None, "20260402T080000Z"),
                                  (None, "20260409T080000Z"), ("1", "20260416T080000Z")])


class AllDayTests(SynchronousTestCase):
    """
    All-day events keep their dates for clients far from UTC.
    """

    def event(self, zone: str, start: str, end: str, version="14.1", with_blob=True):
        blob = f"<c:Timezone>{from_zone(zone, 2026).to_base64()}</c:Timezone>" if with_blob else ""
        return xml(f"{blob}<c:StartTime>{start}</c:StartTime><c:EndTime>{end}</c:EndTime>"
                   "<c:Subject>Holiday</c:Subject><c:AllDayEvent>1</c:AllDayEvent>")

    def test_far_zones(self):
        """Local midnight from UTC-10 and UTC+14 clients is stored as 26 November."""
        for zone, start, end in (("Pacific/Honolulu", "20261126T100000Z", "20261127T100000Z"),
                                 ("Pacific/Kiritimati", "20261125T100000Z", "20261126T100000Z")):
            stored, columns = calendar.from_eas(self.event(zone, start, end), "14.1")
            master = icalendar.Calendar.from_ical(stored).walk("VEVENT")[0]
            self.assertEqual(master["DTSTART"].dt, date(2026, 11, 26))
            self.assertEqual(master["DTEND"].dt, date(2026, 11, 27))
            self.assertTrue(columns["all_day"])
            served = calendar.to_eas(stored, "14.1")
            self.assertEqual(served.findtext("{Calendar:}StartTime"), start)

    def test_version_16(self):
        """16.x: no Timezone, the date at 00:00Z, read back literally."""
        stored, _ = calendar.from_eas(
            self.event("UTC", "20261126T000000Z", "20261127T000000Z", with_blob=False), "16.1",
            tz=ZoneInfo("Pacific/Kiritimati"))
        served = calendar.to_eas(stored, "16.1")
        self.assertIsNone(served.find("{Calendar:}Timezone"))
        self.assertEqual(served.findtext("{Calendar:}StartTime"), "20261126T000000Z")
        older = calendar.to_eas(stored, "14.1", tz=ZoneInfo("Pacific/Honolulu"))
        self.assertEqual(older.findtext("{Calendar:}StartTime"), "20261126T100000Z")

    def test_imported_yearly(self):
        """An imported all-day yearly event maps to recurrence type 6."""
        data = calendar.to_eas((DATA / "allday_yearly.ics").read_bytes(), "14.1")
        recurrence = data.find("{Calendar:}Recurrence")
        self.assertEqual([(e.tag.split("}")[1], e.text) for e in recurrence],
                         [("Type", "6"), ("Interval", "1"), ("WeekOfMonth", "4"),
                          ("DayOfWeek", "16"), ("MonthOfYear", "11")])
        self.assertEqual(data.findtext("{Calendar:}BusyStatus"), "0")


class ImportTests(SynchronousTestCase):
    """
    Realistic iCalendar imports.
    """

    def test_outlook_export(self):
        """An Outlook export with a Windows VTIMEZONE and folded lines is served right."""
        stored = (DATA / "outlook_monthly.ics").read_bytes()
        data = calendar.to_eas(stored, "14.1")
        self.assertEqual(data.findtext("{Calendar:}StartTime"), "20260114T080000Z")
        self.assertEqual(data.findtext("{Calendar:}Subject"),
                         "Monthly planning with a rather long subject that has to be folded over two lines")
        self.assertEqual(data.findtext("{Calendar:}Location"), "Room Ada, 3rd floor")
        self.assertEqual(data.findtext("{Calendar:}Reminder"), "10")
        types = [a.findtext("{Calendar:}AttendeeType") for a in data.iter("{Calendar:}Attendee")]
        self.assertEqual(types, ["1", "3"])
        self.assertEqual([e.text for e in data.find("{Calendar:}Recurrence")][:5],
                         ["3", "12", "1", "2", "8"])
        self.assertIn("Agenda:\r\n1. numbers", data.findtext(".//{AirSyncBase:}Data"))

    def test_merge_keeps_foreign_properties(self):
        """A device's Change updates the subject and keeps CONFERENCE and attendee RSVP."""
        stored = (DATA / "outlook_monthly.ics").read_bytes()
        served = calendar.to_eas(stored, "14.1")
        served.find("{Calendar:}Subject").text = "Renamed"
        device, _ = calendar.from_eas(served, "14.1")
        merged = icalendar.Calendar.from_ical(calendar.merge(stored, device))
        event = merged.walk("VEVENT")[0]
        self.assertEqual(str(event["SUMMARY"]), "Renamed")
        self.assertIn("CONFERENCE", event)
        self.assertIn("X-MICROSOFT-CDO-IMPORTANCE", event)
        bob = [a for a in event["ATTENDEE"] if "bob" in str(a)][0]
        self.assertEqual(bob.params.get("RSVP"), "TRUE")
        self.assertEqual(str(event["UID"]), "040000008200E00074C5B7101A82E0080000000010B2C7F3")

    def test_missing_times(self):
        """Without StartTime and EndTime the next half hour is used (MS-ASCAL 3.2.4.4)."""
        stored, columns = calendar.from_eas(xml("<c:Subject>x</c:Subject>"), "14.1",
                                            now=datetime(2026, 1, 1, 18, 3, tzinfo=UTC))
        self.assertEqual(columns["start"], datetime(2026, 1, 1, 18, 30, tzinfo=UTC))
        self.assertEqual(columns["end"], datetime(2026, 1, 1, 19, 0, tzinfo=UTC))

    def test_out_of_range_numbers(self):
        """Numbers beyond the schema's range (Interval above 999, a 20-digit
        Occurrences, a 30-digit Reminder) are conversion errors with status 6,
        never a number handed to the iCalendar writer."""
        times = "<c:StartTime>20260101T100000Z</c:StartTime><c:EndTime>20260101T110000Z</c:EndTime>"
        for body in ("<c:Recurrence><c:Type>0</c:Type><c:Interval>1000</c:Interval></c:Recurrence>",
                     "<c:Recurrence><c:Type>0</c:Type><c:Occurrences>99999999999999999999</c:Occurrences>"
                     "</c:Recurrence>",
                     "<c:Recurrence><c:Type>2</c:Type><c:DayOfMonth>32</c:DayOfMonth></c:Recurrence>",
                     "<c:Reminder>" + "9" * 30 + "</c:Reminder>"):
            error = self.assertRaises(calendar.ConversionError, calendar.from_eas, xml(times + body), "14.1")
            self.assertEqual(error.status, 6)
        stored, _ = calendar.from_eas(
            xml(times + "<c:Recurrence><c:Type>0</c:Type><c:Interval>999</c:Interval></c:Recurrence>"), "14.1")
        self.assertIn(b"INTERVAL=999", stored)

    def test_bad_recurrence(self):
        """An unknown recurrence type is a conversion error with status 6."""
        error = self.assertRaises(
            calendar.ConversionError, calendar.from_eas,
            xml("<c:StartTime>20260101T100000Z</c:StartTime><c:EndTime>20260101T110000Z</c:EndTime>"
                "<c:Recurrence><c:Type>4</c:Type></c:Recurrence>"), "14.1")
        self.assertEqual(error.status, 6)

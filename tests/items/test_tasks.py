"""
Tests for L{bluesync.items.tasks}.
"""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import icalendar
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import tasks

PARIS = ZoneInfo("Europe/Paris")
TASK = """<b:Body><b:Type>1</b:Type><b:EstimatedDataSize>9</b:EstimatedDataSize><b:Data>todo body</b:Data></b:Body>
<t:Subject>Pay rent</t:Subject><t:Importance>2</t:Importance>
<t:UtcStartDate>2026-11-25T23:00:00.000Z</t:UtcStartDate><t:StartDate>2026-11-26T00:00:00.000Z</t:StartDate>
<t:UtcDueDate>2026-11-26T23:00:00.000Z</t:UtcDueDate><t:DueDate>2026-11-27T00:00:00.000Z</t:DueDate>
<t:Categories><t:Category>Home</t:Category></t:Categories>
<t:Recurrence><t:Type>2</t:Type><t:Start>2026-11-25T23:00:00.000Z</t:Start><t:Interval>1</t:Interval>
<t:DayOfMonth>26</t:DayOfMonth><t:Regenerate>0</t:Regenerate><t:DeadOccur>0</t:DeadOccur></t:Recurrence>
<t:Complete>0</t:Complete><t:Sensitivity>0</t:Sensitivity>
<t:ReminderTime>2026-11-26T08:00:00.000Z</t:ReminderTime><t:ReminderSet>1</t:ReminderSet>"""


def xml(body: str):
    return etree.fromstring('<ApplicationData xmlns="AirSync:" xmlns:t="Tasks:" '
                            'xmlns:b="AirSyncBase:">' + body + "</ApplicationData>")


def flat(element):
    return [(node.tag, (node.text or "").strip()) for node in element.iter()]


class TaskTests(SynchronousTestCase):
    """
    VTODO <-> MS-ASTASK.
    """

    def test_round_trip_exact(self):
        """EAS -> VTODO -> EAS gives back every element."""
        data = xml(TASK)
        stored, _ = tasks.from_eas(data, "14.1", tz=PARIS)
        self.assertEqual(flat(tasks.to_eas(stored, "14.1", tz=PARIS)), flat(data))

    def test_stored_form(self):
        """Date-only tasks get DATE values; columns give the due instant."""
        stored, columns = tasks.from_eas(xml(TASK), "14.1", tz=PARIS)
        todo = icalendar.Calendar.from_ical(stored).walk("VTODO")[0]
        self.assertEqual(todo["DUE"].to_ical(), b"20261127")
        self.assertEqual(int(todo["PRIORITY"]), 1)
        self.assertEqual(str(todo["RRULE"].to_ical(), "ascii"), "FREQ=MONTHLY;BYMONTHDAY=26")
        self.assertEqual(columns["due"], datetime(2026, 11, 26, 23, tzinfo=timezone.utc))
        self.assertFalse(columns["complete"])

    def test_complete(self):
        """Complete and DateCompleted map to STATUS:COMPLETED and COMPLETED."""
        stored, columns = tasks.from_eas(xml(
            "<t:Subject>Done</t:Subject><t:Complete>1</t:Complete>"
            "<t:DateCompleted>2026-01-02T10:00:00.000Z</t:DateCompleted>"), "14.1")
        self.assertIn(b"STATUS:COMPLETED", stored)
        self.assertTrue(columns["complete"])
        served = tasks.to_eas(stored, "14.1")
        self.assertEqual(served.findtext("{Tasks:}DateCompleted"), "2026-01-02T10:00:00.000Z")

    def test_imported_vtodo_and_merge(self):
        """An imported VTODO is served; a device Change keeps its URL and PERCENT lines."""
        stored = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t1\r\n"
                  b"DTSTAMP:20260101T000000Z\r\nSUMMARY:Call\r\nDUE;VALUE=DATE:20260310\r\n"
                  b"URL:https://example.org/t1\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
        served = tasks.to_eas(stored, "14.1", tz=ZoneInfo("America/New_York"))
        self.assertEqual(served.findtext("{Tasks:}DueDate"), "2026-03-10T00:00:00.000Z")
        self.assertEqual(served.findtext("{Tasks:}UtcDueDate"), "2026-03-10T04:00:00.000Z")
        served.find("{Tasks:}Subject").text = "Call back"
        device, _ = tasks.from_eas(served, "14.1")
        merged = tasks.merge(stored, device)
        self.assertIn(b"SUMMARY:Call back", merged)
        self.assertIn(b"URL:https://example.org/t1", merged)
        self.assertIn(b"UID:t1", merged)

    def test_foreign_elements_are_not_kept(self):
        """Elements of other code pages inside a task's ApplicationData (a phone's bug, or hostile input) are
        neither stored nor sent on to other devices; unknown Tasks elements still are."""
        stored, _ = tasks.from_eas(xml(
            '<t:Subject>x</t:Subject><e:Status xmlns:e="Email:">11:1</e:Status><Status>7</Status>'
            '<c:Subject xmlns:c="Calendar:">y</c:Subject><t:OrdinalDate>2026-01-01T00:00:00.000Z</t:OrdinalDate>'),
            "16.1")
        self.assertNotIn(b"EMAIL-STATUS", stored)
        self.assertNotIn(b"AIRSYNC-STATUS", stored)
        self.assertNotIn(b"CALENDAR-SUBJECT", stored)
        served = tasks.to_eas(stored, "16.1")
        tags = [node.tag for node in served.iter()]
        self.assertNotIn("{Email:}Status", tags)
        self.assertNotIn("{AirSync:}Status", tags)
        self.assertNotIn("{Calendar:}Subject", tags)

    def test_foreign_kept_property_is_not_served(self):
        """A stored X-BLUESYNC-EAS property of another page (kept by an older bluesync) is not sent to phones."""
        stored, _ = tasks.from_eas(xml("<t:Subject>x</t:Subject>"), "16.1")
        stored = stored.replace(b"END:VTODO", b"X-BLUESYNC-EAS-AIRSYNC-STATUS:11:1\r\nEND:VTODO")
        served = tasks.to_eas(stored, "16.1")
        self.assertNotIn("{AirSync:}Status", [node.tag for node in served.iter()])


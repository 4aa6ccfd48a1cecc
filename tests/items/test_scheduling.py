"""
The pure iTIP effects on stored events (bluesync/items/scheduling.py) and
the GlobalObjId of MS-ASEMAIL 2.2.2.37.
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timezone

import icalendar
from twisted.trial import unittest

from bluesync.items import scheduling
from tests.mail.imipdata import calendar, vevent

UTC = timezone.utc
OWN = {"alice@example.org", "a.martin@example.org"}


def organised(*, summary: str = "Roadmap", people=("carol@example.net", "bob@example.org"),
              alarm: int = 15, organizer: str | None = "alice@example.org") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:roadmap-1",
             "DTSTAMP:20260301T120000Z", "DTSTART:20260320T090000Z", "DTEND:20260320T100000Z",
             f"SUMMARY:{summary}"]
    if organizer:
        lines.append(f"ORGANIZER:mailto:{organizer}")
    lines += [f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{who}" for who in people]
    lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", f"TRIGGER:-PT{alarm}M", "END:VALARM",
              "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode()


def first_event(content: bytes, recurrence: bool = False):
    return next(e for e in icalendar.Calendar.from_ical(content).walk("VEVENT")
                if ("RECURRENCE-ID" in e) == recurrence)


class GlobalObjIdTests(unittest.SynchronousTestCase):
    def test_vcal_uid_layout(self):
        """A plain UID is wrapped as MS-ASEMAIL 2.2.2.37's vCal-Uid form, byte for byte."""
        value = scheduling.global_obj_id("meeting-1@example.net")
        self.assertEqual(value[:16], bytes.fromhex("040000008200E00074C5B7101A82E008"))
        self.assertEqual(value[16:36], b"\x00" * 20)
        (count,) = struct.unpack("<I", value[36:40])
        self.assertEqual(count, len(value) - 40)
        self.assertEqual(value[40:52], b"vCal-Uid\x01\x00\x00\x00")
        self.assertEqual(value[52:], b"meeting-1@example.net\x00")

    def test_client_conversion_gives_back_uid(self):
        """The client's conversion (MS-ASEMAIL 3.1.4.7) turns it back into the UID."""
        self.assertEqual(scheduling.uid_from_global_obj_id(scheduling.global_obj_id("a b é")), "a b é")

    def test_outlook_uid_is_decoded(self):
        """An Outlook UID (a hex GlobalObjectId) is sent as those bytes, and converts back to itself."""
        uid = ("040000008200E00074C5B7101A82E00800000000C0D9F0B1D9A0DA01000000000000000010000000"
               "6C3E6E3A1E4A4A4BB6B7A4F4C8C1A0C2")
        value = scheduling.global_obj_id(uid)
        self.assertEqual(value, bytes.fromhex(uid))
        self.assertEqual(scheduling.uid_from_global_obj_id(value), uid)

    def test_instance_date(self):
        """One occurrence's identifier carries its date in bytes 17-20 (year high, low, month, day)."""
        value = scheduling.global_obj_id("m", date(2026, 3, 17))
        self.assertEqual(value[16:20], bytes([0x07, 0xEA, 3, 17]))
        self.assertEqual(scheduling.uid_from_global_obj_id(value), "m")


class PlanTests(unittest.SynchronousTestCase):
    def test_new_meeting(self):
        """A new meeting invites every attendee, without a new SEQUENCE."""
        plan = scheduling.plan(None, organised(), OWN)
        self.assertEqual((plan.request_to, plan.cancel_to, plan.cancel_all, plan.bump),
                         (["carol@example.net", "bob@example.org"], [], False, False))

    def test_appointment_and_received_meeting_send_nothing(self):
        """Events without attendees, and meetings someone else organises, send nothing."""
        self.assertTrue(scheduling.plan(None, organised(people=()), OWN).empty)
        self.assertTrue(scheduling.plan(None, organised(organizer="carol@example.net",
                                                        people=("alice@example.org",)), OWN).empty)

    def test_missing_organizer_is_the_account(self):
        """A device that leaves ORGANIZER out organises the meeting it adds with attendees."""
        plan = scheduling.plan(None, organised(organizer=None), OWN)
        self.assertEqual(plan.request_to, ["carol@example.net", "bob@example.org"])
        ready = scheduling.prepared(organised(organizer=None), "alice@example.org", "Alice", False)
        self.assertEqual(scheduling.organizer_of(ready), "alice@example.org")

    def test_significant_change_bumps(self):
        """A new title re-invites everyone with a new SEQUENCE."""
        plan = scheduling.plan(organised(), organised(summary="Roadmap v2"), OWN)
        self.assertTrue(plan.bump)
        self.assertEqual(plan.request_to, ["carol@example.net", "bob@example.org"])
        bumped = scheduling.prepared(organised(), "alice@example.org", "Alice", True)
        self.assertEqual(scheduling.sequence_of(bumped), 1)

    def test_reminder_change_is_silent(self):
        """A new reminder sends nothing."""
        self.assertTrue(scheduling.plan(organised(), organised(alarm=30), OWN).empty)

    def test_attendees_added_and_removed(self):
        """Added attendees get the request, removed ones a cancellation, the others nothing."""
        plan = scheduling.plan(organised(), organised(people=("bob@example.org", "dave@example.com")), OWN)
        self.assertEqual((plan.request_to, plan.cancel_to, plan.bump), (["dave@example.com"], ["carol@example.net"],
                                                                         False))

    def test_delete_cancels_all(self):
        """A deleted meeting cancels for everyone; a deleted appointment sends nothing."""
        self.assertTrue(scheduling.plan(organised(), None, OWN).cancel_all)
        self.assertTrue(scheduling.plan(organised(people=()), None, OWN).empty)


WEEKLY = calendar("REQUEST", vevent(rrule="FREQ=WEEKLY;COUNT=4")).encode()


class AttendeeTests(unittest.SynchronousTestCase):
    def test_answers(self):
        """Accept shows busy, tentative shows tentative, decline removes the meeting."""
        stored = scheduling.received(WEEKLY, OWN)
        self.assertEqual(str(first_event(stored)["X-MICROSOFT-CDO-BUSYSTATUS"]), "TENTATIVE")
        accepted = first_event(scheduling.responded(stored, OWN, 1))
        self.assertEqual(str(accepted["X-MICROSOFT-CDO-BUSYSTATUS"]), "BUSY")
        self.assertEqual(accepted["ATTENDEE"].params["PARTSTAT"], "ACCEPTED")
        tentative = first_event(scheduling.responded(stored, OWN, 2))
        self.assertEqual(str(tentative["X-MICROSOFT-CDO-BUSYSTATUS"]), "TENTATIVE")
        self.assertIsNone(scheduling.responded(stored, OWN, 3))

    def test_free_meeting_stays_free(self):
        """A meeting the organizer marks free is not shown tentative while unanswered."""
        free = calendar("REQUEST", vevent(extra="TRANSP:TRANSPARENT").replace(
            "X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n", "")).encode()
        self.assertEqual(str(first_event(scheduling.received(free, OWN))["X-MICROSOFT-CDO-BUSYSTATUS"]), "FREE")

    def test_one_occurrence(self):
        """Accepting one occurrence makes it an exception at its time; a date it does not have is refused."""
        stored = scheduling.received(WEEKLY, OWN)
        answered = scheduling.responded(stored, OWN, 1, datetime(2026, 3, 24, 9, 0, tzinfo=UTC))
        override = first_event(answered, recurrence=True)
        self.assertEqual(override["RECURRENCE-ID"].dt.astimezone(UTC), datetime(2026, 3, 24, 9, 0, tzinfo=UTC))
        self.assertEqual(override["DTEND"].dt.astimezone(UTC), datetime(2026, 3, 24, 10, 0, tzinfo=UTC))
        self.assertEqual(override["ATTENDEE"].params["PARTSTAT"], "ACCEPTED")
        self.assertEqual(first_event(answered)["ATTENDEE"].params["PARTSTAT"], "NEEDS-ACTION")
        with self.assertRaises(scheduling.NoSuchInstance):
            scheduling.responded(stored, OWN, 1, datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
        with self.assertRaises(scheduling.NoSuchInstance):
            scheduling.responded(stored, OWN, 1, datetime(2026, 4, 7, 9, 0, tzinfo=UTC))

    def test_occurrence_update_keeps_series(self):
        """A request for one occurrence replaces that occurrence and keeps the rest of the series."""
        stored = scheduling.received(WEEKLY, OWN)
        moved = calendar("REQUEST", vevent(sequence=1, start="20260317T160000", end="20260317T170000",
                                           recurrence_id="20260317T100000")).encode()
        updated = scheduling.received(moved, OWN, stored)
        self.assertIn("RRULE", first_event(updated))
        self.assertEqual(first_event(updated, recurrence=True)["DTSTART"].dt.astimezone(UTC),
                         datetime(2026, 3, 17, 15, 0, tzinfo=UTC))

"""
Inbound iMIP end to end: meeting messages delivered over LMTP (Python's
smtplib.LMTP in a worker thread, the real LMTP server on a loopback port)
change the recipients' calendars in a real PostgreSQL.
"""

from __future__ import annotations

import smtplib
from datetime import datetime, timezone

import icalendar
from twisted.internet import threads

from bluesync.items import scheduling
from bluesync.mail import calendar_ingest
from bluesync.store.folders import CALENDAR, INBOX
from tests.mail.imipdata import message, vevent
from tests.mail.lmtpclient import LMTPServer
from tests.support import DatabaseTestCase

UTC = timezone.utc
ALICE = {"alice@example.org"}


def attendee_params(content: bytes, address: str, recurrence: bool = False) -> dict:
    calendar = icalendar.Calendar.from_ical(content)
    for event in calendar.walk("VEVENT"):
        if ("RECURRENCE-ID" in event) != recurrence:
            continue
        for value in event.get("ATTENDEE", []) if isinstance(event.get("ATTENDEE"), list) else [event.get("ATTENDEE")]:
            if value is not None and str(value).lower() == f"mailto:{address}":
                return dict(value.params)
    return {}


def master(content: bytes):
    calendar = icalendar.Calendar.from_ical(content)
    return next(e for e in calendar.walk("VEVENT") if "RECURRENCE-ID" not in e)


class IngestTestCase(DatabaseTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", "x")
        self.bob = await self.store.create_account("bob@example.org", "Bob", "x")
        server = LMTPServer(self, self.store, self.config.mail)
        self.factory, self.port, self.address = server.factory, server.port, server.address

    async def deliver(self, raw: bytes, recipients=("alice@example.org",), sender="carol@example.net") -> dict:
        def send():
            client = smtplib.LMTP(*self.address)
            try:
                client.ehlo("mta.example")
                return client.sendmail(sender, list(recipients), raw)
            finally:
                client.quit()

        return await threads.deferToThread(send)

    async def events(self, account) -> list:
        folder = await self.store.folders.by_type(account.id, CALENDAR)
        return await self.store.items.folder_items(account.id, folder.id)

    async def inbox(self, account) -> list:
        folder = await self.store.folders.by_type(account.id, INBOX)
        return await self.store.items.folder_items(account.id, folder.id)

    async def organise(self, account, content: str) -> int:
        """An event the account organises, stored as a device would have."""
        folder = await self.store.folders.by_type(account.id, CALENDAR)
        return await calendar_ingest.add_event(self.store, account, folder, content.encode())


class RequestTests(IngestTestCase):
    async def test_request_adds_tentative_event(self):
        """A REQUEST over LMTP lands in the Inbox and in the calendar, unanswered, tentative and received."""
        self.assertEqual(await self.deliver(message("REQUEST", vevent())), {})
        (mail,) = await self.inbox(self.alice)
        self.assertEqual(mail.summary["message_class"], "IPM.Schedule.Meeting.Request")
        (event,) = await self.events(self.alice)
        self.assertEqual(event.content_class, "Calendar")
        params = attendee_params(event.content, "alice@example.org")
        self.assertEqual(params["PARTSTAT"], "NEEDS-ACTION")
        vevent_ = master(event.content)
        self.assertEqual(str(vevent_["UID"]), "meeting-1@example.net")
        self.assertEqual(str(vevent_["X-MICROSOFT-CDO-BUSYSTATUS"]), "TENTATIVE")
        self.assertEqual(str(vevent_["X-MICROSOFT-CDO-INTENDEDSTATUS"]), "BUSY")
        self.assertEqual(str(vevent_["X-BLUESYNC-EAS-CALENDAR-MEETINGSTATUS"]), "3")
        self.assertEqual(vevent_["DTSTART"].dt.astimezone(UTC), datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
        self.assertNotIn("METHOD", icalendar.Calendar.from_ical(event.content))
        found = await self.store.items.by_uid(self.alice.id, event.folder_id, "meeting-1@example.net")
        self.assertEqual(found.id, event.id)

    async def test_update_moves_the_event(self):
        """A higher SEQUENCE with a new time changes the same event."""
        await self.deliver(message("REQUEST", vevent()))
        (first,) = await self.events(self.alice)
        update = vevent(sequence=1, start="20260311T140000", end="20260311T150000", location="Room 9")
        await self.deliver(message("REQUEST", update, message_id="<invite-2@example.net>"))
        (event,) = await self.events(self.alice)
        self.assertEqual(event.id, first.id)
        self.assertEqual(master(event.content)["DTSTART"].dt.astimezone(UTC), datetime(2026, 3, 11, 13, 0, tzinfo=UTC))
        self.assertEqual(str(master(event.content)["LOCATION"]), "Room 9")
        self.assertEqual(len(await self.inbox(self.alice)), 2)

    async def test_stale_update_ignored(self):
        """A request older than the stored SEQUENCE changes nothing."""
        await self.deliver(message("REQUEST", vevent(sequence=2, location="Room 9")))
        await self.deliver(message("REQUEST", vevent(sequence=1, location="Old room"),
                                   message_id="<invite-0@example.net>"))
        (event,) = await self.events(self.alice)
        self.assertEqual(str(master(event.content)["LOCATION"]), "Room 9")

    async def test_resent_request_keeps_answer(self):
        """The same request again (same SEQUENCE) does not undo the user's answer."""
        await self.deliver(message("REQUEST", vevent()))
        (event,) = await self.events(self.alice)
        answered = scheduling.responded(event.content, ALICE, 1)
        await self.store.items.replace_content(self.alice.id, event.folder_id, event.id,
                                               calendar_ingest.calendar_item(answered))
        await self.deliver(message("REQUEST", vevent(summary="Budget review (resent)")))
        (event,) = await self.events(self.alice)
        self.assertEqual(attendee_params(event.content, "alice@example.org")["PARTSTAT"], "ACCEPTED")
        self.assertEqual(str(master(event.content)["X-MICROSOFT-CDO-BUSYSTATUS"]), "BUSY")
        self.assertEqual(str(master(event.content)["SUMMARY"]), "Budget review (resent)")

    async def test_each_recipient_gets_own_event(self):
        """Two local attendees of one message each get the meeting in their own calendar."""
        raw = message("REQUEST", vevent(attendees=("alice@example.org", "bob@example.org")))
        await self.deliver(raw, recipients=("alice@example.org", "bob@example.org"))
        (alice_event,) = await self.events(self.alice)
        (bob_event,) = await self.events(self.bob)
        self.assertNotEqual(alice_event.id, bob_event.id)
        self.assertEqual(attendee_params(bob_event.content, "bob@example.org")["PARTSTAT"], "NEEDS-ACTION")

    async def test_unreadable_calendar_still_delivered(self):
        """A meeting message whose iCalendar is broken is delivered (250) and changes no calendar."""
        raw = message("REQUEST", "BEGIN:VEVENT\r\nDTSTART:garbage\r\n")
        self.assertEqual(await self.deliver(raw), {})
        self.assertEqual(len(await self.inbox(self.alice)), 1)
        self.assertEqual(await self.events(self.alice), [])

    async def test_own_meeting_copy_ignored(self):
        """A request the account itself organises (a copy to itself) does not make it an attendee."""
        raw = message("REQUEST", vevent(organizer="alice@example.org", attendees=("bob@example.org",)),
                      sender="alice@example.org")
        await self.deliver(raw, recipients=("alice@example.org",))
        self.assertEqual(await self.events(self.alice), [])


class CancelTests(IngestTestCase):
    async def test_cancel_removes_event(self):
        """The organizer's CANCEL removes the event; the message is IPM.Schedule.Meeting.Canceled."""
        await self.deliver(message("REQUEST", vevent()))
        await self.deliver(message("CANCEL", vevent(sequence=1, status="CANCELLED"),
                                   message_id="<cancel-1@example.net>", subject="Canceled: Budget review"))
        self.assertEqual(await self.events(self.alice), [])
        classes = sorted(m.summary["message_class"] for m in await self.inbox(self.alice))
        self.assertEqual(classes, ["IPM.Schedule.Meeting.Canceled", "IPM.Schedule.Meeting.Request"])

    async def test_cancel_by_someone_else_ignored(self):
        """A CANCEL naming another organizer leaves the meeting alone."""
        await self.deliver(message("REQUEST", vevent()))
        forged = vevent(sequence=5, status="CANCELLED", organizer="mallory@example.com")
        await self.deliver(message("CANCEL", forged, sender="mallory@example.com",
                                   message_id="<forged@example.com>"), sender="mallory@example.com")
        self.assertEqual(len(await self.events(self.alice)), 1)

    async def test_cancel_one_occurrence(self):
        """Cancelling one occurrence of a weekly meeting leaves the series with that date excluded."""
        weekly = vevent(rrule="FREQ=WEEKLY;COUNT=6")
        await self.deliver(message("REQUEST", weekly))
        occurrence = vevent(sequence=1, start="20260317T100000", end="20260317T110000",
                            recurrence_id="20260317T100000", status="CANCELLED")
        await self.deliver(message("CANCEL", occurrence, message_id="<cancel-2@example.net>"))
        (event,) = await self.events(self.alice)
        exdates = [d.dt.astimezone(UTC) for value in [master(event.content)["EXDATE"]] for d in value.dts]
        self.assertEqual(exdates, [datetime(2026, 3, 17, 9, 0, tzinfo=UTC)])
        self.assertIn("RRULE", master(event.content))

    async def test_cancel_of_unknown_meeting(self):
        """A cancellation of a meeting the calendar does not hold is only a message."""
        await self.deliver(message("CANCEL", vevent(status="CANCELLED")))
        self.assertEqual(await self.events(self.alice), [])
        self.assertEqual(len(await self.inbox(self.alice)), 1)


ORGANISED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:alices-meeting\r\n"
    "SEQUENCE:0\r\nDTSTAMP:20260301T090000Z\r\nDTSTART:20260312T090000Z\r\nDTEND:20260312T100000Z\r\n"
    "SUMMARY:Planning\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n"
    "ATTENDEE;CN=Carol;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol@example.net\r\n"
    "ATTENDEE;CN=Dave;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:dave@example.com\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def reply(attendee: str, partstat: str, sequence: int = 0) -> str:
    return ("BEGIN:VEVENT\r\nUID:alices-meeting\r\n"
            f"SEQUENCE:{sequence}\r\nDTSTAMP:20260302T090000Z\r\nDTSTART:20260312T090000Z\r\n"
            "DTEND:20260312T100000Z\r\nORGANIZER:mailto:alice@example.org\r\n"
            f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}\r\nEND:VEVENT\r\n")


class ReplyTests(IngestTestCase):
    async def test_reply_records_answer(self):
        """An attendee's REPLY sets their PARTSTAT in the organizer's event, and only theirs."""
        await self.organise(self.alice, ORGANISED)
        raw = message("REPLY", reply("carol@example.net", "ACCEPTED"), sender="Carol <carol@example.net>",
                      subject="Accepted: Planning", message_id="<reply-1@example.net>")
        await self.deliver(raw)
        (event,) = await self.events(self.alice)
        self.assertEqual(attendee_params(event.content, "carol@example.net")["PARTSTAT"], "ACCEPTED")
        self.assertEqual(attendee_params(event.content, "dave@example.com")["PARTSTAT"], "NEEDS-ACTION")
        (mail,) = await self.inbox(self.alice)
        self.assertEqual(mail.summary["message_class"], "IPM.Schedule.Meeting.Resp.Pos")

    async def test_reply_from_another_address_ignored(self):
        """A REPLY for one attendee sent from someone else's address changes nothing."""
        await self.organise(self.alice, ORGANISED)
        raw = message("REPLY", reply("carol@example.net", "DECLINED"), sender="mallory@example.com",
                      message_id="<reply-2@example.com>")
        await self.deliver(raw, sender="mallory@example.com")
        (event,) = await self.events(self.alice)
        self.assertEqual(attendee_params(event.content, "carol@example.net")["PARTSTAT"], "NEEDS-ACTION")

    async def test_reply_by_stranger_ignored(self):
        """Someone who is not an attendee cannot add themselves by replying."""
        await self.organise(self.alice, ORGANISED)
        raw = message("REPLY", reply("eve@example.net", "ACCEPTED"), sender="eve@example.net",
                      message_id="<reply-3@example.net>")
        await self.deliver(raw, sender="eve@example.net")
        (event,) = await self.events(self.alice)
        self.assertEqual(attendee_params(event.content, "eve@example.net"), {})

    async def test_reply_to_someone_elses_meeting_ignored(self):
        """A REPLY reaching an attendee (not the organizer) changes nothing in their copy."""
        await self.deliver(message("REQUEST", vevent(attendees=("alice@example.org", "dave@example.com"))))
        answer = reply("dave@example.com", "DECLINED").replace("alices-meeting", "meeting-1@example.net")
        answer = answer.replace("mailto:alice@example.org", "mailto:carol@example.net")
        await self.deliver(message("REPLY", answer, sender="dave@example.com", message_id="<r@example.com>"),
                           sender="dave@example.com")
        (event,) = await self.events(self.alice)
        self.assertEqual(attendee_params(event.content, "dave@example.com")["PARTSTAT"], "NEEDS-ACTION")

"""
Tests for L{bluesync.items.imip}.
"""

from datetime import datetime, timezone

import icalendar
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import imip

NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)
INVITE = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
          b"UID:m1\r\nSEQUENCE:2\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\n"
          b"DTEND:20260301T110000Z\r\nSUMMARY:Meet\r\nORGANIZER;CN=Ann:mailto:ann@example.org\r\n"
          b"ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.com\r\n"
          b"ATTENDEE;CN=Cy:mailto:cy@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


class ImipTests(SynchronousTestCase):
    """
    Parsing and building iTIP messages.
    """

    def test_parse(self):
        """A REQUEST gives its method, UID, sequence, organizer and attendees."""
        invitation = imip.parse(INVITE)
        self.assertEqual((invitation.method, invitation.uid, invitation.sequence), ("REQUEST", "m1", 2))
        self.assertEqual(invitation.organizer.email, "ann@example.org")
        self.assertEqual([a.email for a in invitation.attendees], ["bob@example.com", "cy@example.com"])
        self.assertTrue(invitation.attendees[0].rsvp)

    def test_reply(self):
        """A tentative REPLY carries only the replying attendee with PARTSTAT=TENTATIVE."""
        reply = icalendar.Calendar.from_ical(imip.reply(INVITE, "bob@example.com", 2, now=NOW))
        self.assertEqual(str(reply["METHOD"]), "REPLY")
        event = reply.walk("VEVENT")[0]
        attendee = event["ATTENDEE"]
        self.assertEqual(str(attendee), "mailto:bob@example.com")
        self.assertEqual(attendee.params["PARTSTAT"], "TENTATIVE")
        self.assertEqual((str(event["UID"]), int(event["SEQUENCE"])), ("m1", 2))
        self.assertRaises(ValueError, imip.reply, INVITE, "bob@example.com", 9, now=NOW)

    def test_request_and_cancel(self):
        """REQUEST asks unanswered attendees to reply; CANCEL bumps SEQUENCE."""
        stored = INVITE.replace(b"METHOD:REQUEST\r\n", b"")
        request = icalendar.Calendar.from_ical(imip.request(stored, now=NOW))
        cy = [a for a in request.walk("VEVENT")[0]["ATTENDEE"] if "cy@" in str(a)][0]
        self.assertEqual((cy.params["PARTSTAT"], cy.params["RSVP"]), ("NEEDS-ACTION", "TRUE"))
        cancel = icalendar.Calendar.from_ical(imip.cancel(stored, now=NOW, attendees=["cy@example.com"]))
        event = cancel.walk("VEVENT")[0]
        self.assertEqual((str(cancel["METHOD"]), str(event["STATUS"]), int(event["SEQUENCE"])),
                         ("CANCEL", "CANCELLED", 3))
        self.assertEqual(str(event["ATTENDEE"]), "mailto:cy@example.com")

    def test_no_method(self):
        """A calendar without METHOD is not an iTIP message."""
        self.assertRaises(imip.ConversionError, imip.parse, INVITE.replace(b"METHOD:REQUEST\r\n", b""))

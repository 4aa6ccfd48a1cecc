"""
Meetings end to end (issue 7): invitations delivered by the real LMTP
server over TCP, seen by devices through the real Site (Email:MeetingRequest
in the Inbox, the event in the calendar), answered with MeetingResponse,
replies and an organizer's requests and cancellations going to a real SMTP
relay on a loopback port (external people) or straight into local
accounts' Inboxes and calendars.
"""

from __future__ import annotations

import base64
import email
from datetime import datetime, timezone

import icalendar
from twisted.trial.unittest import SynchronousTestCase

from bluesync.eas import meetings
from bluesync.items.scheduling import uid_from_global_obj_id
from bluesync.items.timezone import from_zone
from bluesync.mail import calendar_ingest
from bluesync.store import folders as F
from tests.eas.client import find, text
from tests.eas.test_sendmail import SendMailTestCase, compose_document
from tests.mail.imipdata import calendar as calendar_text
from tests.mail.imipdata import message, vevent
from tests.mail.lmtpclient import LMTPServer

NAMESPACES = ('xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:calendar="Calendar:"'
              ' xmlns:email="Email:"')
PLAIN = "<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type></airsyncbase:BodyPreference>"
UID = "meeting-1@example.net"
UTC = timezone.utc
ORGANISED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:alices-own\r\n"
    b"DTSTAMP:20260301T090000Z\r\nDTSTART:20260312T090000Z\r\nDTEND:20260312T100000Z\r\nSUMMARY:Mine\r\n"
    b"ORGANIZER:mailto:alice@example.org\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@example.net\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def local(tag: str) -> str:
    namespace, _, name = tag[1:].partition("}")
    return f"{namespace}{name}"


def calendar_part(data: bytes) -> icalendar.Calendar:
    """The iCalendar of the text/calendar part of a relayed or delivered message."""
    parsed = email.message_from_bytes(data)
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no text/calendar part")


def method_param(data: bytes) -> str:
    parsed = email.message_from_bytes(data)
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_param("method")
    return ""


def attendees(event) -> dict[str, str]:
    values = event.get("ATTENDEE", [])
    values = values if isinstance(values, list) else [values]
    return {str(v)[7:].lower(): str(v.params.get("PARTSTAT", "")) for v in values}


def event_xml(start: str = "20260320T090000Z", end: str = "20260320T100000Z", reminder: int = 15,
              people: tuple = ("carol@example.net", "bob@example.org"), subject: str = "Roadmap") -> str:
    """A meeting Alice organises, as a 14.1 phone writes it."""
    attendee_xml = "".join(
        f"<calendar:Attendee><calendar:Email>{who}</calendar:Email><calendar:Name>{who.split('@')[0].title()}"
        "</calendar:Name><calendar:AttendeeType>1</calendar:AttendeeType></calendar:Attendee>" for who in people)
    return (
        f"<calendar:DtStamp>20260301T120000Z</calendar:DtStamp><calendar:StartTime>{start}</calendar:StartTime>"
        f"<calendar:Subject>{subject}</calendar:Subject><calendar:UID>roadmap-1</calendar:UID>"
        "<calendar:OrganizerName>Alice Martin</calendar:OrganizerName>"
        "<calendar:OrganizerEmail>alice@example.org</calendar:OrganizerEmail>"
        + (f"<calendar:Attendees>{attendee_xml}</calendar:Attendees>" if people else "")
        + f"<calendar:Location>Room 2</calendar:Location><calendar:EndTime>{end}</calendar:EndTime>"
        "<calendar:Sensitivity>0</calendar:Sensitivity><calendar:BusyStatus>2</calendar:BusyStatus>"
        f"<calendar:AllDayEvent>0</calendar:AllDayEvent><calendar:Reminder>{reminder}</calendar:Reminder>"
        "<calendar:MeetingStatus>1</calendar:MeetingStatus>"
    )


def event_16(start: str = "20260320T090000Z", end: str = "20260320T100000Z",
             people: tuple = ("carol@example.net", "bob@example.org")) -> str:
    """The same meeting as a 16.1 phone writes it: ClientUid, no organizer, airsyncbase:Location."""
    return (
        f"<calendar:StartTime>{start}</calendar:StartTime><calendar:Subject>Roadmap</calendar:Subject>"
        f"<calendar:ClientUid>roadmap-1</calendar:ClientUid>{attendees_16(people)}"
        f"<calendar:EndTime>{end}</calendar:EndTime><calendar:Sensitivity>0</calendar:Sensitivity>"
        "<calendar:BusyStatus>2</calendar:BusyStatus><calendar:AllDayEvent>0</calendar:AllDayEvent>"
        "<calendar:Reminder>15</calendar:Reminder>"
        "<airsyncbase:Location><airsyncbase:DisplayName>Room 2</airsyncbase:DisplayName></airsyncbase:Location>"
    )


def attendees_16(people: tuple) -> str:
    return "<calendar:Attendees>" + "".join(
        f"<calendar:Attendee><calendar:Email>{who}</calendar:Email><calendar:Name>{who.split('@')[0].title()}"
        "</calendar:Name><calendar:AttendeeType>1</calendar:AttendeeType></calendar:Attendee>" for who in people
    ) + "</calendar:Attendees>"


def meeting_response(request_id: str, response: int, collection_id: str | None = None, *, send: str | None = None,
                     instance: str | None = None) -> str:
    parts = [f"<Request><UserResponse>{response}</UserResponse>"]
    if collection_id is not None:
        parts.append(f"<CollectionId>{collection_id}</CollectionId>")
    parts.append(f"<RequestId>{request_id}</RequestId>")
    if instance is not None:
        parts.append(f"<InstanceId>{instance}</InstanceId>")
    if send is not None:
        parts.append(send)
    parts.append("</Request>")
    return ('<MeetingResponse xmlns="MeetingResponse:" xmlns:airsyncbase="AirSyncBase:">'
            + "".join(parts) + "</MeetingResponse>")


SEND = "<SendResponse/>"
SEND_WITH_BODY = ("<SendResponse><airsyncbase:Body><airsyncbase:Type>1</airsyncbase:Type>"
                  "<airsyncbase:Data>See you there.</airsyncbase:Data></airsyncbase:Body></SendResponse>")


class MeetingTestCase(SendMailTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.lmtp = LMTPServer(self, self.store, self.config.mail)
        self.keys: dict[tuple[str, str], str] = {}

    async def lmtp_deliver(self, raw: bytes, recipients=("alice@example.org",), sender="carol@example.net"):
        self.assertEqual(await self.lmtp.deliver(raw, recipients, sender), {})

    async def sync(self, client, folder, commands: str = "", options: str = PLAIN):
        """One Sync of a folder from the device's current key; the Collection element or None."""
        slot = (client.device_id + client.user, folder.server_id)
        if slot not in self.keys:
            first = await self._post(client, folder, "0", "", options)
            self.keys[slot] = text(first, "airsync:SyncKey")
        collection = await self._post(client, folder, self.keys[slot], commands, options)
        if collection is not None:
            self.assertEqual(text(collection, "airsync:Status"), "1")
            self.keys[slot] = text(collection, "airsync:SyncKey")
        return collection

    async def _post(self, client, folder, key: str, commands: str, options: str):
        document = (f"<Sync {NAMESPACES}><Collections><Collection><SyncKey>{key}</SyncKey>"
                    f"<CollectionId>{folder.server_id}</CollectionId><WindowSize>100</WindowSize>"
                    + (f"<Options>{options}</Options>" if options else "")
                    + (f"<Commands>{commands}</Commands>" if commands else "")
                    + "</Collection></Collections></Sync>")
        answer = await client.post("Sync", document)
        self.assertEqual(answer.code, 200, answer)
        return None if answer.document is None else find(answer.document, "//airsync:Collection")[0]

    async def received(self, client, folder, kind: str = "Add") -> dict:
        """ServerId -> ApplicationData (or None) of the commands of one kind the next Sync brings."""
        collection = await self.sync(client, folder)
        if collection is None:
            return {}
        return {text(e, "airsync:ServerId"): (find(e, "airsync:ApplicationData") or [None])[0]
                for e in find(collection, f"airsync:Commands/airsync:{kind}")}

    async def respond(self, client, request: str):
        answer = await client.post("MeetingResponse", request)
        self.assertEqual(answer.code, 200, answer)
        (result,) = find(answer.document, "/meetingresponse:MeetingResponse/meetingresponse:Result")
        return result

    async def events(self, account) -> list:
        folder = await self.folder(account, F.CALENDAR)
        return await self.store.items.folder_items(account.id, folder.id)

    async def invited(self, client=None, raw: bytes | None = None):
        """Carol's invitation delivered to Alice; the (Inbox ServerId, its ApplicationData)."""
        client = client or self.client
        inbox = await self.folder(self.alice, F.INBOX)
        await self.sync(client, inbox)
        await self.lmtp_deliver(raw or message("REQUEST", vevent()))
        ((server_id, data),) = (await self.received(client, inbox)).items()
        return server_id, data


class InboundTests(MeetingTestCase):
    async def test_invitation_shows_in_inbox_and_calendar(self):
        """An LMTP invitation is a MeetingRequest in the 16.1 Inbox and a tentative received event in the calendar."""
        calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(self.client, calendar)
        _, data = await self.invited()
        self.assertEqual(text(data, "email:MessageClass"), "IPM.Schedule.Meeting.Request")
        self.assertEqual(text(data, "email:ContentClass"), "urn:content-classes:calendarmessage")
        (request,) = find(data, "email:MeetingRequest")
        self.assertEqual(data.index(request), data.index(find(data, "email:MessageClass")[0]) + 1)
        self.assertEqual([local(child.tag) for child in request], [
            "Email:AllDayEvent", "Email:StartTime", "Email:DtStamp", "Email:EndTime", "Email:InstanceType",
            "AirSyncBase:Location", "Email:Organizer", "Email:ResponseRequested", "Email:Sensitivity",
            "Email:BusyStatus", "Email:TimeZone", "Calendar:UID", "Email:DisallowNewTimeProposal",
            "Email2:MeetingMessageType"])
        self.assertEqual(text(request, "email:StartTime"), "2026-03-10T09:00:00.000Z")
        self.assertEqual(text(request, "email:EndTime"), "2026-03-10T10:00:00.000Z")
        self.assertEqual(text(request, "email:DtStamp"), "2026-03-01T09:00:00.000Z")
        self.assertEqual(text(request, "airsyncbase:Location/airsyncbase:DisplayName"), "Room 4")
        self.assertEqual(text(request, "email:Organizer"), "Carol Organizer <carol@example.net>")
        self.assertEqual(text(request, "calendar:UID"), UID)
        self.assertEqual(text(request, "email:BusyStatus"), "2")
        self.assertEqual(text(request, "email:TimeZone"), from_zone("Europe/Paris", 2026).to_base64())
        self.assertEqual(text(request, "email:InstanceType"), "0")
        self.assertEqual(text(request, "email2:MeetingMessageType"), "1")
        ((_, event),) = (await self.received(self.client, calendar)).items()
        self.assertEqual(text(event, "calendar:UID"), UID)
        self.assertEqual(text(event, "calendar:BusyStatus"), "1")
        self.assertEqual(text(event, "calendar:MeetingStatus"), "3")
        self.assertEqual(text(event, "calendar:OrganizerEmail"), "carol@example.net")
        statuses = {text(a, "calendar:Email"): text(a, "calendar:AttendeeStatus")
                    for a in find(event, "calendar:Attendees/calendar:Attendee")}
        self.assertEqual(statuses, {"alice@example.org": "5"})

    async def test_meeting_request_for_14_1(self):
        """A 14.1 device gets email:Location and a GlobalObjId that decodes back to the UID, and a recurrence."""
        client = await self.provisioned("alice@example.org", "PHONE141", "14.1")
        raw = message("REQUEST", vevent(rrule="FREQ=WEEKLY;COUNT=4"))
        _, data = await self.invited(client, raw)
        (request,) = find(data, "email:MeetingRequest")
        self.assertEqual(text(request, "email:Location"), "Room 4")
        self.assertEqual(find(request, "calendar:UID"), [])
        self.assertEqual(text(request, "email:InstanceType"), "1")
        global_id = base64.b64decode(text(request, "email:GlobalObjId"))
        self.assertEqual(uid_from_global_obj_id(global_id), UID)
        self.assertEqual(text(request, "email:Recurrences/email:Recurrence/email:Type"), "1")
        self.assertEqual(text(request, "email:Recurrences/email:Recurrence/email:Occurrences"), "4")
        self.assertEqual(text(request, "email2:MeetingMessageType"), "1")

    async def test_update_then_cancel(self):
        """An update moves the device's event; the cancellation deletes it and arrives as Canceled."""
        calendar = await self.folder(self.alice, F.CALENDAR)
        inbox = await self.folder(self.alice, F.INBOX)
        await self.sync(self.client, calendar)
        await self.invited()
        ((server_id, _),) = (await self.received(self.client, calendar)).items()
        update = vevent(sequence=1, start="20260310T150000", end="20260310T160000")
        await self.lmtp_deliver(message("REQUEST", update, message_id="<invite-2@example.net>"))
        ((_, data),) = (await self.received(self.client, inbox)).items()
        self.assertEqual(text(data, "email:MeetingRequest/email2:MeetingMessageType"), "2")
        changed = await self.received(self.client, calendar, "Change")
        self.assertEqual(text(changed[server_id], "calendar:StartTime"), "20260310T140000Z")
        cancel = vevent(sequence=2, status="CANCELLED")
        await self.lmtp_deliver(message("CANCEL", cancel, message_id="<cancel-1@example.net>"))
        ((_, data),) = (await self.received(self.client, inbox)).items()
        self.assertEqual(text(data, "email:MessageClass"), "IPM.Schedule.Meeting.Canceled")
        self.assertEqual(text(data, "email:MeetingRequest/email2:MeetingMessageType"), "0")
        self.assertEqual(list(await self.received(self.client, calendar, "Delete")), [server_id])


class ResponseTests(MeetingTestCase):
    async def test_accept_replies_to_external_organizer(self):
        """16.1 accept with SendResponse: REPLY to the relay, the event busy and accepted, the request filed away."""
        inbox = await self.folder(self.alice, F.INBOX)
        calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(self.client, calendar)
        server_id, _ = await self.invited()
        ((event_id, _),) = (await self.received(self.client, calendar)).items()
        result = await self.respond(self.client, meeting_response(server_id, 1, inbox.server_id, send=SEND_WITH_BODY))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(text(result, "meetingresponse:RequestId"), server_id)
        self.assertEqual(text(result, "meetingresponse:CalendarId"), event_id)
        (sent,) = await self.relayed()
        self.assertEqual(sent.recipients, ("carol@example.net",))
        self.assertEqual(method_param(sent.data), "REPLY")
        ics = calendar_part(sent.data)
        self.assertEqual(str(ics["METHOD"]), "REPLY")
        (answer,) = ics.walk("VEVENT")
        self.assertEqual(str(answer["UID"]), UID)
        self.assertEqual(attendees(answer), {"alice@example.org": "ACCEPTED"})
        self.assertEqual(str(answer["COMMENT"]), "See you there.")
        self.assertIn(b"See you there.", sent.data)
        self.assertTrue(email.message_from_bytes(sent.data)["Subject"].startswith("Accepted: Budget review"))
        changed = await self.received(self.client, calendar, "Change")
        self.assertEqual(text(changed[event_id], "calendar:BusyStatus"), "2")
        statuses = {text(a, "calendar:Email"): text(a, "calendar:AttendeeStatus")
                    for a in find(changed[event_id], "calendar:Attendees/calendar:Attendee")}
        self.assertEqual(statuses, {"alice@example.org": "3"})
        self.assertEqual(list(await self.received(self.client, inbox, "Delete")), [server_id])

    async def test_accept_creates_missing_event(self):
        """Answering a request whose event is not in the calendar adds it and returns its CalendarId."""
        inbox = await self.folder(self.alice, F.INBOX)
        server_id, _ = await self.invited()
        (event,) = await self.events(self.alice)
        await self.store.items.delete(self.alice.id, event.folder_id, event.id)
        result = await self.respond(self.client, meeting_response(server_id, 2, inbox.server_id))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        (event,) = await self.events(self.alice)
        self.assertEqual(text(result, "meetingresponse:CalendarId"), f"{event.folder_id}:{event.id}")
        self.assertIn(b"PARTSTAT=TENTATIVE", event.content)

    async def test_decline_removes_event(self):
        """Decline sends a DECLINED reply, removes the event, and carries no CalendarId."""
        inbox = await self.folder(self.alice, F.INBOX)
        calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(self.client, calendar)
        server_id, _ = await self.invited()
        ((event_id, _),) = (await self.received(self.client, calendar)).items()
        result = await self.respond(self.client, meeting_response(server_id, 3, inbox.server_id, send=SEND))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(find(result, "meetingresponse:CalendarId"), [])
        (sent,) = await self.relayed()
        self.assertEqual(attendees(calendar_part(sent.data).walk("VEVENT")[0]), {"alice@example.org": "DECLINED"})
        self.assertEqual(list(await self.received(self.client, calendar, "Delete")), [event_id])
        self.assertEqual(await self.events(self.alice), [])

    async def test_without_send_response_nothing_is_sent(self):
        """16.1 without SendResponse answers the calendar and sends nothing."""
        inbox = await self.folder(self.alice, F.INBOX)
        server_id, _ = await self.invited()
        result = await self.respond(self.client, meeting_response(server_id, 1, inbox.server_id))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(await self.relayed(), [])
        (event,) = await self.events(self.alice)
        self.assertIn(b"PARTSTAT=ACCEPTED", event.content)

    async def test_14_1_client_sends_its_own_reply(self):
        """A 14.1 answer sends nothing: those clients reply with SendMail (MS-ASCMD 2.2.1.11)."""
        client = await self.provisioned("alice@example.org", "PHONE141", "14.1")
        inbox = await self.folder(self.alice, F.INBOX)
        server_id, _ = await self.invited(client)
        result = await self.respond(client, meeting_response(server_id, 1, inbox.server_id, send=SEND))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(await self.relayed(), [])

    async def test_decline_one_occurrence_from_calendar(self):
        """Declining one occurrence of a weekly meeting, named by the event and InstanceId, excludes it."""
        calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(self.client, calendar)
        await self.invited(raw=message("REQUEST", vevent(rrule="FREQ=WEEKLY;COUNT=4")))
        ((event_id, _),) = (await self.received(self.client, calendar)).items()
        result = await self.respond(self.client, meeting_response(
            event_id, 3, calendar.server_id, send=SEND, instance="2026-03-17T09:00:00.000Z"))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(text(result, "meetingresponse:InstanceId"), "2026-03-17T09:00:00.000Z")
        changed = await self.received(self.client, calendar, "Change")
        exceptions = [(text(e, "calendar:Deleted"), text(e, "airsyncbase:InstanceId"))
                      for e in find(changed[event_id], "calendar:Exceptions/calendar:Exception")]
        self.assertEqual(exceptions, [("1", "20260317T090000Z")])
        (sent,) = await self.relayed()
        (answer,) = calendar_part(sent.data).walk("VEVENT")
        self.assertEqual(answer["RECURRENCE-ID"].dt.astimezone(UTC), datetime(2026, 3, 17, 9, 0, tzinfo=UTC))
        self.assertEqual(attendees(answer), {"alice@example.org": "DECLINED"})

    async def test_refusals(self):
        """Requests that name no meeting, the user's own meeting or a bad instance get the spec's statuses."""
        inbox = await self.folder(self.alice, F.INBOX)
        calendar = await self.folder(self.alice, F.CALENDAR)
        server_id, _ = await self.invited()
        plain = await self.deliver(b"From: carol@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
        (event,) = await self.events(self.alice)
        own = await calendar_ingest.add_event(self.store, self.alice, calendar, ORGANISED)
        cases = [
            (meeting_response(f"{inbox.id}:999999", 1, inbox.server_id), "2"),
            (meeting_response(f"{inbox.id}:{plain}", 1, inbox.server_id), "2"),
            (meeting_response(server_id, 7, inbox.server_id), "2"),
            (meeting_response(server_id, 1, calendar.server_id), "2"),
            (meeting_response(f"{calendar.id}:{own}", 1, calendar.server_id), "2"),
            (meeting_response(server_id, 1, inbox.server_id, instance="2026-03-10T09:00:00.000Z"), "2"),
            (meeting_response(f"{calendar.id}:{event.id}", 1, calendar.server_id, instance="yesterday"), "104"),
            (meeting_response(f"{calendar.id}:{event.id}", 1, calendar.server_id,
                              instance="2026-03-10T09:00:00.000Z"), "146"),
        ]
        for request, status in cases:
            result = await self.respond(self.client, request)
            self.assertEqual(text(result, "meetingresponse:Status"), status, request)
        old = await self.provisioned("alice@example.org", "PHONE140", "14.0")
        result = await self.respond(old, meeting_response(f"{calendar.id}:{event.id}", 1, calendar.server_id,
                                                          instance="2026-03-10T09:00:00.000Z"))
        self.assertEqual(text(result, "meetingresponse:Status"), "2")
        malformed = await self.client.post("MeetingResponse", '<MeetingResponse xmlns="MeetingResponse:"/>')
        self.assertEqual(malformed.code, 400)
        self.assertIn(b"NEEDS-ACTION", (await self.events(self.alice))[0].content)
        self.assertEqual(await self.relayed(), [])

    async def test_no_relay_for_external_organizer(self):
        """A reply that cannot reach an external organizer (no relay) is Status 3 and changes nothing."""
        self.serve(self.mail_settings(relay_host=""))
        self.client = await self.provisioned("alice@example.org", "PHONEB")
        inbox = await self.folder(self.alice, F.INBOX)
        server_id, _ = await self.invited()
        result = await self.respond(self.client, meeting_response(server_id, 1, inbox.server_id, send=SEND))
        self.assertEqual(text(result, "meetingresponse:Status"), "3")
        (event,) = await self.events(self.alice)
        self.assertIn(b"PARTSTAT=NEEDS-ACTION", event.content)


class OrganizerTests(MeetingTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.phone = await self.provisioned("alice@example.org", "ORGPHONE", "16.1")
        self.calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(self.phone, self.calendar)

    async def add(self, data: str) -> str:
        collection = await self.sync(self.phone, self.calendar,
                                     f"<Add><ClientId>c1</ClientId><ApplicationData>{data}</ApplicationData></Add>")
        (response,) = find(collection, "airsync:Responses/airsync:Add")
        self.assertEqual(text(response, "airsync:Status"), "1")
        return text(response, "airsync:ServerId")

    async def change(self, server_id: str, data: str):
        return await self.sync(self.phone, self.calendar,
                               f"<Change><ServerId>{server_id}</ServerId><ApplicationData>{data}</ApplicationData>"
                               "</Change>")

    async def test_new_meeting_invites_everyone(self):
        """A 16.1 phone's new meeting sends REQUEST to the external attendee and puts it in Bob's Inbox and calendar."""
        await self.add(event_16())
        (sent,) = await self.relayed()
        self.assertEqual((sent.mail_from, sent.recipients), ("alice@example.org", ("carol@example.net",)))
        ics = calendar_part(sent.data)
        self.assertEqual(str(ics["METHOD"]), "REQUEST")
        (request,) = ics.walk("VEVENT")
        self.assertEqual((str(request["UID"]), int(request["SEQUENCE"])), ("roadmap-1", 0))
        self.assertEqual(str(request["ORGANIZER"]).lower(), "mailto:alice@example.org")
        self.assertEqual(attendees(request), {"carol@example.net": "NEEDS-ACTION", "bob@example.org": "NEEDS-ACTION"})
        (bob_mail,) = await self.stored(self.bob)
        self.assertEqual(method_param(bob_mail), "REQUEST")
        (bob_event,) = await self.events(self.bob)
        self.assertIn(b"X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", bob_event.content)

    async def test_change_sends_update_with_new_sequence(self):
        """Moving the meeting re-invites everyone with SEQUENCE 1; the phone is not sent its own event back."""
        server_id = await self.add(event_16())
        await self.relayed()
        self.assertEqual(await self.received(self.phone, self.calendar, "Change"), {})
        answer = await self.change(server_id, "<calendar:StartTime>20260321T090000Z</calendar:StartTime>"
                                              "<calendar:EndTime>20260321T100000Z</calendar:EndTime>")
        self.assertTrue(answer is None or find(answer, "airsync:Commands") == [], answer)
        sent = await self.relayed()
        self.assertEqual(len(sent), 2)
        (update,) = calendar_part(sent[1].data).walk("VEVENT")
        self.assertEqual(int(update["SEQUENCE"]), 1)
        self.assertEqual(update["DTSTART"].dt.isoformat(), "2026-03-21T09:00:00+00:00")
        (bob_event,) = await self.events(self.bob)
        self.assertIn(b"20260321T090000Z", bob_event.content)
        self.assertEqual(await self.received(self.phone, self.calendar, "Change"), {})

    async def test_reminder_change_sends_nothing(self):
        """A change attendees need not know of (the reminder) sends no mail."""
        server_id = await self.add(event_16())
        await self.relayed()
        await self.change(server_id, "<calendar:Reminder>30</calendar:Reminder>")
        self.assertEqual(len(await self.relayed()), 1)
        self.assertEqual(len(await self.stored(self.bob)), 1)

    async def test_removed_attendee_gets_cancel(self):
        """Removing an attendee sends that attendee a CANCEL and nobody else anything."""
        server_id = await self.add(event_16())
        await self.relayed()
        await self.change(server_id, attendees_16(("bob@example.org",)))
        sent = await self.relayed()
        self.assertEqual(len(sent), 2)
        self.assertEqual(sent[1].recipients, ("carol@example.net",))
        self.assertEqual(str(calendar_part(sent[1].data)["METHOD"]), "CANCEL")
        self.assertEqual(len(await self.stored(self.bob)), 1)

    async def test_delete_cancels(self):
        """Deleting the meeting sends CANCEL to everyone; Bob's copy of the meeting goes away."""
        server_id = await self.add(event_16())
        await self.relayed()
        self.assertEqual(len(await self.events(self.bob)), 1)
        await self.sync(self.phone, self.calendar, f"<Delete><ServerId>{server_id}</ServerId></Delete>")
        sent = await self.relayed()
        self.assertEqual(len(sent), 2)
        ics = calendar_part(sent[1].data)
        self.assertEqual(str(ics["METHOD"]), "CANCEL")
        self.assertEqual(str(ics.walk("VEVENT")[0]["STATUS"]), "CANCELLED")
        self.assertEqual(await self.events(self.bob), [])

    async def test_local_attendee_answers(self):
        """Bob accepts Alice's meeting from his phone: the REPLY lands in her Inbox and her event shows it."""
        server_id = await self.add(event_16())
        await self.relayed()
        bob = await self.provisioned("bob@example.org", "BOBPHONE")
        bob_inbox = await self.folder(self.bob, F.INBOX)
        ((request_id, data),) = (await self.received(bob, bob_inbox)).items()
        self.assertEqual(text(data, "email:MeetingRequest/calendar:UID"), "roadmap-1")
        result = await self.respond(bob, meeting_response(request_id, 1, bob_inbox.server_id, send=SEND))
        self.assertEqual(text(result, "meetingresponse:Status"), "1")
        self.assertEqual(len(await self.relayed()), 1)
        replies = [m for m in await self.stored(self.alice) if method_param(m) == "REPLY"]
        self.assertEqual(len(replies), 1)
        changed = await self.received(self.phone, self.calendar, "Change")
        statuses = {text(a, "calendar:Email"): text(a, "calendar:AttendeeStatus")
                    for a in find(changed[server_id], "calendar:Attendees/calendar:Attendee")}
        self.assertEqual(statuses["bob@example.org"], "3")
        self.assertNotEqual(statuses["carol@example.net"], "3")


class OlderOrganizerTests(MeetingTestCase):
    async def test_14_1_phone_sends_its_own_requests(self):
        """A 14.1 phone's meeting sends nothing itself; its own SendMail invitation reaches Bob's calendar."""
        phone = await self.provisioned("alice@example.org", "OLDPHONE", "14.1")
        calendar = await self.folder(self.alice, F.CALENDAR)
        await self.sync(phone, calendar)
        await self.sync(phone, calendar, f"<Add><ClientId>c1</ClientId><ApplicationData>{event_xml()}"
                                         "</ApplicationData></Add>")
        self.assertEqual(await self.relayed(), [])
        self.assertEqual(await self.stored(self.bob), [])
        invitation = message("REQUEST", vevent(uid="roadmap-1", organizer="alice@example.org",
                                               attendees=("bob@example.org", "carol@example.net")),
                             sender="Alice Martin <alice@example.org>", to="bob@example.org, carol@example.net",
                             message_id="<roadmap-1@example.org>")
        self.assertSent(await phone.post("SendMail", compose_document("SendMail", invitation, client_id="inv-1")))
        self.assertEqual([m.recipients for m in await self.relayed()], [("carol@example.net",)])
        (event,) = await self.events(self.bob)
        self.assertIn(b"UID:roadmap-1", event.content)
        self.assertIn(b"X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", event.content)


class OptionsTests(MeetingTestCase):
    async def test_advertised(self):
        """OPTIONS lists MeetingResponse."""
        import treq

        response = await treq.request("OPTIONS", self.base_url + "/Microsoft-Server-ActiveSync", pool=self.pool,
                                      headers={"Authorization": [self.client._headers(None)["Authorization"][0]]})
        listed = response.headers.getRawHeaders("ms-asprotocolcommands")[0].split(",")
        await response.content()
        self.assertIn("MeetingResponse", listed)


class MeetingRequestElementTests(SynchronousTestCase):
    def test_all_day_16_still_has_time_zone(self):
        """An all-day meeting to 16.1 keeps the required TimeZone (the calendar item has none)."""
        ics = calendar_text("REQUEST", vevent().replace("DTSTART;TZID=Europe/Paris:20260310T100000",
                                                        "DTSTART;VALUE=DATE:20260310")
                            .replace("DTEND;TZID=Europe/Paris:20260310T110000", "DTEND;VALUE=DATE:20260311"))
        element = meetings.meeting_request(ics, "16.1")
        self.assertEqual(text(element, "email:AllDayEvent"), "1")
        self.assertEqual(text(element, "email:StartTime"), "2026-03-10T00:00:00.000Z")
        self.assertEqual(text(element, "email:TimeZone"), from_zone("UTC", 2026).to_base64())

    def test_cancel_without_times(self):
        """A cancellation that carries no times still has the required DtStamp, TimeZone and UID."""
        ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:gone-1\r\n"
               "SEQUENCE:3\r\nDTSTAMP:20260305T080000Z\r\nORGANIZER:mailto:carol@example.net\r\n"
               "STATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        element = meetings.meeting_request(ics, "14.1")
        self.assertEqual([local(child.tag) for child in element], [
            "Email:DtStamp", "Email:InstanceType", "Email:Organizer", "Email:ResponseRequested",
            "Email:Sensitivity", "Email:BusyStatus", "Email:TimeZone", "Email:GlobalObjId",
            "Email:DisallowNewTimeProposal", "Email2:MeetingMessageType"])
        self.assertEqual(text(element, "email2:MeetingMessageType"), "0")
        self.assertEqual(uid_from_global_obj_id(base64.b64decode(text(element, "email:GlobalObjId"))), "gone-1")

    def test_no_meeting(self):
        """A message without a readable meeting has no MeetingRequest."""
        self.assertIsNone(meetings.meeting_request(None, "16.1"))
        self.assertIsNone(meetings.meeting_request("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "16.1"))

"""
Contacts, calendar, tasks and notes through Sync end to end (issue 7):
WBXML over TCP to the real Site on a real PostgreSQL, one device adding,
changing and deleting, other devices (14.1 and 16.1) receiving.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
from twisted.internet import defer

from bluesync.eas import pim
from bluesync.items.timezone import from_zone
from bluesync.store import folders as F
from tests.eas.client import EASClient, find, text
from tests.push.helpers import until
from tests.support import SiteTestCase

UTC = timezone.utc
NAMESPACES = ('xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:contacts="Contacts:"'
              ' xmlns:contacts2="Contacts2:" xmlns:calendar="Calendar:" xmlns:tasks="Tasks:" xmlns:notes="Notes:"')
PLAIN = "<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type></airsyncbase:BodyPreference>"
PARIS = from_zone("Europe/Paris", 2026).to_base64()


def body(value: str) -> str:
    return (f"<airsyncbase:Body><airsyncbase:Type>1</airsyncbase:Type>"
            f"<airsyncbase:Data>{value}</airsyncbase:Data></airsyncbase:Body>")


CONTACT = (
    "<contacts:FileAs>Martin, Anna</contacts:FileAs><contacts:FirstName>Anna</contacts:FirstName>"
    "<contacts:LastName>Martin</contacts:LastName><contacts:CompanyName>Example SA</contacts:CompanyName>"
    "<contacts:JobTitle>Chemist</contacts:JobTitle><contacts:Email1Address>anna@example.fr</contacts:Email1Address>"
    "<contacts:MobilePhoneNumber>+33 6 12 34 56 78</contacts:MobilePhoneNumber>"
    "<contacts:BusinessPhoneNumber>+33 4 72 00 00 00</contacts:BusinessPhoneNumber>"
    "<contacts:HomeAddressStreet>1 rue de la Paix</contacts:HomeAddressStreet><contacts:HomeAddressCity>Lyon</contacts:HomeAddressCity>"
    "<contacts:HomeAddressPostalCode>69001</contacts:HomeAddressPostalCode><contacts:HomeAddressCountry>France</contacts:HomeAddressCountry>"
    "<contacts:Categories><contacts:Category>Family</contacts:Category></contacts:Categories>"
    "<contacts:OfficeLocation>B 2.14</contacts:OfficeLocation>"
    "<contacts2:NickName>Annie</contacts2:NickName>" + body("Likes tea, not coffee.")
)

# A weekly Thursday meeting at 10:00 Paris time from 5 March 2026 (CET),
# across the switch to CEST on 29 March: 19 March deleted, 2 April
# (08:00Z after the switch) moved to Friday 3 April 14:00.
WEEKLY_14 = (
    f"<calendar:TimeZone>{PARIS}</calendar:TimeZone><calendar:DtStamp>20260301T120000Z</calendar:DtStamp>"
    "<calendar:StartTime>20260305T090000Z</calendar:StartTime><calendar:Subject>Weekly sync</calendar:Subject>"
    "<calendar:UID>weekly-paris-1</calendar:UID><calendar:OrganizerName>Alice</calendar:OrganizerName>"
    "<calendar:OrganizerEmail>alice@example.org</calendar:OrganizerEmail>"
    "<calendar:Attendees><calendar:Attendee><calendar:Email>bob@example.org</calendar:Email>"
    "<calendar:Name>Bob</calendar:Name><calendar:AttendeeStatus>3</calendar:AttendeeStatus>"
    "<calendar:AttendeeType>1</calendar:AttendeeType></calendar:Attendee></calendar:Attendees>"
    "<calendar:Location>Room 1</calendar:Location><calendar:EndTime>20260305T100000Z</calendar:EndTime>"
    "<calendar:Recurrence><calendar:Type>1</calendar:Type><calendar:Occurrences>10</calendar:Occurrences>"
    "<calendar:Interval>1</calendar:Interval><calendar:DayOfWeek>16</calendar:DayOfWeek></calendar:Recurrence>"
    "<calendar:Sensitivity>0</calendar:Sensitivity><calendar:BusyStatus>2</calendar:BusyStatus>"
    "<calendar:AllDayEvent>0</calendar:AllDayEvent><calendar:Reminder>15</calendar:Reminder>"
    "<calendar:Exceptions><calendar:Exception><calendar:Deleted>1</calendar:Deleted>"
    "<calendar:ExceptionStartTime>20260319T090000Z</calendar:ExceptionStartTime></calendar:Exception>"
    "<calendar:Exception><calendar:ExceptionStartTime>20260402T080000Z</calendar:ExceptionStartTime>"
    "<calendar:Subject>Moved</calendar:Subject><calendar:StartTime>20260403T120000Z</calendar:StartTime>"
    "<calendar:EndTime>20260403T130000Z</calendar:EndTime></calendar:Exception></calendar:Exceptions>"
    "<calendar:MeetingStatus>1</calendar:MeetingStatus>"
)

# The same series as a 16.1 client writes it: ClientUid instead of UID,
# AirSyncBase:Location, InstanceId instead of ExceptionStartTime.
WEEKLY_16 = (
    f"<calendar:TimeZone>{PARIS}</calendar:TimeZone>"
    "<calendar:StartTime>20260305T090000Z</calendar:StartTime><calendar:Subject>Weekly sync</calendar:Subject>"
    "<calendar:ClientUid>client-uid-weekly-16</calendar:ClientUid>"
    "<calendar:EndTime>20260305T100000Z</calendar:EndTime>"
    "<calendar:Recurrence><calendar:Type>1</calendar:Type><calendar:Occurrences>10</calendar:Occurrences>"
    "<calendar:Interval>1</calendar:Interval><calendar:DayOfWeek>16</calendar:DayOfWeek></calendar:Recurrence>"
    + body("Agenda: numbers.")
    + "<calendar:Sensitivity>0</calendar:Sensitivity><calendar:BusyStatus>2</calendar:BusyStatus>"
    "<calendar:AllDayEvent>0</calendar:AllDayEvent><calendar:Reminder>10</calendar:Reminder>"
    "<calendar:Exceptions><calendar:Exception><calendar:Deleted>1</calendar:Deleted>"
    "<airsyncbase:InstanceId>20260319T090000Z</airsyncbase:InstanceId></calendar:Exception>"
    "<calendar:Exception><airsyncbase:InstanceId>20260402T080000Z</airsyncbase:InstanceId>"
    "<calendar:Subject>Moved</calendar:Subject><calendar:StartTime>20260403T120000Z</calendar:StartTime>"
    "<calendar:EndTime>20260403T130000Z</calendar:EndTime></calendar:Exception></calendar:Exceptions>"
    "<airsyncbase:Location><airsyncbase:DisplayName>Room 1</airsyncbase:DisplayName></airsyncbase:Location>"
)

TASK = (
    body("Bring the slides.") + "<tasks:Subject>Prepare the review</tasks:Subject>"
    "<tasks:Importance>2</tasks:Importance><tasks:UtcStartDate>2026-11-23T09:00:00.000Z</tasks:UtcStartDate>"
    "<tasks:StartDate>2026-11-23T10:00:00.000Z</tasks:StartDate>"
    "<tasks:UtcDueDate>2026-11-26T23:00:00.000Z</tasks:UtcDueDate>"
    "<tasks:DueDate>2026-11-27T00:00:00.000Z</tasks:DueDate>"
    "<tasks:Categories><tasks:Category>Work</tasks:Category></tasks:Categories>"
    "<tasks:Complete>0</tasks:Complete><tasks:Sensitivity>0</tasks:Sensitivity>"
    "<tasks:ReminderTime>2026-11-26T08:00:00.000Z</tasks:ReminderTime><tasks:ReminderSet>1</tasks:ReminderSet>"
)

NOTE = (
    "<notes:Subject>Shopping</notes:Subject>" + body("Bread\nCheese")
    + "<notes:MessageClass>IPM.StickyNote</notes:MessageClass>"
    "<notes:Categories><notes:Category>Home</notes:Category></notes:Categories>"
)


def leaves(element) -> list[tuple[str, str]]:
    """(tag, text) of every leaf below an element, in document order."""
    return [(node.tag, (node.text or "").strip()) for node in element.iter() if len(node) == 0 and node is not element]


def fields(element) -> dict[str, str]:
    """Leaf tag -> text of an ApplicationData whose leaves are unique."""
    return dict(leaves(element))


class PimTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account()
        self.folders = {
            "Contacts": await self.store.folders.by_type(self.account.id, F.CONTACTS),
            "Calendar": await self.store.folders.by_type(self.account.id, F.CALENDAR),
            "Tasks": await self.store.folders.by_type(self.account.id, F.TASKS),
            "Notes": await self.store.folders.by_type(self.account.id, F.NOTES),
        }
        self.keys: dict[tuple[str, str], str] = {}

    async def device(self, device_id: str, version: str = "16.1", device_type: str = "iPhone",
                     user_agent: str = "Apple-iPhone15C2/2301.341") -> EASClient:
        client = EASClient(self.base_url, "alice@example.org", "correct horse", device_id=device_id,
                           version=version, device_type=device_type, user_agent=user_agent, pool=self.pool)
        await client.provision()
        return client

    async def sync(self, client, folder, commands: str = "", options: str = PLAIN, key: str | None = None,
                   expect_status: str = "1"):
        """
        One Sync of a collection with the device's current key (0 the
        first time, then the empty exchange that gets the first key);
        returns the answer's Collection element, or None for an empty answer.
        """
        folder_id = folder.server_id
        slot = (client.device_id, folder_id)
        if key is None and slot not in self.keys:
            first = await self._post(client, folder_id, "0", "", options)
            self.keys[slot] = text(first, "airsync:SyncKey")
        use = key if key is not None else self.keys[slot]
        collection = await self._post(client, folder_id, use, commands, options)
        if collection is None:
            return None
        self.assertEqual(text(collection, "airsync:Status"), expect_status)
        self.keys[slot] = text(collection, "airsync:SyncKey")
        return collection

    async def _post(self, client, folder_id: str, key: str, commands: str, options: str):
        document = (
            f"<Sync {NAMESPACES}><Collections><Collection><SyncKey>{key}</SyncKey>"
            f"<CollectionId>{folder_id}</CollectionId><WindowSize>100</WindowSize>"
            + (f"<Options>{options}</Options>" if options else "")
            + (f"<Commands>{commands}</Commands>" if commands else "")
            + "</Collection></Collections></Sync>"
        )
        answer = await client.post("Sync", document)
        self.assertEqual(answer.code, 200, answer)
        if answer.document is None:
            return None
        return find(answer.document, "//airsync:Collection")[0]

    async def add(self, client, folder, data: str, client_id: str = "c1") -> tuple[str, object]:
        """Add an item from C{client}; its ServerId and the Add response."""
        collection = await self.sync(client, folder, f"<Add><ClientId>{client_id}</ClientId>"
                                                     f"<ApplicationData>{data}</ApplicationData></Add>")
        response = find(collection, "airsync:Responses/airsync:Add")[0]
        self.assertEqual(text(response, "airsync:Status"), "1", collection)
        self.assertEqual(text(response, "airsync:ClientId"), client_id)
        return text(response, "airsync:ServerId"), response

    async def received(self, client, folder, kind: str = "Add", options: str = PLAIN) -> dict[str, object]:
        """ServerId -> ApplicationData (or None) of the commands of one kind a Sync brings."""
        collection = await self.sync(client, folder, options=options)
        if collection is None:
            return {}
        return {text(e, "airsync:ServerId"): (find(e, "airsync:ApplicationData") or [None])[0]
                for e in find(collection, f"airsync:Commands/airsync:{kind}")}


def parse(data: str):
    from tests.eas.client import xml
    return xml(f"<ApplicationData {NAMESPACES}>{data}</ApplicationData>")


class ClassRoundTripTests(PimTestCase):
    async def test_contact_reaches_other_devices(self):
        """A contact added on one device reaches a 14.1 and a 16.1 device with the fields it was sent."""
        phone = await self.device("PHONE", "16.1")
        older = await self.device("OLDER", "14.1")
        other = await self.device("OTHER", "16.1")
        contacts = self.folders["Contacts"]
        for client in (phone, older, other):
            await self.sync(client, contacts)
        server_id, response = await self.add(phone, contacts, CONTACT)
        self.assertEqual(find(response, "airsync:ApplicationData"), [])
        sent = fields(parse(CONTACT))
        for client in (older, other):
            received = await self.received(client, contacts)
            self.assertEqual(list(received), [server_id])
            got = fields(received[server_id])
            for tag, value in sent.items():
                self.assertEqual(got.get(tag), value, (client.version, tag))
        self.assertEqual(await self.received(phone, contacts), {})

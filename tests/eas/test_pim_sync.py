"""
Contacts, calendar, tasks and notes through Sync end to end (issue 7):
WBXML over TCP to the real Site on a real PostgreSQL, one device adding,
changing and deleting, other devices (14.1 and 16.1) receiving.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from twisted.internet import defer

from bluesync.eas import pim
from bluesync.items.timezone import TimeZoneInfo, from_zone, tzinfo_for
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
    f"<calendar:Timezone>{PARIS}</calendar:Timezone><calendar:DtStamp>20260301T120000Z</calendar:DtStamp>"
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
    f"<calendar:Timezone>{PARIS}</calendar:Timezone>"
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
                   expect_status: str = "1", supported: str | None = None):
        """
        One Sync of a collection with the device's current key (0 the
        first time, then the empty exchange that gets the first key, with
        C{supported} as its Supported element); returns the answer's
        Collection element, or None for an empty answer.
        """
        folder_id = folder.server_id
        slot = (client.device_id, folder_id)
        if key is None and slot not in self.keys:
            first = await self._post(client, folder_id, "0", "", options, supported)
            self.keys[slot] = text(first, "airsync:SyncKey")
        use = key if key is not None else self.keys[slot]
        collection = await self._post(client, folder_id, use, commands, options)
        if collection is None:
            return None
        self.assertEqual(text(collection, "airsync:Status"), expect_status)
        self.keys[slot] = text(collection, "airsync:SyncKey")
        return collection

    async def _post(self, client, folder_id: str, key: str, commands: str, options: str,
                    supported: str | None = None):
        document = (
            f"<Sync {NAMESPACES}><Collections><Collection><SyncKey>{key}</SyncKey>"
            f"<CollectionId>{folder_id}</CollectionId>"
            + (f"<Supported>{supported}</Supported>" if supported is not None else "")
            + "<WindowSize>100</WindowSize>"
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

    async def test_weekly_paris_series_round_trips_exactly(self):
        """A weekly Paris series with a deleted and a moved occurrence across DST reaches a 14.1 device unchanged."""
        phone = await self.device("PHONE", "14.1")
        older = await self.device("OLDER", "14.1")
        calendar = self.folders["Calendar"]
        await self.sync(older, calendar)
        server_id, response = await self.add(phone, calendar, WEEKLY_14)
        self.assertEqual(find(response, "airsync:ApplicationData"), [])
        received = await self.received(older, calendar)
        self.assertEqual(leaves(received[server_id]), leaves(parse(WEEKLY_14)))

    async def test_weekly_paris_series_from_16(self):
        """A 16.1 series gets its UID in the Add response and reaches 14.1 and 16.1 devices with its occurrences."""
        phone = await self.device("PHONE", "16.1")
        older = await self.device("OLDER", "14.1")
        other = await self.device("OTHER", "16.1")
        calendar = self.folders["Calendar"]
        for client in (older, other):
            await self.sync(client, calendar)
        server_id, response = await self.add(phone, calendar, WEEKLY_16)
        self.assertEqual(text(response, "airsync:ApplicationData/calendar:UID"), "client-uid-weekly-16")
        old = (await self.received(older, calendar))[server_id]
        self.assertEqual(text(old, "calendar:UID"), "client-uid-weekly-16")
        self.assertEqual(text(old, "calendar:Timezone"), PARIS)
        self.assertEqual(text(old, "calendar:Location"), "Room 1")
        exceptions = [(text(e, "calendar:Deleted"), text(e, "calendar:ExceptionStartTime"),
                       text(e, "calendar:StartTime"), text(e, "calendar:Subject"))
                      for e in find(old, "calendar:Exceptions/calendar:Exception")]
        self.assertEqual(exceptions, [("1", "20260319T090000Z", None, None),
                                      (None, "20260402T080000Z", "20260403T120000Z", "Moved")])
        new = (await self.received(other, calendar))[server_id]
        sent = parse(WEEKLY_16)
        for tag in ("Timezone", "StartTime", "EndTime", "Subject", "Reminder", "BusyStatus", "Sensitivity"):
            self.assertEqual(text(new, f"calendar:{tag}"), text(sent, f"calendar:{tag}"), tag)
        self.assertEqual(leaves(find(new, "calendar:Recurrence")[0]), leaves(find(sent, "calendar:Recurrence")[0]))
        self.assertEqual(leaves(find(new, "calendar:Exceptions")[0]), leaves(find(sent, "calendar:Exceptions")[0]))
        self.assertEqual(text(new, "airsyncbase:Body/airsyncbase:Data"), "Agenda: numbers.")
        self.assertEqual(text(new, "airsyncbase:Location/airsyncbase:DisplayName"), "Room 1")

    async def test_task_and_note(self):
        """A task and a note added on a 16.1 device reach a 14.1 device with the fields they were sent."""
        phone = await self.device("PHONE", "16.1")
        older = await self.device("OLDER", "14.1")
        for klass, data in (("Tasks", TASK), ("Notes", NOTE)):
            folder = self.folders[klass]
            await self.sync(older, folder)
            server_id, _ = await self.add(phone, folder, data)
            got = fields((await self.received(older, folder))[server_id])
            for tag, value in fields(parse(data)).items():
                self.assertEqual(got.get(tag), value.replace("\n", "\r\n"), (klass, tag))

    async def test_user_folders(self):
        """Items sync in user-created contacts, calendar, tasks and notes folders (FolderCreate 14, 13, 15, 17)."""
        phone = await self.device("PHONE", "16.1")
        other = await self.device("OTHER", "14.1")
        answer = await phone.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        key = text(answer.document, "//folderhierarchy:SyncKey")
        for folder_type, klass, data in ((14, "Contacts", CONTACT), (13, "Calendar", WEEKLY_14),
                                         (15, "Tasks", TASK), (17, "Notes", NOTE)):
            answer = await phone.post(
                "FolderCreate",
                f'<FolderCreate xmlns="FolderHierarchy:"><SyncKey>{key}</SyncKey><ParentId>0</ParentId>'
                f"<DisplayName>My {klass}</DisplayName><Type>{folder_type}</Type></FolderCreate>",
            )
            self.assertEqual(text(answer.document, "//folderhierarchy:Status"), "1", answer)
            key = text(answer.document, "//folderhierarchy:SyncKey")
            folder = await self.store.folders.get(self.account.id, int(text(answer.document, "//folderhierarchy:ServerId")))
            self.assertEqual(folder.content_class, klass)
            await self.sync(other, folder)
            server_id, _ = await self.add(phone, folder, data)
            received = await self.received(other, folder)
            self.assertEqual(list(received), [server_id], klass)


class ChangeDeleteTests(PimTestCase):
    async def pair(self, klass: str, data: str, version: str = "16.1", other_version: str = "14.1"):
        phone = await self.device("PHONE", version)
        other = await self.device("OTHER", other_version)
        folder = self.folders[klass]
        await self.sync(other, folder)
        server_id, _ = await self.add(phone, folder, data)
        self.assertEqual(list(await self.received(other, folder)), [server_id])
        return phone, other, folder, server_id

    def change(self, server_id: str, data: str, instance_id: str | None = None) -> str:
        instance = f"<airsyncbase:InstanceId>{instance_id}</airsyncbase:InstanceId>" if instance_id else ""
        return f"<Change><ServerId>{server_id}</ServerId>{instance}<ApplicationData>{data}</ApplicationData></Change>"

    async def test_changes_and_deletes_propagate(self):
        """A change and a delete of each class made on one device reach the other, and are not echoed."""
        cases = {
            "Contacts": (CONTACT, CONTACT.replace("Chemist", "Head of research"), "contacts:JobTitle", "Head of research"),
            "Calendar": (WEEKLY_14, WEEKLY_14.replace("Room 1", "Room 2"), "airsyncbase:Location/airsyncbase:DisplayName", "Room 2"),
            "Tasks": (TASK, TASK.replace("<tasks:Complete>0</tasks:Complete>",
                                         "<tasks:Complete>1</tasks:Complete>"
                                         "<tasks:DateCompleted>2026-11-25T10:00:00.000Z</tasks:DateCompleted>"),
                      "tasks:Complete", "1"),
            "Notes": (NOTE, NOTE.replace("Shopping", "Groceries"), "notes:Subject", "Groceries"),
        }
        phone = await self.device("PHONE", "14.1")
        other = await self.device("OTHER", "16.1")
        for klass, (data, changed, path, value) in cases.items():
            folder = self.folders[klass]
            await self.sync(other, folder)
            server_id, _ = await self.add(phone, folder, data)
            self.assertEqual(list(await self.received(other, folder)), [server_id])
            collection = await self.sync(phone, folder, self.change(server_id, changed))
            self.assertTrue(collection is None or not find(collection, "airsync:Responses"), klass)
            received = await self.received(other, folder, "Change")
            self.assertEqual(text(received[server_id], path), value, klass)
            self.assertEqual(await self.received(phone, folder, "Change"), {}, klass)
            await self.sync(phone, folder, f"<Delete><ServerId>{server_id}</ServerId></Delete>")
            self.assertEqual(list(await self.received(other, folder, "Delete")), [server_id], klass)
            self.assertEqual(await self.store.items.count(self.account.id, folder.id), 0)

    async def test_change_keeps_what_eas_cannot_carry(self):
        """A device's Change keeps the vCard properties and the body it did not send."""
        phone, other, folder, server_id = await self.pair("Contacts", CONTACT, "14.1", "16.1")
        item_id = int(server_id.split(":")[1])
        item = (await self.store.items.get_many(self.account.id, [item_id]))[item_id]
        extended = item.content.replace(b"END:VCARD", b"X-SOCIALPROFILE;TYPE=mastodon:https://social.example/@anna\r\nEND:VCARD")
        await self.store.items.replace_content(self.account.id, folder.id, item_id,
                                               pim.new_item("Contacts", extended, None))
        without_body = CONTACT.replace(body("Likes tea, not coffee."), "").replace("Chemist", "Biochemist")
        # The phone first receives the server-side edit: otherwise its
        # Change would lose to it (Conflict defaults to server wins).
        await self.received(phone, folder, "Change")
        await self.sync(phone, folder, self.change(server_id, without_body))
        item = (await self.store.items.get_many(self.account.id, [item_id]))[item_id]
        self.assertIn(b"X-SOCIALPROFILE;TYPE=mastodon:https://social.example/@anna", item.content)
        data = (await self.received(other, folder, "Change"))[server_id]
        self.assertEqual(text(data, "contacts:JobTitle"), "Biochemist")
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Data"), "Likes tea, not coffee.")

    async def test_absent_elements_deleted_up_to_14_1(self):
        """Up to 14.1 a Change without an element deletes it (no Supported element was sent)."""
        phone, other, folder, server_id = await self.pair("Contacts", CONTACT, "14.1", "16.1")
        await self.sync(phone, folder, self.change(server_id, CONTACT.replace(
            "<contacts:JobTitle>Chemist</contacts:JobTitle>", "")))
        data = (await self.received(other, folder, "Change"))[server_id]
        self.assertEqual(find(data, "contacts:JobTitle"), [])
        self.assertEqual(text(data, "contacts:CompanyName"), "Example SA")

    async def test_supported_elements(self):
        """Elements a 14.1 device's Supported list leaves out are kept when its Change omits them (MS-ASCMD 2.2.3.179)."""
        phone = await self.device("PHONE", "14.1")
        other = await self.device("OTHER", "16.1")
        folder = self.folders["Contacts"]
        await self.sync(other, folder)
        await self.sync(phone, folder, supported="<contacts:FirstName/><contacts:LastName/><contacts:FileAs/>"
                                                 "<contacts:CompanyName/><contacts:Email1Address/>")
        server_id, _ = await self.add(phone, folder, CONTACT)
        self.assertEqual(list(await self.received(other, folder)), [server_id])
        await self.sync(phone, folder, self.change(server_id, (
            "<contacts:FileAs>Martin, Anna</contacts:FileAs><contacts:FirstName>Anna</contacts:FirstName>"
            "<contacts:LastName>Martin-Durand</contacts:LastName>")))
        data = (await self.received(other, folder, "Change"))[server_id]
        self.assertEqual(text(data, "contacts:LastName"), "Martin-Durand")
        self.assertEqual(find(data, "contacts:CompanyName"), [])
        self.assertEqual(find(data, "contacts:Email1Address"), [])
        self.assertEqual(text(data, "contacts:JobTitle"), "Chemist")
        self.assertEqual(text(data, "contacts:MobilePhoneNumber"), "+33 6 12 34 56 78")
        self.assertEqual(text(data, "contacts2:NickName"), "Annie")
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Data"), "Likes tea, not coffee.")

    async def test_calendar_ghosting_in_16(self):
        """A 16.1 calendar Change with only a subject keeps everything else of the series (MS-ASCAL 3.1.5.3)."""
        phone, other, folder, server_id = await self.pair("Calendar", WEEKLY_16, "16.1", "14.1")
        await self.sync(phone, folder, self.change(server_id, "<calendar:Subject>Weekly review</calendar:Subject>"))
        data = (await self.received(other, folder, "Change"))[server_id]
        self.assertEqual(text(data, "calendar:Subject"), "Weekly review")
        self.assertEqual(text(data, "calendar:Location"), "Room 1")
        self.assertEqual(text(data, "calendar:Recurrence/calendar:Occurrences"), "10")
        self.assertEqual(len(find(data, "calendar:Exceptions/calendar:Exception")), 2)
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Data"), "Agenda: numbers.")
        self.assertEqual(text(data, "calendar:UID"), "client-uid-weekly-16")

    async def test_occurrence_change_and_delete_in_16(self):
        """16.1 InstanceId Changes and Deletes edit one occurrence; a 14.1 device gets them as Exceptions."""
        phone, other, folder, server_id = await self.pair("Calendar", WEEKLY_16, "16.1", "14.1")
        moved = ("<calendar:Subject>Later</calendar:Subject><calendar:StartTime>20260409T100000Z</calendar:StartTime>"
                 "<calendar:EndTime>20260409T110000Z</calendar:EndTime>")
        collection = await self.sync(phone, folder, self.change(server_id, moved, "20260409T080000Z")
                                     + f"<Delete><ServerId>{server_id}</ServerId>"
                                     "<airsyncbase:InstanceId>20260416T080000Z</airsyncbase:InstanceId></Delete>")
        self.assertTrue(collection is None or not find(collection, "airsync:Responses"))
        data = (await self.received(other, folder, "Change"))[server_id]
        exceptions = [(text(e, "calendar:Deleted"), text(e, "calendar:ExceptionStartTime"), text(e, "calendar:Subject"))
                      for e in find(data, "calendar:Exceptions/calendar:Exception")]
        self.assertEqual(exceptions, [("1", "20260319T090000Z", None), (None, "20260402T080000Z", "Moved"),
                                      (None, "20260409T080000Z", "Later"), ("1", "20260416T080000Z", None)])
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 1)

    async def test_failures(self):
        """Unknown items are Status 8, unconvertible data Status 6, with the InstanceId echoed."""
        phone, other, folder, server_id = await self.pair("Calendar", WEEKLY_16, "16.1", "14.1")
        bad = "<calendar:StartTime>not a time</calendar:StartTime><calendar:EndTime>x</calendar:EndTime>"
        unknown = f"{folder.id}:999999"
        collection = await self.sync(
            phone, folder,
            self.change(unknown, "<calendar:Subject>x</calendar:Subject>")
            + f"<Delete><ServerId>{unknown}</ServerId><airsyncbase:InstanceId>20260416T080000Z</airsyncbase:InstanceId></Delete>"
            + "<Add><ClientId>bad1</ClientId><ApplicationData>" + bad + "</ApplicationData></Add>",
        )
        change, = find(collection, "airsync:Responses/airsync:Change")
        self.assertEqual([child.tag.split("}")[1] for child in change], ["ServerId", "Status"])
        self.assertEqual(text(change, "airsync:Status"), "8")
        delete, = find(collection, "airsync:Responses/airsync:Delete")
        self.assertEqual([child.tag.split("}")[1] for child in delete], ["ServerId", "InstanceId", "Status"])
        self.assertEqual(text(delete, "airsync:Status"), "8")
        add, = find(collection, "airsync:Responses/airsync:Add")
        self.assertEqual((text(add, "airsync:ClientId"), text(add, "airsync:Status")), ("bad1", "6"))
        self.assertEqual(find(add, "airsync:ServerId"), [])
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 1)


class ResendTests(PimTestCase):
    async def test_resent_add_gets_same_server_id(self):
        """An Add resent with the previous key (its answer was lost) gets the same ServerId and stores nothing."""
        phone = await self.device("PHONE", "14.1")
        folder = self.folders["Contacts"]
        await self.sync(phone, folder)
        key = self.keys[("PHONE", folder.server_id)]
        command = f"<Add><ClientId>c1</ClientId><ApplicationData>{CONTACT}</ApplicationData></Add>"
        first = await self.sync(phone, folder, command, key=key)
        again = await self.sync(phone, folder, command, key=key)
        ids = [text(c, "airsync:Responses/airsync:Add/airsync:ServerId") for c in (first, again)]
        self.assertEqual(ids[0], ids[1])
        self.assertIsNotNone(ids[0])
        self.assertEqual(find(again, "airsync:Commands"), [])
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 1)

    async def test_client_id_reused_in_a_later_request(self):
        """A ClientId used again in a later request (allowed: unique per request) adds a second item."""
        phone = await self.device("PHONE", "14.1")
        folder = self.folders["Contacts"]
        first, _ = await self.add(phone, folder, CONTACT, "1")
        second, _ = await self.add(phone, folder, CONTACT.replace("Anna", "Bruno"), "1")
        self.assertNotEqual(first, second)
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 2)

    async def test_16_event_added_again_by_client_uid(self):
        """A 16.1 event Add whose ClientUid is already in the calendar is that event: same ServerId, no copy."""
        phone = await self.device("PHONE", "16.1")
        tablet = await self.device("TABLET", "16.1")
        folder = self.folders["Calendar"]
        first, _ = await self.add(phone, folder, WEEKLY_16)
        second, response = await self.add(tablet, folder, WEEKLY_16.replace("Room 1", "Room 3"), "t1")
        self.assertEqual(first, second)
        self.assertEqual(text(response, "airsync:ApplicationData/calendar:UID"), "client-uid-weekly-16")
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 1)
        data = (await self.received(phone, folder, "Change"))[first]
        self.assertEqual(text(data, "airsyncbase:Location/airsyncbase:DisplayName"), "Room 3")


def instant(value: str) -> datetime:
    """An EAS date-time in either form (compact or ISO with milliseconds)."""
    for form in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(value, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(value)


class FarZoneTests(PimTestCase):
    """
    All-day events and birthdays stay on their day for clients in UTC-10
    (here with the default zone, UTC).
    """

    zone = "Pacific/Honolulu"
    # 14.1 clients send local midnight as UTC.
    event_start, event_end, birthday = "20261126T100000Z", "20261127T100000Z", "2001-02-28T10:00:00.000Z"

    def event(self) -> str:
        return (f"<calendar:Timezone>{from_zone(self.zone, 2026).to_base64()}</calendar:Timezone>"
                f"<calendar:StartTime>{self.event_start}</calendar:StartTime>"
                f"<calendar:EndTime>{self.event_end}</calendar:EndTime>"
                "<calendar:Subject>Holiday</calendar:Subject><calendar:AllDayEvent>1</calendar:AllDayEvent>")

    def contact(self) -> str:
        return ("<contacts:FirstName>Zoe</contacts:FirstName>"
                f"<contacts:Birthday>{self.birthday}</contacts:Birthday>")

    def local_day(self, value: str) -> date:
        return instant(value).astimezone(ZoneInfo(self.zone)).date()

    def event_day(self, data, name: str) -> date:
        """
        The day a 14.1 client shows an all-day event on: its time read in
        the event's Timezone (MS-ASCAL 2.2.2.1), which must be midnight.
        """
        blob = TimeZoneInfo.from_base64(text(data, "calendar:Timezone"))
        local = instant(text(data, f"calendar:{name}")).astimezone(tzinfo_for(blob, 2026))
        self.assertEqual(local.time(), time(0))
        return local.date()

    async def test_all_day_event(self):
        """An all-day event stays on 26 November for 14.1 clients in the zone and reads 00:00Z in 16.1."""
        phone = await self.device("PHONE", "14.1")
        older = await self.device("OLDER", "14.1")
        newer = await self.device("NEWER", "16.1")
        folder = self.folders["Calendar"]
        for client in (older, newer):
            await self.sync(client, folder)
        server_id, _ = await self.add(phone, folder, self.event())
        old = (await self.received(older, folder))[server_id]
        self.assertEqual(self.event_day(old, "StartTime"), date(2026, 11, 26))
        self.assertEqual(self.event_day(old, "EndTime"), date(2026, 11, 27))
        self.assertEqual(self.local_day(text(old, "calendar:StartTime")), date(2026, 11, 26))
        self.assertEqual(text(old, "calendar:AllDayEvent"), "1")
        new = (await self.received(newer, folder))[server_id]
        self.assertEqual(text(new, "calendar:StartTime"), "20261126T000000Z")
        self.assertEqual(find(new, "calendar:Timezone"), [])

    async def test_all_day_event_from_16(self):
        """A 16.1 all-day event (the date at 00:00Z, no zone) is on 26 November for a 14.1 client in the zone."""
        phone = await self.device("PHONE", "16.1")
        older = await self.device("OLDER", "14.1")
        folder = self.folders["Calendar"]
        await self.sync(older, folder)
        server_id, _ = await self.add(phone, folder, (
            "<calendar:StartTime>20261126T000000Z</calendar:StartTime><calendar:EndTime>20261127T000000Z"
            "</calendar:EndTime><calendar:Subject>Holiday</calendar:Subject><calendar:AllDayEvent>1</calendar:AllDayEvent>"))
        old = (await self.received(older, folder))[server_id]
        self.assertEqual(self.event_day(old, "StartTime"), date(2026, 11, 26))

    async def test_birthday(self):
        """A birthday stays on 28 February for clients in the zone, Android ones included (UTC midnight)."""
        phone = await self.device("PHONE", "14.1")
        older = await self.device("OLDER", "14.1")
        newer = await self.device("NEWER", "16.1")
        android = await self.device("ANDROID", "14.1", device_type="Android", user_agent="Android-Mail/2023.10.1")
        folder = self.folders["Contacts"]
        for client in (older, newer, android):
            await self.sync(client, folder)
        server_id, _ = await self.add(phone, folder, self.contact())
        for client in (older, newer):
            data = (await self.received(client, folder))[server_id]
            self.assertEqual(self.local_day(text(data, "contacts:Birthday")), date(2001, 2, 28), client.device_id)
        data = (await self.received(android, folder))[server_id]
        self.assertEqual(text(data, "contacts:Birthday"), "2001-02-28T00:00:00.000Z")


class FarEastZoneTests(FarZoneTests):
    """
    The same for clients in UTC+14, with the users' zone configured
    ([server] default_timezone): midnight there is 10:00Z the day before.
    (Kiritimati is UTC+14 since 1995, hence birthdays of 2001.)
    """

    config_text = "[server]\ndefault_timezone = Pacific/Kiritimati\n"
    zone = "Pacific/Kiritimati"
    event_start, event_end, birthday = "20261125T100000Z", "20261126T100000Z", "2001-02-27T10:00:00.000Z"


def compact(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class FilterTypeTests(PimTestCase):
    def event(self, subject: str, start: datetime, hours: int = 1, recurrence: str = "") -> str:
        return (f"<calendar:Timezone>{PARIS}</calendar:Timezone><calendar:StartTime>{compact(start)}</calendar:StartTime>"
                f"<calendar:EndTime>{compact(start + timedelta(hours=hours))}</calendar:EndTime>"
                f"<calendar:Subject>{subject}</calendar:Subject>{recurrence}")

    def subjects(self, received: dict) -> set[str]:
        return {text(data, "calendar:Subject") or text(data, "tasks:Subject") for data in received.values()}

    async def test_calendar(self):
        """Calendar FilterType keeps events still running; widening and narrowing it adds and soft-deletes."""
        now = datetime.now(UTC).replace(microsecond=0)
        weekly = ("<calendar:Recurrence><calendar:Type>1</calendar:Type>{}<calendar:Interval>1</calendar:Interval>"
                  "<calendar:DayOfWeek>{}</calendar:DayOfWeek></calendar:Recurrence>")
        start = now - timedelta(days=400)
        weekday = 1 << ((start.astimezone(ZoneInfo("Europe/Paris")).isoweekday()) % 7)
        ended_start = now - timedelta(days=200)
        ended_day = 1 << ((ended_start.astimezone(ZoneInfo("Europe/Paris")).isoweekday()) % 7)
        phone = await self.device("PHONE", "14.1")
        folder = self.folders["Calendar"]
        ids = {}
        for subject, data in (
            ("past", self.event("past", now - timedelta(days=60))),
            ("recent", self.event("recent", now - timedelta(days=3))),
            ("future", self.event("future", now + timedelta(days=10))),
            ("endless", self.event("endless", start, recurrence=weekly.format("", weekday))),
            ("ended series", self.event("ended series", ended_start, recurrence=weekly.format(
                "<calendar:Occurrences>5</calendar:Occurrences>", ended_day))),
        ):
            ids[subject], _ = await self.add(phone, folder, data, subject.replace(" ", ""))
        tablet = await self.device("TABLET", "16.1")
        two_weeks = "<FilterType>4</FilterType>" + PLAIN
        received = await self.received(tablet, folder, options=two_weeks)
        self.assertEqual(self.subjects(received), {"recent", "future", "endless"})
        received = await self.received(tablet, folder, options="<FilterType>0</FilterType>" + PLAIN)
        self.assertEqual(self.subjects(received), {"past", "ended series"})
        collection = await self.sync(tablet, folder, options=two_weeks)
        gone = {text(e, "airsync:ServerId") for e in find(collection, "airsync:Commands/airsync:SoftDelete")}
        self.assertEqual(gone, {ids["past"], ids["ended series"]})
        # Moved into the past on the phone: out of the tablet's window.
        await self.sync(phone, folder, f"<Change><ServerId>{ids['future']}</ServerId><ApplicationData>"
                                       + self.event("future", now - timedelta(days=30)) + "</ApplicationData></Change>")
        self.assertEqual(set(await self.received(tablet, folder, "SoftDelete", options=two_weeks)), {ids["future"]})

    async def test_incomplete_tasks(self):
        """Tasks FilterType 8 leaves completed tasks out; a task completed elsewhere is soft-deleted."""
        phone = await self.device("PHONE", "14.1")
        folder = self.folders["Tasks"]
        open_task, _ = await self.add(phone, folder, TASK, "t1")
        done = TASK.replace("Prepare the review", "Book the room").replace(
            "<tasks:Complete>0</tasks:Complete>",
            "<tasks:Complete>1</tasks:Complete><tasks:DateCompleted>2026-11-20T10:00:00.000Z</tasks:DateCompleted>")
        await self.add(phone, folder, done, "t2")
        tablet = await self.device("TABLET", "16.1")
        incomplete = "<FilterType>8</FilterType>" + PLAIN
        self.assertEqual(self.subjects(await self.received(tablet, folder, options=incomplete)),
                         {"Prepare the review"})
        completed = TASK.replace("<tasks:Complete>0</tasks:Complete>",
                                 "<tasks:Complete>1</tasks:Complete>"
                                 "<tasks:DateCompleted>2026-11-25T10:00:00.000Z</tasks:DateCompleted>")
        await self.sync(phone, folder, f"<Change><ServerId>{open_task}</ServerId><ApplicationData>{completed}"
                                       "</ApplicationData></Change>")
        self.assertEqual(set(await self.received(tablet, folder, "SoftDelete", options=incomplete)), {open_task})
        everything = await self.received(tablet, folder, options="<FilterType>0</FilterType>" + PLAIN)
        self.assertEqual(self.subjects(everything), {"Prepare the review", "Book the room"})


class PushTests(PimTestCase):
    config_text = "[push]\nmin_heartbeat = 1\nmax_heartbeat = 900\n"

    async def test_contact_wakes_other_device(self):
        """A contact added by one device answers another device's Ping on the Contacts folder."""
        phone = await self.device("PHONE", "16.1")
        tablet = await self.device("TABLET", "14.1")
        folder = self.folders["Contacts"]
        answer = await tablet.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        self.assertEqual(text(answer.document, "//folderhierarchy:Status"), "1")
        await self.sync(tablet, folder)
        await self.sync(phone, folder)
        ping = defer.ensureDeferred(tablet.post(
            "Ping", f'<Ping xmlns="Ping:"><HeartbeatInterval>300</HeartbeatInterval><Folders><Folder>'
                    f"<Id>{folder.server_id}</Id><Class>Contacts</Class></Folder></Folders></Ping>"))
        await until(lambda: self.notifier.held_count() == 1, "a held Ping")
        server_id, _ = await self.add(phone, folder, CONTACT)
        answer = await ping
        self.assertEqual(text(answer.document, "/ping:Ping/ping:Status"), "2")
        self.assertEqual([e.text for e in find(answer.document, "/ping:Ping/ping:Folders/ping:Folder")],
                         [folder.server_id])
        self.assertEqual(list(await self.received(tablet, folder)), [server_id])

"""
Sync and GetItemEstimate end to end: WBXML over TCP to the real Site, on a
real PostgreSQL, with mail stored through the same path LMTP uses.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bluesync.mail.delivery import new_email_item
from bluesync.store import folders as F
from tests.eas.client import EASClient, find, text
from tests.support import SiteTestCase

DATA = Path(__file__).resolve().parent.parent / "items" / "data"


def message(number: int, subject: str | None = None, days_old: int = 0) -> bytes:
    date = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc) - timedelta(days=days_old)
    return (
        f"From: Bob Example <bob@example.net>\r\nTo: Alice <alice@example.org>\r\n"
        f"Subject: {subject or f'Message {number}'}\r\nDate: {date:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Message-ID: <m{number}@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Body of message {number}.\r\n"
    ).encode()


def sync_request(collection_id: str, key: str, window: int | None = None, options: str = "",
                 commands: str = "", extra: str = "") -> str:
    window_xml = f"<WindowSize>{window}</WindowSize>" if window else ""
    return (
        '<Sync xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:"><Collections><Collection>'
        f"<SyncKey>{key}</SyncKey><CollectionId>{collection_id}</CollectionId>{extra}{window_xml}"
        f"{('<Options>' + options + '</Options>') if options else ''}"
        f"{('<Commands>' + commands + '</Commands>') if commands else ''}"
        "</Collection></Collections></Sync>"
    )


PLAIN = "<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type></airsyncbase:BodyPreference>"


class SyncTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account()
        self.inbox = await self.store.folders.by_type(self.account.id, F.INBOX)
        self.client = self.client_for("DEVICEA")

    def client_for(self, device_id: str, version: str = "16.1", user="alice@example.org", password="correct horse"):
        return EASClient(self.base_url, user, password, device_id=device_id, version=version, pool=self.pool)

    async def deliver(self, raw: bytes, account=None, folder=None, received=None):
        account = account or self.account
        folder = folder or self.inbox
        new = new_email_item(raw, received or datetime.now(timezone.utc))
        (item_id,) = await self.store.items.deliver([(account.id, folder.id)], new)
        return item_id

    async def prepare(self, client):
        await client.provision()

    async def sync(self, client, collection_id, key, **kwargs):
        answer = await client.post("Sync", sync_request(collection_id, key, **kwargs))
        self.assertEqual(answer.code, 200, answer)
        return answer

    async def first_key(self, client, collection_id=None, options=PLAIN):
        await self.prepare(client)
        answer = await self.sync(client, collection_id or self.inbox.server_id, "0", options=options)
        collection = find(answer.document, "//airsync:Collection")[0]
        self.assertEqual(text(collection, "airsync:Status"), "1")
        self.assertEqual(find(collection, "airsync:Commands"), [])
        return text(collection, "airsync:SyncKey")


def server_ids(answer, kind="Add"):
    return [text(e, "airsync:ServerId") for e in find(answer.document, f"//airsync:Commands/airsync:{kind}")]


class InitialSyncTests(SyncTestCase):
    async def test_windowed_initial_sync(self):
        """30 messages arrive in three windows of 10 with MoreAvailable, then nothing more."""
        for number in range(30):
            await self.deliver(message(number))
        key = await self.first_key(self.client)
        seen = []
        for round_trip in range(3):
            answer = await self.sync(self.client, self.inbox.server_id, key, window=10, options=PLAIN)
            adds = server_ids(answer)
            self.assertEqual(len(adds), 10)
            seen += adds
            more = find(answer.document, "//airsync:Collection/airsync:MoreAvailable")
            self.assertEqual(bool(more), round_trip < 2)
            key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        self.assertEqual(len(set(seen)), 30)
        subjects = {text(e, "airsync:ApplicationData/email:Subject") for e in find(answer.document, "//airsync:Add")}
        self.assertEqual(subjects, {f"Message {n}" for n in range(20, 30)})
        final = await self.client.post("Sync", sync_request(self.inbox.server_id, key, window=10))
        self.assertEqual((final.code, final.body), (200, b""))

    async def test_new_mail_between_syncs(self):
        """A message delivered after a Sync shows up in the next one."""
        key = await self.first_key(self.client)
        answer = await self.sync(self.client, self.inbox.server_id, key)
        self.assertEqual(answer.body, b"")
        await self.deliver(message(1, "Fresh news"))
        answer = await self.sync(self.client, self.inbox.server_id, key)
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"), "Fresh news")

    async def test_previous_key_resend(self):
        """Resending the previous key returns the same items with the same ServerIds."""
        for number in range(3):
            await self.deliver(message(number))
        key = await self.first_key(self.client)
        first = await self.sync(self.client, self.inbox.server_id, key)
        again = await self.sync(self.client, self.inbox.server_id, key)
        self.assertEqual(server_ids(first), server_ids(again))
        self.assertEqual(len(server_ids(first)), 3)
        self.assertEqual(
            text(first.document, "//airsync:Collection/airsync:SyncKey"),
            text(again.document, "//airsync:Collection/airsync:SyncKey"),
        )

    async def test_invalid_key(self):
        """An unknown sync key gets Status 3 and key 0."""
        await self.prepare(self.client)
        answer = await self.sync(self.client, self.inbox.server_id, "deadbeef42")
        self.assertEqual(text(answer.document, "//airsync:Collection/airsync:Status"), "3")
        self.assertEqual(text(answer.document, "//airsync:Collection/airsync:SyncKey"), "0")

    async def test_foreign_collection(self):
        """Another account's folder is answered exactly like a folder that does not exist."""
        other = await self.create_account("bob@example.org", "another secret")
        other_inbox = await self.store.folders.by_type(other.id, F.INBOX)
        await self.deliver(message(1, "private"), account=other, folder=other_inbox)
        await self.prepare(self.client)
        foreign = await self.sync(self.client, other_inbox.server_id, "0")
        missing = await self.sync(self.client, "999999", "0")
        self.assertEqual(text(foreign.document, "//airsync:Collection/airsync:Status"), "12")
        self.assertEqual(
            [e.tag for e in foreign.document.iter()], [e.tag for e in missing.document.iter()]
        )
        self.assertNotIn(b"private", foreign.body)

    async def test_version_12_1_class(self):
        """A 12.1 response names the collection's Class before its SyncKey."""
        client = self.client_for("OLDPHONE", version="12.1")
        await self.prepare(client)
        answer = await self.sync(client, self.inbox.server_id, "0")
        collection = find(answer.document, "//airsync:Collection")[0]
        self.assertEqual([child.tag for child in collection][:2], ["{AirSync:}Class", "{AirSync:}SyncKey"])
        self.assertEqual(text(collection, "airsync:Class"), "Email")

    async def test_empty_request_reuses_last(self):
        """An empty Sync (14.0+) repeats the last request's collections with the current keys."""
        key = await self.first_key(self.client)
        await self.sync(self.client, self.inbox.server_id, key)
        await self.deliver(message(7, "Via empty sync"))
        answer = await self.client.post("Sync", body=b"")
        self.assertEqual(answer.code, 200)
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"), "Via empty sync")

    async def test_partial_request_merges_cached_collections(self):
        """A Partial Sync naming only Contacts also answers the Inbox of the last full request, at its current key
        (MS-ASCMD 2.2.3.130)."""
        inbox_key = await self.first_key(self.client)
        contacts = await self.store.folders.by_type(self.account.id, F.CONTACTS)
        contacts_key = await self.first_key(self.client, contacts.server_id, options="")
        both = ('<Sync xmlns="AirSync:"><Collections>'
                f"<Collection><SyncKey>{inbox_key}</SyncKey><CollectionId>{self.inbox.server_id}</CollectionId>"
                "</Collection>"
                f"<Collection><SyncKey>{contacts_key}</SyncKey><CollectionId>{contacts.server_id}</CollectionId>"
                "</Collection></Collections></Sync>")
        answer = await self.client.post("Sync", both)
        self.assertEqual(answer.body, b"")
        await self.deliver(message(3, "Via partial sync"))
        partial = ('<Sync xmlns="AirSync:"><Collections>'
                   f"<Collection><SyncKey>{contacts_key}</SyncKey><CollectionId>{contacts.server_id}</CollectionId>"
                   "</Collection></Collections><Partial/></Sync>")
        answer = await self.client.post("Sync", partial)
        self.assertEqual(answer.code, 200)
        collections = {text(c, "airsync:CollectionId"): c for c in find(answer.document, "//airsync:Collection")}
        self.assertEqual(find(collections[contacts.server_id], "airsync:Commands"), [])
        self.assertEqual(
            text(collections[self.inbox.server_id], "airsync:Commands/airsync:Add/airsync:ApplicationData/email:Subject"),
            "Via partial sync")

    async def test_empty_request_without_history(self):
        """An empty Sync with nothing to repeat gets Status 13."""
        await self.prepare(self.client)
        answer = await self.client.post("Sync", body=b"")
        self.assertEqual(text(answer.document, "/airsync:Sync/airsync:Status"), "13")

    async def test_filter_type(self):
        """FilterType 1 (one day) leaves older mail out; widening it brings the older mail."""
        now = datetime.now(timezone.utc)
        await self.deliver(message(1, "recent"), received=now - timedelta(hours=2))
        await self.deliver(message(2, "old"), received=now - timedelta(days=10))
        one_day = "<FilterType>1</FilterType>" + PLAIN
        key = await self.first_key(self.client, options=one_day)
        answer = await self.sync(self.client, self.inbox.server_id, key, options=one_day)
        subjects = [text(e, "airsync:ApplicationData/email:Subject") for e in find(answer.document, "//airsync:Add")]
        self.assertEqual(subjects, ["recent"])
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        all_mail = "<FilterType>0</FilterType>" + PLAIN
        answer = await self.sync(self.client, self.inbox.server_id, key, options=all_mail)
        subjects = [text(e, "airsync:ApplicationData/email:Subject") for e in find(answer.document, "//airsync:Add")]
        self.assertEqual(subjects, ["old"])
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        answer = await self.sync(self.client, self.inbox.server_id, key, options=one_day)
        self.assertEqual(len(server_ids(answer, "SoftDelete")), 1)


class BodyTests(SyncTestCase):
    async def fetch_first(self, raw: bytes, options: str):
        await self.deliver(raw)
        key = await self.first_key(self.client, options=options)
        answer = await self.sync(self.client, self.inbox.server_id, key, options=options)
        return find(answer.document, "//airsync:Add/airsync:ApplicationData")[0]

    async def test_plain_truncated(self):
        """TruncationSize cuts the plain body and marks it Truncated with the full size."""
        raw = message(1).replace(b"Body of message 1.", "é".encode() * 100)
        options = ("<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type>"
                   "<airsyncbase:TruncationSize>51</airsyncbase:TruncationSize></airsyncbase:BodyPreference>")
        data = await self.fetch_first(raw, options)
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Type"), "1")
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Truncated"), "1")
        body = text(data, "airsyncbase:Body/airsyncbase:Data")
        self.assertEqual(body, "é" * 25)
        self.assertGreaterEqual(int(text(data, "airsyncbase:Body/airsyncbase:EstimatedDataSize")), 200)

    async def test_html_only_as_plain(self):
        """An HTML-only message asked for as plain text comes back as readable text."""
        data = await self.fetch_first((DATA / "html_only.eml").read_bytes(), PLAIN)
        body = text(data, "airsyncbase:Body/airsyncbase:Data")
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Type"), "1")
        self.assertIn("Bonjour à tous", body)
        self.assertNotIn("<p", body)
        self.assertNotIn("<br", body)

    async def test_html_preference(self):
        """A client asking for HTML gets the HTML part."""
        options = "<airsyncbase:BodyPreference><airsyncbase:Type>2</airsyncbase:Type></airsyncbase:BodyPreference>"
        data = await self.fetch_first((DATA / "alternative.eml").read_bytes(), options)
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Type"), "2")
        self.assertIn("<", text(data, "airsyncbase:Body/airsyncbase:Data"))

    async def test_mime(self):
        """MIME (Type 4 with MIMESupport 2) returns the stored message."""
        raw = message(1, "mime please")
        options = ("<MIMESupport>2</MIMESupport>"
                   "<airsyncbase:BodyPreference><airsyncbase:Type>4</airsyncbase:Type></airsyncbase:BodyPreference>")
        data = await self.fetch_first(raw, options)
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Type"), "4")
        self.assertEqual(text(data, "airsyncbase:Body/airsyncbase:Data").replace("\n", "\r\n").replace("\r\r", "\r"),
                         raw.decode())

    async def test_attachments_listed(self):
        """Attachments are listed with FileReference, name and size."""
        data = await self.fetch_first((DATA / "attachments.eml").read_bytes(), PLAIN)
        names = [text(a, "airsyncbase:DisplayName") for a in find(data, "airsyncbase:Attachments/airsyncbase:Attachment")]
        self.assertEqual(names, ["logo.png", "Rechnung März.pdf", "Original request.eml"])
        references = [text(a, "airsyncbase:FileReference") for a in find(data, "airsyncbase:Attachments/airsyncbase:Attachment")]
        self.assertTrue(all(r and r.count(":") == 2 for r in references))

    async def test_non_ascii_subject(self):
        """RFC 2047 subjects arrive decoded."""
        raw = message(1).replace(b"Subject: Message 1", b"Subject: =?utf-8?b?w4l0w6kg4pyI77iP?=")
        data = await self.fetch_first(raw, PLAIN)
        self.assertEqual(text(data, "email:Subject"), "Été ✈️")


class ClientChangeTests(SyncTestCase):
    async def synced(self, client):
        key = await self.first_key(client)
        answer = await self.sync(client, self.inbox.server_id, key)
        if not answer.body:
            return key, []
        return text(answer.document, "//airsync:Collection/airsync:SyncKey"), server_ids(answer)

    async def test_read_flag_reaches_other_device_only(self):
        """A read change from one device reaches the other, and is not echoed to its author."""
        await self.deliver(message(1))
        other = self.client_for("DEVICEB")
        key_a, (server_id,) = await self.synced(self.client)
        key_b, _ = await self.synced(other)
        change = (f"<Change><ServerId>{server_id}</ServerId><ApplicationData>"
                  "<email:Read>1</email:Read></ApplicationData></Change>")
        answer = await self.sync(self.client, self.inbox.server_id, key_a, commands=change)
        self.assertEqual(find(answer.document, "//airsync:Responses"), [])
        key_a = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        echo = await self.client.post("Sync", sync_request(self.inbox.server_id, key_a))
        self.assertEqual(echo.body, b"")
        seen = await self.sync(other, self.inbox.server_id, key_b)
        self.assertEqual(server_ids(seen, "Change"), [server_id])
        self.assertEqual(text(seen.document, "//airsync:Change/airsync:ApplicationData/email:Read"), "1")

    async def test_flag_and_categories_reach_other_device(self):
        """A Flag with its task fields and Categories set on one device reach the other device field for field;
        a flag Status outside 0-2 is refused with Status 6 and changes nothing."""
        await self.deliver(message(1))
        other = self.client_for("DEVICEB")
        key_a, (server_id,) = await self.synced(self.client)
        key_b, _ = await self.synced(other)
        flag = ("<email:Flag><email:Status>2</email:Status><email:FlagType>Follow up</email:FlagType>"
                "<tasks:StartDate>2026-12-01T00:00:00.000Z</tasks:StartDate>"
                "<tasks:UtcStartDate>2026-12-01T00:00:00.000Z</tasks:UtcStartDate>"
                "<tasks:DueDate>2026-12-03T00:00:00.000Z</tasks:DueDate>"
                "<tasks:UtcDueDate>2026-12-03T00:00:00.000Z</tasks:UtcDueDate>"
                "<tasks:ReminderSet>1</tasks:ReminderSet>"
                "<tasks:ReminderTime>2026-12-02T08:00:00.000Z</tasks:ReminderTime></email:Flag>")
        change = (f'<Change><ServerId>{server_id}</ServerId><ApplicationData xmlns:tasks="Tasks:">{flag}'
                  "<email:Categories><email:Category>Work</email:Category><email:Category>Blue</email:Category>"
                  "</email:Categories></ApplicationData></Change>")
        answer = await self.sync(self.client, self.inbox.server_id, key_a, commands=change)
        self.assertEqual(find(answer.document, "//airsync:Responses"), [])
        key_a = text(answer.document, "//airsync:Collection/airsync:SyncKey")

        seen = await self.sync(other, self.inbox.server_id, key_b)
        key_b = text(seen.document, "//airsync:Collection/airsync:SyncKey")
        data = "//airsync:Change/airsync:ApplicationData"
        self.assertEqual(text(seen.document, f"{data}/email:Flag/email:Status"), "2")
        self.assertEqual(text(seen.document, f"{data}/email:Flag/email:FlagType"), "Follow up")
        self.assertEqual(text(seen.document, f"{data}/email:Flag/tasks:DueDate"), "2026-12-03T00:00:00.000Z")
        self.assertEqual(text(seen.document, f"{data}/email:Flag/tasks:ReminderTime"), "2026-12-02T08:00:00.000Z")
        self.assertEqual([c.text for c in find(seen.document, f"{data}/email:Categories/email:Category")],
                         ["Work", "Blue"])

        bad = (f'<Change><ServerId>{server_id}</ServerId><ApplicationData>'
               "<email:Flag><email:Status>99999999999999999999</email:Status></email:Flag></ApplicationData></Change>")
        answer = await self.sync(self.client, self.inbox.server_id, key_a, commands=bad)
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Change/airsync:Status"), "6")
        unchanged = await other.post("Sync", sync_request(self.inbox.server_id, key_b))
        self.assertEqual(unchanged.body, b"")

    async def test_delete_as_move(self):
        """A Delete with DeletesAsMoves moves the message to Deleted Items."""
        await self.deliver(message(1, "to the bin"))
        key, (server_id,) = await self.synced(self.client)
        answer = await self.sync(self.client, self.inbox.server_id, key,
                                 commands=f"<Delete><ServerId>{server_id}</ServerId></Delete>",
                                 extra="<DeletesAsMoves>1</DeletesAsMoves>")
        self.assertEqual(find(answer.document, "//airsync:Responses"), [])
        trash = await self.store.folders.by_type(self.account.id, F.DELETED_ITEMS)
        key = await self.first_key(self.client, trash.server_id)
        answer = await self.sync(self.client, trash.server_id, key)
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"), "to the bin")
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 0)

    async def test_change_unknown_item(self):
        """A Change for an item that does not exist gets Status 8."""
        key, _ = await self.synced(self.client)
        change = "<Change><ServerId>1:999999</ServerId><ApplicationData><email:Read>1</email:Read></ApplicationData></Change>"
        answer = await self.sync(self.client, self.inbox.server_id, key, commands=change)
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Change/airsync:Status"), "8")

    async def test_fetch(self):
        """Fetch returns the full item in Responses."""
        await self.deliver(message(1, "fetched"))
        key, (server_id,) = await self.synced(self.client)
        answer = await self.sync(self.client, self.inbox.server_id, key,
                                 commands=f"<Fetch><ServerId>{server_id}</ServerId></Fetch>", options=PLAIN)
        self.assertEqual(
            text(answer.document, "//airsync:Responses/airsync:Fetch/airsync:ApplicationData/email:Subject"), "fetched"
        )


class EstimateTests(SyncTestCase):
    async def test_estimate(self):
        """GetItemEstimate counts pending changes without consuming the key."""
        key = await self.first_key(self.client)
        for number in range(4):
            await self.deliver(message(number))
        request = ('<GetItemEstimate xmlns="GetItemEstimate:" xmlns:airsync="AirSync:"><Collections><Collection>'
                   f"<airsync:SyncKey>{key}</airsync:SyncKey><CollectionId>{self.inbox.server_id}</CollectionId>"
                   "</Collection></Collections></GetItemEstimate>")
        answer = await self.client.post("GetItemEstimate", request)
        self.assertEqual(text(answer.document, "//getitemestimate:Status"), "1")
        self.assertEqual(text(answer.document, "//getitemestimate:Estimate"), "4")
        synced = await self.sync(self.client, self.inbox.server_id, key)
        self.assertEqual(len(server_ids(synced)), 4)

    async def test_estimate_statuses(self):
        """Key 0 is 'not primed' (3), an unknown key 4, a foreign folder 2."""
        await self.prepare(self.client)
        for key, collection, status in (("0", self.inbox.server_id, "3"), ("abcdefgh9", self.inbox.server_id, "4"),
                                        ("0", "999999", "2")):
            request = ('<GetItemEstimate xmlns="GetItemEstimate:" xmlns:airsync="AirSync:"><Collections><Collection>'
                       f"<airsync:SyncKey>{key}</airsync:SyncKey><CollectionId>{collection}</CollectionId>"
                       "</Collection></Collections></GetItemEstimate>")
            answer = await self.client.post("GetItemEstimate", request)
            self.assertEqual(text(answer.document, "//getitemestimate:Status"), status)


class SyncWaitTests(SyncTestCase):
    config_text = "[push]\nmin_heartbeat = 1\n"

    async def test_wait_answered_by_new_mail(self):
        """A Sync with HeartbeatInterval is held and answered with the message delivered meanwhile."""
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
        from twisted.internet.task import deferLater

        key = await self.first_key(self.client)
        request = sync_request(self.inbox.server_id, key).replace(
            "</Collections>", "</Collections><HeartbeatInterval>30</HeartbeatInterval>")
        pending = Deferred.fromCoroutine(self.client.post("Sync", request))
        await deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(pending.called)
        self.assertEqual(self.notifier.held_count(), 1)
        await self.deliver(message(5, "pushed by sync"))
        answer = await pending
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"), "pushed by sync")
        self.assertEqual(self.notifier.held_count(), 0)

    async def test_wait_expires_empty(self):
        """With no change the held Sync ends with an empty response when the interval ends."""
        key = await self.first_key(self.client)
        request = sync_request(self.inbox.server_id, key).replace(
            "</Collections>", "</Collections><HeartbeatInterval>1</HeartbeatInterval>")
        answer = await self.client.post("Sync", request)
        self.assertEqual((answer.code, answer.body), (200, b""))
        self.assertEqual(self.notifier.held_count(), 0)

    async def test_wait_limits(self):
        """Wait and HeartbeatInterval outside their bounds get Status 14 with the Limit."""
        key = await self.first_key(self.client)
        for element, limit in (("<Wait>90</Wait>", "59"), ("<HeartbeatInterval>5000</HeartbeatInterval>", "3540")):
            request = sync_request(self.inbox.server_id, key).replace("</Collections>", "</Collections>" + element)
            answer = await self.client.post("Sync", request)
            self.assertEqual(text(answer.document, "/airsync:Sync/airsync:Status"), "14")
            self.assertEqual(text(answer.document, "/airsync:Sync/airsync:Limit"), limit)


class ConflictTests(SyncTestCase):
    async def synced(self, client, options=PLAIN):
        key = await self.first_key(client, options=options)
        answer = await self.sync(client, self.inbox.server_id, key, options=options)
        return text(answer.document, "//airsync:Collection/airsync:SyncKey"), server_ids(answer)

    async def test_server_wins(self):
        """With Conflict 1 a change to an item changed on the server since the state is refused with Status 7."""
        await self.deliver(message(1))
        other = self.client_for("DEVICEB")
        key_a, (server_id,) = await self.synced(self.client)
        key_b, _ = await self.synced(other)
        read = (f"<Change><ServerId>{server_id}</ServerId><ApplicationData>"
                "<email:Read>1</email:Read></ApplicationData></Change>")
        await self.sync(other, self.inbox.server_id, key_b, commands=read)
        unread = read.replace("<email:Read>1<", "<email:Read>0<")
        answer = await self.sync(self.client, self.inbox.server_id, key_a, commands=unread,
                                 options="<Conflict>1</Conflict>" + PLAIN)
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Change/airsync:Status"), "7")
        self.assertEqual(text(answer.document, "//airsync:Commands/airsync:Change/airsync:ApplicationData/email:Read"), "1")
        item = (await self.store.items.get_many(self.account.id, [int(server_id.split(":")[1])])).popitem()[1]
        self.assertTrue(item.read)

    async def test_client_wins(self):
        """With Conflict 0 the device's change is applied over the server's."""
        await self.deliver(message(1))
        other = self.client_for("DEVICEB")
        key_a, (server_id,) = await self.synced(self.client)
        key_b, _ = await self.synced(other)
        read = (f"<Change><ServerId>{server_id}</ServerId><ApplicationData>"
                "<email:Read>1</email:Read></ApplicationData></Change>")
        await self.sync(other, self.inbox.server_id, key_b, commands=read)
        unread = read.replace("<email:Read>1<", "<email:Read>0<")
        answer = await self.sync(self.client, self.inbox.server_id, key_a, commands=unread,
                                 options="<Conflict>0</Conflict>" + PLAIN)
        self.assertEqual(find(answer.document, "//airsync:Responses/airsync:Change"), [])
        item = (await self.store.items.get_many(self.account.id, [int(server_id.split(":")[1])])).popitem()[1]
        self.assertFalse(item.read)

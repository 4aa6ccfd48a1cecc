"""
Find (protocol 16.1) end to end: WBXML over TCP to the real Site, on a
provisioned device, with mail delivered over the real LMTP listener or by
the same delivery path, and accounts from the store.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from lxml import etree

from bluesync.mail.delivery import new_email_item
from bluesync.store import folders as F
from tests.eas.client import EASClient, find, text
from tests.mail.lmtpclient import LMTPServer
from tests.support import SiteTestCase

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
NAMESPACES = 'xmlns="Find:" xmlns:airsync="AirSync:"'


def message(subject: str, body: str = "Nothing to say.", *, sender: str = "Bob Example <bob@example.net>",
            headers: str = "", attachment: bool = False) -> bytes:
    head = (f"From: {sender}\r\nTo: Alice Martin <alice@example.org>\r\n{headers}Subject: {subject}\r\n"
            "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n")
    if not attachment:
        return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"{body}\r\n").encode("utf-8")
    return (head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n"
            '--b1\r\nContent-Type: application/pdf; name="plan.pdf"\r\n'
            'Content-Disposition: attachment; filename="plan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            "JVBERi0xLjQK\r\n--b1--\r\n").encode("utf-8")


def mailbox_find(free_text: str, *, collection: str | None = None, range_: str | None = "0-9",
                 deep: bool = False, search_id: str | None = None, klass: str = "Email") -> str:
    collection_xml = f"<airsync:CollectionId>{collection}</airsync:CollectionId>" if collection is not None else ""
    range_xml = f"<Range>{range_}</Range>" if range_ is not None else ""
    options = f"<Options>{range_xml}{'<DeepTraversal/>' if deep else ''}</Options>"
    return (f"<Find {NAMESPACES}><SearchId>{search_id or uuid.uuid4()}</SearchId><ExecuteSearch>"
            f"<MailBoxSearchCriterion><Query><airsync:Class>{klass}</airsync:Class>{collection_xml}"
            f"<FreeText>{free_text}</FreeText></Query>{options}</MailBoxSearchCriterion>"
            "</ExecuteSearch></Find>")


def gal_find(query: str, range_: str = "0-9", search_id: str | None = None, picture: bool = False) -> str:
    picture_xml = "<Picture><MaxSize>4096</MaxSize><MaxPictures>3</MaxPictures></Picture>" if picture else ""
    return (f"<Find {NAMESPACES}><SearchId>{search_id or uuid.uuid4()}</SearchId><ExecuteSearch>"
            f"<GALSearchCriterion><Query>{query}</Query><Options><Range>{range_}</Range>{picture_xml}</Options>"
            "</GALSearchCriterion></ExecuteSearch></Find>")


def response_status(answer) -> str | None:
    return text(answer.document, "/find:Find/find:Response/find:Status")


def subjects(answer) -> list[str]:
    return [text(result, "find:Properties/email:Subject") for result in find(answer.document, "//find:Result")]


class FindTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account(name="Alice Martin")
        self.inbox = await self.store.folders.by_type(self.account.id, F.INBOX)
        self.client = await self.provisioned("alice@example.org", "correct horse")

    async def provisioned(self, user: str, password: str, version: str = "16.1", device_id: str = "TESTDEVICE1"):
        client = EASClient(self.base_url, user, password, version=version, pool=self.pool, device_id=device_id)
        await client.provision()
        return client

    async def store_mail(self, raw: bytes, folder=None, account=None, received=NOW) -> int:
        account = account or self.account
        folder = folder or await self.store.folders.by_type(account.id, F.INBOX)
        (item_id,) = await self.store.items.deliver([(account.id, folder.id)], new_email_item(raw, received))
        return item_id

    async def find(self, document: str, client: EASClient | None = None, status: str = "1"):
        answer = await (client or self.client).post("Find", document)
        self.assertEqual(answer.code, 200, answer)
        self.assertEqual(text(answer.document, "/find:Find/find:Status"), status, answer)
        return answer

    async def found(self, document: str, client: EASClient | None = None) -> list[str]:
        answer = await self.find(document, client)
        self.assertEqual(response_status(answer), "1", answer)
        return subjects(answer)


class LMTPDeliveryTests(FindTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.lmtp = LMTPServer(self, self.store, self.config.mail)

    async def lmtp_deliver(self, raw: bytes) -> None:
        self.assertEqual(await self.lmtp.deliver(raw), {})

    async def test_subject_and_body_words(self):
        """Mail delivered over LMTP is found by a subject word and by a body word, with its ServerId."""
        await self.lmtp_deliver(message("Quarterly budget", body="Numbers inside."))
        await self.lmtp_deliver(message("Lunch", body="Bring the budget figures."))
        await self.lmtp_deliver(message("Holidays", body="Nothing about money."))
        answer = await self.find(mailbox_find("budget"))
        self.assertEqual(response_status(answer), "1")
        self.assertEqual(text(answer.document, "/find:Find/find:Response/itemoperations:Store"), "Mailbox")
        self.assertEqual(sorted(subjects(answer)), ["Lunch", "Quarterly budget"])
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "2")
        self.assertEqual(text(answer.document, "//find:Response/find:Range"), "0-1")
        self.assertEqual(await self.found(mailbox_find("figures")), ["Lunch"])
        self.assertEqual(await self.found(mailbox_find("inside")), ["Quarterly budget"])
        items = {item.summary["subject"]: item for item in await self.store.items.folder_items(self.account.id,
                                                                                               self.inbox.id)}
        for result in find(answer.document, "//find:Result"):
            self.assertEqual([etree.QName(child).localname for child in result],
                             ["Class", "ServerId", "CollectionId", "Properties"])
            item = items[text(result, "find:Properties/email:Subject")]
            self.assertEqual(text(result, "airsync:Class"), "Email")
            self.assertEqual(text(result, "airsync:ServerId"), item.server_id)
            self.assertEqual(text(result, "airsync:CollectionId"), str(self.inbox.id))


class MailboxFindTests(FindTestCase):
    async def test_properties(self):
        """A result carries the list properties of MS-ASCMD 2.2.3.139.1, in order, and no body."""
        item_id = await self.store_mail(message(
            "Plan review", body="The plan is attached.\r\nSecond line.", attachment=True,
            headers="Cc: Carol Jones <carol@example.com>, dave@example.com\r\nImportance: high\r\n"))
        await self.store.items.update_state(self.account.id, self.inbox.id, item_id, read=True)
        answer = await self.find(mailbox_find("plan"))
        (properties,) = find(answer.document, "//find:Result/find:Properties")
        self.assertEqual([etree.QName(child).localname for child in properties],
                         ["Subject", "DateReceived", "DisplayTo", "DisplayCc", "Importance", "Read", "IsDraft",
                          "Preview", "HasAttachments", "From"])
        self.assertEqual(text(properties, "email:Subject"), "Plan review")
        self.assertEqual(text(properties, "email:DateReceived"), "2026-03-01T12:00:00.000Z")
        self.assertEqual(text(properties, "email:DisplayTo"), "Alice Martin")
        self.assertEqual(text(properties, "find:DisplayCc"), "Carol Jones; dave@example.com")
        self.assertEqual(text(properties, "email:Importance"), "2")
        self.assertEqual(text(properties, "email:Read"), "1")
        self.assertEqual(text(properties, "email2:IsDraft"), "0")
        self.assertEqual(text(properties, "find:Preview"), "The plan is attached. Second line.")
        self.assertEqual(text(properties, "find:HasAttachments"), "1")
        self.assertEqual(text(properties, "email:From"), '"Bob Example" <bob@example.net>')

    async def test_plain_message_properties(self):
        """An unread message without attachments says so; a message without Cc has no DisplayCc."""
        await self.store_mail(message("Plain note"))
        answer = await self.find(mailbox_find("plain"))
        (properties,) = find(answer.document, "//find:Result/find:Properties")
        self.assertEqual(text(properties, "email:Read"), "0")
        self.assertEqual(text(properties, "find:HasAttachments"), "0")
        self.assertEqual(text(properties, "email:Importance"), "1")
        self.assertIsNone(text(properties, "find:DisplayCc"))
        self.assertIsNone(text(properties, "find:DisplayBcc"))

    async def test_draft(self):
        """A draft is IsDraft 1 and shows its Bcc recipients."""
        drafts = await self.store.folders.by_type(self.account.id, F.DRAFTS)
        await self.store_mail(message("Draft proposal", sender="Alice Martin <alice@example.org>",
                                      headers="Bcc: Eve Secret <eve@example.com>\r\n"), folder=drafts)
        answer = await self.find(mailbox_find("proposal"))
        (result,) = find(answer.document, "//find:Result")
        self.assertEqual(text(result, "airsync:CollectionId"), str(drafts.id))
        self.assertEqual(text(result, "find:Properties/email2:IsDraft"), "1")
        self.assertEqual(text(result, "find:Properties/find:DisplayBcc"), "Eve Secret")

    async def test_range_paging_and_total(self):
        """Pages of one SearchId come newest first; Range says which were returned and Total how many match."""
        for n in range(5):
            await self.store_mail(message(f"Report {n}"), received=NOW + timedelta(hours=n))
        search_id = str(uuid.uuid4())
        answer = await self.find(mailbox_find("report", range_="0-1", search_id=search_id))
        self.assertEqual(subjects(answer), ["Report 4", "Report 3"])
        self.assertEqual(text(answer.document, "//find:Response/find:Range"), "0-1")
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "5")
        answer = await self.find(mailbox_find("report", range_="2-3", search_id=search_id.upper()))
        self.assertEqual(response_status(answer), "1", answer)
        self.assertEqual(subjects(answer), ["Report 2", "Report 1"])
        self.assertEqual(text(answer.document, "//find:Response/find:Range"), "2-3")
        answer = await self.find(mailbox_find("report", range_="4-9", search_id=search_id))
        self.assertEqual(subjects(answer), ["Report 0"])
        self.assertEqual(text(answer.document, "//find:Response/find:Range"), "4-4")
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "5")
        # Without a Range: the default 0-99.
        answer = await self.find(mailbox_find("report", range_=None))
        self.assertEqual(len(subjects(answer)), 5)

    async def test_range_must_start_at_zero(self):
        """A page past 0 of a search the device never began is StartWithRangeZero (Response Status 4)."""
        await self.store_mail(message("Report"))
        answer = await self.find(mailbox_find("report", range_="1-5"))
        self.assertEqual(response_status(answer), "4", answer)
        self.assertEqual(find(answer.document, "//find:Result"), [])
        self.assertIsNone(text(answer.document, "//find:Response/find:Total"))
        # A search another device began is not this device's.
        search_id = str(uuid.uuid4())
        other = await self.provisioned("alice@example.org", "correct horse", device_id="OTHERDEVICE2")
        await self.find(mailbox_find("report", range_="0-0", search_id=search_id), client=other)
        answer = await self.find(mailbox_find("report", range_="1-5", search_id=search_id))
        self.assertEqual(response_status(answer), "4", answer)

    async def test_no_match(self):
        """No match: Status 1, no Result, no Range, Total 0."""
        await self.store_mail(message("Report"))
        answer = await self.find(mailbox_find("zebra"))
        self.assertEqual(response_status(answer), "1")
        self.assertEqual(find(answer.document, "//find:Result"), [])
        self.assertIsNone(text(answer.document, "//find:Response/find:Range"))
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "0")

    async def test_collection_id_and_deep_traversal(self):
        """A CollectionId limits the search to that folder; DeepTraversal adds its subfolders."""
        projects, _ = await self.store.folders.create(self.account.id, self.inbox.id, "Projects", F.USER_MAIL)
        archive, _ = await self.store.folders.create(self.account.id, projects.id, "Archive", F.USER_MAIL)
        sent = await self.store.folders.by_type(self.account.id, F.SENT_ITEMS)
        await self.store_mail(message("Invoice inbox"), received=NOW + timedelta(hours=3))
        await self.store_mail(message("Invoice projects"), folder=projects, received=NOW + timedelta(hours=2))
        await self.store_mail(message("Invoice archive"), folder=archive, received=NOW + timedelta(hours=1))
        await self.store_mail(message("Invoice sent"), folder=sent)
        self.assertEqual(await self.found(mailbox_find("invoice")),
                         ["Invoice inbox", "Invoice projects", "Invoice archive", "Invoice sent"])
        self.assertEqual(await self.found(mailbox_find("invoice", collection=self.inbox.server_id)),
                         ["Invoice inbox"])
        self.assertEqual(await self.found(mailbox_find("invoice", collection=self.inbox.server_id, deep=True)),
                         ["Invoice inbox", "Invoice projects", "Invoice archive"])
        self.assertEqual(await self.found(mailbox_find("invoice", collection=projects.server_id, deep=True)),
                         ["Invoice projects", "Invoice archive"])
        self.assertEqual(await self.found(mailbox_find("invoice", collection=sent.server_id)), ["Invoice sent"])
        answer = await self.find(mailbox_find("invoice", collection=archive.server_id))
        (result,) = find(answer.document, "//find:Result")
        self.assertEqual(text(result, "airsync:CollectionId"), str(archive.id))

    async def test_kql(self):
        """FreeText is KQL: property restrictions, quoted phrases, AND."""
        await self.store_mail(message("Budget meeting", body="About the review."), received=NOW)
        await self.store_mail(message("Review", body="The budget meeting moved."), received=NOW - timedelta(hours=1))
        await self.store_mail(message("Meeting notes", body="The budget was cut."), received=NOW - timedelta(hours=2))
        self.assertEqual(await self.found(mailbox_find("subject:budget")), ["Budget meeting"])
        self.assertEqual(await self.found(mailbox_find("body:budget")), ["Review", "Meeting notes"])
        self.assertEqual(await self.found(mailbox_find("&quot;budget meeting&quot;")), ["Budget meeting", "Review"])
        self.assertEqual(await self.found(mailbox_find("budget AND notes")), ["Meeting notes"])
        self.assertEqual(await self.found(mailbox_find("from:bob")), ["Budget meeting", "Review", "Meeting notes"])


class IsolationTests(FindTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.bob = await self.create_account("bob@example.org", "bob password", name="Bob Other")
        self.bob_inbox = await self.store.folders.by_type(self.bob.id, F.INBOX)
        await self.store_mail(message("Secret merger", body="Confidential."), account=self.bob)

    async def test_only_own_mail(self):
        """Results only ever come from the authenticated account."""
        await self.store_mail(message("Public merger"))
        self.assertEqual(await self.found(mailbox_find("merger")), ["Public merger"])
        bob = await self.provisioned("bob@example.org", "bob password", device_id="BOBDEVICE1")
        self.assertEqual(await self.found(mailbox_find("merger"), client=bob), ["Secret merger"])

    async def test_foreign_collection_id(self):
        """Another account's folder is not a folder of this one: FolderSync required, nothing of it shown."""
        answer = await self.find(mailbox_find("merger", collection=self.bob_inbox.server_id), status="3")
        self.assertIsNone(find(answer.document, "/find:Find/find:Response") or None)
        self.assertNotIn(b"Secret", answer.body)
        answer = await self.find(mailbox_find("merger", collection=self.bob_inbox.server_id, deep=True), status="3")
        self.assertNotIn(b"Secret", answer.body)

    async def test_deleted_folder(self):
        """A folder deleted since the device's FolderSync: Find Status 3."""
        projects, _ = await self.store.folders.create(self.account.id, self.inbox.id, "Projects", F.USER_MAIL)
        await self.store.folders.delete(self.account.id, projects.id)
        answer = await self.find(mailbox_find("merger", collection=projects.server_id), status="3")
        self.assertEqual(find(answer.document, "/find:Find/find:Response"), [])


class GALFindTests(FindTestCase):
    async def _set_up(self):
        await super()._set_up()
        await self.create_account("martin.dupont@example.org", "pw one", name="Martin Dupont")
        await self.create_account("zoe@example.org", "pw two", name="Zoé Martinez")
        gone = await self.create_account("marty@example.org", "pw three", name="Marty Gone")
        await self.database.execute("UPDATE accounts SET disabled = true WHERE id = %s", (gone.id,))

    async def test_gal_properties(self):
        """A GAL Result holds the person's Properties: name, alias, first and last name, address."""
        answer = await self.find(gal_find("alice"))
        self.assertEqual(response_status(answer), "1")
        (result,) = find(answer.document, "//find:Result")
        self.assertEqual([etree.QName(child).localname for child in result], ["Properties"])
        properties = result[0]
        self.assertEqual([etree.QName(child).localname for child in properties],
                         ["DisplayName", "Alias", "FirstName", "LastName", "EmailAddress"])
        self.assertEqual(text(properties, "gal:DisplayName"), "Alice Martin")
        self.assertEqual(text(properties, "gal:Alias"), "alice")
        self.assertEqual(text(properties, "gal:FirstName"), "Alice")
        self.assertEqual(text(properties, "gal:LastName"), "Martin")
        self.assertEqual(text(properties, "gal:EmailAddress"), "alice@example.org")
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "1")

    async def test_gal_prefix_paging_and_disabled(self):
        """Every word a prefix; disabled accounts never listed; Range pages through the people."""
        search_id = str(uuid.uuid4())
        answer = await self.find(gal_find("mart", range_="0-1", search_id=search_id, picture=True))
        names = [text(r, "find:Properties/gal:DisplayName") for r in find(answer.document, "//find:Result")]
        self.assertEqual(names, ["Alice Martin", "Martin Dupont"])
        self.assertEqual(text(answer.document, "//find:Response/find:Total"), "3")
        self.assertEqual(find(answer.document, "//gal:Picture"), [])
        answer = await self.find(gal_find("mart", range_="2-3", search_id=search_id))
        names = [text(r, "find:Properties/gal:DisplayName") for r in find(answer.document, "//find:Result")]
        self.assertEqual(names, ["Zoé Martinez"])
        self.assertEqual(text(answer.document, "//find:Response/find:Range"), "2-2")
        self.assertNotIn(b"Marty", answer.body)


class MalformedTests(FindTestCase):
    async def test_not_a_find_request(self):
        """A document not of Find's shape is Find Status 2, with no Response."""
        search_id = uuid.uuid4()
        criterion = ("<MailBoxSearchCriterion><Query><airsync:Class>Email</airsync:Class>"
                     "<FreeText>x</FreeText></Query></MailBoxSearchCriterion>")
        documents = [
            f"<Find {NAMESPACES}><ExecuteSearch>{criterion}</ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>not-a-guid</SearchId><ExecuteSearch>{criterion}</ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch/></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch>{criterion}"
            "<GALSearchCriterion><Query>a</Query></GALSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch><MailBoxSearchCriterion>"
            "<Query><FreeText>x</FreeText></Query></MailBoxSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch><MailBoxSearchCriterion>"
            "<Query><airsync:Class>Email</airsync:Class></Query></MailBoxSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch><MailBoxSearchCriterion>"
            "<Query>text</Query></MailBoxSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch><MailBoxSearchCriterion>"
            "<Options><Range>0-1</Range></Options></MailBoxSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><ExecuteSearch><MailBoxSearchCriterion>"
            "<Query><airsync:Class>Email</airsync:Class><FreeText>x</FreeText></Query>"
            "<Options><Total>1</Total></Options></MailBoxSearchCriterion></ExecuteSearch></Find>",
            f"<Find {NAMESPACES}><SearchId>{search_id}</SearchId><SearchId>{search_id}</SearchId>"
            f"<ExecuteSearch>{criterion}</ExecuteSearch></Find>",
            '<Search xmlns="Search:"><Store><Name>Mailbox</Name><Query>x</Query></Store></Search>',
        ]
        for document in documents:
            answer = await self.find(document, status="2")
            self.assertEqual(find(answer.document, "/find:Find/find:Response"), [], document)

    async def test_search_that_does_not_validate(self):
        """A well-formed search with values the server refuses is Response Status 2."""
        await self.store_mail(message("Report"))
        for document in (
            mailbox_find("report", klass="Contacts"),
            mailbox_find("report", range_="5-2"),
            mailbox_find("report", range_="0-1000"),
            mailbox_find("report", range_="a-b"),
            mailbox_find("report", collection="not-a-folder"),
            mailbox_find("report OR summary"),
            mailbox_find("size:100"),
            mailbox_find("!!!"),
            mailbox_find("x" * 1100),
            gal_find(""),
        ):
            answer = await self.find(document)
            self.assertEqual(response_status(answer), "2", document)
            self.assertEqual(find(answer.document, "//find:Result"), [])

    async def test_refusals_do_not_begin_a_search(self):
        """A refused first request does not let the next page through."""
        search_id = str(uuid.uuid4())
        answer = await self.find(mailbox_find("report", klass="Notes", search_id=search_id, range_="0-1"))
        self.assertEqual(response_status(answer), "2")
        answer = await self.find(mailbox_find("report", search_id=search_id, range_="2-3"))
        self.assertEqual(response_status(answer), "4")


class VersionTests(FindTestCase):
    async def test_older_versions_refused(self):
        """Find exists in 16.1 only: 14.1 and 16.0 requests are 501 Not Implemented."""
        await self.store_mail(message("Report"))
        for version in ("14.1", "16.0"):
            client = await self.provisioned("alice@example.org", "correct horse", version=version,
                                            device_id=f"DEV{version.replace('.', '')}")
            answer = await client.post("Find", mailbox_find("report"))
            self.assertEqual(answer.code, 501, version)
            self.assertNotIn(b"Report", answer.body)

    async def test_options_advertise_find(self):
        """OPTIONS lists Find among the commands, since 16.1 is offered."""
        response = await self.http("OPTIONS", "/Microsoft-Server-ActiveSync",
                                   headers={"Authorization": self.client._headers(None)["Authorization"]})
        self.assertEqual(response.code, 200)
        (commands,) = response.headers.getRawHeaders("MS-ASProtocolCommands")
        self.assertIn("Find", commands.split(","))
        await response.content()

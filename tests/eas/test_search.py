"""
Search and ResolveRecipients end to end: WBXML over TCP to the real Site,
on a provisioned device, with mail stored by the LMTP delivery path.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lxml import etree

from bluesync.mail.delivery import deliver, new_email_item
from bluesync.store import folders as F
from tests.eas.client import EASClient, find, text
from tests.support import SiteTestCase

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
NAMESPACES = ('xmlns="Search:" xmlns:airsync="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:"')
PLAIN = "<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type></airsyncbase:BodyPreference>"


def message(subject: str, body: str = "Nothing to say.", sender: str = "Bob Example <bob@example.net>") -> bytes:
    return (
        f"From: {sender}\r\nTo: Alice Martin <alice@example.org>\r\nSubject: {subject}\r\n"
        "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode("utf-8")


def mailbox_search(free_text: str | None = None, and_extra: str = "", options: str = PLAIN,
                   range_: str | None = "0-9") -> str:
    free = f"<FreeText>{free_text}</FreeText>" if free_text is not None else ""
    range_xml = f"<Range>{range_}</Range>" if range_ else ""
    return (
        f"<Search {NAMESPACES}><Store><Name>Mailbox</Name><Query><And>"
        f"<airsync:Class>Email</airsync:Class>{and_extra}{free}</And></Query>"
        f"<Options>{range_xml}<RebuildResults/>{options}</Options></Store></Search>"
    )


def eas_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def store_status(answer) -> str | None:
    return text(answer.document, "/search:Search/search:Response/search:Store/search:Status")


def subjects(answer) -> list[str]:
    return [text(result, "search:Properties/email:Subject")
            for result in find(answer.document, "//search:Store/search:Result")
            if find(result, "search:Properties")]


class SearchTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account(name="Alice Martin")
        self.inbox = await self.store.folders.by_type(self.account.id, F.INBOX)
        self.client = await self.provisioned("alice@example.org", "correct horse")

    async def provisioned(self, user: str, password: str, version: str = "16.1") -> EASClient:
        client = EASClient(self.base_url, user, password, version=version, pool=self.pool)
        await client.provision()
        return client

    async def deliver(self, raw: bytes, folder=None, account=None, received=NOW) -> int:
        account = account or self.account
        if folder is None:
            (item_id,) = await deliver(self.store, [account], raw, received)
            return item_id
        (item_id,) = await self.store.items.deliver([(account.id, folder.id)], new_email_item(raw, received))
        return item_id

    async def search(self, document: str, client: EASClient | None = None):
        answer = await (client or self.client).post("Search", document)
        self.assertEqual(answer.code, 200, answer)
        self.assertEqual(text(answer.document, "/search:Search/search:Status"), "1", answer)
        return answer


class MailboxSearchTests(SearchTestCase):
    async def test_result_shape(self):
        """A hit carries Class, a LongId naming the item, its CollectionId and email Properties."""
        item_id = await self.deliver(message("Quarterly budget", body="Numbers inside."))
        answer = await self.search(mailbox_search("budget"))
        self.assertEqual(store_status(answer), "1")
        (result,) = find(answer.document, "//search:Store/search:Result")
        self.assertEqual([etree.QName(child).localname for child in result],
                         ["Class", "LongId", "CollectionId", "Properties"])
        self.assertEqual(text(result, "airsync:Class"), "Email")
        self.assertEqual(text(result, "search:LongId"), f"{self.inbox.id}:{item_id}")
        self.assertEqual(text(result, "airsync:CollectionId"), str(self.inbox.id))
        self.assertEqual(text(result, "search:Properties/email:From"), '"Bob Example" <bob@example.net>')
        self.assertEqual(text(result, "search:Properties/airsyncbase:Body/airsyncbase:Data").strip(),
                         "Numbers inside.")
        self.assertEqual(text(answer.document, "//search:Store/search:Range"), "0-0")
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "1")

    async def test_subject_body_sender(self):
        """Words are found in the subject, the body and the sender."""
        await self.deliver(message("Budget review"))
        await self.deliver(message("Hello", body="See the budget attached."))
        await self.deliver(message("Lunch", sender="Carol Jones <carol@example.com>"))
        self.assertEqual(sorted(subjects(await self.search(mailbox_search("budget")))), ["Budget review", "Hello"])
        self.assertEqual(subjects(await self.search(mailbox_search("jones"))), ["Lunch"])
        self.assertEqual(subjects(await self.search(mailbox_search("carol@example.com"))), ["Lunch"])

    async def test_accents_and_case(self):
        """Accents and case are ignored."""
        await self.deliver(message("Crème brûlée à l'Élysée"))
        self.assertEqual(subjects(await self.search(mailbox_search("CREME elysee"))), ["Crème brûlée à l'Élysée"])
        self.assertEqual(subjects(await self.search(mailbox_search("brûlée"))), ["Crème brûlée à l'Élysée"])

    async def test_prefix_while_typing(self):
        """Each keystroke's query finds the message once the typed letters begin a word."""
        await self.deliver(message("Budget review"))
        for typed in ("bu", "budg", "budget", "budget r", "budget review"):
            self.assertEqual(subjects(await self.search(mailbox_search(typed))), ["Budget review"], typed)
        self.assertEqual(subjects(await self.search(mailbox_search("budgets"))), [])

    async def test_folder_limited(self):
        """CollectionId limits the search; DeepTraversal adds the subfolders."""
        projects, _ = await self.store.folders.create(self.account.id, None, "Projects", F.USER_MAIL)
        archive, _ = await self.store.folders.create(self.account.id, projects.id, "Archive", F.USER_MAIL)
        await self.deliver(message("Plan in inbox"))
        await self.deliver(message("Plan in projects"), folder=projects)
        await self.deliver(message("Plan in archive"), folder=archive)
        in_folder = f"<airsync:CollectionId>{projects.id}</airsync:CollectionId>"
        shallow = await self.search(mailbox_search("plan", in_folder))
        self.assertEqual(subjects(shallow), ["Plan in projects"])
        deep = await self.search(mailbox_search("plan", in_folder, options=PLAIN + "<DeepTraversal/>"))
        self.assertEqual(sorted(subjects(deep)), ["Plan in archive", "Plan in projects"])
        everywhere = await self.search(mailbox_search("plan"))
        self.assertEqual(len(subjects(everywhere)), 3)

    async def test_date_range(self):
        """GreaterThan and LessThan on email:DateReceived bound the date received."""
        for days in (1, 10, 20):
            await self.deliver(message(f"Report {days} days old"), received=NOW - timedelta(days=days))
        after = f"<GreaterThan><email:DateReceived/><Value>{eas_date(NOW - timedelta(days=15))}</Value></GreaterThan>"
        before = f"<LessThan><email:DateReceived/><Value>{eas_date(NOW - timedelta(days=5))}</Value></LessThan>"
        answer = await self.search(mailbox_search("report", after + before))
        self.assertEqual(subjects(answer), ["Report 10 days old"])
        answer = await self.search(mailbox_search("report", after))
        self.assertEqual(subjects(answer), ["Report 1 days old", "Report 10 days old"])

    async def test_paging_with_total(self):
        """Range pages through hits newest first; Total counts them all."""
        for n in range(25):
            await self.deliver(message(f"Invoice {n:02d}"), received=NOW + timedelta(minutes=n))
        pages = []
        for range_ in ("0-9", "10-19", "20-29"):
            answer = await self.search(mailbox_search("invoice", range_=range_))
            self.assertEqual(text(answer.document, "//search:Store/search:Total"), "25")
            pages.append((text(answer.document, "//search:Store/search:Range"), subjects(answer)))
        self.assertEqual([p[0] for p in pages], ["0-9", "10-19", "20-24"])
        seen = [s for p in pages for s in p[1]]
        self.assertEqual(seen, [f"Invoice {n:02d}" for n in reversed(range(25))])

    async def test_no_match(self):
        """No hit: one empty Result and Total 0."""
        await self.deliver(message("Budget"))
        answer = await self.search(mailbox_search("nothinglikethis"))
        self.assertEqual(store_status(answer), "1")
        (result,) = find(answer.document, "//search:Store/search:Result")
        self.assertEqual(len(result), 0)
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "0")
        self.assertEqual(find(answer.document, "//search:Store/search:Range"), [])

    async def test_another_account_never_found(self):
        """Another account's mail is never found, and its folder is not searchable."""
        bob = await self.store.create_account("bob@example.org", "Bob", "x")
        bob_inbox = await self.store.folders.by_type(bob.id, F.INBOX)
        await self.deliver(message("Secret merger"), account=bob)
        await self.deliver(message("Public merger"))
        self.assertEqual(subjects(await self.search(mailbox_search("merger"))), ["Public merger"])
        foreign = f"<airsync:CollectionId>{bob_inbox.id}</airsync:CollectionId>"
        answer = await self.search(mailbox_search("merger", foreign))
        self.assertEqual(store_status(answer), "11")
        self.assertEqual(find(answer.document, "//search:Result"), [])

    async def test_body_preference_truncation(self):
        """The request's BodyPreference shapes the body, as in a Sync."""
        await self.deliver(message("Long one", body="word " * 200))
        options = ("<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type>"
                   "<airsyncbase:TruncationSize>50</airsyncbase:TruncationSize></airsyncbase:BodyPreference>")
        answer = await self.search(mailbox_search("long", options=options))
        body = find(answer.document, "//search:Properties/airsyncbase:Body")[0]
        self.assertEqual(text(body, "airsyncbase:Truncated"), "1")
        self.assertEqual(len(text(body, "airsyncbase:Data").encode()), 50)

    async def test_long_id_fetches_with_itemoperations(self):
        """The LongId of a result fetches the message with ItemOperations."""
        await self.deliver(message("Fetch me", body="Here I am."))
        answer = await self.search(mailbox_search("fetch"))
        long_id = text(answer.document, "//search:Result/search:LongId")
        fetch = await self.client.post(
            "ItemOperations",
            '<ItemOperations xmlns="ItemOperations:" xmlns:search="Search:" xmlns:airsyncbase="AirSyncBase:">'
            f"<Fetch><Store>Mailbox</Store><search:LongId>{long_id}</search:LongId><Options>{PLAIN}</Options>"
            "</Fetch></ItemOperations>",
        )
        self.assertEqual(text(fetch.document, "//itemoperations:Fetch/itemoperations:Status"), "1", fetch)
        self.assertEqual(text(fetch.document, "//itemoperations:Properties/email:Subject"), "Fetch me")

    async def test_no_free_text(self):
        """Without FreeText the folder and dates alone select, newest first."""
        await self.deliver(message("Older"), received=NOW - timedelta(days=2))
        await self.deliver(message("Newer"), received=NOW)
        in_inbox = f"<airsync:CollectionId>{self.inbox.id}</airsync:CollectionId>"
        answer = await self.search(mailbox_search(None, in_inbox))
        self.assertEqual(subjects(answer), ["Newer", "Older"])

    async def test_other_class_finds_nothing(self):
        """A search for another class than Email finds nothing, successfully."""
        await self.deliver(message("Budget"))
        document = mailbox_search("budget").replace("<airsync:Class>Email", "<airsync:Class>Contacts")
        answer = await self.search(document)
        self.assertEqual((store_status(answer), subjects(answer)), ("1", []))

    async def test_range_capped_at_100(self):
        """A Range wider than 100 results is answered with its first 100."""
        for n in range(105):
            await self.deliver(message(f"Note {n}"))
        answer = await self.search(mailbox_search("note", range_="0-199"))
        self.assertEqual(text(answer.document, "//search:Store/search:Range"), "0-99")
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "105")
        self.assertEqual(len(find(answer.document, "//search:Store/search:Result")), 100)


class MalformedSearchTests(SearchTestCase):
    async def status_of(self, document: str) -> str | None:
        return store_status(await self.search(document))

    async def test_protocol_errors(self):
        """Malformed stores, queries, ranges and dates get Store Status 2."""
        bad = [
            f"<Search {NAMESPACES}/>",
            f"<Search {NAMESPACES}><Store><Name>Mailbox</Name></Store></Search>",
            f"<Search {NAMESPACES}><Store><Query><And><FreeText>x</FreeText></And></Query></Store></Search>",
            f"<Search {NAMESPACES}><Store><Name>Mailbox</Name><Query>text</Query></Store></Search>",
            mailbox_search("x", range_="9-0"),
            mailbox_search("x", range_="ten"),
            mailbox_search("x", "<GreaterThan><email:DateReceived/><Value>yesterday</Value></GreaterThan>"),
            mailbox_search("x", "<GreaterThan><Value>2026-01-01T00:00:00.000Z</Value></GreaterThan>"),
            mailbox_search("x", "<airsync:CollectionId>inbox</airsync:CollectionId>"),
            f"<Search {NAMESPACES}><Store><Name>Elsewhere</Name><Query>x</Query></Store></Search>",
            f"<Search {NAMESPACES}><Store><Name>GAL</Name><Query></Query></Store></Search>",
        ]
        for document in bad:
            self.assertEqual(await self.status_of(document), "2", document)

    async def test_too_complex(self):
        """Or, two Ands and FreeText outside And are too complex (Status 8)."""
        complex_ = [
            mailbox_search("x", "<Or><FreeText>y</FreeText></Or>"),
            f"<Search {NAMESPACES}><Store><Name>Mailbox</Name><Query><And><FreeText>x</FreeText></And>"
            "<And><FreeText>y</FreeText></And></Query></Store></Search>",
            f"<Search {NAMESPACES}><Store><Name>Mailbox</Name><Query><FreeText>x</FreeText></Query></Store></Search>",
        ]
        for document in complex_:
            self.assertEqual(await self.status_of(document), "8", document)

    async def test_document_library_blocked(self):
        """A document library search is refused as blocked (Status 13)."""
        document = (f'<Search {NAMESPACES} xmlns:documentlibrary="DocumentLibrary:"><Store><Name>DocumentLibrary</Name>'
                    "<Query><EqualTo><documentlibrary:LinkId/><Value>\\\\server\\share</Value></EqualTo></Query>"
                    "</Store></Search>")
        self.assertEqual(await self.status_of(document), "13")


class GALSearchTests(SearchTestCase):
    async def _set_up(self):
        await super()._set_up()
        await self.store.create_account("robert.durand@example.org", "Robert Durand", "x")
        await self.store.create_account("roberta@example.org", "Roberta", "x")
        await self.store.create_account("eloise@example.org", "Éloïse Lefèvre", "x")

    def gal(self, query: str, options: str = "<Range>0-9</Range>") -> str:
        return (f'<Search xmlns="Search:"><Store><Name>GAL</Name><Query>{query}</Query>'
                f"<Options>{options}</Options></Store></Search>")

    async def test_colleague_by_name_prefix(self):
        """A colleague is found by the start of a name, with the GAL properties."""
        answer = await self.search(self.gal("dur"))
        self.assertEqual(store_status(answer), "1")
        (properties,) = find(answer.document, "//search:Result/search:Properties")
        self.assertEqual([etree.QName(child).localname for child in properties],
                         ["DisplayName", "Alias", "FirstName", "LastName", "EmailAddress"])
        self.assertEqual(text(properties, "gal:DisplayName"), "Robert Durand")
        self.assertEqual(text(properties, "gal:FirstName"), "Robert")
        self.assertEqual(text(properties, "gal:LastName"), "Durand")
        self.assertEqual(text(properties, "gal:Alias"), "robert.durand")
        self.assertEqual(text(properties, "gal:EmailAddress"), "robert.durand@example.org")
        self.assertEqual(text(answer.document, "//search:Store/search:Range"), "0-0")
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "1")

    async def test_several_and_accents(self):
        """Every match of the prefix is listed by name; accents do not matter."""
        answer = await self.search(self.gal("rob"))
        names = [text(p, "gal:DisplayName") for p in find(answer.document, "//search:Properties")]
        self.assertEqual(names, ["Robert Durand", "Roberta"])
        answer = await self.search(self.gal("eloise"))
        self.assertEqual(text(answer.document, "//gal:EmailAddress"), "eloise@example.org")

    async def test_range_and_picture(self):
        """Range pages the list; a requested photo is reported missing (173)."""
        answer = await self.search(self.gal("example", "<Range>1-1</Range><Picture/>"))
        self.assertEqual(text(answer.document, "//search:Store/search:Range"), "1-1")
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "4")
        self.assertEqual(text(answer.document, "//gal:Picture/gal:Status"), "173")

    async def test_no_match(self):
        """Nobody matches: an empty Result and Total 0."""
        answer = await self.search(self.gal("zebulon"))
        self.assertEqual(len(find(answer.document, "//search:Result")), 1)
        self.assertEqual(find(answer.document, "//search:Properties"), [])
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "0")


class ResolveRecipientsTests(SearchTestCase):
    async def _set_up(self):
        await super()._set_up()
        await self.store.create_account("robert.durand@example.org", "Robert Durand", "x")
        await self.store.create_account("roberta@example.org", "Roberta", "x")
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")

    async def resolve(self, *names: str, options: str = ""):
        tos = "".join(f"<To>{name}</To>" for name in names)
        options_xml = f"<Options>{options}</Options>" if options else ""
        answer = await self.client.post(
            "ResolveRecipients", f'<ResolveRecipients xmlns="ResolveRecipients:">{tos}{options_xml}</ResolveRecipients>'
        )
        self.assertEqual(answer.code, 200, answer)
        return answer

    async def test_local_and_unknown(self):
        """A local address resolves to its GAL entry; an unknown one gets Status 4."""
        answer = await self.resolve("Sales@Example.org", "stranger@elsewhere.net")
        self.assertEqual(text(answer.document, "/resolverecipients:ResolveRecipients/resolverecipients:Status"), "1")
        known, unknown = find(answer.document, "//resolverecipients:Response")
        self.assertEqual(text(known, "resolverecipients:To"), "Sales@Example.org")
        self.assertEqual(text(known, "resolverecipients:Status"), "1")
        self.assertEqual(text(known, "resolverecipients:RecipientCount"), "1")
        recipient = find(known, "resolverecipients:Recipient")[0]
        self.assertEqual(text(recipient, "resolverecipients:Type"), "1")
        self.assertEqual(text(recipient, "resolverecipients:DisplayName"), "Alice Martin")
        self.assertEqual(text(recipient, "resolverecipients:EmailAddress"), "alice@example.org")
        self.assertEqual(text(unknown, "resolverecipients:Status"), "4")
        self.assertEqual(text(unknown, "resolverecipients:RecipientCount"), "0")
        self.assertEqual(find(unknown, "resolverecipients:Recipient"), [])

    async def test_names(self):
        """A unique name resolves; a shared prefix gives suggestions; an exact name wins."""
        answer = await self.resolve("durand", "rob", "Roberta", "Alice Martin &lt;alice@example.org&gt;")
        durand, rob, roberta, alice = find(answer.document, "//resolverecipients:Response")
        self.assertEqual(text(durand, "resolverecipients:Status"), "1")
        self.assertEqual(text(durand, ".//resolverecipients:EmailAddress"), "robert.durand@example.org")
        self.assertEqual(text(rob, "resolverecipients:Status"), "2")
        self.assertEqual(text(rob, "resolverecipients:RecipientCount"), "2")
        self.assertEqual(len(find(rob, "resolverecipients:Recipient")), 2)
        self.assertEqual(text(roberta, "resolverecipients:Status"), "1")
        self.assertEqual(text(roberta, ".//resolverecipients:EmailAddress"), "roberta@example.org")
        self.assertEqual(text(alice, ".//resolverecipients:EmailAddress"), "alice@example.org")

    async def test_partial_suggestions(self):
        """More matches than MaxAmbiguousRecipients: Status 3 with that many suggestions."""
        answer = await self.resolve("rob", options="<MaxAmbiguousRecipients>1</MaxAmbiguousRecipients>")
        (response,) = find(answer.document, "//resolverecipients:Response")
        self.assertEqual(text(response, "resolverecipients:Status"), "3")
        self.assertEqual(text(response, "resolverecipients:RecipientCount"), "2")
        self.assertEqual(len(find(response, "resolverecipients:Recipient")), 1)

    async def test_unsupported_extras(self):
        """Certificates, free/busy and photos are reported missing with the spec's statuses."""
        options = ("<CertificateRetrieval>2</CertificateRetrieval>"
                   "<Availability><StartTime>2026-03-02T08:00:00.000Z</StartTime>"
                   "<EndTime>2026-03-02T18:00:00.000Z</EndTime></Availability><Picture/>")
        answer = await self.resolve("alice@example.org", options=options)
        recipient = find(answer.document, "//resolverecipients:Recipient")[0]
        self.assertEqual([etree.QName(child).localname for child in recipient],
                         ["Type", "DisplayName", "EmailAddress", "Availability", "Certificates", "Picture"])
        self.assertEqual(text(recipient, "resolverecipients:Availability/resolverecipients:Status"), "163")
        self.assertEqual(text(recipient, "resolverecipients:Certificates/resolverecipients:Status"), "7")
        self.assertEqual(text(recipient, "resolverecipients:Certificates/resolverecipients:CertificateCount"), "0")
        self.assertEqual(text(recipient, "resolverecipients:Picture/resolverecipients:Status"), "173")

    async def test_malformed(self):
        """No To, a bad option or Availability without times: Status 5."""
        for document in (
            '<ResolveRecipients xmlns="ResolveRecipients:"/>',
            '<ResolveRecipients xmlns="ResolveRecipients:"><To>a</To><Options>'
            "<CertificateRetrieval>9</CertificateRetrieval></Options></ResolveRecipients>",
            '<ResolveRecipients xmlns="ResolveRecipients:"><To>a</To><Options><Availability/></Options>'
            "</ResolveRecipients>",
        ):
            answer = await self.client.post("ResolveRecipients", document)
            self.assertEqual(answer.code, 200, answer)
            self.assertEqual(text(answer.document, "/resolverecipients:ResolveRecipients/resolverecipients:Status"),
                             "5", document)
            self.assertEqual(find(answer.document, "//resolverecipients:Response"), [])

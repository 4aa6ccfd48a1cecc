"""
Full-text search in the store: messages stored through the delivery path
(new_email_item), found by words, folder and date on real PostgreSQL; the
global address list from the accounts table.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bluesync.mail.delivery import new_email_item
from bluesync.passwords import hash_password
from bluesync.store import fulltext, migrations
from bluesync.store import search as search_module
from bluesync.store.database import connect
from bluesync.store.folders import INBOX, SENT_ITEMS, USER_MAIL
from bluesync.store.fulltext import SearchText
from bluesync.store.items import NewItem
from bluesync.store.search import MailboxQuery, NoSuchFolder
from bluesync.store.store import Store
from tests.support import DatabaseTestCase, new_database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def message(subject: str, body: str = "Nothing to say.", sender: str = "Bob Example <bob@example.net>",
            to: str = "Alice <alice@example.org>") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode("utf-8")


class SearchTestCase(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice Martin", hash_password("pw"))
        self.inbox = await self.store.folders.by_type(self.alice.id, INBOX)

    async def deliver(self, raw: bytes, folder=None, account=None, received=NOW) -> int:
        account = account or self.alice
        folder = folder or self.inbox
        (item_id,) = await self.store.items.deliver([(account.id, folder.id)], new_email_item(raw, received))
        return item_id

    async def found(self, text=None, account=None, **query) -> list[int]:
        result = await self.store.search.mailbox((account or self.alice).id, MailboxQuery(text, **query), 0, 100)
        return [hit.item_id for hit in result.hits]


class MailboxSearchTests(SearchTestCase):
    async def test_subject_body_and_people(self):
        """A word is found in the subject, the body, the sender and the recipients."""
        by_subject = await self.deliver(message("Quarterly budget"))
        by_body = await self.deliver(message("Hello", body="The budget is attached."))
        other = await self.deliver(message("Lunch", body="Pizza?"))
        self.assertEqual(sorted(await self.found("budget")), sorted([by_subject, by_body]))
        self.assertEqual(sorted(await self.found("Bob")), sorted([by_subject, by_body, other]))
        carol = await self.deliver(message("Hi", sender="Carol Jones <carol@example.com>"))
        self.assertEqual(await self.found("carol"), [carol])
        self.assertEqual(await self.found("jones"), [carol])
        dave = await self.deliver(message("Hi", to="Dave Lee <dave.lee@example.com>"))
        self.assertEqual(await self.found("dave"), [dave])
        self.assertEqual(await self.found("dave.lee@example.com"), [dave])

    async def test_case_and_accents(self):
        """Case and accents are ignored on both sides, in several scripts."""
        creme = await self.deliver(message("Crème brûlée au Château"))
        strasse = await self.deliver(message("Die Straße ist NAß", body="Ärger über Öl"))
        greek = await self.deliver(message("Καλημέρα", body="Привет МИР"))
        self.assertEqual(await self.found("creme brulee"), [creme])
        self.assertEqual(await self.found("CHÂTEAU"), [creme])
        self.assertEqual(await self.found("arger uber"), [strasse])
        self.assertEqual(await self.found("strasse"), [strasse])
        self.assertEqual(await self.found("καλημερα"), [greek])
        self.assertEqual(await self.found("мир"), [greek])

    async def test_prefix_on_last_word(self):
        """The last word matches as a prefix (typing); the others must be whole words."""
        budget = await self.deliver(message("Budget review"))
        self.assertEqual(await self.found("bud"), [budget])
        self.assertEqual(await self.found("budget rev"), [budget])
        self.assertEqual(await self.found("bud review"), [])

    async def test_every_word_required(self):
        """All words of the query must match."""
        both = await self.deliver(message("Budget review"))
        await self.deliver(message("Budget"))
        self.assertEqual(await self.found("review budget"), [both])

    async def test_no_words(self):
        """A text of punctuation only finds nothing; no text at all finds everything."""
        one = await self.deliver(message("First"))
        two = await self.deliver(message("Second"))
        self.assertEqual(await self.found("!!! ..."), [])
        self.assertEqual(sorted(await self.found(None)), sorted([one, two]))

    async def test_newest_first_and_paging(self):
        """Hits come newest first, a page at a time, with the total."""
        ids = [await self.deliver(message(f"Report {n}"), received=NOW + timedelta(hours=n)) for n in range(25)]
        newest_first = list(reversed(ids))
        query = MailboxQuery("report")
        first = await self.store.search.mailbox(self.alice.id, query, 0, 10)
        third = await self.store.search.mailbox(self.alice.id, query, 20, 10)
        past = await self.store.search.mailbox(self.alice.id, query, 30, 10)
        self.assertEqual([h.item_id for h in first.hits], newest_first[:10])
        self.assertEqual([h.item_id for h in third.hits], newest_first[20:])
        self.assertEqual((first.total, third.total, past.total), (25, 25, 25))
        self.assertEqual(past.hits, [])
        self.assertEqual(first.hits[0].server_id, f"{self.inbox.id}:{ids[-1]}")

    async def test_estimated_total(self):
        """Past COUNT_LIMIT matches the total is an estimate, flagged, and promises a next page."""
        self.patch(search_module, "COUNT_LIMIT", 5)
        for n in range(40):
            await self.deliver(message(f"Report {n}" if n % 2 else f"Memo {n}"))
        await self.database.execute("ANALYZE items")
        first = await self.store.search.mailbox(self.alice.id, MailboxQuery("report"), 0, 2)
        self.assertEqual(len(first.hits), 2)
        self.assertTrue(first.total_estimated)
        self.assertGreaterEqual(first.total, 5)
        self.assertLessEqual(first.total, 40)
        deep = await self.store.search.mailbox(self.alice.id, MailboxQuery("report"), 16, 2)
        self.assertTrue(deep.total_estimated)
        self.assertGreaterEqual(deep.total, 19)

    async def test_end_of_result_is_exact(self):
        """A page that is not full, or one past the end, gives the exact total."""
        self.patch(search_module, "COUNT_LIMIT", 5)
        for n in range(12):
            await self.deliver(message(f"Report {n}"))
        last = await self.store.search.mailbox(self.alice.id, MailboxQuery("report"), 10, 5)
        self.assertEqual((len(last.hits), last.total, last.total_estimated), (2, 12, False))
        self.patch(search_module, "COUNT_LIMIT", 500)
        beyond = await self.store.search.mailbox(self.alice.id, MailboxQuery("report"), 20, 5)
        self.assertEqual((beyond.hits, beyond.total, beyond.total_estimated), ([], 12, False))

    async def test_folder_and_subfolders(self):
        """A folder limits the search; deep traversal adds its subfolders."""
        projects, _ = await self.store.folders.create(self.alice.id, None, "Projects", USER_MAIL)
        archive, _ = await self.store.folders.create(self.alice.id, projects.id, "Archive", USER_MAIL)
        sent = await self.store.folders.by_type(self.alice.id, SENT_ITEMS)
        top = await self.deliver(message("Plan"), folder=projects)
        below = await self.deliver(message("Plan"), folder=archive)
        elsewhere = await self.deliver(message("Plan"), folder=sent)
        self.assertEqual(await self.found("plan", folder_ids=(projects.id,)), [top])
        self.assertEqual(sorted(await self.found("plan", folder_ids=(projects.id,), deep=True)), sorted([top, below]))
        self.assertEqual(sorted(await self.found("plan")), sorted([top, below, elsewhere]))

    async def test_date_bounds(self):
        """GreaterThan and LessThan are exclusive bounds on the date received."""
        old = await self.deliver(message("Note"), received=NOW - timedelta(days=10))
        mid = await self.deliver(message("Note"), received=NOW - timedelta(days=5))
        new = await self.deliver(message("Note"), received=NOW)
        self.assertEqual(await self.found("note", received_after=NOW - timedelta(days=5)), [new])
        self.assertEqual(await self.found("note", received_before=NOW - timedelta(days=5)), [old])
        self.assertEqual(
            await self.found("note", received_after=NOW - timedelta(days=6), received_before=NOW), [mid]
        )

    async def test_other_accounts_never_found(self):
        """Another account's messages and folders are out of reach."""
        bob = await self.store.create_account("bob@example.org", "Bob", hash_password("pw"))
        bob_inbox = await self.store.folders.by_type(bob.id, INBOX)
        await self.deliver(message("Secret merger"), folder=bob_inbox, account=bob)
        mine = await self.deliver(message("Public merger"))
        self.assertEqual(await self.found("merger"), [mine])
        with self.assertRaises(NoSuchFolder):
            await self.found("merger", folder_ids=(bob_inbox.id,))

    async def test_nul_and_surrogates_stored(self):
        """Text PostgreSQL would refuse is cleaned, and the rest stays searchable."""
        new = NewItem("Email", b"x", search=SearchText("Odd \udcff subject", "", "zero\x00byte"))
        (item_id,) = await self.store.items.deliver([(self.alice.id, self.inbox.id)], new)
        self.assertEqual(await self.found("odd subject"), [item_id])
        self.assertEqual(await self.found("byte"), [item_id])

    async def test_unsearchable_items(self):
        """Items stored without search text are never found by words."""
        await self.store.items.deliver([(self.alice.id, self.inbox.id)], NewItem("Email", b"x"))
        self.assertEqual(await self.found("x"), [])


class NormalisationTests(SearchTestCase):
    def test_words(self):
        """Punctuation splits words exactly as the index does."""
        self.assertEqual(fulltext.words("alice@example.org e-mail 3.14 don't"),
                         ["alice", "example", "org", "e", "mail", "3", "14", "don", "t"])

    def test_tsquery(self):
        """Words are quoted and ANDed, the last one a prefix; no words, no query."""
        self.assertEqual(fulltext.tsquery(["a", "b"]), "'a' & 'b':*")
        self.assertEqual(fulltext.prefix_tsquery(["a", "b"]), "'a':* & 'b':*")
        self.assertIsNone(fulltext.tsquery([]))


class DirectoryTests(SearchTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.bob = await self.store.create_account("bob.durand@example.org", "Robert Durand", hash_password("pw"))
        self.eloise = await self.store.create_account("eloise@example.org", "Éloïse Lefèvre", hash_password("pw"))

    async def addresses(self, text: str) -> list[str]:
        entries, _ = await self.store.search.directory(text, 100)
        return [entry.address for entry in entries]

    async def test_name_prefixes(self):
        """Any word of the name or address matches by prefix, accents folded."""
        self.assertEqual(await self.addresses("rob"), ["bob.durand@example.org"])
        self.assertEqual(await self.addresses("dur"), ["bob.durand@example.org"])
        self.assertEqual(await self.addresses("eloise lef"), ["eloise@example.org"])
        self.assertEqual(await self.addresses("bob.d"), ["bob.durand@example.org"])
        self.assertEqual(await self.addresses("example"),
                         ["alice@example.org", "bob.durand@example.org", "eloise@example.org"])
        self.assertEqual(await self.addresses("nobody"), [])

    async def test_alias_and_disabled(self):
        """An alias finds its account; a disabled account is never listed."""
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")
        self.assertEqual(await self.addresses("sales"), ["alice@example.org"])
        await self.store.accounts.set_disabled("eloise@example.org", True)
        self.assertEqual(await self.addresses("eloise"), [])

    async def test_limit_and_total(self):
        """At most the limit is returned, with the number of matches."""
        entries, total = await self.store.search.directory("example", 2)
        self.assertEqual((len(entries), total), (2, 3))

    async def test_by_address(self):
        """An exact address or alias resolves; anything else does not."""
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")
        self.assertEqual((await self.store.search.by_address("Sales@Example.org")).address, "alice@example.org")
        self.assertIsNone(await self.store.search.by_address("sales@example"))

    def test_first_last(self):
        """First and last names come from "First Last" or "Last, First"."""
        entry = search_module.DirectoryEntry
        self.assertEqual(entry(1, "a@x", "Anne Marie Dupont").first_last, ("Anne Marie", "Dupont"))
        self.assertEqual(entry(1, "a@x", "Dupont, Anne").first_last, ("Anne", "Dupont"))
        self.assertIsNone(entry(1, "a@x", "Anne").first_last)
        self.assertEqual(entry(1, "anne.d@x", "").alias, "anne.d")


class BackfillTests(DatabaseTestCase):
    async def _set_up(self):
        self.dsn = await new_database(self, template=None)
        self.database = await connect(self.dsn, 1)
        self.addCleanup(self.database.close)

    async def test_existing_mail_indexed(self):
        """Migration 006 indexes mail stored before it by subject and people."""
        earlier = [m for m in migrations.available_migrations() if m.name < "006"]

        async def apply(transaction):
            await transaction.execute(
                "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in earlier:
                await transaction.execute(migration.sql)
                await transaction.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                                          (migration.version, migration.name))
            await transaction.execute(
                "INSERT INTO accounts (id, address, password_hash) VALUES (1, 'alice@example.org', 'x');"
                "INSERT INTO folders (id, account_id, name, type, content_class, hierarchy_modseq,"
                " created_hierarchy_modseq) VALUES (1, 1, 'Inbox', 2, 'Email', 1, 1);"
                "INSERT INTO items (account_id, folder_id, modseq, created_modseq, content_class, content,"
                " subject, from_address, summary) VALUES (1, 1, 1, 1, 'Email', '', 'Crème budget',"
                " 'Bob <bob@example.net>', '{\"to\": \"Carol <carol@example.com>\"}')"
            )

        await self.database.transaction(apply)
        await migrations.migrate(self.database)
        self.store = Store(self.database)
        for text in ("creme", "bob", "carol", "example"):
            result = await self.store.search.mailbox(1, MailboxQuery(text), 0, 10)
            self.assertEqual(len(result.hits), 1, text)

"""
MoveItems end to end: WBXML over TCP to the real Site, on a real
PostgreSQL, with mail stored as LMTP delivery stores it.
"""

import psycopg2

from bluesync.store import folders as F
from tests.eas.client import find, text
from tests.eas.mailbox import MailboxTestCase, message


def move(*moves: tuple[str, str, str]) -> str:
    body = "".join(
        f"<Move><SrcMsgId>{item}</SrcMsgId><SrcFldId>{source}</SrcFldId><DstFldId>{destination}</DstFldId></Move>"
        for item, source, destination in moves
    )
    return f'<MoveItems xmlns="Move:">{body}</MoveItems>'


def results(answer) -> list[tuple[str, str, str | None]]:
    return [
        (text(r, "move:SrcMsgId"), text(r, "move:Status"), text(r, "move:DstMsgId"))
        for r in find(answer.document, "/move:MoveItems/move:Response")
    ]


class MoveItemsTests(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.projects, _ = await self.store.folders.create(self.account.id, None, "Projects", F.USER_MAIL)
        self.item = await self.deliver(message(1, "Quarterly report"))
        self.server_id = f"{self.inbox.id}:{self.item}"

    async def moves(self, *moves: tuple[str, str, str], client=None):
        return await (client or self.client).post("MoveItems", move(*moves))

    async def to_projects(self):
        return await self.moves((self.server_id, self.inbox.server_id, self.projects.server_id))

    async def test_success(self):
        """A move answers Status 3 and the new ServerId, and the item is in the destination."""
        answer = await self.to_projects()
        self.assertEqual(results(answer), [(self.server_id, "3", f"{self.projects.id}:{self.item}")])
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 0)
        self.assertEqual(await self.store.items.count(self.account.id, self.projects.id), 1)
        moved = await self.store.items.get(self.account.id, self.item)
        self.assertEqual(moved.folder_id, self.projects.id)

    async def test_other_device_sees_both_folders(self):
        """Another device gets the Delete in the source and the Add in the destination; the mover gets neither."""
        other = await self.provisioned("DEVICEB")
        keys = {}
        for client in (self.client, other):
            for folder in (self.inbox, self.projects):
                keys[client.device_id, folder.id], _ = await self.synced(client, folder)
        answer = await self.to_projects()
        self.assertEqual(results(answer)[0][1], "3")
        new_id = f"{self.projects.id}:{self.item}"
        _, adds, deletes = await self.changes(other, self.inbox, keys["DEVICEB", self.inbox.id])
        self.assertEqual((adds, deletes), ([], [self.server_id]))
        _, adds, deletes = await self.changes(other, self.projects, keys["DEVICEB", self.projects.id])
        self.assertEqual((adds, deletes), ([new_id], []))
        for folder in (self.inbox, self.projects):
            _, adds, deletes = await self.changes(self.client, folder, keys["DEVICEA", folder.id])
            self.assertEqual((adds, deletes), ([], []))

    async def test_mover_still_gets_later_changes(self):
        """Not echoing the move does not hide mail that arrives in the destination afterwards."""
        key, _ = await self.synced(self.client, self.projects)
        await self.client.post("MoveItems", move((self.server_id, self.inbox.server_id, self.projects.server_id)))
        later = await self.deliver(message(2, "Later"), folder=self.projects)
        _, adds, _ = await self.changes(self.client, self.projects, key)
        self.assertEqual(adds, [f"{self.projects.id}:{later}"])

    async def test_invalid_source(self):
        """An unknown source folder, or an item that is not in it, is Status 1."""
        answer = await self.client.post("MoveItems", move(
            (self.server_id, "999999", self.projects.server_id),
            (f"{self.inbox.id}:999999", self.inbox.server_id, self.projects.server_id),
            (f"{self.projects.id}:{self.item}", self.projects.server_id, self.inbox.server_id),
            ("garbage", self.inbox.server_id, self.projects.server_id),
        ))
        self.assertEqual([status for _, status, _ in results(answer)], ["1", "1", "1", "1"])
        self.assertEqual([new for _, _, new in results(answer)], [None] * 4)
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 1)

    async def test_foreign_source_like_missing(self):
        """Another account's folder and message are answered exactly like missing ones."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        bob_item = await self.deliver(message(9, "private"), account=bob, folder=bob_inbox)
        foreign_item = f"{bob_inbox.id}:{bob_item}"
        foreign = await self.moves((foreign_item, bob_inbox.server_id, self.projects.server_id))
        missing = await self.moves((foreign_item, "999999", self.projects.server_id))
        self.assertEqual(results(foreign), [(foreign_item, "1", None)])
        self.assertEqual(foreign.body, missing.body)
        smuggled = await self.moves((foreign_item, self.inbox.server_id, self.projects.server_id))
        self.assertEqual(results(smuggled), [(foreign_item, "1", None)])
        self.assertEqual(await self.store.items.count(bob.id, bob_inbox.id), 1)

    async def test_invalid_destination(self):
        """An unknown or foreign destination is Status 2 and nothing moves."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        answer = await self.client.post("MoveItems", move(
            (self.server_id, self.inbox.server_id, "999999"),
            (self.server_id, self.inbox.server_id, bob_inbox.server_id),
        ))
        self.assertEqual(results(answer), [(self.server_id, "2", None)] * 2)
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 1)
        self.assertEqual(await self.store.items.count(bob.id, bob_inbox.id), 0)

    async def test_same_folder(self):
        """Source and destination the same is Status 4."""
        answer = await self.moves((self.server_id, self.inbox.server_id, self.inbox.server_id))
        self.assertEqual(results(answer), [(self.server_id, "4", None)])

    async def test_other_class(self):
        """A message cannot go into a calendar: Status 5."""
        calendar = await self.folder(F.CALENDAR)
        answer = await self.moves((self.server_id, self.inbox.server_id, calendar.server_id))
        self.assertEqual(results(answer), [(self.server_id, "5", None)])
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 1)

    async def test_locked(self):
        """An item another transaction holds is Status 7, and moves once it is released."""
        connection = psycopg2.connect(self.dsn)
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM items WHERE id = %s FOR UPDATE", (self.item,))
        request = move((self.server_id, self.inbox.server_id, self.projects.server_id))
        answer = await self.client.post("MoveItems", request)
        self.assertEqual(results(answer), [(self.server_id, "7", None)])
        connection.rollback()
        answer = await self.client.post("MoveItems", request)
        self.assertEqual(results(answer)[0][1], "3")

    async def test_several_moves_in_order(self):
        """Each Move gets its own Response, in request order."""
        second = await self.deliver(message(2))
        second_id = f"{self.inbox.id}:{second}"
        answer = await self.client.post("MoveItems", move(
            (self.server_id, self.inbox.server_id, self.trash.server_id),
            (second_id, self.inbox.server_id, self.inbox.server_id),
            (second_id, self.inbox.server_id, self.projects.server_id),
        ))
        self.assertEqual(results(answer), [
            (self.server_id, "3", f"{self.trash.id}:{self.item}"),
            (second_id, "4", None),
            (second_id, "3", f"{self.projects.id}:{second}"),
        ])

    async def test_moved_twice(self):
        """Moving an item away again from where it was is Status 1 the second time."""
        request = move((self.server_id, self.inbox.server_id, self.projects.server_id))
        await self.client.post("MoveItems", request)
        answer = await self.client.post("MoveItems", request)
        self.assertEqual(results(answer), [(self.server_id, "1", None)])

    async def test_malformed(self):
        """A Move without DstFldId gets the common status 103 (14.0+) and moves nothing."""
        answer = await self.client.post(
            "MoveItems",
            f'<MoveItems xmlns="Move:"><Move><SrcMsgId>{self.server_id}</SrcMsgId>'
            f"<SrcFldId>{self.inbox.server_id}</SrcFldId></Move></MoveItems>",
        )
        self.assertEqual(answer.code, 200)
        self.assertEqual(text(answer.document, "/move:MoveItems/move:Status"), "103")
        self.assertEqual(find(answer.document, "//move:Response"), [])
        wrong = await self.client.post("MoveItems", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                                                    "</FolderSync>")
        self.assertEqual(text(wrong.document, "/move:MoveItems/move:Status"), "103")
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 1)

    async def test_malformed_12_1(self):
        """12.1 has no common status codes: a malformed request is HTTP 400."""
        old = await self.provisioned("OLDPHONE", "12.1")
        answer = await old.post("MoveItems", '<MoveItems xmlns="Move:"/>')
        self.assertEqual(answer.code, 400)
        good = await old.post("MoveItems", move((self.server_id, self.inbox.server_id, self.projects.server_id)))
        self.assertEqual(results(good)[0][1], "3")

    async def test_contact_between_contact_folders(self):
        """A contact moves to another contacts folder, and cannot go into a mail folder."""
        contacts = await self.folder(F.CONTACTS)
        friends, _ = await self.store.folders.create(self.account.id, None, "Friends", F.USER_CONTACTS)
        server_id = await self.add_contact(contacts)
        into_mail = await self.moves((server_id, contacts.server_id, self.projects.server_id))
        self.assertEqual(results(into_mail), [(server_id, "5", None)])
        answer = await self.moves((server_id, contacts.server_id, friends.server_id))
        self.assertEqual(results(answer), [(server_id, "3", f"{friends.id}:{server_id.partition(':')[2]}")])
        self.assertEqual(await self.store.items.count(self.account.id, friends.id), 1)

"""
A mailbox for end-to-end command tests: an account with its default
folders, mail stored the way LMTP delivery stores it (columns included, so
conversation ids are there), provisioned clients, and Sync round trips.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bluesync.mail.delivery import new_email_item
from bluesync.store import folders as F
from tests.eas.client import EASClient, find, text
from tests.support import SiteTestCase

DATA = Path(__file__).resolve().parent.parent / "items" / "data"

PLAIN = "<airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type></airsyncbase:BodyPreference>"


CONTACT = ("<contacts:FileAs>Martin, Anna</contacts:FileAs><contacts:FirstName>Anna</contacts:FirstName>"
           "<contacts:LastName>Martin</contacts:LastName><contacts:Email1Address>anna@example.fr"
           "</contacts:Email1Address>")


def message(number: int, subject: str | None = None, references: str | None = None) -> bytes:
    """
    A small plain-text message; C{references} puts it in the thread of
    that Message-ID.
    """
    date = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc) - timedelta(minutes=number)
    thread = f"References: <{references}>\r\nIn-Reply-To: <{references}>\r\n" if references else ""
    return (
        f"From: Bob Example <bob@example.net>\r\nTo: Alice <alice@example.org>\r\n"
        f"Subject: {subject or f'Message {number}'}\r\nDate: {date:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Message-ID: <m{number}@example.net>\r\n{thread}Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Body of message {number}.\r\n"
    ).encode()


def sync_request(collection_id: str, key: str, options: str = PLAIN, commands: str = "") -> str:
    return (
        '<Sync xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:"><Collections><Collection>'
        f"<SyncKey>{key}</SyncKey><CollectionId>{collection_id}</CollectionId>"
        f"<Options>{options}</Options>"
        f"{('<Commands>' + commands + '</Commands>') if commands else ''}"
        "</Collection></Collections></Sync>"
    )


def commands(answer, kind: str) -> list[str]:
    """
    The ServerIds of the Sync answer's commands of one kind (Add, Delete...).
    """
    if answer.document is None:
        return []
    return [text(e, "airsync:ServerId") for e in find(answer.document, f"//airsync:Commands/airsync:{kind}")]


class MailboxTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account()
        self.inbox = await self.folder(F.INBOX)
        self.trash = await self.folder(F.DELETED_ITEMS)
        self.client = await self.provisioned("DEVICEA")

    async def folder(self, folder_type: int, account=None):
        return await self.store.folders.by_type((account or self.account).id, folder_type)

    def client_for(self, device_id: str, version: str = "16.1", user="alice@example.org",
                   password="correct horse") -> EASClient:
        return EASClient(self.base_url, user, password, device_id=device_id, version=version, pool=self.pool)

    async def provisioned(self, device_id: str, version: str = "16.1", **kwargs) -> EASClient:
        client = self.client_for(device_id, version, **kwargs)
        await client.provision()
        return client

    async def deliver(self, raw: bytes, account=None, folder=None) -> int:
        """
        Store C{raw} as LMTP delivery does; return the item id.
        """
        account = account or self.account
        folder = folder or self.inbox
        (item_id,) = await self.store.items.deliver([(account.id, folder.id)],
                                                    new_email_item(raw, datetime.now(timezone.utc)))
        return item_id

    async def sync(self, client, collection_id: str, key: str, **kwargs):
        answer = await client.post("Sync", sync_request(collection_id, key, **kwargs))
        self.assertEqual(answer.code, 200, answer)
        return answer

    async def synced(self, client, folder) -> tuple[str, list[str]]:
        """
        Sync C{folder} from scratch; return its key and the ServerIds added.
        """
        answer = await self.sync(client, folder.server_id, "0")
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        answer = await self.sync(client, folder.server_id, key)
        if answer.document is None:
            return key, []
        return text(answer.document, "//airsync:Collection/airsync:SyncKey"), commands(answer, "Add")

    async def changes(self, client, folder, key: str):
        """
        The next Sync of C{folder}: (new key, Adds, Deletes).
        """
        answer = await self.sync(client, folder.server_id, key)
        if answer.document is None:
            return key, [], []
        return (text(answer.document, "//airsync:Collection/airsync:SyncKey"),
                commands(answer, "Add"), commands(answer, "Delete"))

    async def add_contact(self, folder, client=None) -> str:
        """
        Add L{CONTACT} to C{folder} through Sync, as a phone does; return
        its ServerId.
        """
        client = client or self.client
        answer = await self.sync(client, folder.server_id, "0")
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        answer = await client.post(
            "Sync",
            '<Sync xmlns="AirSync:" xmlns:contacts="Contacts:"><Collections><Collection>'
            f"<SyncKey>{key}</SyncKey><CollectionId>{folder.server_id}</CollectionId><Commands><Add>"
            f"<ClientId>c1</ClientId><ApplicationData>{CONTACT}</ApplicationData></Add></Commands>"
            "</Collection></Collections></Sync>",
        )
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Add/airsync:Status"), "1", answer)
        return text(answer.document, "//airsync:Responses/airsync:Add/airsync:ServerId")

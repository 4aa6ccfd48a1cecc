"""
Device management tests: the real Site over TCP with the server's guard,
phones that provision and sync, and the administrator's actions as the CLI
and the admin page run them (bluesync.devices.actions).
"""

from __future__ import annotations

import dataclasses

from twisted.internet import reactor

from bluesync.devices.actions import Administration
from bluesync.devices.guard import Guard
from bluesync.store.folders import INBOX
from bluesync.web.site import build_site
from tests.eas.client import EASClient, find, text
from tests.support import SiteTestCase

PASSWORD = "correct horse"
OUTLOOK_UA = "Outlook-iOS-Android/1.0"
FOLDERSYNC_0 = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
SETTINGS_GET = '<Settings xmlns="Settings:"><UserInformation><Get/></UserInformation></Settings>'


def ping_xml(heartbeat: int, folder_id: int) -> str:
    return (f'<Ping xmlns="Ping:"><HeartbeatInterval>{heartbeat}</HeartbeatInterval><Folders><Folder>'
            f"<Id>{folder_id}</Id><Class>Email</Class></Folder></Folders></Ping>")


def sync_xml(collection_id, key: str) -> str:
    return ('<Sync xmlns="AirSync:"><Collections><Collection>'
            f"<SyncKey>{key}</SyncKey><CollectionId>{collection_id}</CollectionId>"
            "</Collection></Collections></Sync>")


def status(answer, path: str) -> str | None:
    if answer.code != 200 or answer.document is None:
        raise AssertionError(f"not a WBXML answer: {answer!r}")
    return text(answer.document, path)


class DeviceTestCase(SiteTestCase):
    """
    An account (alice) with the site of the server: guard included, on
    C{self.clock} (the reactor unless a test case sets C{fake_clock}).
    """

    timeout = 120
    clock = None

    async def _set_up(self) -> None:
        await super()._set_up()
        clock = self.clock or reactor
        self.guard = Guard(self.config.devices, clock, self.notifier)
        self.context = dataclasses.replace(self.context, clock=clock, guard=self.guard)
        self.site = build_site(self.context)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base_url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.account = await self.create_account(password=PASSWORD)
        self.inbox = await self.store.folders.by_type(self.account.id, INBOX)
        self.admin = Administration(self.store, self.config, "test:admin", clock)

    def phone(self, device_id: str = "PHONE1", version: str = "16.1", user_agent: str = "Apple-iPhone15C2/2301.341",
              device_type: str = "iPhone") -> EASClient:
        return EASClient(self.base_url, self.account.address, PASSWORD, device_id=device_id, version=version,
                         user_agent=user_agent, device_type=device_type, pool=self.pool)

    async def ready(self, client: EASClient) -> str:
        """
        Provision and FolderSync; return the hierarchy sync key.
        """
        await client.provision()
        answer = await client.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual(status(answer, "folderhierarchy:Status"), "1", answer)
        return status(answer, "folderhierarchy:SyncKey")

    async def device(self, device_id: str = "PHONE1"):
        return await self.store.devices.get(self.account.id, device_id)

    async def inbox_subjects(self) -> list[str]:
        items = await self.store.items.folder_items(self.account.id, self.inbox.id)
        return [item.summary.get("subject", "") for item in items]

    async def audit_actions(self) -> list[tuple[str, str, str]]:
        return [(record.actor, record.action, record.device) for record in await self.store.audit.list()]


__all__ = ["DeviceTestCase", "ping_xml", "sync_xml", "status", "find", "text", "OUTLOOK_UA", "SETTINGS_GET",
           "FOLDERSYNC_0", "PASSWORD"]

"""
Shared pieces of the push tests: waiting for a condition on the real
reactor (never asserting how long it took), and storing a message.
"""

from __future__ import annotations

from twisted.internet import defer, reactor, task

from bluesync.store.folders import INBOX
from bluesync.store.items import NewItem

MESSAGE = (
    b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: hello\r\n"
    b"Message-ID: <1@example.org>\r\n\r\nHi Alice.\r\n"
)


async def until(condition, what: str, limit: float = 20.0) -> None:
    """
    Poll C{condition()} on the reactor until it is true; fail after
    C{limit} seconds so a broken test ends instead of hanging.
    """
    waited = 0.0
    while not condition():
        if waited >= limit:
            raise AssertionError(f"gave up waiting for {what}")
        await task.deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


async def until_stored(check, what: str, limit: float = 20.0) -> None:
    """
    L{until} for a condition read from the database: C{await check()}.
    """
    waited = 0.0
    while not await check():
        if waited >= limit:
            raise AssertionError(f"gave up waiting for {what}")
        await task.deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


async def until_waiting_for_lock(database, what: str) -> None:
    """Wait until some session of the test database waits for a lock (C{what} is for the failure message)."""
    async def waiting() -> bool:
        row = await database.query_one("SELECT count(*) FROM pg_stat_activity"
                                       " WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return row[0] > 0

    await until_stored(waiting, what)


async def hold_folder_deletion(database, folder_id: int):
    """
    Do what FolderStore.delete does to one folder in a transaction held
    open: once this returns the folder's row is locked and marked deleted.
    Returns (release, done): fire C{release} to commit; C{done} fires then.
    """
    holding, release = defer.Deferred(), defer.Deferred()

    async def delete_slowly(transaction):
        await transaction.execute("SELECT 1 FROM folders WHERE id = %s FOR UPDATE", (folder_id,))
        await transaction.execute("UPDATE folders SET deleted = true WHERE id = %s", (folder_id,))
        await transaction.execute("DELETE FROM conversation_rules WHERE folder_id = %s", (folder_id,))
        holding.callback(None)
        await release

    done = defer.Deferred.fromCoroutine(database.transaction(delete_slowly))
    await holding
    return release, done


async def deliver(store, account_id: int, subject: str = "hello") -> int:
    """
    Store one message in the account's Inbox the way LMTP delivery does
    (items.deliver, one transaction, NOTIFY on commit); return the item id.
    """
    inbox = await store.folders.by_type(account_id, INBOX)
    (item_id,) = await store.items.deliver(
        [(account_id, inbox.id)],
        NewItem("Email", MESSAGE, summary={"subject": subject}, columns={"subject": subject}),
    )
    return item_id

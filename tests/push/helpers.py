"""
Shared pieces of the push tests: waiting for a condition on the real
reactor (never asserting how long it took), and storing a message.
"""

from __future__ import annotations

from twisted.internet import reactor, task

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

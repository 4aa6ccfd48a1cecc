"""
Final delivery: a received message becomes one Inbox item per account.

This is the glue between the pure email converter (items/email.py) and the
store.  The LMTP server calls it once per mail transaction, after the whole
message has arrived; nothing here speaks a protocol.

All copies of one message are written in one transaction, so the MTA is
told 250 only for a message that is committed for every recipient, and a
failure leaves nothing behind for it to duplicate on retry.  A meeting
message (iMIP) then updates the recipients' calendars, after that commit
and before the MTA is answered (bluesync/mail/calendar_ingest.py says why).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from bluesync.items.email import MessageSummary, prepare
from bluesync.items.records import to_record
from bluesync.mail import calendar_ingest
from bluesync.store.accounts import Account
from bluesync.store.fulltext import SearchText
from bluesync.store.items import MissingFolder, NewItem

CONTENT_CLASS = "Email"

# Kept out of items.summary: up to 100 KB of text per message that only
# Search needs, and that will live in a full-text column of its own.  The
# key stays (empty) so that from_record(MessageSummary, ...) still finds
# every field of the dataclass.
_SEARCH_TEXT = "body_text_for_search"


class NoInbox(Exception):
    """
    An accepted recipient's account has no Inbox folder to deliver to.
    """


def summary_record(summary: MessageSummary) -> dict[str, Any]:
    """
    The JSON-ready items.summary value of a parsed message.
    """
    record = _storable(to_record(summary))
    record[_SEARCH_TEXT] = ""
    return record


def new_email_item(raw: bytes, received: datetime) -> NewItem:
    """
    The item a delivery stores for C{raw}: the bytes untouched, the parsed
    summary, and the columns Sync filters and sorts on.  Pure and never
    raising, like L{parse_message}, so it may run in a worker thread.
    """
    summary, prepared = prepare(raw, received)
    columns = _storable({
        "subject": summary.subject,
        "from_address": summary.from_,
        "date_received": summary.received,
        "message_id": summary.message_id,
        "size": summary.size,
        "importance": summary.importance,
        "has_attachments": summary.has_attachments,
        "message_class": summary.message_class,
        "conversation_id": summary.conversation_id,
    })
    return NewItem(
        content_class=CONTENT_CLASS,
        content=raw,
        summary=summary_record(summary),
        columns=columns,
        rendition=to_record(prepared),
        search=SearchText(summary.subject, f"{summary.from_} {summary.to} {summary.cc}",
                          summary.body_text_for_search),
    )


async def deliver_item(store, recipients: Iterable[Account], item: NewItem) -> list[int]:
    """
    Store C{item} in the Inbox of each distinct account among
    C{recipients}, all or nothing; return the new item ids in the order of
    the accounts' first appearance.

    @raise NoInbox: if an account has no Inbox (nothing is stored).
    """
    accounts = []
    seen = set()
    for account in recipients:
        if account.id not in seen:
            seen.add(account.id)
            accounts.append(account)
    try:
        # None: the store finds each Inbox in the statement that delivers.
        item_ids = await store.items.deliver([(account.id, None) for account in accounts], item)
    except MissingFolder as e:
        raise NoInbox(next(a.address for a in accounts if a.id == e.args[0])) from None
    await calendar_ingest.process(store, accounts, item.content, message_class=item.columns.get("message_class"))
    return item_ids


async def deliver(store, recipients: list[Account], raw: bytes, received: datetime) -> list[int]:
    """
    Parse C{raw} and store one copy per distinct account, in one
    transaction.  Duplicate accounts (an address and its alias, or the
    same address twice) get one copy.
    """
    return await deliver_item(store, recipients, new_email_item(raw, received))


def _storable(value: Any) -> Any:
    """
    C{value} with every string made storable by PostgreSQL: text and jsonb
    refuse NUL characters and unpaired surrogates, and a message must never
    be refused for what its headers contain.  The converter already strips
    them; this is the last line of defence, and cheap.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if not value.isascii():
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value

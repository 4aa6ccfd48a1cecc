"""
Items -> EAS ApplicationData, per content class.

The sync, ItemOperations and Search commands all serve items; this module
picks the converter in bluesync/items/ for the item's class and feeds it
the stored content, summary and shared state.
"""

from __future__ import annotations

from bluesync.eas.syncoptions import SyncOptions
from bluesync.items import email
from bluesync.items.records import from_record
from bluesync.store.items import Item

PLAIN_TEXT = (email.BodyPreference(1, None),)


def email_state(item: Item) -> email.ItemState:
    return email.ItemState(
        read=item.read,
        flag=from_record(email.Flag, item.flag) if item.flag else None,
        categories=tuple(item.categories),
        last_verb_executed=item.last_verb,
        last_verb_time=item.last_verb_time,
    )


def application_data(item: Item, server_id: str, version: str, options: SyncOptions):
    """
    The full ApplicationData of an item, or None for a class we cannot
    serve yet (it is then left out of the response, never half-sent).
    """
    if item.content_class == "Email":
        summary = from_record(email.MessageSummary, item.summary)
        return email.application_data(
            item.content,
            summary,
            email_state(item),
            version=version,
            body_preferences=options.body_preferences or PLAIN_TEXT,
            mime_support=options.mime_support,
            mime_truncation=options.mime_truncation,
            file_reference_prefix=f"{server_id}:",
            prepared=from_record(email.Rendition, item.rendition) if item.rendition else None,
        )
    return None


def change_data(item: Item, version: str):
    """
    The ApplicationData of a server Change: only what can change.
    """
    if item.content_class == "Email":
        return email.change_data(email_state(item), version=version)
    return None

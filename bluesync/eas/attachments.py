"""
Attachments as devices name them: the FileReference of an
airsyncbase:Attachment, "folderid:itemid:partindex" (the Sync, Search and
ItemOperations answers build it from the item's ServerId and the part's
place in the message, bluesync/items/email.py).  Shared by ItemOperations
Fetch and GetAttachment.
"""

from __future__ import annotations

from bluesync.items import email
from bluesync.store.items import parse_server_id


def parse_file_reference(reference: str | None) -> tuple[int, int, int] | None:
    """
    (folder id, item id, part index) of a FileReference as we issue it, or
    None if it cannot be one.
    """
    if not reference:
        return None
    server_id, _, index = reference.rpartition(":")
    parsed = parse_server_id(server_id)
    if parsed is None or not index.isdigit() or len(index) > 9:
        return None
    return parsed[0], parsed[1], int(index)


async def find(store, account_id: int, reference: str | None) -> email.Attachment | None:
    """
    The attachment a FileReference names, with its data, if it is one of
    the account's: another account's is None, exactly like a missing one.
    """
    parsed = parse_file_reference(reference)
    if parsed is None:
        return None
    folder_id, item_id, index = parsed
    item = (await store.items.get_many(account_id, [item_id], folder_id)).get(item_id)
    if item is None or item.content_class != "Email":
        return None
    return email.attachment(item.content, index)

"""
bluesync-admin conversation list|delete: an account's MoveAlways rules.

    conversation list USER
    conversation delete USER CONVERSATION_ID

A phone's "always move this conversation" (ItemOperations Move with
MoveAlways) leaves a rule that sends the conversation's new messages to a
folder; nothing on the phone shows it afterwards.  list shows each rule
(the ConversationId in hex, the folder, its last use); delete ends one, so
the conversation's next messages go to the Inbox.  Unused rules go by
themselves after [mail] conversation_rule_days.
"""

from __future__ import annotations

import base64
import binascii
import sys
from datetime import timezone

COLUMNS = ("conversation_id", "folder_id", "folder", "last_used")


def register(subparsers) -> None:
    conversation = subparsers.add_parser("conversation", help="an account's conversation rules (MoveAlways)")
    commands = conversation.add_subparsers(dest="conversation_command", metavar="ACTION")
    commands.required = True

    listing = commands.add_parser("list", help="list an account's conversation rules, oldest use first")
    listing.add_argument("user")
    listing.set_defaults(run=_list, needs_store=True)

    delete = commands.add_parser("delete", help="delete a conversation rule")
    delete.add_argument("user")
    delete.add_argument("conversation_id", help="as conversation list shows it (hex; base64 is accepted too)")
    delete.set_defaults(run=_delete, needs_store=True)


def _error(message: str) -> int:
    print(f"bluesync-admin: {message}", file=sys.stderr)
    return 1


def parse_conversation_id(text: str) -> bytes | None:
    """
    The ConversationId as list prints it (hex), or as a phone sends it
    (base64 of the same bytes, e.g. copied from a device log).
    """
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None


async def _account(store, user: str):
    account = await store.accounts.by_address(user.lower())
    if account is None:
        _error(f"no account {user}")
    return account


async def _list(args, store) -> int:
    account = await _account(store, args.user)
    if account is None:
        return 1
    print("\t".join(COLUMNS))
    for rule in await store.conversations.list(account.id):
        folder = await store.folders.get(account.id, rule.folder_id)
        name = "-" if folder is None else folder.name + (" (deleted)" if folder.deleted else "")
        print("\t".join((
            rule.conversation_id.hex(), str(rule.folder_id), name,
            rule.updated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        )))
    return 0


async def _delete(args, store) -> int:
    conversation_id = parse_conversation_id(args.conversation_id)
    if conversation_id is None:
        return _error(f"{args.conversation_id!r} is not a ConversationId (hex or base64)")
    account = await _account(store, args.user)
    if account is None:
        return 1
    if not await store.conversations.delete(account.id, conversation_id):
        return _error(f"{args.user} has no rule for conversation {conversation_id.hex()}")
    print(f"conversation rule {conversation_id.hex()} of {account.address} deleted;"
          " its next messages go to the Inbox")
    return 0

"""
bluesync-admin admin add|list|passwd|delete: administrators of the admin
web page.  They are not mail accounts: an administrator needs no mailbox,
and no mailbox password opens the console.
"""

from __future__ import annotations

import re
import sys

from bluesync.admin.device_cmd import actor
from bluesync.admin.password_prompt import add_password_option, new_password_hash
from bluesync.store.admins import AdminExists
from bluesync.store.audit import AuditEntry

_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def register(subparsers) -> None:
    admin = subparsers.add_parser("admin", help="administrators of the admin web page")
    commands = admin.add_subparsers(dest="admin_command", metavar="ACTION")
    commands.required = True

    add = commands.add_parser("add", help="create an administrator")
    add.add_argument("name")
    add_password_option(add)
    add.set_defaults(run=_add, needs_store=True)

    listing = commands.add_parser("list", help="list administrators")
    listing.set_defaults(run=_list, needs_store=True)

    passwd = commands.add_parser("passwd", help="set an administrator's password")
    passwd.add_argument("name")
    add_password_option(passwd)
    passwd.set_defaults(run=_passwd, needs_store=True)

    delete = commands.add_parser("delete", help="delete an administrator")
    delete.add_argument("name")
    delete.set_defaults(run=_delete, needs_store=True)


def _error(message: str) -> int:
    print(f"bluesync-admin: {message}", file=sys.stderr)
    return 1


async def _add(args, store) -> int:
    if not _NAME.match(args.name):
        return _error(f"{args.name!r}: use 1 to 64 letters, digits and . _ @ -")
    password_hash = await new_password_hash(args)
    if password_hash is None:
        return 1
    try:
        await store.admins.add(args.name, password_hash, AuditEntry(actor(), "admin.add", detail=args.name))
    except AdminExists:
        return _error(f"administrator {args.name} already exists")
    print(f"administrator {args.name} created")
    return 0


async def _list(args, store) -> int:
    for admin in await store.admins.list():
        print(f"{admin.name}\t{admin.created_at:%Y-%m-%d}")
    return 0


async def _passwd(args, store) -> int:
    password_hash = await new_password_hash(args)
    if password_hash is None:
        return 1
    if not await store.admins.set_password_hash(args.name, password_hash,
                                                AuditEntry(actor(), "admin.passwd", detail=args.name)):
        return _error(f"no administrator {args.name}")
    print(f"password changed for administrator {args.name}")
    return 0


async def _delete(args, store) -> int:
    if not await store.admins.delete(args.name, AuditEntry(actor(), "admin.delete", detail=args.name)):
        return _error(f"no administrator {args.name}")
    print(f"administrator {args.name} deleted")
    return 0

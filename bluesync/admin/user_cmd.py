"""
bluesync-admin user add|list|passwd|disable|enable|delete|alias.
"""

from __future__ import annotations

import sys

from bluesync.admin.password_prompt import add_password_option, new_password_hash
from bluesync.store.accounts import AccountExists, NoSuchAccount


def register(subparsers) -> None:
    user = subparsers.add_parser("user", help="manage accounts")
    commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    commands.required = True

    add = commands.add_parser("add", help="create an account")
    add.add_argument("address")
    add.add_argument("--name", default="", help="display name, e.g. 'Alice Martin'")
    add_password_option(add)
    add.set_defaults(run=_add, needs_store=True)

    listing = commands.add_parser("list", help="list accounts")
    listing.set_defaults(run=_list, needs_store=True)

    passwd = commands.add_parser("passwd", help="set an account's password")
    passwd.add_argument("address")
    add_password_option(passwd)
    passwd.set_defaults(run=_passwd, needs_store=True)

    for name, disabled in (("disable", True), ("enable", False)):
        sub = commands.add_parser(name, help=f"{name} an account")
        sub.add_argument("address")
        sub.set_defaults(run=_set_disabled, needs_store=True, disabled=disabled)

    delete = commands.add_parser("delete", help="delete an account and all its data")
    delete.add_argument("address")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=_delete, needs_store=True)

    alias = commands.add_parser("alias", help="add another address delivering to an account")
    alias.add_argument("address")
    alias.add_argument("alias")
    alias.set_defaults(run=_alias, needs_store=True)


def _error(message: str) -> int:
    print(f"bluesync-admin: {message}", file=sys.stderr)
    return 1


def _valid_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(local and at and domain) and " " not in address


async def _add(args, store) -> int:
    if not _valid_address(args.address):
        return _error(f"{args.address!r} is not an email address")
    password_hash = await new_password_hash(args)
    if password_hash is None:
        return 1
    try:
        account = await store.create_account(args.address, args.name, password_hash)
    except AccountExists:
        return _error(f"{args.address} already exists")
    print(f"created {account.address}")
    return 0


async def _list(args, store) -> int:
    for account in await store.accounts.list():
        state = "disabled" if account.disabled else "active"
        print(f"{account.address}\t{account.display_name}\t{state}\t{account.created_at:%Y-%m-%d}")
    return 0


async def _passwd(args, store) -> int:
    password_hash = await new_password_hash(args)
    if password_hash is None:
        return 1
    try:
        await store.accounts.set_password_hash(args.address, password_hash)
    except NoSuchAccount:
        return _error(f"no account {args.address}")
    print(f"password changed for {args.address}")
    return 0


async def _set_disabled(args, store) -> int:
    try:
        await store.accounts.set_disabled(args.address, args.disabled)
    except NoSuchAccount:
        return _error(f"no account {args.address}")
    print(f"{args.address} {'disabled' if args.disabled else 'enabled'}")
    return 0


async def _delete(args, store) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            return _error("refusing to delete without --yes when not interactive")
        answer = input(f"Delete {args.address} and all its mail, contacts and calendars? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return _error("not deleted")
    try:
        await store.accounts.delete(args.address)
    except NoSuchAccount:
        return _error(f"no account {args.address}")
    print(f"deleted {args.address}")
    return 0


async def _alias(args, store) -> int:
    try:
        await store.accounts.add_alias(args.address, args.alias)
    except NoSuchAccount:
        return _error(f"no account {args.address}")
    except AccountExists:
        return _error(f"{args.alias} is already in use")
    print(f"{args.alias} now delivers to {args.address}")
    return 0

"""
bluesync-admin device: the partnerships of phones and accounts.

    device list [USER]                 one line per device, with its state
    device show USER DEVICEID          everything known about one device
    device allow|block|quarantine|wipe|account-wipe|cancel-wipe|reset|remove USER DEVICEID

Lists are tab-separated with a header line, so the output reads in a
terminal and feeds `cut`/`awk` alike; empty values are "-".  Actions take
effect on the device's next request, and end a Ping it holds at once, on
every bluesync process sharing the database (bluesync.devices.actions).
"""

from __future__ import annotations

import getpass
import os
import sys
import time

from bluesync.devices import state
from bluesync.devices.actions import DEVICE_ACTIONS, ActionError, Administration
from bluesync.devices.describe import cell, details, ping_state, policy_state, timestamp

COLUMNS = (
    "account", "device_id", "state", "why", "type", "model", "os", "user_agent", "imei", "phone",
    "protocol", "policy", "first_seen", "last_seen", "last_command", "ping", "wipe",
)

_HELP = {
    "allow": "let the device sync (overrides access rules, lifts an autoblock)",
    "block": "refuse the device (overrides access rules)",
    "quarantine": "refuse the device until it is allowed (overrides access rules)",
    "wipe": "factory-reset the device on its next request",
    "account-wipe": "remove only this account's data from the device (ActiveSync 16.1)",
    "cancel-wipe": "cancel a wipe the device has not acknowledged yet",
    "reset": "make the device resynchronise every folder (nothing is lost on the server)",
    "remove": "delete the partnership; the phone comes back as a new device",
}


def actor() -> str:
    """
    Who runs the CLI, for the audit trail: the user behind sudo if any.
    """
    name = os.environ.get("SUDO_USER")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = str(os.getuid())
    return f"cli:{name}"


def register(subparsers) -> None:
    device = subparsers.add_parser("device", help="inspect and manage phones")
    commands = device.add_subparsers(dest="device_command", metavar="ACTION")
    commands.required = True

    listing = commands.add_parser("list", help="list devices, of one account or of all")
    listing.add_argument("user", nargs="?", help="the account's address (or an alias)")
    listing.set_defaults(run=_list, needs_store=True)

    show = commands.add_parser("show", help="show everything known about one device")
    show.add_argument("user")
    show.add_argument("device_id")
    show.set_defaults(run=_show, needs_store=True)

    for action in DEVICE_ACTIONS:
        sub = commands.add_parser(action, help=_HELP[action])
        sub.add_argument("user", help="the account's address (or an alias)")
        sub.add_argument("device_id", help="the DeviceId, as device list shows it")
        sub.add_argument("--reason", default="", help="why, for the audit trail")
        sub.set_defaults(run=_act, needs_store=True, action=action)


def row(address: str, device, now: float | None = None) -> str:
    now = time.time() if now is None else now
    access = state.decide(device, now)
    values = (
        address, device.device_id, access.state, access.source, device.device_type, device.model, device.os,
        device.user_agent, device.imei, device.phone_number, device.protocol_version, policy_state(device),
        timestamp(device.first_seen), timestamp(device.last_seen), device.last_command, ping_state(device, now),
        device.wipe,
    )
    return "\t".join(cell(value) for value in values)


async def _list(args, store) -> int:
    if args.user:
        account = await store.accounts.by_address(args.user)
        if account is None:
            print(f"bluesync-admin: no account {args.user}", file=sys.stderr)
            return 1
        addresses = {account.id: account.address}
        devices = await store.devices.list(account.id)
    else:
        addresses = {account.id: account.address for account in await store.accounts.list()}
        devices = await store.devices.list()
    print("\t".join(COLUMNS))
    for device in devices:
        print(row(addresses.get(device.account_id, str(device.account_id)), device))
    return 0


async def _show(args, store) -> int:
    administration = Administration(store, args.loaded_config, actor())
    try:
        account, device = await administration.find(args.user, args.device_id)
    except ActionError as e:
        print(f"bluesync-admin: {e}", file=sys.stderr)
        return 1
    rule = await store.rules.get(device.rule_id) if device.rule_id is not None else None
    for label, value in details(account, device, rule):
        print(f"{label + ':':20}{value}")
    return 0


async def _act(args, store) -> int:
    administration = Administration(store, args.loaded_config, actor())
    try:
        message = await administration.run(args.action, args.user, args.device_id, args.reason)
    except ActionError as e:
        print(f"bluesync-admin: {e}", file=sys.stderr)
        return 1
    print(message)
    return 0

"""
bluesync-admin device list [USER]: the partnerships of phones and accounts.

One tab-separated line per device after a header line, so that the output
reads in a terminal and feeds `cut`/`awk` alike.  Empty values are "-".
"""

from __future__ import annotations

import sys
from datetime import timezone

COLUMNS = (
    "account", "device_id", "type", "model", "os", "user_agent", "imei", "phone",
    "protocol", "policy", "first_seen", "last_seen", "last_command", "wipe",
)


def register(subparsers) -> None:
    device = subparsers.add_parser("device", help="inspect phones")
    commands = device.add_subparsers(dest="device_command", metavar="ACTION")
    commands.required = True

    listing = commands.add_parser("list", help="list devices, of one account or of all")
    listing.add_argument("user", nargs="?", help="the account's address (or an alias)")
    listing.set_defaults(run=_list, needs_store=True)


def policy_state(device) -> str:
    """
    Where the device stands in MS-ASPROV provisioning.  The client status
    is what the device reported when it acknowledged the policy (1 applied,
    2 partly, 3 not at all, 4 managed by a third party).
    """
    if device.policy_key is not None:
        if device.policy_status in (None, 1):
            state = "provisioned"
        else:
            state = f"provisioned (client status {device.policy_status})"
        return state + (", re-provisioning" if device.pending_policy_key is not None else "")
    if device.pending_policy_key is not None:
        return "awaiting acknowledgement"
    return "not provisioned"


def _time(value) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _cell(value) -> str:
    text = str(value) if value not in (None, "") else "-"
    # Keep one device per line whatever a phone put in its strings.
    return " ".join(text.replace("\t", " ").splitlines())


def row(address: str, device) -> str:
    values = (
        address, device.device_id, device.device_type, device.model, device.os, device.user_agent,
        device.imei, device.phone_number, device.protocol_version, policy_state(device),
        _time(device.first_seen), _time(device.last_seen), device.last_command, device.wipe,
    )
    return "\t".join(_cell(value) for value in values)


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

"""
bluesync-admin rule add|list|delete: access rules by what a device says it is.

    rule add FIELD PATTERN ACTION [--priority N]
        FIELD is DeviceType, DeviceModel, DeviceOS or UserAgent; PATTERN
        matches the whole value, case-insensitively, with * for any run of
        characters and ? for one; ACTION is allow, block or quarantine.
    rule list
    rule delete ID

For a device without an administrator's decision of its own, the first
matching rule in (priority, id) order decides; without a matching rule,
the decision taken when the device was first seen ([policy]
unknown_device) stands.  A new rule applies to the next request of every
device it matches, and ends their held Pings at once.
"""

from __future__ import annotations

import sys
from datetime import timezone

from bluesync.admin.device_cmd import actor
from bluesync.devices.actions import ActionError, Administration
from bluesync.store.rules import FIELDS

COLUMNS = ("id", "priority", "field", "pattern", "action", "created_by", "created_at")


def register(subparsers) -> None:
    rule = subparsers.add_parser("rule", help="access rules by device type, model, OS or user agent")
    commands = rule.add_subparsers(dest="rule_command", metavar="ACTION")
    commands.required = True

    add = commands.add_parser("add", help="add an access rule")
    add.add_argument("field", help=", ".join(FIELDS))
    add.add_argument("pattern", help="e.g. 'Outlook-iOS-Android/*' (quote it: * and ? are wildcards)")
    add.add_argument("action", help="allow, block or quarantine")
    add.add_argument("--priority", type=int, help="rules are tried in increasing priority (default: after all)")
    add.add_argument("--reason", default="", help="why, for the audit trail")
    add.set_defaults(run=_add, needs_store=True)

    listing = commands.add_parser("list", help="list access rules in the order they are tried")
    listing.set_defaults(run=_list, needs_store=True)

    delete = commands.add_parser("delete", help="delete an access rule")
    delete.add_argument("id", type=int)
    delete.add_argument("--reason", default="", help="why, for the audit trail")
    delete.set_defaults(run=_delete, needs_store=True)


def _error(message: str) -> int:
    print(f"bluesync-admin: {message}", file=sys.stderr)
    return 1


async def _add(args, store) -> int:
    administration = Administration(store, args.loaded_config, actor())
    try:
        rule = await administration.add_rule(args.field, args.pattern, args.action, args.priority, args.reason)
    except ActionError as e:
        return _error(str(e))
    print(f"rule {rule.id} added: {rule.describe()} (priority {rule.priority})")
    return 0


async def _list(args, store) -> int:
    print("\t".join(COLUMNS))
    for rule in await store.rules.list():
        print("\t".join((
            str(rule.id), str(rule.priority), rule.field_name, rule.pattern, rule.action_name,
            rule.created_by or "-", rule.created_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        )))
    return 0


async def _delete(args, store) -> int:
    administration = Administration(store, args.loaded_config, actor())
    try:
        rule = await administration.delete_rule(args.id, args.reason)
    except ActionError as e:
        return _error(str(e))
    print(f"rule {rule.id} deleted: {rule.describe()}")
    return 0

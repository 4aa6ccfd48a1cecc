"""
bluesync-admin audit [--since WHEN]: the audit trail, oldest first.

Every administrative action (CLI and admin page) and every decision
bluesync takes by itself (autoblock), with who, what, when and why.
WHEN is a date (2024-05-01), a date and time (2024-05-01T14:00, UTC unless
an offset is given) or a duration back from now (30m, 12h, 7d).
"""

from __future__ import annotations

import sys
from datetime import timezone

from bluesync.devices.describe import parse_since

COLUMNS = ("at", "actor", "action", "account", "device", "detail")


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="list the audit trail")
    audit.add_argument("--since", help="a date, date and time, or duration back from now (7d)")
    audit.add_argument("--limit", type=int, default=1000, help="the newest this many entries (default 1000)")
    audit.set_defaults(run=_list, needs_store=True)


def _cell(value: str) -> str:
    return " ".join((value or "-").replace("\t", " ").splitlines())


async def _list(args, store) -> int:
    since = None
    if args.since:
        try:
            since = parse_since(args.since)
        except ValueError as e:
            print(f"bluesync-admin: --since: {e}", file=sys.stderr)
            return 2
    print("\t".join(COLUMNS))
    for record in await store.audit.list(since, max(1, args.limit)):
        at = record.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        print("\t".join(_cell(value) for value in (
            at, record.actor, record.action, record.account, record.device, record.detail)))
    return 0

"""
bluesync-admin: the administrator's command line.

It reads the same configuration as the server (--config or BLUESYNC_CONFIG)
and opens the same database, embedded or configured, so it works whether or
not the server is running.  Each command family lives in its own module and
registers itself here; commands that need the database are coroutines
C{run(args, store) -> int}, the others plain C{run(args) -> int}.
"""

from __future__ import annotations

import argparse
import sys

from bluesync.admin import (admin_cmd, audit_cmd, conversation_cmd, device_cmd, pim_cmd, rule_cmd, user_cmd,
                            wbxml_cmd)
from bluesync.config import ConfigError, load_config

_FAMILIES = (user_cmd, device_cmd, rule_cmd, conversation_cmd, audit_cmd, admin_cmd, pim_cmd, wbxml_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bluesync-admin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "-c", help="path to bluesync.ini (default: BLUESYNC_CONFIG or built-in defaults)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for family in _FAMILIES:
        family.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "needs_store", False):
        return args.run(args)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"bluesync-admin: {e}", file=sys.stderr)
        return 2
    # Commands that act for the administrator need it (mail hostname, policy).
    args.loaded_config = config
    return _run_with_store(config, args)


def _run_with_store(config, args) -> int:
    from twisted.internet import defer, task

    from bluesync.store.database import DatabaseUnavailable
    from bluesync.store.embedded import EmbeddedPostgresError
    from bluesync.store.migrations import SchemaError
    from bluesync.store.store import open_store

    result = {"code": 1}

    async def run(reactor) -> None:
        try:
            opened = await open_store(config)
        except (DatabaseUnavailable, EmbeddedPostgresError, SchemaError) as e:
            print(f"bluesync-admin: {e}", file=sys.stderr)
            result["code"] = 1
            return
        try:
            result["code"] = await args.run(args, opened.store)
        finally:
            await opened.close()

    try:
        task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))
    except SystemExit as e:
        if e.code not in (0, None):
            return int(e.code)
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())

"""
Numbered SQL migrations.

Each file in C{bluesync/store/migrations/} is named C{NNN_what.sql} and runs
once, in order, in its own transaction, recorded in C{schema_version}.  An
advisory lock serialises concurrent starters (two bluesync processes, or the
server and the CLI), so a migration never runs twice.  A database whose
schema is newer than this code is refused: running old code on it would
silently misread data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from twisted.logger import Logger

from bluesync.store.database import Database, Transaction

log = Logger()

_LOCK_KEY = 0x626C7565  # "blue"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class SchemaError(Exception):
    """
    The database schema cannot be used by this version of bluesync.
    """


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    migrations = []
    for entry in resources.files("bluesync.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            migrations.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migration files are not numbered 1..n: {versions}")
    return migrations


async def migrate(database: Database) -> list[str]:
    """
    Apply every migration not yet applied; return the names applied.
    """
    migrations = available_migrations()
    latest = migrations[-1].version if migrations else 0

    async def apply(transaction: Transaction) -> list[str]:
        await transaction.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await transaction.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await transaction.query("SELECT version FROM schema_version")
        applied = {row[0] for row in rows}
        if applied and max(applied) > latest:
            raise SchemaError(
                f"the database schema is at version {max(applied)}, newer than this "
                f"bluesync knows ({latest}); upgrade bluesync"
            )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            await transaction.execute(migration.sql)
            await transaction.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            done.append(migration.name)
        return done

    done = await database.transaction(apply)
    for name in done:
        log.info("applied migration {name}", name=name)
    return done


async def schema_version(database: Database) -> int:
    row = await database.query_one(
        "SELECT coalesce(max(version), 0) FROM schema_version"
    )
    return row[0]

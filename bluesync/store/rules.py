"""
Access rules: allow, block or quarantine devices by what they say they are
(DeviceType, DeviceModel, DeviceOS or UserAgent), with * and ? wildcards,
case-insensitive.

The rules are evaluated by PostgreSQL in the same statement that reads a
device (L{RULE_MATCH}), so a rule costs no extra round trip per request and
a new rule applies to the very next request of every process.  The first
matching rule in (priority, id) order decides; devices with an
administrator's decision of their own ignore the rules.

Adding or deleting a rule wakes the held requests of every device the rule
matches (NOTIFY in the same transaction), so a device it blocks learns it
at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bluesync.store import audit
from bluesync.store.audit import AuditEntry
from bluesync.store.changes import CHANNEL, device_payload
from bluesync.store.database import Database, Transaction

# The names administrators use (those of the EAS request and of
# Settings DeviceInformation) -> the devices column they match.
FIELDS = {
    "DeviceType": "device_type",
    "DeviceModel": "model",
    "DeviceOS": "os",
    "UserAgent": "user_agent",
}
FIELD_NAMES = {column: name for name, column in FIELDS.items()}

# Rule actions -> the access state they give.
ACTIONS = {"allow": "allowed", "block": "blocked", "quarantine": "quarantined"}
ACTION_NAMES = {state: name for name, state in ACTIONS.items()}

MAX_PATTERN_LENGTH = 256

# The value of the rule's field for the device aliased "d".
_FIELD_VALUE = (
    "CASE r.field WHEN 'device_type' THEN d.device_type WHEN 'model' THEN d.model"
    " WHEN 'os' THEN d.os ELSE d.user_agent END"
)


def _first_rule(column: str) -> str:
    return (
        f"(SELECT r.{column} FROM access_rules r WHERE {_FIELD_VALUE} ILIKE r.like_pattern"
        " ORDER BY r.priority, r.id LIMIT 1)"
    )


# SQL expressions giving the id and the action of the rule that decides for
# the device aliased "d" (NULL if none matches), for RETURNING clauses.
RULE_MATCH = (_first_rule("id"), _first_rule("action"))

# The same as a join, evaluated once per device, for SELECTs: the rule is
# "m" (m.id, m.action).
RULE_JOIN = (
    f"LEFT JOIN LATERAL (SELECT r.id, r.action FROM access_rules r WHERE {_FIELD_VALUE} ILIKE r.like_pattern"
    " ORDER BY r.priority, r.id LIMIT 1) m ON true"
)


class RuleError(ValueError):
    """
    A rule that cannot be stored; the message says why, for the administrator.
    """


@dataclass(frozen=True)
class Rule:
    id: int
    field: str
    pattern: str
    action: str
    priority: int
    created_by: str
    created_at: datetime

    @property
    def field_name(self) -> str:
        return FIELD_NAMES[self.field]

    @property
    def action_name(self) -> str:
        return ACTION_NAMES[self.action]

    def describe(self) -> str:
        return f"{self.action_name} {self.field_name} {self.pattern!r}"


_COLUMNS = "id, field, pattern, action, priority, created_by, created_at"


def like_pattern(pattern: str) -> str:
    """
    The ILIKE form of a wildcard pattern: * is any run of characters, ? one
    character, and everything else is literal (ILIKE's own % and _ and the
    escape character are escaped).
    """
    out = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def parse_field(name: str) -> str:
    """
    The column for a field name, accepted in any case.

    @raise RuleError: for a name that is not one of L{FIELDS}.
    """
    for known, column in FIELDS.items():
        if name.lower() == known.lower():
            return column
    raise RuleError(f"unknown field {name!r}: use one of {', '.join(FIELDS)}")


def parse_action(name: str) -> str:
    state = ACTIONS.get(name.strip().lower())
    if state is None:
        raise RuleError(f"unknown action {name!r}: use allow, block or quarantine")
    return state


class RuleStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def list(self) -> list[Rule]:
        rows = await self._database.query(f"SELECT {_COLUMNS} FROM access_rules ORDER BY priority, id")
        return [Rule(*row) for row in rows]

    async def get(self, rule_id: int) -> Rule | None:
        row = await self._database.query_one(f"SELECT {_COLUMNS} FROM access_rules WHERE id = %s", (rule_id,))
        return Rule(*row) if row else None

    async def add(self, field: str, pattern: str, action: str, *, priority: int | None = None,
                  created_by: str = "", entry: AuditEntry | None = None) -> Rule:
        """
        Store a rule (by default after every existing one) and wake the
        devices it matches.

        @param field: a column of L{FIELDS}; C{action} a state of L{ACTIONS}.
        @param entry: the audit entry, completed with the rule's description.
        @raise RuleError: for an empty or overlong pattern.
        """
        if field not in FIELD_NAMES:
            raise RuleError(f"unknown field {field!r}")
        if action not in ACTION_NAMES:
            raise RuleError(f"unknown action {action!r}")
        pattern = pattern.strip()
        if not pattern:
            raise RuleError("the pattern is empty (use * to match everything)")
        if len(pattern) > MAX_PATTERN_LENGTH or "\x00" in pattern:
            raise RuleError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters or not text")

        async def work(transaction: Transaction) -> Rule:
            # Serialises rule changes, so two "append" priorities never collide.
            await transaction.execute("LOCK TABLE access_rules IN SHARE ROW EXCLUSIVE MODE")
            chosen = priority
            if chosen is None:
                row = await transaction.query_one("SELECT coalesce(max(priority), 0) + 10 FROM access_rules")
                chosen = row[0]
            row = await transaction.query_one(
                "INSERT INTO access_rules (field, pattern, like_pattern, action, priority, created_by)"
                f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (field, pattern, like_pattern(pattern), action, chosen, created_by),
            )
            rule = Rule(*row)
            await _wake_matching(transaction, rule.id)
            await audit.write(transaction, _described(entry, rule))
            return rule

        return await self._database.transaction(work)

    async def delete(self, rule_id: int, *, entry: AuditEntry | None = None) -> Rule | None:
        """
        Delete a rule; wake the devices it matched.  None if there was no such rule.
        """

        async def work(transaction: Transaction) -> Rule | None:
            row = await transaction.query_one(f"SELECT {_COLUMNS} FROM access_rules WHERE id = %s", (rule_id,))
            if row is None:
                return None
            rule = Rule(*row)
            await _wake_matching(transaction, rule.id)
            await transaction.execute("DELETE FROM access_rules WHERE id = %s", (rule_id,))
            await audit.write(transaction, _described(entry, rule))
            return rule

        return await self._database.transaction(work)


def _described(entry: AuditEntry | None, rule: Rule) -> AuditEntry | None:
    if entry is None:
        return None
    detail = f"rule {rule.id}: {rule.describe()} (priority {rule.priority})"
    if entry.detail:
        detail += f": {entry.detail}"
    return AuditEntry(entry.actor, entry.action, entry.account, entry.device, detail)


async def _wake_matching(transaction: Transaction, rule_id: int) -> None:
    """
    NOTIFY every device the rule matches: their held Pings and Sync waits
    end and meet the access check again.
    """
    rows = await transaction.query(
        f"SELECT d.account_id, d.id FROM devices d JOIN access_rules r ON r.id = %s"
        f" WHERE {_FIELD_VALUE} ILIKE r.like_pattern",
        (rule_id,),
    )
    for account_id, device_pk in rows:
        transaction.notify(CHANNEL, device_payload(account_id, device_pk))

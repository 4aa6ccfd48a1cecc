"""
The devices table family: one row per partnership of a phone and an account.

Every write that changes what a device may do (access decision, autoblock,
wipe, sync state reset, removal) queues a NOTIFY for the device in its own
transaction, with its audit entry: on commit, the device's held Ping or Sync
wait ends on every bluesync process and its next request meets the access
check.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from datetime import datetime

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from bluesync.store import audit
from bluesync.store.audit import AuditEntry
from bluesync.store.changes import CHANNEL, HELD_PAYLOAD_SQL, HELD_PING, HELD_SYNC, device_payload
from bluesync.store.database import Database, Transaction
from bluesync.store.rules import RULE_JOIN, RULE_MATCH

log = Logger()


class TooManyDevices(Exception):
    """
    The account already has as many partnerships as it may; the new one
    was not created.
    """


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    account_id: int
    device_id: str
    device_type: str
    user_agent: str
    protocol_version: str
    pending_policy_key: int | None
    policy_key: int | None
    policy_status: int | None
    wipe: str
    wipe_requested_at: datetime | None
    wipe_acknowledged_at: datetime | None
    model: str
    imei: str
    friendly_name: str
    os: str
    os_language: str
    phone_number: str
    mobile_operator: str
    enable_outbound_sms: bool | None
    ping_heartbeat: int | None
    ping_folders: list[int] | None
    first_seen: datetime
    last_seen: datetime
    last_command: str
    last_sync: dict | None = None
    # Access (see bluesync.devices.state for what they mean together).
    access: str = "allowed"
    access_reason: str = "policy"
    blocked_until: datetime | None = None
    autoblock_reason: str = ""
    notice: str = ""
    ping_until: datetime | None = None
    # Not columns: the access rule that decides for the device, computed by
    # PostgreSQL in the same statement (bluesync.store.rules.RULE_MATCH).
    rule_id: int | None = None
    rule_action: str | None = None


_COMPUTED = ("rule_id", "rule_action")
_TABLE_FIELDS = [f.name for f in fields(Device) if f.name not in _COMPUTED]
# Every query that builds a Device reads the table aliased "d": SELECTs
# through _FROM, which joins the deciding rule once, writes with _COLUMNS
# in RETURNING.
_COLUMNS = ", ".join(["d." + name for name in _TABLE_FIELDS] + list(RULE_MATCH))
_SELECT = ", ".join(["d." + name for name in _TABLE_FIELDS] + ["m.id", "m.action"])
_FROM = f"devices d {RULE_JOIN}"

# Columns whose few values repeat over thousands of devices: each Device
# shares one string per value instead of holding its own copy, which every
# held Ping would otherwise keep for minutes.
_SHARED = frozenset(
    _TABLE_FIELDS.index(name)
    for name in ("device_type", "user_agent", "protocol_version", "wipe", "model", "os", "os_language",
                 "mobile_operator", "last_command", "access", "access_reason", "autoblock_reason", "notice")
)


def _device(row) -> Device:
    return Device(*[sys.intern(value) if i in _SHARED and type(value) is str else value
                    for i, value in enumerate(row)])


# The access states a device may be given.
ACCESS_STATES = ("allowed", "blocked", "quarantined")

# How stale last_seen may get before a request writes it again.  Phones
# send a request every few seconds while syncing; writing the row (and
# waiting for its commit to reach the disk) each time would cost more than
# the request itself.  The admin view is exact to this many seconds.
TOUCH_INTERVAL = 30

# Settings DeviceInformation fields we store (MS-ASCMD 2.2.3.48).
INFORMATION_FIELDS = (
    "model", "imei", "friendly_name", "os", "os_language", "phone_number", "mobile_operator", "user_agent",
)


# The column recording the newest announced hold of each kind (migration 014).
_HOLD_COLUMNS = {HELD_PING: "ping_hold_seq", HELD_SYNC: "sync_hold_seq"}

# Most ping_until clears written by one statement.
RELEASE_BATCH = 1000


class DeviceStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        # Ping ends whose ping_until clear is not written yet (ping_released).
        self._releases: list[tuple[int, datetime]] = []
        self._releasing = False
        # Writes nobody awaits (in_background), until they are done.
        self._pending: set[Deferred] = set()
        self._settling: list[Deferred] = []
        # Per device, the announcement of a held request written last
        # (_held): the next one waits for it, so that this process's
        # announcements of a device commit in the order they were made.
        self._announcing: dict[int, Deferred] = {}

    def in_background(self, coroutine) -> Deferred:
        """
        Run a write of this store that the request does not wait for (it
        announces a held request, or clears ping_until after the answer);
        L{settle} waits for it.
        """
        running = Deferred.fromCoroutine(coroutine)
        if not running.called:
            self._pending.add(running)
            running.addBoth(self._finished, running)
        return running

    def _finished(self, result, running: Deferred):
        self._pending.discard(running)
        if not self._pending:
            settling, self._settling = self._settling, []
            for idle in settling:
                idle.callback(None)
        return result

    async def settle(self) -> None:
        """
        Wait until no background write is running, including those that a
        finished one's callbacks start (the reactor turn lets them).  For
        tests, which close the pool as soon as the last answer is in; a
        server that stops may drop them (ping_until expires by itself).
        """
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        while True:
            while self._pending:
                idle: Deferred = Deferred()
                self._settling.append(idle)
                await idle
            await deferLater(reactor, 0, lambda: None)
            if not self._pending:
                return

    async def touch(self, account_id: int, device_id: str, device_type: str, user_agent: str,
                    protocol_version: str, command: str, *, new_access: str = "allowed",
                    max_devices: int = 0) -> Device:
        """
        Record a request from a device, creating its partnership on first
        sight; return the device.  Usually one read: the row is written only
        when it is older than L{TOUCH_INTERVAL} or what the device reports
        about itself changed.

        @param new_access: the access state of a partnership created now
            (from the unknown-device policy).
        @param max_devices: partnerships the account may have (0: no limit).
        @raise TooManyDevices: a new partnership would exceed C{max_devices}.
        """
        row = await self._database.query_one(
            f"SELECT {_SELECT} FROM {_FROM} WHERE d.account_id = %s AND d.device_id = %s"
            " AND d.last_seen > now() - make_interval(secs => %s)"
            " AND d.device_type = %s AND d.protocol_version = %s AND (d.user_agent = %s OR %s = '')",
            (account_id, device_id, TOUCH_INTERVAL, device_type, protocol_version, user_agent, user_agent),
        )
        if row is not None:
            return _device(row)
        row = await self._database.query_one(
            "UPDATE devices d SET last_seen = now(), device_type = %s, protocol_version = %s, last_command = %s,"
            " user_agent = CASE WHEN %s <> '' THEN %s ELSE d.user_agent END"
            f" WHERE account_id = %s AND device_id = %s RETURNING {_COLUMNS}",
            (device_type, protocol_version, command, user_agent, user_agent, account_id, device_id),
        )
        if row is not None:
            return _device(row)
        if new_access not in ACCESS_STATES:
            raise ValueError(f"access state {new_access!r}")

        async def create(transaction: Transaction) -> Device:
            if max_devices:
                # The account row lock serialises the creation of its
                # partnerships, so two new phones cannot both take the last place.
                await transaction.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
                count = await transaction.query_one(
                    "SELECT count(*) FROM devices WHERE account_id = %s AND device_id <> %s",
                    (account_id, device_id),
                )
                if count[0] >= max_devices:
                    raise TooManyDevices(f"{count[0]} partnerships, {max_devices} allowed")
            created = await transaction.query_one(
                "INSERT INTO devices AS d (account_id, device_id, device_type, user_agent, protocol_version,"
                " last_command, access) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (account_id, device_id) DO UPDATE SET last_seen = now(),"
                " device_type = excluded.device_type, protocol_version = excluded.protocol_version,"
                " last_command = excluded.last_command,"
                " user_agent = CASE WHEN excluded.user_agent <> '' THEN excluded.user_agent ELSE d.user_agent END"
                f" RETURNING {_COLUMNS}",
                (account_id, device_id, device_type, user_agent, protocol_version, command, new_access),
            )
            return _device(created)

        return await self._database.transaction(create)

    async def get(self, account_id: int, device_id: str) -> Device | None:
        row = await self._database.query_one(
            f"SELECT {_SELECT} FROM {_FROM} WHERE d.account_id = %s AND d.device_id = %s", (account_id, device_id)
        )
        return _device(row) if row else None

    async def by_pk(self, device_pk: int) -> Device | None:
        row = await self._database.query_one(f"SELECT {_SELECT} FROM {_FROM} WHERE d.id = %s", (device_pk,))
        return _device(row) if row else None

    async def list(self, account_id: int | None = None) -> list[Device]:
        if account_id is None:
            rows = await self._database.query(f"SELECT {_SELECT} FROM {_FROM} ORDER BY d.account_id, d.device_id")
        else:
            rows = await self._database.query(
                f"SELECT {_SELECT} FROM {_FROM} WHERE d.account_id = %s ORDER BY d.device_id", (account_id,)
            )
        return [_device(row) for row in rows]

    async def count(self, account_id: int) -> int:
        row = await self._database.query_one("SELECT count(*) FROM devices WHERE account_id = %s", (account_id,))
        return row[0]

    async def _set(self, device_pk: int, assignments: dict, notify: bool = False,
                   entry: AuditEntry | None = None) -> bool:
        sets = ", ".join(f"{name} = %s" for name in assignments)
        return await self._write(device_pk, sets, tuple(assignments.values()), notify=notify, entry=entry)

    async def _write(self, device_pk: int, sets: str, params: tuple, *, notify: bool = False,
                     entry: AuditEntry | None = None, where: str = "", params_after: tuple = ()) -> bool:
        """
        C{UPDATE devices SET <sets> WHERE id = device_pk <where>} in one
        transaction; with C{notify}, wake the device's held requests on
        commit.  Returns whether the row was updated, and only then is
        C{entry} written to the audit trail.
        """

        async def work(transaction: Transaction) -> bool:
            row = await transaction.query_one(
                f"UPDATE devices SET {sets} WHERE id = %s {where} RETURNING account_id",
                (*params, device_pk, *params_after),
            )
            if row is None:
                return False
            if notify:
                transaction.notify(CHANNEL, device_payload(row[0], device_pk))
            await audit.write(transaction, entry)
            return True

        return await self._database.transaction(work)

    async def set_access(self, device_pk: int, access: str, entry: AuditEntry | None = None) -> bool:
        """
        An administrator's decision for this device: it overrides the access
        rules, and lifts an autoblock.
        """
        if access not in ACCESS_STATES:
            raise ValueError(f"access state {access!r}")
        return await self._set(
            device_pk,
            {"access": access, "access_reason": "admin", "blocked_until": None, "autoblock_reason": ""},
            notify=True, entry=entry,
        )

    async def autoblock(self, device_pk: int, until: datetime, reason: str, entry: AuditEntry | None = None) -> bool:
        """
        Refuse the device until C{until} (misbehaviour, decided by bluesync).
        """
        return await self._set(device_pk, {"blocked_until": until, "autoblock_reason": reason},
                               notify=True, entry=entry)

    async def claim_notice(self, device_pk: int, old: str, new: str) -> bool:
        """
        Record that the owner is told about C{new}, if the last notice is
        still C{old}: of two requests racing to announce one state, one wins.
        """
        return await self._write(device_pk, "notice = %s", (new,), where="AND notice = %s",
                                 params_after=(old,))

    async def reset_sync_state(self, device_pk: int, entry: AuditEntry | None = None) -> bool:
        """
        Forget every sync state of the device (hierarchy and collections),
        nothing else: its next FolderSync gets Status 9 and each Sync
        Status 3, so it rebuilds its hierarchy and collections from the
        server, which loses nothing.
        """

        async def work(transaction: Transaction) -> bool:
            row = await transaction.query_one("SELECT account_id FROM devices WHERE id = %s FOR UPDATE", (device_pk,))
            if row is None:
                return False
            await transaction.execute("DELETE FROM sync_states WHERE device_id = %s", (device_pk,))
            transaction.notify(CHANNEL, device_payload(row[0], device_pk))
            await audit.write(transaction, entry)
            return True

        return await self._database.transaction(work)

    async def remove(self, device_pk: int, entry: AuditEntry | None = None) -> bool:
        """
        Delete the partnership and everything that belongs to it (sync
        states, submitted ClientIds: ON DELETE CASCADE).  The phone's next
        request creates a new partnership, under the unknown-device policy.
        """

        async def work(transaction: Transaction) -> bool:
            row = await transaction.query_one("DELETE FROM devices WHERE id = %s RETURNING account_id", (device_pk,))
            if row is None:
                return False
            transaction.notify(CHANNEL, device_payload(row[0], device_pk))
            await audit.write(transaction, entry)
            return True

        return await self._database.transaction(work)

    async def ping_held(self, device_pk: int, until: datetime) -> int | None:
        """
        The device holds a Ping until C{until} (see L{Device.ping_until}).
        The same statement announces it to every process with the device's
        next hold sequence number, which it returns (None: no such device),
        so that the device's older Ping ends wherever it is held.
        """
        return await self._held(HELD_PING, device_pk, "ping_until = %s, ", (until,))

    async def sync_held(self, device_pk: int) -> int | None:
        """
        The device holds a Sync with Wait: as L{ping_held}, for the device's
        older Sync wait.
        """
        return await self._held(HELD_SYNC, device_pk, "", ())

    async def _held(self, kind: str, device_pk: int, sets: str, params: tuple) -> int | None:
        # One autocommitted statement: the row lock orders the bumps of
        # hold_seq, and the NOTIFY is delivered at that same commit.  Two
        # statements in flight at once could take the lock in either order
        # (two pooled connections), giving the later announcement the lower
        # number; so an announcement is sent only once the device's previous
        # one from this process is done, and the numbers follow the order
        # of the calls.
        previous = self._announcing.get(device_pk)
        done: Deferred = Deferred()
        self._announcing[device_pk] = done
        try:
            if previous is not None:
                await previous
            column = _HOLD_COLUMNS[kind]
            row = await self._database.query_one(
                f"UPDATE devices d SET {sets}hold_seq = d.hold_seq + 1, {column} = d.hold_seq + 1"
                f" WHERE d.id = %s RETURNING d.hold_seq, pg_notify(%s, {HELD_PAYLOAD_SQL})",
                (*params, device_pk, CHANNEL, kind),
            )
        finally:
            if self._announcing.get(device_pk) is done:
                del self._announcing[device_pk]
            done.callback(None)
        return row[0] if row else None

    async def newest_hold(self, device_pk: int, kind: str) -> int | None:
        """
        The hold sequence of the device's newest announced request of
        C{kind} (L{HELD_PING} or L{HELD_SYNC}; 0: none yet, None: no such
        device).  A held request that finds a higher one than its own was
        superseded, maybe while notifications were lost.
        """
        row = await self._database.query_one(
            f"SELECT {_HOLD_COLUMNS[kind]} FROM devices WHERE id = %s", (device_pk,)
        )
        return row[0] if row else None

    def ping_released(self, device_pk: int, until: datetime) -> None:
        """
        The Ping held until C{until} was answered early: clear
        devices.ping_until, unless a newer Ping of the device recorded its
        own.  Queued, not awaited: the phone has its answer already.  The
        clears queued while one statement runs go together in the next, so
        a mass wake costs a few statements, not one commit per Ping.  A
        clear that fails is harmless: ping_until expires by itself.
        """
        self._releases.append((device_pk, until))
        if not self._releasing:
            self._releasing = True
            self.in_background(self._write_releases())

    async def _write_releases(self) -> None:
        try:
            while self._releases:
                batch, self._releases = self._releases[:RELEASE_BATCH], self._releases[RELEASE_BATCH:]
                try:
                    await self._database.execute(
                        "UPDATE devices d SET ping_until = NULL"
                        " FROM unnest(%s::bigint[], %s::timestamptz[]) AS r (id, until)"
                        " WHERE d.id = r.id AND d.ping_until = r.until",
                        ([pk for pk, _ in batch], [until for _, until in batch]),
                    )
                except Exception as e:
                    log.warn("could not clear ping_until of {count} devices: {error}", count=len(batch), error=e)
        finally:
            self._releasing = False

    async def set_pending_policy_key(self, device_pk: int, key: int) -> None:
        await self._set(device_pk, {"pending_policy_key": key})

    async def confirm_policy_key(self, device_pk: int, key: int, status: int) -> None:
        await self._set(device_pk, {"policy_key": key, "pending_policy_key": None, "policy_status": status})

    async def set_information(self, device_pk: int, information: dict[str, str]) -> None:
        values = {k: v for k, v in information.items() if k in INFORMATION_FIELDS}
        if values:
            await self._set(device_pk, values)

    async def set_ping(self, device_pk: int, heartbeat: int, folders: list[int]) -> None:
        await self._set(device_pk, {"ping_heartbeat": heartbeat, "ping_folders": folders})

    async def last_sync(self, device_pk: int) -> dict | None:
        row = await self._database.query_one("SELECT last_sync FROM devices WHERE id = %s", (device_pk,))
        return row[0] if row else None

    async def set_last_sync(self, device_pk: int, request: dict) -> None:
        await self._database.execute(
            "UPDATE devices SET last_sync = %s WHERE id = %s", (json.dumps(request), device_pk)
        )

    async def request_wipe(self, device_pk: int, account_only: bool = False, entry: AuditEntry | None = None) -> bool:
        """
        Ask for a remote wipe (full, or of the account only on 16.1); the
        device's held requests end at once and its next one is sent to
        Provision for the RemoteWipe directive.
        """
        return await self._write(
            device_pk, "wipe = %s, wipe_requested_at = now(), wipe_acknowledged_at = NULL",
            ("pending_account" if account_only else "pending",), notify=True, entry=entry,
        )

    async def acknowledge_wipe(self, device_pk: int, entry: AuditEntry | None = None) -> None:
        """
        The device confirmed a full wipe; it stays wiped, and is wiped again
        whenever it comes back, until the partnership is removed.
        """
        await self._write(device_pk, "wipe = 'wiped', wipe_acknowledged_at = now()", (), entry=entry)

    async def cancel_wipe(self, device_pk: int, entry: AuditEntry | None = None) -> bool:
        """
        Cancel a wipe the device has not acknowledged yet.  False if there
        was none pending (after the acknowledgement a wipe cannot be undone:
        only removing the partnership ends it).
        """
        return await self._write(device_pk, "wipe = 'none', wipe_requested_at = NULL", (), notify=True,
                                 entry=entry, where="AND wipe LIKE 'pending%%'")

    async def acknowledge_account_wipe(self, device_pk: int, entry: AuditEntry | None = None) -> None:
        """
        An account-only wipe (16.1) was acknowledged.  Recorded apart from a
        full wipe so that a reconnecting device is asked again for an
        account-only wipe, never escalated to a factory reset.
        """
        await self._write(device_pk, "wipe = 'wiped_account', wipe_acknowledged_at = now()", (), entry=entry)

    async def set_enable_outbound_sms(self, device_pk: int, enabled: bool) -> None:
        await self._set(device_pk, {"enable_outbound_sms": enabled})

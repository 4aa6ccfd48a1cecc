"""
The devices table family: one row per partnership of a phone and an account.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from bluesync.store.changes import CHANNEL, device_payload
from bluesync.store.database import Database, Transaction


@dataclass(frozen=True)
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


_COLUMNS = ", ".join(f.name for f in fields(Device))
_D_COLUMNS = ", ".join("d." + f.name for f in fields(Device))

# How stale last_seen may get before a request writes it again.  Phones
# send a request every few seconds while syncing; writing the row (and
# waiting for its commit to reach the disk) each time would cost more than
# the request itself.  The admin view is exact to this many seconds.
TOUCH_INTERVAL = 30

# Settings DeviceInformation fields we store (MS-ASCMD 2.2.3.48).
INFORMATION_FIELDS = (
    "model", "imei", "friendly_name", "os", "os_language", "phone_number", "mobile_operator", "user_agent",
)


class DeviceStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def touch(self, account_id: int, device_id: str, device_type: str, user_agent: str,
                    protocol_version: str, command: str) -> Device:
        """
        Record a request from a device, creating its partnership on first
        sight; return the device.  Usually one read: the row is written only
        when it is older than L{TOUCH_INTERVAL} or what the device reports
        about itself changed.
        """
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM devices WHERE account_id = %s AND device_id = %s"
            " AND last_seen > now() - make_interval(secs => %s)"
            " AND device_type = %s AND protocol_version = %s AND (user_agent = %s OR %s = '')",
            (account_id, device_id, TOUCH_INTERVAL, device_type, protocol_version, user_agent, user_agent),
        )
        if row is not None:
            return Device(*row)
        row = await self._database.query_one(
            "INSERT INTO devices (account_id, device_id, device_type, user_agent, protocol_version, last_command)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (account_id, device_id) DO UPDATE SET last_seen = now(),"
            " device_type = excluded.device_type, protocol_version = excluded.protocol_version,"
            " last_command = excluded.last_command,"
            " user_agent = CASE WHEN excluded.user_agent <> '' THEN excluded.user_agent ELSE devices.user_agent END"
            f" RETURNING {_COLUMNS}",
            (account_id, device_id, device_type, user_agent, protocol_version, command),
        )
        return Device(*row)

    async def get(self, account_id: int, device_id: str) -> Device | None:
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM devices WHERE account_id = %s AND device_id = %s", (account_id, device_id)
        )
        return Device(*row) if row else None

    async def list(self, account_id: int | None = None) -> list[Device]:
        if account_id is None:
            rows = await self._database.query(f"SELECT {_COLUMNS} FROM devices ORDER BY account_id, device_id")
        else:
            rows = await self._database.query(
                f"SELECT {_COLUMNS} FROM devices WHERE account_id = %s ORDER BY device_id", (account_id,)
            )
        return [Device(*row) for row in rows]

    async def _set(self, device_pk: int, assignments: dict, notify: bool = False) -> None:
        sets = ", ".join(f"{name} = %s" for name in assignments)

        async def work(transaction: Transaction) -> None:
            row = await transaction.query_one(
                f"UPDATE devices SET {sets} WHERE id = %s RETURNING account_id", (*assignments.values(), device_pk)
            )
            if notify and row:
                transaction.notify(CHANNEL, device_payload(row[0], device_pk))

        await self._database.transaction(work)

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
        import json

        await self._database.execute(
            "UPDATE devices SET last_sync = %s WHERE id = %s", (json.dumps(request), device_pk)
        )

    async def request_wipe(self, device_pk: int, account_only: bool = False) -> None:
        await self._database.execute(
            "UPDATE devices SET wipe = %s, wipe_requested_at = now(), wipe_acknowledged_at = NULL WHERE id = %s",
            ("pending_account" if account_only else "pending", device_pk),
        )

    async def acknowledge_wipe(self, device_pk: int) -> None:
        await self._database.execute(
            "UPDATE devices SET wipe = 'wiped', wipe_acknowledged_at = now() WHERE id = %s", (device_pk,)
        )

    async def cancel_wipe(self, device_pk: int) -> None:
        await self._database.execute(
            "UPDATE devices SET wipe = 'none', wipe_requested_at = NULL WHERE id = %s AND wipe LIKE 'pending%%'",
            (device_pk,),
        )

    async def acknowledge_account_wipe(self, device_pk: int) -> None:
        """
        An account-only wipe (16.1) was acknowledged.  Recorded apart from a
        full wipe so that a reconnecting device is asked again for an
        account-only wipe, never escalated to a factory reset.
        """
        await self._database.execute(
            "UPDATE devices SET wipe = 'wiped_account', wipe_acknowledged_at = now() WHERE id = %s", (device_pk,)
        )

    async def set_enable_outbound_sms(self, device_pk: int, enabled: bool) -> None:
        await self._set(device_pk, {"enable_outbound_sms": enabled})

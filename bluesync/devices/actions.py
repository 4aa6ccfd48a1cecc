"""
What an administrator does to devices and access rules, shared by
bluesync-admin and the admin web page so both behave the same: one store
write per action, with its audit entry and the device's NOTIFY in the same
transaction (its held Ping or Sync wait ends at once, on every process, and
its next request meets the new decision), then the owner's email.

Also the automatic block, which is the same kind of decision taken by
bluesync itself.
"""

from __future__ import annotations

import time
from datetime import timezone

from twisted.logger import Logger

from bluesync.devices import notices, state
from bluesync.store.audit import SYSTEM, AuditEntry
from bluesync.store.database import DATABASE_DOWN
from bluesync.store.rules import ACTIONS, RuleError, parse_action, parse_field

log = Logger()

# The actions on one device, in the order the CLI and the page show them.
DEVICE_ACTIONS = ("allow", "block", "quarantine", "wipe", "account-wipe", "cancel-wipe", "reset", "remove")


class ActionError(Exception):
    """
    The action cannot be done; the message says why, for the administrator.
    """


class Administration:
    """
    @param actor: who acts, for the audit trail ("cli:root", "web:alice").
    @param clock: an C{IReactorTime}, or None for the wall clock.
    """

    def __init__(self, store, config, actor: str, clock=None) -> None:
        self._store = store
        self._config = config
        self.actor = actor
        self._clock = clock

    def _now(self) -> float:
        return self._clock.seconds() if self._clock is not None else time.time()

    async def find(self, user: str, device_id: str):
        """
        The account (by address or alias) and its device.

        @raise ActionError: if either does not exist.
        """
        account = await self._store.accounts.by_address(user)
        if account is None:
            raise ActionError(f"no account {user}")
        device = await self._store.devices.get(account.id, device_id)
        if device is None:
            raise ActionError(f"{account.address} has no device {device_id}")
        return account, device

    async def run(self, action: str, user: str, device_id: str, reason: str = "") -> str:
        """
        Do one of L{DEVICE_ACTIONS}; return what happened, for the administrator.

        @raise ActionError: unknown action, account or device, or nothing to do.
        """
        method = {
            "allow": self.allow,
            "block": self.block,
            "quarantine": self.quarantine,
            "wipe": self.wipe,
            "account-wipe": self.account_wipe,
            "cancel-wipe": self.cancel_wipe,
            "reset": self.reset,
            "remove": self.remove,
        }.get(action)
        if method is None:
            raise ActionError(f"unknown action {action!r}")
        return await method(user, device_id, reason)

    def _entry(self, action: str, account, device, reason: str) -> AuditEntry:
        return AuditEntry(self.actor, action, account.address, device.device_id, reason)

    async def _decide(self, access: str, user: str, device_id: str, reason: str) -> str:
        account, device = await self.find(user, device_id)
        verb = {"allowed": "allow", "blocked": "block", "quarantined": "quarantine"}[access]
        await self._store.devices.set_access(device.id, access, self._entry(f"device.{verb}", account, device, reason))
        log.info("{actor}: {device} of {account} {access}", actor=self.actor, device=device.device_id,
                 account=account.address, access=access)
        effective = await self._tell_owner(account, device.id)
        message = f"{device.device_id} of {account.address} is {access}"
        if effective is not None and effective.state != access:
            message += f" (but {effective.state}: {effective.source})"
        return message

    async def allow(self, user: str, device_id: str, reason: str = "") -> str:
        return await self._decide("allowed", user, device_id, reason)

    async def block(self, user: str, device_id: str, reason: str = "") -> str:
        return await self._decide("blocked", user, device_id, reason)

    async def quarantine(self, user: str, device_id: str, reason: str = "") -> str:
        return await self._decide("quarantined", user, device_id, reason)

    async def wipe(self, user: str, device_id: str, reason: str = "") -> str:
        account, device = await self.find(user, device_id)
        await self._store.devices.request_wipe(device.id, entry=self._entry("device.wipe", account, device, reason))
        log.warn("{actor}: remote wipe of {device} of {account} requested", actor=self.actor,
                 device=device.device_id, account=account.address)
        await self._tell_owner(account, device.id)
        return f"remote wipe of {device.device_id} of {account.address} requested; it happens on its next request"

    async def account_wipe(self, user: str, device_id: str, reason: str = "") -> str:
        account, device = await self.find(user, device_id)
        await self._store.devices.request_wipe(
            device.id, account_only=True, entry=self._entry("device.account-wipe", account, device, reason)
        )
        log.warn("{actor}: account-only wipe of {device} of {account} requested", actor=self.actor,
                 device=device.device_id, account=account.address)
        await self._tell_owner(account, device.id)
        message = f"account-only wipe of {device.device_id} of {account.address} requested"
        if device.protocol_version != "16.1":
            message += (f"; the device speaks ActiveSync {device.protocol_version or '(unknown)'}, which cannot"
                        " express it (16.1 only): it is refused until it speaks 16.1 or the wipe is cancelled")
        return message

    async def cancel_wipe(self, user: str, device_id: str, reason: str = "") -> str:
        account, device = await self.find(user, device_id)
        cancelled = await self._store.devices.cancel_wipe(
            device.id, entry=self._entry("device.cancel-wipe", account, device, reason)
        )
        if not cancelled:
            if device.wipe.startswith("wiped"):
                raise ActionError(f"{device.device_id} of {account.address} already acknowledged the wipe;"
                                  " only removing the partnership ends it")
            raise ActionError(f"no wipe of {device.device_id} of {account.address} is pending")
        await self._tell_owner(account, device.id)
        return f"remote wipe of {device.device_id} of {account.address} cancelled"

    async def reset(self, user: str, device_id: str, reason: str = "") -> str:
        account, device = await self.find(user, device_id)
        await self._store.devices.reset_sync_state(device.id, entry=self._entry("device.reset", account, device, reason))
        log.info("{actor}: sync state of {device} of {account} reset", actor=self.actor,
                 device=device.device_id, account=account.address)
        return (f"sync state of {device.device_id} of {account.address} reset; it resynchronises its folders"
                " on its next request")

    async def remove(self, user: str, device_id: str, reason: str = "") -> str:
        account, device = await self.find(user, device_id)
        await self._store.devices.remove(device.id, entry=self._entry("device.remove", account, device, reason))
        log.info("{actor}: partnership {device} of {account} removed", actor=self.actor,
                 device=device.device_id, account=account.address)
        return (f"partnership {device.device_id} of {account.address} removed; if the phone comes back it is"
                f" a new device ({self._config.policy.unknown_device} by policy)")

    async def add_rule(self, field: str, pattern: str, action: str, priority: int | None = None,
                       reason: str = ""):
        """
        @param field: DeviceType, DeviceModel, DeviceOS or UserAgent.
        @param action: allow, block or quarantine.
        @raise ActionError: for a field, action or pattern that is not valid.
        """
        try:
            rule = await self._store.rules.add(
                parse_field(field), pattern, parse_action(action), priority=priority, created_by=self.actor,
                entry=AuditEntry(self.actor, "rule.add", detail=reason),
            )
        except RuleError as e:
            raise ActionError(str(e)) from None
        log.info("{actor}: access rule {id} added: {rule}", actor=self.actor, id=rule.id, rule=rule.describe())
        return rule

    async def delete_rule(self, rule_id: int, reason: str = ""):
        rule = await self._store.rules.delete(rule_id, entry=AuditEntry(self.actor, "rule.delete", detail=reason))
        if rule is None:
            raise ActionError(f"no access rule {rule_id}")
        log.info("{actor}: access rule {id} deleted: {rule}", actor=self.actor, id=rule.id, rule=rule.describe())
        return rule

    async def _tell_owner(self, account, device_pk: int) -> state.Access | None:
        device = await self._store.devices.by_pk(device_pk)
        if device is None:
            return None
        access = state.decide(device, self._now())
        await notices.announce(self._store, account, device, access, self._config.mail.hostname)
        return access


async def autoblock(server, account, device, reason: str) -> None:
    """
    Block a misbehaving device for [devices] autoblock_duration (its next
    requests get 503 with Retry-After), record why, tell its owner.  A
    database failure is logged: the request that triggered it is answered
    all the same.
    """
    clock = server.clock
    until = state.timestamp(clock.seconds() + server.config.devices.autoblock_duration)
    detail = f"{reason}; blocked until {until.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    try:
        await server.store.devices.autoblock(
            device.id, until, reason, entry=AuditEntry(SYSTEM, "device.autoblock", account.address,
                                                       device.device_id, detail),
        )
        log.warn("{account} {device}: autoblocked: {detail}", account=account.address, device=device.device_id,
                 detail=detail)
        blocked = await server.store.devices.by_pk(device.id)
        if blocked is not None:
            await notices.announce(server.store, account, blocked, state.decide(blocked, clock.seconds()),
                                   server.config.mail.hostname)
    except DATABASE_DOWN as e:
        log.warn("{account} {device}: autoblock ({reason}) not stored: {error}", account=account.address,
                 device=device.device_id, reason=reason, error=str(e))


__all__ = ["ACTIONS", "DEVICE_ACTIONS", "ActionError", "Administration", "autoblock"]

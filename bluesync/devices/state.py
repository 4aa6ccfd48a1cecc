"""
The access state of a partnership, decided from its row alone.

Precedence, strongest first:

1. a remote wipe, pending or done (a wiped phone that comes back is wiped
   again until an administrator removes the partnership);
2. an automatic block that has not expired (misbehaviour, see guard.py);
3. an administrator's decision for this device (allow, block, quarantine);
4. the first access rule that matches the device, in (priority, id) order;
5. the decision taken when the device was first seen, from [policy]
   unknown_device.

Pure: the store computes the matching rule (bluesync.store.rules), the
caller gives the time, so a fake clock drives autoblock expiry in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

ALLOWED = "allowed"
BLOCKED = "blocked"
QUARANTINED = "quarantined"
AUTOBLOCKED = "autoblocked"
WIPE_PENDING = "wipe pending"
WIPED = "wiped"
ACCOUNT_WIPE_PENDING = "account wipe pending"
ACCOUNT_WIPED = "account wiped"

_WIPES = {
    "pending": WIPE_PENDING,
    "wiped": WIPED,
    "pending_account": ACCOUNT_WIPE_PENDING,
    "wiped_account": ACCOUNT_WIPED,
}

# [policy] unknown_device -> the state a new partnership is given.
POLICY_STATES = {"allow": ALLOWED, "quarantine": QUARANTINED, "block": BLOCKED}


@dataclass(frozen=True)
class Access:
    """
    C{state} is one of the constants above; C{source} says why, for people
    ("administrator", "rule 3", "policy", "autoblock: ...", "wipe");
    C{until} is when an autoblock ends.
    """

    state: str
    source: str
    until: datetime | None = None

    @property
    def refused(self) -> bool:
        return self.state != ALLOWED


def decide(device, now: float) -> Access:
    """
    The access of C{device} (a L{bluesync.store.devices.Device}) at time
    C{now} (seconds since the epoch).
    """
    wipe = _WIPES.get(device.wipe)
    if wipe is not None:
        return Access(wipe, "wipe")
    until = device.blocked_until
    if until is not None and until.timestamp() > now:
        return Access(AUTOBLOCKED, f"autoblock: {device.autoblock_reason}", until)
    if device.access_reason == "admin":
        return Access(device.access, "administrator")
    if device.rule_action is not None:
        return Access(device.rule_action, f"rule {device.rule_id}")
    return Access(device.access, "policy")


def timestamp(seconds: float) -> datetime:
    """
    A clock reading as an aware datetime, for columns compared with L{decide}.
    """
    return datetime.fromtimestamp(seconds, timezone.utc)

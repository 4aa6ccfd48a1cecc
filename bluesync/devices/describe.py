"""
Devices and the audit trail in words, for the CLI and the admin page alike.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from bluesync.config import _duration
from bluesync.devices import state


def policy_state(device) -> str:
    """
    Where the device stands in MS-ASPROV provisioning.  The client status
    is what the device reported when it acknowledged the policy (1 applied,
    2 partly, 3 not at all, 4 managed by a third party).
    """
    if device.policy_key is not None:
        if device.policy_status in (None, 1):
            result = "provisioned"
        else:
            result = f"provisioned (client status {device.policy_status})"
        return result + (", re-provisioning" if device.pending_policy_key is not None else "")
    if device.pending_policy_key is not None:
        return "awaiting acknowledgement"
    return "not provisioned"


def timestamp(value) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def ping_state(device, now: float) -> str:
    """
    "held until <time>" while the device holds a Ping (recorded by
    whichever bluesync process holds it), else "-".
    """
    until = device.ping_until
    if until is not None and until.timestamp() > now:
        return f"held until {timestamp(until)}"
    return "-"


def cell(value) -> str:
    """
    A value on one line ("-" when empty), whatever a phone put in its strings.
    """
    text = str(value) if value not in (None, "") else "-"
    return " ".join(text.replace("\t", " ").splitlines())


def details(account, device, rule=None, now: float | None = None) -> list[tuple[str, str]]:
    """
    Everything about one device as (label, value) pairs.
    """
    now = time.time() if now is None else now
    access = state.decide(device, now)
    autoblocked = device.blocked_until is not None and device.blocked_until.timestamp() > now
    rows = [
        ("Account", account.address),
        ("Device ID", device.device_id),
        ("State", access.state),
        ("Why", access.source),
        ("Decision", f"{device.access} ({'administrator' if device.access_reason == 'admin' else 'policy'})"),
        ("Matching rule", f"{rule.describe()} (rule {rule.id})" if rule is not None else "-"),
        ("Autoblocked until", f"{timestamp(device.blocked_until)} ({device.autoblock_reason})"
         if autoblocked else "-"),
        ("Device type", device.device_type),
        ("Model", device.model),
        ("Friendly name", device.friendly_name),
        ("OS", device.os),
        ("OS language", device.os_language),
        ("User agent", device.user_agent),
        ("IMEI", device.imei),
        ("Phone number", device.phone_number),
        ("Mobile operator", device.mobile_operator),
        ("Protocol version", device.protocol_version),
        ("Policy", policy_state(device)),
        ("Wipe", device.wipe),
        ("Wipe requested", timestamp(device.wipe_requested_at)),
        ("Wipe acknowledged", timestamp(device.wipe_acknowledged_at)),
        ("First seen", timestamp(device.first_seen)),
        ("Last seen", timestamp(device.last_seen)),
        ("Last command", device.last_command),
        ("Ping", ping_state(device, now)),
        ("Owner last told", device.notice or "-"),
    ]
    return [(label, cell(value)) for label, value in rows]


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """
    A date (2024-05-01), a date and time (2024-05-01T14:00, UTC unless an
    offset is given) or a duration back from now (30m, 12h, 7d).

    @raise ValueError: for anything else.
    """
    now = now or datetime.now(timezone.utc)
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - timedelta(seconds=_duration(text))
        except (ValueError, IndexError):
            raise ValueError(f"{text!r} is neither a date (2024-05-01T14:00) nor a duration (7d)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)

"""
The email an account owner finds in their Inbox when one of their devices
is quarantined, blocked (by an administrator, a rule, the policy or an
autoblock) or wiped.

Each state is announced once: the device row remembers the last notice
(devices.notice) and a notice is claimed with a conditional update before
the message is stored, so two requests of the same phone racing through
the access check send one email, not two.  The message is delivered like
any other (items.deliver into the Inbox, NOTIFY in the same transaction),
so the owner's other phones get it pushed at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from twisted.logger import Logger

from bluesync.devices import state
from bluesync.mail.delivery import new_email_item
from bluesync.store.database import DATABASE_DOWN
from bluesync.store.folders import INBOX

log = Logger()

# Access state -> the notice key stored in devices.notice.
_NOTICES = {
    state.QUARANTINED: "quarantined",
    state.BLOCKED: "blocked",
    state.AUTOBLOCKED: "autoblocked",
    state.WIPE_PENDING: "wipe",
    state.ACCOUNT_WIPE_PENDING: "wipe",
    state.WIPED: "wiped",
    state.ACCOUNT_WIPED: "wiped",
}

_SUBJECTS = {
    state.QUARANTINED: "Your device {name} is waiting for approval",
    state.BLOCKED: "Your device {name} is blocked",
    state.AUTOBLOCKED: "Your device {name} is blocked for a while",
    state.WIPE_PENDING: "Your device {name} will be wiped",
    state.ACCOUNT_WIPE_PENDING: "Your account will be removed from your device {name}",
    state.WIPED: "Your device {name} was wiped",
    state.ACCOUNT_WIPED: "Your account was removed from your device {name}",
}

_EXPLANATIONS = {
    state.QUARANTINED: (
        "Your device is temporarily refused access to your mail, contacts and calendars: "
        "new devices wait for an administrator's approval. You don't need to do anything; "
        "the device will sync as soon as it is approved."
    ),
    state.BLOCKED: (
        "An administrator's decision or an access rule blocks this device: it can no longer "
        "sync your mail, contacts and calendars. Contact your administrator if this is unexpected."
    ),
    state.AUTOBLOCKED: (
        "The device sent requests in a way that harms the server ({reason}), so it is refused "
        "until {until}. It will sync again by itself after that; if the problem comes back, "
        "update or reinstall the mail app."
    ),
    state.WIPE_PENDING: (
        "An administrator asked for a remote wipe of this device: the next time it connects, it "
        "will be reset to factory settings and lose all its data."
    ),
    state.ACCOUNT_WIPE_PENDING: (
        "An administrator asked for your account to be removed from this device: the next time "
        "it connects, it will delete your mail, contacts and calendars, and keep everything else."
    ),
    state.WIPED: "The device confirmed the remote wipe. It can no longer sync with this server.",
    state.ACCOUNT_WIPED: "The device confirmed that it removed your account and its data.",
}


def notice_for(access: state.Access) -> str:
    """
    The notice key of an access state ("" for allowed).
    """
    return _NOTICES.get(access.state, "")


def device_name(device) -> str:
    for candidate in (device.friendly_name, device.model, device.device_type):
        if candidate:
            return f"{candidate} ({device.device_id})"
    return device.device_id


def compose(account, device, access: state.Access, hostname: str, now: datetime) -> bytes:
    """
    The notice as RFC 5322 bytes.
    """
    name = device_name(device)
    until = access.until.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if access.until else ""
    reason = access.source.partition(": ")[2]
    message = EmailMessage()
    message["From"] = f"bluesync <postmaster@{hostname}>"
    message["To"] = account.address
    message["Subject"] = _SUBJECTS[access.state].format(name=name)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("device-notice", domain=hostname)
    details = [
        ("Device ID", device.device_id),
        ("Device type", device.device_type),
        ("Model", device.model),
        ("Operating system", device.os),
        ("User agent", device.user_agent),
        ("IMEI", device.imei),
        ("Phone number", device.phone_number),
        ("ActiveSync version", device.protocol_version),
        ("First seen", device.first_seen.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
         if device.first_seen else ""),
        ("Access state", f"{access.state} ({access.source})"),
    ]
    lines = [_EXPLANATIONS[access.state].format(reason=reason, until=until), "", "Information about your device:"]
    lines += [f"  {label}: {value}" for label, value in details if value]
    message.set_content("\n".join(lines) + "\n")
    return message.as_bytes(policy=SMTP)


async def announce(store, account, device, access: state.Access, hostname: str,
                   now: datetime | None = None) -> bool:
    """
    Tell the owner about C{access} if they were not told already; forget
    the last notice when the device is allowed again, so that a later block
    is announced too.  Returns whether an email was stored.  A failure to
    store it is logged, never raised: the access decision stands either way.
    """
    notice = notice_for(access)
    if notice == device.notice:
        return False
    now = now or datetime.now(timezone.utc)
    try:
        if not await store.devices.claim_notice(device.id, device.notice, notice) or not notice:
            return False
        inbox = await store.folders.by_type(account.id, INBOX)
        if inbox is None:
            log.warn("{account}: no Inbox for the {state} notice of {device}",
                     account=account.address, state=access.state, device=device.device_id)
            return False
        raw = compose(account, device, access, hostname, now)
        await store.items.deliver([(account.id, inbox.id)], new_email_item(raw, now))
    except DATABASE_DOWN as e:
        log.warn("{account}: the {state} notice of {device} was not stored: {error}",
                 account=account.address, state=access.state, device=device.device_id, error=str(e))
        return False
    log.info("{account}: told the owner that {device} is {state}",
             account=account.address, device=device.device_id, state=access.state)
    return True

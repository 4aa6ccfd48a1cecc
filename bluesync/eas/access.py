"""
Whether a device may run a command: its access state (allowed, blocked,
quarantined, autoblocked, wiped: see bluesync.devices.state), provisioning
(policy key) and remote wipe.  Runs on every POST, after the device is
recorded and before the command, and again when a held Ping is woken by a
change to its device.  Returns the answer that refuses the request, or None.

Every command except Provision needs the policy key the device confirmed
in the last Provision exchange (MS-ASPROV 3.2.5).  Settings and Ping are
not exempt: MS-ASCMD 3.1.5.2 has a provisionable client send its
DeviceInformation "as soon as possible after the client has been
provisioned", and 14.1+ clients send it inside Provision instead.

How a refusal is spelled depends on the version.  MS-ASCMD 2.2.2 common
status codes exist from 14.0 on: those versions get HTTP 200 with the
command's own response document carrying the code.  12.x knows only HTTP
status codes (MS-ASHTTP 2.2.2.1.1): 449 "retry after sending a Provision
command", 403 "the user is not enabled for ActiveSync synchronization".

    state / condition        12.1         14.0, 14.1, 16.0, 16.1
    wipe pending or done     449          140 RemoteWipeRequested
    no policy key, or 0      449          142 DeviceNotProvisioned
    a stale policy key       449          144 InvalidPolicyKey
    blocked                  403          129 DeviceIsBlockedForThisUser
    quarantined              403          129 DeviceIsBlockedForThisUser
    too many partnerships    403          177 MaximumDevicesReached
    autoblocked, busy        503 with Retry-After, every version

129 is the common code for "this device is not one the user may sync
with", which is what both a blocked and a quarantined device are; the
difference is on the server's side (an administrator may approve a
quarantined device, and its owner was told so by email).  A blocked device
gets the code for Provision too; a quarantined one may still run Provision,
which tells nothing of the mailbox but lets a 14.1+ phone send its
DeviceInformation for the administrator who decides, and lets an approved
phone sync at once.  Autoblock and the per-account concurrency limit are
throttling, which MS-ASHTTP 3.1.5.2.3 answers with 503 and Retry-After.

A wipe comes first: a blocked lost phone is still wiped.
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.devices import notices, state
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.web.rendering import Response

log = Logger()

# MS-ASCMD 2.2.2 common status codes.
DEVICE_BLOCKED = 129
REMOTE_WIPE_REQUESTED = 140
DEVICE_NOT_PROVISIONED = 142
INVALID_POLICY_KEY = 144
MAXIMUM_DEVICES_REACHED = 177

# What 12.x gets instead (MS-ASHTTP 2.2.2.1.1).
RETRY_AFTER_PROVISION = 449
FORBIDDEN = 403

_EXEMPT = frozenset({"Provision"})

# The root element of each command's response, for the 14.0+ status form.
# GetAttachment has no WBXML response at all and is refused with 449.
_RESPONSE_ROOTS = {
    "Provision": ("Provision", "Provision"),
    "Sync": ("AirSync", "Sync"),
    "SendMail": ("ComposeMail", "SendMail"),
    "SmartForward": ("ComposeMail", "SmartForward"),
    "SmartReply": ("ComposeMail", "SmartReply"),
    "FolderSync": ("FolderHierarchy", "FolderSync"),
    "FolderCreate": ("FolderHierarchy", "FolderCreate"),
    "FolderDelete": ("FolderHierarchy", "FolderDelete"),
    "FolderUpdate": ("FolderHierarchy", "FolderUpdate"),
    "MoveItems": ("Move", "MoveItems"),
    "GetItemEstimate": ("GetItemEstimate", "GetItemEstimate"),
    "MeetingResponse": ("MeetingResponse", "MeetingResponse"),
    "Search": ("Search", "Search"),
    "Settings": ("Settings", "Settings"),
    "Ping": ("Ping", "Ping"),
    "ItemOperations": ("ItemOperations", "ItemOperations"),
    "ResolveRecipients": ("ResolveRecipients", "ResolveRecipients"),
    "ValidateCert": ("ValidateCert", "ValidateCert"),
    "Find": ("Find", "Find"),
}

FULL_WIPE_STATES = frozenset({"pending", "wiped"})
ACCOUNT_WIPE_STATES = frozenset({"pending_account", "wiped_account"})


def wipe_directive(device, version: str) -> str | None:
    """
    The Provision element that answers this device's wipe state:
    "RemoteWipe", "AccountOnlyRemoteWipe" (16.1 only, MS-ASPROV 2.2.2.1),
    or None when no wipe applies.
    """
    if device.wipe in FULL_WIPE_STATES:
        return "RemoteWipe"
    if device.wipe in ACCOUNT_WIPE_STATES and version == "16.1":
        return "AccountOnlyRemoteWipe"
    return None


def account_wipe_unexpressible(device, version: str) -> bool:
    """
    An account-only wipe is pending or done, but the device speaks a
    version without AccountOnlyRemoteWipe.  Escalating to a full wipe would
    destroy what the administrator chose to spare, and letting the device
    sync would hand it the data the administrator wanted gone; so it is
    refused with 403 until it speaks 16.1 or the wipe is cancelled.
    """
    return device.wipe in ACCOUNT_WIPE_STATES and version != "16.1"


def status_document(command: str, status: int) -> etree._Element | None:
    """
    C{<Command xmlns="ns:"><Status>status</Status></Command>}, or None for a
    command without a WBXML response.
    """
    root = _RESPONSE_ROOTS.get(command)
    if root is None:
        return None
    namespace, name = root
    document = etree.Element(wbxml.qname(namespace, name))
    etree.SubElement(document, wbxml.qname(namespace, "Status")).text = str(status)
    return document


def refusal(ctx: CommandContext, status: int, legacy: int = RETRY_AFTER_PROVISION) -> Response:
    """
    Refuse the request the way its protocol version understands: the
    common status C{status} in the command's response document (14.0+), or
    the HTTP status C{legacy} (12.x, and commands without a WBXML response).
    """
    document = status_document(ctx.request.command, status)
    if ctx.version_number < 14.0 or document is None:
        return Response(legacy)
    return wbxml_response(document)


def busy(retry_after: float) -> Response:
    """
    HTTP 503 with Retry-After, for every version (MS-ASHTTP 3.1.5.2.3).
    """
    return Response(503, b"", {"retry-after": str(max(1, int(retry_after + 0.999)))})


def device_limit_refusal(ctx: CommandContext) -> Response:
    return refusal(ctx, MAXIMUM_DEVICES_REACHED, FORBIDDEN)


def _log(ctx: CommandContext, message: str, **fields) -> None:
    log.info("{account} {device} {command}: " + message, account=ctx.account.address,
             device=ctx.request.device_id, command=ctx.request.command, **fields)


async def check(ctx: CommandContext) -> Response | None:
    command = ctx.request.command
    device = ctx.device
    if account_wipe_unexpressible(device, ctx.version):
        log.warn(
            "{account} {device}: account-only wipe {state} but the device speaks {version}; refused",
            account=ctx.account.address, device=device.device_id, state=device.wipe, version=ctx.version,
        )
        return Response(FORBIDDEN)
    server = ctx.server
    access = state.decide(device, server.clock.seconds())
    await notices.announce(server.store, ctx.account, device, access, server.config.mail.hostname)
    if wipe_directive(device, ctx.version) is not None:
        if command in _EXEMPT:
            return None
        _log(ctx, "wipe {state}, sent to Provision", state=device.wipe)
        return refusal(ctx, REMOTE_WIPE_REQUESTED)
    if access.state == state.AUTOBLOCKED:
        remaining = access.until.timestamp() - server.clock.seconds()
        _log(ctx, "refused, {source} for {seconds:.0f} more seconds", source=access.source, seconds=remaining)
        return busy(remaining)
    if access.state == state.BLOCKED or (access.state == state.QUARANTINED and command not in _EXEMPT):
        _log(ctx, "refused, device {state} ({source})", state=access.state, source=access.source)
        return refusal(ctx, DEVICE_BLOCKED, FORBIDDEN)
    if command in _EXEMPT:
        return None
    key = ctx.request.policy_key
    if key and device.policy_key is not None and key == device.policy_key:
        return None
    status = DEVICE_NOT_PROVISIONED if not key else INVALID_POLICY_KEY
    _log(ctx, "policy key {key} refused ({status})", key=key, status=status)
    return refusal(ctx, status)

"""
Whether a device may run a command: provisioning (policy key) and remote
wipe.  Runs on every POST, after the device is recorded and before the
command.  Returns the answer that refuses the request, or None.

Every command except Provision needs the policy key the device confirmed
in the last Provision exchange (MS-ASPROV 3.2.5).  Settings and Ping are
not exempt: MS-ASCMD 3.1.5.2 has a provisionable client send its
DeviceInformation "as soon as possible after the client has been
provisioned", and 14.1+ clients send it inside Provision instead.

How a refusal is spelled depends on the version (MS-ASCMD 2.2.2,
MS-ASHTTP 2.2.2.1.1): 12.x knows only HTTP 449 ("retry after sending a
Provision command"); 14.0 and later get HTTP 200 with the command's own
response document carrying a common status code:

    140  RemoteWipeRequested   a wipe is pending (or was done: a wiped
                               device that comes back is wiped again)
    142  DeviceNotProvisioned  no policy key, or 0
    144  InvalidPolicyKey      a key that is not the one confirmed
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response

log = Logger()

WBXML_TYPE = "application/vnd.ms-sync.wbxml"

REMOTE_WIPE_REQUESTED = 140
DEVICE_NOT_PROVISIONED = 142
INVALID_POLICY_KEY = 144

_EXEMPT = frozenset({"Provision"})

# The root element of each command's response, for the 14.0+ status form.
# GetAttachment has no WBXML response at all and is refused with 449.
_RESPONSE_ROOTS = {
    "Sync": ("AirSync", "Sync"),
    "SendMail": ("ComposeMail", "SendMail"),
    "SmartForward": ("ComposeMail", "SmartForward"),
    "SmartReply": ("ComposeMail", "SmartReply"),
    "FolderSync": ("FolderHierarchy", "FolderSync"),
    "FolderCreate": ("FolderHierarchy", "FolderCreate"),
    "FolderDelete": ("FolderHierarchy", "FolderDelete"),
    "FolderUpdate": ("FolderHierarchy", "FolderUpdate"),
    "MoveItems": ("Move", "MoveItems"),
    "GetItemEstimate": ("ItemEstimate", "GetItemEstimate"),
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


def refusal(ctx: CommandContext, status: int) -> Response:
    """
    Send the device to Provision the way its protocol version understands.
    """
    document = status_document(ctx.request.command, status)
    if ctx.version_number < 14.0 or document is None:
        return Response(449)
    return Response(200, wbxml.encode(document), {"content-type": WBXML_TYPE})


async def check(ctx: CommandContext) -> Response | None:
    command = ctx.request.command
    device = ctx.device
    if account_wipe_unexpressible(device, ctx.version):
        log.warn(
            "{account} {device}: account-only wipe {state} but the device speaks {version}; refused",
            account=ctx.account.address, device=device.device_id, state=device.wipe, version=ctx.version,
        )
        return Response(403)
    if command in _EXEMPT:
        return None
    if wipe_directive(device, ctx.version) is not None:
        log.info(
            "{account} {device} {command}: wipe {state}, sent to Provision",
            account=ctx.account.address, device=device.device_id, command=command, state=device.wipe,
        )
        return refusal(ctx, REMOTE_WIPE_REQUESTED)
    key = ctx.request.policy_key
    if key and device.policy_key is not None and key == device.policy_key:
        return None
    status = DEVICE_NOT_PROVISIONED if not key else INVALID_POLICY_KEY
    log.info(
        "{account} {device} {command}: policy key {key} refused ({status})",
        account=ctx.account.address, device=device.device_id, command=command, key=key, status=status,
    )
    return refusal(ctx, status)

"""
The Provision command (MS-ASPROV): policy download, acknowledgement, and
remote wipe.

Two phases (MS-ASPROV 3.1.5.1, 3.2.5.1):

1. The device asks for PolicyType MS-EAS-Provisioning-WBXML; we answer the
   EASProvisionDoc built from [policy] and a temporary PolicyKey, stored as
   the device's pending key.
2. The device acknowledges with that key and the Status of applying the
   policy; we answer the final PolicyKey, stored as the device's confirmed
   key, which every later request must carry (see access.py).

A device whose wipe is pending (or done: a wiped phone that reconnects is
wiped again) gets RemoteWipe, or AccountOnlyRemoteWipe on 16.1, instead of
a policy, and its acknowledgement in the next Provision is recorded
(MS-ASPROV 3.2.5.1.2.2, 3.2.5.1.2.3).

In 14.1 and later the initial request carries settings:DeviceInformation
(MS-ASPROV 2.2.2.53); it is stored like Settings does and its Status comes
first in the response, as the response schema's sequence requires
(MS-ASPROV 6.3: DeviceInformation, Status, Policies, RemoteWipe,
AccountOnlyRemoteWipe).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.devices import notices, state
from bluesync.eas import access
from bluesync.eas.commands.settings import store_device_information
from bluesync.eas.context import CommandContext
from bluesync.eas.policy import POLICY_TYPE, is_restrictive, provision_document
from bluesync.eas.responses import wbxml_response
from bluesync.store.audit import AuditEntry
from bluesync.web.rendering import Response

log = Logger()

# MS-ASPROV 2.2.2.54.2: Status of Provision.
SUCCESS = 1
PROTOCOL_ERROR = 2
# MS-ASPROV 3.1.5.2: the client could not fully apply a policy we require.
NOT_FULLY_PROVISIONABLE = 139

# MS-ASPROV 2.2.2.54.1: Status of Policy in responses.
POLICY_SUCCESS = 1
UNKNOWN_POLICY_TYPE = 3
WRONG_POLICY_KEY = 5


def _p(name: str) -> str:
    return wbxml.qname("Provision", name)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def new_policy_key(avoid: int | None = None) -> int:
    """
    A random nonzero 32-bit key: 0 means "no key" to clients and servers
    (MS-ASPROV 3.1.5.1.1), and guessing one must be as hard as possible.
    """
    while True:
        key = secrets.randbelow(0xFFFFFFFF) + 1
        if key != avoid:
            return key


@dataclass
class _Request:
    device_information: etree._Element | None = None
    policy_type: str | None = None
    policy_key: str | None = None
    policy_status: str | None = None
    has_policy: bool = False
    wipe_status: str | None = None
    account_wipe_status: str | None = None


def _read(document: etree._Element) -> _Request:
    request = _Request(device_information=document.find(wbxml.qname("Settings", "DeviceInformation")))
    policy = document.find(f"{_p('Policies')}/{_p('Policy')}")
    if policy is not None:
        request.has_policy = True
        request.policy_type = _text(policy.find(_p("PolicyType")))
        request.policy_key = _text(policy.find(_p("PolicyKey")))
        request.policy_status = _text(policy.find(_p("Status")))
    request.wipe_status = _text(document.find(f"{_p('RemoteWipe')}/{_p('Status')}"))
    request.account_wipe_status = _text(document.find(f"{_p('AccountOnlyRemoteWipe')}/{_p('Status')}"))
    return request


class _Answer:
    """
    The response document, assembled in schema order whatever order the
    handler decides things in.
    """

    def __init__(self) -> None:
        self.device_information_status: int | None = None
        self.status = SUCCESS
        self.policy: tuple[str, int, int | None, bool] | None = None
        self.directive: str | None = None

    def element(self, policy_config) -> etree._Element:
        root = etree.Element(_p("Provision"))
        if self.device_information_status is not None:
            information = etree.SubElement(root, wbxml.qname("Settings", "DeviceInformation"))
            etree.SubElement(information, wbxml.qname("Settings", "Status")).text = str(
                self.device_information_status
            )
        etree.SubElement(root, _p("Status")).text = str(self.status)
        if self.policy is not None:
            policy_type, status, key, with_data = self.policy
            policy = etree.SubElement(etree.SubElement(root, _p("Policies")), _p("Policy"))
            etree.SubElement(policy, _p("PolicyType")).text = policy_type
            etree.SubElement(policy, _p("Status")).text = str(status)
            if key is not None:
                etree.SubElement(policy, _p("PolicyKey")).text = str(key)
            if with_data:
                etree.SubElement(policy, _p("Data")).append(provision_document(policy_config))
        if self.directive is not None:
            etree.SubElement(root, _p(self.directive))
        return root


async def handle(ctx: CommandContext) -> Response:
    answer = _Answer()
    response = await _provision(ctx, answer)
    if response is not None:
        return response
    return wbxml_response(answer.element(ctx.server.config.policy))


def _log(ctx: CommandContext, message: str, **fields) -> None:
    log.info("{account} {device} Provision: " + message,
             account=ctx.account.address, device=ctx.request.device_id, **fields)


async def _provision(ctx: CommandContext, answer: _Answer) -> Response | None:
    """
    Fill C{answer}; return a Response only to refuse at the HTTP level.
    """
    device = ctx.device
    if access.account_wipe_unexpressible(device, ctx.version):
        return Response(403)
    document = ctx.document
    if document is not None and document.tag != _p("Provision"):
        _log(ctx, "root element {tag} is not Provision", tag=str(document.tag))
        answer.status = PROTOCOL_ERROR
        return None
    # An empty body is the empty Provision of MS-ASPROV 3.1.5.1.1, sent in
    # answer to status 140.
    request = _read(document) if document is not None else _Request()

    if request.device_information is not None:
        if ctx.version_number >= 14.1:
            answer.device_information_status = await store_device_information(ctx, request.device_information)
        else:
            _log(ctx, "DeviceInformation ignored in protocol {version}", version=ctx.version)

    directive = access.wipe_directive(device, ctx.version)
    if directive is not None:
        await _wipe(ctx, answer, request, directive)
        return None
    if request.wipe_status is not None or request.account_wipe_status is not None:
        # An acknowledgement nobody asked for (the wipe was cancelled in
        # between): the device wipes whatever we say, so just note it.
        _log(ctx, "wipe acknowledgement without a pending wipe")
        if not request.has_policy:
            return None

    if not request.has_policy:
        _log(ctx, "no Policies/Policy in the request")
        answer.status = PROTOCOL_ERROR
        return None
    if not request.policy_type:
        _log(ctx, "Policy without PolicyType")
        answer.status = PROTOCOL_ERROR
        return None
    if request.policy_type != POLICY_TYPE:
        # MS-WAP-Provisioning-XML belongs to 12.0 and earlier (MS-ASPROV 2.2.2.43).
        _log(ctx, "PolicyType {type} refused", type=request.policy_type)
        answer.policy = (request.policy_type, UNKNOWN_POLICY_TYPE, None, False)
        return None
    if request.policy_key in (None, "", "0"):
        # 0 is "no key" (MS-ASPROV 3.1.5.1.1); a client that spells its
        # initial request with it is asking for the policy, not acknowledging.
        await _download(ctx, answer)
    else:
        await _acknowledge(ctx, answer, request)
    return None


async def _download(ctx: CommandContext, answer: _Answer) -> None:
    """
    Phase 1: the policy and a temporary key valid only for acknowledging it.
    """
    key = new_policy_key(avoid=ctx.device.policy_key)
    await ctx.server.store.devices.set_pending_policy_key(ctx.device.id, key)
    _log(ctx, "policy sent, awaiting acknowledgement")
    answer.policy = (POLICY_TYPE, POLICY_SUCCESS, key, True)


async def _acknowledge(ctx: CommandContext, answer: _Answer, request: _Request) -> None:
    """
    Phase 2: the temporary key comes back with the client's Status
    (MS-ASPROV 2.2.2.54.1: 1 applied, 2 partly, 3 not at all, 4 managed by
    a third party).  A missing Status is read as 1, as older clients omit it.
    """
    device = ctx.device
    try:
        key = int(request.policy_key)
    except ValueError:
        key = None
    if key is None or device.pending_policy_key is None or key != device.pending_policy_key:
        _log(ctx, "acknowledged a policy key that was not handed out")
        answer.policy = (POLICY_TYPE, WRONG_POLICY_KEY, None, False)
        return
    try:
        client_status = int(request.policy_status) if request.policy_status else 1
    except ValueError:
        _log(ctx, "Policy Status {status} is not a number", status=request.policy_status)
        answer.status = PROTOCOL_ERROR
        return
    if client_status != 1 and is_restrictive(ctx.server.config.policy):
        log.warn(
            "{account} {device}: could not apply the policy (client status {status}); refused",
            account=ctx.account.address, device=device.device_id, status=client_status,
        )
        answer.status = NOT_FULLY_PROVISIONABLE
        return
    final = new_policy_key(avoid=key)
    await ctx.server.store.devices.confirm_policy_key(device.id, final, client_status)
    _log(ctx, "provisioned (client status {status})", status=client_status)
    answer.policy = (POLICY_TYPE, POLICY_SUCCESS, final, False)


async def _wipe(ctx: CommandContext, answer: _Answer, request: _Request, directive: str) -> None:
    """
    Send the wipe directive, or record its acknowledgement.  A device that
    reports failure is told again (MS-ASPROV 3.2.5.1.2.2: Status 2 and the
    directive); success is answered with Status 1 alone.
    """
    acknowledgement = request.wipe_status if request.wipe_status is not None else request.account_wipe_status
    if acknowledgement is None:
        log.warn("{account} {device}: {directive} sent",
                 account=ctx.account.address, device=ctx.device.device_id, directive=directive)
        answer.directive = directive
        return
    if acknowledgement != "1":
        log.warn("{account} {device}: wipe failed on the device (status {status})",
                 account=ctx.account.address, device=ctx.device.device_id, status=acknowledgement)
        answer.status = PROTOCOL_ERROR
        answer.directive = directive
        return
    devices = ctx.server.store.devices
    entry = AuditEntry("device", "device.wipe-acknowledged", ctx.account.address, ctx.device.device_id, directive)
    if directive == "AccountOnlyRemoteWipe":
        await devices.acknowledge_account_wipe(ctx.device.id, entry)
    else:
        await devices.acknowledge_wipe(ctx.device.id, entry)
    log.warn("{account} {device}: wipe acknowledged",
             account=ctx.account.address, device=ctx.device.device_id)
    # The phone may never come back: tell its owner now.
    wiped = await devices.by_pk(ctx.device.id)
    if wiped is not None:
        await notices.announce(ctx.server.store, ctx.account, wiped, state.decide(wiped, ctx.server.clock.seconds()),
                               ctx.server.config.mail.hostname)

"""
The Settings command (MS-ASCMD 2.2.1.18): out-of-office, device
information, the user's addresses, device password and rights management.

Each child of the request is answered by one child of the response with its
own Status (MS-ASCMD 2.2.3.177.15); the top-level Status is 1 unless the
request itself is malformed.  The response Settings element is an xs:all
(MS-ASCMD 6.40), so children are answered in the order they were asked.

Decisions:
- DevicePassword: the recovery password is refused with Status 7 (denied
  by policy) and never stored or logged.  It exists so that an
  administrator can read it back to unlock a phone; a hash would defeat
  that and plaintext would be a liability.  The policy says so to devices
  (PasswordRecoveryEnabled 0, MS-ASPROV 2.2.2.46).
- RightsManagementInformation: bluesync has no IRM, so Status 168
  (IRM_FeatureDisabled, MS-ASCMD 2.2.2).
- Oof is stored (accounts.oof) and answered back; sending the replies is
  the mail delivery's business.
"""

from __future__ import annotations

from datetime import datetime, timezone

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.items.html2text import html_to_text, text_to_html
from bluesync.web.rendering import Response

log = Logger()


SUCCESS = 1
PROTOCOL_ERROR = 2
INVALID_ARGUMENTS = 5
DENIED_BY_POLICY = 7
IRM_FEATURE_DISABLED = 168


def _s(name: str) -> str:
    return wbxml.qname("Settings", name)


# Settings DeviceInformation/Set children -> devices columns (MS-ASCMD 2.2.3.45).
DEVICE_INFORMATION_FIELDS = {
    "Model": "model",
    "IMEI": "imei",
    "FriendlyName": "friendly_name",
    "OS": "os",
    "OSLanguage": "os_language",
    "PhoneNumber": "phone_number",
    "UserAgent": "user_agent",
    "MobileOperator": "mobile_operator",
}
# MS-ASCMD 6.38: DeviceInformationStringType is at most 1024 characters.
_MAX_INFORMATION = 1024

# OofMessage audiences (MS-ASCMD 2.2.3.123) -> keys of the stored record.
_AUDIENCES = {
    "AppliesToInternal": "internal",
    "AppliesToExternalKnown": "external_known",
    "AppliesToExternalUnknown": "external_unknown",
}
_OOF_TIME = "%Y-%m-%dT%H:%M:%S.000Z"


def answer(document: etree._Element) -> Response:
    return wbxml_response(document)


def _status(parent: etree._Element, status: int) -> etree._Element:
    element = etree.SubElement(parent, _s("Status"))
    element.text = str(status)
    return element


def _text(element: etree._Element | None) -> str:
    return (element.text or "") if element is not None else ""


# --- DeviceInformation (shared with Provision, MS-ASPROV 2.2.2.53) ---------

def read_device_information(element: etree._Element) -> tuple[int, dict[str, str], bool | None]:
    """
    Read C{settings:DeviceInformation}: (status, text fields by column,
    EnableOutboundSMS or None).  A missing Set is a protocol error, a bad
    EnableOutboundSMS an invalid argument.
    """
    settings = element.find(_s("Set"))
    if settings is None:
        return PROTOCOL_ERROR, {}, None
    information: dict[str, str] = {}
    outbound_sms = None
    for child in settings:
        name = etree.QName(child).localname if isinstance(child.tag, str) else None
        if name in DEVICE_INFORMATION_FIELDS:
            information[DEVICE_INFORMATION_FIELDS[name]] = _text(child).strip()[:_MAX_INFORMATION]
        elif name == "EnableOutboundSMS":
            value = _text(child).strip()
            if value not in ("0", "1"):
                return INVALID_ARGUMENTS, {}, None
            outbound_sms = value == "1"
    return SUCCESS, information, outbound_sms


async def store_device_information(ctx: CommandContext, element: etree._Element) -> int:
    """
    Store a DeviceInformation element for the requesting device; return
    the Status to answer.
    """
    status, information, outbound_sms = read_device_information(element)
    if status != SUCCESS:
        log.info("{account} {device}: malformed DeviceInformation ({status})",
                 account=ctx.account.address, device=ctx.request.device_id, status=status)
        return status
    devices = ctx.server.store.devices
    await devices.set_information(ctx.device.id, information)
    if outbound_sms is not None:
        await devices.set_enable_outbound_sms(ctx.device.id, outbound_sms)
    return SUCCESS


async def _device_information(ctx: CommandContext, request: etree._Element) -> etree._Element:
    response = etree.Element(_s("DeviceInformation"))
    _status(response, await store_device_information(ctx, request))
    return response


# --- UserInformation --------------------------------------------------------

async def _user_information(ctx: CommandContext, request: etree._Element) -> etree._Element:
    """
    The account's addresses: 12.1 and 14.0 list them in Get/EmailAddresses;
    14.1 and later in Get/Accounts/Account with the display name and
    PrimarySmtpAddress (MS-ASCMD 2.2.3.57, 2.2.3.138).  The primary
    account has no AccountId.
    """
    response = etree.Element(_s("UserInformation"))
    if request.find(_s("Get")) is None:
        _status(response, PROTOCOL_ERROR)
        return response
    account = ctx.account
    addresses = [account.address, *await ctx.server.store.accounts.aliases(account.id)]
    _status(response, SUCCESS)
    get = etree.SubElement(response, _s("Get"))
    if ctx.version_number >= 14.1:
        entry = etree.SubElement(etree.SubElement(get, _s("Accounts")), _s("Account"))
        if account.display_name:
            etree.SubElement(entry, _s("UserDisplayName")).text = account.display_name
        holder = etree.SubElement(entry, _s("EmailAddresses"))
    else:
        holder = etree.SubElement(get, _s("EmailAddresses"))
    for address in addresses:
        etree.SubElement(holder, _s("SMTPAddress")).text = address
    if ctx.version_number >= 14.1:
        etree.SubElement(holder, _s("PrimarySmtpAddress")).text = account.address
    return response


# --- Oof ----------------------------------------------------------------------

def _parse_time(text: str) -> datetime | None:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _body_type(text: str) -> str | None:
    lowered = text.strip().lower()
    return {"text": "Text", "html": "HTML"}.get(lowered)


def _read_oof_message(element: etree._Element) -> tuple[str, dict] | None:
    """
    (audience, {"enabled", "reply", "body_type"}) or None if malformed:
    exactly one AppliesTo element is required.
    """
    audiences = [key for tag, key in _AUDIENCES.items() if element.find(_s(tag)) is not None]
    if len(audiences) != 1:
        return None
    enabled = _text(element.find(_s("Enabled"))).strip()
    if enabled not in ("", "0", "1"):
        return None
    body_type = _body_type(_text(element.find(_s("BodyType"))) or "Text")
    if body_type is None:
        return None
    return audiences[0], {
        "enabled": enabled == "1",
        "reply": _text(element.find(_s("ReplyMessage"))),
        "body_type": body_type,
    }


def _merge_oof(stored: dict | None, settings: etree._Element) -> dict | int:
    """
    The stored record updated by an Oof/Set element, or the Status that
    refuses it.  Elements the request leaves out keep their stored value.
    """
    record = {"state": 0, "start": None, "end": None, "messages": {}}
    if stored:
        record.update({key: stored.get(key, record[key]) for key in record})
        record["messages"] = dict(record["messages"] or {})
    state = settings.find(_s("OofState"))
    if state is not None:
        if _text(state).strip() not in ("0", "1", "2"):
            return INVALID_ARGUMENTS
        record["state"] = int(_text(state))
    for tag, key in (("StartTime", "start"), ("EndTime", "end")):
        element = settings.find(_s(tag))
        if element is not None:
            value = _parse_time(_text(element))
            if value is None:
                return INVALID_ARGUMENTS
            record[key] = value.strftime(_OOF_TIME)
    if record["state"] == 2:
        # MS-ASCMD 2.2.3.124: a time-based OOF needs its window.
        if not record["start"] or not record["end"] or record["end"] <= record["start"]:
            return INVALID_ARGUMENTS
    for element in settings.findall(_s("OofMessage")):
        message = _read_oof_message(element)
        if message is None:
            return PROTOCOL_ERROR
        audience, content = message
        record["messages"][audience] = content
    return record


def _oof_get(stored: dict | None, wanted: str, parent: etree._Element) -> None:
    """
    Oof/Get in schema order (MS-ASCMD 6.40: OofState, StartTime, EndTime,
    OofMessage), each reply converted to the body type the client asked.
    """
    get = etree.SubElement(parent, _s("Get"))
    stored = stored or {}
    etree.SubElement(get, _s("OofState")).text = str(stored.get("state", 0))
    for tag, key in (("StartTime", "start"), ("EndTime", "end")):
        if stored.get(key):
            etree.SubElement(get, _s(tag)).text = stored[key]
    messages = stored.get("messages") or {}
    for tag, key in _AUDIENCES.items():
        content = messages.get(key)
        if content is None:
            continue
        message = etree.SubElement(get, _s("OofMessage"))
        etree.SubElement(message, _s(tag))
        etree.SubElement(message, _s("Enabled")).text = "1" if content.get("enabled") else "0"
        reply = content.get("reply", "")
        if content.get("body_type") == "HTML" and wanted == "Text":
            reply = html_to_text(reply)
        elif content.get("body_type") != "HTML" and wanted == "HTML":
            reply = text_to_html(reply)
        etree.SubElement(message, _s("ReplyMessage")).text = reply
        etree.SubElement(message, _s("BodyType")).text = wanted


async def _oof(ctx: CommandContext, request: etree._Element) -> etree._Element:
    response = etree.Element(_s("Oof"))
    accounts = ctx.server.store.accounts
    get = request.find(_s("Get"))
    settings = request.find(_s("Set"))
    if (get is None) == (settings is None):
        _status(response, PROTOCOL_ERROR)
        return response
    stored = await accounts.oof(ctx.account.id)
    if get is not None:
        wanted = _body_type(_text(get.find(_s("BodyType"))) or "Text")
        if wanted is None:
            _status(response, PROTOCOL_ERROR)
            return response
        _status(response, SUCCESS)
        _oof_get(stored, wanted, response)
        return response
    record = _merge_oof(stored, settings)
    if isinstance(record, int):
        log.info("{account}: Oof Set refused ({status})", account=ctx.account.address, status=record)
        _status(response, record)
        return response
    await accounts.set_oof(ctx.account.id, record)
    _status(response, SUCCESS)
    return response


# --- DevicePassword, RightsManagementInformation ------------------------------

async def _device_password(ctx: CommandContext, request: etree._Element) -> etree._Element:
    # Never log the request: it holds the password.
    response = etree.Element(_s("DevicePassword"))
    if request.find(_s("Set")) is None:
        _status(response, PROTOCOL_ERROR)
        return response
    log.info("{account} {device}: recovery password refused (not stored by policy)",
             account=ctx.account.address, device=ctx.request.device_id)
    _status(response, DENIED_BY_POLICY)
    return response


async def _rights_management(ctx: CommandContext, request: etree._Element) -> etree._Element:
    response = etree.Element(_s("RightsManagementInformation"))
    _status(response, IRM_FEATURE_DISABLED)
    return response


_HANDLERS = {
    _s("Oof"): _oof,
    _s("DeviceInformation"): _device_information,
    _s("UserInformation"): _user_information,
    _s("DevicePassword"): _device_password,
    _s("RightsManagementInformation"): _rights_management,
}


async def handle(ctx: CommandContext) -> Response:
    response = etree.Element(_s("Settings"))
    overall = _status(response, SUCCESS)
    request = ctx.document
    if request is None or request.tag != _s("Settings") or len(request) == 0:
        log.info("{account} {device}: malformed Settings request",
                 account=ctx.account.address, device=ctx.request.device_id)
        overall.text = str(PROTOCOL_ERROR)
        return answer(response)
    seen = set()
    for child in request:
        handler = _HANDLERS.get(child.tag)
        if handler is None or child.tag in seen:
            # Unknown or repeated property: the response is an xs:all and
            # cannot carry two answers for one property.
            log.info("{account} {device}: Settings cannot handle {tag}",
                     account=ctx.account.address, device=ctx.request.device_id, tag=str(child.tag))
            overall.text = str(PROTOCOL_ERROR)
            continue
        seen.add(child.tag)
        response.append(await handler(ctx, child))
    return answer(response)

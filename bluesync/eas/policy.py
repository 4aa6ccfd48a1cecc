"""
The security policy a device receives in Provision (MS-ASPROV 2.2.2.28).

The EASProvisionDoc is an xs:sequence in the schema (MS-ASPROV 6.1,
Provision.xsd), so its children are written in exactly the order of
L{SETTINGS_ORDER}; a client with a validating parser refuses any other.
What [policy] does not govern gets the permissive value, so that a device
is never restricted by something the administrator did not ask for.
"""

from __future__ import annotations

from lxml import etree

from bluesync.config import PolicyConfig
from bluesync.wbxml import qname

# MS-ASPROV 2.2.2.43: the only PolicyType of protocol 12.1 and later.
POLICY_TYPE = "MS-EAS-Provisioning-WBXML"

# The sequence of EASProvisionDoc (MS-ASPROV 6.1).  UnapprovedInROMApplicationList
# and ApprovedApplicationList close it; we never send them: an empty
# ApprovedApplicationList means "no in-memory application may run"
# (MS-ASPROV 2.2.2.22), the opposite of permissive.
SETTINGS_ORDER = (
    "DevicePasswordEnabled",
    "AlphanumericDevicePasswordRequired",
    "PasswordRecoveryEnabled",
    "RequireStorageCardEncryption",
    "AttachmentsEnabled",
    "MinDevicePasswordLength",
    "MaxInactivityTimeDeviceLock",
    "MaxDevicePasswordFailedAttempts",
    "MaxAttachmentSize",
    "AllowSimpleDevicePassword",
    "DevicePasswordExpiration",
    "DevicePasswordHistory",
    "AllowStorageCard",
    "AllowCamera",
    "RequireDeviceEncryption",
    "AllowUnsignedApplications",
    "AllowUnsignedInstallationPackages",
    "MinDevicePasswordComplexCharacters",
    "AllowWiFi",
    "AllowTextMessaging",
    "AllowPOPIMAPEmail",
    "AllowBluetooth",
    "AllowIrDA",
    "RequireManualSyncWhenRoaming",
    "AllowDesktopSync",
    "MaxCalendarAgeFilter",
    "AllowHTMLEmail",
    "MaxEmailAgeFilter",
    "MaxEmailBodyTruncationSize",
    "MaxEmailHTMLBodyTruncationSize",
    "RequireSignedSMIMEMessages",
    "RequireEncryptedSMIMEMessages",
    "RequireSignedSMIMEAlgorithm",
    "RequireEncryptionSMIMEAlgorithm",
    "AllowSMIMEEncryptionAlgorithmNegotiation",
    "AllowSMIMESoftCerts",
    "AllowBrowser",
    "AllowConsumerEmail",
    "AllowRemoteDesktop",
    "AllowInternetSharing",
)

# What the administrator does not configure.
_PERMISSIVE = {
    # Recovery passwords (Settings DevicePassword) are refused: see settings.py.
    "PasswordRecoveryEnabled": "0",
    "AllowCamera": "1",
    "AllowUnsignedApplications": "1",
    "AllowUnsignedInstallationPackages": "1",
    "AllowWiFi": "1",
    "AllowTextMessaging": "1",
    "AllowPOPIMAPEmail": "1",
    "AllowBluetooth": "2",  # MS-ASPROV 2.2.2.2: 2 allows every profile
    "AllowIrDA": "1",
    "RequireManualSyncWhenRoaming": "0",
    "AllowDesktopSync": "1",
    "MaxCalendarAgeFilter": "0",  # 0: all calendar items
    "AllowHTMLEmail": "1",
    "MaxEmailAgeFilter": "0",  # 0: all email
    "MaxEmailBodyTruncationSize": "-1",  # -1: no truncation
    "MaxEmailHTMLBodyTruncationSize": "-1",
    "RequireSignedSMIMEMessages": "0",
    "RequireEncryptedSMIMEMessages": "0",
    "RequireSignedSMIMEAlgorithm": "0",
    "RequireEncryptionSMIMEAlgorithm": "0",
    "AllowSMIMEEncryptionAlgorithmNegotiation": "2",  # 2: negotiate any algorithm
    "AllowSMIMESoftCerts": "1",
    "AllowBrowser": "1",
    "AllowConsumerEmail": "1",
    "AllowRemoteDesktop": "1",
    "AllowInternetSharing": "1",
}


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _bounded_or_empty(value: int, low: int, high: int) -> str:
    """
    The unsignedByteOrEmpty / unsignedIntOrEmpty types: empty means "not
    set by the policy".  0 in the configuration means the same; other
    values are brought into the range the spec allows.
    """
    if value <= 0:
        return ""
    return str(min(max(value, low), high))


def policy_settings(policy: PolicyConfig) -> dict[str, str]:
    """
    Every EASProvisionDoc setting as element name -> text ("" for an empty
    element), from [policy] and the permissive defaults.
    """
    configured = {
        "DevicePasswordEnabled": _flag(policy.password_required),
        "AlphanumericDevicePasswordRequired": _flag(policy.alphanumeric_password_required),
        # Encrypting the device but not its card would leave mail readable
        # on the card, so [policy] require_device_encryption asks for both.
        "RequireStorageCardEncryption": _flag(policy.require_device_encryption),
        "AttachmentsEnabled": _flag(policy.attachments_enabled),
        # 2.2.2.38: 1 to 16; empty or 1 means no minimum.
        "MinDevicePasswordLength": "" if policy.min_password_length <= 1
        else str(min(policy.min_password_length, 16)),
        # 2.2.2.36: seconds; 9999 or more means unlimited.
        "MaxInactivityTimeDeviceLock": _bounded_or_empty(policy.max_inactivity_lock, 1, 9999),
        # 2.2.2.32: 4 to 16.
        "MaxDevicePasswordFailedAttempts": _bounded_or_empty(policy.max_password_failures, 4, 16),
        "MaxAttachmentSize": _bounded_or_empty(policy.max_attachment_size, 1, 0xFFFFFFFF),
        "AllowSimpleDevicePassword": _flag(policy.allow_simple_password),
        "DevicePasswordExpiration": _bounded_or_empty(policy.password_expiration_days, 1, 0xFFFFFFFF),
        "DevicePasswordHistory": str(min(policy.password_history, 0xFFFFFFFF)),
        "AllowStorageCard": _flag(policy.allow_storage_card),
        "RequireDeviceEncryption": _flag(policy.require_device_encryption),
        # Character groups the password must mix (2.2.2.37); an
        # alphanumeric password has at least two.
        "MinDevicePasswordComplexCharacters": "2" if policy.alphanumeric_password_required else "1",
    }
    values = {**_PERMISSIVE, **configured}
    return {name: values[name] for name in SETTINGS_ORDER}


def provision_document(policy: PolicyConfig) -> etree._Element:
    """
    The EASProvisionDoc element, children in schema order.
    """
    document = etree.Element(qname("Provision", "EASProvisionDoc"))
    for name, value in policy_settings(policy).items():
        child = etree.SubElement(document, qname("Provision", name))
        if value:
            child.text = value
    return document


def is_restrictive(policy: PolicyConfig) -> bool:
    """
    Whether the policy asks a device for anything that protects data: a
    device that reports it could not apply such a policy is refused
    (MS-ASPROV 3.1.5.2, Status 139).
    """
    return policy.password_required or policy.require_device_encryption

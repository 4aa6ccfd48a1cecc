"""
Provision (MS-ASPROV) and the provisioning gate, end to end over TCP
against the real Site.  (Other end-to-end tests provision with
EASClient.provision(); L{provision} here also sends DeviceInformation.)
"""

from __future__ import annotations

import base64
import struct

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync import wbxml
from bluesync.eas import access
from bluesync.eas.policy import POLICY_TYPE, SETTINGS_ORDER
from tests.eas.client import Answer, EASClient, find, text, xml
from tests.support import SiteTestCase

POLICY = "provision:Policies/provision:Policy"

DEVICE_INFORMATION = """
<settings:DeviceInformation><settings:Set>
  <settings:Model>iPhone15C2</settings:Model>
  <settings:IMEI>356938035643809</settings:IMEI>
  <settings:FriendlyName>Alice's iPhone</settings:FriendlyName>
  <settings:OS>iOS 17.4 21E219</settings:OS>
  <settings:OSLanguage>en</settings:OSLanguage>
  <settings:PhoneNumber>+33612345678</settings:PhoneNumber>
  <settings:MobileOperator>Orange</settings:MobileOperator>
</settings:Set></settings:DeviceInformation>
"""

# A phase-1 request as raw WBXML bytes, written from the MS-ASWBXML code
# page 14 (Provision) token table; MS-ASPROV prints its examples only as XML.
RAW_INITIAL_REQUEST = (
    bytes.fromhex(
        "03 01 6a 00"  # WBXML 1.3, public id 1, UTF-8, empty string table
        "00 0e"  # SWITCH_PAGE 14 (Provision)
        "45 46 47 48"  # <Provision><Policies><Policy><PolicyType>
        "03"  # STR_I
    )
    + b"MS-EAS-Provisioning-WBXML"
    + bytes.fromhex("00 01 01 01 01")  # NUL, </PolicyType></Policy></Policies></Provision>
)


def initial_request(policy_type: str = POLICY_TYPE, device_information: str = "") -> str:
    return (
        '<Provision xmlns="Provision:" xmlns:settings="Settings:">'
        f"{device_information}"
        f"<Policies><Policy><PolicyType>{policy_type}</PolicyType></Policy></Policies></Provision>"
    )


def acknowledgement(key: str, status: str = "1") -> str:
    return (
        '<Provision xmlns="Provision:"><Policies><Policy>'
        f"<PolicyType>{POLICY_TYPE}</PolicyType><PolicyKey>{key}</PolicyKey><Status>{status}</Status>"
        "</Policy></Policies></Provision>"
    )


def wipe_acknowledgement(status: str = "1", element: str = "RemoteWipe") -> str:
    return f'<Provision xmlns="Provision:"><{element}><Status>{status}</Status></{element}></Provision>'


async def provision(client: EASClient, device_information: str = "") -> str:
    """
    The two-phase Provision exchange, optionally with 14.1+ DeviceInformation;
    the client keeps the final key.
    """
    client.policy_key = None
    first = await client.post("Provision", initial_request(device_information=device_information))
    temporary = text(first.document, f"{POLICY}/provision:PolicyKey")
    second = await client.post("Provision", acknowledgement(temporary))
    client.policy_key = text(second.document, f"{POLICY}/provision:PolicyKey")
    return client.policy_key


def children(element) -> list[str]:
    return [etree.QName(child).localname for child in element]


SETTINGS_GET = '<Settings xmlns="Settings:"><UserInformation><Get/></UserInformation></Settings>'


class ProvisionTestCase(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account()

    def client(self, version: str = "16.1", device_id: str = "TESTDEVICE1") -> EASClient:
        return EASClient(self.base_url, "alice@example.org", "correct horse", version=version,
                         device_id=device_id, pool=self.pool)

    async def device(self, device_id: str = "TESTDEVICE1"):
        return await self.store.devices.get(self.account.id, device_id)

    def assertGate(self, answer, status: int) -> None:
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.document.tag, "{Settings:}Settings")
        self.assertEqual(children(answer.document), ["Status"])
        self.assertEqual(text(answer.document, "settings:Status"), str(status))


class ProvisionDanceTests(ProvisionTestCase):
    async def _dance(self, version: str) -> None:
        client = self.client(version)
        self.assertGate(await client.post("Settings", SETTINGS_GET), 142)

        first = await client.post("Provision", initial_request(device_information=DEVICE_INFORMATION))
        self.assertEqual(first.code, 200)
        self.assertEqual(children(first.document), ["DeviceInformation", "Status", "Policies"])
        self.assertEqual(first.document[0].tag, "{Settings:}DeviceInformation")
        self.assertEqual(text(first.document, "settings:DeviceInformation/settings:Status"), "1")
        self.assertEqual(text(first.document, "provision:Status"), "1")
        policy = find(first.document, POLICY)[0]
        self.assertEqual(children(policy), ["PolicyType", "Status", "PolicyKey", "Data"])
        self.assertEqual(text(policy, "provision:PolicyType"), POLICY_TYPE)
        self.assertEqual(text(policy, "provision:Status"), "1")
        temporary = int(text(policy, "provision:PolicyKey"))
        self.assertTrue(0 < temporary <= 0xFFFFFFFF)
        document = find(policy, "provision:Data/provision:EASProvisionDoc")[0]
        self.assertEqual(children(document), list(SETTINGS_ORDER))
        device = await self.device()
        self.assertEqual((device.pending_policy_key, device.policy_key), (temporary, None))
        self.assertEqual((device.model, device.imei, device.os), ("iPhone15C2", "356938035643809", "iOS 17.4 21E219"))
        self.assertEqual((device.friendly_name, device.phone_number, device.mobile_operator),
                         ("Alice's iPhone", "+33612345678", "Orange"))

        # Still not provisioned: the temporary key only acknowledges.
        client.policy_key = str(temporary)
        self.assertGate(await client.post("Settings", SETTINGS_GET), 144)

        second = await client.post("Provision", acknowledgement(str(temporary)))
        self.assertEqual(children(second.document), ["Status", "Policies"])
        policy = find(second.document, POLICY)[0]
        self.assertEqual(children(policy), ["PolicyType", "Status", "PolicyKey"])
        self.assertEqual(text(policy, "provision:Status"), "1")
        final = int(text(policy, "provision:PolicyKey"))
        self.assertNotIn(final, (0, temporary))
        device = await self.device()
        self.assertEqual((device.policy_key, device.pending_policy_key, device.policy_status), (final, None, 1))

        client.policy_key = str(final)
        passed = await client.post("Settings", SETTINGS_GET)
        self.assertEqual(passed.code, 200)
        self.assertEqual(text(passed.document, "settings:Status"), "1")
        self.assertEqual(text(passed.document, "settings:UserInformation/settings:Status"), "1")

    async def test_dance_14_1(self):
        """14.1: 142, DeviceInformation stored, temporary key, final key, then the gate opens."""
        await self._dance("14.1")

    async def test_dance_16_1(self):
        """16.1: the same dance, with DeviceInformation inside Provision."""
        await self._dance("16.1")

    async def test_12_1_gets_449(self):
        """12.1 without a key, or with a stale one, gets HTTP 449; provisioned it passes."""
        client = self.client("12.1")
        self.assertEqual((await client.post("Settings", SETTINGS_GET)).code, 449)
        key = await provision(client)
        self.assertEqual((await client.post("Settings", SETTINGS_GET)).code, 200)
        client.policy_key = str(int(key) ^ 0x5A5A)
        self.assertEqual((await client.post("Settings", SETTINGS_GET)).code, 449)

    async def test_stale_and_zero_keys(self):
        """A stale key is 144 and a zero key 142, on 14.1 and 16.1."""
        for version, device_id in (("14.1", "DEVA"), ("16.1", "DEVB")):
            client = self.client(version, device_id)
            key = await provision(client)
            client.policy_key = str(int(key) ^ 1)
            self.assertGate(await client.post("Settings", SETTINGS_GET), 144)
            client.policy_key = "0"
            self.assertGate(await client.post("Settings", SETTINGS_GET), 142)
            client.policy_key = None
            self.assertGate(await client.post("Settings", SETTINGS_GET), 142)

    async def test_policy_key_in_base64_query(self):
        """The key carried in the base64 query form (MS-ASHTTP 2.2.1.1.1.1) is checked like the header."""
        client = self.client("14.1", device_id="0102AB")
        key = int(await provision(client))

        def query(policy: int | None) -> str:
            data = bytes([141, 17]) + struct.pack("<H", 0x0409) + b"\x03\x01\x02\xab"
            data += b"\x04" + struct.pack("<I", policy) if policy is not None else b"\x00"
            data += b"\x06iPhone"
            return base64.b64encode(data).decode()

        token = base64.b64encode(b"alice@example.org:correct horse").decode()
        for policy, status in ((key, "1"), (key ^ 1, "144"), (None, "142")):
            response = await self.http(
                "POST", f"/Microsoft-Server-ActiveSync?{query(policy)}",
                headers={"Authorization": [f"Basic {token}"], "Content-Type": ["application/vnd.ms-sync.wbxml"]},
                data=wbxml.encode(xml(SETTINGS_GET)),
            )
            answer = Answer(response.code, response.headers, await response.content())
            self.assertEqual(text(answer.document, "settings:Status"), status, policy)

    async def test_keys_are_per_device(self):
        """One device's key does not open the gate for another device."""
        key = await provision(self.client(device_id="DEVA"))
        other = self.client(device_id="DEVB")
        other.policy_key = key
        self.assertGate(await other.post("Settings", SETTINGS_GET), 144)

    async def test_wrong_temporary_key(self):
        """Acknowledging a key that was not handed out gets Policy Status 5 and no key."""
        client = self.client()
        first = await client.post("Provision", initial_request())
        temporary = int(text(first.document, f"{POLICY}/provision:PolicyKey"))
        answer = await client.post("Provision", acknowledgement(str(temporary ^ 0xFFFF)))
        self.assertEqual(text(answer.document, "provision:Status"), "1")
        policy = find(answer.document, POLICY)[0]
        self.assertEqual(children(policy), ["PolicyType", "Status"])
        self.assertEqual(text(policy, "provision:Status"), "5")
        device = await self.device()
        self.assertIsNone(device.policy_key)
        self.assertEqual(device.pending_policy_key, temporary)
        # Acknowledging without any phase 1 is refused the same way.
        fresh = self.client(device_id="FRESH")
        answer = await fresh.post("Provision", acknowledgement("12345"))
        self.assertEqual(text(answer.document, f"{POLICY}/provision:Status"), "5")

    async def test_zero_key_asks_for_the_policy(self):
        """An initial request carrying PolicyKey 0 ("no key") gets the policy and a temporary key."""
        answer = await self.client().post("Provision", acknowledgement("0"))
        policy = find(answer.document, POLICY)[0]
        self.assertEqual(children(policy), ["PolicyType", "Status", "PolicyKey", "Data"])
        self.assertEqual((await self.device()).pending_policy_key, int(text(policy, "provision:PolicyKey")))

    async def test_wap_policy_type_refused(self):
        """MS-WAP-Provisioning-XML gets Policy Status 3 and no key."""
        client = self.client("12.1")
        answer = await client.post("Provision", initial_request("MS-WAP-Provisioning-XML"))
        self.assertEqual(text(answer.document, "provision:Status"), "1")
        self.assertEqual(text(answer.document, f"{POLICY}/provision:Status"), "3")
        self.assertEqual(text(answer.document, f"{POLICY}/provision:PolicyType"), "MS-WAP-Provisioning-XML")
        self.assertFalse(find(answer.document, f"{POLICY}/provision:PolicyKey"))
        self.assertIsNone((await self.device()).pending_policy_key)

    async def test_raw_initial_request(self):
        """A phase-1 request sent as raw WBXML bytes gets the policy and a key."""
        answer = await self.client("14.0").post("Provision", body=RAW_INITIAL_REQUEST)
        self.assertEqual(answer.code, 200)
        self.assertEqual(text(answer.document, f"{POLICY}/provision:Status"), "1")
        key = int(text(answer.document, f"{POLICY}/provision:PolicyKey"))
        self.assertEqual((await self.device()).pending_policy_key, key)

    async def test_malformed_requests(self):
        """A wrong root, no Policies, or no PolicyType is Provision Status 2."""
        client = self.client()
        for body in (
            '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>',
            '<Provision xmlns="Provision:"/>',
            '<Provision xmlns="Provision:"><Policies><Policy/></Policies></Provision>',
        ):
            answer = await client.post("Provision", body)
            self.assertEqual(answer.code, 200, body)
            self.assertEqual(children(answer.document), ["Status"], body)
            self.assertEqual(text(answer.document, "provision:Status"), "2", body)
        self.assertEqual((await client.post("Provision")).code, 200)
        self.assertIsNone((await self.device()).pending_policy_key)

    async def test_device_information_ignored_before_14_1(self):
        """14.0 does not have DeviceInformation in Provision: no status for it, nothing stored."""
        answer = await self.client("14.0").post("Provision", initial_request(device_information=DEVICE_INFORMATION))
        self.assertEqual(children(answer.document), ["Status", "Policies"])
        self.assertEqual((await self.device()).model, "")

    async def test_partial_compliance_accepted_when_nothing_required(self):
        """With the default policy, a client that applied it partly is provisioned with its status."""
        client = self.client()
        first = await client.post("Provision", initial_request())
        temporary = text(first.document, f"{POLICY}/provision:PolicyKey")
        answer = await client.post("Provision", acknowledgement(temporary, status="2"))
        self.assertEqual(text(answer.document, f"{POLICY}/provision:Status"), "1")
        self.assertEqual((await self.device()).policy_status, 2)


class PolicyDocumentTests(ProvisionTestCase):
    config_text = """
[policy]
password_required = yes
min_password_length = 20
alphanumeric_password_required = yes
max_inactivity_lock = 300
max_password_failures = 2
allow_storage_card = no
require_device_encryption = yes
allow_simple_password = no
password_expiration_days = 90
password_history = 5
attachments_enabled = no
max_attachment_size = 1048576
"""

    async def test_document_follows_config(self):
        """[policy] values reach the EASProvisionDoc, clamped to the ranges MS-ASPROV allows."""
        answer = await self.client().post("Provision", initial_request())
        document = find(answer.document, f"{POLICY}/provision:Data/provision:EASProvisionDoc")[0]
        values = {etree.QName(child).localname: child.text or "" for child in document}
        expected = {
            "DevicePasswordEnabled": "1",
            "AlphanumericDevicePasswordRequired": "1",
            "PasswordRecoveryEnabled": "0",
            "RequireStorageCardEncryption": "1",
            "AttachmentsEnabled": "0",
            "MinDevicePasswordLength": "16",
            "MaxInactivityTimeDeviceLock": "300",
            "MaxDevicePasswordFailedAttempts": "4",
            "MaxAttachmentSize": "1048576",
            "AllowSimpleDevicePassword": "0",
            "DevicePasswordExpiration": "90",
            "DevicePasswordHistory": "5",
            "AllowStorageCard": "0",
            "RequireDeviceEncryption": "1",
            "MinDevicePasswordComplexCharacters": "2",
            "AllowBluetooth": "2",
            "MaxEmailBodyTruncationSize": "-1",
        }
        self.assertEqual({name: values[name] for name in expected}, expected)

    async def test_partial_compliance_refused(self):
        """A client that could not apply a password policy gets Provision Status 139 and no key."""
        client = self.client()
        first = await client.post("Provision", initial_request())
        temporary = text(first.document, f"{POLICY}/provision:PolicyKey")
        answer = await client.post("Provision", acknowledgement(temporary, status="3"))
        self.assertEqual(children(answer.document), ["Status"])
        self.assertEqual(text(answer.document, "provision:Status"), "139")
        self.assertIsNone((await self.device()).policy_key)


class DefaultPolicyDocumentTests(ProvisionTestCase):
    async def test_defaults(self):
        """The default configuration sends empty limits where 0 means none."""
        answer = await self.client().post("Provision", initial_request())
        document = find(answer.document, f"{POLICY}/provision:Data/provision:EASProvisionDoc")[0]
        values = {etree.QName(child).localname: child.text for child in document}
        self.assertEqual(values["DevicePasswordEnabled"], "0")
        self.assertEqual(values["MinDevicePasswordLength"], "4")
        self.assertEqual(values["MaxInactivityTimeDeviceLock"], "900")
        self.assertEqual(values["MaxDevicePasswordFailedAttempts"], "8")
        self.assertIsNone(values["MaxAttachmentSize"])
        self.assertIsNone(values["DevicePasswordExpiration"])
        self.assertEqual(values["AllowSimpleDevicePassword"], "1")


class RemoteWipeTests(ProvisionTestCase):
    async def test_remote_wipe(self):
        """A pending wipe: 140, RemoteWipe, acknowledgement recorded, and a returning device is wiped again."""
        client = self.client("14.1")
        await provision(client)
        device = await self.device()
        await self.store.devices.request_wipe(device.id)

        self.assertGate(await client.post("Settings", SETTINGS_GET), 140)
        # The empty Provision of MS-ASPROV 3.1.5.1.1.
        directive = await client.post("Provision")
        self.assertEqual(children(directive.document), ["Status", "RemoteWipe"])
        self.assertEqual(text(directive.document, "provision:Status"), "1")
        self.assertEqual(len(directive.document[1]), 0)

        done = await client.post("Provision", wipe_acknowledgement("1"))
        self.assertEqual(children(done.document), ["Status"])
        self.assertEqual(text(done.document, "provision:Status"), "1")
        device = await self.device()
        self.assertEqual(device.wipe, "wiped")
        self.assertIsNotNone(device.wipe_acknowledged_at)

        # The phone is set up again: every Provision answers RemoteWipe,
        # every other command sends it there.
        client.policy_key = None
        again = await client.post("Provision", initial_request(device_information=DEVICE_INFORMATION))
        self.assertEqual(children(again.document), ["DeviceInformation", "Status", "RemoteWipe"])
        self.assertGate(await client.post("Settings", SETTINGS_GET), 140)

    async def test_remote_wipe_12_1(self):
        """12.1 is sent to Provision with 449 and gets RemoteWipe there."""
        client = self.client("12.1")
        await provision(client)
        await self.store.devices.request_wipe((await self.device()).id)
        self.assertEqual((await client.post("Settings", SETTINGS_GET)).code, 449)
        directive = await client.post("Provision", initial_request())
        self.assertEqual(children(directive.document), ["Status", "RemoteWipe"])

    async def test_wipe_failure_repeats_directive(self):
        """A failed wipe is answered with Status 2 and the directive again; the wipe stays pending."""
        client = self.client()
        await self.store.devices.request_wipe((await self.store.devices.touch(
            self.account.id, "TESTDEVICE1", "iPhone", "", "16.1", "Provision")).id)
        answer = await client.post("Provision", wipe_acknowledgement("2"))
        self.assertEqual(children(answer.document), ["Status", "RemoteWipe"])
        self.assertEqual(text(answer.document, "provision:Status"), "2")
        self.assertEqual((await self.device()).wipe, "pending")

    async def test_account_only_wipe_16_1(self):
        """16.1: AccountOnlyRemoteWipe, its acknowledgement, and again on return; never a full wipe."""
        client = self.client("16.1")
        await provision(client)
        await self.store.devices.request_wipe((await self.device()).id, account_only=True)
        self.assertGate(await client.post("Settings", SETTINGS_GET), 140)
        directive = await client.post("Provision")
        self.assertEqual(children(directive.document), ["Status", "AccountOnlyRemoteWipe"])
        done = await client.post("Provision", wipe_acknowledgement("1", "AccountOnlyRemoteWipe"))
        self.assertEqual(children(done.document), ["Status"])
        self.assertEqual((await self.device()).wipe, "wiped_account")
        again = await client.post("Provision", initial_request())
        self.assertEqual(children(again.document), ["Status", "AccountOnlyRemoteWipe"])

    async def test_account_only_wipe_before_16_1_refused(self):
        """An account-only wipe cannot be said before 16.1: the device is refused with 403, not fully wiped."""
        client = self.client("14.1")
        await provision(client)
        await self.store.devices.request_wipe((await self.device()).id, account_only=True)
        self.assertEqual((await client.post("Settings", SETTINGS_GET)).code, 403)
        self.assertEqual((await client.post("Provision", initial_request())).code, 403)
        self.assertEqual((await self.device()).wipe, "pending_account")

    async def test_cancelled_wipe(self):
        """After the wipe is cancelled, the device provisions and syncs normally."""
        client = self.client()
        await provision(client)
        device = await self.device()
        await self.store.devices.request_wipe(device.id)
        await self.store.devices.cancel_wipe(device.id)
        self.assertEqual(text((await client.post("Settings", SETTINGS_GET)).document, "settings:Status"), "1")


class StatusDocumentTests(SynchronousTestCase):
    def test_roots(self):
        """The 14.0+ refusal is the command's own root element with a Status child."""
        for command, tag in (
            ("Sync", "{AirSync:}Sync"),
            ("FolderSync", "{FolderHierarchy:}FolderSync"),
            ("Ping", "{Ping:}Ping"),
            ("GetItemEstimate", "{GetItemEstimate:}GetItemEstimate"),
            ("SendMail", "{ComposeMail:}SendMail"),
        ):
            document = access.status_document(command, 142)
            self.assertEqual(document.tag, tag)
            self.assertEqual([(child.tag.split("}")[1], child.text) for child in document], [("Status", "142")])
        self.assertIsNone(access.status_document("GetAttachment", 142))

"""
The Settings command end to end over TCP, on a provisioned device.
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import globalLogPublisher, formatEvent

from tests.eas.client import EASClient, find, text
from tests.eas.test_provision import provision
from tests.support import SiteTestCase

# <Settings><UserInformation><Get/></UserInformation></Settings> as raw WBXML
# from the MS-ASWBXML code page 18 (Settings) token table.
RAW_USER_INFORMATION = bytes.fromhex(
    "03 01 6a 00"  # WBXML 1.3, public id 1, UTF-8, empty string table
    "00 12"  # SWITCH_PAGE 18 (Settings)
    "45 5d"  # <Settings><UserInformation>
    "07"  # <Get/> (no content)
    "01 01"  # </UserInformation></Settings>
)


def settings(inner: str) -> str:
    return f'<Settings xmlns="Settings:">{inner}</Settings>'


def children(element) -> list[str]:
    return [etree.QName(child).localname for child in element]


OOF_SET = settings(
    "<Oof><Set>"
    "<OofState>2</OofState>"
    "<StartTime>2030-07-01T08:00:00.000Z</StartTime>"
    "<EndTime>2030-07-15T18:00:00.000Z</EndTime>"
    "<OofMessage><AppliesToInternal/><Enabled>1</Enabled>"
    "<ReplyMessage>Back on the 15th.</ReplyMessage><BodyType>Text</BodyType></OofMessage>"
    "<OofMessage><AppliesToExternalUnknown/><Enabled>1</Enabled>"
    "<ReplyMessage>&lt;p&gt;Away &amp;amp; offline&lt;/p&gt;</ReplyMessage><BodyType>HTML</BodyType></OofMessage>"
    "</Set></Oof>"
)


class SettingsTests(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.create_account(name="Alice Martin")
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")

    async def client(self, version: str = "16.1") -> EASClient:
        client = EASClient(self.base_url, "alice@example.org", "correct horse", version=version, pool=self.pool)
        await provision(client)
        return client

    async def test_user_information_16_1(self):
        """16.1 lists the addresses, alias included, under Accounts/Account with the primary address."""
        client = await self.client("16.1")
        answer = await client.post("Settings", settings("<UserInformation><Get/></UserInformation>"))
        self.assertEqual(text(answer.document, "settings:Status"), "1")
        information = find(answer.document, "settings:UserInformation")[0]
        self.assertEqual(children(information), ["Status", "Get"])
        self.assertEqual(text(information, "settings:Status"), "1")
        account = find(information, "settings:Get/settings:Accounts/settings:Account")[0]
        self.assertEqual(text(account, "settings:UserDisplayName"), "Alice Martin")
        addresses = find(account, "settings:EmailAddresses")[0]
        self.assertEqual(children(addresses), ["SMTPAddress", "SMTPAddress", "PrimarySmtpAddress"])
        self.assertEqual([e.text for e in find(addresses, "settings:SMTPAddress")],
                         ["alice@example.org", "sales@example.org"])
        self.assertEqual(text(addresses, "settings:PrimarySmtpAddress"), "alice@example.org")

    async def test_user_information_14_0(self):
        """14.0 lists the addresses directly under Get/EmailAddresses, without Accounts."""
        answer = await (await self.client("14.0")).post("Settings", body=RAW_USER_INFORMATION)
        get = find(answer.document, "settings:UserInformation/settings:Get")[0]
        self.assertEqual(children(get), ["EmailAddresses"])
        self.assertEqual([e.text for e in find(get, "settings:EmailAddresses/settings:SMTPAddress")],
                         ["alice@example.org", "sales@example.org"])
        self.assertFalse(find(get, ".//settings:PrimarySmtpAddress"))

    async def test_device_information(self):
        """DeviceInformation Set is stored on the device, EnableOutboundSMS included."""
        client = await self.client("14.0")
        answer = await client.post("Settings", settings(
            "<DeviceInformation><Set>"
            "<Model>SM-S918B</Model><IMEI>490154203237518</IMEI><FriendlyName>Galaxy</FriendlyName>"
            "<OS>Android 14</OS><OSLanguage>fr-FR</OSLanguage><PhoneNumber>+4915112345678</PhoneNumber>"
            "<UserAgent>Android-SAMSUNG-SM-S918B/101.140</UserAgent>"
            "<EnableOutboundSMS>1</EnableOutboundSMS><MobileOperator>Telekom</MobileOperator>"
            "</Set></DeviceInformation>"
        ))
        self.assertEqual(text(answer.document, "settings:DeviceInformation/settings:Status"), "1")
        device = await self.store.devices.get(self.account.id, client.device_id)
        self.assertEqual(
            (device.model, device.imei, device.friendly_name, device.os, device.os_language, device.phone_number,
             device.user_agent, device.mobile_operator, device.enable_outbound_sms),
            ("SM-S918B", "490154203237518", "Galaxy", "Android 14", "fr-FR", "+4915112345678",
             "Android-SAMSUNG-SM-S918B/101.140", "Telekom", True),
        )
        refused = await client.post("Settings", settings(
            "<DeviceInformation><Set><EnableOutboundSMS>yes</EnableOutboundSMS></Set></DeviceInformation>"))
        self.assertEqual(text(refused.document, "settings:DeviceInformation/settings:Status"), "5")

    async def test_oof_set_then_get(self):
        """Oof Set is stored; Get answers it back in schema order, converted to the asked body type."""
        client = await self.client()
        answer = await client.post("Settings", OOF_SET)
        self.assertEqual(text(answer.document, "settings:Oof/settings:Status"), "1")
        stored = await self.store.accounts.oof(self.account.id)
        self.assertEqual(stored["state"], 2)
        self.assertEqual(stored["messages"]["external_unknown"]["body_type"], "HTML")

        answer = await client.post("Settings", settings("<Oof><Get><BodyType>Text</BodyType></Get></Oof>"))
        get = find(answer.document, "settings:Oof/settings:Get")[0]
        self.assertEqual(children(get), ["OofState", "StartTime", "EndTime", "OofMessage", "OofMessage"])
        self.assertEqual(text(get, "settings:OofState"), "2")
        self.assertEqual(text(get, "settings:StartTime"), "2030-07-01T08:00:00.000Z")
        self.assertEqual(text(get, "settings:EndTime"), "2030-07-15T18:00:00.000Z")
        internal, external = find(get, "settings:OofMessage")
        self.assertEqual(children(internal), ["AppliesToInternal", "Enabled", "ReplyMessage", "BodyType"])
        self.assertEqual(text(internal, "settings:ReplyMessage"), "Back on the 15th.")
        self.assertEqual(children(external)[0], "AppliesToExternalUnknown")
        self.assertEqual(text(external, "settings:ReplyMessage").strip(), "Away & offline")
        self.assertEqual(text(external, "settings:BodyType"), "Text")

        # A later Set of one message keeps the rest.
        await client.post("Settings", settings(
            "<Oof><Set><OofState>0</OofState><OofMessage><AppliesToInternal/><Enabled>0</Enabled>"
            "<ReplyMessage>Gone</ReplyMessage><BodyType>Text</BodyType></OofMessage></Set></Oof>"))
        answer = await client.post("Settings", settings("<Oof><Get><BodyType>HTML</BodyType></Get></Oof>"))
        get = find(answer.document, "settings:Oof/settings:Get")[0]
        self.assertEqual(text(get, "settings:OofState"), "0")
        internal, external = find(get, "settings:OofMessage")
        self.assertEqual(text(internal, "settings:Enabled"), "0")
        self.assertIn("Gone", text(internal, "settings:ReplyMessage"))
        self.assertEqual(text(internal, "settings:BodyType"), "HTML")
        self.assertIn("Away &amp; offline", text(external, "settings:ReplyMessage"))

    async def test_oof_get_when_never_set(self):
        """Oof Get on an account without settings answers OofState 0."""
        client = await self.client()
        answer = await client.post("Settings", settings("<Oof><Get><BodyType>Text</BodyType></Get></Oof>"))
        get = find(answer.document, "settings:Oof/settings:Get")[0]
        self.assertEqual(children(get), ["OofState"])
        self.assertEqual(text(get, "settings:OofState"), "0")

    async def test_oof_invalid(self):
        """A bad OofState, a window ending before it starts, or a message without audience is refused."""
        client = await self.client()
        for inner, status in (
            ("<Oof><Set><OofState>7</OofState></Set></Oof>", "5"),
            ("<Oof><Set><OofState>2</OofState><StartTime>2030-07-15T00:00:00.000Z</StartTime>"
             "<EndTime>2030-07-01T00:00:00.000Z</EndTime></Set></Oof>", "5"),
            ("<Oof><Set><StartTime>tomorrow</StartTime></Set></Oof>", "5"),
            ("<Oof><Set><OofMessage><Enabled>1</Enabled></OofMessage></Set></Oof>", "2"),
            ("<Oof/>", "2"),
        ):
            answer = await client.post("Settings", settings(inner))
            self.assertEqual(text(answer.document, "settings:Oof/settings:Status"), status, inner)
        self.assertIsNone(await self.store.accounts.oof(self.account.id))

    async def test_device_password_refused_and_never_logged(self):
        """A recovery password gets Status 7 and appears in no log event."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        answer = await (await self.client()).post("Settings", settings(
            "<DevicePassword><Set><Password>hunter2-recovery</Password></Set></DevicePassword>"))
        self.assertEqual(text(answer.document, "settings:DevicePassword/settings:Status"), "7")
        self.assertTrue(events)
        self.assertFalse([e for e in events if "hunter2-recovery" in (formatEvent(e) or "") + repr(e)])

    async def test_rights_management(self):
        """RightsManagementInformation gets 168: IRM is not available."""
        client = await self.client()
        answer = await client.post(
            "Settings", settings("<RightsManagementInformation><Get/></RightsManagementInformation>"))
        self.assertEqual(text(answer.document, "settings:Status"), "1")
        self.assertEqual(text(answer.document, "settings:RightsManagementInformation/settings:Status"), "168")

    async def test_several_properties_in_request_order(self):
        """Each property of one request is answered, in the order asked."""
        answer = await (await self.client()).post("Settings", settings(
            "<UserInformation><Get/></UserInformation><Oof><Get><BodyType>Text</BodyType></Get></Oof>"))
        self.assertEqual(children(answer.document), ["Status", "UserInformation", "Oof"])

    async def test_malformed(self):
        """An empty body, a wrong root or an unknown property is Settings Status 2."""
        client = await self.client()
        for body in (None, '<Ping xmlns="Ping:"/>', settings(""),
                     settings("<UserInformation><Get/></UserInformation><UserInformation><Get/></UserInformation>")):
            answer = await client.post("Settings", body)
            self.assertEqual(answer.code, 200, body)
            self.assertEqual(text(answer.document, "settings:Status"), "2", body)

"""
Tests for L{bluesync.items.contacts}.
"""

import base64
from pathlib import Path
from zoneinfo import ZoneInfo

import vobject
from hypothesis import given, settings, strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import contacts
from bluesync.items._eas import parse_datetime

DATA = Path(__file__).parent / "data"
PICTURE = base64.b64encode(b"\x89PNG" + bytes(range(200))).decode()

FULL = f"""<c:Anniversary>2005-06-11T12:00:00.000Z</c:Anniversary><c:AssistantName>Asa</c:AssistantName>
<c:AssistantPhoneNumber>+1 555 0107</c:AssistantPhoneNumber><c:Birthday>1980-05-18T12:00:00.000Z</c:Birthday>
<c:Business2PhoneNumber>+1 555 0102</c:Business2PhoneNumber><c:BusinessAddressCity>Springfield</c:BusinessAddressCity>
<c:BusinessAddressCountry>USA</c:BusinessAddressCountry><c:BusinessAddressPostalCode>62701</c:BusinessAddressPostalCode>
<c:BusinessAddressState>IL</c:BusinessAddressState><c:BusinessAddressStreet>1 Main St</c:BusinessAddressStreet>
<c:BusinessFaxNumber>+1 555 0108</c:BusinessFaxNumber><c:BusinessPhoneNumber>+1 555 0101</c:BusinessPhoneNumber>
<c:CarPhoneNumber>+1 555 0109</c:CarPhoneNumber>
<c:Categories><c:Category>Friends</c:Category><c:Category>VIP</c:Category></c:Categories>
<c:Children><c:Child>Tim</c:Child><c:Child>Sue</c:Child></c:Children>
<c:CompanyName>ACME, Inc.</c:CompanyName><c:Department>Sales</c:Department>
<c:Email1Address>"John Doe" &lt;john@example.com&gt;</c:Email1Address><c:Email2Address>jd@home.example</c:Email2Address>
<c:Email3Address>j3@example.org</c:Email3Address><c:FileAs>Doe, John</c:FileAs><c:FirstName>John</c:FirstName>
<c:Home2PhoneNumber>+1 555 0104</c:Home2PhoneNumber><c:HomeAddressCity>Shelbyville</c:HomeAddressCity>
<c:HomeAddressStreet>2 Elm St</c:HomeAddressStreet><c:HomeFaxNumber>+1 555 0105</c:HomeFaxNumber>
<c:HomePhoneNumber>+1 555 0103</c:HomePhoneNumber><c:JobTitle>Boss</c:JobTitle><c:LastName>Doe</c:LastName>
<c:MiddleName>Q</c:MiddleName><c:MobilePhoneNumber>+1 555 0106</c:MobilePhoneNumber>
<c:OfficeLocation>B-12</c:OfficeLocation><c:OtherAddressCity>Capital City</c:OtherAddressCity>
<c:PagerNumber>+1 555 0110</c:PagerNumber><c:RadioPhoneNumber>+1 555 0111</c:RadioPhoneNumber>
<c:Spouse>Jane</c:Spouse><c:Suffix>Jr.</c:Suffix><c:Title>Dr.</c:Title><c:WebPage>https://example.com</c:WebPage>
<c:YomiCompanyName>akme</c:YomiCompanyName><c:YomiFirstName>jon</c:YomiFirstName><c:YomiLastName>do</c:YomiLastName>
<c:Picture>{PICTURE}</c:Picture><c:Alias>jd</c:Alias>
<c2:CustomerId>C1</c2:CustomerId><c2:GovernmentId>G1</c2:GovernmentId><c2:IMAddress>xmpp:john@example.com</c2:IMAddress>
<c2:IMAddress2>sip:john@example.com</c2:IMAddress2><c2:IMAddress3>john3</c2:IMAddress3>
<c2:ManagerName>Boss Lady</c2:ManagerName><c2:CompanyMainPhone>+1 555 0100</c2:CompanyMainPhone>
<c2:AccountName>acct</c2:AccountName><c2:NickName>Johnny</c2:NickName><c2:MMS>+1 555 0199</c2:MMS>"""


def xml(body: str):
    return etree.fromstring(
        '<ApplicationData xmlns="AirSync:" xmlns:c="Contacts:" xmlns:c2="Contacts2:" '
        'xmlns:b="AirSyncBase:">' + body + "</ApplicationData>")


def fields(element) -> dict:
    return {child.tag: (child.text if not len(child) else [c.text for c in child])
            for child in element}


class RoundTripTests(SynchronousTestCase):
    """
    Every field survives EAS -> vCard -> EAS.
    """

    def test_every_field(self):
        """All Contacts and Contacts2 fields come back with their values."""
        data = xml(FULL)
        stored, columns = contacts.from_eas(data, "14.1")
        self.assertEqual(fields(contacts.to_eas(stored, "14.1")), fields(data))
        self.assertEqual(columns["file_as"], "Doe, John")
        self.assertEqual(columns["email"], "john@example.com")

    def test_stored_vcard(self):
        """The store is a vCard 3.0 with standard properties."""
        stored, _ = contacts.from_eas(xml(FULL), "14.1")
        card = vobject.readOne(stored.decode())
        self.assertEqual(card.version.value, "3.0")
        self.assertEqual(card.n.value.family, "Doe")
        self.assertEqual(card.bday.value, "1980-05-18")
        self.assertEqual(card.org.value, ["ACME, Inc.", "Sales"])
        self.assertEqual(card.photo.value, base64.b64decode(PICTURE))

    def test_weighted_rank_dropped(self):
        """WeightedRank (a server GAL ranking) is not stored."""
        stored, _ = contacts.from_eas(xml("<c:LastName>X</c:LastName><c:WeightedRank>2</c:WeightedRank>"), "14.1")
        self.assertNotIn(b"WEIGHTEDRANK", stored)

    def test_picture_limit(self):
        """A Picture over 48 KB of base64 is refused with status 6."""
        big = base64.b64encode(b"x" * 40000).decode()
        error = self.assertRaises(contacts.ConversionError, contacts.from_eas,
                                  xml(f"<c:Picture>{big}</c:Picture>"), "14.1")
        self.assertEqual(error.status, 6)

    @settings(max_examples=200, deadline=None)
    @given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
           .filter(lambda s: s.strip() == s and s.strip()))
    def test_text_round_trip(self, value):
        """Any printable text in names and notes round-trips."""
        data = xml("")
        for page, name in (("Contacts:", "FirstName"), ("Contacts:", "JobTitle"),
                           ("Contacts2:", "NickName")):
            etree.SubElement(data, f"{{{page}}}{name}").text = value
        stored, _ = contacts.from_eas(data, "14.1")
        served = fields(contacts.to_eas(stored, "14.1"))
        self.assertEqual(served["{Contacts:}FirstName"], value)
        self.assertEqual(served["{Contacts2:}NickName"], value)


class BirthdayTests(SynchronousTestCase):
    """
    Birthdays stay on their day whatever the client's zone.
    """

    def test_local_midnight_from_far_zones(self):
        """Local midnight sent as UTC by UTC-10 and UTC+14 clients is 18 May."""
        # Kiritimati has been at UTC+14 since 1995 (UTC-10 before): a year
        # after that, as the device's own zone rules would give.
        for zone, sent in (("Pacific/Honolulu", "2000-05-18T10:00:00.000Z"),
                           ("Pacific/Kiritimati", "2000-05-17T10:00:00.000Z"),
                           ("Europe/Paris", "2000-05-17T22:00:00.000Z")):
            stored, _ = contacts.from_eas(xml(f"<c:Birthday>{sent}</c:Birthday>"), "14.1",
                                          tz=ZoneInfo(zone))
            self.assertIn(b"BDAY:2000-05-18", stored)

    def test_literal_forms(self):
        """00:00Z and 12:00Z mean their own date, with or without a zone."""
        for sent in ("1980-05-18T00:00:00.000Z", "1980-05-18T12:00:00.000Z"):
            for tz in (None, ZoneInfo("Pacific/Honolulu"), ZoneInfo("Pacific/Kiritimati")):
                stored, _ = contacts.from_eas(xml(f"<c:Birthday>{sent}</c:Birthday>"), "14.1", tz=tz)
                self.assertIn(b"BDAY:1980-05-18", stored)

    def test_served_per_family(self):
        """Android gets 00:00Z; others local noon, which is the 18th locally in far zones."""
        stored = b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:A;B;;;\r\nFN:B A\r\nBDAY:2000-05-18\r\nEND:VCARD\r\n"
        android = contacts.to_eas(stored, "14.1", family="android")
        self.assertEqual(android.findtext("{Contacts:}Birthday"), "2000-05-18T00:00:00.000Z")
        for zone in ("Pacific/Honolulu", "Pacific/Kiritimati"):
            tz = ZoneInfo(zone)
            served = contacts.to_eas(stored, "14.1", tz=tz).findtext("{Contacts:}Birthday")
            again, _ = contacts.from_eas(xml(f"<c:Birthday>{served}</c:Birthday>"), "14.1", tz=tz)
            self.assertIn(b"BDAY:2000-05-18", again)
            self.assertEqual(parse_datetime(served).astimezone(tz).date().isoformat(), "2000-05-18")


class ImportTests(SynchronousTestCase):
    """
    An iPhone vCard with groups, labels and a folded photo.
    """

    def test_apple_card(self):
        """Phones, e-mails, address and birthday of an Apple card are served."""
        served = fields(contacts.to_eas((DATA / "apple_contact.vcf").read_bytes(), "14.1"))
        self.assertEqual(served["{Contacts:}MobilePhoneNumber"], "+49 170 1234567")
        self.assertEqual(served["{Contacts:}HomePhoneNumber"], "+49 30 1234567")
        self.assertEqual(served["{Contacts:}BusinessPhoneNumber"], "+49 30 7654321")
        self.assertEqual(served["{Contacts:}Email1Address"], "anna@example.de")
        self.assertEqual(served["{Contacts:}HomeAddressStreet"], "Hauptstraße 1")
        self.assertEqual(served["{Contacts:}Birthday"], "1985-02-28T12:00:00.000Z")
        self.assertTrue(base64.b64decode(served["{Contacts:}Picture"]).startswith(b"\xff\xd8"))

    def test_merge_keeps_what_eas_cannot_carry(self):
        """A device's Change keeps the social profile, the labels and the unmapped phone."""
        stored = (DATA / "apple_contact.vcf").read_bytes()
        served = contacts.to_eas(stored, "14.1")
        served.find("{Contacts:}JobTitle").text = "Head chemist"
        device, _ = contacts.from_eas(served, "14.1")
        merged = contacts.merge(stored, device).decode()
        card = vobject.readOne(merged)
        self.assertEqual(card.title.value, "Head chemist")
        self.assertIn("X-SOCIALPROFILE", merged)
        self.assertIn("X-ABLABEL", merged.upper())
        self.assertIn("+49 30 0000000", merged)
        self.assertEqual(card.uid.value, "D0C7E1A2-5B1B-4C6E-9C67-1F3D2A4B5C6D")
        self.assertEqual(merged.count("+49 170 1234567"), 1)

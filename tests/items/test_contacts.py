"""
Tests for L{bluesync.items.contacts}.
"""

import base64
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import contacts, vcard
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


# What from_eas stores for FULL with a note and a long OfficeLocation (the
# stored format, line for line, as bluesync has always written it).
STORED = "\r\n".join([
    "BEGIN:VCARD", "VERSION:3.0", "PRODID:-//bluesync//bluesync EAS server//EN", "UID:d5e1c0f2-full",
    "ADR;TYPE=HOME:;;2 Elm St;Shelbyville;;;", "ADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA",
    "ADR;TYPE=OTHER:;;;Capital City;;;", "BDAY:1980-05-18", "CATEGORIES:Friends,VIP",
    "EMAIL;TYPE=INTERNET,pref;X-EAS-SLOT=1:john@example.com", "EMAIL;TYPE=INTERNET;X-EAS-SLOT=2:jd@home.example",
    "EMAIL;TYPE=INTERNET;X-EAS-SLOT=3:j3@example.org", "FN:Dr. John Q Doe Jr.", "IMPP:xmpp:john@example.com",
    "IMPP:sip:john@example.com", "IMPP:john3", "N:Doe;John;Q;Dr.;Jr.", "NICKNAME:Johnny",
    r"NOTE:Met at the fair\, 2019\;\nlikes tea\\coffee", r"ORG:ACME\, Inc.;Sales",
    f"PHOTO;ENCODING=b;TYPE=PNG:{PICTURE}",
    "TEL;TYPE=CELL:+1 555 0106", "TEL;TYPE=HOME,VOICE:+1 555 0103", "TEL;TYPE=HOME,VOICE:+1 555 0104",
    "TEL;TYPE=WORK,VOICE:+1 555 0101", "TEL;TYPE=WORK,VOICE:+1 555 0102", "TEL;TYPE=HOME,FAX:+1 555 0105",
    "TEL;TYPE=WORK,FAX:+1 555 0108", "TEL;TYPE=CAR:+1 555 0109", "TEL;TYPE=PAGER:+1 555 0110",
    "TEL;TYPE=X-RADIO:+1 555 0111", "TEL;TYPE=X-ASSISTANT:+1 555 0107", "TEL;TYPE=MAIN:+1 555 0100",
    "TEL;TYPE=X-MMS:+1 555 0199", "TITLE:Boss", "URL:https://example.com", "X-ANNIVERSARY:2005-06-11",
    "X-ASSISTANT:Asa", "X-BLUESYNC-EAS-CONTACTS-ALIAS:jd",
    'X-BLUESYNC-EAS-CONTACTS-EMAIL1ADDRESS:"John Doe" <john@example.com>',
    r"X-BLUESYNC-EAS-CONTACTS-FILEAS:Doe\, John",
    r"X-BLUESYNC-EAS-CONTACTS-OFFICELOCATION:Building 12\, third floor\, the long",
    r"  corridor past the coffee machine\, door on the left",
    "X-BLUESYNC-EAS-CONTACTS2-ACCOUNTNAME:acct", "X-BLUESYNC-EAS-CONTACTS2-CUSTOMERID:C1",
    "X-BLUESYNC-EAS-CONTACTS2-GOVERNMENTID:G1", "X-CHILD:Tim", "X-CHILD:Sue", "X-MANAGER:Boss Lady",
    "X-PHONETIC-FIRST-NAME:jon", "X-PHONETIC-LAST-NAME:do", "X-PHONETIC-ORG:akme", "X-SPOUSE:Jane",
    "END:VCARD", ""])


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
        """The store is a vCard 3.0 with standard properties, in the order and form bluesync always wrote."""
        data = xml(FULL.replace("<c:OfficeLocation>B-12</c:OfficeLocation>",
                                "<c:OfficeLocation>Building 12, third floor, the long corridor past the coffee "
                                "machine, door on the left</c:OfficeLocation>")
                   + "<b:Body><b:Type>1</b:Type><b:Data>Met at the fair, 2019;\nlikes tea\\coffee</b:Data></b:Body>")
        stored, columns = contacts.from_eas(data, "14.1", uid="d5e1c0f2-full")
        self.assertEqual(stored.decode(), STORED)
        self.assertEqual(columns, {"uid": "d5e1c0f2-full", "file_as": "Doe, John",
                                   "display_name": "Dr. John Q Doe Jr.", "email": "john@example.com"})
        self.assertEqual(contacts.columns(stored), columns)

    def test_xml_element_kept(self):
        """An unmapped element with children comes back as XML (X-FORMAT=XML; X_FORMAT as stored before)."""
        inner = '<c2:AccountName xmlns:c2="Contacts2:"><c2:Name>a, b</c2:Name></c2:AccountName>'
        stored, _ = contacts.from_eas(xml(f"<c:LastName>X</c:LastName>{inner}"), "14.1")
        self.assertIn(b"X-BLUESYNC-EAS-CONTACTS2-ACCOUNTNAME;X-FORMAT=XML:", stored)
        for form in (stored, stored.replace(b"X-FORMAT", b"X_FORMAT")):
            served = contacts.to_eas(form, "14.1").find("{Contacts2:}AccountName")
            self.assertEqual(served.findtext("{Contacts2:}Name"), "a, b")

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
        lines = merged.split("\r\n")
        self.assertIn("TITLE:Head chemist", lines)
        self.assertIn("X-SOCIALPROFILE;TYPE=mastodon:https://social.example/@anna", lines)
        self.assertIn("item1.X-ABLABEL:_$!<Other>!$_", lines)
        self.assertIn("+49 30 0000000", merged)
        self.assertIn("UID:D0C7E1A2-5B1B-4C6E-9C67-1F3D2A4B5C6D", lines)
        self.assertEqual(merged.count("+49 170 1234567"), 1)
        self.assertEqual(fields(contacts.to_eas(merged, "14.1"))["{Contacts:}JobTitle"], "Head chemist")


def read_file(name: str) -> list:
    """The cards of a test file, as the import reads them."""
    return list(vcard.read(vcard.decode((DATA / name).read_bytes())))


class RealWorldTests(SynchronousTestCase):
    """
    Exports of Google Contacts (3.0), Outlook (2.1, Windows-1252,
    quoted-printable) and an Android phone (2.1, UTF-8 quoted-printable
    cut inside a character, base64 photo without leading spaces).
    """

    def test_google(self):
        """Escaped commas and colons, categories, a photo URL (no Picture)."""
        first, second = read_file("google_contacts.vcf")
        served = fields(contacts.to_eas(first, "16.1"))
        self.assertEqual(served["{Contacts:}WebPage"], "https://www.exemple.example/equipe")
        self.assertEqual(served["{Contacts:}CompanyName"], "Exemple, SARL")
        self.assertEqual(served["{Contacts:}Department"], "Ventes")
        self.assertEqual(served["{Contacts:}Categories"], ["myContacts", "Clients, grands comptes"])
        self.assertEqual(served["{Contacts:}HomeAddressStreet"], "12 rue de la République\nBâtiment B")
        self.assertEqual(served["{Contacts:}BusinessAddressState"], "Île-de-France")
        self.assertEqual(served["{Contacts:}Email2Address"], "jean-pierre.dupont@exemple.example")
        self.assertEqual(served["{AirSyncBase:}Body"][2], "Rencontré à Lyon, au salon 2019.\r\nPréfère le thé.")
        self.assertNotIn("{Contacts:}Picture", served)
        self.assertEqual(fields(contacts.to_eas(second, "16.1"))["{Contacts:}FirstName"], "Zoë")

    def test_outlook_2_1(self):
        """Windows-1252 text, QUOTED-PRINTABLE with soft breaks, bare TEL types, an indented photo."""
        first, second = read_file("outlook_2_1.vcf")
        served = fields(contacts.to_eas(first, "16.1"))
        self.assertEqual((served["{Contacts:}LastName"], served["{Contacts:}FirstName"], served["{Contacts:}Title"]),
                         ("Müller", "Jürgen", "Dr."))
        self.assertEqual(served["{Contacts:}CompanyName"], "Müller & Söhne, Feinkost")
        self.assertEqual(served["{Contacts:}BusinessAddressStreet"], "Marienplatz 1\n3. Stock")
        self.assertEqual(served["{Contacts:}BusinessAddressCity"], "München")
        self.assertEqual(served["{AirSyncBase:}Body"][2],
                         "Bevorzugt Anrufe am Vormittag, nie vor 9 Uhr.\r\nZweite Zeile: Grüße an die Familie.")
        self.assertEqual((served["{Contacts:}BusinessPhoneNumber"], served["{Contacts:}HomePhoneNumber"],
                          served["{Contacts:}MobilePhoneNumber"], served["{Contacts:}BusinessFaxNumber"]),
                         ("+49 89 1234-0", "+49 89 765432", "+49 171 2345678", "+49 89 1234-99"))
        self.assertEqual(served["{Contacts:}Email1Address"], "j.mueller@feinkost-mueller.example")
        self.assertTrue(base64.b64decode(served["{Contacts:}Picture"]).startswith(b"\xff\xd8"))
        self.assertEqual(fields(contacts.to_eas(second, "16.1"))["{Contacts:}HomePhoneNumber"], "+49 30 555 0101")

    def test_android_2_1(self):
        """UTF-8 quoted-printable names and a note cut inside a character; a photo continued without spaces."""
        (card,) = read_file("android_2_1.vcf")
        served = fields(contacts.to_eas(card, "16.1"))
        self.assertEqual((served["{Contacts:}FirstName"], served["{Contacts:}LastName"]), ("Ayşe", "Öztürk"))
        self.assertEqual(served["{AirSyncBase:}Body"][2], "こんにちは、世界！")
        self.assertEqual(served["{Contacts:}MobilePhoneNumber"], "+90 532 123 45 67")
        self.assertTrue(base64.b64decode(served["{Contacts:}Picture"]).startswith(b"\xff\xd8"))

    def test_vcard_4(self):
        """vCard 4.0: a quoted TYPE list, a data: URI photo."""
        jpeg = (DATA / "apple_contact.vcf").read_text().split("PHOTO;ENCODING=b;TYPE=JPEG:")[1].split("UID")[0]
        jpeg = "".join(jpeg.split())
        stored = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Kim Lee\r\nN:Lee;Kim;;;\r\n"
                  'TEL;VALUE=uri;TYPE="cell,voice";PREF=1:tel:+1-555-0100\r\n'
                  'TEL;VALUE=uri;TYPE="work,voice":tel:+1-555-0101\r\n'
                  f"PHOTO:data:image/jpeg;base64,{jpeg}\r\nEND:VCARD\r\n").encode()
        served = fields(contacts.to_eas(stored, "16.1"))
        self.assertEqual(served["{Contacts:}MobilePhoneNumber"], "tel:+1-555-0100")
        self.assertEqual(served["{Contacts:}BusinessPhoneNumber"], "tel:+1-555-0101")
        self.assertEqual(served["{Contacts:}Picture"], jpeg)

    def test_device_change_on_imported_2_1_card(self):
        """A device's Change on an imported Outlook card is stored as 3.0; what EAS cannot carry stays."""
        card, _ = read_file("outlook_2_1.vcf")
        stored = ("\r\n".join(card.source) + "\r\n").encode()
        served = contacts.to_eas(stored, "16.1")
        served.find("{Contacts:}JobTitle").text = "Geschäftsführer"
        device, _ = contacts.from_eas(served, "16.1")
        merged = contacts.merge(stored, device).decode()
        lines = merged.replace("\r\n ", "").split("\r\n")
        self.assertIn("TITLE:Geschäftsführer", lines)
        self.assertIn(r"LABEL;TYPE=WORK,PREF:Marienplatz 1\n3. Stock\nMünchen\, Bayern 80331\nDeutschland", lines)
        self.assertIn("X-MS-OL-DEFAULT-POSTAL-ADDRESS:2", lines)
        self.assertNotIn("QUOTED-PRINTABLE", merged)
        self.assertNotIn("VERSION:2.1", merged)
        again = fields(contacts.to_eas(merged, "16.1"))
        self.assertEqual(again["{Contacts:}BusinessAddressCity"], "München")
        self.assertEqual(again["{Contacts:}FirstName"], "Jürgen")

    def test_broken_stored_line_still_served(self):
        """A stored card with a line that cannot be read is served without it."""
        stored = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nN:B;Bob;;;\r\nnot a property\r\nTITLE:Boss\r\nEND:VCARD\r\n"
        served = fields(contacts.to_eas(stored, "16.1"))
        self.assertEqual((served["{Contacts:}FirstName"], served["{Contacts:}JobTitle"]), ("Bob", "Boss"))

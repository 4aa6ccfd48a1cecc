"""
The code page tables: their shape, the naming convention the team relies
on, spot checks transcribed from the MS-ASWBXML pages, and the golden
listing of every token, cross-checked against the specification and
Microsoft's protocol test suite (see the codepages module docstring).
"""

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.wbxml import (
    CODE_PAGES,
    NAMESPACES,
    PREFIXES,
    WBXMLError,
    decode,
    encode,
    qname,
    tag_for,
)
from bluesync.wbxml.codepages import VERSIONS, _parse_page, _parse_versions

from tests.wbxml.helpers import data_path

PAGE_NAMES = [
    "AirSync", "Contacts", "Email", "AirNotify", "Calendar", "Move",
    "GetItemEstimate", "FolderHierarchy", "MeetingResponse", "Tasks",
    "ResolveRecipients", "ValidateCert", "Contacts2", "Ping", "Provision",
    "Search", "GAL", "AirSyncBase", "Settings", "DocumentLibrary",
    "ItemOperations", "ComposeMail", "Email2", "Notes", "RightsManagement",
    "Find",
]


GOLDEN = "codepages.txt"


def _versions_text(versions) -> str:
    """A tag's versions as the golden listing writes them."""
    if versions == frozenset(VERSIONS):
        return "all"
    if not versions:
        return "none"
    return ",".join(v for v in VERSIONS if v in versions)


def listing() -> list[str]:
    """
    Every tag of every page, one line each: page, namespace, token, name,
    versions, flags.  tests/wbxml/data/codepages.txt holds this listing as
    reviewed against the sources named in the codepages docstring; write it
    anew (python -c "from tests.wbxml.test_codepages import listing;
    print(*listing(), sep=chr(10))") only for a change checked against them.
    """
    lines = []
    for number, page in sorted(CODE_PAGES.items()):
        for tag in page.tags:
            flags = [flag for flag, on in (("opaque", tag.opaque),
                                           ("alias", tag.alias)) if on]
            lines.append(" ".join(
                ["%02d" % number, page.name, "0x%02X" % tag.token, tag.name,
                 _versions_text(tag.versions)] + flags))
    return lines


def _tokens(page_number):
    """{name: token} of the primary tags of one page."""
    return {tag.name: tag.token for tag in CODE_PAGES[page_number].tags
            if not tag.alias}


class CodePageShapeTests(SynchronousTestCase):
    """The tables are complete and unambiguous."""

    def test_page_numbers_and_names(self):
        """Pages 0 to 25 exist with the names EAS XML uses."""
        self.assertEqual([CODE_PAGES[n].name for n in range(26)], PAGE_NAMES)
        self.assertEqual(sorted(CODE_PAGES), list(range(26)))

    def test_tokens_unique_per_page(self):
        """No page maps one token to two primary names, or one name twice."""
        for page in CODE_PAGES.values():
            primary = [tag.token for tag in page.tags if not tag.alias]
            self.assertEqual(len(primary), len(set(primary)), page.name)
            names = [tag.name for tag in page.tags]
            self.assertEqual(len(names), len(set(names)), page.name)

    def test_tokens_in_tag_range(self):
        """Every token is a tag token, 0x05 to 0x3F."""
        for page in CODE_PAGES.values():
            for tag in page.tags:
                self.assertTrue(0x05 <= tag.token <= 0x3F, tag)

    def test_page_sizes(self):
        """Each page has the number of tags its MS-ASWBXML table lists."""
        sizes = {number: len(_tokens(number)) for number in CODE_PAGES}
        self.assertEqual(sizes, {
            0: 34, 1: 58, 2: 59, 3: 19, 4: 48, 5: 8, 6: 10, 7: 17, 8: 12,
            9: 34, 10: 25, 11: 6, 12: 10, 13: 9, 14: 54, 15: 27, 16: 14,
            17: 40, 18: 38, 19: 8, 20: 21, 21: 18, 22: 18, 23: 5, 24: 20,
            25: 22})

    def test_versions_are_known(self):
        """Every tag's versions are protocol versions MS-ASHTTP defines."""
        for page in CODE_PAGES.values():
            for tag in page.tags:
                self.assertTrue(tag.versions <= set(VERSIONS), tag)
                if page.name != "AirNotify" and tag.name != "AutdState":
                    self.assertTrue(tag.versions, tag)


class SpecTranscriptionTests(SynchronousTestCase):
    """Rows checked one by one against the published tables."""

    def test_contacts2(self):
        """Code page 12 matches MS-ASWBXML 2.1.2.1.13."""
        self.assertEqual(_tokens(12), {
            "CustomerId": 0x05, "GovernmentId": 0x06, "IMAddress": 0x07,
            "IMAddress2": 0x08, "IMAddress3": 0x09, "ManagerName": 0x0A,
            "CompanyMainPhone": 0x0B, "AccountName": 0x0C, "NickName": 0x0D,
            "MMS": 0x0E})

    def test_find(self):
        """Code page 25 matches MS-ASWBXML 2.1.2.1.26, all 16.1 only."""
        self.assertEqual(_tokens(25), {
            "Find": 0x05, "SearchId": 0x06, "ExecuteSearch": 0x07,
            "MailBoxSearchCriterion": 0x08, "Query": 0x09, "Status": 0x0A,
            "FreeText": 0x0B, "Options": 0x0C, "Range": 0x0D,
            "DeepTraversal": 0x0E, "Response": 0x11, "Result": 0x12,
            "Properties": 0x13, "Preview": 0x14, "HasAttachments": 0x15,
            "Total": 0x16, "DisplayCc": 0x17, "DisplayBcc": 0x18,
            "GALSearchCriterion": 0x19, "MaxPictures": 0x20, "MaxSize": 0x21,
            "Picture": 0x22})
        # The MS-ASWBXML row spells 0x19 "GalSearchCriterion"; MS-ASCMD
        # 2.2.3.82 names the element GALSearchCriterion.
        self.assertEqual(CODE_PAGES[25].by_name("GalSearchCriterion").token,
                         0x19)
        for tag in CODE_PAGES[25].tags:
            self.assertEqual(tag.versions, {"16.1"})

    def test_validate_cert(self):
        """Code page 11 matches MS-ASWBXML 2.1.2.1.12, all versions."""
        self.assertEqual(_tokens(11), {
            "ValidateCert": 0x05, "Certificates": 0x06, "Certificate": 0x07,
            "CertificateChain": 0x08, "CheckCRL": 0x09, "Status": 0x0A})
        for tag in CODE_PAGES[11].tags:
            self.assertEqual(tag.versions, set(VERSIONS))

    def test_resolve_recipients(self):
        """Code page 10 matches MS-ASWBXML 2.1.2.1.11, with its versions."""
        tokens = _tokens(10)
        self.assertEqual(tokens["CertificateCount"], 0x15)
        self.assertEqual(
            [tokens[n] for n in ("Availability", "StartTime", "EndTime",
                                 "MergedFreeBusy", "Picture", "MaxSize",
                                 "Data", "MaxPictures")],
            list(range(0x16, 0x1E)))
        self.assertEqual(tag_for("{ResolveRecipients:}Availability").versions,
                         {"14.0", "14.1", "16.0", "16.1"})
        self.assertEqual(tag_for("{ResolveRecipients:}Picture").versions,
                         {"14.1", "16.0", "16.1"})

    def test_spec_example_tokens(self):
        """The tokens the MS-ASWBXML example explains byte by byte."""
        expected = {
            "{AirSync:}Sync": (0, 0x05), "{AirSync:}Collections": (0, 0x1C),
            "{AirSync:}Collection": (0, 0x0F), "{AirSync:}Class": (0, 0x10),
            "{AirSyncBase:}Body": (17, 0x0A),
            "{AirSyncBase:}NativeBodyType": (17, 0x16),
            "{Contacts:}FileAs": (1, 0x1E), "{Contacts:}LastName": (1, 0x29),
        }
        for name, (page, token) in expected.items():
            tag = tag_for(name)
            self.assertEqual((tag.page, tag.token), (page, token), name)

    def test_opaque_tags(self):
        """Exactly the byte-array elements are opaque."""
        opaque = sorted(tag.qualified_name for page in CODE_PAGES.values()
                        for tag in page.tags if tag.opaque)
        self.assertEqual(opaque, [
            "{AirSyncBase:}Content", "{ComposeMail:}Mime",
            "{Email2:}ConversationId", "{Email2:}ConversationIndex",
            "{ItemOperations:}ConversationId", "{Search:}ConversationId"])


class NamespaceTests(SynchronousTestCase):
    """The naming convention other modules depend on."""

    def test_namespaces(self):
        """Each prefix maps to the page name followed by a colon."""
        self.assertEqual(NAMESPACES["airsync"], "AirSync:")
        self.assertEqual(NAMESPACES["email"], "Email:")
        self.assertEqual(NAMESPACES["airsyncbase"], "AirSyncBase:")
        self.assertEqual(NAMESPACES["folderhierarchy"], "FolderHierarchy:")
        self.assertEqual(NAMESPACES["rm"], "RightsManagement:")
        self.assertEqual(sorted(NAMESPACES.values()),
                         sorted(name + ":" for name in PAGE_NAMES))
        self.assertEqual({v: k for k, v in PREFIXES.items()}, NAMESPACES)

    def test_qname(self):
        """qname builds Clark names and refuses unknown ones."""
        self.assertEqual(qname("AirSync", "Sync"), "{AirSync:}Sync")
        self.assertEqual(qname("Email2", "ConversationId"),
                         "{Email2:}ConversationId")
        self.assertRaises(KeyError, qname, "AirSync", "NoSuchTag")
        self.assertRaises(KeyError, qname, "NoSuchPage", "Sync")

    def test_tag_for(self):
        """tag_for finds tags by Clark name and nothing else."""
        self.assertEqual(tag_for("{Ping:}Ping").token, 0x05)
        self.assertIsNone(tag_for("{Ping}Ping"))
        self.assertIsNone(tag_for("Ping"))
        self.assertIsNone(tag_for("{Ping:}Nope"))

    def test_alias(self):
        """A renamed token decodes to its current name; the old one encodes."""
        page = CODE_PAGES[14]
        self.assertEqual(page.by_token(0x10).name,
                         "RequireStorageCardEncryption")
        self.assertEqual(page.by_name("DeviceEncryptionEnabled").token, 0x10)


class TableParserTests(SynchronousTestCase):
    """The table parser refuses tables that would make the codec ambiguous."""

    def test_versions_notation(self):
        """The compact notation expands as documented."""
        self.assertEqual(_parse_versions("all"), set(VERSIONS))
        self.assertEqual(_parse_versions("none"), set())
        self.assertEqual(_parse_versions("14.1+"), {"14.1", "16.0", "16.1"})
        self.assertEqual(_parse_versions("-12.0"), {"2.5", "12.0"})
        self.assertEqual(_parse_versions("12.0,14.0"), {"12.0", "14.0"})
        self.assertRaises(ValueError, _parse_versions, "13.0,14.0")

    def test_bad_tables(self):
        """Duplicates, out-of-range tokens and stray flags are refused."""
        for table in ["05 A all\n05 B all", "05 A all\n06 A all",
                      "04 A all", "40 A all", "05 A all shiny",
                      "05 B all alias"]:
            self.assertRaises(ValueError, _parse_page, 99, "X", "x", table)


class GoldenListingTests(SynchronousTestCase):
    """Every token of every page, pinned as cross-checked (issue 3)."""

    def test_listing(self):
        """The tables produce exactly the reviewed listing, line for line."""
        with open(data_path(GOLDEN), encoding="utf-8") as f:
            golden = [line.rstrip("\n") for line in f
                      if line.strip() and not line.startswith("#")]
        self.assertEqual(listing(), golden)


class CrossCheckTests(SynchronousTestCase):
    """The corrections the cross-check made, through the real codec."""

    def _one(self, clark: str) -> bytes:
        """A document holding only the element C{clark}, encoded."""
        element = etree.Element(clark)
        element.text = "1"
        return encode(element)

    def test_renamed_tokens_decode_to_element_names(self):
        """Each alias encodes as its primary, which the decoder produces."""
        pairs = [
            ("{Email:}FlagStatus", "{Email:}Status"),
            ("{Calendar:}TimeZone", "{Calendar:}Timezone"),
            ("{ComposeMail:}ForwardeeName", "{ComposeMail:}Name"),
            ("{ComposeMail:}ForwardeeEmail", "{ComposeMail:}Email"),
            ("{Find:}GalSearchCriterion", "{Find:}GALSearchCriterion"),
            ("{Provision:}DeviceEncryptionEnabled",
             "{Provision:}RequireStorageCardEncryption"),
        ]
        for alias, primary in pairs:
            data = self._one(alias)
            self.assertEqual(data, self._one(primary), alias)
            self.assertEqual(decode(data).tag, primary, alias)

    def test_get_item_estimate_namespace(self):
        """Page 6 is the GetItemEstimate namespace of MS-ASCMD 6.20/6.21."""
        data = self._one("{GetItemEstimate:}Estimate")
        self.assertEqual(data, bytes.fromhex("03016a0000064c033100 01"
                                             .replace(" ", "")))
        self.assertEqual(decode(data).tag, "{GetItemEstimate:}Estimate")
        self.assertIsNone(tag_for("{ItemEstimate:}Estimate"))

    def test_ping_autd_state_is_in_no_version(self):
        """MS-ASWBXML keeps Ping 0x06 (AutdState) but no version uses it."""
        tag = tag_for("{Ping:}AutdState")
        self.assertEqual((tag.token, tag.versions), (0x06, frozenset()))

    def test_provision_token_0x12_is_undefined(self):
        """Provision 0x12 is in no Microsoft table, so it does not decode."""
        self.assertIsNone(CODE_PAGES[14].by_token(0x12))
        # Provision, then the 0x12 tag with content on page 14.
        data = bytes.fromhex("03016a00000e45520331000101")
        self.assertRaises(WBXMLError, decode, data)

    def test_12_1_only_estimate_tokens(self):
        """GetItemEstimate Version and DateTime exist in 12.1 alone."""
        for name in ("Version", "DateTime"):
            self.assertEqual(tag_for("{GetItemEstimate:}" + name).versions,
                             {"12.1"})

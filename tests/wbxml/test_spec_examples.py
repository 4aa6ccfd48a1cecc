"""
Golden tests: the WBXML examples the specifications publish, byte for byte.
"""

from twisted.trial.unittest import SynchronousTestCase

from bluesync.wbxml import decode, encode
from tests.wbxml.helpers import canonical, parse_xml, read_data, read_hex

#: (XML file, WBXML file, how the WBXML file is stored)
EXAMPLES = [
    # [MS-ASWBXML] section 3: Sync response adding a contact.
    ("spec_sync_contact.xml", "spec_sync_contact.hex", "hex"),
    # [MS-ASCMD] FolderSync request, SyncKey 0.
    ("foldersync_request.xml", "foldersync_request.wbxml", "binary"),
]


def _wbxml(name, form):
    return read_hex(name) if form == "hex" else read_data(name)


class SpecExampleTests(SynchronousTestCase):
    """
    Every published example decodes to its published XML and the XML
    encodes to the published bytes.
    """

    def test_decode(self):
        """Decoding the published bytes gives the published XML."""
        for xml_name, wbxml_name, form in EXAMPLES:
            root = decode(_wbxml(wbxml_name, form))
            self.assertEqual(canonical(root), canonical(parse_xml(xml_name)),
                             xml_name)

    def test_encode(self):
        """Encoding the published XML gives the published bytes."""
        for xml_name, wbxml_name, form in EXAMPLES:
            self.assertEqual(encode(parse_xml(xml_name)),
                             _wbxml(wbxml_name, form), xml_name)

    def test_reencode(self):
        """Decoding then encoding the published bytes changes nothing."""
        for xml_name, wbxml_name, form in EXAMPLES:
            data = _wbxml(wbxml_name, form)
            self.assertEqual(encode(decode(data)), data, wbxml_name)

    def test_spec_example_first_bytes(self):
        """The example's header and first tags are what the spec explains."""
        data = read_hex("spec_sync_contact.hex")
        self.assertEqual(data[:8], bytes.fromhex("03016A00455C4F50"))
        self.assertEqual(len(data), 106)

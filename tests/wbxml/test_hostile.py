"""
Hostile input: every malformed document ends in WBXMLError naming the
byte offset, and nothing else escapes the decoder or the encoder.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.wbxml import Limits, WBXMLError, decode, encode, qname
from tests.wbxml.helpers import read_data, read_hex

HEADER = b"\x03\x01\x6a\x00"
#: <Sync><SyncKey>1</SyncKey></Sync>: a valid body to break.
VALID = HEADER + b"\x45\x4b\x03\x31\x00\x01\x01"


class DecodeErrorTests(SynchronousTestCase):
    """Each malformed case raises WBXMLError at the right offset."""

    def assertDecodeError(self, data, offset, fragment, limits=None):
        """decode(data) raises WBXMLError at C{offset} saying C{fragment}."""
        kwargs = {} if limits is None else {"limits": limits}
        error = self.assertRaises(WBXMLError, decode, data, **kwargs)
        self.assertEqual(error.offset, offset, str(error))
        self.assertIn(fragment, str(error))
        self.assertIn("at byte %d" % (offset,), str(error))
        self.assertIsInstance(error, ValueError)

    def test_wrong_version(self):
        """Only WBXML 1.3 is accepted."""
        self.assertDecodeError(b"\x02" + VALID[1:], 0, "version 1.3")

    def test_wrong_public_id(self):
        """Only public identifier 1 (unknown) is accepted."""
        self.assertDecodeError(b"\x03\x00" + VALID[2:], 1,
                               "public identifier")

    def test_wrong_charset(self):
        """Only UTF-8 is accepted."""
        self.assertDecodeError(b"\x03\x01\x04" + VALID[3:], 2, "UTF-8")

    def test_string_table(self):
        """A non-empty string table is refused."""
        self.assertDecodeError(b"\x03\x01\x6a\x03abc" + VALID[4:], 3,
                               "string table")

    def test_truncated_header(self):
        """A document shorter than its header."""
        self.assertDecodeError(b"\x03\x01", 2, "truncated WBXML header")
        self.assertDecodeError(b"", 0, "truncated WBXML header")

    def test_no_root(self):
        """A header and nothing else."""
        self.assertDecodeError(HEADER, 4, "no root element")
        self.assertDecodeError(HEADER + b"\x00\x01", 6, "no root element")

    def test_str_t(self):
        """String table references are refused."""
        self.assertDecodeError(HEADER + b"\x45\x4b\x83\x00\x01\x01", 6,
                               "STR_T")

    def test_unknown_code_page(self):
        """A switch to a page MS-ASWBXML does not define."""
        self.assertDecodeError(HEADER + b"\x00\x1a\x05", 5,
                               "unknown code page 26")
        self.assertDecodeError(HEADER + b"\x45\x00\xff\x05\x01", 6,
                               "unknown code page 255")

    def test_unknown_token(self):
        """A token its page does not define."""
        self.assertDecodeError(HEADER + b"\x45\x11\x01", 5,
                               "unknown tag token 0x11 on code page 0")
        self.assertDecodeError(HEADER + b"\x00\x19\x0f", 6,
                               "unknown tag token 0x0F on code page 25")

    def test_attributes(self):
        """The attribute bit is refused on any tag."""
        self.assertDecodeError(HEADER + b"\x85\x01", 4, "attributes")
        self.assertDecodeError(HEADER + b"\x45\xcb\x01\x03\x31\x00\x01\x01",
                               5, "attributes")

    def test_unused_global_tokens(self):
        """LITERAL*, ENTITY, EXT_*, PI are refused by name."""
        for token, name in [(0x04, "LITERAL"), (0x44, "LITERAL_C"),
                            (0x84, "LITERAL_A"), (0xC4, "LITERAL_AC"),
                            (0x02, "ENTITY"), (0x40, "EXT_I_0"),
                            (0x41, "EXT_I_1"), (0x42, "EXT_I_2"),
                            (0x80, "EXT_T_0"), (0x81, "EXT_T_1"),
                            (0x82, "EXT_T_2"), (0xC0, "EXT_0"),
                            (0xC1, "EXT_1"), (0xC2, "EXT_2"), (0x43, "PI")]:
            self.assertDecodeError(HEADER + b"\x45" + bytes([token])
                                   + b"\x00\x01\x01", 5, name)
            self.assertDecodeError(HEADER + bytes([token]) + b"\x00", 4, name)

    def test_truncated_body(self):
        """A document cut before the root's END."""
        self.assertDecodeError(VALID[:-1], len(VALID) - 1, "missing END")
        self.assertDecodeError(HEADER + b"\x45", 5, "missing END")

    def test_truncated_switch(self):
        """A SWITCH_PAGE without its page byte."""
        self.assertDecodeError(HEADER + b"\x45\x00", 5, "SWITCH_PAGE")

    def test_unterminated_string(self):
        """An inline string with no NUL."""
        self.assertDecodeError(HEADER + b"\x45\x4b\x03\x31\x32", 6,
                               "unterminated inline string")

    def test_trailing_garbage(self):
        """Anything after the root element."""
        self.assertDecodeError(VALID + b"\x05", len(VALID),
                               "1 bytes of trailing data")
        self.assertDecodeError(VALID + b"\x01\x01", len(VALID),
                               "2 bytes of trailing data")
        self.assertDecodeError(HEADER + b"\x05\x05", 5, "trailing data")

    def test_end_without_element(self):
        """END before any element."""
        self.assertDecodeError(HEADER + b"\x01", 4, "END with no open")

    def test_text_outside_root(self):
        """Strings and OPAQUE before the root."""
        self.assertDecodeError(HEADER + b"\x03a\x00\x05", 4,
                               "outside any element")
        self.assertDecodeError(HEADER + b"\xc3\x01a\x05", 4,
                               "outside any element")

    def test_depth_limit(self):
        """Nesting deeper than the limit."""
        nested = HEADER + b"\x45" * 65 + b"\x01" * 65
        self.assertDecodeError(nested, 4 + 64, "deeper than 64")
        deep = HEADER + b"\x47" * 9 + b"\x07" + b"\x01" * 9
        self.assertDecodeError(deep, 4 + 9, "deeper than 9",
                               Limits(max_depth=9))
        self.assertEqual(len(decode(deep, limits=Limits(max_depth=10))), 1)

    def test_element_limit(self):
        """More elements than the limit."""
        wide = HEADER + b"\x45" + b"\x13" * 10 + b"\x01"
        self.assertDecodeError(wide, 4 + 10, "more than 10 elements",
                               Limits(max_elements=10))
        self.assertEqual(len(decode(wide, limits=Limits(max_elements=11))),
                         10)

    def test_byte_limit(self):
        """A document larger than the limit, refused before any parsing."""
        self.assertDecodeError(VALID, 10, "larger than the limit of 10",
                               Limits(max_bytes=10))
        self.assertEqual(decode(VALID, limits=Limits(max_bytes=11))[0].text,
                         "1")

    def test_invalid_utf8(self):
        """A string that is not UTF-8, with the offset of the bad byte."""
        self.assertDecodeError(HEADER + b"\x45\x4b\x03ab\xff\x00\x01\x01",
                               9, "not valid UTF-8")
        self.assertDecodeError(HEADER + b"\x45\x4b\x03\xed\xa0\x80\x00\x01"
                               b"\x01", 7, "not valid UTF-8")
        # In the fast path for leaves and in the general path alike.
        self.assertDecodeError(HEADER + b"\x45\x4b\x03ok\x00\x03\xc3\x00\x01"
                               b"\x01", 11, "not valid UTF-8")

    def test_character_xml_cannot_carry(self):
        """Control characters are refused with their offset."""
        self.assertDecodeError(HEADER + b"\x45\x4b\x03ab\x01\x00\x01\x01",
                               9, "U+0001")
        self.assertDecodeError(HEADER + b"\x45\x4b\x03\xef\xbf\xbf\x00\x01"
                               b"\x01", 7, "U+FFFF")

    def test_opaque_errors(self):
        """OPAQUE lengths that lie, or NUL/bad UTF-8 on a text element."""
        self.assertDecodeError(HEADER + b"\x45\x4b\xc3\x05ab\x01\x01", 6,
                               "runs past the end")
        self.assertDecodeError(HEADER + b"\x45\x4b\xc3\xff\xff\xff\xff\xff"
                               b"\x01", 7, "longer than 32 bits")
        self.assertDecodeError(HEADER + b"\x45\x4b\xc3\x8f", 7,
                               "truncated OPAQUE length")
        self.assertDecodeError(HEADER + b"\x45\x4b\xc3\x03a\x00b\x01\x01", 9,
                               "U+0000")
        self.assertDecodeError(HEADER + b"\x45\x4b\xc3\x02a\xff\x01\x01", 9,
                               "not valid UTF-8")

    def test_mixed_content(self):
        """Text beside child elements, in either order."""
        self.assertDecodeError(HEADER + b"\x45\x03a\x00\x13\x01", 8,
                               "child element after text")
        self.assertDecodeError(HEADER + b"\x45\x13\x03a\x00\x01", 6,
                               "text after child elements")
        self.assertDecodeError(HEADER + b"\x45\x13\xc3\x01a\x01", 6,
                               "opaque data after child elements")

    def test_bytearray_and_memoryview(self):
        """Bytes-like input is accepted."""
        self.assertEqual(decode(bytearray(VALID))[0].text, "1")
        self.assertEqual(decode(memoryview(VALID))[0].text, "1")


class EncodeErrorTests(SynchronousTestCase):
    """The encoder refuses what WBXML for ActiveSync cannot say."""

    def test_unknown_namespace(self):
        """An element in a namespace that is no code page."""
        error = self.assertRaises(WBXMLError, encode,
                                  etree.Element("{urn:other}Sync"))
        self.assertIn("{urn:other}Sync", str(error))
        self.assertIsNone(error.offset)

    def test_unknown_tag(self):
        """An element name its page does not have, or no namespace."""
        root = etree.Element(qname("AirSync", "Sync"))
        etree.SubElement(root, "{AirSync:}Bogus")
        self.assertRaises(WBXMLError, encode, root)
        self.assertRaises(WBXMLError, encode, etree.Element("Sync"))

    def test_attributes(self):
        """Attributes anywhere in the tree."""
        root = etree.Element(qname("AirSync", "Sync"))
        etree.SubElement(root, qname("AirSync", "Status"), code="1")
        error = self.assertRaises(WBXMLError, encode, root)
        self.assertIn("attributes", str(error))
        self.assertIn("Status", str(error))

    def test_comments_and_pis(self):
        """Comments and processing instructions are not elements."""
        root = etree.Element(qname("AirSync", "Sync"))
        root.append(etree.Comment("hi"))
        error = self.assertRaises(WBXMLError, encode, root)
        self.assertIn("Comment", str(error))
        root = etree.Element(qname("AirSync", "Sync"))
        root.append(etree.ProcessingInstruction("pi"))
        self.assertRaises(WBXMLError, encode, root)

    def test_mixed_content(self):
        """Text beside children, before or after them."""
        root = etree.Element(qname("AirSync", "Sync"))
        root.text = "text"
        etree.SubElement(root, qname("AirSync", "Status"))
        self.assertRaises(WBXMLError, encode, root)
        root.text = None
        root[0].tail = "tail"
        self.assertRaises(WBXMLError, encode, root)

    def test_not_an_element(self):
        """Anything that is not an lxml element."""
        self.assertRaises(WBXMLError, encode, "<Sync/>")
        self.assertRaises(WBXMLError, encode, None)


def _mutate(data, operations):
    """Apply (kind, position, value) edits to a copy of C{data}."""
    data = bytearray(data)
    for kind, position, value in operations:
        position %= len(data) + 1
        if kind == "flip" and position < len(data):
            data[position] ^= value or 1
        elif kind == "set" and position < len(data):
            data[position] = value
        elif kind == "insert":
            data[position:position] = bytes([value])
        elif kind == "delete":
            del data[position:position + value % 8 + 1]
        elif kind == "cut":
            del data[position:]
    return bytes(data)


SEEDS = [
    read_hex("spec_sync_contact.hex"),
    read_data("sync_request.wbxml"),
    read_data("foldersync_request.wbxml"),
    HEADER + b"\x00\x15\x45\x50\xc3\x04\x00\xff\x10\x20\x01\x01",
]

MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "cut"]),
              st.integers(0, 200), st.integers(0, 255)),
    min_size=1, max_size=6)


class MutationTests(SynchronousTestCase):
    """Damaged valid documents decode or fail cleanly, nothing else."""

    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(SEEDS), MUTATIONS)
    def test_mutated_documents(self, seed, operations):
        """Only success or WBXMLError, with an offset inside the input."""
        data = _mutate(seed, operations)
        try:
            root = decode(data)
        except WBXMLError as e:
            self.assertIsNotNone(e.offset)
            self.assertTrue(0 <= e.offset <= len(data), (e, len(data)))
        else:
            self.assertIsInstance(root, etree._Element)
            self.assertEqual(decode(encode(root)).tag, root.tag)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=64))
    def test_random_bodies(self, body):
        """Random bytes after a valid header."""
        data = HEADER + body
        try:
            root = decode(data)
        except WBXMLError as e:
            self.assertTrue(0 <= e.offset <= len(data), (e, len(data)))
        else:
            self.assertIsInstance(root, etree._Element)

"""
Round trips: trees survive encode-then-decode, canonical bytes survive
decode-then-encode, for every token of every page.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.wbxml import (
    CODE_PAGES,
    Limits,
    WBXMLError,
    decode,
    encode,
    opaque,
    qname,
    set_opaque,
)
from tests.wbxml.helpers import canonical

ALL_TAGS = [tag for page in CODE_PAGES.values() for tag in page.tags
            if not tag.alias]

#: Characters XML 1.0 can carry: what an element text can hold.
XML_TEXT = st.text(
    alphabet=st.characters(codec="utf-8").filter(
        lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")),
    min_size=1, max_size=24)

HEADER = b"\x03\x01\x6a\x00"


def _content(tag):
    if tag.opaque:
        return st.none() | st.binary(min_size=1, max_size=300)
    return st.none() | XML_TEXT


LEAVES = st.sampled_from(ALL_TAGS).flatmap(
    lambda tag: st.tuples(st.just(tag), _content(tag)))
TREES = st.recursive(
    LEAVES,
    lambda children: st.tuples(st.sampled_from(ALL_TAGS),
                               st.lists(children, min_size=1, max_size=5)),
    max_leaves=40)


def build(description):
    """An lxml tree from (tag, None | str | bytes | [children])."""
    tag, content = description
    element = etree.Element(tag.qualified_name)
    if isinstance(content, list):
        for child in content:
            element.append(build(child))
    elif isinstance(content, bytes):
        set_opaque(element, content)
    else:
        element.text = content
    return element


def element(namespace, name, *children, text=None):
    """A small tree-building shorthand for the tests."""
    node = etree.Element(qname(namespace, name))
    node.extend(children)
    node.text = text
    return node


class PropertyRoundTripTests(SynchronousTestCase):
    """Random trees of real tokens from every page round-trip exactly."""

    @settings(max_examples=300, deadline=None)
    @given(TREES)
    def test_tree_round_trip(self, description):
        """decode(encode(tree)) equals the tree."""
        tree = build(description)
        self.assertEqual(canonical(decode(encode(tree))), canonical(tree))

    @settings(max_examples=300, deadline=None)
    @given(TREES)
    def test_bytes_round_trip(self, description):
        """encode(decode(data)) equals data for canonical data."""
        data = encode(build(description))
        self.assertEqual(encode(decode(data)), data)


class EveryTokenTests(SynchronousTestCase):
    """Each tag of each page, with and without content, both ways."""

    def test_every_tag(self):
        """Every tag round-trips as an empty and as a filled element."""
        for page in CODE_PAGES.values():
            root = element("AirSync", "Sync")
            for tag in page.tags:
                if tag.alias:
                    continue
                empty = etree.SubElement(root, tag.qualified_name)
                filled = etree.SubElement(root, tag.qualified_name)
                if tag.opaque:
                    set_opaque(filled, bytes(range(256)))
                else:
                    filled.text = tag.name
                self.assertIsNone(empty.text)
            data = encode(root)
            self.assertEqual(canonical(decode(data)), canonical(root),
                             page.name)
            self.assertEqual(encode(decode(data)), data, page.name)

    def test_decoded_namespaces(self):
        """Decoded elements sit in their page's namespace, prefixed."""
        for page in CODE_PAGES.values():
            tag = next(t for t in page.tags if not t.alias)
            data = HEADER + bytes([0x00, page.number, tag.token])
            root = decode(data)
            self.assertEqual(root.tag, "{%s:}%s" % (page.name, tag.name))
            self.assertEqual(root.prefix, page.prefix)

    def test_alias_encodes_to_primary(self):
        """A tag's old name encodes to its token and decodes to the new."""
        root = element("Provision", "Provision",
                       element("Provision", "DeviceEncryptionEnabled",
                               text="1"))
        data = encode(root)
        self.assertEqual(data, HEADER + bytes.fromhex("000E45500331000101"))
        self.assertEqual(decode(data)[0].tag,
                         "{Provision:}RequireStorageCardEncryption")


class TextTests(SynchronousTestCase):
    """Text, including hard characters, comes back exactly."""

    SAMPLES = [
        "Zoë Ångström, façade, naïve",
        "季度报告 — 東京 — 서울",
        "emoji 📈🎉 and a ZWJ 👩‍💻",
        "line one\r\nline two\rthree\n",
        "markup <b>&amp; \"quotes\" 'single' ]]> &#13;",
        "  leading and trailing  ",
        " ",
        "\t",
    ]

    def test_text_round_trip(self):
        """Each sample survives both directions."""
        for sample in self.SAMPLES:
            root = element("Email", "Subject", text=sample)
            data = encode(root)
            self.assertEqual(data, HEADER + b"\x00\x02\x54\x03"
                             + sample.encode("utf-8") + b"\x00\x01")
            self.assertEqual(decode(data).text, sample)

    def test_split_inline_strings(self):
        """Consecutive inline strings in one element are joined."""
        data = HEADER + b"\x00\x02\x54\x03ab\x00\x03c&d\x00\x01"
        self.assertEqual(decode(data).text, "abc&d")


class EmptyElementTests(SynchronousTestCase):
    """Elements without content use the short form."""

    def test_encode_without_content_bit(self):
        """An empty element is a tag without the content bit."""
        root = element("AirSync", "Sync", element("AirSync", "GetChanges"))
        self.assertEqual(encode(root), HEADER + b"\x45\x13\x01")

    def test_decode_both_forms(self):
        """With the content bit and an immediate END, or without it."""
        for data in (HEADER + b"\x45\x13\x01", HEADER + b"\x45\x53\x01\x01"):
            root = decode(data)
            self.assertEqual(len(root), 1)
            self.assertEqual(root[0].tag, "{AirSync:}GetChanges")
            self.assertIsNone(root[0].text)
            self.assertEqual(len(root[0]), 0)

    def test_empty_root(self):
        """A document that is one empty element."""
        root = decode(HEADER + b"\x05")
        self.assertEqual(root.tag, "{AirSync:}Sync")
        self.assertEqual(encode(root), HEADER + b"\x05")


class PageSwitchTests(SynchronousTestCase):
    """The encoder switches code pages only when needed."""

    def test_minimal_switches(self):
        """Runs of one page share a switch; returning needs one more."""
        data_element = element(
            "AirSync", "ApplicationData",
            element("Email", "Subject", text="a"),
            element("Email", "Read", text="1"),
            element("AirSyncBase", "NativeBodyType", text="1"),
            element("AirSyncBase", "Preview", text="p"))
        root = element("AirSync", "Sync", data_element,
                       element("AirSync", "Status", text="1"))
        data = encode(root)
        self.assertEqual(data, HEADER + bytes.fromhex(
            "455D"
            "0002 5403 6100 01 5503 3100 01"
            "0011 5603 3100 01 5803 7000 01"
            "01 0000 4E03 3100 01 01"))

    def test_starts_on_page_zero(self):
        """A root from another page is preceded by one switch."""
        root = element("FolderHierarchy", "FolderSync",
                       element("FolderHierarchy", "SyncKey", text="0"))
        self.assertEqual(encode(root),
                         HEADER + bytes.fromhex("0007 5652 033000 01 01"))


class OpaqueTests(SynchronousTestCase):
    """Opaque elements carry bytes as WBXML OPAQUE."""

    def test_helpers(self):
        """set_opaque stores base64 text that opaque() reads back."""
        node = element("Email2", "ConversationId")
        set_opaque(node, b"\x00\xffbinary")
        self.assertEqual(node.text, "AP9iaW5hcnk=")
        self.assertEqual(opaque(node), b"\x00\xffbinary")
        set_opaque(node, b"")
        self.assertIsNone(node.text)
        self.assertEqual(opaque(node), b"")

    def test_helpers_refuse_text_elements(self):
        """The helpers are for opaque elements only."""
        node = element("Email", "Subject", text="x")
        self.assertRaises(ValueError, opaque, node)
        self.assertRaises(ValueError, set_opaque, node, b"x")

    def test_bad_base64(self):
        """Text set by hand that is not base64 is an error, not garbage."""
        node = element("Email2", "ConversationId", text="not base64!")
        self.assertRaises(WBXMLError, opaque, node)
        self.assertRaises(WBXMLError, encode, node)

    def test_encoded_as_opaque(self):
        """The encoder sends OPAQUE with an mb_u_int32 length."""
        payload = bytes(range(200))
        node = element("ComposeMail", "Mime")
        set_opaque(node, payload)
        root = element("ComposeMail", "SendMail", node)
        data = encode(root)
        self.assertEqual(data, HEADER + b"\x00\x15\x45\x50\xc3\x81\x48"
                         + payload + b"\x01\x01")
        self.assertEqual(opaque(decode(data)[0]), payload)

    def test_inline_string_on_opaque_element(self):
        """An inline string on an opaque element is kept as its bytes."""
        data = HEADER + b"\x00\x16\x49\x03caf\xc3\xa9\x00\x01"
        self.assertEqual(opaque(decode(data)), "café".encode("utf-8"))

    def test_opaque_on_text_element(self):
        """OPAQUE data on a text element is read as UTF-8 text."""
        data = HEADER + b"\x00\x02\x54\xc3\x05caf\xc3\xa9\x01"
        self.assertEqual(decode(data).text, "café")

    def test_split_opaque(self):
        """Two OPAQUE chunks in one opaque element are joined."""
        data = HEADER + b"\x00\x16\x49\xc3\x02ab\xc3\x01c\x01"
        self.assertEqual(opaque(decode(data)), b"abc")


class DepthTests(SynchronousTestCase):
    """Nesting costs no recursion, in either direction."""

    def test_deep_tree(self):
        """A 2,048-deep tree round-trips when the limits allow it."""
        root = node = element("AirSync", "Sync")
        for _ in range(2047):
            node = etree.SubElement(node, qname("AirSync", "Add"))
        node.text = "bottom"
        data = encode(root)
        decoded = decode(data, limits=Limits(max_depth=2048))
        self.assertEqual(sum(1 for _ in decoded.iter()), 2048)
        self.assertEqual(encode(decoded), data)

    def test_limits_ceiling(self):
        """Limits refuse a depth libxml2 could not build."""
        self.assertRaises(ValueError, Limits, max_depth=2049)
        self.assertRaises(ValueError, Limits, max_depth=0)
        self.assertRaises(ValueError, Limits, max_elements=0)


class EncoderInputTests(SynchronousTestCase):
    """What encode() accepts besides a plain element."""

    def test_element_tree(self):
        """An ElementTree encodes as its root."""
        root = element("Ping", "Ping", element("Ping", "Status", text="1"))
        self.assertEqual(encode(etree.ElementTree(root)), encode(root))

    def test_colonless_namespaces(self):
        """The MS-ASWBXML example's namespace spelling is accepted."""
        root = etree.Element("{Ping}Ping")
        etree.SubElement(root, "{Ping}Status").text = "1"
        self.assertEqual(encode(root),
                         HEADER + bytes.fromhex("000D 4547 033100 01 01"))

    def test_indentation_ignored(self):
        """Whitespace between elements (pretty printing) is not content."""
        root = etree.fromstring(
            b'<Ping xmlns="Ping:">\n  <Status>1</Status>\n</Ping>\n')
        self.assertEqual(encode(root),
                         HEADER + bytes.fromhex("000D 4547 033100 01 01"))

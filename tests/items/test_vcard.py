"""
Tests for L{bluesync.items.vcard}: reading what real address books write
(folding, groups, parameters, escapes, vCard 2.1 quoted-printable and
base64) and writing vCard 3.0.
"""

import base64

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import vcard
from bluesync.items.vcard import Card, VCardError

JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0"
    "Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8A"
    "Kp//2Q==")
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(",;:\\\"\n^")), max_size=120)


def one(text: str, **kwargs) -> Card:
    return vcard.parse_one(text, **kwargs)


def card(*lines: str, end: str = "\r\n") -> str:
    return end.join(["BEGIN:VCARD", "VERSION:3.0", *lines, "END:VCARD", ""])


class UnfoldingTests(SynchronousTestCase):
    """
    Logical lines from physical ones, whatever the line ends.
    """

    def test_line_ends_and_continuations(self):
        """CRLF, LF and CR ends; a space or a tab continues a line and is dropped."""
        for end in ("\r\n", "\n", "\r"):
            found = one(card("NOTE:one two", " three", "\tfour", "FN:Ann", end=end))
            self.assertEqual(found.first("NOTE").text(), "one twothreefour")
            self.assertEqual(found.first("FN").text(), "Ann")

    def test_line_numbers(self):
        """A property knows the physical line it starts on; blank lines are skipped and counted."""
        found = one("\n\nBEGIN:VCARD\nVERSION:3.0\nNOTE:a\n b\n\nFN:Ann\nEND:VCARD\n")
        self.assertEqual(found.line, 3)
        self.assertEqual([(p.name, p.line) for p in found.properties], [("VERSION", 4), ("NOTE", 5), ("FN", 8)])

    def test_source_lines(self):
        """A card keeps its physical lines as read (what the import stores)."""
        text = card("NOTE:a", " b", end="\n")
        self.assertEqual(one(text).source, text.split("\n")[:-1])


class ContentLineTests(SynchronousTestCase):
    """
    Groups, names and parameters.
    """

    def test_group_and_case(self):
        """Names are upper-cased, groups kept; parameter names upper-cased, values as written."""
        prop = one(card("item1.email;type=INTERNET;type=pref:a@example.org")).first("EMAIL")
        self.assertEqual((prop.group, prop.name), ("item1", "EMAIL"))
        self.assertEqual(prop.params, {"TYPE": ["INTERNET", "pref"]})
        self.assertEqual(prop.types(), {"INTERNET", "PREF"})

    def test_quoted_parameters(self):
        """A quoted value may hold ; : and , and is one value; unquoted commas make a list."""
        prop = one(card('X-THING;LABEL="a;b:c,d";TYPE=work,voice;X-EMPTY=:value:with:colons')).first("X-THING")
        self.assertEqual(prop.params, {"LABEL": ["a;b:c,d"], "TYPE": ["work", "voice"]})
        self.assertEqual(prop.raw, "value:with:colons")

    def test_vcard_4_quoted_type_list(self):
        """vCard 4.0's TYPE="cell,voice" and PREF=1."""
        prop = one(card('TEL;VALUE=uri;PREF=1;TYPE="cell,voice":tel:+1-555-0100')).first("TEL")
        self.assertEqual(prop.types(), {"CELL", "VOICE"})
        self.assertEqual(prop.param("PREF"), "1")

    def test_bare_parameters(self):
        """vCard 2.1 bare parameters: types, or an encoding."""
        found = one("BEGIN:VCARD\nVERSION:2.1\nTEL;WORK;VOICE:+49 1\nNOTE;QUOTED-PRINTABLE:a=3Db\nEND:VCARD\n")
        self.assertEqual(found.first("TEL").params, {"TYPE": ["WORK", "VOICE"]})
        self.assertEqual(found.first("NOTE").text(), "a=b")
        self.assertEqual(found.first("NOTE").params, {})


class ValueTests(SynchronousTestCase):
    """
    Escapes, lists and structured values.
    """

    def test_text_escapes(self):
        """\\n \\N \\, \\; \\\\ (and \\: that Google writes) are unescaped; other backslashes stay."""
        prop = one(card(r"NOTE:a\nb\Nc\,d\;e\\f\:g\x")).first("NOTE")
        self.assertEqual(prop.text(), "a\nb\nc,d;e\\f:g\\x")

    def test_structured(self):
        """N and ADR split on unescaped ; then , ; ORG keeps its commas."""
        found = one(card(r"N:Stevenson;John;Philip,Paul;Dr.;Jr.\,M.D.", r"ADR:;;1 Main\; rear;Town;;;",
                         r"ORG:ACME\, Inc.;R\;D, labs"))
        self.assertEqual(found.first("N").fields(),
                         [["Stevenson"], ["John"], ["Philip", "Paul"], ["Dr."], ["Jr.,M.D."]])
        self.assertEqual(found.first("ADR").fields()[2:4], [["1 Main; rear"], ["Town"]])
        self.assertEqual(found.first("ORG").components(), ["ACME, Inc.", "R;D, labs"])

    def test_list(self):
        """CATEGORIES splits on unescaped commas."""
        self.assertEqual(one(card(r"CATEGORIES:a,b\,c,")).first("CATEGORIES").values(), ["a", "b,c", ""])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(TEXT, min_size=1, max_size=5))
    def test_escape_round_trip(self, fields):
        """Any text escaped, joined and read back is itself."""
        written = Card()
        written.add("NOTE", vcard.escape(fields[0]))
        written.add("N", vcard.join_fields(fields))
        found = one(written.serialize())
        self.assertEqual(found.first("NOTE").text(), fields[0].replace("\r\n", "\n").replace("\r", "\n"))
        self.assertEqual([",".join(f) for f in found.first("N").fields()],
                         [f.replace("\r\n", "\n").replace("\r", "\n") for f in fields])


class Version21Tests(SynchronousTestCase):
    """
    vCard 2.1 as Outlook and phones export it, read into 3.0 form.
    """

    def test_quoted_printable_soft_breaks_and_charset(self):
        """Soft line breaks join lines; CHARSET decodes; CRLF is a line break; the value is 3.0 text."""
        found = one("BEGIN:VCARD\r\nVERSION:2.1\r\n"
                    "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=Windows-1252:Gr=FC=DFe, M=\r\n"
                    "=FCnchen=0D=0Azweite Zeile\r\nFN:x\r\nEND:VCARD\r\n")
        note = found.first("NOTE")
        self.assertEqual(note.text(), "Grüße, München\nzweite Zeile")
        self.assertEqual(note.raw, "Grüße\\, München\\nzweite Zeile")
        self.assertEqual(note.params, {})
        self.assertEqual(found.first("FN").line, 5)

    def test_utf8_split_across_soft_break(self):
        """A multi-byte character cut by a soft line break is whole again."""
        found = one("BEGIN:VCARD\nVERSION:2.1\nFN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E4=B8=96=E7=\n=95=8C\n"
                    "END:VCARD\n")
        self.assertEqual(found.first("FN").text(), "世界")

    def test_literal_commas(self):
        """A 2.1 value's commas are text, not list separators."""
        found = one("BEGIN:VCARD\nVERSION:2.1\nADR;WORK:;;1 Main St, Suite 2;Town;;;\nEND:VCARD\n")
        self.assertEqual(found.first("ADR").fields()[2], ["1 Main St, Suite 2"])

    def test_base64_photo(self):
        """BASE64 with indented lines, with unindented ones (old phones), and the closing blank line."""
        encoded = base64.b64encode(JPEG).decode()
        for lines in ([" " + encoded[i:i + 70] for i in range(0, len(encoded), 70)],
                      [encoded[i:i + 70] for i in range(0, len(encoded), 70)]):
            text = "\r\n".join(["BEGIN:VCARD", "VERSION:2.1", "PHOTO;JPEG;ENCODING=BASE64:", *lines, "",
                                "FN:x", "END:VCARD", ""])
            found = one(text, strict=True)
            photo = found.first("PHOTO")
            self.assertEqual(photo.binary(), JPEG)
            self.assertEqual(photo.params, {"TYPE": ["JPEG"], "ENCODING": ["b"]})
            self.assertEqual(found.first("FN").text(), "x")


class BinaryTests(SynchronousTestCase):
    """
    Inline pictures.
    """

    def test_forms(self):
        """3.0 ENCODING=b folded, 4.0 data: URI; a URL is no inline picture."""
        encoded = base64.b64encode(JPEG).decode()
        folded = [f"PHOTO;ENCODING=b;TYPE=JPEG:{encoded[:40]}",
                  *(" " + encoded[i:i + 60] for i in range(40, len(encoded), 60))]
        self.assertEqual(one(card(*folded)).first("PHOTO").binary(), JPEG)
        self.assertEqual(one(card(f"PHOTO:data:image/jpeg;base64,{encoded}")).first("PHOTO").binary(), JPEG)
        self.assertIsNone(one(card("PHOTO;VALUE=uri:https://example.org/p.jpg")).first("PHOTO").binary())

    def test_bad_base64(self):
        """Strict reading refuses undecodable base64, naming the line; forgiving reading gives no picture."""
        text = card("FN:x", "PHOTO;ENCODING=b:!!!not base64!!!")
        error = self.assertRaises(VCardError, one, text, strict=True)
        self.assertEqual((error.line, error.card_line), (4, 1))
        self.assertIn("PHOTO is not base64", str(error))
        self.assertIsNone(one(text).first("PHOTO").binary())


class FileTests(SynchronousTestCase):
    """
    Several cards, and broken ones among them.
    """

    def test_broken_cards_do_not_stop_the_others(self):
        """Each problem is named with its line; the good cards are read."""
        text = "\n".join([
            "stray", "more stray",                                   # 1-2
            "BEGIN:VCARD", "VERSION:3.0", "FN:Ann", "END:VCARD",      # 3-6
            "BEGIN:VCARD", "VERSION:3.0", "FN:Bob", "this line has no colon", "END:VCARD",   # 7-11
            "BEGIN:VCARD", "FN:Cy",                                   # 12-13, no END before the next
            "BEGIN:VCARD", "VERSION:3.0", "FN:Dee", 'X-A;B="open:x', "END:VCARD",  # 14-18
            "BEGIN:VCARD", "FN:Eve", "END:VCARD",                     # 19-21
            "BEGIN:VCARD", "FN:Fay",                                  # 22-23
        ])
        found = list(vcard.read(text))
        self.assertEqual([(type(f).__name__, f.line, getattr(f, "card_line", None)) for f in found], [
            ("VCardError", 1, None), ("Card", 3, None), ("VCardError", 10, 7), ("VCardError", 12, 12),
            ("VCardError", 17, 14), ("Card", 19, None), ("VCardError", 22, 22)])
        self.assertEqual(found[0].message, "text outside BEGIN:VCARD/END:VCARD")
        self.assertEqual(str(found[2]), "line 10: not a property (no ':'): 'this line has no colon'")
        self.assertEqual(found[3].message, "no END:VCARD before the next card")
        self.assertEqual(str(found[4]), "line 17: a quoted parameter value is not closed")
        self.assertEqual(found[6].message, "no END:VCARD")
        self.assertEqual(found[5].first("FN").text(), "Eve")
        self.assertEqual(found[5].version, "3.0")

    def test_forgiving_skips_bad_lines(self):
        """A stored card with a line that cannot be read is still read, without that line."""
        found = one(card("FN:Bob", "no colon here", "TITLE:Boss"))
        self.assertEqual([p.name for p in found.properties], ["VERSION", "FN", "TITLE"])

    def test_not_a_card(self):
        error = self.assertRaises(VCardError, one, "BEGIN:VCALENDAR\nEND:VCALENDAR\n")
        self.assertEqual(error.message, "no BEGIN:VCARD")

    def test_decode(self):
        """UTF-8 with or without a byte order mark; lines in Windows-1252 (Outlook) among UTF-8 ones."""
        self.assertEqual(vcard.decode(b"\xef\xbb\xbfFN:Zo\xc3\xab"), "FN:Zoë")
        self.assertEqual(vcard.decode(b"FN:Zo\xc3\xab\r\nFN:M\xfcller\r\n"), "FN:Zoë\r\nFN:Müller\r\n")


class WritingTests(SynchronousTestCase):
    """
    vCard 3.0 as bluesync stores it.
    """

    def test_order_parameters_and_quoting(self):
        """BEGIN, VERSION, PRODID, UID, then by name (file order within a name); parameters by name."""
        written = Card()
        written.add("TEL", "2", {"TYPE": ["HOME", "VOICE"]})
        written.add("UID", "u")
        written.add("ADR", ";;x;;;;", {"TYPE": ["WORK"], "LABEL": ["a;b"]})
        written.add("TEL", "1", {"TYPE": ["CELL"]})
        written.add("PRODID", "p")
        written.add("ABLABEL", "l", group="item1")
        self.assertEqual(written.serialize(), "\r\n".join([
            "BEGIN:VCARD", "VERSION:3.0", "PRODID:p", "UID:u", "item1.ABLABEL:l",
            'ADR;LABEL="a;b";TYPE=WORK:;;x;;;;', "TEL;TYPE=HOME,VOICE:2", "TEL;TYPE=CELL:1", "END:VCARD", ""]))

    @settings(max_examples=300, deadline=None)
    @given(st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(",;\n")), max_size=400))
    def test_folding(self, text):
        """Lines are at most 75 octets, never cut inside a UTF-8 sequence, and unfold to the value."""
        written = Card()
        written.add("NOTE", vcard.escape(text))
        serialized = written.serialize()
        for line in serialized.split("\r\n"):
            self.assertLessEqual(len(line.encode("utf-8")), 75)
        self.assertEqual(one(serialized).first("NOTE").raw, vcard.escape(text))

    def test_fold_lengths(self):
        """75 octets on the first line, a space and 74 on the others; a 2-octet character is never cut."""
        written = Card()
        written.add("NOTE", "x" * 300)
        written.add("TITLE", "é" * 100)
        lines = written.serialize().split("\r\n")
        self.assertEqual([len(line.encode()) for line in lines[2:]], [75, 75, 75, 75, 9, 74, 75, 59, 9, 0])
        self.assertEqual(lines[8], " " + "é" * 37)

    def test_photo_not_folded(self):
        """PHOTO stays on one line (Apple's Contacts mis-reads folded photos)."""
        written = Card()
        encoded = base64.b64encode(JPEG * 3).decode()
        written.add("PHOTO", encoded, {"ENCODING": ["b"], "TYPE": ["JPEG"]})
        self.assertIn(f"\r\nPHOTO;ENCODING=b;TYPE=JPEG:{encoded}\r\n", written.serialize())

    def test_read_then_written(self):
        """A card read and written again keeps its groups, parameters and escaped values."""
        text = card("item1.EMAIL;type=INTERNET:a@example.org", r"NOTE:a\, b\nc", 'X-Y;X-L="p:q":v')
        self.assertEqual(one(text).serialize(), card(
            "item1.EMAIL;TYPE=INTERNET:a@example.org", r"NOTE:a\, b\nc", 'X-Y;X-L="p:q":v'))

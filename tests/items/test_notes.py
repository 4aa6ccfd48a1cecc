"""
Tests for L{bluesync.items.notes}.
"""

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.items import notes

NOTE = """<n:Subject>Idea</n:Subject><b:Body><b:Type>1</b:Type><b:EstimatedDataSize>4</b:EstimatedDataSize>
<b:Data>text</b:Data></b:Body><n:MessageClass>IPM.StickyNote</n:MessageClass>
<n:LastModifiedDate>2026-01-02T03:04:05.000Z</n:LastModifiedDate><n:Categories><n:Category>A</n:Category></n:Categories>"""


def xml(body: str):
    return etree.fromstring('<ApplicationData xmlns="AirSync:" xmlns:n="Notes:" '
                            'xmlns:b="AirSyncBase:">' + body + "</ApplicationData>")


def flat(element):
    return [(node.tag, (node.text or "").strip()) for node in element.iter()]


class NoteTests(SynchronousTestCase):
    """
    VJOURNAL <-> MS-ASNOTE.
    """

    def test_round_trip_exact(self):
        """EAS -> VJOURNAL -> EAS gives back every element."""
        data = xml(NOTE)
        stored, columns = notes.from_eas(data, "14.1")
        self.assertIn(b"BEGIN:VJOURNAL", stored)
        self.assertEqual(columns["subject"], "Idea")
        self.assertEqual(flat(notes.to_eas(stored, "16.1")), flat(data))

    def test_old_version_refused(self):
        """Notes exist from 14.0 on (MS-ASNOTE)."""
        self.assertRaises(notes.ConversionError, notes.from_eas, xml(NOTE), "12.1")

    def test_html_body(self):
        """An HTML body is stored as text and HTML, and served as either."""
        stored, _ = notes.from_eas(xml("<n:Subject>H</n:Subject><b:Body><b:Type>2</b:Type>"
                                       "<b:Data>&lt;p&gt;Hello &lt;b&gt;you&lt;/b&gt;&lt;/p&gt;</b:Data></b:Body>"),
                                   "14.1")
        plain = notes.to_eas(stored, "14.1")
        self.assertEqual(plain.findtext(".//{AirSyncBase:}Data").strip(), "Hello you")
        html = notes.to_eas(stored, "14.1", body_preferences=[notes_pref(2)])
        self.assertIn("<b>you</b>", html.findtext(".//{AirSyncBase:}Data"))

    def test_merge_keeps_foreign(self):
        """A device's Change keeps properties EAS has no field for."""
        stored, _ = notes.from_eas(xml(NOTE), "14.1", uid="n1")
        stored = stored.replace(b"END:VJOURNAL", b"X-APPLE-COLOR:#ff0000\r\nEND:VJOURNAL")
        device, _ = notes.from_eas(xml(NOTE.replace("Idea", "Better idea")), "14.1")
        merged = notes.merge(stored, device)
        self.assertIn(b"SUMMARY:Better idea", merged)
        self.assertIn(b"X-APPLE-COLOR:#ff0000", merged)
        self.assertIn(b"UID:n1", merged)


def notes_pref(kind):
    from bluesync.items.email import BodyPreference
    return BodyPreference(kind)

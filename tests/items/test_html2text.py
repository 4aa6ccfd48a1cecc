"""
Tests for L{bluesync.items.html2text}.
"""

from twisted.trial.unittest import SynchronousTestCase

from bluesync.items.html2text import html_to_text, text_to_html


class HTMLToTextTests(SynchronousTestCase):
    """
    L{html_to_text} renders mail HTML as readable plain text.
    """

    def test_dropsScriptStyleAndHead(self):
        """Script, style and head content never reach the text."""
        text = html_to_text(
            "<html><head><title>T</title><style>p{color:red}</style></head>"
            "<body><script>var x = 1;</script><p>Visible</p></body></html>")
        self.assertEqual(text, "Visible")

    def test_paragraphsAndBreaks(self):
        """Paragraphs are separated by an empty line, <br> ends a line."""
        text = html_to_text("<p>One<br>Two</p><p>Three</p>")
        self.assertEqual(text, "One\nTwo\n\nThree")

    def test_whitespaceCollapsed(self):
        """Runs of whitespace and &nbsp; collapse to one space."""
        self.assertEqual(html_to_text("<div>a \n\t b&nbsp;&nbsp;c</div>"), "a b c")

    def test_entities(self):
        """Named and numeric character references are decoded."""
        self.assertEqual(html_to_text("<p>&lt;a&gt; &amp; &eacute;&#8364;&#x263A;</p>"),
                         "<a> & é€☺")

    def test_lists(self):
        """Unordered items get "- ", ordered ones numbers, nested ones indent."""
        text = html_to_text(
            "<ul><li>One</li><li>Two<ol start=\"3\"><li>a</li><li>b</li></ol></li></ul>")
        self.assertEqual(text, "- One\n- Two\n  3. a\n  4. b")

    def test_links(self):
        """A link shows its text then its address in angle brackets."""
        text = html_to_text('<p>See <a href="https://example.org/x?a=1&amp;b=2">the site</a>.</p>')
        self.assertEqual(text, "See the site <https://example.org/x?a=1&b=2>.")

    def test_linkShowingItsAddress(self):
        """A link whose text is its address, or a mailto, is not doubled."""
        text = html_to_text('<a href="https://e.org">https://e.org</a> '
                            '<a href="mailto:a@b.example">a@b.example</a>')
        self.assertEqual(text, "https://e.org a@b.example")

    def test_blockquote(self):
        """Quoted blocks get "> " on every line."""
        text = html_to_text("<p>intro</p><blockquote><p>q1</p><p>q2</p></blockquote><p>after</p>")
        self.assertEqual(text, "intro\n\n> q1\n>\n> q2\n\nafter")

    def test_preformatted(self):
        """<pre> keeps its spaces and line breaks."""
        self.assertEqual(html_to_text("<pre>  a\n   b</pre>"), "  a\n   b")

    def test_tableCells(self):
        """Table rows become lines, cells are separated by a space."""
        self.assertEqual(html_to_text("<table><tr><td>A</td><td>B</td></tr><tr><td>C</td></tr></table>"),
                         "A B\nC")

    def test_imageAlt(self):
        """An image shows as its alt text."""
        self.assertEqual(html_to_text('<p>Logo: <img src="cid:x" alt="ACME"></p>'), "Logo: ACME")

    def test_brokenMarkup(self):
        """Unclosed tags and stray brackets still give the text."""
        text = html_to_text("<div><p>unclosed <b>bold <i>both</div> 3 < 4 <p>end")
        self.assertEqual(text, "unclosed bold both\n3 < 4\n\nend")

    def test_markedSection(self):
        """Outlook's conditional sections do not stop the conversion."""
        text = html_to_text("<![if !supportLists]>1.<![endif]> <p>item</p>")
        self.assertIn("item", text)


class TextToHTMLTests(SynchronousTestCase):
    """
    L{text_to_html} turns plain text into a small HTML document.
    """

    def test_escapesAndBreaks(self):
        """Markup characters are escaped and lines end with <br>."""
        html = text_to_html("a < b & c\r\nnext")
        self.assertIn("<body>a &lt; b &amp; c<br>\r\nnext</body>", html)

    def test_keepsSpaces(self):
        """Indentation and runs of spaces survive as &nbsp;."""
        html = text_to_html("  x  y")
        self.assertIn("<body>&nbsp;&nbsp;x &nbsp;y</body>", html)

    def test_links(self):
        """Web addresses become links, the trailing full stop excluded."""
        html = text_to_html("Go to https://example.org/a?b=1&c=2.")
        self.assertIn('<a href="https://example.org/a?b=1&amp;c=2">'
                      'https://example.org/a?b=1&amp;c=2</a>.', html)

    def test_roundTrip(self):
        """Converting back gives the original lines."""
        self.assertEqual(html_to_text(text_to_html("one\ntwo <3\n\nthree")),
                         "one\ntwo <3\n\nthree")

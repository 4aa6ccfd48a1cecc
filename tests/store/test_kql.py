"""
The KQL of Find's FreeText as tsquery text (no database: the end-to-end
behaviour is in tests/eas/test_find.py).
"""

from __future__ import annotations

from twisted.trial import unittest

from bluesync.store import kql


class TsqueryTests(unittest.TestCase):
    def test_words(self):
        """Words are all required, the last one as a prefix; punctuation splits words."""
        self.assertEqual(kql.tsquery("quarterly budg"), "'quarterly' & 'budg':*")
        self.assertEqual(kql.tsquery("alice@example.org"), "'alice' & 'example' & 'org':*")
        self.assertEqual(kql.tsquery("a AND b"), "'a' & 'b':*")

    def test_restrictions_and_phrases(self):
        """Restrictions carry the weights of their part; phrases keep their order (PostgreSQL lower-cases)."""
        self.assertEqual(kql.tsquery("subject:budget review"), "'budget':A & 'review':*")
        self.assertEqual(kql.tsquery("Body:plan"), "'plan':*C")
        self.assertEqual(kql.tsquery('from:"Bob Example" x'), "('Bob':B <-> 'Example':B) & 'x':*")
        self.assertEqual(kql.tsquery("re:budget"), "'re' & 'budget':*")

    def test_nothing_to_find(self):
        """A query without a word is None."""
        for text in ("", "   ", "!!!", '""', "AND"):
            self.assertIsNone(kql.tsquery(text), text)

    def test_unsupported(self):
        """OR, NOT and restrictions the index cannot evaluate are refused."""
        for text in ("a OR b", "NOT a", "size:10", "received:today", "hasattachments:true"):
            self.assertRaises(kql.KQLError, kql.tsquery, text)

    def test_quotes_cannot_escape(self):
        """Quote and operator characters never reach the tsquery text unquoted."""
        query = kql.tsquery("it's a:b' | !x & (y)")
        self.assertNotIn("|", query)
        self.assertNotIn("!", query)
        self.assertEqual(query.count("'") % 2, 0)

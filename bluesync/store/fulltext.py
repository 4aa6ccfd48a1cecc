"""
The words of full-text search, the same way on both sides.

What is indexed and what is searched go through one normalisation: ASCII
punctuation becomes a space (so "alice@example.org" is the words alice,
example and org, and typing "alice" finds her), then PostgreSQL's
C{bluesync_search} configuration (migration 006: 'simple' plus unaccent)
lower-cases and folds accents.  Keeping the splitting rule here and in the
migration's backfill identical is what makes every indexed word findable.

Phones search while the user types, so the last word of a query matches as
a prefix ("budg" finds "budget").
"""

from __future__ import annotations

import string
from dataclasses import dataclass

CONFIG = "bluesync_search"

# ASCII punctuation and NUL (which PostgreSQL text refuses) become spaces;
# the migration's translate() uses the same 32 punctuation characters.
_SPLIT = str.maketrans({c: " " for c in string.punctuation + "\x00"})

# The SQL of one item's vector, from the three texts of L{SearchText}.
VECTOR_SQL = (
    f"setweight(to_tsvector('{CONFIG}', %s), 'A')"
    f" || setweight(to_tsvector('{CONFIG}', %s), 'B')"
    f" || setweight(to_tsvector('{CONFIG}', %s), 'C')"
)


@dataclass(frozen=True)
class SearchText:
    """
    The searchable text of one item, by weight: the title (an email's
    subject) ranks above the people (From, To, Cc), which rank above the
    body.  Mailbox search matches any of them.
    """

    title: str = ""
    people: str = ""
    body: str = ""

    def parameters(self) -> tuple[str, str, str]:
        """
        The three arguments of L{VECTOR_SQL}.
        """
        return normalise(self.title), normalise(self.people), normalise(self.body)


def normalise(text: str) -> str:
    """
    C{text} with punctuation split off and anything PostgreSQL would refuse
    (NUL, unpaired surrogates) removed: a message is never refused, and
    never left unsearchable, for what it contains.
    """
    text = text.translate(_SPLIT)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def words(text: str) -> list[str]:
    """
    The words of a query, in order, as the index holds them before
    PostgreSQL lower-cases and folds them.
    """
    return normalise(text).split()


def tsquery(query_words: list[str], prefix_last: bool = True) -> str | None:
    """
    The C{to_tsquery} text matching items that contain every word, the last
    one as a prefix when C{prefix_last}; None when there is no word.

    The words contain no ASCII punctuation (L{words} removed it), so quoting
    each one cannot be escaped out of; inside the quotes PostgreSQL's parser
    still applies the configuration, exactly as at indexing time.
    """
    if not query_words:
        return None
    terms = [f"'{word}'" for word in query_words]
    if prefix_last:
        terms[-1] += ":*"
    return " & ".join(terms)


def prefix_tsquery(query_words: list[str]) -> str | None:
    """
    Every word as a prefix: the global address list's rule (MS-ASCMD
    2.2.3.142.2: "John" finds "John Frum" and "Barry Johnson").
    """
    if not query_words:
        return None
    return " & ".join(f"'{word}':*" for word in query_words)

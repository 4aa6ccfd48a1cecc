"""
The Keyword Query Language subset of the Find command's FreeText
(MS-ASCMD 2.2.3.80.1), turned into a PostgreSQL tsquery over the message
vectors of L{bluesync.store.fulltext}.

A FreeText without property restrictions is run "against all indexed
properties", which is what phones send: words, all required, the last one
as a prefix because phones search while the user types.  On top of that:

- a quoted phrase matches its words in that order, next to each other;
- C{subject:}, C{body:} and the people restrictions (C{from:}, C{to:},
  C{cc:}, C{participants:}) match within that part of the message.  The
  index weighs a message's subject, its people and its body apart (A, B,
  C), not From apart from To, so C{from:bob} also finds mail to Bob;
- an upper-case C{AND} between terms is what juxtaposition means anyway.

C{OR} and C{NOT} would need a query other than one conjunction of terms;
they, and a restriction on a mail property the index does not hold apart
(C{size:}, C{received:}, ...), raise L{KQLError} rather than answering a
different question than the one asked.  Any other "name:" is text.
"""

from __future__ import annotations

import re

from bluesync.store import fulltext

# KQL property -> the weights of the message vector that hold it.
PROPERTY_WEIGHTS = {
    "subject": "A",
    "from": "B",
    "to": "B",
    "cc": "B",
    "participants": "B",
    "body": "C",
}

# KQL properties of mail that the index does not hold apart.  Any other
# "name:" is not a restriction but text ("re:budget", "https://..."), and
# is searched as words.
UNSUPPORTED = frozenset({
    "attachment", "attachments", "bcc", "category", "hasattachment", "hasattachments", "importance",
    "isflagged", "isread", "kind", "received", "sent", "size",
})

_TOKEN = re.compile(r'(?:(?P<property>[A-Za-z]+):)?(?:"(?P<phrase>[^"]*)"?|(?P<word>\S+))')


class KQLError(ValueError):
    """
    The query uses KQL that bluesync does not evaluate.
    """


def tsquery(text: str) -> str | None:
    """
    The C{to_tsquery} text of a KQL query, or None when it holds no word
    (it then matches nothing).

    Every word has been through L{fulltext.words}, so it holds no quote or
    operator character to escape from its quotes with.

    @raise KQLError: for OR, NOT or an unsupported property restriction.
    """
    # Each term: its words (several for a phrase) and the weights they
    # must carry ("" for anywhere).
    terms: list[tuple[list[str], str, bool]] = []
    for match in _TOKEN.finditer(text):
        prop, phrase, word = match.group("property"), match.group("phrase"), match.group("word")
        if prop is None and word in ("OR", "NOT"):
            raise KQLError(f"{word} is not supported")
        if prop is None and word == "AND":
            continue
        weights = ""
        value = phrase if phrase is not None else word
        if prop is not None:
            if prop.lower() in UNSUPPORTED:
                raise KQLError(f"no restriction on {prop!r}")
            weights = PROPERTY_WEIGHTS.get(prop.lower(), "")
            if not weights:
                value = match.group(0)
        words = fulltext.words(value)
        if phrase is not None and len(words) > 1:
            terms.append((words, weights, True))
        else:
            terms.extend(([w], weights, False) for w in words)
    if not terms:
        return None
    rendered = []
    for index, (words, weights, phrase) in enumerate(terms):
        prefix = not phrase and index == len(terms) - 1
        marks = ("*" if prefix else "") + weights
        lexemes = [f"'{w}'" + (f":{marks}" if marks else "") for w in words]
        rendered.append("(" + " <-> ".join(lexemes) + ")" if phrase else lexemes[0])
    return " & ".join(rendered)

"""
The one exception the codec raises, and the limits it enforces on input.

Every malformed or oversized document ends in L{WBXMLError}, never in an
IndexError, a KeyError or a UnicodeDecodeError, so that the EAS layer can
turn any decoding failure into one protocol status with one C{except}.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WBXMLError", "Limits", "DEFAULT_LIMITS", "MAX_DEPTH_CEILING"]

#: The deepest document libxml2 builds (with XML_PARSE_HUGE).
MAX_DEPTH_CEILING = 2048


class WBXMLError(ValueError):
    """
    A document cannot be decoded, or a tree cannot be encoded.

    C{offset} is the byte offset in the WBXML input where decoding failed
    (None for encoding errors); the message names the offset too, so that
    a log line alone is enough to find the bad byte in a capture.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = "%s (at byte %d)" % (message, offset)
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Limits:
    """
    Bounds on what L{bluesync.wbxml.decode} accepts.

    They exist so that one hostile request costs bounded memory and time:
    the input size bounds the work, the element count bounds the tree,
    the depth bounds the stack of open elements.
    """

    #: Deepest nesting of elements allowed (the root is depth 1).  At most
    #: L{MAX_DEPTH_CEILING}: libxml2, which builds the tree, refuses deeper
    #: documents whatever its options.
    max_depth: int = 64
    #: Most elements allowed in one document.
    max_elements: int = 1_000_000
    #: Longest document, in bytes, allowed.
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH_CEILING:
            raise ValueError("max_depth must be between 1 and %d"
                             % (MAX_DEPTH_CEILING,))
        if self.max_elements < 1 or self.max_bytes < 4:
            raise ValueError("max_elements and max_bytes must be positive")


DEFAULT_LIMITS = Limits()

"""
The ActiveSync WBXML codec: bytes <-> lxml elements (MS-ASWBXML).

    decode(data, *, limits=DEFAULT_LIMITS) -> lxml.etree._Element
    encode(element) -> bytes
    WBXMLError      ValueError subclass with .offset (byte offset or None)
    Limits          max_depth=64 (at most MAX_DEPTH_CEILING, 2048),
                    max_elements=1_000_000, max_bytes=64 MiB

Namespaces.  Each code page is one XML namespace whose URI is the page name
followed by a colon, as in the MS-ASCMD examples: C{"AirSync:"},
C{"Email:"}, C{"AirSyncBase:"}, ...  C{NAMESPACES} maps the conventional
prefix to the URI (C{"airsync"} -> C{"AirSync:"}; prefixes are the
lower-cased page names, except C{"rm"} for RightsManagement as in MS-ASRM),
usable as an XPath namespace map, and C{qname("AirSync", "Sync")} gives
C{"{AirSync:}Sync"}.  Decoded trees declare those prefixes on the root.
The encoder also accepts the colon-less URIs of the MS-ASWBXML example
(C{"AirSync"}), so spec XML can be fed to it as printed.

Opaque data.  Elements the code pages mark opaque (conversation ids and
indexes, SendMail/SmartReply/SmartForward MIME, 16.x attachment content)
carry bytes, which lxml text cannot.  Their element text holds the bytes
base64-encoded: read it with C{opaque(element)}, write it with
C{set_opaque(element, data)}.  The encoder sends such an element as WBXML
OPAQUE (base64-decoding the text); the decoder stores OPAQUE content of
these elements base64-encoded.  The decoder accepts either form for any
element: an inline string on an opaque element is stored as its UTF-8
bytes, OPAQUE data on a text element is decoded as UTF-8.

Text.  Elements hold either text or child elements, never both: ActiveSync
has no mixed content, and refusing it keeps every consumer simple.  An
element with no content is encoded as a tag without the content bit; both
forms decode to an empty element.  Text round-trips exactly, including
carriage returns and any character XML can carry; invalid UTF-8, and
characters XML cannot carry (most C0 controls), raise WBXMLError.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode

from bluesync.wbxml.codepages import (
    CODE_PAGES,
    NAMESPACES,
    PREFIXES,
    CodePage,
    Tag,
    qname,
    tag_for,
)
from bluesync.wbxml.decoder import decode
from bluesync.wbxml.encoder import encode
from bluesync.wbxml.errors import (
    DEFAULT_LIMITS,
    MAX_DEPTH_CEILING,
    Limits,
    WBXMLError,
)

__all__ = [
    "decode",
    "encode",
    "WBXMLError",
    "Limits",
    "DEFAULT_LIMITS",
    "MAX_DEPTH_CEILING",
    "NAMESPACES",
    "PREFIXES",
    "CODE_PAGES",
    "CodePage",
    "Tag",
    "qname",
    "tag_for",
    "opaque",
    "set_opaque",
]


def _opaque_tag(element) -> Tag:
    """The code-page tag of C{element}, which must be an opaque one."""
    tag = tag_for(element.tag) if isinstance(element.tag, str) else None
    if tag is None or not tag.opaque:
        raise ValueError("%r is not an opaque ActiveSync element"
                         % (element.tag,))
    return tag


def opaque(element) -> bytes:
    """
    The bytes an opaque element carries (b"" when it is empty).

    Raises ValueError if the element is not opaque in the code pages, and
    WBXMLError if its text is not base64 (someone set it by hand).
    """
    _opaque_tag(element)
    if not element.text:
        return b""
    try:
        return b64decode(element.text, validate=True)
    except (binascii.Error, ValueError):
        raise WBXMLError("<%s> text is not base64" % (element.tag,)) from None


def set_opaque(element, data: bytes) -> None:
    """Store C{data} as the content of an opaque element."""
    _opaque_tag(element)
    element.text = b64encode(data).decode("ascii") if data else None

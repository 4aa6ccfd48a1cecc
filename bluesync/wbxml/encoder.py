"""
An lxml tree to WBXML bytes.

The walk is iterative (an explicit stack of child iterators), so depth
costs no Python recursion, and output is collected in one bytearray.  Every
tag's bytes are precomputed per qualified name.
"""

from __future__ import annotations

import binascii
from base64 import b64decode

from lxml import etree

from bluesync.wbxml.codepages import CODE_PAGES
from bluesync.wbxml.errors import WBXMLError

__all__ = ["encode"]

_HEADER = b"\x03\x01\x6a\x00"


def _mb_u_int32(value: int) -> bytes:
    """WBXML's multi-byte unsigned integer, most significant group first."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def _by_qualified_name():
    """
    Qualified name -> (page, token, opaque, name) for every tag, aliases
    included.  Both namespace spellings are accepted: "AirSync:" (ours and
    MS-ASCMD's) and "AirSync" (the MS-ASWBXML example's).
    """
    table = {}
    for number, page in CODE_PAGES.items():
        for tag in page.tags:
            value = (number, tag.token, tag.opaque)
            table["{%s}%s" % (page.uri, tag.name)] = value
            table["{%s}%s" % (page.name, tag.name)] = value
    return table


_TAGS = _by_qualified_name()


def _describe(element) -> str:
    """Name an element for an error message, whatever kind of node it is."""
    tag = element.tag
    if isinstance(tag, str):
        return "<%s>" % (tag,)
    return "a %s node" % (type(element).__name__.lstrip("_"),)


def _opaque_bytes(element) -> bytes:
    """The bytes an opaque element's base64 text stands for."""
    try:
        return b64decode(element.text, validate=True)
    except (binascii.Error, ValueError):
        raise WBXMLError("%s is opaque but its text is not base64"
                         % (_describe(element),)) from None


def encode(element) -> bytes:
    """
    Encode an element (or an ElementTree) as one WBXML 1.3 document.

    Raises L{WBXMLError} for an element not in the code pages, for
    attributes, comments and other non-element nodes, for mixed content
    (text beside child elements; whitespace there is ignored, so an
    indented document encodes) and for opaque elements whose text is not
    base64.
    """
    if isinstance(element, etree._ElementTree):
        element = element.getroot()
    if not isinstance(element, etree._Element):
        raise WBXMLError("cannot encode %r: not an lxml element"
                         % (type(element).__name__,))
    if element.xpath("boolean(descendant-or-self::*/@*)"):
        holder = element.xpath("(descendant-or-self::*[@*])[1]")[0]
        raise WBXMLError("attributes cannot be encoded in WBXML (on %s)"
                         % (_describe(holder),))
    tags = _TAGS
    out = bytearray(_HEADER)
    page = 0
    stack = [iter((element,))]
    while stack:
        for child in stack[-1]:
            info = tags.get(child.tag)
            if info is None:
                raise WBXMLError("%s is not in any ActiveSync code page"
                                 % (_describe(child),))
            tail = child.tail
            if tail is not None and len(stack) > 1 and not tail.isspace():
                raise WBXMLError("text after %s (mixed content) cannot be"
                                 " encoded" % (_describe(child),))
            number, token, opaque = info
            if number != page:
                out.append(0)
                out.append(number)
                page = number
            text = child.text
            if len(child):
                if text is not None and not text.isspace():
                    raise WBXMLError("%s has both text and child elements"
                                     " (mixed content)" % (_describe(child),))
                out.append(token | 0x40)
                stack.append(iter(child))
                break
            if not text:
                out.append(token)
            elif opaque:
                data = _opaque_bytes(child)
                out.append(token | 0x40)
                out.append(0xC3)
                out += _mb_u_int32(len(data))
                out += data
                out.append(1)
            else:
                out.append(token | 0x40)
                out.append(3)
                out += text.encode("utf-8")
                out.append(0)
                out.append(1)
        else:
            stack.pop()
            if stack:
                out.append(1)
    return bytes(out)

"""
WBXML bytes to an lxml tree.

Speed comes from letting libxml2 build the tree.  One pass of Python over
the tokens checks everything MS-ASWBXML forbids and writes the equivalent
XML as a list of precomputed byte strings; C{lxml.etree.fromstring} then
builds the tree in C.  Creating the elements one by one from Python costs
about twice as much.

Text is copied through as the raw UTF-8 of the inline string (escaped where
it holds C{& < > CR}), so the fast pass never decodes it.  If libxml2 then
refuses the document, the only possible cause is a string that is not
UTF-8 or holds a character XML cannot carry; a second, validating pass
finds that string and reports its offset.
"""

from __future__ import annotations

import re
import threading
from base64 import b64encode

from lxml import etree

from bluesync.wbxml.codepages import CODE_PAGES
from bluesync.wbxml.errors import DEFAULT_LIMITS, Limits, WBXMLError

__all__ = ["decode"]

_SWITCH_PAGE = 0x00
_END = 0x01
_STR_I = 0x03
_OPAQUE = 0xC3

#: Global tokens MS-ASWBXML does not use, by value, for error messages.
_UNSUPPORTED = {
    0x02: "ENTITY", 0x04: "LITERAL",
    0x40: "EXT_I_0", 0x41: "EXT_I_1", 0x42: "EXT_I_2", 0x43: "PI",
    0x44: "LITERAL_C",
    0x80: "EXT_T_0", 0x81: "EXT_T_1", 0x82: "EXT_T_2", 0x83: "STR_T",
    0x84: "LITERAL_A",
    0xC0: "EXT_0", 0xC1: "EXT_1", 0xC2: "EXT_2", 0xC4: "LITERAL_AC",
}

_HEADER = b"\x03\x01\x6a\x00"

_needs_escape = re.compile(rb"[&<>\r]").search
_illegal_char = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]").search


def _entry(tag):
    """
    What the decoder writes for one tag: opening, empty and closing XML
    (with the page prefix), the opaque flag, and the prefixed name.
    """
    page = CODE_PAGES[tag.page]
    pname = ("%s:%s" % (page.prefix, tag.name)).encode("ascii")
    return (b"<" + pname + b">", b"<" + pname + b"/>",
            b"</" + pname + b">", tag.opaque, pname)


def _token_tables():
    """Per page, a 64-slot list indexed by token, None where undefined."""
    tables = {}
    for number, page in CODE_PAGES.items():
        table = [None] * 64
        for tag in page.tags:
            if not tag.alias:
                table[tag.token] = _entry(tag)
        tables[number] = table
    return tables


_TABLES = _token_tables()
_DECLARATIONS = {
    number: (' xmlns:%s="%s"' % (page.prefix, page.uri)).encode("ascii")
    for number, page in CODE_PAGES.items()
}

_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """
    A parser for our own generated XML; one per thread, since an lxml
    parser must not be shared between threads.  huge_tree lifts libxml2's
    own depth and size caps: ours (L{Limits}) are the ones that apply.
    """
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, huge_tree=True,
            collect_ids=False, remove_blank_text=False)
    return parser


def _escape(chunk: bytes) -> bytes:
    """Escape UTF-8 text for XML content (CR too, which parsing folds)."""
    return (chunk.replace(b"&", b"&amp;").replace(b"<", b"&lt;")
            .replace(b">", b"&gt;").replace(b"\r", b"&#13;"))


def _text(chunk: bytes, offset: int, what: str) -> str:
    """
    Decode one string strictly, refusing what XML cannot hold; used by the
    validating pass and for OPAQUE data on a text element.
    """
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WBXMLError("%s is not valid UTF-8" % (what,),
                         offset + e.start) from None
    bad = _illegal_char(text)
    if bad is not None:
        raise WBXMLError(
            "%s holds character U+%04X, which XML cannot carry"
            % (what, ord(bad.group())),
            offset + len(text[:bad.start()].encode("utf-8")))
    return text


def _read_length(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """
    Read an mb_u_int32 at C{pos}; return (value, position after it).
    At most five bytes, as WBXML allows for 32 bits.
    """
    value = 0
    start = pos
    n = len(data)
    while True:
        if pos >= n:
            raise WBXMLError("truncated %s" % (what,), start)
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
        if pos - start >= 5:
            raise WBXMLError("%s longer than 32 bits" % (what,), start)


def _check_header(data: bytes) -> None:
    """Accept only the one header MS-ASWBXML allows."""
    if data[:4] == _HEADER:
        return
    names = ("version 1.3 (0x03)", "public identifier 1 (0x01)",
             "charset 106 / UTF-8 (0x6A)", "string table length 0 (0x00)")
    for i, (got, want) in enumerate(zip(data, _HEADER)):
        if got != want:
            raise WBXMLError(
                "bad WBXML header: expected %s, found 0x%02X"
                % (names[i], got), i)
    raise WBXMLError("truncated WBXML header", len(data))


def _scan(data: bytes, limits: Limits, validate: bool) -> list[bytes]:
    """
    Check the token stream and translate it to XML pieces.

    With C{validate}, every string is also decoded and checked as
    L{_text} does; the normal pass leaves that to libxml2.
    """
    _check_header(data)
    n = len(data)
    max_depth = limits.max_depth
    max_elements = limits.max_elements
    tables = _TABLES
    table = tables[0]
    page = 0
    used = {0}
    out: list[bytes] = []
    append = out.append
    open_stack: list = []
    cur = None          # entry of the innermost open element
    has_text = False    # cur holds text (so no child may follow)
    has_children = False
    pending = None      # raw content of an opaque cur
    depth = 0
    count = 0
    pos = 4
    while pos < n:
        b = data[pos]
        if b == _STR_I:
            if cur is None:
                raise WBXMLError("inline string outside any element", pos)
            if has_children:
                raise WBXMLError("text after child elements (mixed content)"
                                 " in <%s>" % (cur[4].decode(),), pos)
            end = data.find(b"\x00", pos + 1)
            if end < 0:
                raise WBXMLError("unterminated inline string", pos)
            chunk = data[pos + 1:end]
            has_text = True
            if cur[3]:
                if pending is None:
                    pending = [chunk]
                else:
                    pending.append(chunk)
            else:
                if validate:
                    _text(chunk, pos + 1, "inline string")
                append(_escape(chunk) if _needs_escape(chunk) else chunk)
            pos = end + 1
        elif b == _END:
            if cur is None:
                raise WBXMLError("END with no open element", pos)
            if pending is not None:
                append(b64encode(b"".join(pending)))
                pending = None
            append(cur[2])
            pos += 1
            depth -= 1
            if open_stack:
                cur = open_stack.pop()
                has_text = False
                has_children = True
            else:
                cur = None
                break
        elif b == _SWITCH_PAGE:
            if pos + 1 >= n:
                raise WBXMLError("truncated SWITCH_PAGE", pos)
            page = data[pos + 1]
            table = tables.get(page)
            if table is None:
                raise WBXMLError("unknown code page %d" % (page,), pos + 1)
            used.add(page)
            pos += 2
        elif b == _OPAQUE:
            if cur is None:
                raise WBXMLError("opaque data outside any element", pos)
            if has_children:
                raise WBXMLError("opaque data after child elements (mixed"
                                 " content) in <%s>" % (cur[4].decode(),),
                                 pos)
            length, start = _read_length(data, pos + 1, "OPAQUE length")
            end = start + length
            if end > n:
                raise WBXMLError("OPAQUE data of %d bytes runs past the end"
                                 " of the document" % (length,), pos)
            chunk = data[start:end]
            has_text = True
            if cur[3]:
                if pending is None:
                    pending = [chunk]
                else:
                    pending.append(chunk)
            else:
                _text(chunk, start, "OPAQUE data of a text element")
                append(_escape(chunk) if _needs_escape(chunk) else chunk)
            pos = end
        else:
            entry = table[b & 0x3F]
            if entry is None:
                name = _UNSUPPORTED.get(b)
                if name is not None:
                    raise WBXMLError("WBXML token %s (0x%02X) is not used by"
                                     " ActiveSync" % (name, b), pos)
                raise WBXMLError("unknown tag token 0x%02X on code page %d"
                                 " (%s)" % (b & 0x3F, page,
                                            CODE_PAGES[page].name), pos)
            if b & 0x80:
                raise WBXMLError("attributes are not allowed (tag %s)"
                                 % (entry[4].decode(),), pos)
            if has_text:
                raise WBXMLError("child element after text (mixed content)"
                                 " in <%s>" % (cur[4].decode(),), pos)
            count += 1
            if count > max_elements:
                raise WBXMLError("more than %d elements" % (max_elements,),
                                 pos)
            if depth >= max_depth:
                raise WBXMLError("elements nested deeper than %d"
                                 % (max_depth,), pos)
            if not b & 0x40:
                append(entry[1])
                pos += 1
                if cur is None:
                    break
                has_children = True
                continue
            # Fast path: a text leaf "TAG STR_I text NUL END" in one go.
            nxt = pos + 1
            if (cur is not None and not entry[3] and nxt < n
                    and data[nxt] == _STR_I):
                end = data.find(b"\x00", nxt + 1)
                if end > 0 and end + 1 < n and data[end + 1] == _END:
                    chunk = data[nxt + 1:end]
                    if validate:
                        _text(chunk, nxt + 1, "inline string")
                    if _needs_escape(chunk):
                        chunk = _escape(chunk)
                    append(entry[0] + chunk + entry[2])
                    has_children = True
                    pos = end + 2
                    continue
            append(entry[0])
            if cur is not None:
                open_stack.append(cur)
            cur = entry
            has_text = has_children = False
            depth += 1
            pos = nxt
    if cur is not None:
        raise WBXMLError("document ends inside <%s> (missing END)"
                         % (cur[4].decode(),), n)
    if not out:
        raise WBXMLError("document has no root element", n)
    if pos != n:
        raise WBXMLError("%d bytes of trailing data after the root element"
                         % (n - pos,), pos)
    # Declare every namespace used on the root start tag.
    root = out[0]
    closing = b"/>" if root.endswith(b"/>") else b">"
    out[0] = (root[:-len(closing)]
              + b"".join(_DECLARATIONS[p] for p in sorted(used)) + closing)
    return out


def decode(data: bytes, *, limits: Limits = DEFAULT_LIMITS):
    """
    Decode one ActiveSync WBXML document into an lxml element.

    Every element is in its code page's namespace (C{"AirSync:"}, ...),
    with the conventional prefixes declared on the root.  Opaque content
    of an opaque tag is stored base64-encoded in the element text (see
    L{bluesync.wbxml.opaque}).  Any malformed input, or input beyond
    C{limits}, raises L{WBXMLError} with the byte offset.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > limits.max_bytes:
        raise WBXMLError("document of %d bytes is larger than the limit of"
                         " %d" % (len(data), limits.max_bytes),
                         limits.max_bytes)
    pieces = _scan(data, limits, validate=False)
    try:
        return etree.fromstring(b"".join(pieces), _parser())
    except etree.XMLSyntaxError as e:
        # Only a bad string can get here; find it and say where.
        _scan(data, limits, validate=True)
        raise WBXMLError("undecodable text: %s" % (e,), 0) from None

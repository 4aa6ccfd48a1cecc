"""
The multipart body of an ItemOperations response (MS-ASCMD 2.2.1.10.1).

A client that sends C{MS-ASAcceptMultiPart: T} (or the AcceptMultiPart
flag of the base64 query, MS-ASHTTP 2.2.1.1.1.1.3) gets the fetched bytes
outside the WBXML, so it can stream a large attachment to storage instead
of holding a base64 copy of it in memory.  The body is a MultiPartResponse
(2.2.1.10.1.1):

    PartsCount       4-byte little-endian integer
    PartsMetaData    PartsCount x (Offset, Length), 4-byte little-endian
                     integers; Offset counts from the start of the body
    Parts            the parts' bytes, back to back

Part 0 is the WBXML document; in it each payload's Data element is replaced
by an itemoperations:Part element holding the payload's index (1, 2, ...).
"""

from __future__ import annotations

import base64
import struct

from lxml import etree

from bluesync import wbxml
from bluesync.eas.responses import WBXML_TYPE
from bluesync.web.rendering import Response

CONTENT_TYPE = "application/vnd.ms-sync.multipart"

# Offsets and lengths are 32-bit: a body cannot exceed 4 GiB.
_LIMIT = 0xFFFFFFFF

_DATA = wbxml.qname("ItemOperations", "Data")
_PART = wbxml.qname("ItemOperations", "Part")


def encode(parts: list[bytes]) -> bytes:
    """
    A MultiPartResponse holding C{parts} in order.
    """
    offset = 4 + 8 * len(parts)
    table = [struct.pack("<I", len(parts))]
    for part in parts:
        table.append(struct.pack("<II", offset, len(part)))
        offset += len(part)
    if offset > _LIMIT:
        raise ValueError("a multipart response cannot exceed 4 GiB")
    return b"".join(table + parts)


class Payloads:
    """
    Where the fetched bytes of one response go: inline (the default), or
    collected as the parts of a multipart body.
    """

    def __init__(self, multipart: bool) -> None:
        self.multipart = multipart
        self.parts: list[bytes] = []

    def _part(self, payload: bytes, parent=None, element=None):
        self.parts.append(payload)
        if element is None:
            element = etree.SubElement(parent, _PART)
        else:
            element.tag = _PART
        element.text = str(len(self.parts))
        return element

    def attach(self, parent, payload: bytes) -> None:
        """
        Give C{parent} (an itemoperations:Properties) the payload: an
        itemoperations:Data holding it in base64 (2.2.3.39.2), or an
        itemoperations:Part naming its part.
        """
        if self.multipart:
            self._part(payload, parent=parent)
        else:
            etree.SubElement(parent, _DATA).text = base64.b64encode(payload).decode("ascii")

    def extract(self, data_element) -> None:
        """
        In multipart mode, move the text of an airsyncbase:Data (a fetched
        body) into a part, UTF-8 encoded, and put an itemoperations:Part in
        the Data's place (2.2.3.130: "The Part element replaces the Data
        element as a child of the airsyncbase:Body element").  Inline, the
        element stays as it is.
        """
        if self.multipart:
            self._part((data_element.text or "").encode("utf-8"), element=data_element)

    def response(self, document) -> Response:
        """
        The HTTP answer: plain WBXML, or the multipart body with the WBXML
        as part 0.
        """
        body = wbxml.encode(document)
        if not self.multipart:
            return Response(200, body, {"content-type": WBXML_TYPE})
        return Response(200, encode([body, *self.parts]), {"content-type": CONTENT_TYPE})

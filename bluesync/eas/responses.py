"""
Building HTTP answers from EAS documents.
"""

from __future__ import annotations

from bluesync import wbxml
from bluesync.web.rendering import Response

WBXML_TYPE = "application/vnd.ms-sync.wbxml"


def wbxml_response(element, headers: dict[str, str] | None = None) -> Response:
    """
    Encode an EAS document as the body of a 200 response.
    """
    all_headers = {"content-type": WBXML_TYPE}
    if headers:
        all_headers.update(headers)
    return Response(200, wbxml.encode(element), all_headers)

"""
Rendering a twisted.web request with a coroutine.

The coroutine's Deferred is cancelled when the client goes away, so a held
Ping or a long Sync stops working for nobody; nothing is written to a
request that has already finished (Twisted raises on that).  Errors never
reach the client as a traceback: an unexpected exception is logged with its
traceback and answered with a bare 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.server import NOT_DONE_YET

log = Logger()


@dataclass
class Response:
    """
    What a handler answers: status, extra headers and body bytes.
    """

    code: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def render_async(request, handler: Callable[[], Awaitable[Response]]) -> object:
    """
    Run C{handler()} for C{request}; return NOT_DONE_YET for twisted.web.
    """
    finished = False

    def client_gone(_):
        nonlocal finished
        finished = True
        running.cancel()

    def write(response: Response) -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        request.setResponseCode(response.code)
        for name, value in response.headers.items():
            request.setHeader(name, value)
        request.setHeader(b"content-length", b"%d" % len(response.body))
        if response.body and request.method != b"HEAD":
            request.write(response.body)
        request.finish()

    def failed(failure) -> None:
        if failure.check(CancelledError) and finished:
            return
        log.failure("unhandled error answering {uri}", failure, uri=request.uri)
        write(Response(500, b"", {"content-type": "text/plain"}))

    running = Deferred.fromCoroutine(handler())
    request.notifyFinish().addErrback(client_gone)
    running.addCallbacks(write, failed)
    return NOT_DONE_YET


# The request headers twisted.web reads once the request is parsed: the
# access log's (user agent, referer, and X-Forwarded-For behind a proxy).
_LOGGED_HEADERS = (b"user-agent", b"referer", b"x-forwarded-for")


def shed(request) -> None:
    """
    Let a request that will be held (a Ping, a Sync with Wait) forget what
    answering it does not need: its headers but those the access log reads,
    its query arguments and its body, all parsed already.  A process holds
    thousands of such requests for minutes; this is a fair share of each.
    """
    kept = Headers()
    for name in _LOGGED_HEADERS:
        values = request.requestHeaders.getRawHeaders(name)
        if values:
            kept.setRawHeaders(name, values)
    request.requestHeaders = kept
    request.args = {}
    content, request.content = request.content, None
    if content is not None:
        content.close()

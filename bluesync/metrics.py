"""
The counters behind /metrics: plain integers in this process's memory.

They count from the start of the process and are per process: behind a
load balancer each bluesync process is scraped on its own admin listener,
and Prometheus adds them up (and sees a restart as a counter reset).  The
instrumented code pays one dictionary increment per event; everything else
/metrics shows is read when it is scraped (bluesync.web.admin.metrics).

Label values are bounded: EAS commands come from the closed list that the
request parser accepts, HTTP statuses and LMTP results are a handful.
"""

from __future__ import annotations

import functools
import time
from collections import Counter

# (command, HTTP status) -> requests answered by the ActiveSync endpoint.
EAS_REQUESTS: Counter[tuple[str, int]] = Counter()

# LMTP recipients by outcome: "delivered" (250 after DATA), "refused" (5xx:
# unknown or disabled address, message too big), "deferred" (451: the
# database failed, the MTA tries again).
LMTP_RECIPIENTS: Counter[str] = Counter()

STARTED = time.time()


def counted(respond):
    """
    Wrap ActiveSyncResource.respond to count what it answers, by the
    command the resource parsed (its C{command} attribute; OPTIONS, or
    "unknown" for a request too malformed to name one) and HTTP status.
    A request whose client went away before its answer is not counted.
    """

    @functools.wraps(respond)
    async def respond_counted(resource, request):
        response = await respond(resource, request)
        if request.method == b"OPTIONS":
            command = "OPTIONS"
        else:
            command = getattr(resource, "command", None) or "unknown"
        EAS_REQUESTS[(command, response.code)] += 1
        return response

    return respond_counted


def lmtp(result: str, recipients: int = 1) -> None:
    LMTP_RECIPIENTS[result] += recipients

"""
/metrics on the admin listener, in the Prometheus text exposition format
(version 0.0.4).

It is on the admin listener, not the phones' one, because the counts say
how busy the server is and which commands fail, and the public listener
answers anyone.  It asks for no login, so that a scraper can read it: keep
the admin listener private (loopback, or a network only the scraper
reaches), and do not pass /metrics through a proxy to the Internet.

A scrape costs one count query (the outbound queue, on a partial index)
plus reading counters already in memory; the held requests are counted by
walking the notifier's table, a few microseconds per thousand.  If the
query fails, the other figures are still served, with
bluesync_database_up 0.
"""

from __future__ import annotations

import os

from twisted.logger import Logger

from bluesync import metrics
from bluesync.store.database import DATABASE_DOWN

log = Logger()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples) -> None:
        """
        One metric family: C{samples} are (labels dict, value) pairs.
        """
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                rendered = ",".join(f'{key}="{_escape(str(text))}"' for key, text in labels.items())
                self.lines.append(f"{name}{{{rendered}}} {value}")
            else:
                self.lines.append(f"{name} {value}")

    def render(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8")


def held_requests(notifier) -> tuple[int, int]:
    """
    (held Pings, held Sync waits).  A Ping is keyed by the device's row id,
    a Sync wait by a tuple ending with it (bluesync.push.notifier).
    """
    if notifier is None:
        return 0, 0
    return notifier.held_by_kind()


def resident_memory() -> int | None:
    """
    The process's resident set size in bytes, from /proc (Linux); None
    elsewhere.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


async def exposition(context) -> bytes:
    out = _Exposition()
    pings, sync_waits = held_requests(context.notifier)
    out.family("bluesync_held_requests", "gauge", "Requests held by this process waiting for a change.",
               [({"kind": "ping"}, pings), ({"kind": "sync"}, sync_waits)])
    out.family("bluesync_eas_requests_total", "counter",
               "ActiveSync requests answered by this process since it started, by command and HTTP status.",
               [({"command": command, "code": code}, count)
                for (command, code), count in sorted(metrics.EAS_REQUESTS.items())])
    out.family("bluesync_lmtp_recipients_total", "counter",
               "LMTP recipients since this process started: delivered, refused (5xx) or deferred (451).",
               [({"result": result}, metrics.LMTP_RECIPIENTS.get(result, 0))
                for result in ("delivered", "refused", "deferred")])
    database = context.store.database
    try:
        queued = await context.store.outbound.queued_count()
    except DATABASE_DOWN as e:
        log.warn("metrics: database unavailable: {error}", error=str(e))
        queued = None
    out.family("bluesync_database_up", "gauge", "1 if PostgreSQL answered this scrape's query.",
               [({}, 0 if queued is None else 1)])
    if queued is not None:
        out.family("bluesync_outbound_queued", "gauge",
                   "Messages waiting in the outbound queue for the relay (all processes).", [({}, queued)])
    size, in_use, waiting = database.pool_usage()
    out.family("bluesync_database_pool_connections", "gauge", "Connections in this process's pool.",
               [({}, size)])
    out.family("bluesync_database_pool_in_use", "gauge", "Pool connections running a query.", [({}, in_use)])
    out.family("bluesync_database_pool_waiting", "gauge", "Queries waiting for a free pool connection.",
               [({}, waiting)])
    rss = resident_memory()
    if rss is not None:
        out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [({}, rss)])
    out.family("bluesync_start_time_seconds", "gauge", "When this process's counters started (Unix time).",
               [({}, f"{metrics.STARTED:.3f}")])
    return out.render()

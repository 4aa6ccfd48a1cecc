"""
Throughput of the email converter on ~2 KB messages: parse_message (what
LMTP delivery pays per message) and application_data (what a Sync Add
pays), printed as messages per second. Not asserted anywhere.

    /work/venv/bin/python bench/email_convert_bench.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from bluesync.items.email import (  # noqa: E402
    BodyPreference,
    ItemState,
    application_data,
    parse_message,
)

RECEIVED = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)

PLAIN = ("Hello Bob,\n\nHere are the figures for the week. Revenue is up, costs are "
         "down, and the new office opens on Monday. Café at 10?\n\n") * 4
HTML = ("<html><body><p>Hello Bob,</p><p>Here are the figures for the <b>week</b>. "
        "Revenue is up, costs are down, and the new office opens on "
        "<a href=\"https://example.org/office\">Monday</a>.</p><ul><li>one</li>"
        "<li>two</li></ul></body></html>\n") * 3


def message(number: int) -> bytes:
    return (
        f"Return-Path: <alice@example.org>\r\n"
        f"Received: from mail.example.org by mx.example.com; Tue, 14 May 2024 09:31:02 +0200\r\n"
        f"From: =?utf-8?Q?Alice_M=C3=A4rtin?= <alice@example.org>\r\n"
        f"To: Bob Durand <bob@example.com>, carol@example.com\r\n"
        f"Cc: \"Martin, Dave\" <dave@example.net>\r\n"
        f"Subject: Re: Weekly figures #{number}\r\n"
        f"Date: Tue, 14 May 2024 09:30:00 +0200\r\n"
        f"Message-ID: <bench-{number}@example.org>\r\n"
        f"References: <root-{number // 10}@example.org>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{PLAIN}\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{HTML}\r\n--b--\r\n"
    ).encode("utf-8")


def rate(label: str, work, items: list, seconds: float) -> None:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in items:
            work(item)
        done += len(items)
    elapsed = time.perf_counter() - start
    print(f"{label:<45} {done / elapsed:10.0f} messages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    options = parser.parse_args()

    raws = [message(n) for n in range(100)]
    print(f"message size: {sum(map(len, raws)) // len(raws)} bytes")
    summaries = [parse_message(raw, RECEIVED) for raw in raws]
    pairs = list(zip(raws, summaries))
    state = ItemState()

    rate("parse_message", lambda raw: parse_message(raw, RECEIVED), raws, options.seconds)
    for label, preferences, mime_support in (
            ("application_data 14.1, HTML truncated 32 KB", [BodyPreference(2, 32768, preview=255)], 0),
            ("application_data 14.1, plain 500 B", [BodyPreference(1, 500)], 0),
            ("application_data 16.1, MIME", [BodyPreference(4)], 2)):
        rate(label, lambda pair, p=preferences, m=mime_support: application_data(
            pair[0], pair[1], state, version="14.1" if m == 0 else "16.1",
            body_preferences=p, mime_support=m, file_reference_prefix="1:1:"),
            pairs, options.seconds)


if __name__ == "__main__":
    main()

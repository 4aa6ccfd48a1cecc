"""
LMTP ingest rate: the real LMTP server on a real PostgreSQL, fed ~4 KB
messages over loopback by a separate client process that pipelines like
Postfix (MAIL, RCPTs and DATA in one write), over a few parallel
connections.  Prints messages per second.  Not asserted anywhere.

    /work/venv/bin/python bench/lmtp_ingest.py [--messages 2000] [--connections 4]
        [--recipients 1] [--dsn "host=... dbname=..."]

Without --dsn an embedded PostgreSQL is started in a temporary directory
(and removed afterwards).  A given database is migrated and receives
bench-N@bench.example accounts.  --connect HOST:PORT skips the server and
feeds an LMTP server that is already running (accounts must exist there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

PLAIN = (
    "Hello team,\r\n\r\nHere are this week's figures. Revenue is up four percent, "
    "costs are flat, and the new office in Lyon opens on Monday. Caf\u00e9 at 10?\r\n\r\n"
) * 10
HTML = (
    "<html><body><p>Hello team,</p><p>Here are this week's <b>figures</b>. Revenue "
    "is up four percent, costs are flat, and the new office opens on "
    "<a href=\"https://example.org/lyon\">Monday</a>.</p></body></html>\r\n"
) * 8


def message(number: int, recipient: str) -> bytes:
    return (
        f"Received: from mail.example.net (mail.example.net [192.0.2.7])\r\n"
        f"\tby mx.bench.example (Postfix) with ESMTPS id 4Vd{number:08X}\r\n"
        f"\tfor <{recipient}>; Tue, 14 May 2024 09:31:02 +0200 (CEST)\r\n"
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\r\n"
        f"\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        f"\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaGFzIHRoZSByaWdodCBzaGFwZQ==\r\n"
        f"From: =?utf-8?Q?Zo=C3=A9_Martin?= <zoe@example.net>\r\n"
        f"To: Team <{recipient}>\r\n"
        f"Subject: Weekly figures #{number}\r\n"
        f"Date: Tue, 14 May 2024 09:30:00 +0200\r\n"
        f"Message-ID: <bench-{number}-{os.getpid()}@example.net>\r\n"
        f"References: <root-{number // 10}@example.net>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/alternative; boundary=\"alt-{number}\"\r\n\r\n"
        f"--alt-{number}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{PLAIN}\r\n"
        f"--alt-{number}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{HTML}\r\n--alt-{number}--\r\n"
    ).encode("utf-8")


def account_address(index: int) -> str:
    return f"bench-{index}@bench.example"


# -- client (a separate process, like an MTA) ---------------------------------

class _Session:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.buffer = b""

    def reply(self) -> int:
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if line[3:4] != b"-":
                return int(line[:3])


def _feed(host: str, port: int, numbers: range, accounts: int, recipients: int, results: list) -> None:
    session = _Session(host, port)
    session.reply()
    session.sock.sendall(b"LHLO bench.client\r\n")
    session.reply()
    delivered = failed = 0
    for number in numbers:
        targets = [account_address((number + k) % accounts) for k in range(recipients)]
        raw = message(number, targets[0])
        envelope = f"MAIL FROM:<zoe@example.net> SIZE={len(raw)}\r\n"
        envelope += "".join(f"RCPT TO:<{target}>\r\n" for target in targets)
        session.sock.sendall(envelope.encode() + b"DATA\r\n")
        codes = [session.reply() for _ in range(2 + recipients)]
        if codes[-1] != 354:
            raise RuntimeError(f"envelope refused: {codes}")
        stuffed = (b"\r\n" + raw).replace(b"\r\n.", b"\r\n..")[2:]
        session.sock.sendall(stuffed + b".\r\n")
        for _ in range(recipients):
            if session.reply() == 250:
                delivered += 1
            else:
                failed += 1
    session.sock.sendall(b"QUIT\r\n")
    session.reply()
    session.sock.close()
    results.append((delivered, failed))


def client_main(host: str, port: int, messages: int, connections: int, accounts: int, recipients: int) -> dict:
    results: list = []
    threads = [
        threading.Thread(target=_feed, args=(host, port, range(k, messages, connections), accounts,
                                             recipients, results))
        for k in range(connections)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "messages": messages,
        "delivered": sum(d for d, _ in results),
        "failed": sum(f for _, f in results),
        "connections_finished": len(results),
        "size": len(message(0, account_address(0))),
    }


def run_client(host: str, port: int, options) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--client", f"{host}:{port}", "--messages", str(options.messages),
         "--connections", str(options.connections), "--accounts", str(options.accounts),
         "--recipients", str(options.recipients)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(output.stdout)


def report(result: dict, options) -> None:
    rate = result["messages"] / result["seconds"]
    print(f"message size: {result['size']} bytes; {options.connections} connections; "
          f"{options.recipients} recipient(s) per message")
    print(f"delivered {result['delivered']} copies, {result['failed']} refused, "
          f"in {result['seconds']:.2f} s")
    print(f"LMTP ingest: {rate:.0f} messages/s")


# -- server (this process) -----------------------------------------------------

def postgres_cpu(data_dir) -> float | None:
    """
    CPU seconds used so far by a local cluster's processes (the postmaster
    and its children), from /proc; None if that cannot be read.
    """
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # Fields after the command: state ppid ... utime(12) stime(13).
            if int(entry) == postmaster or int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / ticks
    except (OSError, ValueError, IndexError):
        return None


async def serve_and_measure(reactor, options, dsn: str, data_dir=None) -> None:
    from twisted.internet import threads as twisted_threads

    from bluesync.config import parse_config
    from bluesync.mail.lmtp import LMTPFactory
    from bluesync.store import migrations
    from bluesync.store.database import connect
    from bluesync.store.store import Store

    config = parse_config(f"[database]\npool_size = {options.pool_size}\n", "<bench>")
    database = await connect(dsn, options.pool_size)
    try:
        await migrations.migrate(database)
        store = Store(database)
        for index in range(options.accounts):
            if await store.accounts.by_address(account_address(index)) is None:
                await store.create_account(account_address(index), f"Bench {index}", "x")
        (before,) = await database.query_one("SELECT count(*) FROM items")
        factory = LMTPFactory(store, config.mail, reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        start = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        postgres = postgres_cpu(data_dir) if data_dir else None
        try:
            result = await twisted_threads.deferToThread(run_client, "127.0.0.1", port.getHost().port, options)
        finally:
            await port.stopListening()
            await factory.stop()
        end = resource.getrusage(resource.RUSAGE_SELF)
        children_end = resource.getrusage(resource.RUSAGE_CHILDREN)
        postgres_end = postgres_cpu(data_dir) if data_dir else None
        (after,) = await database.query_one("SELECT count(*) FROM items")
        report(result, options)
        print(f"items stored: {after - before}")

        # Wall-clock rates depend on whatever else the machine runs; CPU
        # per message does not, and says what 2 idle cores could do.
        def per_message(seconds: float) -> float:
            return seconds * 1000 / options.messages

        server = per_message(end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime)
        client = per_message(children_end.ru_utime - children.ru_utime
                             + children_end.ru_stime - children.ru_stime)
        line = f"CPU per message: LMTP server {server:.2f} ms, client {client:.2f} ms"
        if postgres is not None and postgres_end is not None:
            database_cpu = per_message(postgres_end - postgres)
            ceiling = min(1000 / server, 2000 / (server + client + database_cpu))
            line += (f", PostgreSQL {database_cpu:.2f} ms; on 2 idle cores:"
                     f" ~{ceiling:.0f} messages/s")
        print(line)
    finally:
        database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--recipients", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--dsn", default="")
    parser.add_argument("--connect", default="", help="HOST:PORT of a running LMTP server")
    parser.add_argument("--client", default="", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.client:
        host, _, port = options.client.rpartition(":")
        print(json.dumps(client_main(host, int(port), options.messages, options.connections,
                                     options.accounts, options.recipients)))
        return
    if options.connect:
        host, _, port = options.connect.rpartition(":")
        report(client_main(host, int(port), options.messages, options.connections,
                           options.accounts, options.recipients), options)
        return

    from twisted.internet import defer, task

    state = None
    embedded = None
    dsn = options.dsn
    if not dsn:
        from pathlib import Path

        from bluesync.store.embedded import EmbeddedPostgres

        state = Path(tempfile.mkdtemp(prefix="bluesync-bench-"))
        embedded = EmbeddedPostgres(state)
        dsn = embedded.start()
    try:
        data_dir = embedded.data_dir if embedded is not None else None
        task.react(lambda reactor: defer.Deferred.fromCoroutine(
            serve_and_measure(reactor, options, dsn, data_dir)))
    except SystemExit as e:
        if e.code:
            raise
    finally:
        if embedded is not None:
            embedded.stop()
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()

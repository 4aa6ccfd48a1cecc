"""
Initial sync benchmark (issue 4): LMTP ingest, initial Sync of the Inbox,
no-change Sync latency and server memory, against a real bluesync process.

    python bench/sync_initial.py                 # 10,000 messages, embedded PostgreSQL
    python bench/sync_initial.py --messages 2000 --lmtp-connections 4

It starts `twistd -n bluesync` in a temporary state directory (loopback
only), creates an account with bluesync-admin, delivers the messages over
LMTP, then drives EAS 16.1 over HTTP with a plain http.client connection
and the bluesync WBXML codec.  Everything stops by itself.  Figures are
printed, never asserted.

Beside the wall-clock rates, each phase prints the CPU time the server
process and its embedded PostgreSQL spent per operation (from /proc, Linux
only): on a shared machine wall-clock rates follow the load of others,
CPU per operation much less.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import random
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bluesync import wbxml  # noqa: E402

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]
NS = dict(wbxml.NAMESPACES)
WORDS = ("meeting budget report quarterly review project deadline invoice lunch travel contract "
         "proposal update schedule customer release planning team coffee design draft").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def realistic_message(number: int, rng: random.Random) -> bytes:
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize()
    paragraphs = []
    for _ in range(rng.randint(3, 8)):
        paragraphs.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + ".")
    body = "\r\n\r\n".join(paragraphs)
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    boundary = f"b{number:08d}"
    return (
        f"From: Sender {number % 97} <sender{number % 97}@example.net>\r\n"
        f"To: Alice Martin <alice@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Thu, 26 Nov 2026 09:{number % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench{number}@example.net>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}</body></html>\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(state: Path) -> float:
    """CPU time of the embedded PostgreSQL's processes (their working directory is in C{state})."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().startswith("postgres") and \
                    os.readlink(entry / "cwd").startswith(str(state)):
                total += cpu_seconds(int(entry.name))
        except OSError:
            continue
    return total


class CPUMeter:
    """Server and PostgreSQL CPU per operation over one phase of the benchmark."""

    def __init__(self, pid: int, state: Path) -> None:
        self.pid, self.state = pid, state
        self.start = self._now()

    def _now(self) -> tuple[float, float]:
        return cpu_seconds(self.pid), postgres_cpu_seconds(self.state)

    def report(self, operations: int, what: str) -> str:
        server, postgres = (b - a for a, b in zip(self.start, self._now()))
        return (f"  CPU per {what}: server {server * 1000 / operations:.2f} ms,"
                f" PostgreSQL {postgres * 1000 / operations:.2f} ms (load average {os.getloadavg()[0]:.1f})")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class EAS:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.user = user
        self.policy_key: str | None = None

    def post(self, command: str, xml: str | None):
        body = wbxml.encode(etree.fromstring(xml.encode())) if xml else b""
        headers = {
            "Authorization": self.auth,
            "MS-ASProtocolVersion": "16.1",
            "Content-Type": "application/vnd.ms-sync.wbxml",
            "User-Agent": "bluesync-bench/1",
        }
        if self.policy_key:
            headers["X-MS-PolicyKey"] = self.policy_key
        self.connection.request(
            "POST",
            f"/Microsoft-Server-ActiveSync?Cmd={command}&User={self.user}&DeviceId=BENCH1&DeviceType=iPhone",
            body, headers,
        )
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{command}: HTTP {response.status}")
        return wbxml.decode(data) if data else None

    def provision(self) -> None:
        policy = "<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>"
        first = self.post("Provision", f'<Provision xmlns="Provision:"><Policies><Policy>{policy}</Policy></Policies></Provision>')
        self.policy_key = first.xpath("//provision:PolicyKey", namespaces=NS)[0].text
        second = self.post(
            "Provision",
            f'<Provision xmlns="Provision:"><Policies><Policy>{policy}<PolicyKey>{self.policy_key}</PolicyKey>'
            "<Status>1</Status></Policy></Policies></Provision>",
        )
        self.policy_key = second.xpath("//provision:PolicyKey", namespaces=NS)[0].text

    def inbox(self) -> str:
        answer = self.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        for add in answer.xpath("//folderhierarchy:Add", namespaces=NS):
            if add.find("{FolderHierarchy:}Type").text == "2":
                return add.find("{FolderHierarchy:}ServerId").text
        raise RuntimeError("no Inbox")


def sync_xml(collection: str, key: str, window: int = 100) -> str:
    return (
        '<Sync xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:"><Collections><Collection>'
        f"<SyncKey>{key}</SyncKey><CollectionId>{collection}</CollectionId><WindowSize>{window}</WindowSize>"
        "<Options><FilterType>0</FilterType><airsyncbase:BodyPreference><airsyncbase:Type>2</airsyncbase:Type>"
        "<airsyncbase:TruncationSize>5120</airsyncbase:TruncationSize></airsyncbase:BodyPreference></Options>"
        "</Collection></Collections></Sync>"
    )


def deliver_all(port: int, messages: list[bytes], connections: int) -> float:
    chunks = [messages[i::connections] for i in range(connections)]
    errors = []

    def worker(chunk):
        try:
            with smtplib.LMTP("127.0.0.1", port) as lmtp:
                for raw in chunk:
                    refused = lmtp.sendmail("sender@example.net", ["alice@example.org"], raw)
                    if refused:
                        errors.append(refused)
        except Exception as e:  # report, do not hide
            errors.append(repr(e))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        print(f"  LMTP errors: {len(errors)} (first: {errors[0]})")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--lmtp-connections", type=int, default=4)
    parser.add_argument("--no-change-syncs", type=int, default=200)
    parser.add_argument("--dsn", default="", help="use this PostgreSQL instead of an embedded one")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="bluesync-bench-"))
    http_port, lmtp_port = free_port(), free_port()
    config = state / "bluesync.ini"
    config.write_text(
        f"[server]\nlisten = tcp:{http_port}:interface=127.0.0.1\nstate_dir = {state}/var\n"
        f"[database]\ndsn = {args.dsn}\n[mail]\nlmtp_listen = tcp:{lmtp_port}:interface=127.0.0.1\n"
        f"[admin]\nlisten = tcp:{free_port()}:interface=127.0.0.1\n"
        # 200 back-to-back no-change Syncs are exactly what autoblock is
        # for; the bench measures latency, so it turns autoblock off.
        "[devices]\nautoblock_empty_syncs = 0\n"
    )
    env = dict(os.environ, BLUESYNC_CONFIG=str(config))
    log = open(state / "twistd.log", "wb")
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "bluesync"], cwd=state, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"phones connect to" not in (state / "twistd.log").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                print((state / "twistd.log").read_text())
                return 1
            time.sleep(0.2)
        subprocess.run([sys.executable, "-m", "bluesync.admin.cli", "user", "add", "alice@example.org",
                        "--name", "Alice Martin", "--password-stdin"],
                       input="bench password\n", text=True, env=env, cwd=state, check=True, capture_output=True)
        print(f"server pid {server.pid}, RSS at start {rss_kb(server.pid) / 1024:.1f} MB")

        rng = random.Random(42)
        messages = [realistic_message(n, rng) for n in range(args.messages)]
        average = sum(map(len, messages)) / len(messages)
        meter = CPUMeter(server.pid, state)
        elapsed = deliver_all(lmtp_port, messages, args.lmtp_connections)
        print(f"LMTP ingest: {len(messages)} messages (avg {average / 1024:.1f} KB) in {elapsed:.2f} s"
              f" = {len(messages) / elapsed:.0f} messages/s over {args.lmtp_connections} connections")
        print(meter.report(len(messages), "message"))

        client = EAS(http_port, "alice@example.org", "bench password")
        client.provision()
        inbox = client.inbox()
        answer = client.post("Sync", sync_xml(inbox, "0"))
        key = answer.xpath("//airsync:SyncKey", namespaces=NS)[0].text
        latencies = []
        items = 0
        meter = CPUMeter(server.pid, state)
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            answer = client.post("Sync", sync_xml(inbox, key))
            latencies.append(time.perf_counter() - t0)
            if answer is None:
                break
            items += len(answer.xpath("//airsync:Commands/airsync:Add", namespaces=NS))
            key = answer.xpath("//airsync:Collection/airsync:SyncKey", namespaces=NS)[0].text
            if not answer.xpath("//airsync:MoreAvailable", namespaces=NS):
                break
        elapsed = time.perf_counter() - start
        latencies_ms = sorted(x * 1000 for x in latencies)
        print(f"initial Sync: {items} items in {len(latencies)} requests, {elapsed:.2f} s"
              f" = {items / elapsed:.0f} items/s end to end;"
              f" per request p50 {statistics.median(latencies_ms):.1f} ms, max {latencies_ms[-1]:.1f} ms")
        print(meter.report(len(latencies), "Sync request"))

        no_change = []
        meter = CPUMeter(server.pid, state)
        for _ in range(args.no_change_syncs):
            t0 = time.perf_counter()
            answer = client.post("Sync", sync_xml(inbox, key))
            no_change.append((time.perf_counter() - t0) * 1000)
            if answer is not None:
                print("  unexpected changes in a no-change Sync")
        no_change.sort()
        p99 = no_change[min(len(no_change) - 1, int(len(no_change) * 0.99))]
        print(f"no-change Sync x{len(no_change)}: p50 {statistics.median(no_change):.2f} ms, p99 {p99:.2f} ms")
        print(meter.report(len(no_change), "no-change Sync"))
        print(f"server RSS after: {rss_kb(server.pid) / 1024:.1f} MB")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            print(f"the server did not stop; its state is left in {state}")
        else:
            # The server stopped its embedded PostgreSQL: nothing uses the
            # state any more, and each run leaves ~70 MB otherwise.
            shutil.rmtree(state, ignore_errors=True)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

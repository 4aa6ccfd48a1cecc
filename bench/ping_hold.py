"""
How many Pings can one bluesync process hold, what each costs, and how fast
a delivery wakes one.  Prints figures; asserts nothing.

    /work/venv/bin/python bench/ping_hold.py [--accounts 10000] [--deliveries 200] [--rate 20]

By default it starts bluesync as a twistd subprocess on a fresh embedded
PostgreSQL in a temporary directory (with the server's open-file limit
raised to the hard limit).  With --url and --config it uses a running
server instead (the config gives the bench the same database; --pid lets
it read the server's memory and CPU); the accounts it creates there are
named bench-<run>-<n>@bench.invalid and deleted at the end.

Steps, all on loopback and bounded in time (--max-seconds):

1. create N accounts through the store (one precomputed password hash),
   each with a provisioned device that has run FolderSync and synced its
   Inbox (sync states written through the store);
2. hold N Pings (HeartbeatInterval 3000) from client processes spread over
   127.0.0.2, 127.0.0.3, ... (--per-client connections each), sent in
   waves of --wave, reading the server's RSS after each wave;
3. read the server's CPU time over --idle seconds of holding;
4. deliver one message (LMTP, or the store with --via store) to each of M
   random held accounts at a fixed rate; print delivery-to-answer latency;
5. let those M devices "sync" and Ping again, then deliver one message to
   all N Inboxes in one transaction and time how long waking all N takes;
6. hold N Pings again and stop the server with SIGTERM: count the Status 1
   answers it sends before exiting (subprocess mode only).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import secrets
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

HEARTBEAT = 3000
PASSWORD = "bench-password"
CLIENT_BATCH = 100       # connections a client opens per tick
CLIENT_TICK = 0.05       # seconds between ticks
MESSAGE = (
    "From: Bench <bench@bench.invalid>\r\nTo: {to}\r\nSubject: bench {n}\r\n"
    "Message-ID: <bench-{n}-{run}@bench.invalid>\r\nDate: Tue, 14 May 2024 09:30:00 +0200\r\n\r\n"
    "A message to wake a held Ping.\r\n"
)


# ---------------------------------------------------------------- clients
#
# A client process holds Pings over raw HTTP/1.1 connections bound to one
# source address.  Commands arrive on stdin as JSON lines
# ({"ping": [index, ...], "heartbeat": n} or {"quit": true}); every answer
# is reported on stdout as "R <index> <http code> <ping status> <time>",
# every failure as "E <index> <reason> <time>".


def client_main(args) -> None:
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import ClientFactory, Protocol
    from twisted.protocols.basic import LineReceiver

    from bluesync import wbxml

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.client_file) as f:
        spec = json.load(f)
    host, port, source = spec["host"], spec["port"], spec["source"]
    devices = {int(index): device for index, device in spec["devices"].items()}
    out = sys.stdout

    def report(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def request(device, heartbeat: int) -> bytes:
        body = wbxml.encode(wbxml_ping(heartbeat, device["inbox"]))
        token = base64.b64encode(f"{device['address']}:{PASSWORD}".encode()).decode()
        head = (
            f"POST /Microsoft-Server-ActiveSync?Cmd=Ping&User={device['address']}"
            f"&DeviceId={device['device_id']}&DeviceType=iPhone HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Basic {token}\r\n"
            f"MS-ASProtocolVersion: 16.1\r\nX-MS-PolicyKey: {spec['policy_key']}\r\n"
            f"User-Agent: Apple-iPhone15C2/2301.341\r\n"
            f"Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    class PingProtocol(Protocol):
        def __init__(self, index: int, data: bytes) -> None:
            self.index = index
            self.data = data
            self.buffer = b""
            self.done = False

        def connectionMade(self) -> None:
            self.transport.write(self.data)

        def dataReceived(self, data: bytes) -> None:
            self.buffer += data
            head, sep, body = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.split(b"\r\n")
            code = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) < length:
                return
            ping_status = "-"
            if code == 200 and body:
                try:
                    document = wbxml.decode(body[:length])
                    ping_status = document.findtext("{Ping:}Status") or "-"
                except Exception:
                    ping_status = "?"
            self.done = True
            report(f"R {self.index} {code} {ping_status} {time.time():.6f}")
            self.transport.loseConnection()

        def connectionLost(self, reason) -> None:
            if not self.done:
                self.done = True
                report(f"E {self.index} {reason.value.__class__.__name__} {time.time():.6f}")

    class PingFactory(ClientFactory):
        def __init__(self, index: int, data: bytes) -> None:
            self.index = index
            self.data = data

        def buildProtocol(self, addr):
            return PingProtocol(self.index, self.data)

        def clientConnectionFailed(self, connector, reason) -> None:
            report(f"E {self.index} connect:{reason.value.__class__.__name__} {time.time():.6f}")

    pending: list = []

    def tick() -> None:
        batch, pending[:] = pending[:CLIENT_BATCH], pending[CLIENT_BATCH:]
        for index, data in batch:
            reactor.connectTCP(host, port, PingFactory(index, data), timeout=30, bindAddress=(source, 0))
        if pending:
            reactor.callLater(CLIENT_TICK, tick)

    class Commands(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            command = json.loads(line)
            if command.get("quit"):
                reactor.stop()
                return
            idle = not pending
            for index in command["ping"]:
                pending.append((index, request(devices[index], command["heartbeat"])))
            if idle:
                tick()

        def connectionLost(self, reason) -> None:
            if reactor.running:
                reactor.stop()

    stdio.StandardIO(Commands())
    reactor.run()


def wbxml_ping(heartbeat: int, folder_id: int):
    from lxml import etree

    root = etree.Element("{Ping:}Ping")
    etree.SubElement(root, "{Ping:}HeartbeatInterval").text = str(heartbeat)
    folders = etree.SubElement(root, "{Ping:}Folders")
    folder = etree.SubElement(folders, "{Ping:}Folder")
    etree.SubElement(folder, "{Ping:}Id").text = str(folder_id)
    etree.SubElement(folder, "{Ping:}Class").text = "Email"
    return root


# ----------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(directory: Path) -> tuple[subprocess.Popen, str, Path, int]:
    http_port, lmtp_port = free_port(), free_port()
    config = directory / "bluesync.ini"
    config.write_text(
        f"[server]\nlisten = tcp:{http_port}:interface=127.0.0.1:backlog=4096\nstate_dir = {directory}\n"
        f"[mail]\nlmtp_listen = tcp:{lmtp_port}:interface=127.0.0.1\n"
        "[database]\npool_size = 8\n"
    )
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    log = open(directory / "server.log", "w")
    process = subprocess.Popen(
        [twistd, "-n", "--pidfile=", "bluesync", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile, cwd=directory,
    )
    return process, f"http://127.0.0.1:{http_port}", config, lmtp_port


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


# ----------------------------------------------------------------- driver


class Bench:
    def __init__(self, args, reactor) -> None:
        self.args = args
        self.reactor = reactor
        self.run_id = secrets.token_hex(3)
        self.answers: dict[int, list[tuple[int, str, float]]] = {}
        self.errors: list[str] = []
        self.clients: list = []
        self.client_of: dict[int, int] = {}
        self.devices: list[dict] = []
        self.server_pid = args.pid
        self.process = None

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- answers from the client processes

    def line(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        if parts[0] == "R":
            self.answers.setdefault(int(parts[1]), []).append((int(parts[2]), parts[3], float(parts[4])))
        elif parts[0] == "E":
            self.errors.append(line)

    async def until(self, condition, what: str, limit: float) -> None:
        from twisted.internet import task

        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}")
            await task.deferLater(self.reactor, 0.05, lambda: None)

    async def sleep(self, seconds: float) -> None:
        from twisted.internet import task

        await task.deferLater(self.reactor, seconds, lambda: None)

    # -- setup

    async def create_accounts(self, store) -> None:
        from bluesync.passwords import hash_password
        from bluesync.store.folders import INBOX
        from bluesync.store.syncstate import HIERARCHY

        password_hash = hash_password(PASSWORD)
        self.policy_key = random.randint(1, 2**31)
        count = self.args.accounts
        self.devices = [None] * count
        numbers = iter(range(count))

        async def worker() -> None:
            for number in numbers:
                address = f"bench-{self.run_id}-{number}@bench.invalid"
                account = await store.create_account(address, f"Bench {number}", password_hash)
                device_id = f"BENCH{self.run_id}{number}".upper()
                device = await store.devices.touch(account.id, device_id, "iPhone", "bench", "16.1", "Provision")
                await store.devices.confirm_policy_key(device.id, self.policy_key, 1)
                hierarchy = await store.folders.hierarchy_modseq(account.id)
                await store.sync_states.save_next(device.id, HIERARCHY, None, hierarchy, {"own": []})
                inbox = await store.folders.by_type(account.id, INBOX)
                await store.sync_states.save_next(device.id, inbox.id, None, inbox.modseq)
                self.devices[number] = {
                    "address": address, "device_id": device_id, "inbox": inbox.id,
                    "account_id": account.id, "device_pk": device.id,
                }

        await gather([worker() for _ in range(self.args.setup_concurrency)])

    async def held_count(self, store, heartbeat: int) -> int:
        """
        Pings past their first store check: each stored its heartbeat with
        the device just before waiting (a new heartbeat value per round).
        """
        (count,) = await store.database.query_one(
            "SELECT count(*) FROM devices WHERE device_id LIKE %s AND ping_heartbeat = %s",
            (f"BENCH{self.run_id}%".upper(), heartbeat),
        )
        return count

    def start_clients(self, host: str, port: int, directory: Path) -> None:
        from twisted.internet.protocol import ProcessProtocol

        bench = self

        class ClientProcess(ProcessProtocol):
            def __init__(self) -> None:
                self.buffer = b""

            def outReceived(self, data: bytes) -> None:
                self.buffer += data
                *lines, self.buffer = self.buffer.split(b"\n")
                for line in lines:
                    bench.line(line.decode())

            def errReceived(self, data: bytes) -> None:
                sys.stderr.write(data.decode(errors="replace"))

        per_client = self.args.per_client
        for number, start in enumerate(range(0, len(self.devices), per_client)):
            source = f"127.0.0.{2 + number}"
            indexes = range(start, min(start + per_client, len(self.devices)))
            spec = {
                "host": host, "port": port, "source": source, "policy_key": self.policy_key,
                "devices": {str(i): self.devices[i] for i in indexes},
            }
            path = directory / f"client{number}.json"
            path.write_text(json.dumps(spec))
            protocol = ClientProcess()
            self.reactor.spawnProcess(
                protocol, sys.executable, [sys.executable, __file__, "--client-file", str(path)],
                env=os.environ.copy(),
            )
            self.clients.append(protocol)
            for i in indexes:
                self.client_of[i] = number

    def ping(self, indexes, heartbeat: int) -> None:
        by_client: dict[int, list[int]] = {}
        for index in indexes:
            by_client.setdefault(self.client_of[index], []).append(index)
        for number, batch in by_client.items():
            self.clients[number].transport.write(json.dumps({"ping": batch, "heartbeat": heartbeat}).encode() + b"\n")

    async def hold(self, store, indexes: list[int], heartbeat: int) -> float:
        """
        Send Pings for C{indexes} and wait until every one is held; give up
        after a minute without progress.
        """
        started = time.monotonic()
        since = time.time()
        before = len(self.errors)
        baseline = await self.held_count(store, heartbeat)
        self.ping(indexes, heartbeat)
        held, progress = 0, time.monotonic()
        while held < len(indexes):
            await self.sleep(0.2)
            count = await self.held_count(store, heartbeat) - baseline
            if count > held:
                held, progress = count, time.monotonic()
            elif time.monotonic() - progress > 60:
                raise TimeoutError(f"only {held} of {len(indexes)} Pings held")
            if len(self.errors) > before:
                raise RuntimeError(f"client errors while holding: {self.errors[before:before + 5]}")
        answered = [i for i in indexes if self.answered(i, since)]
        if answered:
            raise RuntimeError(f"{len(answered)} Pings were answered instead of held, e.g. "
                               f"{[self.answers[i][-1] for i in answered[:3]]}")
        return time.monotonic() - started

    def answered(self, index: int, after: float) -> tuple[int, str, float] | None:
        for answer in self.answers.get(index, ()):
            if answer[2] >= after:
                return answer
        return None

    # -- deliveries

    def lmtp_deliver(self, index: int, number: int) -> None:
        address = self.devices[index]["address"]
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail("bench@bench.invalid", [address],
                          MESSAGE.format(to=address, n=number, run=self.run_id).encode())

    async def deliver_one(self, store, index: int, number: int) -> None:
        from twisted.internet import threads

        from bluesync.store.items import NewItem

        if self.args.via == "lmtp":
            await threads.deferToThread(self.lmtp_deliver, index, number)
        else:
            device = self.devices[index]
            content = MESSAGE.format(to=device["address"], n=number, run=self.run_id).encode()
            await store.items.deliver([(device["account_id"], device["inbox"])], NewItem("Email", content))

    async def latency(self, store, indexes: list[int]) -> list[int]:
        from twisted.internet import defer

        chosen = random.sample(indexes, min(self.args.deliveries, len(indexes)))
        started: dict[int, float] = {}
        failures: list[str] = []
        running = []
        begin = time.monotonic()
        for number, index in enumerate(chosen):
            delay = begin + number / self.args.rate - time.monotonic()
            if delay > 0:
                await self.sleep(delay)
            started[index] = time.time()
            d = defer.ensureDeferred(self.deliver_one(store, index, number))
            d.addErrback(lambda f, i=index: failures.append(f"delivery {i}: {f.getErrorMessage()}"))
            running.append(d)
        await gather(running)
        await self.until(lambda: all(self.answered(i, started[i]) for i in chosen), "delivery answers", 30)
        latencies, wrong = [], []
        for index in chosen:
            code, status, at = self.answered(index, started[index])
            if (code, status) != (200, "2"):
                wrong.append(f"{index}: HTTP {code} Status {status}")
            latencies.append(at - started[index])
        self.say(
            f"delivery -> Ping answer ({len(chosen)} deliveries via {self.args.via} at {self.args.rate}/s "
            f"while {len(indexes)} held): p50 {ms(percentile(latencies, 0.5))}, "
            f"p99 {ms(percentile(latencies, 0.99))}, max {ms(max(latencies))}; "
            f"errors {len(failures) + len(wrong)}"
        )
        for problem in (failures + wrong)[:5]:
            self.say(f"  {problem}")
        return chosen

    async def resync(self, store, indexes) -> None:
        """
        What a phone does after Status 2: Sync the Inbox (here: record a
        sync state at the Inbox's current modseq).
        """
        pending = iter(indexes)

        async def worker() -> None:
            for index in pending:
                device = self.devices[index]
                inbox = device["inbox"]
                (modseq,) = (await store.folders.modseqs(device["account_id"], [inbox])).values()
                latest = await store.sync_states.latest(device["device_pk"], [inbox])
                await store.sync_states.save_next(device["device_pk"], inbox, latest.get(inbox), modseq)

        await gather([worker() for _ in range(self.args.setup_concurrency)])

    async def wake_all(self, store, indexes: list[int]) -> None:
        from bluesync.store.items import NewItem

        targets = [(self.devices[i]["account_id"], self.devices[i]["inbox"]) for i in indexes]
        content = MESSAGE.format(to="all@bench.invalid", n="all", run=self.run_id).encode()
        cpu = cpu_seconds(self.server_pid) if self.server_pid else None
        started = time.time()
        await store.items.deliver(targets, NewItem("Email", content))
        committed = time.time()
        await self.until(lambda: all(self.answered(i, started) for i in indexes), "all answers", 120)
        if cpu is not None:
            self.say(f"server CPU from the transaction's start to the last answer: "
                     f"{cpu_seconds(self.server_pid) - cpu:.2f} s")
        times = [self.answered(i, started)[2] - committed for i in indexes]
        wrong = sum(1 for i in indexes if self.answered(i, started)[:2] != (200, "2"))
        self.say(
            f"wake all: one transaction delivering to {len(indexes)} Inboxes took {committed - started:.2f} s; "
            f"after its commit the first answer came in {ms(min(times))}, p50 {ms(percentile(times, 0.5))}, "
            f"p99 {ms(percentile(times, 0.99))}, all {len(indexes)} answered in {max(times):.2f} s; errors {wrong}"
        )

    async def shutdown(self, indexes: list[int]) -> None:
        before = time.time()
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while self.process.poll() is None and time.monotonic() < deadline:
            await self.sleep(0.05)
        exited = time.time()
        await self.sleep(0.5)
        answers = [self.answered(i, before) for i in indexes]
        ones = sum(1 for a in answers if a and a[:2] == (200, "1"))
        last = max((a[2] for a in answers if a), default=before)
        self.say(
            f"SIGTERM with {len(indexes)} held: {ones} answered Status 1 (last {last - before:.2f} s after the "
            f"signal), server exited with {self.process.returncode} {exited - before:.2f} s after the signal"
        )

    # -- the whole run

    async def run(self) -> None:
        from bluesync.config import load_config
        from bluesync.store.store import open_store

        args = self.args
        directory = Path(tempfile.mkdtemp(prefix="bluesync-bench-"))
        if args.url:
            url, config_path = args.url, args.config
        else:
            self.process, url, config_path, self.lmtp_port = start_server(directory)
            self.server_pid = self.process.pid
        if args.url:
            self.lmtp_port = args.lmtp_port
        host, port = url.split("//")[1].split(":")
        port = int(port.rstrip("/"))
        await self.until(lambda: _answers(host, port), "the server to listen", 120)
        opened = await open_store(load_config(config_path))
        store = opened.store
        try:
            await self.measure(store, host, port, directory)
        finally:
            if args.url:
                await self.cleanup(store)
            for client in self.clients:
                try:
                    client.transport.write(b'{"quit": true}\n')
                except Exception:
                    pass
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(60)
            await opened.close()

    async def measure(self, store, host: str, port: int, directory: Path) -> None:
        args = self.args
        pid = self.server_pid
        self.say("load average before: %.1f %.1f %.1f (on %d CPUs)" % (*os.getloadavg(), os.cpu_count()))
        started = time.monotonic()
        await self.create_accounts(store)
        self.say(f"{args.accounts} accounts with a provisioned, synced device created in "
                 f"{time.monotonic() - started:.1f} s")
        # Every bench account shares one password hash, and the server
        # remembers a verified (hash, password) pair: one login warms the
        # cache for all.  Without it, the first burst would run one Argon2
        # check (about a second of CPU here) per concurrent request.
        self.say(f"warm-up login: HTTP {_options(host, port, self.devices[0]['address'])}")
        self.start_clients(host, port, directory)
        everyone = list(range(args.accounts))
        waves = [everyone[start:start + args.wave] for start in range(0, args.accounts, args.wave)]
        rss_before = rss_kb(pid) if pid else None
        rss_after_waves, took = [], 0.0
        for wave in waves:
            took += await self.hold(store, wave, HEARTBEAT)
            await self.sleep(1)
            if pid:
                rss_after_waves.append(rss_kb(pid))
        self.say(f"{args.accounts} Pings held in {took:.1f} s, in waves of {args.wave}, "
                 f"from {len(self.clients)} client processes (127.0.0.2-127.0.0.{1 + len(self.clients)})")
        if pid:
            rss_all = rss_after_waves[-1]
            marginal = ""
            if len(waves) > 1:
                marginal = (f", {(rss_all - rss_after_waves[0]) / (args.accounts - len(waves[0])):.1f} KB "
                            f"after the first wave")
            self.say(
                f"server RSS: {rss_before / 1024:.1f} MiB before, "
                + ", ".join(f"{kb / 1024:.1f}" for kb in rss_after_waves)
                + f" MiB after each wave; per held Ping {(rss_all - rss_before) / args.accounts:.1f} KB overall"
                + marginal
            )
            cpu = cpu_seconds(pid)
            await self.sleep(args.idle)
            used = cpu_seconds(pid) - cpu
            self.say(f"server CPU while idly holding {args.accounts}: {used:.2f} s over {args.idle:.0f} s "
                     f"({100 * used / args.idle:.2f} %)")
        chosen = await self.latency(store, everyone)
        await self.resync(store, chosen)
        await self.hold(store, chosen, HEARTBEAT + 1)
        await self.wake_all(store, everyone)
        if self.process is not None:
            await self.resync(store, everyone)
            await self.hold(store, everyone, HEARTBEAT + 2)
            await self.shutdown(everyone)
        self.say(f"client errors: {len(self.errors)}" + (f", e.g. {self.errors[:3]}" if self.errors else ""))
        self.say("load average after: %.1f %.1f %.1f" % os.getloadavg())

    async def cleanup(self, store) -> None:
        for device in self.devices:
            if device is not None:
                await store.accounts.delete(device["address"])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(100)
    except OSError:
        return False


def _options(host: str, port: int, address: str) -> int:
    token = base64.b64encode(f"{address}:{PASSWORD}".encode()).decode()
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"OPTIONS /Microsoft-Server-ActiveSync HTTP/1.0\r\nAuthorization: Basic {token}\r\n\r\n".encode())
        return int(s.recv(100).split()[1])


async def gather(coroutines) -> list:
    from twisted.internet import defer

    return await defer.gatherResults([defer.ensureDeferred(c) if not isinstance(c, defer.Deferred) else c
                                      for c in coroutines], consumeErrors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--per-client", type=int, default=2500, help="connections per client process")
    parser.add_argument("--wave", type=int, default=1000, help="Pings sent at once while filling up")
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries per second")
    parser.add_argument("--via", choices=("lmtp", "store"), default="lmtp")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle holding to measure CPU")
    parser.add_argument("--setup-concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--url", help="a running server (with --config; --pid for RSS/CPU, --lmtp-port)")
    parser.add_argument("--config", help="the running server's bluesync.ini")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--lmtp-port", type=int, default=2424)
    parser.add_argument("--client-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_file:
        client_main(args)
        return
    if args.url and not args.config:
        parser.error("--url needs --config")

    from twisted.internet import defer, reactor

    raise_nofile()
    bench = Bench(args, reactor)
    outcome = {}

    def finished(result):
        outcome["failure"] = result if isinstance(result, Exception) or hasattr(result, "getTraceback") else None
        if reactor.running:
            reactor.stop()

    def too_long():
        print(f"stopping: --max-seconds {args.max_seconds:.0f} reached", flush=True)
        running.cancel()

    running = defer.ensureDeferred(bench.run())
    timer = reactor.callLater(args.max_seconds, too_long)
    running.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
    running.addBoth(finished)
    reactor.run()
    failure = outcome.get("failure")
    if failure is not None:
        print(failure.getTraceback() if hasattr(failure, "getTraceback") else failure, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

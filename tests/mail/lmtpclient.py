"""
A blocking LMTP client for tests, run in a worker thread while the server
runs on the reactor: real sockets, real bytes, nothing shared with the
server code.  Scripts are sent the way Postfix pipelines them: a group of
commands in one write, then their replies read back in order.
"""

from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater

from bluesync.mail.lmtp import LMTPFactory


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class LineClient:
    def __init__(self, address: tuple[str, int] | str, timeout: float = 30.0) -> None:
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; pending {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> Reply:
        lines = []
        while True:
            line = self.line()
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return Reply(int(line[:3]), tuple(lines))

    def replies(self, count: int) -> list[Reply]:
        return [self.reply() for _ in range(count)]

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def dot_stuff(message: bytes) -> bytes:
    """
    The DATA payload for C{message}, end marker included (RFC 5321 4.5.2).
    """
    if not message.endswith(b"\r\n") and message:
        message += b"\r\n"
    stuffed = (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]
    return stuffed + b".\r\n"


def converse(address, script: list[tuple[bytes, int]]) -> list[Reply]:
    """
    Connect, read the greeting, then for each (bytes, n) send the bytes
    and read n replies.  Returns every reply, the greeting first.
    """
    client = LineClient(address)
    try:
        replies = [client.reply()]
        for data, count in script:
            client.send(data)
            replies.extend(client.replies(count))
        return replies
    finally:
        client.close()


def converse_in_thread(address, script):
    return threads.deferToThread(converse, address, script)


def commands(sender: str, recipients: list[str], lhlo: bool = True) -> bytes:
    """
    LHLO, MAIL, RCPTs and DATA in one pipelined group, as Postfix sends
    them; 3 + len(recipients) replies come back (2 + ... without LHLO).
    """
    data = b"LHLO client.example\r\n" if lhlo else b""
    data += f"MAIL FROM:<{sender}>\r\n".encode()
    data += b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in recipients)
    return data + b"DATA\r\n"


class LMTPServer:
    """
    bluesync's real LMTP listener on a loopback port for one test, stopped
    (sessions closed, port released) by the test's cleanup.
    """

    def __init__(self, test, store, mail_config) -> None:
        self.factory = LMTPFactory(store, mail_config, reactor)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.port.getHost().port)
        test.addCleanup(lambda: defer.Deferred.fromCoroutine(self.stop()))

    async def stop(self) -> None:
        await self.port.stopListening()
        await self.factory.stop()
        for _ in range(500):
            if not self.factory.connections:
                break
            await deferLater(reactor, 0.01, lambda: None)

    def deliver(self, raw: bytes, recipients=("alice@example.org",), sender: str = "bob@example.net"):
        """
        Deliver C{raw} as an MTA would (smtplib's LMTP client, in a thread);
        fires with the recipients refused, {} when all were accepted.
        """
        def send():
            client = smtplib.LMTP(*self.address)
            try:
                client.ehlo("mta.example")
                return client.sendmail(sender, list(recipients), raw)
            finally:
                client.quit()

        return threads.deferToThread(send)

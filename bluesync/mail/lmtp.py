"""
LMTP ingress (RFC 2033): the MTA (Postfix, Exim...) hands us each message
for final delivery into the recipients' Inboxes.

LMTP rather than SMTP because we keep no queue: the MTA keeps the message
until we answer, and after DATA we answer once per accepted recipient
(RFC 2033 4.2), so one unknown or failing recipient never makes the MTA
resend the message to the others.

Why not twisted.mail.smtp: Twisted 26 has no LMTP at all, and its ESMTP
server cannot be bent into one cheaply.  It runs the MAIL and RCPT checks
as Deferreds but keeps reading the next pipelined command meanwhile, so a
pipelined DATA meets "503 Must have valid receiver" while the account
lookup is still running -- and LMTP servers MUST offer PIPELINING
(RFC 2033 5), which Postfix uses.  It also feeds the message line by line
into one IMessage per recipient and answers once for all of them, with its
state in name-mangled attributes.  Overriding all of that would leave only
the class name, so this is a small LineReceiver of our own.  Every command
whose answer needs the database pauses the transport until it is answered,
which keeps pipelined replies in order (RFC 2920 3).

Choices made here (RFC 5321 4.4, RFC 2033):

- The message is stored exactly as received after two trace fields that we
  prepend as the final delivery agent: Return-Path (the MAIL FROM path) and
  Received ("with LMTP", RFC 3848).  Received has no "for" clause because
  one copy serves every recipient and a "for" would show each recipient
  the Bcc addresses of the others.
- A message is acknowledged 250 only after the transaction storing every
  copy has committed; any failure answers 451 for every recipient and
  leaves nothing stored (the MTA retries the whole message).
- Addresses compare case-insensitively; an address or alias of a disabled
  or missing account is refused 550 at RCPT, alone.
- Message bytes are never judged: 8-bit data, bare LFs, long lines, odd
  charsets and broken MIME are stored as they came.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Coroutine

import psycopg2
from twisted.internet import defer, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin

from bluesync import metrics
from bluesync.config import MailConfig
from bluesync.mail.delivery import NoInbox, deliver_item, new_email_item
from bluesync.store.database import DATABASE_DOWN

log = Logger()

# RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted.
MAX_RECIPIENTS = 1000
# Messages above this are parsed in a worker thread: parsing 50 MB takes
# about a second, which must not stall every held Ping in the process.
THREAD_PARSE_SIZE = 512 * 1024
END_OF_DATA = b"\r\n.\r\n"
UTC = timezone.utc

_DATABASE_ERRORS = (*DATABASE_DOWN, psycopg2.Error)
_ids = itertools.count(1)
_id_prefix = os.urandom(3).hex()


class LMTPFactory(ServerFactory):
    """
    Shared by every LMTP connection: the store, the mail settings, and the
    set of open connections so that shutdown can drain them.
    """

    noisy = False

    def __init__(self, store, config: MailConfig, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.store = store
        self.config = config
        self.reactor = reactor
        self.connections: set[LMTPServer] = set()
        # Commands waiting on the database, including those of sessions
        # that have since disconnected: a delivery runs to its end.
        self.pending: set[defer.Deferred] = set()
        self.stopping = False

    def buildProtocol(self, addr) -> LMTPServer:
        return LMTPServer(self)

    async def parse(self, raw: bytes, received: datetime):
        if len(raw) < THREAD_PARSE_SIZE:
            return new_email_item(raw, received)
        return await threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), new_email_item, raw, received
        )

    async def stop(self) -> None:
        """
        Let the deliveries in progress finish (the database is still open),
        then close every connection with 421 so the MTA retries elsewhere
        or later.  Call after the listening ports have stopped.
        """
        self.stopping = True
        if self.pending:
            await defer.DeferredList(list(self.pending), consumeErrors=True)
        for connection in list(self.connections):
            connection.shut_down()


class LMTPServer(LineReceiver, TimeoutMixin):
    """
    One LMTP session.  Commands are handled one at a time: a command that
    waits on the database pauses reading until its reply is sent.
    """

    # Command lines: 512 octets in RFC 5321, more with parameters; message
    # lines are not limited (DATA is read in raw mode).
    MAX_LENGTH = 4096
    # RFC 5321 4.5.3.2.7: the server waits at least 5 minutes for a command.
    idle_timeout = 600

    def __init__(self, factory: LMTPFactory) -> None:
        self.factory = factory
        self.callLater = factory.reactor.callLater
        self._lhlo: bytes | None = None
        self._sender: bytes | None = None
        self._recipients: list[tuple[str, Any]] = []
        self._data: bytearray | None = None
        self._too_big = False
        self._lost = False

    @property
    def _hostname(self) -> str:
        return self.factory.config.hostname or "localhost"

    @property
    def _max_size(self) -> int:
        return self.factory.config.max_message_size

    # -- connection -------------------------------------------------------

    def connectionMade(self) -> None:
        self.factory.connections.add(self)
        # Replies to one pipelined group leave in separate writes (MAIL at
        # once, RCPT after its lookup); with Nagle's algorithm the second
        # waits for the MTA's delayed ACK, ~40 ms per message.
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self.setTimeout(self.idle_timeout)
        self.reply(220, f"{self._hostname} LMTP bluesync ready")

    def connectionLost(self, reason=None) -> None:
        self._lost = True
        self._data = None
        self.factory.connections.discard(self)
        self.setTimeout(None)

    def timeoutConnection(self) -> None:
        self.reply(421, "4.4.2 Idle for too long, closing connection")
        self.transport.loseConnection()

    def shut_down(self) -> None:
        if not self._lost:
            self.reply(421, "4.3.2 Service shutting down, try again later")
            self.transport.loseConnection()

    def reply(self, code: int, *lines: str) -> None:
        """
        Send a reply; several lines make a multi-line reply.
        """
        for index, line in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            self.sendLine(f"{code}{separator}{line}".encode("utf-8", "replace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self.reply(500, "5.5.2 Line too long")
        self.transport.loseConnection()

    # -- commands ---------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        if self.factory.stopping:
            self.shut_down()
            return
        if b"\n" in line or b"\r" in line or b"\x00" in line:
            self.reply(501, "5.5.2 Control characters in command")
            return
        verb, _, argument = line.strip().partition(b" ")
        handler = _COMMANDS.get(verb.upper())
        if handler is None:
            self.reply(500, "5.5.1 Command unrecognized")
            return
        handler(self, argument.strip())

    def do_LHLO(self, argument: bytes) -> None:
        if not argument:
            self.reply(501, "5.5.4 Syntax: LHLO hostname")
            return
        self._lhlo = argument.split()[0]
        self._reset()
        # RFC 2033 5: PIPELINING and ENHANCEDSTATUSCODES are required,
        # 8BITMIME recommended.  SMTPUTF8 (RFC 6531): we store bytes as
        # they come and compare addresses as text, so UTF-8 is fine.
        self.reply(
            250,
            self._hostname,
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "SMTPUTF8",
            f"SIZE {self._max_size}",
        )

    def do_HELO(self, argument: bytes) -> None:
        # RFC 2033 4.1: LMTP has LHLO instead.
        self.reply(500, "5.5.1 This is an LMTP server: use LHLO")

    do_EHLO = do_HELO

    def do_MAIL(self, argument: bytes) -> None:
        if self._lhlo is None:
            self.reply(503, "5.5.1 Send LHLO first")
            return
        if self._sender is not None:
            self.reply(503, "5.5.1 Nested MAIL command")
            return
        parsed = parse_path(argument, b"FROM:")
        if parsed is None:
            self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
            return
        path, parameters = parsed
        for key, value in parameters:
            if key == b"SIZE":
                if value is None or not value.isdigit() or len(value) > 20:
                    self.reply(501, "5.5.4 Syntax: SIZE=<octets>")
                    return
                if self._max_size and int(value) > self._max_size:
                    # RFC 1870 6.1.
                    self.reply(552, f"5.3.4 Message size exceeds fixed limit of {self._max_size} octets")
                    return
            elif key == b"BODY":
                if value is None or value.upper() not in (b"7BIT", b"8BITMIME"):
                    self.reply(555, "5.5.4 Unsupported BODY type")
                    return
            elif key == b"SMTPUTF8" and value is None:
                pass
            else:
                self.reply(555, "5.5.4 Unsupported MAIL parameter")
                return
        self._sender = path
        self._recipients = []
        self.reply(250, "2.1.0 Sender OK")

    def do_RCPT(self, argument: bytes) -> None:
        if self._sender is None:
            self.reply(503, "5.5.1 Send MAIL first")
            return
        parsed = parse_path(argument, b"TO:")
        if parsed is None or not parsed[0]:
            self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
            return
        path, parameters = parsed
        if parameters:
            self.reply(555, "5.5.4 Unsupported RCPT parameter")
            return
        if len(self._recipients) >= MAX_RECIPIENTS:
            self.reply(452, "4.5.3 Too many recipients")
            return
        self._run(self._recipient(path.decode("utf-8", "replace")))

    async def _recipient(self, address: str) -> None:
        try:
            account = await self.factory.store.accounts.by_address(address)
        except _DATABASE_ERRORS as e:
            log.warn("lmtp: cannot look up recipient {recipient}: {error}",
                     recipient=address, error=_first_line(e))
            self.reply(451, "4.3.0 Temporary failure looking up the recipient")
            return
        if account is None or account.disabled:
            metrics.lmtp("refused")
            log.info("lmtp: refused recipient {recipient}: {reason}", recipient=address,
                     reason="no such account" if account is None else "account disabled")
            if account is None:
                self.reply(550, f"5.1.1 <{address}> No such user here")
            else:
                self.reply(550, f"5.2.1 <{address}> Mailbox disabled")
            return
        self._recipients.append((address, account))
        self.reply(250, f"2.1.5 <{address}> Recipient OK")

    def do_DATA(self, argument: bytes) -> None:
        if self._sender is None:
            self.reply(503, "5.5.1 Send MAIL first")
            return
        if not self._recipients:
            # RFC 2033 4.2: no successful RCPT, DATA MUST fail with 503.
            self.reply(503, "5.5.1 No valid recipients")
            return
        self.reply(354, "Start mail input; end with <CRLF>.<CRLF>")
        # The leading CRLF lets the first line be unstuffed and the end
        # marker be found like any other.
        self._data = bytearray(b"\r\n")
        self._too_big = False
        self.setRawMode()

    def do_RSET(self, argument: bytes) -> None:
        self._reset()
        self.reply(250, "2.0.0 OK")

    def do_NOOP(self, argument: bytes) -> None:
        self.reply(250, "2.0.0 OK")

    def do_VRFY(self, argument: bytes) -> None:
        self.reply(252, "2.5.2 Cannot VRFY user, but will accept message and attempt delivery")

    def do_HELP(self, argument: bytes) -> None:
        self.reply(214, "2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT")

    def do_QUIT(self, argument: bytes) -> None:
        self.reply(221, "2.0.0 Bye")
        self.transport.loseConnection()

    # -- message data -----------------------------------------------------

    def rawDataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        buffer = self._data
        if buffer is None:
            return
        start = max(len(buffer) - len(END_OF_DATA) + 1, 0)
        buffer += data
        end = buffer.find(END_OF_DATA, start)
        if end < 0:
            if self._max_size and len(buffer) > self._max_size + self._max_size // 8 + 65536:
                # Far past the limit even allowing for dot-stuffing: read
                # on to the end marker but keep only what could hold it.
                self._too_big = True
                del buffer[: -(len(END_OF_DATA) - 1)]
            return
        rest = bytes(buffer[end + len(END_OF_DATA):])
        message = None
        if not self._too_big:
            message = bytes(buffer[: end + 2]).replace(b"\r\n..", b"\r\n.")[2:]
            if self._max_size and len(message) > self._max_size:
                message = None
        self._data = None
        self.setLineMode(rest)
        self._run(self._end_of_data(message))

    async def _end_of_data(self, message: bytes | None) -> None:
        sender, recipients = self._sender, self._recipients
        self._reset()
        addresses = [address for address, _ in recipients]
        if message is None:
            metrics.lmtp("refused", len(addresses))
            log.info("lmtp: refused a message over {limit} bytes for {recipients}",
                     limit=self._max_size, recipients=addresses)
            for address in addresses:
                self.reply(552, f"5.3.4 <{address}> Message too big (limit {self._max_size} octets)")
            return
        transaction_id = f"{_id_prefix}{next(_ids):06x}"
        received = datetime.fromtimestamp(self.factory.reactor.seconds(), UTC)
        raw = self._trace(sender, received, transaction_id) + message
        try:
            item = await self.factory.parse(raw, received)
            item_ids = await deliver_item(self.factory.store, [a for _, a in recipients], item)
        except _DATABASE_ERRORS as e:
            log.warn("lmtp {id}: delivery to {recipients} failed, answered 451: {error}",
                     id=transaction_id, recipients=addresses, error=_first_line(e))
            self._fail_all(addresses)
            return
        except NoInbox as e:
            log.error("lmtp {id}: account {account} has no Inbox; answered 451 to {recipients}",
                      id=transaction_id, account=str(e), recipients=addresses)
            self._fail_all(addresses)
            return
        except defer.CancelledError:
            raise
        except Exception:
            log.failure("lmtp {id}: delivery to {recipients} failed, answered 451",
                        id=transaction_id, recipients=addresses)
            self._fail_all(addresses)
            return
        log.info(
            "lmtp {id}: delivered {message_id} ({size} bytes) from <{sender}> to {recipients} as items {item_ids}",
            id=transaction_id,
            message_id=item.summary.get("message_id", ""),
            size=len(raw),
            sender=sender.decode("utf-8", "replace"),
            recipients=addresses,
            item_ids=item_ids,
        )
        metrics.lmtp("delivered", len(addresses))
        for address in addresses:
            self.reply(250, f"2.0.0 <{address}> Delivered, id {transaction_id}")

    def _fail_all(self, addresses: list[str]) -> None:
        metrics.lmtp("deferred", len(addresses))
        for address in addresses:
            self.reply(451, f"4.3.0 <{address}> Temporary failure storing the message, try again later")

    def _trace(self, sender: bytes, received: datetime, transaction_id: str) -> bytes:
        """
        The Return-Path and Received fields a final delivery prepends
        (RFC 5321 4.4).
        """
        helo = _printable(self._lhlo or b"") or "unknown"
        peer = self.transport.getPeer()
        if isinstance(peer, IPv4Address):
            helo += f" ([{peer.host}])"
        elif isinstance(peer, IPv6Address):
            helo += f" ([IPv6:{peer.host}])"
        received_field = (
            f"Received: from {helo}\r\n"
            f"\tby {_printable(self._hostname.encode('utf-8', 'replace'))} (bluesync)"
            f" with LMTP id {transaction_id};\r\n"
            f"\t{format_datetime(received.replace(microsecond=0))}\r\n"
        )
        return b"Return-Path: <" + sender + b">\r\n" + received_field.encode("ascii")

    # -- plumbing ---------------------------------------------------------

    def _reset(self) -> None:
        self._sender = None
        self._recipients = []

    def _run(self, work: Coroutine) -> None:
        """
        Run a command that waits on the database.  Reading pauses until it
        has replied, so pipelined commands are answered in order.
        """
        self.pauseProducing()
        self.setTimeout(None)
        pending = defer.Deferred.fromCoroutine(work)
        self.factory.pending.add(pending)
        pending.addErrback(self._internal_error)
        pending.addBoth(self._resume, pending)

    def _internal_error(self, failure) -> None:
        # Not knowing how many replies are owed, the only safe answer is to
        # end the session; the MTA retries the transaction.
        log.failure("lmtp: internal error, closing the connection", failure)
        if not self._lost:
            self.reply(421, "4.3.0 Internal error, closing connection")
            self.transport.loseConnection()

    def _resume(self, _, pending: defer.Deferred) -> None:
        self.factory.pending.discard(pending)
        if self._lost or self.transport.disconnecting:
            return
        self.setTimeout(self.idle_timeout)
        self.resumeProducing()


_COMMANDS = {
    b"LHLO": LMTPServer.do_LHLO,
    b"HELO": LMTPServer.do_HELO,
    b"EHLO": LMTPServer.do_EHLO,
    b"MAIL": LMTPServer.do_MAIL,
    b"RCPT": LMTPServer.do_RCPT,
    b"DATA": LMTPServer.do_DATA,
    b"RSET": LMTPServer.do_RSET,
    b"NOOP": LMTPServer.do_NOOP,
    b"VRFY": LMTPServer.do_VRFY,
    b"HELP": LMTPServer.do_HELP,
    b"QUIT": LMTPServer.do_QUIT,
}


def parse_path(argument: bytes, keyword: bytes) -> tuple[bytes, list[tuple[bytes, bytes | None]]] | None:
    """
    Split "FROM:<path> KEY=VALUE ..." (or "TO:...") into the path and its
    parameters; None if it is not that shape.  Lenient where real MTAs
    are (a space after the colon, no angle brackets) and strict about
    control characters, which would end up in a header.  A source route
    (RFC 5321 4.1.2, "@relay:user@host") is dropped.
    """
    if argument[: len(keyword)].upper() != keyword:
        return None
    rest = argument[len(keyword):].lstrip(b" ")
    if rest.startswith(b"<"):
        index, quoted = 1, False
        while index < len(rest):
            char = rest[index]
            if char == 0x5C:  # backslash
                index += 2
                continue
            if char == 0x22:  # double quote
                quoted = not quoted
            elif char == 0x3E and not quoted:  # '>'
                break
            index += 1
        else:
            return None
        path, tail = rest[1:index], rest[index + 1:]
        if tail and not tail.startswith(b" "):
            return None
    else:
        path, _, tail = rest.partition(b" ")
    if path.startswith(b"@"):
        _, colon, path = path.partition(b":")
        if not colon:
            return None
    if any(byte < 0x20 or byte == 0x7F for byte in path):
        return None
    parameters = []
    for token in tail.split():
        key, equals, value = token.partition(b"=")
        parameters.append((key.upper(), value if equals else None))
    return path, parameters


def _printable(text: bytes) -> str:
    """
    A client-supplied name made safe for a header: printable ASCII only.
    """
    return "".join(chr(b) for b in text[:255] if 0x21 <= b <= 0x7E and b not in b"()")


def _first_line(error: BaseException) -> str:
    # psycopg2 puts DETAIL (which may quote row contents) on later lines.
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""
A real SMTP relay for tests: twisted.mail.smtp's ESMTP server on a
loopback port, recording every message it accepts.  It can be told to
refuse the sender, some recipients or the data with any reply code, to
require AUTH, to offer STARTTLS with a self-signed certificate, to offer
8BITMIME and SMTPUTF8, and to go away and come back on the same port.

MAIL and RCPT are parsed here, strictly, as a relay that takes SMTPUTF8
does: a parameter it did not offer is refused 555, and a non-ASCII
address without SMTPUTF8 553 5.6.7.  The parameters each message came
with are recorded, so that tests can check what was declared.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.cred import checkers, portal
from twisted.internet import defer, ssl
from twisted.internet.protocol import ServerFactory
from twisted.mail import smtp
from twisted.mail._cred import LOGINCredentials, PLAINCredentials
from zope.interface import implementer


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    user: str | None
    tls: bool
    # MAIL FROM parameters, upper-case ("BODY=8BITMIME", "SMTPUTF8").
    parameters: tuple[str, ...] = ()


class _Transaction:
    def __init__(self, mail_from: str, parameters: tuple[str, ...]) -> None:
        self.mail_from = mail_from
        self.parameters = parameters
        self.recipients: list[str] = []


class _Path(smtp.Address):
    """A path as received, UTF-8 allowed (twisted's Address is ASCII only)."""

    def __init__(self, path: bytes) -> None:
        # What twisted's Address has, for the copies its errors make.
        self.local, _, self.domain = path.rpartition(b"@")
        self.addrstr = path

    def __bytes__(self) -> bytes:
        return self.addrstr

    def __str__(self) -> str:
        return self.addrstr.decode("utf-8")


_COMMAND = re.compile(rb"^\s*(FROM|TO):\s*<([^<>]*)>(.*)$", re.I | re.S)


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, relay: "Relay", protocol, transaction: _Transaction, recording: bool) -> None:
        self.relay = relay
        self.protocol = protocol
        self.transaction = transaction
        self.recording = recording
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        if self.relay.data_reply is not None:
            code, text = self.relay.data_reply
            raise smtp.SMTPServerError(code, text.encode())
        self.lines.append(line)

    def eomReceived(self):
        if self.recording:
            self.relay.record(Received(
                self.transaction.mail_from, tuple(self.transaction.recipients),
                b"\r\n".join(self.lines) + b"\r\n", self.protocol.user, bool(self.protocol.startedTLS),
                self.transaction.parameters,
            ))
        return defer.succeed(None)

    def connectionLost(self) -> None:
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, relay: "Relay", protocol) -> None:
        self.relay = relay
        self.protocol = protocol
        self.transaction: _Transaction | None = None

    def receivedHeader(self, helo, origin, recipients):
        return None

    def validateFrom(self, helo, origin):
        if self.relay.mail_reply is not None:
            code, text = self.relay.mail_reply
            raise smtp.SMTPBadSender(origin, code, text)
        self.transaction = _Transaction(str(origin), self.protocol.mail_parameters)
        return origin

    def validateTo(self, user):
        address = str(user.dest)
        if address.lower() in self.relay.rcpt_replies:
            code, text = self.relay.rcpt_replies[address.lower()]
            raise smtp.SMTPBadRcpt(address, code, text)
        transaction = self.transaction
        transaction.recipients.append(address)
        recording = len(transaction.recipients) == 1
        return lambda: _Message(self.relay, self.protocol, transaction, recording)


class _Realm:
    def __init__(self, relay: "Relay") -> None:
        self.relay = relay

    def requestAvatar(self, avatar_id, mind, *interfaces):
        protocol = self.relay.authenticating
        protocol.user = avatar_id.decode() if isinstance(avatar_id, bytes) else avatar_id
        return smtp.IMessageDelivery, _Delivery(self.relay, protocol), lambda: None


class _Server(smtp.ESMTP):
    user: str | None = None
    mail_parameters: tuple[str, ...] = ()

    def __init__(self, relay: "Relay") -> None:
        challengers = {b"LOGIN": LOGINCredentials, b"PLAIN": PLAINCredentials} if relay.credentials else {}
        super().__init__(challengers, relay.tls_context)
        self.relay = relay

    def connectionMade(self) -> None:
        super().connectionMade()
        self.relay.connections.add(self)
        if self.relay.credentials is None:
            self.delivery = _Delivery(self.relay, self)
        else:
            self.portal = self.relay.portal

    def extensions(self):
        offered = super().extensions()
        for keyword in self.relay.extensions:
            offered[keyword.encode()] = None
        return offered

    def _parse(self, rest: bytes, keyword: bytes):
        """
        (path, parameters) of a MAIL or RCPT argument, or None once the
        client has been answered with an error.
        """
        match = _COMMAND.match(rest)
        if match is None or match.group(1).upper() != keyword:
            self.sendCode(501, b"5.5.4 Syntax error")
            return None
        parameters = tuple(p.decode("ascii", "replace").upper() for p in match.group(3).split())
        return match.group(2), parameters

    def do_MAIL(self, rest):
        if self._from:
            self.sendCode(503, b"5.5.1 Only one sender per message, please")
            return
        self._to = []
        parsed = self._parse(rest, b"FROM")
        if parsed is None:
            return
        path, parameters = parsed
        allowed = {"BODY=7BIT"}
        if "8BITMIME" in self.relay.extensions:
            allowed.add("BODY=8BITMIME")
        if "SMTPUTF8" in self.relay.extensions:
            allowed.add("SMTPUTF8")
        if not set(parameters) <= allowed:
            self.sendCode(555, b"5.5.4 Unsupported MAIL parameter")
            return
        if not path.isascii() and "SMTPUTF8" not in parameters:
            self.sendCode(553, b"5.6.7 Non-ASCII address without SMTPUTF8")
            return
        self.mail_parameters = parameters
        validated = defer.maybeDeferred(self.validateFrom, self._helo, _Path(path))
        validated.addCallbacks(self._cbFromValidate, self._ebFromValidate)

    def do_RCPT(self, rest):
        if not self._from:
            self.sendCode(503, b"5.5.1 Must have sender before recipient")
            return
        parsed = self._parse(rest, b"TO")
        if parsed is None:
            return
        path, parameters = parsed
        if parameters or not path:
            self.sendCode(555 if parameters else 501, b"5.5.4 Unsupported RCPT")
            return
        if not path.isascii() and "SMTPUTF8" not in self.mail_parameters:
            self.sendCode(553, b"5.6.7 Non-ASCII address without SMTPUTF8")
            return
        user = SimpleNamespace(dest=_Path(path), helo=self._helo, protocol=self, orig=self._from)
        validated = defer.maybeDeferred(self.validateTo, user)
        validated.addCallbacks(self._cbToValidate, self._ebToValidate, callbackArgs=(user,))

    def ext_AUTH(self, rest):
        self.relay.authenticating = self
        return super().ext_AUTH(rest)

    def connectionLost(self, reason) -> None:
        self.relay.connections.discard(self)
        super().connectionLost(reason)


class _Factory(ServerFactory):
    noisy = False

    def __init__(self, relay: "Relay") -> None:
        self.relay = relay

    def buildProtocol(self, addr):
        protocol = _Server(self.relay)
        protocol.factory = self
        protocol.host = b"relay.test"
        return protocol


def self_signed(hostname: str = "relay.test") -> tuple[ssl.CertificateOptions, ssl.Certificate]:
    """
    Server TLS options with a fresh self-signed certificate for C{hostname},
    and the certificate (to trust it where verification is wanted).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pem_cert = certificate.public_bytes(serialization.Encoding.PEM)
    private = ssl.PrivateCertificate.loadPEM(pem_key + pem_cert)
    return private.options(), ssl.Certificate.loadPEM(pem_cert)


class Relay:
    """
    Start with C{await relay.start()}; C{relay.port} is its port number.
    """

    def __init__(self, reactor, *, credentials: tuple[str, str] | None = None,
                 tls_context=None, extensions: tuple[str, ...] = ()) -> None:
        self.reactor = reactor
        self.credentials = credentials
        self.tls_context = tls_context
        # Offered in EHLO besides AUTH and STARTTLS: "8BITMIME", "SMTPUTF8".
        self.extensions = tuple(extensions)
        self.messages: list[Received] = []
        self.rcpt_replies: dict[str, tuple[int, str]] = {}
        self.mail_reply: tuple[int, str] | None = None
        self.data_reply: tuple[int, str] | None = None
        self.connections: set[_Server] = set()
        self.authenticating: _Server | None = None
        self.port: int | None = None
        self._listening = None
        self._waiters: list[tuple[int, defer.Deferred]] = []
        self.portal = None
        if credentials is not None:
            checker = checkers.InMemoryUsernamePasswordDatabaseDontUse()
            checker.addUser(credentials[0].encode(), credentials[1].encode())
            self.portal = portal.Portal(_Realm(self), [checker])

    async def start(self) -> int:
        """
        Listen (again, on the same port when restarted).
        """
        self._listening = self.reactor.listenTCP(self.port or 0, _Factory(self), interface="127.0.0.1")
        self.port = self._listening.getHost().port
        return self.port

    async def stop(self) -> None:
        if self._listening is not None:
            await self._listening.stopListening()
            self._listening = None
        for connection in list(self.connections):
            connection.transport.abortConnection()

    def record(self, received: Received) -> None:
        self.messages.append(received)
        waiting, self._waiters = self._waiters, []
        for count, waiter in waiting:
            if len(self.messages) >= count:
                waiter.callback(self.messages)
            else:
                self._waiters.append((count, waiter))

    def wait_for(self, count: int) -> defer.Deferred:
        """
        Fires with the messages once C{count} have arrived.
        """
        if len(self.messages) >= count:
            return defer.succeed(self.messages)
        waiter = defer.Deferred()
        self._waiters.append((count, waiter))
        return waiter

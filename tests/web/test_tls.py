"""
Phones reach bluesync over HTTPS.  The service listens on a Twisted `ssl:`
endpoint (pyOpenSSL underneath) named in [server] listen; these tests run
the real service on such an endpoint with a certificate made for the test,
and speak to it as a phone would: the certificate is verified against the
name the phone was given, Basic auth travels inside TLS, and nothing older
than TLS 1.2 is negotiated.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
from base64 import b64encode
from pathlib import Path

import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor, threads
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from bluesync.passwords import hash_password
from bluesync.service import BluesyncService
from tests.support import DatabaseTestCase, test_config


def self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path, bytes]:
    """A key and a certificate for C{name} and 127.0.0.1, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path = directory / "key.pem"
    cert_path = directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(pem)
    return key_path, cert_path, pem


@implementer(IPolicyForHTTPS)
class _TrustOnly:
    """Trust exactly one certificate, and check the host name against it."""

    def __init__(self, pem: bytes) -> None:
        self.root = Certificate.loadPEM(pem)

    def creatorForNetloc(self, hostname, port):
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=self.root)


class TLSListenerTests(DatabaseTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        directory = Path(tempfile.mkdtemp(prefix="bluesync-tls-"))
        key, cert, self.pem = self_signed(directory)
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n"
            f"[server]\nlisten = ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}\n"
            "[mail]\nlmtp_listen =\n[admin]\nlisten =\n"
        )
        self.service = BluesyncService(config, reactor, exit_on_failure=False)
        self.service.startService()
        await self.service.started
        self.addCleanup(self.service.stopService)
        self.port = self.service.ports[0].getHost().port
        await self.store.create_account("alice@example.org", "Alice", hash_password("correct horse"))
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    def request(self, method: str, *, password: str | None = None, pem: bytes | None = None):
        agent = Agent(reactor, contextFactory=_TrustOnly(pem or self.pem), pool=self.pool)
        headers = {}
        if password is not None:
            headers["Authorization"] = ["Basic " + b64encode(f"alice@example.org:{password}".encode()).decode()]
        return treq.request(method, f"https://localhost:{self.port}/Microsoft-Server-ActiveSync",
                            headers=headers, agent=agent)

    async def test_options_over_tls(self):
        """A phone that trusts the certificate gets OPTIONS answered over HTTPS, and 401 without a password."""
        response = await self.request("OPTIONS", password="correct horse")
        await response.content()
        self.assertEqual(response.code, 200)
        self.assertIn("16.1", response.headers.getRawHeaders("MS-ASProtocolVersions")[0])
        refused = await self.request("OPTIONS")
        await refused.content()
        self.assertEqual(refused.code, 401)
        self.assertTrue(refused.headers.getRawHeaders("WWW-Authenticate")[0].startswith("Basic"))

    async def test_certificate_is_verified(self):
        """A client trusting another certificate refuses the connection: the server proves its name."""
        _, _, other = self_signed(Path(tempfile.mkdtemp(prefix="bluesync-tls-other-")))
        with self.assertRaises(Exception) as raised:
            response = await self.request("OPTIONS", password="correct horse", pem=other)
            await response.content()
        self.assertIn("certificate verify failed", repr(raised.exception))

    async def test_tls_1_2_or_newer(self):
        """The handshake settles on TLS 1.2 or 1.3; a client capped below 1.2 is refused."""
        def handshake(maximum):
            context = ssl.create_default_context(cadata=self.pem.decode())
            if maximum is not None:
                # Let this client really offer old versions, so a refusal
                # is the server's doing.
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
                context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                context.maximum_version = maximum
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.version()

        self.assertIn(await threads.deferToThread(handshake, None), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(await threads.deferToThread(handshake, ssl.TLSVersion.TLSv1_2), "TLSv1.2")
        with self.assertRaises(ssl.SSLError):
            await threads.deferToThread(handshake, ssl.TLSVersion.TLSv1_1)

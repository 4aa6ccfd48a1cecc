"""
HTTP Basic authentication through twisted.cred.

A L{Portal} with an L{AccountChecker} on the accounts table turns the
Authorization header into an L{Account}; the realm hands back the avatar
resource for that account (the ActiveSync endpoint).  We do not use
C{HTTPAuthSessionWrapper} because it answers every checker error with a 500:
here a database outage must be a 503 that phones retry, and only a refusal
is a 401.

The checker returns the L{Account} itself as the avatar ID.  Portal passes
the ID through untouched, and this spares the realm a second query per
request.

Failed logins are throttled per account and client address
(L{bluesync.web.throttle}): a throttled attempt is answered 503 with
Retry-After before its password is even checked.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace

from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import IResource
from zope.interface import implementer

from bluesync.passwords import VerifiedCache
from bluesync.store.accounts import AccountStore
from bluesync.store.database import DATABASE_DOWN
from bluesync.web.rendering import Response, render_async
from bluesync.web.throttle import LoginThrottle

log = Logger()


class DisabledAccount(error.UnauthorizedLogin):
    """
    The password is right but the account is disabled (HTTP 403).
    """


def login_name(raw: str) -> str:
    """
    The account address in a Basic user name.  Windows-style clients send
    DOMAIN\\user; the domain part carries nothing for us.
    """
    if "\\" in raw:
        raw = raw.rsplit("\\", 1)[1]
    return raw.strip().lower()


@implementer(ICredentialsChecker)
class AccountChecker:
    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, accounts: AccountStore, cache: VerifiedCache | None = None) -> None:
        self._accounts = accounts
        self._cache = cache or VerifiedCache()

    def requestAvatarId(self, creds):
        return Deferred.fromCoroutine(self._check(creds))

    async def _check(self, creds):
        try:
            username = creds.username.decode("utf-8")
            password = creds.password.decode("utf-8")
        except UnicodeDecodeError:
            raise error.UnauthorizedLogin("credentials are not UTF-8") from None
        account = await self._accounts.by_address(login_name(username))
        if account is None:
            raise error.UnauthorizedLogin(f"no account {login_name(username)}")
        if not await self._cache.verify(account.password_hash, password):
            raise error.UnauthorizedLogin(f"wrong password for {account.address}")
        if account.disabled:
            raise DisabledAccount(f"account {account.address} is disabled")
        # Nothing after the login needs the hash, and a held Ping keeps its
        # account for minutes.
        return replace(account, password_hash="")


@implementer(IRealm)
class AccountRealm:
    """
    Gives each authenticated account its resource, built by C{factory}:
    the ActiveSync endpoint for IResource, and for each interface of
    C{others} (Autodiscover) the endpoint its factory builds, so that every
    endpoint phones sign in to shares one checker and one password cache.
    """

    def __init__(self, factory, others=None) -> None:
        self._factories = {IResource: factory, **(others or {})}

    def requestAvatar(self, account, mind, *interfaces):
        for interface in interfaces:
            factory = self._factories.get(interface)
            if factory is not None:
                return interface, factory(account), lambda: None
        raise NotImplementedError(f"no avatar for {interfaces}")


def _basic_credentials(request) -> credentials.UsernamePassword | None:
    header = request.getHeader(b"authorization")
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return credentials.UsernamePassword(username, password)


def client_address(request, trusted_proxies=()) -> str:
    """
    The address of the client: the peer, or behind a trusted reverse proxy
    the last X-Forwarded-For hop that is not itself a trusted proxy.
    """
    peer = request.getClientAddress()
    address = str(getattr(peer, "host", peer))
    if address not in trusted_proxies:
        return address
    forwarded = request.getHeader(b"x-forwarded-for")
    if not forwarded:
        return address
    for hop in reversed(forwarded.decode("latin-1").split(",")):
        hop = hop.strip()
        if hop and hop not in trusted_proxies:
            return hop
    return address


class AuthenticatedResource:
    """
    A leaf resource: authenticates, then lets the account's resource render.

    @param throttle: failed-login throttling (None: none).
    @param interface: the avatar interface asked of the portal's realm.
    """

    isLeaf = True

    def __init__(self, portal: Portal, realm_name: str, throttle: LoginThrottle | None = None,
                 trusted_proxies=(), interface=IResource) -> None:
        self._portal = portal
        self._interface = interface
        self._challenge = f'Basic realm="{realm_name}", charset="UTF-8"'
        self._throttle = throttle
        self._trusted_proxies = frozenset(trusted_proxies)

    def getChildWithDefault(self, name, request):
        return self

    def putChild(self, path, child):
        raise NotImplementedError()

    def render(self, request):
        return render_async(request, lambda: self._render(request))

    def _unauthorized(self) -> Response:
        return Response(401, b"", {"www-authenticate": self._challenge})

    async def _render(self, request) -> Response:
        creds = _basic_credentials(request)
        if creds is None:
            return self._unauthorized()
        name = login_name(creds.username.decode("utf-8", "replace"))
        address = client_address(request, self._trusted_proxies)
        throttle = self._throttle
        if throttle is not None:
            wait = throttle.wait(name, address)
            if wait > 0:
                log.info("login of {name} from {address} refused unchecked: throttled for {seconds:.0f}s more",
                         name=name, address=address, seconds=wait)
                return Response(503, b"", {"retry-after": str(int(wait + 0.999))})
        try:
            _, avatar, _ = await self._portal.login(creds, None, self._interface)
        except DisabledAccount as e:
            log.info("refused login: {reason}", reason=str(e))
            return Response(403)
        except error.UnauthorizedLogin as e:
            log.info("failed login from {peer}: {reason}", peer=address, reason=str(e))
            if throttle is not None:
                throttle.failed(name, address)
            return self._unauthorized()
        except DATABASE_DOWN as e:
            log.warn("login impossible, database unavailable: {error}", error=str(e))
            return Response(503, b"", {"retry-after": "30"})
        if throttle is not None:
            throttle.succeeded(name, address)
        # This frame lasts as long as the request (minutes for a held Ping):
        # it need not keep the password.
        del creds
        return await avatar.respond(request)


def make_portal(accounts: AccountStore, factory, others=None) -> Portal:
    return Portal(AccountRealm(factory, others), [AccountChecker(accounts)])

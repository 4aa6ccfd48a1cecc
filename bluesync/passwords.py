"""
Password hashing with Argon2id, and a cache that keeps HTTP Basic auth cheap.

EAS clients send the password with every request, and a phone holding Pings
sends one every few minutes for days.  Argon2 is deliberately slow (tens of
milliseconds and 64 MiB per check), so verifying it on every request would
cap a process at a few dozen requests per second and block the reactor.
Checks therefore run in a thread, and a success is remembered for a while,
keyed by an HMAC of the password under a per-process random key (never the
password itself) together with the stored hash, so a password change
invalidates it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Callable

from twisted.internet.defer import Deferred, succeed

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """
    Blocking; call it from a thread inside the reactor.
    """
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """
    Remembers successful verifications for C{lifetime} seconds.  Bounded:
    when full, the oldest entries go first.
    """

    def __init__(self, lifetime: float = 900.0, size: int = 100_000,
                 clock: Callable[[], float] = time.monotonic,
                 verifier: Callable[[str, str], bool] = verify_password) -> None:
        self._key = os.urandom(32)
        self._lifetime = lifetime
        self._size = size
        self._clock = clock
        self._verifier = verifier
        self._entries: dict[bytes, float] = {}
        self._pending: dict[bytes, list[Deferred]] = {}

    def verify(self, password_hash: str, password: str) -> Deferred:
        """
        Whether C{password} matches, as a Deferred: from the cache, or from
        one Argon2 check in a thread shared by every caller asking the same
        question meanwhile.  After a restart thousands of phones log in at
        once, often several per account; without sharing, each would pay
        its own Argon2 run.
        """
        if self.known(password_hash, password):
            return succeed(True)
        token = self._token(password_hash, password)
        waiters = self._pending.get(token)
        if waiters is None:
            from twisted.internet import threads

            waiters = self._pending[token] = []
            check = threads.deferToThread(self._verifier, password_hash, password)
            check.addBoth(self._settle, token, password_hash, password)
        waiter = Deferred()
        waiters.append(waiter)
        return waiter

    def _settle(self, result, token: bytes, password_hash: str, password: str) -> None:
        if result is True:
            self.remember(password_hash, password)
        for waiter in self._pending.pop(token, []):
            if not waiter.called:
                if isinstance(result, bool):
                    waiter.callback(result)
                else:
                    waiter.errback(result)

    def _token(self, password_hash: str, password: str) -> bytes:
        message = password_hash.encode() + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, password_hash: str, password: str) -> bool:
        token = self._token(password_hash, password)
        expiry = self._entries.get(token)
        if expiry is None:
            return False
        if expiry < self._clock():
            del self._entries[token]
            return False
        return True

    def remember(self, password_hash: str, password: str) -> None:
        if len(self._entries) >= self._size:
            for token in list(self._entries)[: max(1, self._size // 10)]:
                del self._entries[token]
        self._entries[self._token(password_hash, password)] = self._clock() + self._lifetime

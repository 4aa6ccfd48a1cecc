"""
Sessions of the admin page: a random id in a cookie (HttpOnly,
SameSite=Strict) naming an entry of this process's memory, which holds the
administrator's name, the CSRF token every form of the session carries,
and a one-shot message for the next page.

The admin page is one listener of one process, so memory is enough: a
restart logs administrators out, which costs them a login.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

# Sessions kept at most; the oldest go first beyond.
MAX_SESSIONS = 1000


@dataclass
class Session:
    id: str
    name: str
    csrf: str
    expires: float
    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf.encode(), token.encode())

    def take_messages(self) -> tuple[list[str], list[str]]:
        """
        The messages and errors for the next page, once.
        """
        taken = (self.messages, self.errors)
        self.messages, self.errors = [], []
        return taken


class Sessions:
    """
    @param lifetime: seconds a session lasts from login.
    @param clock: an C{IReactorTime}.
    """

    def __init__(self, lifetime: float, clock) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, name: str) -> Session:
        now = self._clock.seconds()
        for key, session in list(self._sessions.items()):
            if session.expires <= now:
                del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[min(self._sessions, key=lambda key: self._sessions[key].expires)]
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32), now + self._lifetime)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= self._clock.seconds():
            del self._sessions[session_id]
            return None
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

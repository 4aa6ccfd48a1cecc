"""
What every command handler receives.

L{ServerContext} holds the long-lived parts (store, configuration, clock,
notifier) built once by the service; L{CommandContext} adds what belongs to
one request.  Handlers take these explicitly instead of importing globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bluesync.config import Config
from bluesync.eas.request import EASRequest
from bluesync.store.accounts import Account


@dataclass(frozen=True)
class ServerContext:
    config: Config
    store: Any
    clock: Any
    # push.notifier.Notifier once push is wired in; held Pings and Sync-Waits wait on it.
    notifier: Any = None
    # mail submission (SendMail and friends) once wired in.
    outbound: Any = None
    # bluesync.devices.guard.Guard: per-account concurrency and autoblock
    # detection (None: no such limits).
    guard: Any = None


@dataclass
class CommandContext:
    server: ServerContext
    account: Account
    request: EASRequest
    http_request: Any
    body: bytes
    document: Any = None
    device: Any = None

    @property
    def version(self) -> str:
        return self.request.version

    @property
    def version_number(self) -> float:
        return float(self.request.version)

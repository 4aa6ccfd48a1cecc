"""
makeService(config): the running server as a MultiService.

Start-up is asynchronous: the database comes first (the embedded cluster is
started if no DSN is configured, then the migrations), and only then do the
listeners open, so no request ever meets a half-started server.  A start-up
failure is logged as one line and the process exits non-zero, so systemd's
Restart=on-failure sees it.

Shutdown runs the other way: listeners stop accepting, held requests are
answered (the notifier's stop hooks), then the pool and the embedded
cluster close.
"""

from __future__ import annotations

import os
import sys
from typing import Awaitable, Callable

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.logger import Logger

from bluesync.config import Config
from bluesync.devices.guard import Guard
from bluesync.eas.context import ServerContext
from bluesync.mail.lmtp import LMTPFactory
from bluesync.mail.outbound import OutboundQueue
from bluesync.mail.rule_expiry import RuleExpiry
from bluesync.push.listener import ChangeListener
from bluesync.push.notifier import Notifier
from bluesync.store.store import OpenStore, open_store
from bluesync.web.admin import build_admin_site
from bluesync.web.site import build_site

log = Logger()


class BluesyncService(MultiService):
    def __init__(self, config: Config, reactor=None, exit_on_failure: bool = True) -> None:
        super().__init__()
        self.exit_on_failure = exit_on_failure
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        self.opened: OpenStore | None = None
        self.context: ServerContext | None = None
        self.ports: list = []
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self.started = defer.Deferred()
        self._starting: defer.Deferred | None = None

    def startService(self) -> None:
        super().startService()
        self._starting = defer.Deferred.fromCoroutine(self._start())
        self._starting.addCallbacks(self.started.callback, self._failed)

    async def _start(self) -> None:
        self.opened = await open_store(self.config)
        notifier = await self._start_push()
        # Stops after the ports (no new submissions), before the database.
        outbound = OutboundQueue(self.opened.store, self.config.mail, self.reactor)
        self.stop_hooks.append(outbound.stop)
        self.context = ServerContext(
            config=self.config, store=self.opened.store, clock=self.reactor, notifier=notifier,
            outbound=outbound, guard=Guard(self.config.devices, self.reactor, notifier),
        )
        await self._listen("[server] listen", self.config.server.listen, build_site(self.context), "EAS")
        await self._start_lmtp()
        # Resumes the mail queued before a restart.
        await outbound.start()
        # Registered last, so it stops first: a purge in flight ends before the database closes.
        expiry = RuleExpiry(self.opened.store, self.config.mail.conversation_rule_days, self.reactor)
        expiry.start()
        self.stop_hooks.append(expiry.stop)
        await self._start_admin()
        self._announce()

    async def _start_push(self) -> Notifier:
        """
        The notifier that holds Pings and Sync waits, fed by its own LISTEN
        connection.  Its stop hook is registered first, so it runs last,
        after the ports have stopped and deliveries in flight have
        committed: every held request is answered ("nothing changed"), so
        phones reconnect at once, before the database closes.
        """
        notifier = Notifier(self.reactor)
        listener = ChangeListener(self.opened.store.database.dsn, notifier, self.reactor)
        await listener.start()

        async def stop() -> None:
            answered = notifier.stop()
            await listener.stop()
            if answered:
                log.info("answered {count} held requests before stopping", count=answered)
                # Answers are only buffered so far; give the reactor a turn
                # to write them before shutdown drops every connection.
                await deferLater(self.reactor, 0.1, lambda: None)

        self.stop_hooks.append(stop)
        return notifier

    async def _start_lmtp(self) -> None:
        lmtp = LMTPFactory(self.opened.store, self.config.mail, self.reactor)
        # Runs after the ports stop: lets deliveries in flight commit
        # before the database closes.
        self.stop_hooks.append(lmtp.stop)
        await self._listen("[mail] lmtp_listen", self.config.mail.lmtp_listen, lmtp, "LMTP")

    async def _start_admin(self) -> None:
        """
        The admin page on its own listener(s); none when [admin] listen is empty.
        """
        listen = self.config.admin.listen
        if not listen:
            return
        await self._listen("[admin] listen", listen, build_admin_site(self.context), "admin page")
        if not await self.opened.store.admins.list():
            log.info("no administrator can log in to the admin page yet: bluesync-admin admin add NAME")

    async def _listen(self, setting: str, descriptions, factory, what: str) -> None:
        """
        Open every endpoint of C{setting} for C{factory}.  A port that
        cannot be opened stops start-up with one line naming the setting;
        the ports opened are the first thing L{_stop} closes.
        """
        for description in descriptions:
            try:
                port = await serverFromString(self.reactor, description).listen(factory)
            except Exception as e:
                raise StartupError(f"{setting}: cannot listen on {description}: {e}") from None
            self.ports.append(port)
            address = port.getHost()
            log.info(
                "bluesync {what} listening on {description} ({host}:{port})",
                what=what,
                description=description,
                host=getattr(address, "host", address),
                port=getattr(address, "port", ""),
            )

    def _announce(self) -> None:
        url = self.config.server.public_url
        if not url and self.ports:
            address = self.ports[0].getHost()
            host = getattr(address, "host", "localhost")
            url = f"http://{host}:{getattr(address, 'port', '')}"
        log.info(
            "phones connect to {url}/Microsoft-Server-ActiveSync; "
            "add an account with: bluesync-admin user add alice@example.org --name 'Alice Martin'",
            url=url.rstrip("/"),
        )

    def _failed(self, failure) -> None:
        message = failure.getErrorMessage() if failure.check(StartupError, *_CLEAN_ERRORS) else None
        if message is None:
            log.failure("bluesync failed to start", failure)
        else:
            log.critical("bluesync failed to start: {message}", message=message)
        self.started.errback(failure)
        self.started.addErrback(lambda _: None)
        if self.exit_on_failure and self.reactor.running:
            self.reactor.addSystemEventTrigger("after", "shutdown", _exit_failed)
            self.reactor.stop()

    async def _stop(self) -> None:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        for port in self.ports:
            await port.stopListening()
        self.ports = []
        for hook in reversed(self.stop_hooks):
            try:
                await hook()
            except Exception:
                log.failure("error while stopping")
        if self.opened is not None:
            await self.opened.close()
            self.opened = None

    def stopService(self):
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())


class StartupError(Exception):
    """
    Start-up cannot proceed; the message is for the administrator.
    """


def _clean_errors() -> tuple[type, ...]:
    from bluesync.store.database import DatabaseUnavailable
    from bluesync.store.embedded import EmbeddedPostgresError
    from bluesync.store.migrations import SchemaError

    return (DatabaseUnavailable, EmbeddedPostgresError, SchemaError)


_CLEAN_ERRORS = _clean_errors()


def _exit_failed() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def makeService(config: Config, reactor=None) -> BluesyncService:
    return BluesyncService(config, reactor)

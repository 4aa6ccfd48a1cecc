"""
The outbound queue: mail for other domains, handed to the SMTP relay.

A message is accepted once its queue row is committed (store/outbound.py);
this service then delivers it with twisted.mail.smtp, one connection per
message, STARTTLS and AUTH as [mail] says.  Per recipient, the relay's
answer decides: 2xx delivered, 5xx failed for good, anything else (4xx, no
connection, a timeout, a TLS or AUTH failure) tried again after the next
of [mail] retry_delays, until [mail] give_up_after has passed since the
message was accepted.  Recipients that fail for good get the sender an
RFC 3464 non-delivery report in their Inbox, written in the same
transaction that records the failure.

Nothing polls per message.  The queue runs when woken: right after a
submission commits, at start (resuming what is due), and by one reactor
timer set for the earliest due message (re-checked at least every
SWEEP_INTERVAL, which is what finds rows a crashed process on the same
database left behind).  While the relay is unreachable, one attempt per
due time finds out; the other due messages wait with it.

What goes over the wire follows the relay's EHLO answer (transmission.py):
BODY=8BITMIME and SMTPUTF8 when offered and needed; without 8BITMIME the
message's 8-bit parts are re-encoded, without SMTPUTF8 its header fields
downgraded, and only an address that cannot be written in ASCII fails
(553 5.6.7, with a report like any other refusal).

Message bodies and the relay password are never logged: the SMTP client
runs with its session log off, and errors are reported from their reply
code and text only.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from twisted.internet import defer, ssl
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.mail import smtp
from twisted.python.failure import Failure as TwistedFailure

from bluesync.config import MailConfig
from bluesync.mail import transmission
from bluesync.mail.compose import Failure, delivery_report, enhanced_status
from bluesync.mail.delivery import new_email_item
from bluesync.mail.transmission import Transmission
from bluesync.store.folders import INBOX
from bluesync.store.outbound import AttemptResult, Copy, QueuedMessage

log = Logger()

UTC = timezone.utc
# The longest the queue sleeps without looking at the table.
SWEEP_INTERVAL = 900.0
# After an unexpected error (the database is down), look again after this.
ERROR_RETRY = 30.0
# How long a stopping server lets an SMTP exchange in flight finish.
STOP_GRACE = 10.0
# Finished rows and remembered ClientIds are kept this long.
KEEP_FINISHED = timedelta(days=30)
PURGE_INTERVAL = 86400.0


class _Path(smtp.Address):
    """
    An envelope path as L{transmission.plan} wrote it (UTF-8 under
    SMTPUTF8, which twisted.mail.smtp's own Address refuses), named by the
    queued recipient in the relay's answers.
    """

    def __init__(self, recipient: str, wire: bytes) -> None:
        self.recipient = recipient
        self.wire = wire
        self.local, _, self.domain = wire.rpartition(b"@")

    def __bytes__(self) -> bytes:
        return self.wire

    def __str__(self) -> str:
        return self.recipient

    def __add__(self, other: bytes) -> bytes:
        # The sender's error summary writes each refused path as bytes.
        return self.wire + other


class _Sender(smtp.ESMTPSender):
    """
    twisted.mail.smtp's sender, told what the relay offers: the EHLO
    answer decides the message's wire form and the MAIL FROM parameters
    (twisted.mail.smtp sends none of its own).
    """

    # Off: the session log would hold the AUTH exchange, and it ends up in
    # the text of client errors.
    debug = False
    _extensions: frozenset[str] = frozenset()

    def esmtpState_serverConfig(self, code, resp):
        # The last EHLO answer counts (the one after STARTTLS, if any); a
        # relay answering only HELO offers nothing.
        keywords = (line.split(None, 1) for line in resp.splitlines()[1:])
        self._extensions = frozenset(words[0].decode("ascii", "replace").upper() for words in keywords if words)
        return super().esmtpState_serverConfig(code, resp)

    def smtpState_from(self, code, resp):
        factory = self.factory
        if factory.transmission is not None:
            # Asked for a next message: there is none, so this QUITs.
            return super().smtpState_from(code, resp)
        plan = factory.plan(self._extensions)
        self.done = 1
        if not plan.recipients:
            # Nothing may go to this relay: no mail transaction at all.
            factory.sendFinished = True
            factory.result.callback((0, []))
            self._disconnectFromServer()
            return None
        self._from = plan.sender
        self._failresponse = self.smtpTransferFailed
        self._expected = [250]
        self._okresponse = self.smtpState_to
        self.sendLine(b"MAIL FROM:<" + plan.sender + b">" + b"".join(b" " + p for p in plan.parameters))
        return None


class _SenderFactory(smtp.ESMTPSenderFactory):
    protocol = _Sender
    noisy = False
    transmission: Transmission | None = None

    def __init__(self, username, password, message: QueuedMessage, deferred, **kwargs) -> None:
        # The envelope and the data are only known once the relay has
        # answered EHLO (L{plan}); twisted.mail.smtp's ASCII-only parsing
        # of them is bypassed.
        super().__init__(username, password, "", [], None, deferred, **kwargs)
        self.message = message

    def plan(self, extensions: frozenset[str]) -> Transmission:
        """
        Fix the message's wire form for this relay, once per session.
        """
        message = self.message
        plan = transmission.plan(message.sender, list(message.recipients), message.message, extensions)
        self.transmission = plan
        self.toEmail = [_Path(recipient, wire) for recipient, wire in plan.recipients.items()]
        self.file = _DataFile(wire_data(plan.data))
        return plan


class _DataFile:
    """
    The message for twisted.mail.smtp, which sends it in 16 KB chunks and
    dot-stuffs each chunk alone: a chunk must never end with a line end,
    or a line starting with "." at the start of the next one would go out
    unstuffed and be cut short by the relay (RFC 5321 4.5.2).
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        start = self._offset
        end = len(self._data) if size is None or size < 0 else min(start + size, len(self._data))
        while end < len(self._data) and self._data[end - 1:end] == b"\n":
            end += 1
        self._offset = end
        return self._data[start:end]

    def seek(self, offset: int, whence: int = 0) -> None:
        self._offset = offset

    def close(self) -> None:
        pass


class _RelayUnavailable(Exception):
    """
    No per-recipient answer: the relay could not be reached or refused the
    session (connection, greeting, TLS, AUTH, timeout).
    """


def wire_data(message: bytes) -> bytes:
    """
    The message with "\\n" line ends, as twisted.mail.smtp wants it (it
    sends "\\r\\n"), ending with a line end.
    """
    data = message.replace(b"\r\n", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


class OutboundQueue:
    """
    The service that drains the outbound table.  C{clock} times the retries
    (a task.Clock in tests); C{reactor} makes the connections.
    """

    def __init__(self, store, config: MailConfig, reactor=None, clock=None, trust_root=None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.store = store
        self.config = config
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.trust_root = trust_root
        self._timer = None
        self._running: Deferred | None = None
        self._again = False
        self._stopping = False
        self._relay_down_until: float | None = None
        self._smtp: Deferred | None = None
        self._idle: list[Deferred] = []
        self._warned_no_relay = False
        self._purged_at: float | None = None

    @property
    def relay_configured(self) -> bool:
        return bool(self.config.relay_host)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    # -- running -----------------------------------------------------------

    async def start(self) -> None:
        """
        Resume whatever is due.
        """
        if not self.relay_configured:
            log.info("no SMTP relay: mail to other domains is refused until [mail] relay_host is set")
        self.wake()

    async def _purge(self) -> None:
        """
        Forget finished rows and old ClientIds, at most once a day (the
        first run after start, then from the timer runs).
        """
        if self._purged_at is not None and self.clock.seconds() - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = self.clock.seconds()
        purged = await self.store.outbound.purge(self.now() - KEEP_FINISHED)
        if purged:
            log.info("outbound: forgot {count} finished messages", count=purged)

    def wake(self) -> None:
        """
        A message was just queued: try it now, even while the relay is
        thought to be down (it may be back; one attempt tells).
        """
        self._relay_down_until = None
        self._tick()

    def _tick(self) -> None:
        """
        Look for due messages now (from wake, or from the timer).
        """
        if self._stopping:
            return
        if self._running is not None:
            self._again = True
            return
        self._cancel_timer()
        self._running = Deferred.fromCoroutine(self._run())
        self._running.addBoth(self._finished)

    def idle(self) -> Deferred:
        """
        A Deferred that fires once no run is in progress (at once if none).
        """
        if self._running is None:
            return defer.succeed(None)
        waiter = Deferred()
        self._idle.append(waiter)
        return waiter

    async def stop(self) -> None:
        """
        Stop taking messages; let an SMTP exchange in flight finish for up
        to STOP_GRACE seconds, then abort it (its message stays queued).
        """
        self._stopping = True
        self._cancel_timer()
        if self._running is None:
            return
        abort = self.clock.callLater(STOP_GRACE, self._abort_smtp)
        try:
            await self.idle()
        finally:
            if abort.active():
                abort.cancel()

    def _abort_smtp(self) -> None:
        if self._smtp is not None:
            self._smtp.cancel()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finished(self, result) -> None:
        self._running = None
        if isinstance(result, TwistedFailure):
            if not (self._stopping and result.check(CancelledError)):
                log.failure("outbound queue run failed; trying again in {delay}s", result, delay=ERROR_RETRY)
            if not self._stopping:
                self._timer = self.clock.callLater(ERROR_RETRY, self._tick)
        waiters, self._idle = self._idle, []
        for waiter in waiters:
            waiter.callback(None)
        if self._again and not self._stopping and (self._timer is None or not self._timer.active()):
            self._tick()

    async def _run(self) -> None:
        await self._purge()
        while not self._stopping:
            self._again = False
            if self._relay_down_until is not None and self.clock.seconds() < self._relay_down_until:
                break
            self._relay_down_until = None
            if not await self.store.outbound.attempt(self.now(), self._attempt):
                if self._again:
                    continue
                break
        if not self._stopping:
            await self._schedule()

    async def _schedule(self) -> None:
        due = await self.store.outbound.next_due()
        if self._stopping:
            # stop() ran while next_due() was in flight: no timer may
            # outlive the service.
            return
        now = self.clock.seconds()
        delay = SWEEP_INTERVAL
        if due is not None:
            delay = min(delay, max(0.0, due.timestamp() - now))
        if self._relay_down_until is not None:
            delay = max(delay, self._relay_down_until - now)
        self._cancel_timer()
        self._timer = self.clock.callLater(delay, self._tick)

    # -- one message -------------------------------------------------------

    async def _attempt(self, message: QueuedMessage) -> AttemptResult:
        now = self.now()
        answers: dict[str, tuple[int, str]] = {}
        error = ""
        if not self.relay_configured:
            error = "no SMTP relay configured ([mail] relay_host)"
            if not self._warned_no_relay:
                log.warn("outbound: messages are queued but {setting} is empty", setting="[mail] relay_host")
                self._warned_no_relay = True
        else:
            try:
                answers.update(await self._send(message))
            except _RelayUnavailable as e:
                error = str(e)
        delivered, failed, pending = [], [], []
        for recipient in message.recipients:
            code, text = answers.get(recipient, (0, error))
            if 200 <= code < 300:
                delivered.append(recipient)
            elif 500 <= code < 600:
                failed.append(Failure(recipient, enhanced_status(code, text), f"smtp; {code} {text}"))
            else:
                pending.append(recipient)
                error = error or (f"{code} {text}" if code else text)
        next_attempt = None
        if pending:
            deadline = message.created_at + timedelta(seconds=self.config.give_up_after)
            if now >= deadline:
                log.info("outbound {id}: giving up on {count} recipients after {attempts} attempts: {error}",
                         id=message.id, count=len(pending), attempts=message.attempts + 1, error=error)
                failed += [Failure(r, "4.4.7", f"x-bluesync; {error}" if error else "") for r in pending]
                pending = []
            else:
                delays = self.config.retry_delays
                delay = delays[min(message.attempts, len(delays) - 1)]
                next_attempt = min(now + timedelta(seconds=delay), deadline)
                if not delivered and not failed and error and not answers:
                    self._relay_down_until = next_attempt.timestamp()
                log.info("outbound {id}: {count} recipients deferred ({error}); next attempt at {when}",
                         id=message.id, count=len(pending), error=error, when=next_attempt.isoformat())
        if delivered:
            log.info("outbound {id}: relayed to {count} recipients via {relay}", id=message.id,
                     count=len(delivered), relay=self.config.relay_host)
        report = None
        if failed:
            log.info("outbound {id}: {count} recipients failed: {failures}", id=message.id, count=len(failed),
                     failures="; ".join(f"{f.recipient} {f.status}" for f in failed))
            report = await self._report(message, failed, now)
        return AttemptResult(
            delivered=tuple(delivered),
            failed=tuple({"recipient": f.recipient, "status": f.status, "diagnostic": f.diagnostic}
                         for f in failed),
            pending=tuple(pending),
            error=error,
            next_attempt_at=next_attempt,
            report=report,
        )

    async def _report(self, message: QueuedMessage, failed: list[Failure], now: datetime) -> Copy | None:
        account = await self.store.accounts.by_id(message.account_id)
        inbox = await self.store.folders.by_type(message.account_id, INBOX)
        if account is None or inbox is None:
            log.warn("outbound {id}: no Inbox for the non-delivery report", id=message.id)
            return None
        raw = delivery_report(
            original=message.message, failures=failed, recipient=account.address,
            hostname=self.config.hostname, arrival=message.created_at, now=now,
            remote_mta=self.config.relay_host,
        )
        return Copy(account.id, inbox.id, new_email_item(raw, now))

    async def _send(self, message: QueuedMessage) -> dict[str, tuple[int, str]]:
        """
        One SMTP session with the relay; each recipient's (code, text),
        including those refused before sending because the relay cannot
        take their address (transmission.py).

        @raise _RelayUnavailable: no per-recipient answer was obtained.
        """
        config = self.config
        result: Deferred = Deferred(lambda d: self._cancel_session(factory, connector))
        context = None
        if config.relay_starttls == "opportunistic":
            # Encrypt when offered, like an MTA's "may" level: a relay with
            # a self-signed certificate still gets the mail.
            context = ssl.CertificateOptions(verify=False)
        elif config.relay_starttls == "required":
            context = ssl.optionsForClientTLS(config.relay_host, trustRoot=self.trust_root)
        username = config.relay_username.encode("utf-8") or None
        factory = _SenderFactory(
            username,
            config.relay_password.encode("utf-8") if username else None,
            message,
            result,
            retries=0,
            timeout=config.relay_timeout,
            contextFactory=context,
            heloFallback=username is None and config.relay_starttls != "required",
            requireAuthentication=username is not None,
            requireTransportSecurity=config.relay_starttls == "required",
        )
        factory.domain = config.hostname.encode("idna")
        connector = self.reactor.connectTCP(config.relay_host, config.relay_port, factory,
                                            timeout=config.relay_timeout)
        self._smtp = result
        try:
            _, addresses = await result
            code, resp = 250, b""
        except smtp.SMTPDeliveryError as e:
            addresses, code, resp = e.addresses or [], e.code, e.resp
        except CancelledError:
            raise
        except smtp.SMTPClientError as e:
            raise _RelayUnavailable(_reply_text(e.code, e.resp)) from None
        except Exception as e:
            raise _RelayUnavailable(f"{type(e).__name__}: {e}") from None
        finally:
            self._smtp = None
        plan = factory.transmission
        answers = _answers(list(plan.recipients), addresses, code, resp)
        answers.update(plan.refused)
        return answers

    @staticmethod
    def _cancel_session(factory, connector) -> None:
        factory.sendFinished = True
        if factory.currentProtocol is not None and factory.currentProtocol.transport is not None:
            factory.currentProtocol.transport.abortConnection()
        else:
            connector.disconnect()


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def _reply_text(code: int, resp) -> str:
    text = _text(resp)
    return f"{code} {text}" if code and code > 0 else text


def _answers(recipients: list[str], addresses, final_code: int, final_resp) -> dict[str, tuple[int, str]]:
    """
    Each recipient's outcome from the RCPT answers and the final answer
    (to DATA, or to MAIL FROM when no RCPT was sent): an accepted
    recipient takes the final answer.
    """
    rcpt = {_text(address).lower(): (code, _text(resp)) for address, code, resp in addresses}
    answers = {}
    for recipient in recipients:
        code, text = rcpt.get(recipient.lower(), (final_code, _text(final_resp)))
        if 200 <= code < 300:
            code, text = final_code, _text(final_resp)
        if code is None or code < 0:
            code = 0
        answers[recipient] = (code, text)
    return answers

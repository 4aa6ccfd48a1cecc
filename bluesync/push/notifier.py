"""
Where held requests (Ping, Sync with Wait) wait for a change.

A waiter is a Deferred, one reactor timer and an entry in two dicts: no
thread, no polling and no database connection, so a process can hold tens
of thousands of them.  A notification is only a hint: the woken request
re-reads the store and either answers or waits again.  That keeps this
module ignorant of modseqs and sync states, and makes a spurious or
duplicated wake-up harmless.

Waiters are registered per account and each carries the set of folders it
watches; a folder notification fires the account's waiters that watch that
folder.  An account has a handful of devices, so filtering its few waiters
is cheaper than keeping a set per (account, folder) pair, which would cost
every held Ping a dozen extra set and tuple objects.

One device key holds at most one waiter: a second wait with the same key
fires the first with L{SUPERSEDED} (the phone opened a new request and no
longer reads the old one).  The key is the device's row id (Ping), or a
tuple ending with it when a device may hold one waiter per kind of request
(Sync with Wait uses C{("sync", device_pk)}); L{Notifier.notify_device}
reaches every waiter of the device whatever the kind.

Superseding across processes.  A phone whose connection died silently
(NAT) reconnects, maybe to another bluesync process on the same database,
and its old request lingers there until its heartbeat.  So a request about
to be held announces itself: one UPDATE bumps the device's hold sequence
and NOTIFYs it ("p" for a Ping, "s" for a Sync wait, see
L{bluesync.store.changes}), and every process ends the device's request of
that kind held before it (L{Notifier.notify_held}).  Which request is older
is decided by the sequence, never by arrival: the row lock serialises the
bumps and PostgreSQL delivers notifications in commit order, but the
listener connection and the pooled one that ran the UPDATE are different
sockets, so a process may hear of the older request's announcement after
it registered the newer one, or hear of its own announcement before the
UPDATE's answer.  The rule: a waiter whose own sequence is known ends on a
higher one; a waiter whose sequence is not known yet remembers the highest
it heard, and ends when its own turns out lower (L{Notifier.sequenced}).

A process numbers a device's requests in the order they arrived there:
a request announces itself only while it is the newest of its key here
(one that a newer arrival ended during its first read announces nothing),
and the store sends a device's announcements one after the other
(L{bluesync.store.devices.DeviceStore.ping_held}), so two pooled
connections cannot commit them in the other order.  Within one process
the local superseding above and the numbers therefore agree, and a request
that waits again (C{follows}) never displaces one that arrived after it.
Between processes the numbers alone decide: of two requests announced in
the same instant on two processes, the one with the higher number stays.

After a LISTEN outage a held request may have missed a newer announcement:
its re-check (L{RECHECK}) reads the device's newest sequence of its kind
(devices.ping_hold_seq, sync_hold_seq) and ends if it is above its own.

Race-free use: register before reading the store, then await::

    waiting = notifier.wait(account_id, folder_ids, device_pk, timeout)
    try:
        if await something_changed():
            return answer            # the finally discards the waiter
        wakeup = await waiting
    finally:
        discard(waiting)

A change committed after the read is notified after the registration, so
it fires the waiter; a change committed before it is seen by the read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.logger import Logger

log = Logger()

# Why a waiter fired.
CHANGED = "changed"        # a watched folder (or the hierarchy) changed
TIMEOUT = "timeout"        # the heartbeat / wait interval ended
SUPERSEDED = "superseded"  # a newer request from the same device is waiting
DEVICE = "device"          # the device's state changed (blocked, wipe, policy)
RECHECK = "recheck"        # notifications may have been lost: re-read the store
SHUTDOWN = "shutdown"      # the server is stopping


@dataclass(frozen=True, slots=True)
class Wakeup:
    """
    What a waiter's Deferred fires with.  C{folders} and C{hierarchy} say
    which notification fired a L{CHANGED} waiter; they are hints for logs,
    not a substitute for re-reading the store.
    """

    reason: str
    folders: frozenset[int] = frozenset()
    hierarchy: bool = False

    def __bool__(self) -> bool:
        """
        True when the store may hold something new for the request (a
        change, or lost notifications): re-read it.  False when the request
        should simply be answered as it stands (timeout, superseded, device
        changed, shutdown).
        """
        return self.reason in (CHANGED, RECHECK)


# The results that carry nothing but a reason are shared.
TIMED_OUT = Wakeup(TIMEOUT)
SUPERSEDED_WAKEUP = Wakeup(SUPERSEDED)
DEVICE_WAKEUP = Wakeup(DEVICE)
RECHECK_WAKEUP = Wakeup(RECHECK)
SHUTDOWN_WAKEUP = Wakeup(SHUTDOWN)
HIERARCHY_WAKEUP = Wakeup(CHANGED, hierarchy=True)


DeviceKey = Hashable


def sync_key(device_pk: int) -> tuple:
    """
    The key of a device's Sync wait: it may hold one beside its Ping.
    """
    return ("sync", device_pk)


def _device_pk(device_key: DeviceKey):
    return device_key[-1] if isinstance(device_key, tuple) else device_key


class _Waiter(Deferred):
    """
    A held request: the Deferred it awaits, carrying its own registration,
    so each held request costs one object besides its timer.
    """

    def __init__(self, notifier: Notifier, account_id: int, folders, device_key, hierarchy: bool) -> None:
        super().__init__(notifier._cancelled)
        self.account_id = account_id
        # A tuple: a device watches a handful of folders, and a tuple of
        # a few ints is a fifth of the size of a frozenset.
        self.folders = folders
        self.device_key = device_key
        self.hierarchy = hierarchy
        self.timer = None
        self.registered = True
        # This request's hold sequence once its announcement committed, and
        # the highest announced for its key while that was not known.
        self.sequence = None
        self.newest = 0
        # The request's place in this process's order of arrivals: a
        # request waiting again keeps the place of its first wait.
        self.arrival = 0


class Notifier:
    """
    The registry of held requests of one process.

    @param clock: an C{IReactorTime} (the reactor, or C{task.Clock} in tests).
    """

    def __init__(self, clock) -> None:
        self._clock = clock
        # Per account a short list: an account has a few devices.
        self._accounts: dict[int, list[_Waiter]] = {}
        self._devices: dict[DeviceKey, _Waiter] = {}
        self._stopped = False
        self._arrivals = 0

    def wait(self, account_id: int, folder_ids: Iterable[int], device_key: DeviceKey, timeout: float,
             *, hierarchy: bool = True, follows: Deferred | None = None) -> Deferred:
        """
        Wait until a watched folder of the account changes, or C{timeout}
        seconds pass.

        @param folder_ids: the folders to watch (ids as in the store).
        @param device_key: the device's row id, or a tuple ending with it
            (see the module docstring); one waiter per key.
        @param hierarchy: also fire when the account's folder hierarchy changes.
        @param follows: the previous waiter of the same request, when it
            waits again after a wake-up: the new one carries on its hold
            sequence (L{sequenced}).
        @return: a Deferred firing with a L{Wakeup} (false for timeout,
            superseded, device and shutdown); it never errbacks except with
            C{CancelledError} when cancelled, which unregisters it.
        """
        if self._stopped:
            return succeed(SHUTDOWN_WAKEUP)
        if isinstance(follows, _Waiter):
            arrival = follows.arrival
        else:
            self._arrivals += 1
            arrival = self._arrivals
        previous = self._devices.get(device_key)
        if previous is not None:
            if previous.arrival > arrival:
                # A newer request of the device arrived while this one was
                # between two waits: it has taken over.
                return succeed(SUPERSEDED_WAKEUP)
            self._fire(previous, SUPERSEDED_WAKEUP)
        folders = tuple(dict.fromkeys(folder_ids))
        waiter = _Waiter(self, account_id, folders if len(folders) <= 16 else frozenset(folders),
                         device_key, hierarchy)
        waiter.arrival = arrival
        if isinstance(follows, _Waiter):
            waiter.sequence = follows.sequence
            waiter.newest = follows.newest
        waiter.timer = self._clock.callLater(max(timeout, 0), self._fire, waiter, TIMED_OUT)
        self._accounts.setdefault(account_id, []).append(waiter)
        self._devices[device_key] = waiter
        if waiter.sequence is not None and waiter.newest > waiter.sequence:
            self._fire(waiter, SUPERSEDED_WAKEUP)
        return waiter

    def notify_folder(self, account_id: int, folder_id: int) -> int:
        """
        A folder's content changed: fire the account's waiters watching it.
        Returns how many fired.
        """
        waiters = self._accounts.get(account_id)
        if not waiters:
            return 0
        fired = [waiter for waiter in waiters if folder_id in waiter.folders]
        if fired:
            wakeup = Wakeup(CHANGED, frozenset((folder_id,)))
            for waiter in fired:
                self._fire(waiter, wakeup)
        return len(fired)

    def notify_hierarchy(self, account_id: int) -> int:
        """
        The account's folder hierarchy changed (a folder created, renamed,
        moved or deleted): fire the waiters that asked for it.
        """
        waiters = self._accounts.get(account_id)
        if not waiters:
            return 0
        fired = [waiter for waiter in waiters if waiter.hierarchy]
        for waiter in fired:
            self._fire(waiter, HIERARCHY_WAKEUP)
        return len(fired)

    def notify_device(self, account_id: int, device_pk: int) -> int:
        """
        Something about the device changed (blocked, wipe requested, policy
        changed): end its held request at once so it meets the access check.
        """
        waiters = self._accounts.get(account_id)
        if not waiters:
            return 0
        fired = [waiter for waiter in waiters if _device_pk(waiter.device_key) == device_pk]
        for waiter in fired:
            self._fire(waiter, DEVICE_WAKEUP)
        return len(fired)

    def notify_held(self, account_id: int, device_key: DeviceKey, sequence: int) -> int:
        """
        The device announced a new request of this kind with hold sequence
        C{sequence} (held here or in another process): end ours with
        L{SUPERSEDED} if it is older.  Returns how many fired (0 or 1).
        """
        waiter = self._devices.get(device_key)
        if waiter is None or waiter.account_id != account_id:
            return 0
        if waiter.sequence is None:
            # Our own announcement has not answered yet: this one may be
            # older or newer than ours, sequenced() decides.
            if sequence > waiter.newest:
                waiter.newest = sequence
            return 0
        if sequence <= waiter.sequence:
            return 0
        self._fire(waiter, SUPERSEDED_WAKEUP)
        return 1

    def sequenced(self, waiting: Deferred | None, sequence: int) -> None:
        """
        The request waiting on C{waiting} (a Deferred from L{wait}) was
        announced with hold sequence C{sequence}; end it at once if a newer
        request of its device was announced meanwhile.
        """
        if not isinstance(waiting, _Waiter):
            return
        waiting.sequence = sequence
        if waiting.newest > sequence:
            self._fire(waiting, SUPERSEDED_WAKEUP)

    def recheck_all(self) -> int:
        """
        Fire every waiter with L{RECHECK}: notifications may have been lost
        (the LISTEN connection was down), so each request re-reads the store
        and either answers or waits again without the phone noticing.
        """
        return self._fire_all(RECHECK_WAKEUP)

    def stop(self) -> int:
        """
        Answer every held request with L{SHUTDOWN} and refuse to hold new
        ones: a stopping server answers phones so they reconnect promptly.
        """
        self._stopped = True
        return self._fire_all(SHUTDOWN_WAKEUP)

    def held_count(self) -> int:
        return len(self._devices)

    def held_by_kind(self) -> tuple[int, int]:
        """
        (held Pings, held Sync waits): a Ping is keyed by the device's row
        id, a Sync wait by a tuple ending with it.
        """
        sync_waits = sum(1 for key in self._devices if isinstance(key, tuple))
        return len(self._devices) - sync_waits, sync_waits

    def held_sequence(self, device_key: DeviceKey) -> int | None:
        """
        The hold sequence of the request held for C{device_key} (None: none
        held, or its announcement has not answered yet).
        """
        waiter = self._devices.get(device_key)
        return waiter.sequence if waiter is not None else None

    def held_for_account(self, account_id: int) -> int:
        """
        How many requests of the account are held here (Pings and Sync
        waits); the concurrency limit does not count them.
        """
        return len(self._accounts.get(account_id, ()))

    def _fire_all(self, wakeup: Wakeup) -> int:
        waiters = list(self._devices.values())
        for waiter in waiters:
            self._fire(waiter, wakeup)
        return len(waiters)

    def _remove(self, waiter: _Waiter) -> None:
        if not waiter.registered:
            return
        waiter.registered = False
        if waiter.timer is not None:
            if waiter.timer.active():
                waiter.timer.cancel()
            waiter.timer = None
        waiters = self._accounts.get(waiter.account_id)
        if waiters is not None:
            waiters.remove(waiter)
            if not waiters:
                del self._accounts[waiter.account_id]
        if self._devices.get(waiter.device_key) is waiter:
            del self._devices[waiter.device_key]

    def _cancelled(self, waiter: _Waiter) -> None:
        # The Deferred's canceller: the request went away (client gone, or
        # discard()); the Deferred then errbacks with CancelledError.
        self._remove(waiter)

    def _fire(self, waiter: _Waiter, wakeup: Wakeup) -> None:
        if not waiter.registered:
            return
        self._remove(waiter)
        waiter.callback(wakeup)


def discard(waiting: Deferred) -> None:
    """
    Give up a wait that may never have been awaited (the request answered
    from the store, or failed): unregister it without leaving an unhandled
    CancelledError behind.  Harmless on a Deferred that already fired.
    """
    if not waiting.called:
        waiting.addErrback(_ignore_cancellation)
        waiting.cancel()


def _ignore_cancellation(failure) -> None:
    failure.trap(CancelledError)

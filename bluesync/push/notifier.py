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

    def wait(self, account_id: int, folder_ids: Iterable[int], device_key: DeviceKey, timeout: float,
             *, hierarchy: bool = True) -> Deferred:
        """
        Wait until a watched folder of the account changes, or C{timeout}
        seconds pass.

        @param folder_ids: the folders to watch (ids as in the store).
        @param device_key: the device's row id, or a tuple ending with it
            (see the module docstring); one waiter per key.
        @param hierarchy: also fire when the account's folder hierarchy changes.
        @return: a Deferred firing with a L{Wakeup} (false for timeout,
            superseded, device and shutdown); it never errbacks except with
            C{CancelledError} when cancelled, which unregisters it.
        """
        if self._stopped:
            return succeed(SHUTDOWN_WAKEUP)
        previous = self._devices.get(device_key)
        if previous is not None:
            self._fire(previous, SUPERSEDED_WAKEUP)
        folders = tuple(dict.fromkeys(folder_ids))
        waiter = _Waiter(self, account_id, folders if len(folders) <= 16 else frozenset(folders),
                         device_key, hierarchy)
        waiter.timer = self._clock.callLater(max(timeout, 0), self._fire, waiter, TIMED_OUT)
        self._accounts.setdefault(account_id, []).append(waiter)
        self._devices[device_key] = waiter
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

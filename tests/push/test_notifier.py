from twisted.internet import task
from twisted.internet.defer import CancelledError
from twisted.trial import unittest

from bluesync.push import notifier as push
from bluesync.push.listener import dispatch
from bluesync.push.notifier import Notifier, discard
from bluesync.store.changes import HELD_PING, HELD_SYNC, held_payload


class NotifierTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.notifier = Notifier(self.clock)

    def test_pending_until_timeout(self):
        """A waiter is pending just before its timeout and fires false just after."""
        waiting = self.notifier.wait(1, [10, 11], 100, 60)
        self.clock.advance(59.9)
        self.assertNoResult(waiting)
        self.clock.advance(0.2)
        wakeup = self.successResultOf(waiting)
        self.assertEqual(wakeup.reason, push.TIMEOUT)
        self.assertFalse(wakeup)
        self.assertEqual(self.notifier.held_count(), 0)

    def test_folder_change(self):
        """A change to a watched folder fires at once, true, naming the folder."""
        waiting = self.notifier.wait(1, [10, 11], 100, 60)
        self.assertEqual(self.notifier.notify_folder(1, 11), 1)
        wakeup = self.successResultOf(waiting)
        self.assertEqual((wakeup.reason, wakeup.folders), (push.CHANGED, frozenset({11})))
        self.assertTrue(wakeup)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_other_folder_or_account(self):
        """Changes to unwatched folders, or to another account's folder, do not fire."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.assertEqual(self.notifier.notify_folder(1, 12), 0)
        self.assertEqual(self.notifier.notify_folder(2, 10), 0)
        self.assertEqual(self.notifier.notify_hierarchy(2), 0)
        self.assertNoResult(waiting)
        self.assertEqual(self.notifier.held_count(), 1)

    def test_hierarchy(self):
        """A hierarchy change fires waiters that ask for it, and only those."""
        ping = self.notifier.wait(1, [10], 100, 60)
        sync = self.notifier.wait(1, [10], ("sync", 101), 60, hierarchy=False)
        self.assertEqual(self.notifier.notify_hierarchy(1), 1)
        self.assertTrue(self.successResultOf(ping).hierarchy)
        self.assertNoResult(sync)

    def test_several_waiters(self):
        """One notification fires every device of the account watching the folder."""
        first = self.notifier.wait(1, [10], 100, 60)
        second = self.notifier.wait(1, [10, 12], 101, 60)
        third = self.notifier.wait(1, [12], 102, 60)
        self.assertEqual(self.notifier.notify_folder(1, 10), 2)
        self.assertTrue(self.successResultOf(first))
        self.assertTrue(self.successResultOf(second))
        self.assertNoResult(third)
        self.assertEqual(self.notifier.held_count(), 1)

    def test_superseded(self):
        """A second wait from the same device fires the first with SUPERSEDED."""
        first = self.notifier.wait(1, [10], 100, 60)
        second = self.notifier.wait(1, [10], 100, 60)
        self.assertEqual(self.successResultOf(first).reason, push.SUPERSEDED)
        self.assertNoResult(second)
        self.assertEqual(self.notifier.held_count(), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_kinds_do_not_supersede(self):
        """A Sync wait and a Ping of one device are held side by side."""
        ping = self.notifier.wait(1, [10], 100, 60)
        sync = self.notifier.wait(1, [10], ("sync", 100), 60)
        self.assertNoResult(ping)
        self.assertNoResult(sync)
        self.assertEqual(self.notifier.held_count(), 2)

    def test_device(self):
        """notify_device ends every waiter of that device of that account."""
        ping = self.notifier.wait(1, [10], 100, 60)
        sync = self.notifier.wait(1, [10], ("sync", 100), 60)
        other = self.notifier.wait(1, [10], 101, 60)
        self.assertEqual(self.notifier.notify_device(2, 100), 0)
        self.assertEqual(self.notifier.notify_device(1, 100), 2)
        self.assertEqual(self.successResultOf(ping).reason, push.DEVICE)
        self.assertEqual(self.successResultOf(sync).reason, push.DEVICE)
        self.assertFalse(self.successResultOf(ping))
        self.assertNoResult(other)

    def test_cancel_unregisters(self):
        """Cancelling a waiter (client gone) removes it and its timer at once."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(self.notifier.held_count(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.notifier.notify_folder(1, 10), 0)

    def test_discard(self):
        """discard() unregisters a waiter nobody awaited, leaving no unhandled error."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        discard(waiting)
        self.assertEqual(self.notifier.held_count(), 0)
        self.assertIsNone(self.successResultOf(waiting))
        fired = self.notifier.wait(1, [10], 100, 60)
        self.notifier.notify_folder(1, 10)
        discard(fired)
        self.assertTrue(self.successResultOf(fired))

    def test_recheck_all(self):
        """recheck_all fires every waiter true with RECHECK."""
        waiters = [self.notifier.wait(account, [10], account, 60) for account in (1, 2, 3)]
        self.assertEqual(self.notifier.recheck_all(), 3)
        for waiting in waiters:
            wakeup = self.successResultOf(waiting)
            self.assertEqual(wakeup.reason, push.RECHECK)
            self.assertTrue(wakeup)
        self.assertEqual(self.notifier.held_count(), 0)

    def test_stop(self):
        """stop answers every waiter with SHUTDOWN and answers later waits at once."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.assertEqual(self.notifier.stop(), 1)
        self.assertEqual(self.successResultOf(waiting).reason, push.SHUTDOWN)
        late = self.notifier.wait(1, [10], 101, 60)
        self.assertEqual(self.successResultOf(late).reason, push.SHUTDOWN)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fired_once(self):
        """A waiter fires once: later notifications and its timer are no-ops."""
        waiting = self.notifier.wait(1, [10, 11], 100, 60)
        self.notifier.notify_folder(1, 10)
        self.notifier.notify_folder(1, 11)
        self.clock.advance(120)
        self.assertEqual(self.successResultOf(waiting).folders, frozenset({10}))

    def test_waiter_rewaits_from_callback(self):
        """A woken request may wait again from its callback without disturbing others."""
        again = []

        def woken(wakeup):
            again.append(self.notifier.wait(1, [10], 100, 60))

        self.notifier.wait(1, [10], 100, 60).addCallback(woken)
        other = self.notifier.wait(1, [10], 101, 60)
        self.notifier.notify_folder(1, 10)
        self.assertTrue(self.successResultOf(other))
        self.assertEqual(len(again), 1)
        self.assertNoResult(again[0])
        self.assertEqual(self.notifier.held_count(), 1)


class HoldSequenceTests(unittest.SynchronousTestCase):
    """
    The ordering rule for announcements of held requests (notify_held):
    the hold sequence decides which request is older, never the order in
    which the announcement and the answer of our own write arrive.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.notifier = Notifier(self.clock)

    def test_newer_announcement_supersedes(self):
        """A known waiter ends SUPERSEDED on a higher sequence, and only then."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.notifier.sequenced(waiting, 5)
        self.assertEqual(self.notifier.notify_held(1, 100, 5), 0)
        self.assertEqual(self.notifier.notify_held(1, 100, 4), 0)
        self.assertNoResult(waiting)
        self.assertEqual(self.notifier.notify_held(1, 100, 6), 1)
        self.assertEqual(self.successResultOf(waiting).reason, push.SUPERSEDED)
        self.assertEqual(self.notifier.held_count(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_older_heard_before_own_sequence(self):
        """The older request's announcement, heard before our own write answered, does not end us."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.assertEqual(self.notifier.notify_held(1, 100, 5), 0)
        self.notifier.sequenced(waiting, 6)
        self.assertNoResult(waiting)
        # Our own announcement, heard after our write answered: still held.
        self.assertEqual(self.notifier.notify_held(1, 100, 6), 0)
        self.assertNoResult(waiting)

    def test_newer_heard_before_own_sequence(self):
        """A newer request announced before our own write answered ends us once it does."""
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.notifier.notify_held(1, 100, 7)
        self.notifier.notify_held(1, 100, 5)
        self.assertNoResult(waiting)
        self.notifier.sequenced(waiting, 6)
        self.assertEqual(self.successResultOf(waiting).reason, push.SUPERSEDED)

    def test_waiting_again_keeps_the_sequence(self):
        """A request that waits again carries what it learnt: its sequence and what it heard."""
        first = self.notifier.wait(1, [10], 100, 60)
        self.notifier.notify_held(1, 100, 7)
        self.notifier.recheck_all()
        self.successResultOf(first)
        second = self.notifier.wait(1, [10], 100, 60, follows=first)
        self.notifier.sequenced(second, 6)
        self.assertEqual(self.successResultOf(second).reason, push.SUPERSEDED)

        known = self.notifier.wait(1, [10], 101, 60)
        self.notifier.sequenced(known, 3)
        self.notifier.recheck_all()
        again = self.notifier.wait(1, [10], 101, 60, follows=known)
        self.assertEqual(self.notifier.notify_held(1, 101, 3), 0)
        self.assertNoResult(again)
        self.assertEqual(self.notifier.notify_held(1, 101, 4), 1)

    def test_sequence_learnt_between_waits(self):
        """Our sequence, learnt while the request is between two waits, still decides."""
        first = self.notifier.wait(1, [10], 100, 60)
        self.notifier.notify_held(1, 100, 9)
        self.notifier.recheck_all()
        self.notifier.sequenced(first, 8)
        second = self.notifier.wait(1, [10], 100, 60, follows=first)
        self.assertEqual(self.successResultOf(second).reason, push.SUPERSEDED)

    def test_kinds_and_accounts_apart(self):
        """An announcement reaches only the same kind of request of the same device and account."""
        ping = self.notifier.wait(1, [10], 100, 60)
        sync = self.notifier.wait(1, [10], push.sync_key(100), 60, hierarchy=False)
        self.notifier.sequenced(ping, 1)
        self.notifier.sequenced(sync, 2)
        self.assertEqual(self.notifier.notify_held(2, 100, 9), 0)
        self.assertEqual(self.notifier.notify_held(1, 101, 9), 0)
        self.assertEqual(self.notifier.notify_held(1, push.sync_key(100), 9), 1)
        self.assertEqual(self.successResultOf(sync).reason, push.SUPERSEDED)
        self.assertNoResult(ping)


class DispatchTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.notifier = Notifier(task.Clock())

    def test_payloads(self):
        """Folder, hierarchy and device payloads reach the matching waiters."""
        folder = self.notifier.wait(7, [70], 1, 60)
        dispatch(self.notifier, "f 7 70")
        self.assertEqual(self.successResultOf(folder).folders, frozenset({70}))
        hierarchy = self.notifier.wait(7, [70], 1, 60)
        dispatch(self.notifier, "h 7")
        self.assertTrue(self.successResultOf(hierarchy).hierarchy)
        device = self.notifier.wait(7, [70], 1, 60)
        dispatch(self.notifier, "d 7 1")
        self.assertEqual(self.successResultOf(device).reason, push.DEVICE)

    def test_held_payloads(self):
        """A Ping announcement ends the older Ping, a Sync announcement the older Sync wait."""
        ping = self.notifier.wait(7, [70], 1, 60)
        sync = self.notifier.wait(7, [70], push.sync_key(1), 60, hierarchy=False)
        self.notifier.sequenced(ping, 3)
        self.notifier.sequenced(sync, 4)
        dispatch(self.notifier, held_payload(HELD_PING, 7, 1, 5))
        self.assertEqual(self.successResultOf(ping).reason, push.SUPERSEDED)
        self.assertNoResult(sync)
        dispatch(self.notifier, held_payload(HELD_SYNC, 7, 1, 5))
        self.assertEqual(self.successResultOf(sync).reason, push.SUPERSEDED)

    def test_garbage(self):
        """Unreadable payloads are ignored, not raised."""
        waiting = self.notifier.wait(7, [70], 1, 60)
        for payload in ("", "f", "f 7", "f seven 70", "x 7 70", "h 7 70", "f 7 70 1", "p 7 1", "s 7 1 9 9"):
            dispatch(self.notifier, payload)
        self.assertNoResult(waiting)
        self.flushLoggedErrors()


class ArrivalOrderTests(unittest.SynchronousTestCase):
    """
    Within one process the order of arrival decides which request of a
    device key stays, whatever order their waits are registered again in.
    """

    def setUp(self):
        self.notifier = Notifier(task.Clock())

    def test_waiting_again_does_not_displace_a_newer_request(self):
        """An older request waiting again after a newer one arrived ends, and the newer stays held."""
        older = self.notifier.wait(1, [10], 100, 60)
        self.notifier.recheck_all()
        self.successResultOf(older)
        newer = self.notifier.wait(1, [10], 100, 60)
        again = self.notifier.wait(1, [10], 100, 60, follows=older)
        self.assertEqual(self.successResultOf(again).reason, push.SUPERSEDED)
        self.assertNoResult(newer)
        self.assertEqual(self.notifier.held_count(), 1)

    def test_newer_request_waiting_again_stays(self):
        """A request waiting again still ends an older one that is held."""
        older = self.notifier.wait(1, [10], 100, 60)
        newer = self.notifier.wait(1, [10], 100, 60)
        self.assertEqual(self.successResultOf(older).reason, push.SUPERSEDED)
        self.notifier.recheck_all()
        self.successResultOf(newer)
        again = self.notifier.wait(1, [10], 100, 60, follows=newer)
        self.assertNoResult(again)

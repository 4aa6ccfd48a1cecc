import threading

from twisted.internet import defer
from twisted.trial import unittest

from bluesync.passwords import VerifiedCache, hash_password, verify_password


class VerifiedCacheTests(unittest.TestCase):
    async def test_concurrent_checks_share_one_argon2_run(self):
        """Ten simultaneous logins with the same password run Argon2 once."""
        calls = []
        lock = threading.Lock()

        def counting(password_hash, password):
            with lock:
                calls.append(password)
            return verify_password(password_hash, password)

        cache = VerifiedCache(verifier=counting)
        stored = hash_password("a long secret")
        results = await defer.gatherResults([cache.verify(stored, "a long secret") for _ in range(10)])
        self.assertEqual(results, [True] * 10)
        self.assertEqual(len(calls), 1)
        self.assertTrue(await cache.verify(stored, "a long secret"))
        self.assertEqual(len(calls), 1)

    async def test_wrong_password_not_remembered(self):
        """A wrong password is refused every time and never cached."""
        cache = VerifiedCache()
        stored = hash_password("a long secret")
        self.assertFalse(await cache.verify(stored, "wrong"))
        self.assertFalse(cache.known(stored, "wrong"))
        self.assertFalse(await cache.verify(stored, "wrong"))

"""The in-process tier in front of the Redis cache (store/local.py)."""
import unittest

from scoring_api.store import LocalCache
from tests.support.clock import FakeClock


class LocalCacheTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.local = LocalCache(size=2, ttl_seconds=10.0, clock=self.clock)

    def test_a_value_is_kept_for_its_ttl(self):
        self.local.set("a", "1.5")
        self.clock.now += 9.9
        self.assertEqual(self.local.get("a"), "1.5")
        self.clock.now += 0.1
        self.assertIsNone(self.local.get("a"))

    def test_an_entry_read_long_after_its_expiry_is_gone(self):
        self.local.set("a", "1.5")
        self.clock.now += 3600.0  # a stale score is never served
        self.assertIsNone(self.local.get("a"))

    def test_a_shorter_ttl_given_wins(self):
        self.local.set("a", "1.5", ttl_seconds=2)
        self.clock.now += 2.0
        self.assertIsNone(self.local.get("a"))

    def test_the_least_recently_used_entry_goes_first(self):
        self.local.set("a", "1")
        self.local.set("b", "2")
        self.local.get("a")
        self.local.set("c", "3")
        self.assertEqual((self.local.get("a"), self.local.get("b"),
                          self.local.get("c")), ("1", None, "3"))

    def test_size_zero_keeps_nothing(self):
        local = LocalCache(size=0, ttl_seconds=10.0)
        local.set("a", "1")
        self.assertIsNone(local.get("a"))

"""Deadlines on a fake clock: each late key is called between its timeout
and 1.25 x its timeout, once, with one timer for all."""
import unittest

from scoring_api.deadlines import Deadlines
from tests.support.cases import cases
from tests.support.timers import FakeLoop

TIMEOUT = 10.0


class DeadlinesTest(unittest.TestCase):
    def setUp(self):
        self.loop = FakeLoop()
        self.late = []
        self.deadlines = Deadlines(TIMEOUT, self.late.append, self.loop)

    @cases([0.0, 1.0, 2.4, 2.5, 7.3, 9.99])
    def test_a_key_is_late_after_the_timeout_and_by_1_25_x(self, offset):
        self.deadlines.wait("first")  # the sweep's phase
        self.loop.advance(offset)
        self.deadlines.wait("key")
        self.loop.advance(TIMEOUT - 0.001)
        self.assertNotIn("key", self.late)
        self.loop.advance(TIMEOUT * 0.25 + 0.001)
        self.assertIn("key", self.late)

    def test_a_key_is_late_at_the_sweep_its_timeout_ends_on(self):
        self.deadlines.wait("key")  # a sweep every quarter of TIMEOUT
        self.loop.advance(TIMEOUT)
        self.assertEqual(self.late, ["key"])

    def test_a_key_done_in_time_is_never_late(self):
        self.deadlines.wait("key")
        self.loop.advance(TIMEOUT - 1.0)
        self.deadlines.done("key")
        self.loop.advance(TIMEOUT * 3)
        self.assertEqual(self.late, [])
        self.assertNotIn("key", self.deadlines)

    def test_each_late_key_is_called_once(self):
        for key in ("a", "b", "c"):
            self.deadlines.wait(key)
        self.loop.advance(TIMEOUT * 5)
        self.assertEqual(sorted(self.late), ["a", "b", "c"])

    def test_no_timer_is_left_once_nothing_waits(self):
        self.deadlines.wait("key")
        self.deadlines.done("key")
        self.loop.advance(TIMEOUT)
        self.assertEqual(self.loop.timers, [])

    def test_one_timer_for_many_keys(self):
        for key in range(100):
            self.deadlines.wait(key)
        self.assertEqual(len(self.loop.timers), 1)

    def test_the_loop_is_woken_four_times_a_timeout_while_keys_wait(self):
        for second in range(100):  # a new key each second: ten timeouts
            self.deadlines.wait(second)
            self.loop.advance(1.0)
        self.assertEqual(self.loop.ran, 40)

    def test_a_late_call_that_ends_another_wait_skips_that_one(self):
        def late(key):
            self.late.append(key)
            deadlines.done("b")  # closing "a" closed "b" too

        deadlines = Deadlines(TIMEOUT, late, self.loop)
        deadlines.wait("a")
        deadlines.wait("b")
        self.loop.advance(TIMEOUT * 2)
        self.assertEqual(self.late, ["a"])

    def test_no_timeout_means_no_deadline(self):
        deadlines = Deadlines(None, self.late.append, self.loop)
        deadlines.wait("key")
        self.loop.advance(3600.0)
        self.assertEqual((self.late, self.loop.timers), ([], []))

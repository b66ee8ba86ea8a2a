"""Recurring trouble reported once per interval (throttle.py)."""
import unittest

from scoring_api.throttle import Throttle
from tests.support.clock import FakeClock


class ThrottleTest(unittest.TestCase):
    def test_the_first_event_then_one_per_interval_with_the_count(self):
        clock = FakeClock()
        throttle = Throttle(interval=10.0, clock=clock)
        counts = []
        for _ in range(30):
            counts.append(throttle.event())
            clock.now += 1.0
        self.assertEqual([(i, n) for i, n in enumerate(counts) if n],
                         [(0, 1), (10, 10), (20, 10)])

    def test_by_default_one_report_per_ten_seconds(self):
        # docs/operations.md: recurring trouble writes a line per 10 s.
        clock = FakeClock()
        throttle = Throttle(clock=clock)
        self.assertEqual(throttle.event(), 1)
        clock.now += 9.999
        self.assertEqual(throttle.event(), 0)
        clock.now += 0.001
        self.assertEqual(throttle.event(), 2)

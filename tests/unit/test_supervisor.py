"""The supervisor's pieces on their own: the restart limit, signalling a
worker that is already gone."""
import signal
import subprocess
import sys
import unittest

from scoring_api import supervisor
from tests.support.clock import FakeClock


class GoneWorkerTest(unittest.TestCase):
    def test_signalling_a_worker_that_already_exited_is_no_error(self):
        # A worker may exit between the parent's wait and its signal.
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        supervisor.signal_pid(gone.pid, signal.SIGTERM)  # raises nothing


class RestartLimitTest(unittest.TestCase):
    """At most `limit` restarts within any `window` seconds."""

    def limit(self, limit=3, window=60.0):
        self.clock = FakeClock()
        return supervisor.RestartLimit(limit, window, clock=self.clock)

    def test_a_burst_past_the_limit_is_refused(self):
        restarts = self.limit()
        self.assertEqual([restarts.allow() for _ in range(4)],
                         [True, True, True, False])

    def test_restarts_further_apart_than_the_window_never_run_out(self):
        restarts = self.limit()
        for _ in range(100):  # one a minute, for 100 minutes
            self.assertTrue(restarts.allow())
            self.clock.now += 60.0

    def test_a_restart_leaves_the_count_exactly_one_window_later(self):
        restarts = self.limit(limit=1)
        self.assertTrue(restarts.allow())
        self.clock.now += 59.9
        self.assertFalse(restarts.allow())  # a refusal is not counted
        self.clock.now += 0.1
        self.assertTrue(restarts.allow())

    def test_no_restart_at_all_with_a_limit_of_zero(self):
        self.assertFalse(self.limit(limit=0).allow())

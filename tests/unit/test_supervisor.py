"""The supervisor's pieces on their own: the restart limit, signalling a
worker that is already gone."""
import os
import signal
import subprocess
import sys
import time
import unittest

from scoring_api import supervisor
from tests.support.cases import cases
from tests.support.clock import FakeClock
from tests.support.supervised import Supervised


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

    def test_only_the_restarts_of_the_last_window_count(self):
        restarts = self.limit(limit=2)
        allowed = []
        for when in (0.0, 50.0, 61.0, 62.0):
            self.clock.now = when
            allowed.append(restarts.allow())
        # At 61 the first is over a window old: only the one at 50 counts.
        self.assertEqual(allowed, [True, True, True, False])

    def test_a_limit_past_256_holds_too(self):
        restarts = self.limit(limit=1000)
        allowed = [restarts.allow() for _ in range(1001)]
        self.assertEqual(allowed, [True] * 1000 + [False])

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

    def test_the_window_holds_on_a_clock_near_its_start(self):
        # time.monotonic() counts from boot: small on a machine just up.
        restarts = supervisor.RestartLimit(1, 60.0,
                                           clock=FakeClock(now=10.0))
        self.assertTrue(restarts.allow())
        restarts.clock.now = 69.9
        self.assertFalse(restarts.allow())
        restarts.clock.now = 70.0
        self.assertTrue(restarts.allow())

    def test_no_restart_at_all_with_a_limit_of_zero(self):
        self.assertFalse(self.limit(limit=0).allow())


class SuperviseTest(unittest.TestCase):
    """supervise() with workers that only say what happens to them
    (tests/support/supervised.py), in a process of its own."""

    def supervise(self, kind, **limits):
        supervised = Supervised(kind, **limits)
        self.addCleanup(supervised.kill)
        return supervised

    @cases([signal.SIGTERM, signal.SIGINT])
    def test_a_stop_signal_is_passed_on_and_every_worker_stops(self, signum):
        supervised = self.supervise("serve")
        workers = supervised.started(2)
        supervised.process.send_signal(signum)
        code, log, said = supervised.finish()
        self.assertEqual(code, 0)
        self.assertEqual(sorted(line for line in said if line[:4] == "stop"),
                         sorted("stop %d" % pid for pid in workers))
        self.assertEqual(log, ["started 2 workers: %s" % sorted(workers)])
        parent = supervised.process.pid
        self.assertEqual(said[:2], ["serve %d %d" % (pid, parent)
                                    for pid in workers])

    def test_sighup_is_passed_on_to_every_worker(self):
        supervised = self.supervise("serve", workers=3)
        workers = supervised.started(3)
        supervised.process.send_signal(signal.SIGHUP)
        said = supervised.read_until(
            lambda said: sum(line[:3] == "hup" for line in said) == 3)
        self.assertEqual(sorted(line for line in said if line[:3] == "hup"),
                         sorted("hup %d" % pid for pid in workers))
        self.assertIsNone(supervised.process.poll())
        supervised.process.send_signal(signal.SIGTERM)
        self.assertEqual(supervised.finish()[0], 0)

    def test_a_worker_that_dies_is_replaced(self):
        supervised = self.supervise("serve")
        victim, other = supervised.started(2)
        os.kill(victim, signal.SIGKILL)
        replacement = supervised.started(3)[2]
        supervised.process.send_signal(signal.SIGTERM)
        code, log, said = supervised.finish()
        self.assertEqual(code, 0)
        self.assertIn("worker %d exited with -9; starting another" % victim,
                      log)
        self.assertEqual(sorted(line for line in said if line[:4] == "stop"),
                         sorted("stop %d" % pid
                                for pid in (other, replacement)))

    def test_a_worker_that_dies_is_replaced_with_sigchld_ignored(self):
        # A launcher may leave SIGCHLD ignored; dead workers are then
        # reaped by the kernel, where the supervisor would not see them.
        supervised = self.supervise("serve", sigchld=signal.SIG_IGN)
        victim, _ = supervised.started(2)
        os.kill(victim, signal.SIGKILL)
        supervised.started(3)
        supervised.process.send_signal(signal.SIGTERM)
        code, log, _ = supervised.finish()
        self.assertEqual(code, 0)
        self.assertIn("worker %d exited with -9; starting another" % victim,
                      log)

    def test_a_stop_takes_no_longer_than_the_workers_take(self):
        supervised = self.supervise("serve")
        supervised.started(2)
        stopping = time.monotonic()
        supervised.process.send_signal(signal.SIGTERM)
        code, _, _ = supervised.finish()
        self.assertEqual(code, 0)
        self.assertLess(time.monotonic() - stopping, 1.0)  # not polled

    def test_a_worker_interrupted_alone_dies_as_signals_do(self):
        # Forked, a worker must not keep the supervisor's handlers: one
        # would send its siblings SIGTERM.
        supervised = self.supervise("serve")
        first, second = supervised.started(2)
        os.kill(second, signal.SIGINT)
        supervised.started(3)
        supervised.process.send_signal(signal.SIGTERM)
        _, log, said = supervised.finish()
        self.assertIn("worker %d exited with -2; starting another" % second,
                      log)

    def test_a_crash_loop_stops_the_service_with_1(self):
        supervised = self.supervise("crash", workers=2, limit=3)
        code, log, said = supervised.finish()
        self.assertEqual(code, 1)
        # 2 workers and 3 restarts; the last may be stopped before it
        # says anything.
        starts = supervised.starts(said)
        self.assertIn(len(starts), (4, 5))
        self.assertEqual(sum("starting another" in line for line in log), 3)
        self.assertIn("worker %d failed" % starts[0], log)
        self.assertEqual(sum("; too many restarts (3 in 60s), stopping"
                             in line for line in log), 1)
        self.assertIn("exited with 1; too many restarts", "\n".join(log))

    def test_dead_workers_are_noticed_within_a_fraction_of_a_second(self):
        # The supervisor looks every POLL_SECONDS: a worker that crashes
        # at once, replaced 10 times, makes 11 deaths in a row, each seen
        # at the next look (looks a second apart would take 10 s at
        # least; measured under a load of 9 on 2 cores: 3 s).
        supervised = self.supervise("crash", workers=1, limit=10)
        supervised.started(1)
        started = time.monotonic()
        self.assertEqual(supervised.finish()[0], 1)
        self.assertLess(time.monotonic() - started, 8.0)

    def test_a_worker_that_returns_exits_with_0(self):
        supervised = self.supervise("done", workers=1, limit=0)
        code, log, said = supervised.finish()
        (done,) = supervised.starts(said)
        self.assertEqual(code, 1)  # no restart allowed
        self.assertEqual(log[-1], "worker %d exited with 0; too many"
                         " restarts (0 in 60s), stopping" % done)

    def test_a_worker_that_ignores_the_stop_is_killed_after_its_time(self):
        supervised = self.supervise("stuck", workers=1, stop_seconds=0.3)
        (stuck,) = supervised.started(1)
        started = time.monotonic()
        supervised.process.send_signal(signal.SIGTERM)
        code, log, said = supervised.finish()
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(code, 0)
        self.assertEqual(log[-1],
                         "worker %d did not stop in 0.3s; killing it" % stuck)
        self.assertFalse(os.path.exists("/proc/%d" % stuck))

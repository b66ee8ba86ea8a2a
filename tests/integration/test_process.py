"""`python -m scoring_api` as a process: start-up errors, workers, stops.

No Redis is needed: scores answer without one, and a black hole stands in
for a store that keeps a request in flight.
"""
import os
import signal
import socket
import threading
import time

from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.layers import BlackHole
from tests.support.process import (START_SECONDS, STOP_SECONDS,
                                   ProcessTestCase, alive, post)

# A busy machine lags the service's loop: then a Redis timeout would be
# the process's own ("overloaded"), where these tests expect the store's.
NEVER_STARVED = {"SCORING_OVERLOAD_STARVED_LAG": "30",
                 "SCORING_OVERLOAD_SHED_LAG": "0"}


class StartUpTest(ProcessTestCase):
    def test_a_bad_config_value_stops_start_up_with_one_line(self):
        process = self.start(SCORING_SERVER_PORT="eighty")
        process.wait(START_SECONDS)
        self.assertEqual(process.returncode, 2)
        self.assertEqual(
            process.stderr.read(),
            "scoring_api: SCORING_SERVER_PORT: [server] port = 'eighty':"
            " expected an integer\n")

    def test_a_missing_config_file_stops_start_up_with_one_line(self):
        process = self.start("--config", "/nonexistent.ini")
        process.wait(START_SECONDS)
        self.assertEqual(process.returncode, 2)
        self.assertIn("cannot read config /nonexistent.ini",
                      process.stderr.read())

    def test_a_taken_port_is_one_clear_error(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            process = self.start("--port", str(port))
            process.wait(START_SECONDS)
        self.assertEqual(process.returncode, 1)
        with open(self.log_path) as log:
            self.assertIn("cannot listen on 127.0.0.1:%d: Address already"
                          " in use" % port, log.read())


class StopTest(ProcessTestCase):
    def stop_while_a_call_waits(self, **environ):
        """Start the service with a store that never answers, send a call,
        and SIGTERM once the call's store connection is made (the call in
        flight): (process, answers, the client's thread)."""
        hole = BlackHole()
        self.addCleanup(hole.close)
        process = self.start(SCORING_STORE_URL=hole.url,
                             SCORING_STORE_RETRIES="0", **environ)
        self.wait_until_serving(process)
        close_queued(hole)
        answers = []
        waiting = threading.Thread(target=lambda: answers.append(post(
            self.port, api_request("clients_interests",
                                   {"client_ids": [1]}))))
        waiting.start()
        hole.socket.settimeout(START_SECONDS)
        connection, _ = hole.socket.accept()
        self.addCleanup(connection.close)
        process.send_signal(signal.SIGTERM)
        return process, answers, waiting

    def test_sigterm_lets_a_request_in_flight_finish_then_exits(self):
        process, answers, waiting = self.stop_while_a_call_waits(
            SCORING_STORE_TIMEOUT="0.5", **NEVER_STARVED)
        waiting.join(STOP_SECONDS)
        self.assertEqual(answers, [(503, {"code": 503,
                                          "error": "store is unavailable"})])
        self.assertEqual(process.wait(STOP_SECONDS), 0)

    def test_waiting_for_a_request_in_flight_at_the_stop_spins_no_cpu(self):
        # The store hangs for 3 s: the stopping service waits that long for
        # the request's answer, and polling for it must not busy-loop.
        process, answers, waiting = self.stop_while_a_call_waits(
            SCORING_STORE_TIMEOUT="3")
        before = cpu_seconds(process.pid)
        waiting.join(STOP_SECONDS)
        used = cpu_seconds(process.pid) - before
        self.assertEqual(answers[0][0], 503)
        # Idle, it polls 20 times a second (milliseconds of CPU); a busy
        # loop takes all the CPU the machine gives it for those seconds.
        self.assertLess(used, 0.3)
        self.assertEqual(process.wait(STOP_SECONDS), 0)

    def test_two_workers_serve_and_all_stop_on_sigterm(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        workers = self.wait_for_workers(2)
        for _ in range(20):
            self.assertEqual(post(self.port, SCORE_REQUEST),
                             (200, {"code": 200, "response": {"score": 3.0}}))
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assertEqual([pid for pid in workers if alive(pid)], [])

    def test_workers_stop_when_their_supervisor_is_killed(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        workers = self.wait_for_workers(2)
        process.kill()  # SIGKILL: it cannot pass a stop on
        process.wait()
        deadline = time.monotonic() + STOP_SECONDS
        while [pid for pid in workers if alive(pid)]:
            self.assertLess(time.monotonic(), deadline, "workers left")
            time.sleep(0.05)
        with open(self.log_path) as log:
            self.assertEqual(log.read().count(
                "the supervisor (pid %d) is gone; stopping" % process.pid), 2)

    def test_a_worker_that_dies_is_replaced(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        victim = self.wait_for_workers(2)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + START_SECONDS
        while alive(victim):  # until the parent has reaped it
            self.assertLess(time.monotonic(), deadline, "not reaped")
            time.sleep(0.05)
        self.assertNotIn(victim, self.wait_for_workers(2))
        self.assertEqual(post(self.port, SCORE_REQUEST)[0], 200)


class SupervisorTest(ProcessTestCase):
    """The parent of several workers: what it does when they misbehave."""

    def read_log(self):
        with open(self.log_path) as log:
            return log.read()

    def wait_for_a_new_child(self, process, known):
        """The pid of a child of `process` not in `known`, once forked."""
        deadline = time.monotonic() + START_SECONDS
        children = "/proc/%d/task/%d/children" % (process.pid, process.pid)
        while True:
            with open(children) as listing:
                new = set(map(int, listing.read().split())) - known
            if new:
                return new.pop()
            self.assertLess(time.monotonic(), deadline, "no new worker")
            time.sleep(0.01)

    def kill_and_wait_for_the_next(self, process, victim, known):
        os.kill(victim, signal.SIGKILL)
        new = self.wait_for_a_new_child(process, known)
        known.add(new)
        return new

    def test_a_crash_loop_gives_up_after_the_restart_limit(self):
        process = self.start(SCORING_SERVER_WORKERS="2",
                             SCORING_SERVER_MAX_WORKER_RESTARTS="4")
        self.wait_until_serving(process)
        known = set(self.wait_for_workers(2))
        victim = min(known)
        for _ in range(4):  # a worker that dies at once
            victim = self.kill_and_wait_for_the_next(process, victim, known)
        os.kill(victim, signal.SIGKILL)  # one death more than the limit
        self.assertEqual(process.wait(STOP_SECONDS), 1)  # not a clean stop
        log = self.read_log()
        self.assertEqual(log.count("starting another"), 4)
        self.assertIn("worker %d exited with -9; too many restarts (4 in"
                      " 60s), stopping" % victim, log)
        self.assertEqual([pid for pid in known if alive(pid)], [])

    def test_restarts_are_limited_per_window_not_per_life(self):
        # One restart a window: deaths further apart than the window are
        # each replaced, however many there are.
        process = self.start(SCORING_SERVER_WORKERS="2",
                             SCORING_SERVER_MAX_WORKER_RESTARTS="1",
                             SCORING_SERVER_RESTART_WINDOW="0.5")
        self.wait_until_serving(process)
        known = set(self.wait_for_workers(2))
        victim = min(known)
        for _ in range(3):
            victim = self.kill_and_wait_for_the_next(process, victim, known)
            time.sleep(0.6)  # the last restart is out of the window
        self.assertIsNone(process.poll())
        self.assertEqual(self.read_log().count("starting another"), 3)
        self.assertEqual(len(self.wait_for_workers(2)), 2)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)

    def test_the_supervisors_lines_reach_the_file_while_it_serves(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        self.wait_for_workers(2)
        deadline = time.monotonic() + START_SECONDS
        while "I - started 2 workers" not in self.read_log():
            self.assertLess(time.monotonic(), deadline, self.read_log())
            time.sleep(0.05)
        self.assertIsNone(process.poll())

    def test_a_worker_that_does_not_stop_is_killed_after_the_timeout(self):
        process = self.start(SCORING_SERVER_WORKERS="2",
                             SCORING_SERVER_SHUTDOWN_TIMEOUT="0.5")
        self.wait_until_serving(process)
        stuck, other = self.wait_for_workers(2)
        os.kill(stuck, signal.SIGSTOP)  # it can no longer act on SIGTERM
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        # shutdown_timeout plus the parent's own 2 s of grace
        self.assertGreaterEqual(time.monotonic() - started, 2.5)
        self.assertIn("worker %d did not stop in 2.5s; killing it" % stuck,
                      self.read_log())
        self.assertFalse(alive(stuck))
        self.assertFalse(alive(other))


def cpu_seconds(pid):
    """User and system CPU time of the live process `pid` (Linux)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def close_queued(hole):
    """Close the connections the black hole's kernel queued so far: the
    start-up's look at the store's eviction policy made one, and the
    test's next accept must be the request's."""
    hole.socket.setblocking(False)
    try:
        while True:
            hole.socket.accept()[0].close()
    except BlockingIOError:
        pass
    finally:
        hole.socket.setblocking(True)

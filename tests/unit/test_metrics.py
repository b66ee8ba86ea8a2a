"""The metrics directory of a run: what the parent cleans up; and a run
of two workers, counted across processes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import mock

from scoring_api import metrics
from tests.support.cases import cases
from tests.support.helpers import ROOT
from tests.support.metrics_text import requests_total, samples, value

LEAVES_ON_A_SIGNAL = """
import signal, sys
for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM,
               signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(number, lambda number, frame: sys.exit(number))
print("ready", flush=True)
sys.stdin.read()
"""


class OrphanDirectoryTest(unittest.TestCase):
    def make_directory(self, pid):
        directory = tempfile.mkdtemp(
            prefix="%s%d-" % (metrics.DIRECTORY_PREFIX, pid))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        return directory

    def gone_pid(self):
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        return gone.pid

    def test_a_directory_whose_parent_is_gone_is_removed(self):
        orphan = self.make_directory(self.gone_pid())
        mine = self.make_directory(os.getpid())
        metrics._remove_orphans(tempfile.gettempdir())
        self.assertFalse(os.path.exists(orphan))
        self.assertTrue(os.path.isdir(mine))

    def test_a_directory_a_live_worker_still_writes_is_kept(self):
        # The parent was killed; its worker (here: this process) still
        # serves and writes its counts until it notices.
        directory = self.make_directory(self.gone_pid())
        for name in ("counter_%d.db" % self.gone_pid(),
                     "gauge_livesum_%d.db" % os.getpid()):
            open(os.path.join(directory, name), "wb").close()
        metrics._remove_orphans(tempfile.gettempdir())
        self.assertTrue(os.path.isdir(directory))

    def test_a_live_run_is_looked_at_and_never_signalled(self):
        # A process that leaves with the number of any signal it is sent.
        live = subprocess.Popen(
            [sys.executable, "-c", LEAVES_ON_A_SIGNAL],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(live.kill)
        self.assertEqual(live.stdout.readline(), "ready\n")
        directory = self.make_directory(live.pid)
        metrics._remove_orphans(tempfile.gettempdir())
        self.assertTrue(os.path.isdir(directory))
        live.stdin.close()
        self.assertEqual(live.wait(timeout=30), 0)
        live.stdout.close()

    def test_a_directory_of_another_users_live_process_is_kept(self):
        theirs = self.make_directory(1)
        with mock.patch.object(os, "kill", side_effect=PermissionError):
            metrics._remove_orphans(tempfile.gettempdir())
        self.assertTrue(os.path.isdir(theirs))


class SingleProcessRunTest(unittest.TestCase):
    """One process (no start_run): nothing to add up, nothing to clean."""

    def test_without_a_run_the_worker_and_end_calls_do_nothing(self):
        with mock.patch.dict(os.environ):
            os.environ.pop(metrics.MULTIPROC_ENV, None)
            metrics.worker_died(os.getpid())
            metrics.end_run()
            self.assertIsNone(metrics._run["directory"])
            self.assertNotIn(metrics.MULTIPROC_ENV, os.environ)

    def test_a_run_cannot_start_after_the_first_metric(self):
        # prometheus_client chose in-process values at its import: a run
        # started now would count nothing across workers.
        metrics.request_started()
        metrics.request_finished()
        with self.assertRaisesRegex(RuntimeError, "after the first metric"):
            metrics.start_run()
        self.assertIsNone(metrics._run["directory"])


class InMemoryTest(unittest.TestCase):
    """One process: what a scrape of this process's metrics shows."""

    BUCKET = "scoring_api_request_duration_seconds_bucket"
    LAG = "scoring_api_event_loop_lag_seconds"

    def scrape(self):
        return samples(metrics.render()[0])

    def test_a_call_is_counted_in_every_bucket_from_its_duration_up(self):
        # Dashboards and alerts name these bounds (le="0.1"): they hold.
        bounds = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                  "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
                  "10.0", "+Inf"]
        before = self.scrape()
        metrics.observe_request("online_score", 200, 0.003)
        after = self.scrape()
        shown = [dict(labels)["le"] for name, labels in after
                 if name == self.BUCKET
                 and ("api_method", "online_score") in labels]
        self.assertEqual(sorted(shown, key=float), bounds)
        grown = [bound for bound in bounds
                 if value(after, self.BUCKET, api_method="online_score",
                          le=bound)
                 > value(before, self.BUCKET, api_method="online_score",
                         le=bound)]
        self.assertEqual(grown, bounds[bounds.index("0.005"):])

    @cases([
        (metrics.redis_error, ("cache",), "scoring_api_redis_errors_total",
         {"role": "cache"}),
        (metrics.call_refused, ("loop_lag", "other"),
         "scoring_api_calls_refused_total",
         {"reason": "loop_lag", "partner": "other"}),
        (metrics.call_over_quota, ("acme", True),
         "scoring_api_calls_over_quota_total",
         {"partner": "acme", "enforced": "true"}),
        (metrics.call_over_quota, ("acme", False),
         "scoring_api_calls_over_quota_total",
         {"partner": "acme", "enforced": "false"}),
    ])
    def test_each_event_counts_one_under_its_labels(self, case):
        count, arguments, name, labels = case
        before = value(self.scrape(), name, **labels)
        for _ in range(3):
            count(*arguments)
        self.assertEqual(value(self.scrape(), name, **labels) - before, 3)

    def test_the_circuit_gauge_follows_the_breaker(self):
        self.addCleanup(metrics.set_circuit_open, False)
        shown = []
        for is_open in (True, False):
            metrics.set_circuit_open(is_open)
            shown.append(value(self.scrape(),
                               "scoring_api_cache_circuit_open"))
        self.assertEqual(shown, [1, 0])

    def test_the_loop_lag_is_read_at_each_scrape(self):
        lag = [0.125]
        metrics.watch_loop_lag(lambda: lag[0])
        self.addCleanup(metrics.watch_loop_lag, lambda: 0.0)
        first = value(self.scrape(), self.LAG)
        lag[0] = 0.375
        self.assertEqual((first, value(self.scrape(), self.LAG)),
                         (0.125, 0.375))


class FreshProcessTest(unittest.TestCase):
    """What a process that has served nothing yet shows: in a process of
    its own, as this one has counted the requests of other tests."""

    def test_an_idle_process_shows_only_the_scrape_in_flight(self):
        environ = dict(os.environ)
        environ.pop(metrics.MULTIPROC_ENV, None)
        scrape = subprocess.run(
            [sys.executable, "-c",
             "import sys\n"
             "from scoring_api import metrics\n"
             "metrics.request_started()  # the scrape itself\n"
             "sys.stdout.write(metrics.render()[0].decode())"],
            cwd=ROOT, env=environ, capture_output=True, text=True,
            timeout=60)
        self.assertEqual(scrape.returncode, 0, scrape.stderr)
        self.assertEqual(value(samples(scrape.stdout),
                               "scoring_api_requests_in_flight"), 1)


class PrepareTest(unittest.TestCase):
    """What PROMETHEUS_MULTIPROC_DIR, when the operator sets it, does."""

    def setUp(self):
        # As in a new process: no metric made yet (other tests made some).
        for patch in (mock.patch.dict(os.environ),
                      mock.patch.object(metrics, "_metrics", None)):
            patch.start()
            self.addCleanup(patch.stop)

    def given(self, directory):
        os.environ[metrics.MULTIPROC_ENV] = directory

    def test_one_worker_sets_a_usable_directory_aside(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.given(directory)
        with self.assertLogs("scoring_api.metrics", "INFO") as caught:
            self.assertIsNone(metrics.prepare(1))
        self.assertNotIn(metrics.MULTIPROC_ENV, os.environ)
        self.assertEqual(os.listdir(directory), [])
        self.assertEqual(caught.records[0].getMessage(),
                         "one worker: metrics in memory,"
                         " PROMETHEUS_MULTIPROC_DIR=%s not used" % directory)

    @cases([("missing", 1), ("missing", 2), ("a file", 1), ("a file", 2)])
    def test_a_directory_that_cannot_be_used_is_one_clear_error(self, case):
        kind, workers = case
        if kind == "missing":
            directory = os.path.join(tempfile.mkdtemp(), "missing")
            self.addCleanup(os.rmdir, os.path.dirname(directory))
            reason = "No such file or directory"
        else:
            not_a_directory = tempfile.NamedTemporaryFile()
            self.addCleanup(not_a_directory.close)
            directory = not_a_directory.name
            reason = "Not a directory"
        self.given(directory)
        with self.assertRaises(metrics.MetricsDirectoryError) as raised:
            metrics.prepare(workers)
        self.assertEqual(str(raised.exception), (
            "PROMETHEUS_MULTIPROC_DIR = %r: cannot make the metrics"
            " directory there: %s" % (directory, reason)))
        self.assertIsNone(metrics._run["directory"])

    def test_no_usable_temporary_directory_is_one_clear_error(self):
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        missing = os.path.join(tempfile.mkdtemp(), "missing")
        self.addCleanup(os.rmdir, os.path.dirname(missing))
        with mock.patch.object(tempfile, "gettempdir",
                               return_value=missing):
            with self.assertRaises(metrics.MetricsDirectoryError) as raised:
                metrics.start_run()
        self.assertEqual(str(raised.exception), (
            "the temporary directory %s: cannot make the metrics directory"
            " there: No such file or directory" % missing))

    def test_several_workers_get_a_run_directory_one_does_not(self):
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        self.assertIsNone(metrics.prepare(1))
        self.assertNotIn(metrics.MULTIPROC_ENV, os.environ)
        given = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, given)
        self.given(given)
        patch = mock.patch.dict(metrics._run)
        patch.start()
        self.addCleanup(patch.stop)
        directory = metrics.prepare(2)
        self.assertEqual(os.path.dirname(directory), given)
        metrics.end_run()

    def test_a_file_named_like_an_old_run_is_left_alone(self):
        given = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, given)
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        theirs = os.path.join(given, "%s%d-notes" % (
            metrics.DIRECTORY_PREFIX, gone.pid))
        open(theirs, "wb").close()
        self.given(given)
        patch = mock.patch.dict(metrics._run)
        patch.start()
        self.addCleanup(patch.stop)
        metrics.start_run()
        metrics.end_run()
        self.assertEqual(os.listdir(given), [os.path.basename(theirs)])

    def test_a_run_whose_directory_was_removed_ends_quietly(self):
        # An operator (or a clean-up of /tmp) removed it while it ran.
        patch = mock.patch.dict(metrics._run)
        patch.start()
        self.addCleanup(patch.stop)
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        shutil.rmtree(metrics.start_run())
        metrics.end_run()
        self.assertNotIn(metrics.MULTIPROC_ENV, os.environ)
        self.assertIsNone(metrics._run["directory"])

    def test_a_run_lives_in_its_own_directory_inside_the_given_one(self):
        given = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, given)
        theirs = os.path.join(given, "counter_1.db")  # another program's
        open(theirs, "wb").close()
        self.given(given)
        directory = metrics.start_run()
        self.assertEqual(os.path.dirname(directory), given)
        self.assertEqual(os.environ[metrics.MULTIPROC_ENV], directory)
        metrics.end_run()
        self.assertEqual(os.listdir(given), ["counter_1.db"])
        self.assertEqual(os.environ[metrics.MULTIPROC_ENV], given)


class WorkersRunTest(unittest.TestCase):
    """Across workers (tests/support/metrics_run.py, a new process): a
    worker's counts and gauges reach the parent's scrape; a dead worker's
    gauges leave it, its counts stay; the run leaves nothing behind."""

    def run_of_two_workers(self, environ):
        finished = subprocess.run(
            [sys.executable, "-m", "tests.support.metrics_run"], cwd=ROOT,
            env=environ, capture_output=True, text=True, timeout=60)
        self.assertEqual(finished.returncode, 0, finished.stderr)
        return json.loads(finished.stdout)

    @cases(["the temporary directory", "a given directory"])
    def test_a_worker_is_counted_until_it_dies_and_nothing_is_left(
            self, where):
        environ = dict(os.environ)
        environ.pop(metrics.MULTIPROC_ENV, None)
        if where == "a given directory":
            given = tempfile.mkdtemp()
            self.addCleanup(shutil.rmtree, given)
            environ[metrics.MULTIPROC_ENV] = given
        run = self.run_of_two_workers(environ)
        live, dead = (samples(text) for text in run["scrapes"])
        gauges = ("scoring_api_requests_in_flight",
                  "scoring_api_cache_circuit_open",
                  "scoring_api_event_loop_lag_seconds")
        self.assertEqual([value(live, name) for name in gauges],
                         [1, 1, 0.5])  # the lag as of the last refresh
        self.assertEqual([value(dead, name) for name in gauges], [0, 0, 0])
        for scrape in (live, dead):
            self.assertEqual(requests_total(scrape, "online_score", 200), 1)
        self.assertFalse(run["left"])
        self.assertEqual(run["environ"], environ.get(metrics.MULTIPROC_ENV))
        if where == "a given directory":
            self.assertEqual(os.path.dirname(run["directory"]), given)
            self.assertEqual(os.listdir(given), [])

"""Running it: readiness, metrics across workers and under a dead cache,
logs as an operator configures them (JSON, behind a proxy, rotated)."""
import glob
import json
import os
import re
import shutil
import signal
import tempfile
import time
import urllib.request

from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.service import FaultTestCase, ServiceTestCase
from tests.support.process import (START_SECONDS, STOP_SECONDS,
                                   ProcessTestCase, alive, post)
from tests.support.layers import free_port
from tests.support.metrics_text import requests_total, samples, value

# At rest the in-flight gauge counts one request: the scrape reading it.
THE_SCRAPE = 1


class ReadyTest(ServiceTestCase):
    # A live Redis answers well within these on a busy machine; FAST's
    # 0.1-0.2 s to connect did not always (a 503 under coverage + load).
    base_settings = ServiceTestCase.base_settings.replace(
        store={"connect_timeout": 5.0, "timeout": 5.0},
        cache={"connect_timeout": 5.0, "timeout": 5.0})

    def test_ready_while_the_store_answers(self):
        response = self.fetch("/ready")
        self.assertEqual(self.answer(response),
                         (200, {"store": "up", "cache": "up"}))


class NotReadyTest(ServiceTestCase):
    def redis_urls(self):
        return "redis://127.0.0.1:%d/0" % free_port(), ""  # nothing there

    def test_not_ready_while_the_store_is_down_butalive(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            ready = self.fetch("/ready")
            health = self.fetch("/health")
        self.assertEqual(self.answer(ready), (503, "store is unavailable"))
        self.assertEqual(self.answer(health),
                         (200, {"store": "down", "cache": "down"}))


class DeadCacheMetricsTest(FaultTestCase):
    def scrape(self):
        return samples(self.fetch("/metrics").body)

    def test_a_killed_cache_moves_the_error_counter_and_the_breaker(self):
        self.post(SCORE_REQUEST)
        before = self.scrape()
        self.assertEqual(value(before, "scoring_api_cache_circuit_open"), 0)
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(5):
                self.assertEqual(self.answer(self.post(SCORE_REQUEST))[0], 200)
            dead = self.scrape()
            self.assertEqual(
                value(dead, "scoring_api_redis_errors_total", role="cache")
                - value(before, "scoring_api_redis_errors_total",
                        role="cache"),
                self.settings.cache.failure_threshold)
            self.assertEqual(value(dead, "scoring_api_cache_circuit_open"), 1)
            self.server.start()
            self.wait_until(lambda: value(
                self.scrape(), "scoring_api_cache_circuit_open") == 0)


def get(port, path, headers=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                     headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


class OpsProcessTestCase(ProcessTestCase):
    def worker_pids(self):
        """As ProcessTestCase's, for text and JSON lines."""
        with open(self.log_path, encoding="utf-8") as log:
            pids = re.findall(r"serving on .*\(pid (\d+)\)", log.read())
        return [int(pid) for pid in pids if alive(int(pid))]

    def log_lines(self):
        with open(self.log_path, encoding="utf-8") as log:
            return log.read().splitlines()

    def wait_for_lines(self, text, count):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if os.path.exists(self.log_path):  # after the reopening
                with open(self.log_path, encoding="utf-8") as log:
                    if log.read().count(text) >= count:
                        return
            time.sleep(0.05)
        self.fail("fewer than %d lines with %r in the log" % (count, text))


class WorkersMetricsTest(OpsProcessTestCase):
    def setUp(self):
        super().setUp()
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.metrics_dir = directory.name

    def start_two_workers(self):
        process = self.start(SCORING_SERVER_WORKERS="2",
                             PROMETHEUS_MULTIPROC_DIR=self.metrics_dir)
        self.wait_until_serving(process)
        return process, self.wait_for_workers(2)

    def totals(self):
        scraped = samples(get(self.port, "/metrics"))
        return (requests_total(scraped, "online_score", 200),
                requests_total(scraped, "online_score", 403),
                value(scraped, "scoring_api_requests_in_flight"))

    def wait_for_totals(self, expected):
        """A worker counts a call, and counts it out of the requests in
        flight, just after it answered it: the last count may come a
        moment after the last answer."""
        deadline = time.monotonic() + START_SECONDS
        while self.totals() != expected:
            self.assertLess(time.monotonic(), deadline, self.totals())
            time.sleep(0.05)

    def test_two_workers_add_up_and_clean_their_directory(self):
        process, workers = self.start_two_workers()
        for _ in range(30):
            post(self.port, SCORE_REQUEST)
        for _ in range(10):
            post(self.port, dict(SCORE_REQUEST, token="bad"))
        self.wait_for_totals((30, 10, THE_SCRAPE))
        # The service's own directory inside the operator's.
        (run,) = os.listdir(self.metrics_dir)
        writers = {int(name.rsplit("_", 1)[1][:-3]) for name in
                   map(os.path.basename, glob.glob(os.path.join(
                       self.metrics_dir, run, "*.db")))}
        self.assertEqual(writers, set(workers))  # both served
        for _ in range(6):  # each scrape is served by either worker
            # (The in-flight gauge may still count the previous scrape for
            # a moment: a worker counts a request out after its answer.)
            self.assertEqual(self.totals()[:2], (30, 10))
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assertEqual(os.listdir(self.metrics_dir), [])

    def test_the_counts_of_a_worker_that_died_are_kept(self):
        process, workers = self.start_two_workers()
        for _ in range(20):
            post(self.port, SCORE_REQUEST)
        self.wait_for_totals((20, 0, THE_SCRAPE))
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + START_SECONDS
        while alive(workers[0]):
            self.assertLess(time.monotonic(), deadline, "not reaped")
            time.sleep(0.05)
        self.wait_for_workers(2)
        self.wait_for_totals((20, 0, THE_SCRAPE))

    def test_without_a_directory_given_one_is_made_and_removed(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        workers = self.wait_for_workers(2)
        for _ in range(10):
            post(self.port, SCORE_REQUEST)
        (directory,) = {os.path.dirname(path) for pid in workers
                        for path in glob.glob(os.path.join(
                            tempfile.gettempdir(), "scoring-api-metrics-*",
                            "*_%d.db" % pid))}
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assertFalse(os.path.exists(directory))
        # Logged before the fork, written once (not again by each worker).
        self.assertEqual(
            [line for line in self.log_lines() if "metrics of" in line],
            ["[%s] I - metrics of the workers in %s" % (
                self.log_lines()[0][1:20], directory)])


class OneWorkerMetricsTest(OpsProcessTestCase):
    def test_one_worker_keeps_its_metrics_in_memory(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        process = self.start(PROMETHEUS_MULTIPROC_DIR=directory.name)
        self.wait_until_serving(process)
        for _ in range(3):
            self.assertEqual(post(self.port, SCORE_REQUEST)[0], 200)
        scraped = samples(get(self.port, "/metrics"))
        self.assertEqual((requests_total(scraped, "online_score", 200),
                          value(scraped, "scoring_api_requests_in_flight")),
                         (3, THE_SCRAPE))
        self.assertEqual(os.listdir(directory.name), [])  # no file a run
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)

    def assert_start_up_stops(self, workers):
        parent = tempfile.TemporaryDirectory()
        self.addCleanup(parent.cleanup)
        missing = os.path.join(parent.name, "missing")
        process = self.start(PROMETHEUS_MULTIPROC_DIR=missing,
                             SCORING_SERVER_WORKERS=workers)
        self.assertEqual(process.wait(START_SECONDS), 2)
        self.assertEqual(process.stderr.read(), (
            "scoring_api: PROMETHEUS_MULTIPROC_DIR = %r: cannot make the"
            " metrics directory there: No such file or directory\n"
            % missing))
        self.assertEqual(os.listdir(parent.name), [])

    def test_a_directory_that_does_not_exist_stops_one_worker(self):
        self.assert_start_up_stops("1")

    def test_a_directory_that_does_not_exist_stops_two_workers(self):
        self.assert_start_up_stops("2")


class LogConfigTest(OpsProcessTestCase):
    def test_json_lines_with_the_proxys_client_address(self):
        process = self.start(SCORING_SERVER_LOG_FORMAT="json",
                             SCORING_SERVER_XHEADERS="true")
        self.wait_until_serving(process)
        request = urllib.request.Request(
            "http://127.0.0.1:%d/method/" % self.port,
            data=json.dumps(SCORE_REQUEST).encode(),
            headers={"X-Forwarded-For": "203.0.113.7",
                     "X-Request-Id": "via-proxy"})
        urllib.request.urlopen(request, timeout=10).close()
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_SECONDS)
        lines = [json.loads(line) for line in self.log_lines()]
        access = [line for line in lines if line.get("code")]
        self.assertEqual(
            [(line["client"], line["request_id"]) for line in access],
            [("203.0.113.7", "via-proxy")])
        self.assertTrue(all(set(line) >= {"time", "level", "message"}
                            for line in lines))

    def test_a_password_in_the_store_url_is_never_logged(self):
        process = self.start(SCORING_STORE_URL="redis://:s3cretpass@"
                             "127.0.0.1:%d/0" % free_port())
        self.wait_until_serving(process)
        post(self.port, api_request("clients_interests", {"client_ids": [1]}))
        get(self.port, "/health")
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_SECONDS)
        text = "\n".join(self.log_lines())
        self.assertIn("store is unavailable", text)
        self.assertNotIn("s3cretpass", text)

    def rotate_and_check(self, process, workers):
        post(self.port, SCORE_REQUEST)
        os.rename(self.log_path, self.log_path + ".1")
        self.addCleanup(os.unlink, self.log_path + ".1")
        process.send_signal(signal.SIGHUP)
        # The workers' lines are flushed within a second; the parent's
        # only at its stop, and it reopened before it told the workers.
        self.wait_for_lines("log file reopened", workers)
        for _ in range(10):  # reaches every worker
            post(self.port, SCORE_REQUEST)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        with open(self.log_path + ".1", encoding="utf-8") as old:
            old_access = old.read().count("POST /method/")
        self.assertEqual(
            (old_access, "\n".join(self.log_lines()).count("POST /method/")),
            (1, 10))

    def test_sighup_reopens_the_log_file(self):
        process = self.start()
        self.wait_until_serving(process)
        self.rotate_and_check(process, 1)

    def test_sighup_to_the_parent_reopens_every_workers_log(self):
        process = self.start(SCORING_SERVER_WORKERS="2")
        self.wait_until_serving(process)
        self.wait_for_workers(2)
        self.rotate_and_check(process, 3)  # the parent's line too

    def fail_a_reopen_and_check(self, workers):
        """The log's directory moved away, then SIGHUP: every process
        keeps its old file and serves, and one line says so."""
        logs = tempfile.mkdtemp()
        moved = logs + ".moved"
        self.addCleanup(shutil.rmtree, moved, ignore_errors=True)
        self.addCleanup(shutil.rmtree, logs, ignore_errors=True)
        process = self.start(log_dir=logs,
                             SCORING_SERVER_WORKERS=str(workers))
        self.wait_until_serving(process)
        if workers > 1:
            self.wait_for_workers(workers)
        wanted = self.log_path
        os.rename(logs, moved)
        self.log_path = os.path.join(moved, os.path.basename(wanted))
        process.send_signal(signal.SIGHUP)
        self.wait_for_lines("cannot reopen the log file", 1)
        for _ in range(10):  # reaches every worker
            self.assertEqual(post(self.port, SCORE_REQUEST)[0], 200)
        self.assertIsNone(process.poll())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assertEqual(process.stderr.read(), (
            "scoring_api: cannot reopen the log file %s: No such file or"
            " directory; still writing to the old one\n" % wanted))
        text = "\n".join(self.log_lines())
        self.assertEqual((text.count("cannot reopen"),
                          text.count("POST /method/")), (1, 10))
        self.assertFalse(os.path.exists(logs))

    def test_a_failed_reopen_keeps_the_old_file_and_serves(self):
        self.fail_a_reopen_and_check(1)

    def test_a_failed_reopen_keeps_every_worker_serving(self):
        self.fail_a_reopen_and_check(2)

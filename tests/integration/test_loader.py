"""The interests loader, run as a command against a real Redis."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import redis

from tests.support.cases import cases
from tests.support.layers import (FaultLayer, RedisLayer, free_port,
                                  requires_own_server, requires_redis)

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "data",
                      "interests.jsonl")


class LoaderCase(unittest.TestCase):
    layer = RedisLayer

    def setUp(self):
        requires_redis(self)
        self.redis = redis.Redis.from_url(
            RedisLayer.url, socket_timeout=2, decode_responses=True)
        self.addCleanup(self.redis.close)

    def load_text(self, text, *options):
        handle = tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8")
        with handle:
            handle.write(text)
        self.addCleanup(os.unlink, handle.name)
        self.last_file = handle.name
        return self.load(handle.name, *options)

    def load(self, path, *options, **settings):
        environ = dict(os.environ, SCORING_STORE_URL=RedisLayer.url)
        environ.update(settings)
        return subprocess.run(
            [sys.executable, "-m", "scoring_api.loader", path, *options],
            env=environ, capture_output=True, text=True, timeout=30)


class LoaderTest(LoaderCase):
    def test_the_sample_file_loads(self):
        result = self.load(SAMPLE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("loaded interests of 6 clients", result.stdout)
        self.assertEqual(json.loads(self.redis.get("i:1")), ["cars", "pets"])
        self.assertEqual(len(self.redis.keys("i:*")), 6)

    def test_a_json_object_loads(self):
        result = self.load_text('{"7": ["tv"], "8": []}')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.redis.mget("i:7", "i:8"), ['["tv"]', "[]"])

    def test_a_bad_file_reports_each_bad_line_and_loads_nothing(self):
        result = self.load_text('{"client_id": 1, "interests": ["cars"]}\n'
                                "{oops\n"
                                '{"client_id": 2, "interests": [3]}\n')
        self.assertEqual(result.returncode, 1)
        self.assertIn("line 2: not valid JSON", result.stderr)
        self.assertIn("line 3: interests of client 2 must be a list of"
                      " strings", result.stderr)
        self.assertIn("nothing loaded", result.stderr)
        self.assertEqual(self.redis.dbsize(), 0)

    def test_partial_loads_the_good_lines_and_still_reports(self):
        result = self.load_text('{"client_id": 1, "interests": ["cars"]}\n'
                                "{oops\n", "--partial")
        self.assertEqual(result.returncode, 1)
        self.assertIn("line 2: not valid JSON", result.stderr)
        self.assertEqual(self.redis.get("i:1"), '["cars"]')

    def test_a_file_that_is_not_utf8_is_a_usage_error_naming_the_line(
            self):
        handle = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
        with handle:
            handle.write(b'{"client_id": 1, "interests": ["cars"]}\n'
                         b'{"client_id": 2, "interests": ["caf\xe9"]}\n')
        self.addCleanup(os.unlink, handle.name)
        result = self.load(handle.name)
        self.assertEqual((result.returncode, result.stderr), (
            2, "loader: %s: line 2 is not UTF-8 text\n" % handle.name))
        self.assertEqual(self.redis.dbsize(), 0)

    def test_a_missing_file_is_a_usage_error(self):
        result = self.load("/nonexistent/interests.jsonl")
        self.assertEqual(result.returncode, 2)
        self.assertIn("No such file", result.stderr)

    @cases([
        {"SCORING_STORE_URL": "redis://:s3cret@127.0.0.1:%d/0"},
        {"SCORING_STORE_MODE": "cluster",
         "SCORING_STORE_URL": "redis://:s3cret@127.0.0.1:%d"},
    ])
    def test_a_store_that_is_down_exits_3_and_says_what_may_be_written(
            self, settings):
        port = free_port()  # nothing listens there
        result = self.load(SAMPLE, **{key: value % port if "%d" in value
                                      else value
                                      for key, value in settings.items()})
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("store is unavailable at", result.stderr)
        self.assertIn("; clients 1 to 6 may be written; loading again"
                      " replaces them", result.stderr)
        self.assertIn(":***@127.0.0.1:%d" % port, result.stderr)
        self.assertNotIn("s3cret", result.stderr + result.stdout)

    @cases(["", "\n\n"])
    def test_a_file_of_no_client_is_an_error(self, text):
        result = self.load_text(text)
        self.assertEqual((result.returncode, result.stderr), (
            4, "loader: %s: holds no client; nothing loaded (--allow-empty"
               " accepts an empty file)\n" % self.last_file))

    def test_allow_empty_says_an_empty_file_is_fine(self):
        result = self.load_text("", "--allow-empty")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("loaded interests of 0 clients", result.stdout)

    def test_a_fifo_is_refused_at_once_not_waited_on(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        fifo = os.path.join(directory, "interests")
        os.mkfifo(fifo)  # no writer: opening it would wait for ever
        result = self.load(fifo)
        self.assertEqual((result.returncode, result.stderr), (
            2, "loader: %s: not a regular file (a FIFO); give a file of JSON"
               " lines or one JSON object\n" % fifo))

    def test_dev_zero_is_refused_before_a_byte_is_read(self):
        result = self.load("/dev/zero")
        self.assertEqual((result.returncode, result.stderr), (
            2, "loader: /dev/zero: not a regular file (a character device);"
               " give a file of JSON lines or one JSON object\n"))

    def test_a_run_with_nothing_compiled_yet_says_only_its_line(self):
        # As under PYTHONDONTWRITEBYTECODE or a read-only install, where
        # a warning the compiler gives would be said on every run.
        cache = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, cache)
        result = self.load("/dev/zero", PYTHONPYCACHEPREFIX=cache)
        self.assertEqual((result.returncode, result.stderr), (
            2, "loader: /dev/zero: not a regular file (a character device);"
               " give a file of JSON lines or one JSON object\n"))

    def test_pythons_own_limits_are_bad_lines_not_tracebacks(self):
        result = self.load_text(
            '{"client_id": 1, "interests": ["cars"]}\n' + "[" * 100000
            + '\n{"client_id": %s, "interests": []}\n' % ("9" * 5000))
        self.assertEqual((result.returncode, result.stderr.splitlines()), (
            1, ["%s: line 2: not valid JSON" % self.last_file,
                "%s: line 3: client_id must be a non-negative integer below"
                " 2**64" % self.last_file,
                "loader: 2 bad entries; nothing loaded (--partial loads the"
                " 1 good ones)"]))
        self.assertEqual(self.redis.dbsize(), 0)

    def test_a_key_of_5000_digits_in_an_object_is_a_bad_key(self):
        result = self.load_text('{"%s": ["a"], "2": ["b"]}' % ("9" * 5000),
                                "--partial")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("client_id must be a non-negative integer",
                      result.stderr)
        self.assertEqual(self.redis.get("i:2"), '["b"]')


# Short bounds, so that a paused Redis fails a batch in about a second.
PAUSED_BOUNDS = {"SCORING_STORE_CONNECT_TIMEOUT": "0.5",
                 "SCORING_STORE_TIMEOUT": "0.5", "SCORING_STORE_RETRIES": "0"}
SETTLE_SECONDS = 5.0  # for a resumed Redis to apply what it was sent
WRITTEN = re.compile(r"; the first (\d+) clients are written; clients"
                     r" (\d+) to (\d+) may be written too; loading again"
                     r" replaces them$")


class PausedRedisTest(LoaderCase):
    """Redis paused (SIGSTOP) during a load: a timed-out MSET is applied
    when Redis resumes, so the loader says what may be written, never
    "nothing loaded"."""

    layer = FaultLayer

    def setUp(self):
        requires_own_server(self)
        super().setUp()

    def dbsize_once_settled(self, at_least):
        """The number of keys, once it reaches `at_least` (or after
        SETTLE_SECONDS)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while self.redis.dbsize() < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.redis.dbsize()

    def test_paused_before_the_load_every_client_may_be_written(self):
        RedisLayer.server.pause()
        result = self.load(SAMPLE, **PAUSED_BOUNDS)
        RedisLayer.server.resume()
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertTrue(result.stderr.endswith(
            "; clients 1 to 6 may be written; loading again replaces"
            " them\n"), result.stderr)
        self.assertNotIn("nothing loaded", result.stderr)
        # Which is true: the MSET it sent lands once Redis resumes.
        self.assertEqual(self.dbsize_once_settled(6), 6)

    def test_paused_midway_the_written_and_the_maybe_are_told_apart(self):
        lines = ['{"client_id": %d, "interests": ["cars"]}' % cid
                 for cid in range(250000)]
        handle = tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8")
        with handle:
            handle.write("\n".join(lines))
        self.addCleanup(os.unlink, handle.name)
        loading = subprocess.Popen(
            [sys.executable, "-m", "scoring_api.loader", handle.name],
            env=dict(os.environ, SCORING_STORE_URL=RedisLayer.url,
                     **PAUSED_BOUNDS),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(loading.kill)
        for line in loading.stderr:
            if line == "loader: 100000 entries written\n":
                break
        # The loader held still while Redis stops: midway, whatever the
        # machine's speed.
        loading.send_signal(signal.SIGSTOP)
        RedisLayer.server.pause()
        loading.send_signal(signal.SIGCONT)
        stdout, stderr = loading.communicate(timeout=60)
        RedisLayer.server.resume()
        self.assertEqual(loading.returncode, 3, stderr)
        said = WRITTEN.search(stderr.rstrip("\n"))
        self.assertIsNotNone(said, stderr)
        written, first_maybe, last_maybe = map(int, said.groups())
        self.assertGreaterEqual(written, 100000)
        self.assertEqual((first_maybe, last_maybe),
                         (written + 1, written + 1000))
        # A batch is one MSET: after it lands, or not, nothing in between.
        self.assertIn(self.dbsize_once_settled(last_maybe),
                      (written, last_maybe))
        self.assertNotIn(None, self.redis.mget(
            ["i:%d" % cid for cid in range(written)]))


class MillionEntriesTest(LoaderCase):
    """A million clients (64 MB of JSON lines): memory stays bounded,
    progress is said on the way."""

    ENTRIES = 1000000
    MAX_RSS_MB = 150

    def write_million(self):
        words = ["cars", "pets", "travel", "hi-tech", "sport", "music",
                 "books", "tv", "cinema", "geek", "otus"]
        pick = random.Random(16)
        handle = tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8")
        self.addCleanup(os.unlink, handle.name)
        with handle:
            for client_id in range(self.ENTRIES):
                handle.write('{"client_id": %d, "interests": %s}\n' % (
                    client_id, json.dumps(pick.sample(words, 3))))
        return handle.name

    def test_a_million_entries_load_in_bounded_memory(self):
        path = self.write_million()
        # The peak RSS of the loader alone: a process whose only child it is.
        measure = textwrap.dedent("""
            import resource, subprocess, sys
            result = subprocess.run(
                [sys.executable, "-m", "scoring_api.loader", sys.argv[1]],
                capture_output=True, text=True)
            sys.stderr.write(result.stderr)
            sys.stdout.write(result.stdout)
            print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            sys.exit(result.returncode)
        """)
        result = subprocess.run(
            [sys.executable, "-c", measure, path], capture_output=True,
            text=True, timeout=900,
            env=dict(os.environ, SCORING_STORE_URL=RedisLayer.url))
        self.assertEqual(result.returncode, 0, result.stderr)
        loaded, peak_kb = result.stdout.splitlines()
        self.assertLess(int(peak_kb) / 1024, self.MAX_RSS_MB)
        self.assertIn("loaded interests of 1000000 clients", loaded)
        self.assertEqual(result.stderr.splitlines(), [
            "loader: %d entries %s" % (count, what)
            for what in ("checked", "written")
            for count in range(100000, 1000001, 100000)])
        self.assertEqual(self.redis.dbsize(), self.ENTRIES)
        self.assertEqual(len(json.loads(self.redis.get("i:999999"))), 3)

"""`python -m scoring_api` as a process for the tests: start it on a free
port with SCORING_* settings, read its log, find its workers, stop it."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from tests.support.helpers import ROOT
from tests.support.layers import free_port

# Guards against a hang, not promises: generous, so that a start-up on a
# busy machine (imports, fork) never fails a test.
START_SECONDS = 30.0
STOP_SECONDS = 30.0


def post(port, body, timeout=10):
    request = urllib.request.Request(
        "http://127.0.0.1:%d/method/" % port, data=json.dumps(body).encode(),
        method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class ProcessTestCase(unittest.TestCase):
    def start(self, *args, log_dir=None, port=None, **settings):
        """The service on `port` (a free one when not given), with
        SCORING_* `settings`, logging to `log_path` (a new file, in
        `log_dir` when given)."""
        self.port = port or free_port()
        log = tempfile.NamedTemporaryFile(suffix=".log", delete=False,
                                          dir=log_dir)
        log.close()
        self.log_path = log.name
        self.addCleanup(remove_file, log.name)
        environ = {**os.environ, "SCORING_SERVER_PORT": str(self.port),
                   "SCORING_SERVER_LOG_FILE": self.log_path,
                   "SCORING_STORE_URL": "redis://127.0.0.1:%d/0" % free_port(),
                   **settings}
        process = subprocess.Popen(
            [sys.executable, "-m", "scoring_api", *args], env=environ,
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.addCleanup(self.kill_all, process)
        return process

    def kill_all(self, process):
        """Kill `process` and the workers the log names (when a test
        started several processes, the last one's log is gone by then:
        those of one worker have none)."""
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
        if os.path.exists(self.log_path):
            for pid in self.worker_pids():
                os.kill(pid, signal.SIGKILL)

    def worker_pids(self):
        with open(self.log_path) as log:
            text = log.read()
        pids = []
        for line in text.splitlines():
            if "serving on" in line:
                pid = int(line.rsplit("(pid ", 1)[1].rstrip(")"))
                if alive(pid):
                    pids.append(pid)
        return pids

    def wait_for_workers(self, count):
        """The pids of `count` live workers, once they all serve."""
        deadline = time.monotonic() + START_SECONDS
        while len(self.worker_pids()) < count:
            self.assertLess(time.monotonic(), deadline, "workers missing")
            time.sleep(0.05)
        return self.worker_pids()

    def wait_until_serving(self, process):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.fail("the service exited: %s" % process.stderr.read())
            # Its "serving on" line, not only a connection (the kernel
            # takes those as soon as the port is bound): the process has
            # started serving, its signal handlers are in place.
            if os.path.exists(self.log_path):
                with open(self.log_path, encoding="utf-8") as log:
                    if "serving on" in log.read():
                        return
            time.sleep(0.05)
        self.fail("nothing serves on port %d" % self.port)


def remove_file(path):
    if os.path.exists(path):
        os.unlink(path)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

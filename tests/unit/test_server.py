"""The parent's handling of workers that are already gone."""
import signal
import subprocess
import sys
import unittest

from scoring_api import server


class GoneWorkerTest(unittest.TestCase):
    def test_signalling_a_worker_that_already_exited_is_no_error(self):
        # A worker may exit between the parent's wait and its signal.
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        server._signal_all({gone.pid}, signal.SIGTERM)  # raises nothing

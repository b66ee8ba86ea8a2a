"""The metrics directory of a run: what the parent cleans up."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import mock

from scoring_api import metrics


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
        metrics._remove_orphans()
        self.assertFalse(os.path.exists(orphan))
        self.assertTrue(os.path.isdir(mine))

    def test_a_directory_a_live_worker_still_writes_is_kept(self):
        # The parent was killed; its worker (here: this process) still
        # serves and writes its counts until it notices.
        directory = self.make_directory(self.gone_pid())
        for name in ("counter_%d.db" % self.gone_pid(),
                     "gauge_livesum_%d.db" % os.getpid()):
            open(os.path.join(directory, name), "wb").close()
        metrics._remove_orphans()
        self.assertTrue(os.path.isdir(directory))

    def test_a_directory_of_another_users_live_process_is_kept(self):
        theirs = self.make_directory(1)
        with mock.patch.object(os, "kill", side_effect=PermissionError):
            metrics._remove_orphans()
        self.assertTrue(os.path.isdir(theirs))


class SingleProcessRunTest(unittest.TestCase):
    """One process (no start_run): nothing to add up, nothing to clean."""

    def test_without_a_run_the_worker_and_end_calls_do_nothing(self):
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

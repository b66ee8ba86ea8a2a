"""The metrics directory of a run: what the parent cleans up."""
import os
import subprocess
import sys
import tempfile
import unittest

from scoring_api import metrics


class OrphanDirectoryTest(unittest.TestCase):
    def make_directory(self, pid):
        directory = tempfile.mkdtemp(
            prefix="%s%d-" % (metrics.DIRECTORY_PREFIX, pid))
        self.addCleanup(lambda: os.path.isdir(directory) and os.rmdir(
            directory))
        return directory

    def test_a_directory_whose_parent_is_gone_is_removed(self):
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        orphan = self.make_directory(gone.pid)
        mine = self.make_directory(os.getpid())
        metrics._remove_orphans()
        self.assertFalse(os.path.exists(orphan))
        self.assertTrue(os.path.isdir(mine))

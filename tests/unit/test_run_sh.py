"""run.sh as a newcomer meets it: `help` lists every command, and `test`
ends with a counted summary whose verdict is the tools' exit codes.

Each test runs a copy of run.sh in a directory of its own, with stand-ins
for the venv's tools where it needs them, so nothing here touches the
repository's venv, a Redis or the network.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from tests.support.cases import cases
from tests.support.helpers import ROOT

RUN_SH = os.path.join(ROOT, "run.sh")
TIMEOUT_SECONDS = 30
# The commands of run.sh's last `case`: labels at the start of a line.
COMMAND_LABEL = re.compile(r"^([a-z][a-z|-]*)\)$", re.M)
SUMMARY = re.compile(r"^\d+ passed, \d+ failed, \d+ skipped$")

JUNIT = ('<testsuite name="nose2-junit" errors="{errors}" failures='
         '"{failures}" skipped="{skipped}" tests="{tests}" time="0.1">'
         '</testsuite>\n')
# A stand-in for a venv tool: exits with $FAKE_<NAME>_EXIT; nose2's also
# writes $FAKE_JUNIT (when set) as its report.
FAKE_TOOL = """#!/bin/sh
if [ -n "${{FAKE_JUNIT:-}}" ] && [ "{name}" = nose2 ]; then
    printf '%s' "$FAKE_JUNIT" > nose2-junit.xml
fi
exit "${{FAKE_{upper}_EXIT:-0}}"
"""


def commands_of_run_sh():
    with open(RUN_SH, encoding="utf-8") as script:
        return COMMAND_LABEL.findall(script.read())


class RunShTestCase(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="scoring-test-run-sh-")
        self.addCleanup(shutil.rmtree, self.directory, ignore_errors=True)
        shutil.copy(RUN_SH, self.directory)

    def run_sh(self, *args, **environ):
        return subprocess.run(
            ["bash", "run.sh", *args], cwd=self.directory,
            env={**os.environ, **environ}, capture_output=True, text=True,
            timeout=TIMEOUT_SECONDS)


class HelpTest(RunShTestCase):
    def test_the_command_labels_are_found(self):
        # Else the test below would check nothing.
        self.assertIn("test", commands_of_run_sh())
        self.assertIn("help|-h|--help", commands_of_run_sh())

    @cases(["help", "-h", "--help"])
    def test_help_lists_every_command_and_touches_nothing(self, spelling):
        result = self.run_sh(spelling)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        listed = [line.split()[0].rstrip(",")
                  for line in result.stdout.splitlines()
                  if line.startswith("  ")]
        for label in commands_of_run_sh():
            self.assertIn(label.split("|")[0], listed, result.stdout)
        self.assertIn("(none)", listed)  # serving, the default
        for line in result.stdout.splitlines():
            self.assertLessEqual(len(line), 79, line)
        # No venv made, no Redis started (it would keep its data in var/).
        self.assertEqual(os.listdir(self.directory), ["run.sh"])


class TestSummaryTest(RunShTestCase):
    """`./run.sh test` with stand-ins for flake8 and nose2."""

    def setUp(self):
        super().setUp()
        venv_bin = os.path.join(self.directory, ".venv", "bin")
        os.makedirs(venv_bin)
        os.symlink(sys.executable, os.path.join(venv_bin, "python"))
        for name in ("flake8", "nose2"):
            path = os.path.join(venv_bin, name)
            with open(path, "w") as tool:
                tool.write(FAKE_TOOL.format(name=name, upper=name.upper()))
            os.chmod(path, 0o755)
        requirements = b"# what the tests need\n"
        for name in ("requirements.txt", "requirements-test.txt"):
            with open(os.path.join(self.directory, name), "wb") as file:
                file.write(requirements)
        # Installed already: run.sh's stamp of what it installed.
        with open(os.path.join(self.directory, ".venv",
                               ".installed-requirements-test.txt"),
                  "w") as stamp:
            stamp.write(hashlib.sha256(requirements * 2).hexdigest() + "\n")

    @cases([
        # (report: tests, failures, errors, skipped, or None for none;
        #  nose2's exit, flake8's exit, summary, run.sh's exit)
        ((10, 0, 0, 2), 0, 0, "8 passed, 0 failed, 2 skipped", 0),
        ((10, 1, 2, 2), 1, 0, "5 passed, 3 failed, 2 skipped", 1),
        ((10, 0, 0, 0), 0, 1, "10 passed, 1 failed, 0 skipped", 1),
        # A layer that failed to set up: its error is not in the report.
        ((10, 0, 0, 0), 1, 0, "10 passed, 1 failed, 0 skipped", 1),
        ((10, 1, 0, 0), 1, 1, "9 passed, 2 failed, 0 skipped", 1),
        (None, 2, 0, "0 passed, 1 failed, 0 skipped", 2),
    ])
    def test_the_last_line_counts_and_the_exit_code_decides(self, case):
        report, nose2, flake8, summary, code = case
        junit = "" if report is None else JUNIT.format(
            tests=report[0], failures=report[1], errors=report[2],
            skipped=report[3])
        result = self.run_sh("test", FAKE_JUNIT=junit,
                             FAKE_NOSE2_EXIT=str(nose2),
                             FAKE_FLAKE8_EXIT=str(flake8))
        self.assertEqual(result.stdout.splitlines()[-1:], [summary],
                         result.stderr)
        self.assertRegex(summary, SUMMARY)
        self.assertEqual(result.returncode, code, result.stderr)

    def test_an_old_report_is_never_counted(self):
        with open(os.path.join(self.directory, "nose2-junit.xml"),
                  "w") as old:
            old.write(JUNIT.format(tests=99, failures=0, errors=0,
                                   skipped=0))
        result = self.run_sh("test", FAKE_NOSE2_EXIT="1")
        self.assertEqual(result.stdout.splitlines()[-1:],
                         ["0 passed, 1 failed, 0 skipped"], result.stderr)


class CiTest(unittest.TestCase):
    def test_ci_runs_run_sh_test_and_counts_nothing_itself(self):
        # One place counts (run.sh); CI's verdict is run.sh's exit code.
        with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as ci:
            lines = [line.strip() for line in ci
                     if line.strip() and not line.startswith("#")]
        self.assertEqual(lines[-1], "exec ./run.sh test")
        self.assertNotIn("junit", "\n".join(lines))

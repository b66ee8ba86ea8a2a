"""README.md's first requests, run as a newcomer runs them.

The ```sh blocks of README's "First requests" section are run in the
order written, in one shell from the repository's root, against the
service started as `./run.sh` starts it (config.ini) over the integration
layer's Redis: the README's address and Redis stand for the test's. Each
command followed by a `# ...` line must print that line: the answer as it
really comes.
"""
import json
import os
import re
import subprocess
import unittest

from tests.support.process import ProcessTestCase
from tests.support.helpers import ROOT
from tests.support.layers import RedisLayer, requires_redis

README = os.path.join(ROOT, "README.md")
SECTION = "## First requests"
# What README.md names, and what the test puts in its place.
SERVICE_ADDRESS = "127.0.0.1:8080"
REDIS_URL = "redis://127.0.0.1:6379/0"
MARK = "@@readme-step"
RUN_SECONDS = 120  # a guard against a hang, not a promise


def first_requests(readme=README):
    """[(commands, the line they print, or None)] of the ```sh blocks of
    README's first requests, in order: each run of command lines ends at
    the `# ` line that shows what it prints."""
    with open(readme, encoding="utf-8") as file:
        text = file.read()
    start = text.index("\n%s\n" % SECTION) + 1
    end = text.find("\n## ", start)
    section = text[start:] if end < 0 else text[start:end]
    steps = []
    for block in re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M):
        commands = []
        for line in block.splitlines():
            if line.startswith("# "):
                steps.append(("\n".join(commands), line[2:]))
                commands = []
            else:
                commands.append(line)
        if "".join(commands).strip():
            steps.append(("\n".join(commands), None))
    return steps


def script(steps, replace):
    """One bash script of `steps`, each followed by a line of MARK, its
    index and its exit status."""
    lines = ["set -e -o pipefail"]
    for i, (commands, _) in enumerate(steps):
        lines.append(replace(commands))
        lines.append("printf '\\n%s %d %%d\\n' $?" % (MARK, i))
    return "\n".join(lines) + "\n"


def answers(output):
    """{step index: its last line printed} from the script's output."""
    found, printed = {}, []
    for line in output.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == MARK:
            found[int(words[1])] = (int(words[2]), ([""] + [
                each for each in printed if each.strip()])[-1])
            printed = []
        else:
            printed.append(line)
    return found


def same(expected, printed):
    """JSON answers compare as JSON, other lines as text."""
    if expected.startswith("{"):
        try:
            return json.loads(expected) == json.loads(printed)
        except ValueError:
            return False
    return expected == printed


class ReadmeStepsTest(unittest.TestCase):
    def test_the_first_requests_load_interests_before_asking_for_them(self):
        steps = [commands for commands, _ in first_requests()]
        order = [next(i for i, commands in enumerate(steps) if word in
                      commands)
                 for word in ("load-interests", "online_score",
                              "clients_interests")]
        self.assertEqual(order, sorted(order))

    def test_every_request_shows_its_answer_on_one_line(self):
        for commands, printed in first_requests():
            if "curl" in commands:
                self.assertIsNotNone(printed, commands)
                self.assertRegex(printed, r'^\{"code":[0-9]{3},')


class FirstRequestsTest(ProcessTestCase):
    layer = RedisLayer

    def setUp(self):
        requires_redis(self)
        process = self.start("--config", "config.ini",
                             SCORING_STORE_URL=RedisLayer.url)
        self.wait_until_serving(process)

    def replace(self, text):
        return text.replace(SERVICE_ADDRESS, "127.0.0.1:%d" % self.port) \
            .replace(REDIS_URL, RedisLayer.url)

    def test_the_first_requests_answer_as_the_readme_shows(self):
        steps = first_requests()
        environ = {name: value for name, value in os.environ.items()
                   if not name.startswith("SCORING_")
                   or name.startswith("SCORING_TEST_")}
        environ["SCORING_STORE_URL"] = RedisLayer.url
        result = subprocess.run(
            ["bash", "-c", script(steps, self.replace)], cwd=ROOT,
            env=environ, capture_output=True, text=True,
            timeout=RUN_SECONDS)
        got = answers(result.stdout)
        wrong = []
        for i, (commands, expected) in enumerate(steps):
            status, printed = got.get(i, (None, None))
            if status != 0 or (expected is not None and not same(
                    self.replace(expected), printed)):
                wrong.append("step %d exited %s and printed %r, not %r:\n%s"
                             % (i, status, printed, expected, commands))
        self.assertEqual(wrong, [], result.stderr)

"""The servers the bench drives, how each is started and stopped: the
service (this checkout's or another's, with config.ini), bare Tornado
(bench/bare.py) and the peers (bench/peers/, in a venv of their own)."""
import collections
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench.support import ROOT, free_port, progress

HOST = "127.0.0.1"
PEERS_REQUIREMENTS = os.path.join(ROOT, "bench", "requirements-peers.txt")
PEERS_VENV = os.path.join(ROOT, "var", "bench-peers-venv")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
_PEER_LINE = re.compile(r"#\s*peer\s+([^:]+):\s*(.+)")


class Server(collections.namedtuple(
        "Server", "name kind settings workers checkout")):
    """A server to start: `kind` service, bare or peer; `settings`: the
    SCORING_* variables over config.ini (a value of None: a Redis URL
    where nothing listens); `checkout`: "this" or "before" (--against)."""

    def __new__(cls, name, kind, settings=None, workers=1, checkout="this"):
        return super().__new__(cls, name, kind, dict(settings or {}),
                               workers, checkout)


class Row(collections.namedtuple("Row", "name server script")):
    """A line of a table: the script named `script` sent to `server`."""


# The checkouts: ours, and --against's.
THIS, BEFORE = "this", "before"
# The service as both benchmarks run it: as config.ini has it, without
# the local tier (every score from Redis), and with two workers.
SERVICE = Server("service", "service")
# The miss row's process: a run of it caches more new scores (about
# 11,000 in 5 s) than the local tier holds (10,000), so on the hit row's
# process it would evict the hit bodies, and the hit row after it would
# measure their refill from Redis (measured: 4 % dearer in those rounds).
MISSES = Server("service, misses", "service")
NO_LOCAL_TIER = Server("service, no local tier", "service",
                       {"SCORING_CACHE_LOCAL_SIZE": "0"})
TWO_WORKERS = Server("service x2", "service",
                     {"SCORING_SERVER_WORKERS": "2"}, workers=2)


def peer_commands(text):
    """{name: command words} from the `# peer NAME: COMMAND` lines of the
    peers' requirements file."""
    commands = {}
    for line in text.splitlines():
        found = _PEER_LINE.fullmatch(line.strip())
        if found:
            commands[found.group(1).strip()] = found.group(2).split()
    return commands


def read_peer_commands(path=PEERS_REQUIREMENTS):
    with open(path) as requirements:
        return peer_commands(requirements.read())


def peers_python(venv=PEERS_VENV, requirements=PEERS_REQUIREMENTS):
    """The Python of the peers' venv, created (or brought up to date with
    the requirements file) when needed."""
    python = os.path.join(venv, "bin", "python")
    with open(requirements, "rb") as pinned:
        digest = hashlib.sha256(pinned.read()).hexdigest()
    stamp = os.path.join(venv, ".installed")
    try:
        with open(stamp) as installed:
            if installed.read().strip() == digest and os.access(
                    python, os.X_OK):
                return python
    except OSError:
        pass
    if not os.access(python, os.X_OK):
        progress("bench: creating %s for the peers" % os.path.relpath(
            venv, ROOT))
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    progress("bench: installing %s into it" % os.path.relpath(
        requirements, ROOT))
    subprocess.run([python, "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-r", requirements],
                   check=True)
    with open(stamp, "w") as installed:
        installed.write(digest + "\n")
    return python


def command(server, port, python=None, peers=None):
    """The command line of `server` on `port` (without a prefix);
    `python`: the peers' Python; `peers`: their commands."""
    if server.kind == "service":
        return [sys.executable, "-m", "scoring_api", "--config",
                "config.ini", "--port", str(port)]
    if server.kind == "bare":
        return [sys.executable, "-m", "bench.bare", "--port", str(port)]
    words = [word.format(host=HOST, port=port) for word in peers[server.name]]
    return [python if words[0] == "python" else words[0], *words[1:]]


def environ(server, redis_url, log_path):
    """The environment of `server`: the service's SCORING_* variables."""
    if server.kind != "service":
        return dict(os.environ)
    settings = dict(server.settings)
    for key, value in settings.items():
        if value is None:  # nothing listens there
            settings[key] = "redis://%s:%d/0" % (HOST, free_port())
    return dict(os.environ, SCORING_STORE_URL=redis_url,
                SCORING_SERVER_LOG_FILE=log_path, **settings)


class Running:
    """A started server: its process, port and log."""

    def __init__(self, server, port, process, log_path):
        self.server = server
        self.port = port
        self.process = process
        self.log_path = log_path

    @property
    def pid(self):
        return self.process.pid

    def wait_until_answering(self, timeout=START_TIMEOUT_SECONDS):
        wait_until_answering(
            self.port, "/health" if self.server.kind == "service"
            else "/method/", timeout, self.process)

    def stop(self, timeout=STOP_TIMEOUT_SECONDS):
        stop(self.process, timeout)


def start(server, port, workdir, redis_url=None, roots=None, prefix=(),
          python=None, peers=None):
    """Start `server` on `port` with `prefix` before its command (taskset,
    valgrind), its log (and its standard output and error) in `workdir`;
    `roots`: {checkout: directory}."""
    label = re.sub(r"\W+", "-", "%s-%s" % (server.checkout, server.name))
    log_path = os.path.join(workdir, label + ".log")
    output = open(os.path.join(workdir, label + ".out"), "w")
    root = (roots or {}).get(server.checkout, ROOT)
    with output:
        process = subprocess.Popen(
            [*prefix, *command(server, port, python, peers)],
            env=environ(server, redis_url, log_path), cwd=root,
            stdout=output, stderr=subprocess.STDOUT)
    return Running(server, port, process, log_path)


def wait_until_answering(port, path="/health",
                         timeout=START_TIMEOUT_SECONDS, process=None):
    """Return once something answers HTTP on `port` (any status); a
    RuntimeError after `timeout` seconds, or as soon as `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the server for port %d exited with %d"
                               % (port, process.returncode))
        try:
            urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path),
                                   timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing answers on port %d in %.0f s"
                       % (port, timeout))


def stop(process, timeout=STOP_TIMEOUT_SECONDS):
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def checkout(rev_or_directory):
    """(directory, temporary?) of --against: a directory holding a
    checkout of the service, or a git revision of this repository
    exported into a temporary directory (`git archive`)."""
    if os.path.isfile(os.path.join(rev_or_directory, "scoring_api",
                                   "__main__.py")):
        return os.path.abspath(rev_or_directory), False
    directory = tempfile.mkdtemp(prefix="scoring-bench-against-")
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", rev_or_directory],
        capture_output=True)
    if archive.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise ValueError("--against: %s is neither a checkout nor a"
                         " revision of this repository: %s" % (
                             rev_or_directory,
                             archive.stderr.decode(errors="replace").strip()))
    subprocess.run(["tar", "-x", "-C", directory], input=archive.stdout,
                   check=True)
    return directory, True

"""supervisor.supervise in a process of its own, with workers that only
say what happens to them: `python -m tests.support.supervised KIND
WORKERS LIMIT WINDOW STOP_SECONDS` exits with supervise's code.

Each worker writes "<kind> <pid> <parent pid>" on standard output once
it handles its signals, "hup <pid>" on SIGHUP and "stop <pid>" on
SIGTERM. KIND: `serve` (until SIGTERM), `crash` (raises at once, saying
so first), `done` (returns at once, saying so first), `stuck` (ignores
SIGTERM).
The supervisor logs to standard error, one message a line.

`Supervised` starts one and reads what it and its workers say, each read
bounded in time, so that a test fails instead of hanging.
"""
import logging
import os
import select
import signal
import subprocess
import sys
import time

from tests.support.helpers import ROOT

# Guards against a hang, not promises.
WAIT_SECONDS = 15.0


def say(line):
    os.write(1, (line + "\n").encode())


def work(kind, parent):
    if kind in ("crash", "done"):
        say("%s %d %d" % (kind, os.getpid(), parent))
        if kind == "crash":
            raise RuntimeError("crashed at start")
        return
    stopped = []
    signal.signal(signal.SIGHUP, lambda *_: say("hup %d" % os.getpid()))
    signal.signal(signal.SIGTERM, signal.SIG_IGN if kind == "stuck" else (
        lambda *_: stopped.append(True)))
    say("%s %d %d" % (kind, os.getpid(), parent))  # its signals handled
    while not stopped:
        time.sleep(0.01)
    say("stop %d" % os.getpid())


def main(argv):
    from scoring_api import supervisor

    kind, workers, limit, window, stop_seconds = argv
    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    return supervisor.supervise(
        lambda parent: work(kind, parent), int(workers),
        supervisor.RestartLimit(int(limit), float(window)),
        float(stop_seconds))


class Supervised:
    """The supervisor process and what it and its workers said so far."""

    def __init__(self, kind, workers=2, limit=3, window=60.0,
                 stop_seconds=5.0, sigchld=signal.SIG_DFL):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.supervised", kind,
             str(workers), str(limit), str(window), str(stop_seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its workers too, for `kill`
            # What its launcher leaves it: ignored, the kernel reaps.
            preexec_fn=lambda: signal.signal(signal.SIGCHLD, sigchld))
        self.said = []
        self.buffer = b""

    def read_until(self, found):
        """The lines of standard output until `found(lines)` is true."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not found(self.said):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [],
                                              [], left)[0]:
                raise AssertionError("waited in vain; said: %r" % self.said)
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError("output closed; said: %r" % self.said)
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            self.said += [line.decode() for line in lines]
        return self.said

    def started(self, count):
        """The pids of the first `count` workers started, once they are."""
        lines = self.read_until(lambda said: len(self.starts(said)) >= count)
        return self.starts(lines)[:count]

    @staticmethod
    def starts(lines):
        return [int(line.split()[1]) for line in lines
                if line.split()[0] in ("serve", "crash", "done", "stuck")]

    def finish(self):
        """(exit code, its log lines, every output line) once it exits."""
        out, err = self.process.communicate(timeout=WAIT_SECONDS)
        self.buffer += out
        self.said += [line.decode() for line in self.buffer.split(b"\n")
                      if line]
        self.buffer = b""
        return self.process.returncode, err.decode().splitlines(), self.said

    def kill(self):
        """Kill the supervisor and every worker left (its process group):
        a worker left behind would hold standard output open."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.returncode is None:
            self.process.communicate(timeout=WAIT_SECONDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The parent of several workers (docs/operations.md, "Workers" and
"Signals"): forks them, replaces one that dies within a restart limit,
passes SIGTERM, SIGINT and SIGHUP on, and reaps them at the stop."""
import collections
import logging
import os
import signal
import time

from scoring_api import metrics
from scoring_api.logs import flush_logs, reopen_logs

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often the supervisor looks for dead workers, a signal's work and its
# own buffered log lines.
POLL_SECONDS = 0.1
# How often a stopping supervisor looks whether its workers are gone.
REAP_POLL_SECONDS = 0.05


class RestartLimit:
    """At most `limit` worker restarts within any `window` seconds: a
    worker dying once a day is replaced for ever, a crash loop is not."""

    def __init__(self, limit, window, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.times = collections.deque()

    def allow(self):
        """True, and counted, when one more restart is within the limit."""
        now = self.clock()
        while self.times and now - self.times[0] >= self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


def supervise(work, workers, restarts, stop_seconds):
    """Run `workers` processes, each `work(parent_pid)`, until SIGTERM or
    SIGINT (passed on to them) or a crash loop; returns the exit code.

    A worker that dies is replaced while `restarts` (a RestartLimit)
    allows; one death more stops the service with 1, as a supervisor
    (systemd, a container runtime) must see a crash loop. SIGHUP reopens
    the log file and is passed on. At the stop each worker gets
    `stop_seconds` to exit, then SIGKILL.
    """
    children = set()
    stopping = []
    reopen = []

    def stop(signum, frame):
        if not stopping:
            stopping.append(signum)
            _signal_all(children, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    # A launcher may leave SIGCHLD ignored: the kernel would then reap the
    # workers itself, and a dead one would never be seen nor replaced.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # The loop below does the work: a handler that logged could interrupt
    # a write to the same file.
    signal.signal(signal.SIGHUP, lambda *_: reopen.append(True))
    for _ in range(workers):
        children.add(_start_worker(work))
    logger.info("started %d workers: %s", workers, sorted(children))
    gave_up = False
    while not stopping:
        if reopen:
            del reopen[:]
            # When the supervisor cannot reopen, neither can the workers
            # (the same path): they keep their file, and it is said once.
            if reopen_logs():
                _signal_all(children, signal.SIGHUP)
        flush_logs()  # the supervisor's lines reach the file too
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            time.sleep(POLL_SECONDS)
            continue
        children.discard(pid)
        metrics.worker_died(pid)
        if stopping:
            break
        code = os.waitstatus_to_exitcode(status)
        if not restarts.allow():
            logger.error("worker %d exited with %d; too many restarts (%d in"
                         " %gs), stopping", pid, code, restarts.limit,
                         restarts.window)
            stop(signal.SIGTERM, None)
            gave_up = True
            break
        logger.error("worker %d exited with %d; starting another", pid, code)
        children.add(_start_worker(work))
    _reap(children, stop_seconds)
    return 1 if gave_up else 0


def _start_worker(work):
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _run_worker(work, parent)  # never returns
    return pid


def _run_worker(work, parent):
    """The forked worker: `work(parent)`, then end the process with
    os._exit.

    A function of its own, so that coverage measures it (it restarts in
    the child after the fork, for new frames only)."""
    code = 1
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        work(parent)
        code = 0
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()  # os._exit skips it, and the buffered lines
        os._exit(code)


def _reap(children, timeout):
    """Wait for `children` to exit; kill those still there after
    `timeout` seconds."""
    _signal_all(children, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while children and time.monotonic() < deadline:
        for pid in list(children):
            if os.waitpid(pid, os.WNOHANG)[0]:
                children.discard(pid)
        time.sleep(REAP_POLL_SECONDS)
    for pid in children:
        logger.error("worker %d did not stop in %.1fs; killing it",
                     pid, timeout)
        signal_pid(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _signal_all(pids, signum):
    for pid in list(pids):
        signal_pid(pid, signum)


def signal_pid(pid, signum):
    """Send `signum` to `pid`, which may have exited meanwhile."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass

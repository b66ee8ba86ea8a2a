"""Serving: one process, or several sharing the port, and a graceful stop."""
import asyncio
import collections
import gc
import logging
import os
import signal
import socket
import time

from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets

from scoring_api import metrics
from scoring_api.app import make_app
from scoring_api.connections import (LimitedHTTPServer,
                                     raise_descriptor_limit,
                                     warn_if_descriptors_short)
from scoring_api.logs import flush_logs, reopen_logs
from scoring_api.store import Store
from scoring_api.traffic import Traffic

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DRAIN_POLL_SECONDS = 0.05
# Young-generation collections every 7000 allocations, not 700: requests
# allocate a lot of short-lived objects (measured: p99 -20% at 16 clients).
GC_THRESHOLDS = (7000, 10, 10)
LOG_FLUSH_MILLISECONDS = 1000
# How often a worker checks that its supervisor still lives.
PARENT_CHECK_MILLISECONDS = 1000
# How often the supervisor looks for dead workers, a signal's work and its
# own buffered log lines.
SUPERVISOR_POLL_SECONDS = 0.1


def listen(settings, reuse_port=False):
    """Sockets bound to the configured address; OSError when taken."""
    return bind_sockets(settings.server.port, settings.server.host,
                        family=socket.AF_INET if ":" not in
                        settings.server.host else socket.AF_UNSPEC,
                        reuse_port=reuse_port)


def make_server(settings, app):
    """The HTTP server of one process for `app`, with every bound of
    [server]."""
    return LimitedHTTPServer(
        app,
        max_body_size=settings.server.max_body_bytes,
        # Also the header timeout: how long a connection may wait for the
        # headers of its next request.
        idle_connection_timeout=settings.server.idle_timeout,
        body_timeout=settings.server.body_timeout,  # kept by the server
        xheaders=settings.server.xheaders,  # the client behind a proxy
        max_connections=settings.server.max_connections,
        write_timeout=settings.server.write_timeout,
    )


async def serve(settings, sockets, parent=None):
    """Serve on `sockets` until SIGTERM or SIGINT (or, for a worker, until
    its supervisor `parent` is gone), then stop gracefully: stop
    accepting, close idle connections, answer the requests being read
    with Connection: close (for at most `shutdown_timeout`), then close
    what is left and the store."""
    store = Store.from_settings(settings)
    traffic = Traffic()
    app = make_app(settings, store, traffic)
    server = make_server(settings, app)
    server.add_sockets(sockets)
    # What start-up made lives as long as the process: keep it out of every
    # collection (and unshared pages untouched in forked workers).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log_flusher = PeriodicCallback(flush_logs, LOG_FLUSH_MILLISECONDS)
    log_flusher.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, reopen_logs)  # logrotate
    if parent is not None:
        # A supervisor killed with SIGKILL cannot pass a stop on: a worker
        # left alone would keep serving stale config beside a new start.
        orphan_check = PeriodicCallback(
            lambda: _stop_if_orphaned(parent, stopping),
            PARENT_CHECK_MILLISECONDS)
        orphan_check.start()
    logger.info("serving on %s:%d (pid %d)", settings.server.host,
                settings.server.port, os.getpid())
    flush_logs()  # an operator, or a test, waits for this line
    await stopping.wait()
    logger.info("stopping: %d requests in flight", traffic.in_flight)
    # No new connection, no next request on a kept-alive one: every
    # request already being read is answered with Connection: close.
    server.stop()
    traffic.draining = True
    server.drain()
    deadline = time.monotonic() + settings.server.shutdown_timeout
    while server.open_connections and time.monotonic() < deadline:
        await asyncio.sleep(DRAIN_POLL_SECONDS)
    await server.close_all_connections()
    await store.close()
    log_flusher.stop()
    logger.info("stopped")
    flush_logs()


def _stop_if_orphaned(parent, stopping):
    if os.getppid() != parent and not stopping.is_set():
        logger.warning("the supervisor (pid %d) is gone; stopping", parent)
        stopping.set()


def run(settings):
    """Serve with `settings.server.workers` processes; returns an exit code.

    Each worker binds its own socket with SO_REUSEPORT, so the kernel
    spreads connections evenly (a shared socket lets one process take
    most keep-alive connections).
    """
    workers = settings.server.workers
    reuse_port = workers > 1
    # A SIGHUP (logrotate) before the service handles it would end the
    # process (the signal's default): until then it is ignored.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Before anything forks: workers inherit the limit.
    warn_if_descriptors_short(settings, raise_descriptor_limit())
    # Before anything forks or serves: MetricsDirectoryError stops here.
    metrics.prepare(workers)
    try:
        # Bind once here, so a taken port fails before anything forks.
        sockets = listen(settings, reuse_port)
        if workers == 1:
            asyncio.run(serve(settings, sockets))
            return 0
        for sock in sockets:
            sock.close()
        return _supervise(settings, workers)
    finally:
        metrics.end_run()  # the workers' metrics directory


def _start_worker(settings):
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _run_worker(settings, parent)  # never returns
    return pid


def _run_worker(settings, parent):
    """The forked worker: serve, then end the process with os._exit.

    A function of its own, so that coverage measures it (it restarts in
    the child after the fork, for new frames only)."""
    code = 1
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        asyncio.run(serve(settings, listen(settings, reuse_port=True),
                          parent))
        code = 0
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()  # os._exit skips it, and the buffered lines
        os._exit(code)


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


def _supervise(settings, workers):
    """Parent of the workers: restart one that dies (within the restart
    limit); on SIGHUP reopen the log file and pass the signal on; on
    SIGTERM or SIGINT pass it on and wait (bounded) for every worker."""
    children = set()
    stopping = []
    reopen = []

    def stop(signum, frame):
        if not stopping:
            stopping.append(signum)
            _signal_all(children, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    # The loop below does the work: a handler that logged could interrupt
    # a write to the same file.
    signal.signal(signal.SIGHUP, lambda *_: reopen.append(True))
    for _ in range(workers):
        children.add(_start_worker(settings))
    logger.info("started %d workers: %s", workers, sorted(children))
    restarts = RestartLimit(settings.server.max_worker_restarts,
                            settings.server.restart_window)
    gave_up = False
    while not stopping:
        if reopen:
            del reopen[:]
            # When the supervisor cannot reopen, neither can the workers
            # (the same path): they keep their file, and it is said once.
            if reopen_logs():
                _signal_all(children, signal.SIGHUP)
        flush_logs()  # the supervisor's lines reach the file too
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not pid:
            time.sleep(SUPERVISOR_POLL_SECONDS)
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
        children.add(_start_worker(settings))
    _reap(children, settings.server.shutdown_timeout + 2.0)
    # A supervisor (systemd, a container runtime) must see a crash loop.
    return 1 if gave_up else 0


def _reap(children, timeout):
    """Wait for `children` to exit; kill those still there after
    `timeout` seconds."""
    _signal_all(children, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while children and time.monotonic() < deadline:
        for pid in list(children):
            if os.waitpid(pid, os.WNOHANG)[0]:
                children.discard(pid)
        time.sleep(DRAIN_POLL_SECONDS)
    for pid in children:
        logger.error("worker %d did not stop in %.1fs; killing it",
                     pid, timeout)
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _signal_all(pids, signum):
    for pid in list(pids):
        _signal(pid, signum)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass

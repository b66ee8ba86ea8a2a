"""Serving (docs/operations.md, "Workers" and "Signals"): one process, or
several sharing the port under a supervisor, each stopping gracefully."""
import asyncio
import functools
import gc
import logging
import os
import signal
import socket
import time

from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets

try:  # optional (requirements.txt): the event loop on libuv
    import uvloop
except ImportError:  # asyncio's own loop then
    uvloop = None

from scoring_api import metrics
from scoring_api.accept import raise_descriptor_limit, \
    warn_if_descriptors_short
from scoring_api.admission import Admission
from scoring_api.app import make_app
from scoring_api.httpserver import ScoringHTTPServer
from scoring_api.logs import flush_logs, reopen_logs
from scoring_api.overload import LoopLag
from scoring_api.store import Store, check_cache_eviction
from scoring_api.store.counters import QuotaCounters
from scoring_api.supervisor import STOP_SIGNALS, RestartLimit, supervise
from scoring_api.traffic import Traffic

logger = logging.getLogger(__name__)

DRAIN_POLL_SECONDS = 0.05
# Young-generation collections every 7000 allocations, not 700: requests
# allocate a lot of short-lived objects (measured: p99 -20% at 16 clients).
GC_THRESHOLDS = (7000, 10, 10)
LOG_FLUSH_MILLISECONDS = 1000
# How often a worker checks that its supervisor still lives.
PARENT_CHECK_MILLISECONDS = 1000
# What a stopping supervisor gives its workers beyond shutdown_timeout.
REAP_MARGIN_SECONDS = 2.0


def listen(settings):
    """Sockets bound to the configured address; OSError when taken.

    Always with SO_REUSEPORT (where there is one): the workers each bind
    the port, and a new instance can start on it beside the one it
    replaces (a rolling restart); a port another program holds still
    fails."""
    return bind_sockets(settings.server.port, settings.server.host,
                        family=socket.AF_INET if ":" not in
                        settings.server.host else socket.AF_UNSPEC,
                        reuse_port=hasattr(socket, "SO_REUSEPORT"))


def make_server(settings, app, traffic=None):
    """The HTTP server of one process for `app`, with every bound of
    [server], counting in `traffic` (the one `app` was made with; a new
    one when not given)."""
    return ScoringHTTPServer(
        app,
        traffic=Traffic() if traffic is None else traffic,
        max_body_size=settings.server.max_body_bytes,
        # How long a kept-alive connection may wait for the first byte of
        # its next request (kept by the server, not Tornado's timer).
        idle_connection_timeout=settings.server.idle_timeout,
        header_timeout=settings.server.header_timeout,  # the head alone
        body_timeout=settings.server.body_timeout,  # kept by the server
        xheaders=settings.server.xheaders,  # the client behind a proxy
        max_connections=settings.server.max_connections,
        write_timeout=settings.server.write_timeout,
    )


async def serve(settings, sockets, parent=None):
    """Serve on `sockets` until SIGTERM or SIGINT (or, for a worker, until
    its supervisor `parent` is gone), then stop gracefully: drain (every
    request a client sent is answered, with Connection: close), wait for
    the connections to close (at most `shutdown_timeout`), then close
    what is left and the store."""
    lag = LoopLag(starved_lag=settings.overload.starved_lag)
    store = Store.from_settings(settings, is_starved=lag.is_starved)
    # The quotas' counters go through the cache's Redis (its timeouts,
    # retries and modes).
    admission = Admission.from_settings(settings, lag,
                                        QuotaCounters(store.cache))
    admission.start()
    traffic = Traffic()
    app = make_app(settings, store, traffic, admission)
    server = make_server(settings, app, traffic)
    server.add_sockets(sockets)
    # What start-up made lives as long as the process: keep it out of every
    # collection (and unshared pages untouched in forked workers).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log_flusher = PeriodicCallback(_every_second, LOG_FLUSH_MILLISECONDS)
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
    # Held 429s answer now; no new connection, no next request on a
    # kept-alive one: every request a client sent is answered with
    # Connection: close.
    admission.overload.release_holds()
    await server.drain()
    deadline = time.monotonic() + settings.server.shutdown_timeout
    while server.open_connections and time.monotonic() < deadline:
        await asyncio.sleep(DRAIN_POLL_SECONDS)
    await server.close_all_connections()
    await admission.stop()
    await store.close()
    log_flusher.stop()
    logger.info("stopped")
    flush_logs()


def _every_second():
    flush_logs()
    metrics.refresh()


def _stop_if_orphaned(parent, stopping):
    if os.getppid() != parent and not stopping.is_set():
        logger.warning("the supervisor (pid %d) is gone; stopping", parent)
        stopping.set()


def run_loop(coroutine):
    """asyncio.run(coroutine), on uvloop's loop when it is installed:
    measured (callgrind), 8.7 % fewer instructions a cached score."""
    factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def run(settings):
    """Serve with `settings.server.workers` processes; returns an exit code.

    Each worker binds its own socket with SO_REUSEPORT, so the kernel
    spreads connections evenly (a shared socket lets one process take
    most keep-alive connections).
    """
    workers = settings.server.workers
    # A SIGHUP (logrotate) before the service handles it would end the
    # process (the signal's default): until then it is ignored.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Before anything forks: workers inherit the limit.
    warn_if_descriptors_short(settings, raise_descriptor_limit())
    # Before anything forks or serves: MetricsDirectoryError stops here.
    metrics.prepare(workers)
    try:
        # Bind once here, so a taken port fails before anything forks.
        sockets = listen(settings)
        # Once per start, before anything forks: a warning when the
        # cache's Redis could evict interests or quota counters.
        asyncio.run(check_cache_eviction(settings))
        if workers == 1:
            run_loop(serve(settings, sockets))
            return 0
        for sock in sockets:
            sock.close()
        return _supervise(settings, workers)
    finally:
        metrics.end_run()  # the workers' metrics directory


def _supervise(settings, workers):
    """`workers` forked workers under the supervisor, with [server]'s
    restart limit and stop time."""
    return supervise(
        functools.partial(_serve_worker, settings), workers,
        RestartLimit(settings.server.max_worker_restarts,
                     settings.server.restart_window),
        settings.server.shutdown_timeout + REAP_MARGIN_SECONDS)


def _serve_worker(settings, parent):
    """One forked worker's life: its own socket, then serve."""
    run_loop(serve(settings, listen(settings), parent))

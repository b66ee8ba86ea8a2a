"""Prometheus metrics (docs/operations.md, "Metrics"): the only module that
knows prometheus_client.

The others call a few functions: `observe_request`, `request_started` /
`request_finished`, `redis_error`, `set_circuit_open`, `call_refused`,
`call_over_quota`, `watch_loop_lag` / `refresh`, and `render` for
`GET /metrics`. The server calls `prepare` before anything forks or
serves, then `worker_died` and `end_run`.

With several workers the counts live in prometheus_client's multiprocess
mode: every worker writes its own files in one directory the service makes
for the run (in PROMETHEUS_MULTIPROC_DIR when the operator sets it, else
in the temporary directory) and removes at the stop; any worker's
`/metrics` adds them up. With one worker the counts stay in memory and
PROMETHEUS_MULTIPROC_DIR is not used. prometheus_client chooses between
the two when it is first imported (by the variable), so it is imported
only when the first metric is made, after `prepare` had its say.
"""
import glob
import logging
import os
import re
import shutil
import tempfile

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_PREFIX = "scoring-api-metrics-"  # then the parent's pid and "-"
NO_METHOD = "unknown"  # api_method of a call whose method is not known
# From a local-tier hit (well under a millisecond) to the store's worst
# case (seconds).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_metrics = None
_run = {"directory": None, "given": None}


class _Metrics:
    """The metrics of docs/operations.md, and their labelled children
    cached so that a request costs no label lookup."""

    def __init__(self):
        import prometheus_client as prometheus  # see the module docstring
        prometheus.disable_created_metrics()
        self.requests = prometheus.Counter(
            "scoring_api_requests_total", "API calls answered",
            ["api_method", "code"])
        self.duration = prometheus.Histogram(
            "scoring_api_request_duration_seconds",
            "Time to answer an API call", ["api_method"],
            buckets=DURATION_BUCKETS)
        self.redis_errors = prometheus.Counter(
            "scoring_api_redis_errors_total",
            "Redis calls that failed after their retries", ["role"])
        # A worker's breaker is open or not; any live worker's open one
        # shows as 1.
        self.circuit_open = prometheus.Gauge(
            "scoring_api_cache_circuit_open",
            "1 while the cache's circuit breaker is open",
            multiprocess_mode="livemax")
        self.in_flight = prometheus.Gauge(
            "scoring_api_requests_in_flight", "Requests being served",
            multiprocess_mode="livesum")
        # Across workers, each writes its count to its file as it moves;
        # in one process the gauge reads a plain count when scraped (a
        # sixth of what the gauge's own inc and dec cost a request).
        self.shared = bool(_run["directory"])
        self.requests_in_flight = 0
        if not self.shared:
            self.in_flight.set_function(lambda: self.requests_in_flight)
        self.answered = {}  # (api_method, code): (counter, histogram)
        self.errors_by_role = {}
        # Partner labels: the accounts of [limits.accounts], else "other"
        # (quotas.Quotas.partner_label): a bounded set.
        self.refused = prometheus.Counter(
            "scoring_api_calls_refused_total",
            "API calls refused over quota (reason quota) or shed by an"
            " overloaded process (loop_lag, in_flight, store_overloaded)",
            ["reason", "partner"])
        self.over_quota = prometheus.Counter(
            "scoring_api_calls_over_quota_total",
            "API calls over their partner's quota: refused, or served in"
            " shadow mode", ["partner", "enforced"])
        # The worst live worker's lag.
        self.loop_lag = prometheus.Gauge(
            "scoring_api_event_loop_lag_seconds",
            "How late the event loop runs its timers (smoothed)",
            multiprocess_mode="livemax")
        self.lag_source = None
        self.refused_children = {}
        self.over_quota_children = {}

    def answered_children(self, api_method, code):
        key = (api_method, code)
        children = self.answered.get(key)
        if children is None:
            children = self.answered[key] = (
                self.requests.labels(api_method, str(code)),
                self.duration.labels(api_method))
        return children


def _get():
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


def observe_request(api_method, code, seconds):
    """One API call answered with `code` after `seconds`."""
    count, duration = _get().answered_children(api_method or NO_METHOD, code)
    count.inc()
    duration.observe(seconds)


def request_started():
    """A request began (the server's Traffic counts every request)."""
    metrics = _get()
    if metrics.shared:
        metrics.in_flight.inc()
    else:
        metrics.requests_in_flight += 1


def request_finished():
    metrics = _get()
    if metrics.shared:
        metrics.in_flight.dec()
    else:
        metrics.requests_in_flight -= 1


def redis_error(role):
    """A call to the Redis of `role` ("store" or "cache") failed."""
    metrics = _get()
    child = metrics.errors_by_role.get(role)
    if child is None:
        child = metrics.errors_by_role[role] = metrics.redis_errors.labels(
            role)
    child.inc()


def call_refused(reason, partner):
    """An API call refused over quota ("quota") or shed (the overload
    reason: "loop_lag", "in_flight", "store_overloaded")."""
    metrics = _get()
    key = (reason, partner)
    child = metrics.refused_children.get(key)
    if child is None:
        child = metrics.refused_children[key] = metrics.refused.labels(
            reason, partner)
    child.inc()


def call_over_quota(partner, enforced):
    """An API call over its partner's quota: refused when `enforced`,
    else served (shadow mode)."""
    metrics = _get()
    key = (partner, enforced)
    child = metrics.over_quota_children.get(key)
    if child is None:
        child = metrics.over_quota_children[key] = metrics.over_quota.labels(
            partner, "true" if enforced else "false")
    child.inc()


def watch_loop_lag(read):
    """The loop-lag gauge shows `read()` (seconds): at each scrape in one
    process; across workers, as of the last `refresh`."""
    metrics = _get()
    metrics.lag_source = read
    if not metrics.shared:
        metrics.loop_lag.set_function(read)
    else:
        refresh()


def refresh():
    """Across workers: write the gauges read from a source (the loop's
    lag) to this worker's file; the server calls it every second."""
    metrics = _get()
    if metrics.shared and metrics.lag_source is not None:
        metrics.loop_lag.set(metrics.lag_source())


def set_circuit_open(is_open):
    _get().circuit_open.set(1 if is_open else 0)


def render():
    """(body, content type) of the Prometheus text of every worker."""
    _get()
    import prometheus_client as prometheus
    if _run["directory"]:  # set by the parent before it forked
        from prometheus_client import multiprocess
        registry = prometheus.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus.REGISTRY
    return prometheus.generate_latest(registry), prometheus.CONTENT_TYPE_LATEST


class MetricsDirectoryError(Exception):
    """The metrics directory of a run cannot be made: start-up stops."""


def prepare(workers):
    """Before anything forks or serves: in-process metrics for one worker
    (the operator's PROMETHEUS_MULTIPROC_DIR is checked, then set aside),
    a run directory for several. MetricsDirectoryError when the directory
    cannot be used."""
    given = os.environ.get(MULTIPROC_ENV)
    if workers > 1:
        return start_run()
    if given is not None:
        _check(given)
        del os.environ[MULTIPROC_ENV]  # before prometheus_client's import
        logger.info("one worker: metrics in memory, %s=%s not used",
                    MULTIPROC_ENV, given)
    return None


def _check(given):
    try:
        os.rmdir(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX, dir=given))
    except OSError as error:
        raise MetricsDirectoryError(_cannot_use(given, error)) from None


def _cannot_use(given, error):
    where = ("%s = %r" % (MULTIPROC_ENV, given) if given is not None
             else "the temporary directory %s" % tempfile.gettempdir())
    return "%s: cannot make the metrics directory there: %s" % (
        where, error.strerror or error)


def start_run():
    """Before forking workers: a new directory for this run's counts, in
    the operator's PROMETHEUS_MULTIPROC_DIR or the temporary directory;
    `end_run` removes it (the next run does when its parent was killed).
    Files there that are not the service's are left alone."""
    if _metrics is not None:
        raise RuntimeError("start_run() after the first metric was made")
    given = os.environ.get(MULTIPROC_ENV)
    parent = given if given is not None else tempfile.gettempdir()
    try:
        _remove_orphans(parent)
        directory = tempfile.mkdtemp(
            prefix="%s%d-" % (DIRECTORY_PREFIX, os.getpid()), dir=parent)
    except OSError as error:
        raise MetricsDirectoryError(_cannot_use(given, error)) from None
    os.environ[MULTIPROC_ENV] = directory
    _run.update(directory=directory, given=given)
    logger.info("metrics of the workers in %s", directory)
    return directory


def worker_died(pid):
    """Forget the gauges of a worker that is gone (its counts stay)."""
    if _run["directory"]:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid, _run["directory"])


def end_run():
    """After the last worker stopped: the run's directory is removed."""
    directory = _run["directory"]
    if not directory:
        return
    shutil.rmtree(directory, ignore_errors=True)
    if _run["given"] is None:
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        os.environ[MULTIPROC_ENV] = _run["given"]
    _run.update(directory=None, given=None)


def _remove_orphans(parent):
    """Directories of earlier runs in `parent` whose parent process and
    workers are all gone (a worker may outlive a killed parent)."""
    pattern = os.path.join(parent, DIRECTORY_PREFIX + "*-*")
    for directory in glob.glob(pattern):
        pid = os.path.basename(directory)[len(DIRECTORY_PREFIX):]
        pid = pid.partition("-")[0]
        if pid.isdigit() and not any(
                map(_alive, [int(pid), *_writers(directory)])):
            shutil.rmtree(directory, ignore_errors=True)


def _writers(directory):
    """Pids of the processes whose files are in `directory`
    (counter_123.db, gauge_livesum_123.db, ...)."""
    names = (os.path.basename(path) for path in
             glob.glob(os.path.join(directory, "*.db")))
    return [int(match.group(1)) for match in
            map(_WRITER_FILE.search, names) if match]


_WRITER_FILE = re.compile(r"_([0-9]+)\.db$")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's
    return True

"""Prometheus metrics (SPEC 8): the only module that knows prometheus_client.

The others call a few functions: `observe_request`, `request_started` /
`request_finished`, `redis_error`, `set_circuit_open`, and `render` for
`GET /metrics`. The server calls `start_run`, `worker_died` and `end_run`.

With several workers the counts live in prometheus_client's multiprocess
mode: every worker writes its own files in one directory per run, and any
worker's `/metrics` adds them up. prometheus_client chooses between that
and plain in-process values when it is first imported, so it is imported
only when the first metric is made, after `start_run` had its say.
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
_run = {"directory": None, "owned": False}


class _Metrics:
    """The five metrics of SPEC 8, and their labelled children cached so
    that a request costs no label lookup."""

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
            "scoring_api_requests_in_flight", "API calls being served",
            multiprocess_mode="livesum")
        self.answered = {}  # (api_method, code): (counter, histogram)
        self.errors_by_role = {}

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
    _get().in_flight.inc()


def request_finished():
    _get().in_flight.dec()


def redis_error(role):
    """A call to the Redis of `role` ("store" or "cache") failed."""
    metrics = _get()
    child = metrics.errors_by_role.get(role)
    if child is None:
        child = metrics.errors_by_role[role] = metrics.redis_errors.labels(
            role)
    child.inc()


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


def start_run():
    """Before forking workers: one empty directory for this run's counts.

    The operator's PROMETHEUS_MULTIPROC_DIR is used (and emptied) when set;
    otherwise a new temporary directory, removed by `end_run` (and by the
    next run's `start_run` when its parent was killed).
    """
    if _metrics is not None:
        raise RuntimeError("start_run() after the first metric was made")
    directory = os.environ.get(MULTIPROC_ENV)
    owned = not directory
    if owned:
        _remove_orphans()
        directory = tempfile.mkdtemp(
            prefix="%s%d-" % (DIRECTORY_PREFIX, os.getpid()))
        os.environ[MULTIPROC_ENV] = directory
    else:
        os.makedirs(directory, exist_ok=True)
        _remove_counts(directory)
    _run.update(directory=directory, owned=owned)
    logger.info("metrics of the workers in %s", directory)
    return directory


def worker_died(pid):
    """Forget the gauges of a worker that is gone (its counts stay)."""
    if _run["directory"]:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid, _run["directory"])


def end_run():
    """After the last worker stopped: no counts left behind."""
    directory = _run["directory"]
    if not directory:
        return
    if _run["owned"]:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        _remove_counts(directory)
    _run.update(directory=None, owned=False)


def _remove_orphans():
    """Directories of earlier runs whose parent and workers are all gone
    (a worker may outlive a killed parent for a moment)."""
    pattern = os.path.join(tempfile.gettempdir(), DIRECTORY_PREFIX + "*-*")
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


def _remove_counts(directory):
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.unlink(path)

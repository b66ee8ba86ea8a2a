"""A run of two workers as scoring_api.metrics sees it, in a process of its
own: prometheus_client chooses multiprocess mode when it is first
imported, which a test process did long before.

`python -m tests.support.metrics_run` (from the repository's root) starts
a run as the server's parent does, forks a worker that counts calls, sets
its gauges and dies in the middle of a request, scrapes from the parent
before and after `worker_died`, ends the run, and prints JSON:
{"directory": the run's, "scrapes": [Prometheus text, ...],
"left": whether the directory is still there, "environ": the variable
after the run}.
"""
import json
import os
import sys

from scoring_api import metrics


def worker():
    """What a worker's server does, then a death without a goodbye."""
    metrics.refresh()  # the every-second timer, before any lag is watched
    lag = [0.25]
    metrics.watch_loop_lag(lambda: lag[0])
    metrics.request_started()
    metrics.request_started()
    metrics.observe_request("online_score", 200, 0.01)
    metrics.request_finished()  # one call is still in flight
    metrics.set_circuit_open(True)
    lag[0] = 0.5
    metrics.refresh()
    os._exit(0)


def main():
    directory = metrics.start_run()
    pid = os.fork()
    if pid == 0:
        try:
            worker()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if status:
        sys.exit("the worker failed: status %d" % status)
    scrapes = [metrics.render()[0].decode()]
    metrics.worker_died(pid)
    scrapes.append(metrics.render()[0].decode())
    metrics.end_run()
    json.dump({"directory": directory, "scrapes": scrapes,
               "left": os.path.exists(directory),
               "environ": os.environ.get(metrics.MULTIPROC_ENV)},
              sys.stdout)


if __name__ == "__main__":
    main()

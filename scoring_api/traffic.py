"""What one process's server knows of its traffic: the requests in flight
and whether it is draining (docs/architecture.md). `serve` makes one and
hands it to the HTTP server, which counts the requests and starts the
drain, and to `make_app`, whose handlers read `draining`."""
from scoring_api import metrics


class Traffic:
    """Requests in flight in this process, and whether it drains; the
    in-flight gauge of the metrics follows `in_flight`."""

    def __init__(self):
        self.in_flight = 0
        self.draining = False

    def started(self):
        self.in_flight += 1
        metrics.request_started()

    def finished(self):
        self.in_flight -= 1
        metrics.request_finished()

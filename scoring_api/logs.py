"""Logging set-up: one format, and the request id on every line."""
import contextvars
import logging

LOG_FORMAT = "[%(asctime)s] %(levelname).1s %(request_id)s %(message)s"
DATE_FORMAT = "%Y.%m.%d %H:%M:%S"
NO_REQUEST = "-"

request_id = contextvars.ContextVar("request_id", default=NO_REQUEST)


class RequestIdFilter(logging.Filter):
    """Adds `request_id`: the id of the request being served, or "-"."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def setup_logging(level=logging.INFO, log_file=None):
    """Log to `log_file` (standard error when empty) at `level`."""
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

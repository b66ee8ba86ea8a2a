"""Logging set-up: one format, and the request id on every line."""
import contextvars
import logging
import time

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


class Formatter(logging.Formatter):
    """The log format; the time text is made once a second, not per line."""

    def __init__(self):
        super().__init__(LOG_FORMAT, DATE_FORMAT)
        self._second = None
        self._time_text = ""

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._time_text = time.strftime(DATE_FORMAT,
                                            self.converter(second))
        return self._time_text


class BufferedWrites:
    """Handler mixin: lines go through the stream's buffer instead of one
    write per line. ERROR and worse are flushed at once, the rest at the
    latest by the next `flush_logs()` (the server calls it every second).
    """

    def emit(self, record):
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.ERROR:
                self.flush()
        except Exception:
            self.handleError(record)


class BufferedFileHandler(BufferedWrites, logging.FileHandler):
    pass


class BufferedStreamHandler(BufferedWrites, logging.StreamHandler):
    pass


def flush_logs():
    for handler in logging.getLogger().handlers:
        handler.flush()


def setup_logging(level=logging.INFO, log_file=None):
    """Log to `log_file` (standard error when empty) at `level`."""
    # The logging HOWTO's "Optimization": records need no caller, thread
    # or process; finding them costs more than the rest of an access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if log_file:
        handler = BufferedFileHandler(log_file, encoding="utf-8")
    else:
        handler = BufferedStreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

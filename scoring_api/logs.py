"""Logging set-up: text or JSON lines, the request id on every line, and a
log file that can be reopened (SIGHUP, after logrotate moved it)."""
import contextvars
import logging
import os
import time

import orjson

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


class MalformedHttpFilter(logging.Filter):
    """Tornado logs a malformed request with the offending text, such as a
    header's value, which may be a token or a phone number: keep what is
    wrong, drop the caller's text."""

    def filter(self, record):
        if record.msg.startswith("Malformed HTTP message") and record.args:
            where, error = record.args
            record.args = (where, str(error).split("'", 1)[0].strip()
                           or type(error).__name__)
        return True


def keep_callers_text_out():
    """Install `MalformedHttpFilter` on Tornado's logger (once)."""
    tornado_log = logging.getLogger("tornado.general")
    if not any(isinstance(each, MalformedHttpFilter)
               for each in tornado_log.filters):
        tornado_log.addFilter(MalformedHttpFilter())


class PerSecond:
    """`make(second)` computed once a second, not once a line: time text
    is the costliest part of a log line's format."""

    def __init__(self, make):
        self.make = make
        self.second = None
        self.text = None

    def __call__(self, created):
        second = int(created)
        if second != self.second:
            self.second = second
            self.text = self.make(second)
        return self.text


def _iso_second(second):
    """(date and time, UTC offset) of `second` in ISO 8601, local time."""
    local = time.localtime(second)
    offset = time.strftime("%z", local)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", local),
            offset[:3] + ":" + offset[3:])


class Formatter(logging.Formatter):
    """The text format."""

    def __init__(self):
        super().__init__(LOG_FORMAT, DATE_FORMAT)
        self._time_text = PerSecond(lambda second: time.strftime(
            DATE_FORMAT, self.converter(second)))

    def formatTime(self, record, datefmt=None):
        return self._time_text(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, message, the request id in a
    request, the `access` fields of an access line, and a traceback."""

    def __init__(self):
        super().__init__()
        self._time_text = PerSecond(_iso_second)

    def formatTime(self, record, datefmt=None):
        """ISO 8601 local time with milliseconds and the UTC offset."""
        day_and_time, offset = self._time_text(record.created)
        return "%s.%03d%s" % (day_and_time, record.msecs, offset)

    def format(self, record):
        entry = {"time": self.formatTime(record),
                 "level": record.levelname,
                 "message": record.getMessage()}
        request = getattr(record, "request_id", NO_REQUEST)
        if request != NO_REQUEST:
            entry["request_id"] = request
        access = getattr(record, "access", None)
        if access:
            entry.update(access)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


# What LogRecord.__init__ finds for an access line under setup_logging:
# no caller, thread or process.
_ACCESS_RECORD = {
    "args": None, "exc_info": None, "exc_text": None, "stack_info": None,
    "pathname": "", "filename": "", "module": "", "lineno": 0,
    "funcName": None, "thread": None, "threadName": None,
    "processName": None, "process": None, "taskName": None}


def log_access(logger, level, message, request_id, fields):
    """Log the access line `message` to `logger` at `level` (the caller
    checked `isEnabledFor`), with the `request_id` and `access` fields the
    formatters read, as `logger.log(..., extra=...)` would, through the
    same filters and handlers.

    The record is filled from a template instead of by logger.log and
    LogRecord.__init__, which look for what setup_logging turns off: a
    third of an access line's cost (measured: 9.1 us a text line, 6.1
    here).
    """
    created = time.time()
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(_ACCESS_RECORD)
    record.name = logger.name
    record.msg = message
    record.levelno = level
    record.levelname = logging.getLevelName(level)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.relativeCreated = (created - logging._startTime) * 1000
    record.request_id = request_id
    record.access = fields
    logger.handle(record)


FORMATTERS = {"text": Formatter, "json": JsonFormatter}


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
    def reopen(self):
        """Write to a new file at the same path (logrotate moved the old)."""
        with self.lock:
            if self.stream is not None:
                self.stream.close()  # flushes what is buffered
            self.stream = self._open()


class BufferedStreamHandler(BufferedWrites, logging.StreamHandler):
    pass


def flush_logs():
    for handler in logging.getLogger().handlers:
        handler.flush()


# A forked worker would write the parent's buffered lines a second time.
os.register_at_fork(before=flush_logs)


def reopen_logs(*ignored):
    """Reopen the log file (the server calls it on SIGHUP)."""
    reopened = False
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "reopen"):
            handler.reopen()
            reopened = True
    if reopened:
        logging.getLogger(__name__).info("log file reopened")


def make_handler(log_file=None, log_format="text"):
    """A handler writing `log_format` lines to `log_file` (standard error
    when empty)."""
    if log_file:
        handler = BufferedFileHandler(log_file, encoding="utf-8")
    else:
        handler = BufferedStreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(FORMATTERS[log_format]())
    return handler


def setup_logging(level=logging.INFO, log_file=None, log_format="text"):
    """Log `log_format` lines to `log_file` (standard error when empty) at
    `level`."""
    # The logging HOWTO's "Optimization": records need no caller, thread
    # or process; finding them costs more than the rest of an access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = make_handler(log_file, log_format)
    keep_callers_text_out()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

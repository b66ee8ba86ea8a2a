"""Logging set-up: text or JSON lines, each one line, escaped and capped,
with the request id (scoring_api.requestids), and a log file that can be
reopened (SIGHUP, after logrotate moved it). docs/operations.md "Logs"."""
import logging
import os
import re
import sys
import time

import orjson

from scoring_api.requestids import NO_REQUEST, RequestIdFilter

LOG_FORMAT = "[%(asctime)s] %(levelname).1s %(request_id)s %(message)s"
DATE_FORMAT = "%Y.%m.%d %H:%M:%S"

_logger = logging.getLogger(__name__)


# What Tornado 6.6.1 (httputil, http1connection) says of a malformed
# request, up to where it quotes the caller's text: a header's name or
# value, the Host, a Content-Length. Only these words reach the log.
MALFORMED_REQUEST_TEXTS = (
    "Invalid header name", "Invalid header value",
    "header line cannot start with whitespace", "no colon in header line",
    "Missing Host header", "Invalid Host header",
    "Multiple host headers not allowed", "Invalid query string",
    "Malformed HTTP request line", "Unexpected HTTP version",
    "Multiple unequal Content-Lengths",
    "Only integer Content-Length is allowed", "Content-Length too long",
    "Message with both Transfer-Encoding and Content-Length",
    "Unsupported Transfer-Encoding", "invalid chunk size",
    "improperly terminated chunk", "chunked body too large",
    "Body too long", "invalid gzip data", "decompressed body too large",
    "encountered unconsumed gzip data")


def describe_malformed(error):
    """What is wrong with a request, in Tornado's fixed words only: the
    known beginning of its message, or the error's class name."""
    text = str(error)
    for known in MALFORMED_REQUEST_TEXTS:
        if text.startswith(known):
            return known
    return type(error).__name__


class MalformedHttpFilter(logging.Filter):
    """Tornado logs a malformed request with the offending text, such as a
    header's value, which may be a token or a phone number: keep what is
    wrong, drop the caller's text."""

    def filter(self, record):
        if (record.msg.startswith("Malformed HTTP message")
                and isinstance(record.args, tuple) and len(record.args) == 2):
            where, error = record.args
            record.args = (where, describe_malformed(error))
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


_NOT_ASCII = re.compile(r"[^\x00-\x7f]")
# Values (a text line's message, a JSON line's values) longer than this
# are cut and end with CUT_MARKER.
MAX_VALUE_CHARS = 1000
CUT_MARKER = "\u2026[cut]"


def _escape(char):
    code = ord(char)
    return ("\\x%02x" % code if code < 0x100 else
            "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)


def printable(text):
    """`text` with every character that is not printable escaped (\\x85,
    \\u202e): line breaks a reader may split a record at (str.splitlines:
    \\n, \\r, \\v, \\f, \\x1c-\\x1e, \\x85, U+2028, U+2029), controls, and
    the bidirectional overrides that reorder a line as displayed."""
    if text.isprintable():
        return text
    return "".join([char if char.isprintable() else _escape(char)
                    for char in text])


def cut(value):
    """A string value of at most MAX_VALUE_CHARS (and the marker)."""
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + CUT_MARKER
    return value


def shown(value):
    """A string value as a log line may hold it: cut, then escaped."""
    if isinstance(value, str):
        return printable(cut(value))
    return value


def _json_escape(match):
    code = ord(match.group())
    if code < 0x10000:
        return "\\u%04x" % code
    code -= 0x10000
    return "\\u%04x\\u%04x" % (0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff))


class Formatter(logging.Formatter):
    """The text format: one line a record (a traceback follows it)."""

    def __init__(self):
        super().__init__(LOG_FORMAT, DATE_FORMAT)
        self._time_text = PerSecond(lambda second: time.strftime(
            DATE_FORMAT, self.converter(second)))

    def formatTime(self, record, datefmt=None):
        return self._time_text(record.created)

    def format(self, record):
        line = "[%s] %s %s %s" % (
            self._time_text(record.created), record.levelname[:1],
            getattr(record, "request_id", NO_REQUEST),
            cut(record.getMessage()))
        if not line.isprintable():
            line = printable(line)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, message, the request id in a
    request, the `access` fields of an access line, and a traceback; only
    ASCII, long values cut, what is not printable escaped as in text
    lines (so that a reader showing the decoded values shows no control
    either)."""

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
        for key, value in entry.items():
            if type(value) is str and (len(value) > MAX_VALUE_CHARS
                                       or not value.isprintable()):
                entry = {key: shown(value) for key, value in entry.items()}
                break
        text = orjson.dumps(entry)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
            text = orjson.dumps(entry)
        text = text.decode()
        return text if text.isascii() else _NOT_ASCII.sub(_json_escape, text)


def log_access(logger, level, message, request_id, fields):
    """Log the access line `message` to `logger` at `level` (the caller
    checked `isEnabledFor`), with the `request_id` and `access` fields the
    formatters read, as `logger.log(..., extra=...)` would, through the
    same filters and handlers.

    The record is made directly, not by logger.log, which would look for
    the caller's file and line (no formatter writes them).
    """
    record = logging.LogRecord(logger.name, level, "", 0, message, None, None)
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
        """Write to a new file at the same path (logrotate moved the old).
        OSError when it cannot be opened: the old file is kept."""
        stream = open(self.baseFilename, "a", encoding=self.encoding)
        old = self.setStream(stream)  # flushes what is buffered
        if old is not None:
            old.close()


class BufferedStreamHandler(BufferedWrites, logging.StreamHandler):
    pass


def flush_logs():
    for handler in logging.getLogger().handlers:
        handler.flush()


# A forked worker would write the parent's buffered lines a second time.
os.register_at_fork(before=flush_logs)


def reopen_logs(*ignored):
    """Reopen the log file (the server calls it on SIGHUP); False when it
    cannot be: the old file is kept, and that is said once, there and on
    standard error. Never raises: it runs in a signal handler."""
    reopened = True
    for handler in logging.getLogger().handlers:
        if not hasattr(handler, "reopen"):
            continue
        try:
            handler.reopen()
        except OSError as error:
            reopened = False
            message = ("cannot reopen the log file %s: %s; still writing to"
                       " the old one" % (handler.baseFilename,
                                         error.strerror or error))
            _logger.error("%s", message)  # flushed at once
            try:
                print("scoring_api: %s" % message, file=sys.stderr,
                      flush=True)
            except (OSError, ValueError):  # no standard error to write to
                pass
        else:
            _logger.info("log file reopened")
    return reopened


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
    # The logging HOWTO's "Optimization": records need no thread or
    # process. (Access lines, the many, skip the caller lookup in
    # log_access; the HOWTO's switch for it is a private name, not used.)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = make_handler(log_file, log_format)
    keep_callers_text_out()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

"""The request id: made here, kept or replaced here, and put on every log
line of its request (docs/api.md "Request ids", docs/operations.md "Logs").

A caller's `X-Request-Id` is kept when it cannot forge a log line and does
not look like personal data; any other request gets a new id of 32 hex
digits. `current` holds the id of the request being served (each request
runs in a task of its own, with its own copy of the context), and
`RequestIdFilter` writes it on every record.
"""
import contextvars
import itertools
import logging
import os
import re
import secrets

HEADER = "X-Request-Id"
NO_REQUEST = "-"  # the id of a line written outside any request

current = contextvars.ContextVar("request_id", default=NO_REQUEST)

# What a kept id is made of: ASCII letters, digits and . : / + = _ -,
# at most 128 of them; no space, quote or control that could forge a log
# line, and no @ (an e-mail address).
_SAFE = re.compile(r"[\w.:/+=-]{1,128}", re.ASCII)
# Kept whatever their digits: a trace id (W3C trace-context, nginx's
# $request_id) and a UUID, what proxies and clients send.
_TRACE_ID = re.compile(
    r"[0-9a-fA-F]{32}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{12}")
# What looks personal: a phone (11 digits, also split by separators or
# after a +) or a secret (64 hex digits or more: a token, a hash).
_PERSONAL = re.compile(r"\d(?:[-.:/+=_]?\d){10}|[0-9a-fA-F]{64}", re.ASCII)


def kept(given):
    """True when a caller's id `given` may be logged and echoed as sent."""
    if _TRACE_ID.fullmatch(given):
        return True
    return (_SAFE.fullmatch(given) is not None
            and _PERSONAL.search(given) is None)


# How many forks made this process: a child counts one more than its
# parent, so an id maker knows it was forked without a getpid() system
# call a request.
_forks = 0


def _forked():
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class RequestIds:
    """New ids of 32 hex digits: a random prefix per process and a counter,
    unique without uuid4's cost on every request. A process forked after
    the first id makes a prefix of its own."""

    def __init__(self):
        self.forks = None
        self.prefix = None
        self.counter = None

    def new(self):
        if self.forks != _forks:
            self.forks = _forks
            self.prefix = secrets.token_hex(10)
            self.counter = itertools.count()
        return "%s%012x" % (self.prefix, next(self.counter))

    def of(self, headers):
        """The id of a request with `headers` (Tornado's HTTPHeaders): the
        caller's when `kept`, else a new one."""
        # `in` first: HTTPHeaders.get raises and catches a KeyError for a
        # missing header, dearer than the rest of this.
        if HEADER in headers:
            given = headers[HEADER]
            if kept(given):
                return given
        return self.new()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to a record: the id of the request being served,
    or NO_REQUEST."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current.get()
        return True

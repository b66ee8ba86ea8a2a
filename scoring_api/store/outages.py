"""Logging a failing Redis, and bad data, without flooding the log."""
import logging
import time

from scoring_api.throttle import LOG_INTERVAL_SECONDS, Throttle

logger = logging.getLogger(__name__)

OUTAGE_LOG_INTERVAL_SECONDS = LOG_INTERVAL_SECONDS
# How much of an error's message an outage line keeps.
REASON_CHARS = 120


def reason(error):
    """The error's class and the start of its message, up to the first
    object repr redis-py puts in it (a sentinel's client, ~2 KB)."""
    message = str(error).split("<", 1)[0].rstrip(" :,-(")
    if len(message) > REASON_CHARS:
        message = message[:REASON_CHARS] + "..."
    name = type(error).__name__
    return "%s: %s" % (name, message) if message else name


class OutageLog:
    """Reports a failing Redis at WARNING without flooding the log.

    The first failure is logged, then at most one line per `interval` with
    the number of failures since the last line. Recovery is logged once
    Redis has answered for a whole `interval` without a failure, so a
    Redis that fails one call in two (reads work, writes are refused)
    writes one line per interval, not two per request.
    """

    def __init__(self, name, interval=OUTAGE_LOG_INTERVAL_SECONDS,
                 clock=time.monotonic):
        self.name = name
        self.interval = interval
        self.clock = clock
        self.failures = Throttle(interval, clock)
        self.down = False
        self.up_since = None  # the first success after the last failure

    def failure(self, command, error):
        self.down = True
        self.up_since = None
        count = self.failures.event()
        if count:
            logger.warning("%s: %s failed: %s (%d failed calls since the last"
                           " report)", self.name, command, reason(error),
                           count)

    def success(self):
        if not self.down:
            return
        now = self.clock()
        if self.up_since is None:
            self.up_since = now
        elif now - self.up_since >= self.interval:
            logger.warning("%s: answering again for %.0fs", self.name,
                           now - self.up_since)
            self.down = False
            self.up_since = None
            self.failures.reset()

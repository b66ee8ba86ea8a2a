"""Logging a failing Redis, and bad data, without flooding the log."""
import logging
import time

logger = logging.getLogger(__name__)

OUTAGE_LOG_INTERVAL_SECONDS = 10.0


class Throttle:
    """Says when a recurring event may be reported: the first time, then
    at most once per `interval`, with how many happened meanwhile."""

    def __init__(self, interval=OUTAGE_LOG_INTERVAL_SECONDS,
                 clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.unreported = 0
        self.last_report = None

    def event(self):
        """The number of events to report now (this one included), or 0
        while the interval since the last report is running."""
        self.unreported += 1
        now = self.clock()
        if self.last_report is not None \
                and now - self.last_report < self.interval:
            return 0
        self.last_report = now
        count, self.unreported = self.unreported, 0
        return count

    def reset(self):
        self.unreported = 0
        self.last_report = None


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
                           " report)", self.name, command,
                           str(error) or type(error).__name__, count)

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

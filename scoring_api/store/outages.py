"""Logging a failing Redis, and bad data, without flooding the log."""
import logging
import time

from scoring_api.throttle import LOG_INTERVAL_SECONDS, Throttle

logger = logging.getLogger(__name__)

OUTAGE_LOG_INTERVAL_SECONDS = LOG_INTERVAL_SECONDS


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

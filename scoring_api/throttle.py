"""Recurring trouble reported without flooding the log: the first event,
then at most one line per interval with how many happened meanwhile."""
import time

LOG_INTERVAL_SECONDS = 10.0


class Throttle:
    """Says when a recurring event may be reported: the first time, then
    at most once per `interval`, with how many happened meanwhile."""

    def __init__(self, interval=LOG_INTERVAL_SECONDS,
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

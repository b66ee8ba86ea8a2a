"""Timers on a FakeClock, for code that takes a loop with `time()` and
`call_later(delay, callback)` (scoring_api.deadlines.Deadlines)."""
from tests.support.clock import FakeClock


class FakeLoop:
    """Runs its timers only when a test moves the clock: `advance(s)`."""

    def __init__(self, clock=None):
        self.clock = clock or FakeClock()
        self.timers = []  # [when, order, callback]
        self.scheduled = 0
        self.ran = 0  # timers run: how often the loop was woken

    def time(self):
        return self.clock()

    def call_later(self, delay, callback):
        """A timer for `callback` in `delay` seconds; returns it."""
        self.scheduled += 1
        timer = [self.clock() + delay, self.scheduled, callback]
        self.timers.append(timer)
        return timer

    def advance(self, seconds):
        """Move the clock `seconds` on, running each timer due on the way
        at its own time."""
        end = self.clock.now + seconds
        while True:
            due = [timer for timer in self.timers if timer[0] <= end]
            if not due:
                break
            timer = min(due)
            self.timers.remove(timer)
            self.clock.now = max(self.clock.now, timer[0])
            self.ran += 1
            timer[2]()
        self.clock.now = end

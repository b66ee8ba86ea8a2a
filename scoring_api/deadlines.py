"""Timeouts that almost never fire, kept without a timer per request."""
import asyncio


class Deadlines:
    """Calls `late()` of each waiter still waiting `timeout` seconds after
    it came, with one timer for all of them.

    A timer per request (call_later, then cancel; the cancelled handles
    stay in the loop's heap until it cleans them) costs more than the
    rest of what such a timeout guards; here a waiter enters and leaves a
    dict, and one sweep every SWEEPS_PER_TIMEOUT-th of `timeout`,
    scheduled only while someone waits, calls the late ones: `late()` runs
    between `timeout` and 1.25 x `timeout` after `wait()`.
    """

    SWEEPS_PER_TIMEOUT = 4

    def __init__(self, timeout):
        self.timeout = timeout
        self.waiting = {}  # waiter -> loop time of its deadline
        self.sweep = None

    def wait(self, waiter):
        if self.timeout is None:  # no deadline at all
            return
        loop = asyncio.get_running_loop()
        self.waiting[waiter] = loop.time() + self.timeout
        if self.sweep is None:
            self._schedule(loop)

    def done(self, waiter):
        self.waiting.pop(waiter, None)

    def _schedule(self, loop):
        self.sweep = loop.call_later(self.timeout / self.SWEEPS_PER_TIMEOUT,
                                     self._sweep)

    def _sweep(self):
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [waiter for waiter, deadline in self.waiting.items()
                if deadline <= now]
        for waiter in late:
            del self.waiting[waiter]
            waiter.late()
        if self.waiting:
            self._schedule(loop)
        else:
            self.sweep = None

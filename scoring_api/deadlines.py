"""Timeouts that almost never fire, kept without a timer per request.

Tornado 6.6.1's own `body_timeout` wraps every body read in
`gen.with_timeout` (a future and a timer a request): measured, 11 % of the
instructions of a cached score; its `idle_connection_timeout` wraps every
head read the same way: 5.1-5.6 % of a cached score's CPU time. The server
keeps its idle, head and body deadlines here instead.
"""
import asyncio


class Deadlines:
    """Calls `late(key)` for each key still waiting `timeout` seconds after
    `wait(key)`, with one timer for all of them.

    A key enters and leaves a dict; one sweep every SWEEPS_PER_TIMEOUT-th
    of `timeout`, scheduled only while a key waits, finds the late ones:
    `late(key)` runs between `timeout` and 1.25 x `timeout` after
    `wait(key)`. `timeout` None means no deadline at all. `loop` has
    `time()` and `call_later(delay, callback)` (when not given, the
    asyncio loop running at the first `wait`: asking for it each time
    costs a getpid() system call).
    """

    SWEEPS_PER_TIMEOUT = 4

    def __init__(self, timeout, late, loop=None):
        self.timeout = timeout
        self.late = late
        self.loop = loop
        self.waiting = {}  # key -> loop time of its deadline
        self.sweep = None

    def __contains__(self, key):
        return key in self.waiting

    def __len__(self):
        return len(self.waiting)

    def wait(self, key):
        if self.timeout is None:
            return
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        self.waiting[key] = loop.time() + self.timeout
        if self.sweep is None:
            self._schedule(loop)

    def done(self, key):
        self.waiting.pop(key, None)

    def _schedule(self, loop):
        self.sweep = loop.call_later(self.timeout / self.SWEEPS_PER_TIMEOUT,
                                     self._sweep)

    def _sweep(self):
        loop = self.loop
        now = loop.time()
        late = [key for key, deadline in self.waiting.items()
                if deadline <= now]
        for key in late:
            # A late() may close what another key waited on: that one
            # left the dict already.
            if self.waiting.pop(key, None) is not None:
                self.late(key)
        if self.waiting:
            self._schedule(loop)
        else:
            self.sweep = None

"""Shedding the calls a process cannot serve in time, and telling its own
lag from a Redis outage (docs/operations.md, "Overload").

`LoopLag` measures how late a timer of the event loop runs (as Node's
toobusy does): the loop's lag, a metric, and the sign that the process
itself is starved, which `is_starved` tells the store's endpoint, so that
a Redis call timed out by the process's own starvation is not reported as
a Redis outage.

`Overload` decides, before a call does any work, whether to serve it or
shed it at once (503 "overloaded, retry later" with Retry-After): the
process is saturated when its loop lags by `shed_lag` or more, or when
more calls are in flight than it can serve within `budget` seconds at the
rate it served them over the last second (Little's law; never fewer than
`min_in_flight`). Fairness first: calls of a partner over its quota are
shed at half those thresholds, and a call of a partner within its quota
is never shed while a call of a partner over its quota is being served.
It also holds the refusals of a partner that keeps calling while refused
(`hold`), at most `max_held` at once.
"""
import asyncio
import logging
import math
import time

logger = logging.getLogger(__name__)

# How often the loop's lag is measured.
LAG_INTERVAL_SECONDS = 0.05
# Each new measure moves the smoothed lag a third of the way (toobusy's
# dampening): one late tick alone does not shed.
LAG_SMOOTHING = 1 / 3
# Calls in flight always allowed, whatever the throughput measured.
MIN_IN_FLIGHT = 64
# Completions are counted per slot; the throughput is over SLOTS of them.
SLOT_SECONDS = 0.1
SLOTS = 10
# Calls of a partner over its quota are shed at this part of the
# thresholds.
OVER_QUOTA_FACTOR = 0.5
# The longest Retry-After of a shed call.
LONGEST_RETRY_AFTER = 10
LATE_TICK_CAP = 2.0
SHED_BY_LAG = "loop_lag"
SHED_BY_IN_FLIGHT = "in_flight"


class LoopLag:
    """The event loop's lag: how late a periodic timer runs."""

    def __init__(self, interval=LAG_INTERVAL_SECONDS, starved_lag=0.1,
                 starved_hold=2.0, clock=time.monotonic):
        """`starved_lag`: a lag this long starves the process (a good part
        of a Redis timeout); `is_starved()` stays true `starved_hold`
        seconds after one. `clock` must be the loop's own (monotonic)."""
        self.interval = interval
        self.starved_lag = starved_lag
        self.starved_hold = starved_hold
        self.late_tick_cap = LATE_TICK_CAP * starved_lag
        self.clock = clock
        self.last = 0.0  # the lag of the last tick, seconds
        self.smoothed = 0.0
        self.expected = None  # when the next tick is due
        self.starved_at = -math.inf  # the end of the last starvation
        self.handle = None

    def tick(self):
        """One measure: the timer due at `expected` runs now."""
        now = self.clock()
        if self.expected is not None:
            self.last = max(0.0, now - self.expected)
            # One late tick counts at most LATE_TICK_CAP x starved_lag:
            # a single stall (a GC pause, a stopped process) does not
            # shed the calls that waited through it; a lasting lag does
            # within two ticks.
            self.smoothed += (min(self.last, self.late_tick_cap)
                              - self.smoothed) * LAG_SMOOTHING
            if self.last >= self.starved_lag:
                self.starved_at = now
        self.expected = now + self.interval

    def overdue(self):
        """How late the next tick is already (0 when it is not due yet):
        the loop has been busy at least this long."""
        if self.expected is None:
            return 0.0
        return max(0.0, self.clock() - self.expected)

    @property
    def lag(self):
        """The lag now, in seconds: the smoothed measure. What the lag
        metric shows and shedding reads (a tick overdue is starvation,
        `is_starved`, not yet lag: the calls read while the loop catches
        up are not shed for one stall)."""
        return self.smoothed

    def is_starved(self, since=None):
        """True while the process itself is starved: a tick is overdue by
        `starved_lag` or more, or one ran that late since `since` (a
        Redis call's start) or, without it, within `starved_hold`
        seconds."""
        if self.overdue() >= self.starved_lag:
            return True
        if since is None:
            since = self.clock() - self.starved_hold
        return self.starved_at >= since

    def start(self, loop=None):
        """Measure on `loop` (the running one) until `stop`; once."""
        if self.handle is not None:
            return
        loop = loop or asyncio.get_running_loop()
        self.expected = None
        self._schedule(loop)

    def _schedule(self, loop):
        self.tick()
        self.handle = loop.call_later(self.interval, self._schedule, loop)

    def stop(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


class Overload:
    """Which calls to serve, which to shed at once; in-flight counts."""

    def __init__(self, lag, shed_lag=0.1, budget=1.0,
                 min_in_flight=MIN_IN_FLIGHT, max_held=1024,
                 clock=time.monotonic):
        """`lag`: the process's `LoopLag`; `shed_lag` (seconds; 0: never
        by lag); `budget` (seconds a call may wait for the calls before
        it; 0: no limit on calls in flight); `max_held`: refusals held
        at once."""
        self.lag = lag
        self.shed_lag = shed_lag
        self.budget = budget
        self.min_in_flight = min_in_flight
        self.max_held = max_held
        self.clock = clock
        self.in_flight = 0
        self.over_in_flight = 0  # of them, calls of partners over quota
        self.held = 0
        self.released = None  # set when held refusals must go now
        self.slots = [0] * SLOTS  # completions per slot, a ring
        self.slot = 0
        self.slot_end = -math.inf
        self.completed = 0  # in the ring

    def admit(self, partner_over=False, others_over=None):
        """None: serve the call (counted in flight until `finished`).
        Else why it is shed: "loop_lag" or "in_flight". `others_over()`:
        true while some partner is over its quota (refused lately): the
        load is theirs too (their refusals cost the loop as well), so a
        call within its quota is not shed then; theirs are cut first."""
        reason = self.saturation(
            OVER_QUOTA_FACTOR if partner_over else 1.0)
        if reason is not None and (partner_over or not (
                self.over_in_flight or (others_over and others_over()))):
            return reason
        self.in_flight += 1
        if partner_over:
            self.over_in_flight += 1
        return None

    def finished(self, partner_over=False):
        """A call `admit` let through has been answered (or its client
        left)."""
        self.in_flight -= 1
        if partner_over:
            self.over_in_flight -= 1
        self._rotate(self.clock())
        self.slots[self.slot] += 1
        self.completed += 1

    def saturation(self, factor=1.0):
        """Why the process is saturated at `factor` x its thresholds, or
        None."""
        if self.shed_lag and self.lag.lag >= self.shed_lag * factor:
            return SHED_BY_LAG
        # Below min_in_flight, below any limit: no throughput to measure.
        if (self.budget and self.in_flight >= self.min_in_flight * factor
                and self.in_flight >= self.in_flight_limit() * factor):
            return SHED_BY_IN_FLIGHT
        return None

    def throughput(self):
        """Calls answered a second, over the last second."""
        self._rotate(self.clock())
        return self.completed / (SLOTS * SLOT_SECONDS)

    def in_flight_limit(self):
        """The calls in flight the process serves within `budget` at its
        measured throughput (at least `min_in_flight`)."""
        return max(self.min_in_flight, self.throughput() * self.budget)

    def _rotate(self, now):
        if now - self.slot_end >= SLOTS * SLOT_SECONDS:
            self.slots = [0] * SLOTS
            self.completed = 0
            self.slot_end = now + SLOT_SECONDS
            return
        while now >= self.slot_end:
            self.slot = (self.slot + 1) % SLOTS
            self.completed -= self.slots[self.slot]
            self.slots[self.slot] = 0
            self.slot_end += SLOT_SECONDS

    def retry_after(self):
        """Retry-After of a shed call: the lag in whole seconds, at least
        1, at most LONGEST_RETRY_AFTER."""
        return min(LONGEST_RETRY_AFTER, max(1, math.ceil(self.lag.lag)))

    async def hold(self, decision):
        """Hold a refusal `decision.hold` seconds (a quotas.Decision);
        returns the seconds held, or None when `max_held` refusals are
        held already: then answer at once and close the connection."""
        if decision.hold <= 0 or not self.max_held:
            return 0.0
        if self.held >= self.max_held:
            return None
        if self.released is None:
            self.released = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.held += 1
        start = loop.time()
        try:
            await asyncio.wait_for(self.released.wait(), decision.hold)
        except asyncio.TimeoutError:
            pass
        finally:
            self.held -= 1
        return loop.time() - start

    def release_holds(self):
        """Answer every held refusal now, and hold none from now on (the
        server drains)."""
        if self.released is None:
            self.released = asyncio.Event()
        self.released.set()

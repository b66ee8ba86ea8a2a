"""Shedding and the loop's lag with an injected clock: the lag monitor,
starvation, which calls are shed and why, fairness between partners
within and over their quotas, held refusals."""
import asyncio
import time
import unittest

from tornado.testing import AsyncTestCase, gen_test

from scoring_api.overload import (LoopLag, Overload, SHED_BY_IN_FLIGHT,
                                  SHED_BY_LAG)
from scoring_api.quotas import Decision, Quotas
from tests.support.cases import cases
from tests.support.clock import FakeClock


class FixedLag:
    """A LoopLag that says what the test sets."""

    def __init__(self, lag=0.0):
        self.lag = lag


class LoopLagTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.monitor = LoopLag(interval=0.05, starved_lag=0.1,
                               starved_hold=2.0, clock=self.clock)
        self.monitor.tick()  # the first one: nothing to measure yet

    def tick_after(self, seconds):
        self.clock.now += seconds
        self.monitor.tick()

    def test_a_tick_on_time_is_no_lag(self):
        for _ in range(10):
            self.tick_after(0.05)
        self.assertEqual(self.monitor.last, 0.0)
        self.assertEqual(self.monitor.lag, 0.0)
        self.assertFalse(self.monitor.is_starved())

    def test_a_late_tick_measures_the_lag_smoothed_by_a_third(self):
        self.tick_after(0.2)
        self.assertAlmostEqual(self.monitor.last, 0.15)
        self.assertAlmostEqual(self.monitor.lag, 0.05)
        for _ in range(20):
            self.tick_after(0.2)
        self.assertAlmostEqual(self.monitor.lag, 0.15, places=3)
        self.tick_after(0.05)
        self.assertAlmostEqual(self.monitor.lag, 0.1, places=3)

    def test_one_stall_alone_counts_twice_starved_lag_at_most(self):
        # A GC pause, a stopped process: the calls that waited through
        # it are not shed for it; a second late tick is a lasting lag.
        self.tick_after(3.05)
        self.assertAlmostEqual(self.monitor.last, 3.0)
        self.assertAlmostEqual(self.monitor.lag, 0.2 / 3)
        self.assertTrue(self.monitor.is_starved())
        self.tick_after(0.35)
        self.assertGreaterEqual(self.monitor.lag, 0.1)

    def test_a_tick_overdue_is_starvation_not_yet_lag(self):
        self.clock.now += 0.45  # the tick due at 0.05 has not run
        self.assertAlmostEqual(self.monitor.overdue(), 0.4)
        self.assertEqual(self.monitor.lag, 0.0)
        self.assertTrue(self.monitor.is_starved())

    def test_before_its_first_tick_nothing_is_overdue(self):
        monitor = LoopLag(clock=FakeClock(0.0))
        self.assertEqual((monitor.last, monitor.overdue(), monitor.lag),
                         (0.0, 0.0, 0.0))
        self.assertFalse(monitor.is_starved())

    def test_a_tick_early_or_not_yet_due_is_no_lag(self):
        self.tick_after(0.04)  # asyncio may run a timer a little early
        self.assertEqual(self.monitor.last, 0.0)
        self.clock.now += 0.01
        self.assertEqual(self.monitor.overdue(), 0.0)

    def test_by_default_a_tenth_of_a_second_starves_for_two_seconds(self):
        clock = FakeClock(0.0)
        monitor = LoopLag(clock=clock)
        monitor.tick()
        clock.now += monitor.interval + 0.09
        monitor.tick()
        self.assertFalse(monitor.is_starved())
        clock.now += monitor.interval + 0.11
        monitor.tick()
        for _ in range(int(1.9 / monitor.interval)):
            clock.now += monitor.interval
            monitor.tick()
        self.assertTrue(monitor.is_starved())
        for _ in range(3):
            clock.now += monitor.interval
            monitor.tick()
        self.assertFalse(monitor.is_starved())

    def test_by_default_a_tick_is_due_every_twentieth_of_a_second(self):
        clock = FakeClock(0.0)
        monitor = LoopLag(clock=clock)
        monitor.tick()
        clock.now = 0.05
        self.assertEqual(monitor.overdue(), 0.0)
        clock.now = 0.25
        self.assertAlmostEqual(monitor.overdue(), 0.2)

    @cases([(0.16, True), (1.0, True), (0.14, False), (0.05, False)])
    def test_a_lag_of_starved_lag_or_more_is_starvation(self, case):
        # A tick due 0.05 s after the last one runs `after` s after it.
        after, starved = case
        self.tick_after(after)
        self.assertEqual(self.monitor.is_starved(), starved)

    def test_a_lag_of_exactly_starved_lag_is_starvation(self):
        # Quarters are exact in binary: no rounding decides.
        clock = FakeClock(0.0)
        monitor = LoopLag(interval=0.25, starved_lag=0.5, starved_hold=1.0,
                          clock=clock)
        monitor.tick()
        clock.now = 0.75  # the tick due at 0.25 is 0.5 late
        self.assertEqual(monitor.overdue(), 0.5)
        self.assertTrue(monitor.is_starved(since=1.0))
        monitor.tick()
        self.assertEqual((monitor.last, monitor.starved_at), (0.5, 0.75))
        clock.now = 1.0
        monitor.tick()
        self.assertTrue(monitor.is_starved(since=0.75))
        for quarter in (1.25, 1.5, 1.75):  # on time
            clock.now = quarter
            monitor.tick()
        self.assertTrue(monitor.is_starved())  # 1 s after, not more
        self.assertFalse(monitor.is_starved(since=1.0))

    def test_starvation_is_remembered_for_starved_hold_seconds(self):
        self.tick_after(0.5)
        for _ in range(38):  # 1.9 s of ticks on time
            self.tick_after(0.05)
        self.assertTrue(self.monitor.is_starved())
        for _ in range(3):
            self.tick_after(0.05)
        self.assertFalse(self.monitor.is_starved())

    def test_since_a_call_began_asks_about_that_call_only(self):
        self.tick_after(0.5)  # starved until now (1000.5)
        began_before = self.clock.now - 0.3
        self.tick_after(0.05)
        began_after = self.clock.now
        self.tick_after(0.05)
        self.assertTrue(self.monitor.is_starved(since=began_before))
        self.assertFalse(self.monitor.is_starved(since=began_after))


class LoopLagOnALoopTest(AsyncTestCase):
    @gen_test
    async def test_a_blocked_loop_is_measured_and_starved(self):
        monitor = LoopLag(interval=0.01, starved_lag=0.1)
        monitor.start()
        self.addCleanup(monitor.stop)
        handle = monitor.handle
        monitor.start()  # once is enough: no second chain of ticks
        self.assertIs(monitor.handle, handle)
        await asyncio.sleep(0.05)
        self.assertFalse(monitor.is_starved(since=time.monotonic()))
        time.sleep(0.3)  # the loop is blocked: no tick can run
        unblocked = time.monotonic()
        # A busy machine only makes the lag longer: lower bounds.
        self.assertGreaterEqual(monitor.overdue(), 0.25)
        await asyncio.sleep(0.05)
        self.assertGreaterEqual(monitor.starved_at, unblocked)
        self.assertTrue(monitor.is_starved())
        monitor.stop()
        self.assertIsNone(monitor.handle)
        monitor.stop()  # twice is harmless


class SheddingTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.lag = FixedLag()
        self.overload = Overload(self.lag, shed_lag=0.1, budget=1.0,
                                 min_in_flight=4, clock=self.clock)

    def test_below_the_thresholds_every_call_is_served_and_counted(self):
        for _ in range(3):
            self.assertIsNone(self.overload.admit())
        self.assertEqual(self.overload.in_flight, 3)
        self.overload.finished()
        self.assertEqual(self.overload.in_flight, 2)

    @cases([(0.1, SHED_BY_LAG), (0.099, None), (5.0, SHED_BY_LAG)])
    def test_a_lagging_loop_sheds_new_calls(self, case):
        lag, reason = case
        self.lag.lag = lag
        self.assertEqual(self.overload.admit(), reason)

    # docs/api.md: the lag in whole seconds, 1 to 10.
    @cases([(0.0, 1), (0.3, 1), (1.2, 2), (9.5, 10), (10.5, 10),
            (60.0, 10)])
    def test_retry_after_is_the_lag_in_whole_seconds(self, case):
        lag, retry_after = case
        self.lag.lag = lag
        self.assertEqual(self.overload.retry_after(), retry_after)

    def test_more_calls_in_flight_than_served_in_the_budget_are_shed(self):
        for _ in range(4):
            self.assertIsNone(self.overload.admit())
        self.assertEqual(self.overload.admit(), SHED_BY_IN_FLIGHT)
        self.overload.finished()
        self.assertIsNone(self.overload.admit())

    def test_the_throughput_is_over_the_last_second_to_a_tenth(self):
        clock = FakeClock(0.0)
        overload = Overload(FixedLag(), clock=clock)

        def answered(count, when):
            clock.now = when
            for _ in range(count):
                overload.admit()
                overload.finished()

        answered(10, 0.05)  # slots of 0.1 s from the first answer
        answered(10, 0.6)
        self.assertEqual(overload.throughput(), 20.0)
        clock.now = 1.1  # the first slot is over a second old
        self.assertEqual(overload.throughput(), 10.0)
        clock.now = 1.7
        self.assertEqual(overload.throughput(), 0.0)
        answered(5, 1.75)
        self.assertEqual(overload.throughput(), 5.0)
        clock.now = 30.0
        self.assertEqual(overload.throughput(), 0.0)

    # (when the next answers come after one at 0.05, when they are read:
    # not yet a second later, though a second after a slot boundary
    # counted on from 0.05).
    @cases([(5.0, 5.96), (1.2, 2.16)])
    def test_after_a_quiet_spell_the_slots_start_at_the_next_answer(
            self, case):
        again, read = case
        clock = FakeClock(0.0)
        overload = Overload(FixedLag(), clock=clock)
        for when, count in ((0.05, 1), (again, 10)):
            clock.now = when
            for _ in range(count):
                overload.admit()
                overload.finished()
        clock.now = read
        self.assertEqual(overload.throughput(), 10.0)

    def test_the_first_answers_count_a_whole_second(self):
        clock = FakeClock(0.05)  # whatever the clock's start
        overload = Overload(FixedLag(), clock=clock)
        for _ in range(10):
            overload.admit()
            overload.finished()
        clock.now = 1.04
        self.assertEqual(overload.throughput(), 10.0)

    def test_answers_on_a_slot_boundary_count_in_the_slot_it_starts(self):
        clock = FakeClock(0.5)
        overload = Overload(FixedLag(), clock=clock)
        for when, count in ((0.5, 1), (0.6, 10)):  # 0.6: the next slot
            clock.now = when
            for _ in range(count):
                overload.admit()
                overload.finished()
        clock.now = 1.55  # the ten are 0.95 s old, the one 1.05 s
        self.assertEqual(overload.throughput(), 10.0)

    def test_a_call_ending_after_a_quiet_spell_counts_a_whole_second(self):
        clock = FakeClock(0.05)
        overload = Overload(FixedLag(), clock=clock)
        overload.admit()
        clock.now = 5.0  # a slow call: nothing else answered meanwhile
        overload.finished()
        clock.now = 5.99
        self.assertEqual(overload.throughput(), 1.0)
        clock.now = 6.0
        self.assertEqual(overload.throughput(), 0.0)

    def test_by_default_a_lag_of_a_tenth_sheds_and_the_budget_is_1_s(self):
        lag = FixedLag(0.099)
        overload = Overload(lag, clock=self.clock)
        self.assertIsNone(overload.saturation())
        lag.lag = 0.1
        self.assertEqual(overload.saturation(), SHED_BY_LAG)
        for _ in range(200):
            overload.admit()
            overload.finished()
        self.assertEqual(overload.in_flight_limit(), 200.0)

    def test_by_default_64_calls_in_flight_are_always_allowed(self):
        overload = Overload(FixedLag(), clock=self.clock)
        for _ in range(64):
            self.assertIsNone(overload.admit())
        self.assertEqual(overload.admit(), SHED_BY_IN_FLIGHT)

    def test_the_limit_follows_the_calls_served_over_the_last_second(self):
        for _ in range(100):
            self.overload.admit()
            self.overload.finished()
            self.clock.now += 0.005
        self.assertEqual(self.overload.throughput(), 100.0)
        self.assertEqual(self.overload.in_flight_limit(), 100.0)
        for _ in range(100):
            self.assertIsNone(self.overload.admit())
        self.assertEqual(self.overload.admit(), SHED_BY_IN_FLIGHT)
        self.clock.now += 0.6  # a part of them more than 1 s ago
        # (the last second, to a slot of 0.1 s)
        self.assertGreaterEqual(self.overload.throughput(), 50.0)
        self.assertLessEqual(self.overload.throughput(), 80.0)
        self.clock.now += 5.0
        self.assertEqual(self.overload.throughput(), 0.0)
        self.assertEqual(self.overload.in_flight_limit(), 4)
        # The limit fell under the calls in flight: still saturated.
        self.assertEqual(self.overload.admit(), SHED_BY_IN_FLIGHT)

    def test_the_limit_is_what_the_budget_s_seconds_serve(self):
        overload = Overload(self.lag, budget=2.5, min_in_flight=1,
                            clock=self.clock)
        for _ in range(40):
            overload.admit()
            overload.finished()
        self.assertEqual(overload.in_flight_limit(), 100.0)

    def test_a_budget_of_0_and_a_shed_lag_of_0_shed_nothing(self):
        overload = Overload(FixedLag(10.0), shed_lag=0, budget=0,
                            min_in_flight=1, clock=self.clock)
        for _ in range(1000):
            self.assertIsNone(overload.admit())


class FairnessTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.lag = FixedLag()
        self.overload = Overload(self.lag, shed_lag=0.1, budget=1.0,
                                 min_in_flight=10, clock=self.clock)

    def test_over_quota_partners_are_shed_at_half_the_thresholds(self):
        self.lag.lag = 0.05
        self.assertEqual(self.overload.admit(partner_over=True),
                         SHED_BY_LAG)
        self.assertIsNone(self.overload.admit(partner_over=False))
        self.lag.lag = 0.0
        for _ in range(4):
            self.assertIsNone(self.overload.admit(partner_over=True))
        self.assertEqual(self.overload.admit(partner_over=True),
                         SHED_BY_IN_FLIGHT)
        self.assertIsNone(self.overload.admit(partner_over=False))

    def test_over_quota_calls_are_shed_at_half_the_measured_limit(self):
        overload = Overload(self.lag, shed_lag=0, budget=1.0,
                            min_in_flight=4, clock=self.clock)
        for _ in range(16):  # answered within the second: a limit of 16
            overload.admit()
            overload.finished()
        for _ in range(8):
            self.assertIsNone(overload.admit(partner_over=True))
        self.assertEqual(overload.admit(partner_over=True),
                         SHED_BY_IN_FLIGHT)

    def test_over_quota_calls_are_shed_at_half_of_min_in_flight(self):
        overload = Overload(self.lag, shed_lag=0, budget=1.0,
                            min_in_flight=2, clock=self.clock)
        self.assertIsNone(overload.admit(partner_over=True))
        self.assertEqual(overload.admit(partner_over=True),
                         SHED_BY_IN_FLIGHT)

    def test_within_quota_calls_are_not_shed_while_over_quota_ones_run(
            self):
        self.assertIsNone(self.overload.admit(partner_over=True))
        self.lag.lag = 1.0  # saturated
        for _ in range(20):
            self.assertIsNone(self.overload.admit(partner_over=False))
        self.assertEqual(self.overload.admit(partner_over=True),
                         SHED_BY_LAG)
        self.overload.finished(partner_over=True)
        self.assertEqual(self.overload.over_in_flight, 0)
        self.assertEqual(self.overload.admit(partner_over=False),
                         SHED_BY_LAG)

    def test_a_flooding_partner_is_cut_first_beside_a_quiet_one(self):
        # Quotas and shedding together: the flood's admitted calls are
        # those of a partner over its quota; at a lag between half and
        # the whole threshold only they are shed.
        quotas = Quotas(10.0, 0, clock=self.clock)
        self.lag.lag = 0.07
        served = {"flood": 0, "quiet": 0}
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            for step in range(1000):
                self.clock.now += 0.01
                calls = ["flood"] * 5 + (["quiet"] if step % 20 == 0 else [])
                for account in calls:
                    decision = quotas.admit(account)
                    if not decision.admitted:
                        continue
                    if self.overload.admit(decision.partner_over) is None:
                        served[account] += 1
                        self.overload.finished(decision.partner_over)
        self.assertEqual(served["quiet"], 50)  # every one of its calls
        self.assertLessEqual(served["flood"], 1)  # its first, at most


def held_decision(seconds):
    return Decision(False, True, True, None, 0.0, 1.0, 1.0, wait=seconds,
                    hold=seconds)


class HoldTest(AsyncTestCase):
    def overload(self, max_held=2):
        return Overload(FixedLag(), max_held=max_held)

    @gen_test
    async def test_a_refusal_is_held_its_seconds(self):
        overload = self.overload()
        started = time.monotonic()
        held = await overload.hold(held_decision(0.05))
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(held, 0.05)
        self.assertLessEqual(held, elapsed)
        self.assertEqual(overload.held, 0)

    @gen_test
    async def test_a_refusal_without_hold_is_answered_at_once(self):
        self.assertEqual(await self.overload().hold(held_decision(0.0)), 0.0)
        self.assertEqual(
            await self.overload(max_held=0).hold(held_decision(5.0)), 0.0)

    @gen_test
    async def test_by_default_1024_refusals_are_held_at_once(self):
        overload = Overload(FixedLag())
        held = [asyncio.ensure_future(overload.hold(held_decision(10.0)))
                for _ in range(1024)]
        await asyncio.sleep(0)
        self.assertEqual(overload.held, 1024)
        self.assertIsNone(await overload.hold(held_decision(10.0)))
        overload.release_holds()
        await asyncio.gather(*held)

    @gen_test
    async def test_past_max_held_a_refusal_closes_its_connection(self):
        overload = self.overload(max_held=1)
        first = asyncio.ensure_future(overload.hold(held_decision(10.0)))
        await asyncio.sleep(0)
        self.assertEqual(overload.held, 1)
        self.assertIsNone(await overload.hold(held_decision(10.0)))
        overload.release_holds()
        self.assertLess(await first, 5.0)

    @gen_test
    async def test_released_holds_end_at_once_and_none_start_again(self):
        overload = self.overload()
        held = [asyncio.ensure_future(overload.hold(held_decision(10.0)))
                for _ in range(2)]
        await asyncio.sleep(0.01)
        overload.release_holds()
        for seconds in await asyncio.gather(*held):
            self.assertLess(seconds, 5.0)
        self.assertLess(await overload.hold(held_decision(10.0)), 5.0)
        self.assertEqual(overload.held, 0)

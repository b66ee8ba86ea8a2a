"""The quotas' arithmetic with a fake clock: the bucket (burst, refill,
refusals that spend nothing), shadow mode, the header fields, held
refusals, two workers sharing one quota through fake counters (the 10 s
bounds), the fallback to the local share and back, idle accounts
forgotten."""
import asyncio
import bisect
import math
import unittest

from tornado.testing import AsyncTestCase, gen_test

from scoring_api import quotas
from scoring_api.errors import StoreUnavailable
from scoring_api.quotas import (DRAFT, UNLIMITED, Policy, Quotas,
                                header_fields)
from scoring_api.store.counters import STALE_SECONDS
from tests.support.cases import cases
from tests.support.clock import FakeClock


class FakeCounters:
    """store.counters.QuotaCounters in memory, shared by the `Quotas` of
    several simulated processes: the same sums as its script (a demand
    not refreshed for STALE_SECONDS is gone). `down` makes it fail."""

    def __init__(self, clock):
        self.clock = clock
        self.fields = {}  # {account: {process: (demand, when)}}
        self.down = False
        self.exchanges = 0

    async def exchange(self, demands, process):
        self.exchanges += 1
        if self.down:
            raise StoreUnavailable("cache is unavailable")
        now = self.clock()
        totals = {}
        for account, demand in demands.items():
            fields = self.fields.setdefault(account, {})
            if demand > 0:
                fields[process] = (demand, now)
            else:
                fields.pop(process, None)
            for name, (_, when) in list(fields.items()):
                if now - when > STALE_SECONDS:
                    del fields[name]
            totals[account] = sum(value for value, _ in fields.values())
            if not fields:
                del self.fields[account]
        return totals


def admitted_count(quota, clock, calls, every, account="acme"):
    """Send `calls` calls `every` seconds apart; how many were admitted."""
    admitted = 0
    for _ in range(calls):
        admitted += quota.admit(account).admitted
        clock.now += every
    return admitted


class PolicyTest(unittest.TestCase):
    @cases([(50, 100, '"default";q=101;w=3'),
            (10, 0, '"default";q=1;w=1'),
            (0.5, 4, '"default";q=5;w=10'),
            (1000, 9, '"default";q=10;w=1')])
    def test_the_policy_field_is_the_bucket_and_its_refill_time(self, case):
        rate, burst, field = case
        self.assertEqual(Policy(rate, burst).field, field)

    @cases([(0, 1), (-1, 1), (math.inf, 1), (math.nan, 1), (1, -1),
            (1, 1.5)])
    def test_a_bad_quota_is_refused_with_its_value(self, case):
        rate, burst = case
        with self.assertRaisesRegex(ValueError, "rate|burst"):
            Policy(rate, burst)

    def test_a_whole_number_is_a_burst_whatever_its_type(self):
        self.assertEqual(Policy(10, 3.0).field, '"default";q=4;w=1')
        self.assertEqual(Quotas(10, 3.0, workers=2.0).workers, 2)

    def test_the_draft_followed_is_named(self):
        self.assertEqual(DRAFT, "draft-ietf-httpapi-ratelimit-headers-11")
        self.assertIn(DRAFT, quotas.__doc__)


class BucketTest(unittest.TestCase):
    """One process: the token bucket itself."""

    def setUp(self):
        self.clock = FakeClock()

    def quota(self, rate=10.0, burst=4, **kwargs):
        return Quotas(rate, burst, clock=self.clock, **kwargs)

    @cases([(10.0, 0), (10.0, 4), (50.0, 100), (0.5, 2)])
    def test_burst_plus_one_calls_pass_at_once_then_none(self, case):
        rate, burst = case
        quota = self.quota(rate, burst)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            decisions = [quota.admit("acme") for _ in range(burst + 3)]
        self.assertEqual([d.admitted for d in decisions],
                         [True] * (burst + 1) + [False] * 2)
        self.assertEqual([d.remaining for d in decisions[:burst + 1]],
                         list(range(burst, -1, -1)))

    def test_the_bucket_refills_at_the_rate(self):
        quota = self.quota(rate=10.0, burst=4)
        for _ in range(5):
            quota.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            self.assertFalse(quota.admit("acme").admitted)
        self.clock.now += 0.1
        self.assertTrue(quota.admit("acme").admitted)
        self.assertFalse(quota.admit("acme").admitted)
        self.clock.now += 0.5  # five calls' worth: full again
        decisions = [quota.admit("acme") for _ in range(6)]
        self.assertEqual([d.admitted for d in decisions], [True] * 5 + [False])

    def test_a_level_a_millionth_under_a_whole_call_is_one(self):
        # Float sums of refills fall a hair short of a whole call: the
        # call passes at exactly 1 - EPSILON, not a hair further below.
        self.clock.now = 0.0
        quota = self.quota(rate=1.0, burst=0)
        self.assertTrue(quota.admit("acme").admitted)
        self.clock.now = 1 - quotas.EPSILON
        self.assertTrue(quota.admit("acme").admitted)
        self.clock.now += 1 - 2 * quotas.EPSILON
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            self.assertFalse(quota.admit("acme").admitted)

    def test_sustained_calls_get_the_rate(self):
        quota = self.quota(rate=20.0, burst=0)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            admitted = admitted_count(quota, self.clock, 1000, 0.01)
        self.assertEqual(admitted, 200)  # one at 0, then 20 a second

    def test_a_refused_call_spends_nothing(self):
        hammered, calm = self.quota(rate=10.0, burst=0), self.quota(
            rate=10.0, burst=0)
        hammered.admit("acme")
        calm.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            for _ in range(100):
                self.assertFalse(hammered.admit("acme").admitted)
        self.clock.now += 0.1
        self.assertTrue(hammered.admit("acme").admitted)
        self.assertTrue(calm.admit("acme").admitted)

    def test_a_call_shed_before_any_work_is_given_back(self):
        quota = self.quota(rate=10.0, burst=5)
        for _ in range(3):
            shed = quota.admit("acme")
        quota.refund("acme", shed)
        self.assertEqual(quota.admit("acme").remaining, 3)
        quota.refund("acme", shed)
        quota.refund("acme", shed)
        quota.refund("acme", shed)
        self.assertEqual(quota.admit("acme").remaining, 5)  # never over
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            for _ in range(6):
                refused = quota.admit("acme")
        quota.refund("acme", refused)  # took nothing: gives nothing
        self.assertFalse(quota.admit("acme").admitted)
        quota.refund("nobody", UNLIMITED)  # no bucket: nothing to do

    @cases([(50.0, 1), (10.0, 1), (0.5, 2), (0.1, 10), (0.3, 4)])
    def test_retry_after_is_whole_seconds_until_a_call_passes(self, case):
        rate, retry_after = case
        quota = self.quota(rate=rate, burst=0)
        quota.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            refused = quota.admit("acme")
        self.assertFalse(refused.admitted)
        self.assertEqual(refused.retry_after, retry_after)
        self.clock.now += retry_after
        self.assertTrue(quota.admit("acme").admitted)

    def test_the_header_fields_say_the_policy_and_what_is_left(self):
        quota = self.quota(rate=50.0, burst=100)
        self.assertEqual(header_fields(quota.admit("acme")), [
            ("RateLimit-Policy", '"default";q=101;w=3'),
            ("RateLimit", '"default";r=100;t=1')])
        for _ in range(99):
            quota.admit("acme")
        self.assertEqual(header_fields(quota.admit("acme"))[1],
                         ("RateLimit", '"default";r=0;t=3'))
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            refused = quota.admit("acme")
        self.assertEqual(header_fields(refused)[1],
                         ("RateLimit", '"default";r=0;t=3'))
        self.clock.now += 10
        self.assertEqual(header_fields(quota.admit("acme"))[1],
                         ("RateLimit", '"default";r=100;t=1'))

    def test_no_rate_is_no_limit_and_no_header_field(self):
        quota = self.quota(rate=0, burst=5)
        decisions = [quota.admit("acme") for _ in range(1000)]
        self.assertTrue(all(d is UNLIMITED for d in decisions))
        self.assertEqual(header_fields(UNLIMITED), [])
        self.assertFalse(UNLIMITED.counted)
        self.assertFalse(UNLIMITED.partner_over)  # never shed first
        # Served, and not counted over a quota in the metrics.
        self.assertEqual((UNLIMITED.admitted, UNLIMITED.over_quota),
                         (True, False))
        self.assertFalse(quota.limited)
        self.assertEqual(quota.buckets, {})  # nothing kept per account

    def test_an_override_is_the_account_s_own_quota_in_its_exact_case(self):
        quota = self.quota(rate=10.0, burst=0, accounts={
            "Acme": (2.0, 3), "globex": (5.0, None), "free": (0, None)})
        self.assertEqual(quota.policy_of("Acme").field, '"default";q=4;w=2')
        self.assertEqual(quota.policy_of("acme").field, '"default";q=1;w=1')
        self.assertEqual(quota.policy_of("globex").burst, 0)  # default's
        self.assertIsNone(quota.policy_of("free"))
        self.assertIs(quota.admit("free"), UNLIMITED)
        self.assertTrue(quota.limited)
        self.assertTrue(Quotas(0, 0, accounts={"a": (1.0, 0)}).limited)

    def test_only_configured_partners_have_a_label_of_their_own(self):
        quota = self.quota(accounts={"Acme": (2.0, 3)})
        self.assertEqual(quota.partner_label("Acme"), "Acme")
        self.assertEqual(quota.partner_label("acme"), "other")
        self.assertEqual(quota.admit("Acme").partner, "Acme")
        self.assertEqual(quota.admit("anyone at all").partner, "other")

    def test_an_empty_account_is_a_partner_like_any_other(self):
        quota = self.quota(rate=10.0, burst=0)
        self.assertTrue(quota.admit("").admitted)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            self.assertFalse(quota.admit("").admitted)
        self.assertTrue(quota.admit("acme").admitted)

    def test_workers_must_be_a_whole_number_of_at_least_one(self):
        for workers in (0, -1, 1.5):
            with self.assertRaisesRegex(ValueError, "workers"):
                Quotas(1.0, 0, workers=workers)


class ShadowModeTest(unittest.TestCase):
    def test_nothing_is_refused_and_what_would_be_is_counted_as_such(self):
        clock = FakeClock()
        shadow = Quotas(10.0, 2, enforce=False, clock=clock)
        enforced = Quotas(10.0, 2, clock=clock)
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            for step in range(200):
                seen, real = shadow.admit("acme"), enforced.admit("acme")
                self.assertTrue(seen.admitted)
                # Over quota exactly where enforcing refuses: what would
                # be refused spends nothing either.
                self.assertEqual(seen.over_quota, not real.admitted, step)
                self.assertEqual(header_fields(seen), header_fields(real))
                self.assertEqual(seen.hold, 0.0)
                clock.now += 0.02
        self.assertIn("over quota, served in shadow mode", logs.output[0])


class HoldTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.quota = Quotas(10.0, 0, clock=self.clock)

    def test_only_a_partner_refused_again_within_the_second_is_held(self):
        self.quota.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            first = self.quota.admit("acme")
        self.assertEqual(first.hold, 0.0)
        self.assertTrue(first.partner_over)
        second = self.quota.admit("acme")
        self.assertEqual(second.hold, 1.0)  # at least a second
        self.assertEqual(second.retry_after_held(second.hold), 1)

    def test_a_hold_lasts_until_a_call_would_pass_at_most_five_seconds(self):
        slow = Quotas(0.1, 0, clock=self.clock)
        slow.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            slow.admit("acme")
        self.clock.now += 0.5
        held = slow.admit("acme")
        self.assertAlmostEqual(held.wait, 9.5)
        self.assertEqual(held.hold, quotas.HOLD_MAX_SECONDS)
        self.assertEqual(held.retry_after, 10)
        self.assertEqual(held.retry_after_held(held.hold), 5)
        self.assertEqual(held.retry_after_held(1.0), 9)

    def test_a_partner_is_over_its_quota_for_a_second_after_a_refusal(self):
        self.quota.admit("acme")
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            self.quota.admit("acme")
        self.clock.now += 0.5
        self.assertTrue(self.quota.admit("acme").partner_over)
        self.clock.now += 0.5
        admitted = self.quota.admit("acme")
        self.assertTrue(admitted.admitted)
        self.assertFalse(admitted.partner_over)
        self.assertFalse(self.quota.admit("globex").partner_over)

    def test_a_partner_never_refused_is_not_over_at_any_time(self):
        quota = Quotas(10.0, 0, clock=FakeClock(0.0))
        self.assertFalse(quota.someone_over())  # even at the clock's start
        self.assertFalse(quota.admit("acme").partner_over)
        self.assertFalse(quota.someone_over())


class RefusalLogTest(AsyncTestCase):
    @gen_test
    async def test_refusals_are_one_line_per_interval_by_partner(self):
        clock = FakeClock(0.0)
        quota = Quotas(1.0, 0, accounts={"Acme": (1.0, 0)}, clock=clock,
                       log_interval=10.0)
        quota.admit("Acme")
        quota.admit("x")
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            quota.admit("Acme")  # the first refusal: said at once
            self.assertEqual(len(logs.output), 1)
            for _ in range(5):
                clock.now += 1.0
                quota.admit("Acme")  # admitted
                quota.admit("Acme")  # refused
                quota.admit("x")
                quota.admit("x")
            self.assertEqual(len(logs.output), 1)  # within the interval
            await quota.sync()  # 5 s after the first line: nothing yet
            self.assertEqual(len(logs.output), 1)
            clock.now += 5.0  # the interval since the first line: said
            await quota.sync()
            self.assertEqual(len(logs.output), 2)
            await quota.sync()  # nothing new: nothing said
            clock.now += 10.0  # a refusal an interval after: said at once
            quota.admit("x")
            quota.admit("x")
            self.assertEqual(len(logs.output), 3)
            quota.admit("x")
            clock.now += 5.0
            await quota.sync()  # within the interval: not yet
            self.assertEqual(len(logs.output), 3)
            clock.now += 20.0  # said at the first sync past the interval
            await quota.sync()
        self.assertEqual(len(logs.output), 4, logs.output)
        self.assertIn("1 calls refused over quota since the last report"
                      " (Acme 1)", logs.output[0])
        self.assertIn("10 calls refused over quota since the last report"
                      " (Acme 5, other 5)", logs.output[1])
        self.assertIn("1 calls refused over quota since the last report"
                      " (other 1)", logs.output[3])


class TwoWorkersTestCase(AsyncTestCase):
    """Two processes' `Quotas` sharing one `FakeCounters`, each syncing
    every 0.2 s (the second 0.1 s after the first)."""

    def setUp(self):
        super().setUp()
        self.clock = FakeClock(0.0)
        self.counters = FakeCounters(self.clock)

    def workers(self, rate, burst, **kwargs):
        self.quotas = [
            Quotas(rate, burst, workers=2, counters=self.counters,
                   clock=self.clock, process="w%d" % n, **kwargs)
            for n in range(2)]
        return self.quotas

    async def send(self, calls_per_second, seconds, start=0.0,
                   account="acme"):
        """Calls at `calls_per_second[n]` to worker n for `seconds`; the
        times of the admitted ones."""
        events = []
        for worker, per_second in enumerate(calls_per_second):
            if per_second:
                events += [(start + k / per_second, worker)
                           for k in range(int(seconds * per_second))]
        for worker, first in enumerate((0.2, 0.3)):
            events += [(start + first + 0.2 * k, 2 + worker)
                       for k in range(int(seconds / 0.2))]
        admitted = []
        for when, what in sorted(events):
            self.clock.now = when
            if what >= 2:
                await self.quotas[what - 2].sync()
            elif self.quotas[what].admit(account).admitted:
                admitted.append(when)
        return admitted


def windows(times, seconds, width=10.0, step=0.05):
    """(fewest, most) of `times` in any `width` s within `seconds`."""
    counts = [bisect.bisect_left(times, start + width)
              - bisect.bisect_left(times, start)
              for start in (k * step
                            for k in range(int((seconds - width) / step)))]
    return min(counts), max(counts)


class SharedQuotaTest(TwoWorkersTestCase):
    @cases([(10.0, 0, 2, (0.5, 0.5)), (10.0, 100, 10, (0.5, 0.5)),
            (50.0, 100, 2, (0.75, 0.25)), (100.0, 5, 10, (0.9, 0.1)),
            (200.0, 1000, 3, (0.5, 0.5)), (10.0, 1000, 100, (0.5, 0.5)),
            (13.7, 3, 2, (0.5, 0.5)), (50.0, 0, 10, (1.0, 0.0))])
    @gen_test(timeout=30)
    async def test_a_flood_through_two_workers_gets_the_rate_once(
            self, case):
        # SPEC 9: sending at 2r or more through two workers, between
        # 0.9 x 10r and 1.1 x (10r + b) calls admitted in any 10 s.
        rate, burst, times_rate, split = case
        self.workers(rate, burst)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            admitted = await self.send(
                [times_rate * rate * part for part in split], 40.0)
        fewest, most = windows(admitted, 40.0)
        self.assertGreaterEqual(fewest, 0.9 * 10 * rate)
        self.assertLessEqual(most, 1.1 * (10 * rate + burst))

    @gen_test
    async def test_a_worker_alone_gives_the_whole_quota(self):
        first, _ = self.workers(20.0, 9)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            admitted = await self.send([100.0, 0], 5.0)
            self.clock.now = 10.0  # full again
            for _ in range(3):
                await first.sync()
            burst = [first.admit("acme").admitted for _ in range(12)]
        self.assertEqual(burst, [True] * 10 + [False] * 2)
        self.assertAlmostEqual(len(admitted), 5 + 20 * 5, delta=3)

    def test_a_worker_that_meets_a_partner_holds_half_its_burst(self):
        first, second = self.workers(10.0, 9)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            at_once = [(first.admit("acme").admitted,
                        second.admit("acme").admitted) for _ in range(6)]
        self.assertEqual(at_once, [(True, True)] * 5 + [(False, False)])

    @gen_test
    async def test_shares_follow_the_calls_each_worker_is_asked(self):
        first, second = self.workers(100.0, 99)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            await self.send([300.0, 100.0], 5.0)
        shares = [quota.buckets["acme"].share for quota in self.quotas]
        self.assertAlmostEqual(shares[0], 0.75 * quotas.SHARE_HEADROOM,
                               delta=0.05)
        self.assertAlmostEqual(shares[1], 0.25 * quotas.SHARE_HEADROOM,
                               delta=0.05)

    @gen_test
    async def test_a_worker_asked_rarely_keeps_two_percent(self):
        # Its part of the demand is 0.5 %: with no floor, a call that
        # comes to it would wait for a refill the others do not need.
        first, second = self.workers(100.0, 99)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            await self.send([1000.0, 5.0], 5.0)
        self.assertAlmostEqual(second.buckets["acme"].share, 0.02)
        self.assertGreater(first.buckets["acme"].share, 0.9)

    @gen_test
    async def test_partners_are_counted_apart(self):
        self.workers(10.0, 0)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            acme = await self.send([20.0, 20.0], 20.0, account="acme")
        self.clock.now = 0.0
        self.workers(10.0, 0)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            globex = await self.send([20.0, 20.0], 20.0, account="globex")
        self.assertEqual(len(acme), len(globex))


class FallbackTest(TwoWorkersTestCase):
    @gen_test(timeout=30)
    async def test_without_counters_each_worker_holds_its_share(self):
        self.workers(40.0, 0)
        self.counters.down = True
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            admitted = await self.send([200.0, 0], 20.0)
        fewest, most = windows(admitted, 20.0)
        self.assertGreaterEqual(fewest, 0.9 * 10 * 20.0)
        self.assertLessEqual(most, 1.1 * 10 * 20.0 + 1)
        said = [line for line in logs.output if "counters" in line]
        self.assertEqual(len(said), 1, said)  # the worker asked, once
        self.assertIn("the shared counters failed (cache is unavailable):"
                      " each process holds 1/2 of every quota", said[0])

    @gen_test(timeout=30)
    async def test_back_to_one_shared_quota_once_they_answer_said_once(
            self):
        self.workers(40.0, 0)
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            await self.send([200.0, 0], 5.0)
            self.counters.down = True
            during = await self.send([200.0, 0], 5.0, start=5.0)
            self.counters.down = False
            after = await self.send([200.0, 0], 20.0, start=10.0)
        said = [line.split(":", 2)[2] for line in logs.output
                if "counters" in line]
        self.assertEqual(said, [
            "quotas: the shared counters failed (cache is unavailable):"
            " each process holds 1/2 of every quota until they answer",
            "quotas: the shared counters answer again: the processes"
            " share every quota by demand again"])
        # Alone: the whole rate; counters down: the local share, 1/2.
        self.assertAlmostEqual(len([when for when in during if when >= 6]),
                               4 * 40 / 2, delta=2)
        fewest, _ = windows([when - 12.0 for when in after if when >= 12],
                            18.0)
        self.assertGreaterEqual(fewest, 0.9 * 10 * 40.0)

    @gen_test
    async def test_failing_counters_are_tried_once_a_probe_interval(self):
        self.workers(40.0, 0, probe_interval=0.5)
        self.counters.down = True
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            await self.send([100.0, 0], 10.0)
        # Ten seconds, a probe at the first sync (every 0.2 s) 0.5 s or
        # more after the last one: not one a sync. (The other worker,
        # never asked, has nothing to exchange.)
        self.assertLessEqual(self.counters.exchanges, 10 / 0.5 + 1)
        self.assertGreaterEqual(self.counters.exchanges, 10 / 0.7 - 1)

    @gen_test
    async def test_by_default_failing_counters_are_tried_every_second(self):
        # docs/operations.md: "tries the counters again every second".
        self.workers(40.0, 0)
        self.counters.down = True
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            await self.send([100.0, 0], 10.0)
        self.assertLessEqual(self.counters.exchanges, 10 / 1.0 + 1)
        self.assertGreaterEqual(self.counters.exchanges, 10 / 1.2 - 1)

    @gen_test
    async def test_failing_counters_are_tried_again_a_probe_interval_later(
            self):
        # Exactly one interval after the failure, not a sync later.
        first, _ = self.workers(40.0, 0)
        self.counters.down = True
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            for step, down in ((0.25, True), (0.75, False), (0.25, False)):
                first.admit("acme")  # a demand to exchange
                self.clock.now += step
                self.counters.down = down
                await first.sync()
        said = [line.split(":", 2)[2] for line in logs.output]
        self.assertEqual(said, [
            "quotas: the shared counters failed (cache is unavailable):"
            " each process holds 1/2 of every quota until they answer",
            "quotas: the shared counters answer again: the processes"
            " share every quota by demand again"])
        self.assertEqual(self.counters.exchanges, 2)

    @gen_test
    async def test_any_error_of_the_counters_falls_back_with_its_trace(
            self):
        first, _ = self.workers(40.0, 0)

        async def broken(demands, process):
            raise RuntimeError("a bug")

        self.counters.exchange = broken
        first.admit("acme")
        self.clock.now += 0.2
        with self.assertLogs("scoring_api.quotas", "WARNING") as logs:
            await first.sync()
        self.assertIn("RuntimeError: a bug", logs.output[0])
        self.assertFalse(first.shared)
        self.assertEqual(first.buckets["acme"].share, 0.5)


class DemandTest(TwoWorkersTestCase):
    """What each worker publishes: the calls a second it is asked for a
    partner, smoothed over DEMAND_SMOOTHING_SECONDS."""

    def published(self, worker="w0", account="acme"):
        return self.counters.fields.get(account, {}).get(worker, (None,))[0]

    @gen_test
    async def test_the_demand_approaches_the_calls_a_second(self):
        first, _ = self.workers(1000.0, 0)
        for _ in range(10):  # 50 a second for 0.2 s
            first.admit("acme")
            self.clock.now += 0.02
        await first.sync()
        # From 0, a time constant of DEMAND_SMOOTHING_SECONDS.
        rising = 50 * (1 - math.exp(-0.2 / quotas.DEMAND_SMOOTHING_SECONDS))
        self.assertAlmostEqual(self.published(), rising, delta=0.01)
        for _ in range(25):
            for _ in range(10):
                first.admit("acme")
                self.clock.now += 0.02
            await first.sync()
        self.assertAlmostEqual(self.published(), 50.0, delta=0.1)
        self.clock.now += 0.5  # no call: one time constant
        await first.sync()
        self.assertAlmostEqual(self.published(), 50.0 / math.e, delta=0.1)

    @gen_test
    async def test_under_a_call_a_second_is_a_demand_all_the_same(self):
        first, _ = self.workers(10.0, 9)
        first.admit("acme")
        self.clock.now += 0.9
        await first.sync()
        rising = 1 / 0.9 * (1 - math.exp(-0.9
                                         / quotas.DEMAND_SMOOTHING_SECONDS))
        self.assertAlmostEqual(self.published(), rising, delta=0.001)
        self.assertLess(self.published(), 1.0)
        self.assertEqual(first.buckets["acme"].share, 1.0)  # alone
        self.clock.now += 0.2
        await first.sync()
        self.assertNotIn("acme", self.counters.fields)

    @gen_test
    async def test_a_demand_is_published_until_stale_seconds_after_a_call(
            self):
        first, _ = self.workers(10.0, 0)
        first.admit("acme")
        self.clock.now += STALE_SECONDS
        await first.sync()
        self.assertIsNotNone(self.published())
        self.clock.now += 0.2
        await first.sync()
        self.assertIsNone(self.published())

    @gen_test
    async def test_a_partner_not_asked_for_costs_no_exchange(self):
        first, _ = self.workers(10.0, 0)
        first.admit("acme")
        await first.sync()  # no time has passed: no demand measured yet
        self.assertEqual(self.counters.exchanges, 0)
        self.clock.now += 0.2
        await first.sync()
        self.clock.now += 2.0
        await first.sync()  # its field goes
        self.assertEqual(self.counters.exchanges, 2)
        for _ in range(10):
            self.clock.now += 0.2
            await first.sync()
        self.assertEqual(self.counters.exchanges, 2)

    @gen_test
    async def test_a_worker_no_longer_asked_keeps_its_share(self):
        first, second = self.workers(10.0, 9)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            await self.send([20.0, 20.0], 5.0)
        self.clock.now += 10.0  # both idle: buckets full again
        for quota in self.quotas:
            await quota.sync()
        burst = [first.admit("acme").admitted for _ in range(6)]
        self.assertEqual(burst, [True] * 5 + [False])  # half of 10

    @gen_test
    async def test_a_larger_share_fills_at_its_rate_not_at_once(self):
        first, _ = self.workers(10.0, 9)
        first.admit("acme")  # cold: half the bucket, 5
        self.clock.now += 1.0  # full again (4 + 5 a second, up to 5)
        await first.sync()  # alone: all of it, 10, from those 5
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            burst = [first.admit("acme").admitted for _ in range(6)]
        self.assertEqual(burst, [True] * 5 + [False])

    @gen_test
    async def test_a_partner_forgotten_during_an_exchange_is_skipped(self):
        first, _ = self.workers(10.0, 0)
        for account in ("a", "b"):
            first.admit(account)
        exchange = self.counters.exchange

        async def forgetting(demands, process):
            del first.buckets["a"]  # as an eviction would, meanwhile
            return await exchange(demands, process)

        self.counters.exchange = forgetting
        self.clock.now += 0.2
        await first.sync()
        self.assertEqual(first.buckets["b"].share, 1.0)


class IdleTest(TwoWorkersTestCase):
    def setUp(self):
        super().setUp()
        self.clock.now = 1000.0

    @gen_test
    async def test_an_idle_partner_is_forgotten_here_and_in_the_counters(
            self):
        first, _ = self.workers(10.0, 4, idle_seconds=30.0)
        first.admit("acme")
        self.clock.now += 0.2
        await first.sync()
        self.assertIn("acme", self.counters.fields)
        self.clock.now += 29.0
        await first.sync()  # its demand went: the field goes
        self.assertNotIn("acme", self.counters.fields)
        self.assertIn("acme", first.buckets)
        self.clock.now += 0.8  # 30 s after its last call
        await first.sync()
        self.assertEqual(first.buckets, {})

    @gen_test
    async def test_by_default_idle_means_a_minute(self):
        quota = Quotas(10.0, 0, clock=self.clock)
        quota.admit("acme")
        self.clock.now += 59.9
        await quota.sync()
        self.assertIn("acme", quota.buckets)
        self.clock.now += 0.1
        await quota.sync()
        self.assertEqual(quota.buckets, {})

    @gen_test
    async def test_a_bucket_refilled_exactly_to_full_is_forgotten(self):
        quota = Quotas(1.0, 0, clock=self.clock, idle_seconds=1.0)
        quota.admit("acme")
        self.clock.now += 1.0  # one call refilled of one: just full
        await quota.sync()
        self.assertEqual(quota.buckets, {})

    @gen_test
    async def test_a_partner_whose_bucket_is_not_full_is_kept(self):
        quota = Quotas(0.01, 1, clock=self.clock, idle_seconds=30.0)
        quota.admit("acme")
        quota.admit("acme")
        self.clock.now += 60.0  # 0.6 calls refilled of 2
        await quota.sync()
        self.assertIn("acme", quota.buckets)
        self.clock.now += 150.0
        await quota.sync()
        self.assertEqual(quota.buckets, {})

    @cases([(300, 30), (5, 1)])
    def test_past_max_accounts_the_longest_idle_go_first(self, case):
        most, evicted = case
        quota = Quotas(10.0, 0, clock=self.clock, max_accounts=most)
        for n in range(most):
            quota.admit("p%d" % n)
            self.clock.now += 1.0
        quota.admit("p0")  # used again: the most recent
        quota.admit("new")
        self.assertEqual(len(quota.buckets), most - evicted + 1)
        self.assertEqual(
            sorted(set("p%d" % n for n in range(most)) - set(quota.buckets)),
            sorted("p%d" % n for n in range(1, evicted + 1)))
        self.assertIn("p0", quota.buckets)
        self.assertIn("new", quota.buckets)

    def test_by_default_ten_thousand_accounts_are_kept_then_a_tenth_go(
            self):
        # docs/architecture.md: at most MAX_ACCOUNTS. A forgotten
        # account starts again with a full bucket: its call passes.
        quota = Quotas(0.001, 0, clock=self.clock)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            for n in range(10000):
                quota.admit("p%d" % n)  # spends its one call
                self.clock.now += 0.001
            self.assertFalse(quota.admit("p0").admitted)  # all kept
            self.assertTrue(quota.admit("new").admitted)
            self.assertEqual([quota.admit("p%d" % n).admitted
                              for n in (0, 1, 1000, 1001, 9999)],
                             [False, True, True, False, False])


class BackgroundTest(AsyncTestCase):
    @gen_test
    async def test_start_syncs_in_the_background_until_stop(self):
        counters = FakeCounters(self.io_loop.asyncio_loop.time)
        quota = Quotas(10.0, 0, workers=2, counters=counters,
                       sync_interval=0.01, process="w0")
        quota.start()
        quota.start()  # once is enough
        for _ in range(100):
            quota.admit("acme")  # a demand to exchange, whatever the lag
            await asyncio.sleep(0.01)
            if counters.exchanges >= 2:
                break
        self.assertGreaterEqual(counters.exchanges, 2)
        await quota.stop()
        exchanges = counters.exchanges
        await asyncio.sleep(0.05)
        self.assertEqual(counters.exchanges, exchanges)
        await quota.stop()  # stopping twice is harmless

    @gen_test
    async def test_by_default_the_demands_are_exchanged_every_0_2_s(self):
        # docs/architecture.md: "every 0.2 s". Load only makes the gaps
        # longer; the loop may run a timer up to a tick early.
        now = self.io_loop.asyncio_loop.time
        counters = FakeCounters(now)
        exchange, times = counters.exchange, []

        async def timed(demands, process):
            times.append(now())
            return await exchange(demands, process)

        counters.exchange = timed
        quota = Quotas(100.0, 0, workers=2, counters=counters, process="w0")
        times.append(now())
        quota.start()
        for _ in range(60):
            quota.admit("acme")  # a demand to exchange
            await asyncio.sleep(0.05)
            if len(times) >= 3:
                break
        await quota.stop()
        self.assertGreaterEqual(len(times), 3)
        for earlier, later in zip(times, times[1:]):
            self.assertGreaterEqual(later - earlier, 0.19)

    @gen_test
    async def test_a_sync_that_raises_does_not_end_the_syncing(self):
        quota = Quotas(10.0, 0, sync_interval=0.01)
        calls = []

        async def failing_sync():
            calls.append(1)
            raise RuntimeError("a bug")

        quota.sync = failing_sync
        with self.assertLogs("scoring_api.quotas", "ERROR"):
            quota.start()
            for _ in range(100):
                await asyncio.sleep(0.01)
                if len(calls) >= 2:
                    break
        await quota.stop()
        self.assertGreaterEqual(len(calls), 2)


class DemandOverRateTest(unittest.TestCase):
    """A partner asking more than its rate is over its quota before any
    refusal: its calls are shed first and, shed, not given back."""

    def test_asking_more_than_the_rate_is_over_and_shed_calls_stay_spent(
            self):
        clock = FakeClock()
        quota = Quotas(10.0, 100, clock=clock)
        for _ in range(40):  # 40 calls a second, for a second
            self.assertFalse(quota.admit("acme").partner_over)
            clock.now += 0.025
        self.assertFalse(quota.someone_over())
        asyncio.run(quota.sync())  # measures the demand
        shed = quota.admit("acme")
        self.assertTrue(shed.admitted)
        self.assertTrue(shed.partner_over)
        self.assertTrue(quota.someone_over())
        quota.refund("acme", shed)
        self.assertEqual(quota.admit("acme").remaining, shed.remaining - 1)
        self.assertFalse(quota.admit("globex").partner_over)
        clock.now += 1.0
        asyncio.run(quota.sync())  # nothing asked for a second
        self.assertFalse(quota.admit("acme").partner_over)

"""admission.Admission: the quota, then the load, decided per call; what
it hands the handler in ctx; fairness between partners; refunds."""
import asyncio
import unittest

from scoring_api.admission import Admission, RateLimited
from scoring_api.config import Settings
from scoring_api.errors import Overloaded
from scoring_api.overload import Overload
from scoring_api.quotas import Quotas
from scoring_api.throttle import Throttle
from tests.support.cases import cases
from tests.support.clock import FakeClock
from tornado.testing import AsyncTestCase, gen_test


class FixedLag:
    def __init__(self):
        self.lag = 0.0


class AdmissionTestCase(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.lag = FixedLag()
        self.quotas = Quotas(10.0, 0, clock=self.clock)
        self.overload = Overload(self.lag, shed_lag=0.1, budget=1.0,
                                 min_in_flight=4, clock=self.clock)
        self.admission = Admission(self.quotas, self.overload)

    def admit(self, account):
        """The ctx of an admitted call; raises as `admit` does."""
        ctx = {}
        self.admission.admit(account, ctx)
        return ctx


class AdmitTest(AdmissionTestCase):
    def test_an_admitted_call_is_in_flight_until_finished(self):
        ctx = self.admit("acme")
        self.assertTrue(ctx["quota"].admitted)
        self.assertNotIn("shed", ctx)
        self.assertEqual(self.overload.in_flight, 1)
        self.admission.finished(ctx)
        self.assertEqual(self.overload.in_flight, 0)

    def test_over_quota_raises_429_and_is_not_in_flight(self):
        self.admit("acme")
        ctx = {}
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            with self.assertRaises(RateLimited) as raised:
                self.admission.admit("acme", ctx)
        self.assertEqual((raised.exception.code, str(raised.exception)),
                         (429, "rate limit exceeded"))
        self.assertFalse(ctx["quota"].admitted)
        self.admission.finished(ctx)  # harmless: nothing to finish
        self.assertEqual(self.overload.in_flight, 1)

    @cases([("loop_lag", 0.5, 0), ("in_flight", 0.0, 4)])
    def test_a_shed_call_says_why_and_gets_its_call_back(self, case):
        reason, lag, in_flight = case
        for n in range(in_flight):
            self.admit("other-%d" % n)
        self.lag.lag = lag
        ctx = {}
        with self.assertLogs("scoring_api.admission", "WARNING"):
            with self.assertRaises(Overloaded):
                self.admission.admit("acme", ctx)
        self.assertEqual(ctx["shed"], reason)
        self.lag.lag = 0.0
        for n in range(in_flight):
            self.admission.finished({"quota": ctx["quota"],
                                     "account": "other-%d" % n})
        self.admit("acme")  # its one call is still there

    def test_sheds_are_logged_once_an_interval_with_a_count_by_reason(self):
        # docs/operations.md: "overload: 212 calls shed since the last
        # report (in_flight 12, loop_lag 200)", at most once per 10 s.
        self.admission.shed_log = Throttle(clock=self.clock)
        self.lag.lag = 0.5

        def shed(count):
            for _ in range(count):
                with self.assertRaises(Overloaded):
                    self.admission.admit("acme", {})
                self.clock.now += 0.01

        with self.assertLogs("scoring_api.admission", "WARNING") as logs:
            shed(1)
            shed(3)
            self.lag.lag = 0.0
            ctx = self.admit("acme")
            with self.assertRaises(Overloaded):
                for n in range(4):
                    self.admit("other-%d" % n)
            self.admission.store_overloaded(ctx)
            self.clock.now += 10.0
            self.lag.lag = 0.5
            shed(1)
        self.assertEqual([record.getMessage() for record in logs.records], [
            "overload: 1 calls shed since the last report (loop_lag 1)",
            "overload: 6 calls shed since the last report (in_flight 1,"
            " loop_lag 4, store_overloaded 1)"])

    def test_a_store_overloaded_call_gets_its_call_back(self):
        ctx = self.admit("acme")
        with self.assertLogs("scoring_api.admission", "WARNING"):
            self.admission.store_overloaded(ctx)
        self.assertEqual(ctx["shed"], "store_overloaded")
        self.admission.finished(ctx)
        self.admit("acme")

    def test_from_settings_takes_limits_and_overload(self):
        settings = Settings().replace(
            limits={"rate": 5.0, "burst": 3, "enforce": False,
                    "accounts": (("Acme", 1.0, None),)},
            overload={"shed_lag": 0.0, "budget": 2.0, "min_in_flight": 7,
                      "max_held": 9}, server={"workers": 2})
        admission = Admission.from_settings(settings)
        quotas, overload = admission.quotas, admission.overload
        self.assertEqual((quotas.default.rate, quotas.default.burst,
                          quotas.enforce, quotas.workers),
                         (5.0, 3, False, 2))
        self.assertEqual((quotas.overrides["Acme"].rate,
                          quotas.overrides["Acme"].burst), (1.0, 3))
        self.assertEqual((overload.shed_lag, overload.budget,
                          overload.min_in_flight, overload.max_held),
                         (0.0, 2.0, 7, 9))


class FairnessTest(AdmissionTestCase):
    def test_a_quiet_partner_is_served_while_a_flooding_one_is_in_flight(
            self):
        flood_calls = []
        quiet_beside_the_flood = 0
        with self.assertLogs("scoring_api", "WARNING"):
            for step in range(200):
                self.clock.now += 0.01
                # The flood: 5 calls every 10 ms (50 times its quota);
                # those admitted stay in flight.
                for _ in range(5):
                    try:
                        flood_calls.append(self.admit("flood"))
                    except (RateLimited, Overloaded):
                        pass
                # The process saturated under the flood's weight.
                self.lag.lag = 0.5 if len(flood_calls) > 2 else 0.0
                if step % 10 == 0:
                    quiet_beside_the_flood += bool(
                        self.overload.over_in_flight and self.lag.lag)
                    quiet = self.admit("quiet")  # never raises
                    self.admission.finished(quiet)
        self.assertGreaterEqual(quiet_beside_the_flood, 15)
        # The flood got its first calls only: then it was over its quota
        # and the process saturated.
        self.assertLessEqual(len(flood_calls), 4)

    def test_a_quiet_partner_is_not_shed_while_another_is_refused(self):
        # The flood's calls are refused, none in flight: its refusals
        # are what loads the loop, so the quiet partner is served.
        self.admit("flood")
        with self.assertLogs("scoring_api", "WARNING"):
            with self.assertRaises(RateLimited):
                self.admit("flood")
            self.lag.lag = 0.5
            self.assertEqual(self.overload.over_in_flight, 0)
            self.admission.finished(self.admit("quiet"))
            self.clock.now += 0.1  # a call refilled
            with self.assertRaises(Overloaded):
                self.admit("flood")  # over quota lately: shed first
            self.clock.now += 1.0  # nobody refused for a second
            with self.assertRaises(Overloaded):
                self.admit("quiet")


class DelayTest(AsyncTestCase):
    """What the handler awaits before a refusal: (Retry-After, close the
    connection?)."""

    @gen_test
    async def test_past_max_held_a_refusal_is_sent_at_once_and_closes(self):
        clock = FakeClock()
        admission = Admission(Quotas(10.0, 0, clock=clock),
                              Overload(FixedLag(), max_held=1, clock=clock))
        refusals = []
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            admission.admit("acme", {})
            for _ in range(3):  # the partner keeps calling: held from the 2nd
                ctx = {}
                with self.assertRaises(RateLimited):
                    admission.admit("acme", ctx)
                refusals.append(ctx)
        self.assertEqual(await admission.delay(refusals[0]), (1, False))
        self.assertEqual(await admission.delay({"shed": "loop_lag"}),
                         (1, False))
        held = asyncio.ensure_future(admission.delay(refusals[1]))
        await asyncio.sleep(0)
        self.assertEqual(await admission.delay(refusals[2]), (1, True))
        admission.overload.release_holds()
        self.assertFalse((await held)[1])

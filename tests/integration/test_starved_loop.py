"""A Redis call that timed out because this process was starved is not a
Redis outage (docs/operations.md, "Overload"): a real Redis behind a fault
proxy, and the event loop stalled by the test while calls wait on it."""
from tornado.testing import gen_test

from tests.support.stalled_loop import (LoopLagProbe, StalledLoopTestCase,
                                        redis_errors)


class StarvedProcessTest(StalledLoopTestCase):
    def store_options(self):
        self.probe = LoopLagProbe()
        self.addCleanup(self.probe.stop)
        return {"is_starved": self.probe.is_starved}

    @gen_test(timeout=30)
    async def test_calls_the_stall_timed_out_are_overloaded_not_redis_s(
            self):
        errors_before = redis_errors("store")
        with self.assertNoLogs("scoring_api.store", "WARNING"):
            answers = await self.calls_through_a_stall()
        self.assertNotIn((503, "store is unavailable"), answers)
        self.assertIn((503, "overloaded, retry later"), answers)
        self.assertLessEqual(set(answers), {
            (200, None), (503, "overloaded, retry later")})
        self.assertEqual(redis_errors("store"), errors_before)
        self.assertTrue(self.store.breaker.allows())


class UnmonitoredProcessTest(StalledLoopTestCase):
    """The same stall, with no word from the loop: what the process was
    told before (and the proof that the stall makes calls time out)."""

    @gen_test(timeout=30)
    async def test_without_the_loops_word_the_stall_is_blamed_on_redis(
            self):
        errors_before = redis_errors("store")
        with self.assertLogs("scoring_api.store", "WARNING"):
            answers = await self.calls_through_a_stall()
        self.assertIn((503, "store is unavailable"), answers)
        self.assertGreater(redis_errors("store"), errors_before)

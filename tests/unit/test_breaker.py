"""The circuit breaker (store/breaker.py) that keeps calls off a cache
known to be down."""
import asyncio

import mock
from tornado.testing import gen_test

from scoring_api import metrics
from scoring_api.store import CircuitBreaker
from tests.support.metrics_text import samples, value
from tests.support.store_doubles import ClosingTestCase, hang_forever


def circuit_open_gauge():
    """The value /metrics shows for scoring_api_cache_circuit_open."""
    return value(samples(metrics.render()[0]),
                 "scoring_api_cache_circuit_open")


class CircuitBreakerTest(ClosingTestCase):
    RESET_SECONDS = 0.01

    def breaker(self, *probe_answers):
        self.probe = mock.AsyncMock(side_effect=list(probe_answers))
        return self.closing(CircuitBreaker(
            "cache", self.probe, failure_threshold=2,
            reset_timeout=self.RESET_SECONDS))

    def trip(self, breaker):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            breaker.record_failure()
            breaker.record_failure()
        self.assertIn("circuit open after 2 failed calls", logs.output[0])

    @gen_test
    async def test_the_circuit_opens_at_the_threshold_of_failures(self):
        breaker = self.breaker()
        breaker.record_failure()
        self.assertTrue(breaker.allows())
        self.trip(breaker)
        self.assertFalse(breaker.allows())
        self.assertTrue(breaker.is_open)

    @gen_test
    async def test_a_success_resets_the_count_of_failures(self):
        breaker = self.breaker()
        breaker.record_failure()
        breaker.record_success()
        breaker.record_failure()
        self.assertTrue(breaker.allows())
        # From zero: the threshold of failures in a row opens it again.
        breaker.record_success()
        self.trip(breaker)
        self.assertFalse(breaker.allows())

    @gen_test
    async def test_once_closed_it_takes_the_whole_threshold_to_open(self):
        breaker = self.breaker(True)
        self.trip(breaker)
        with self.assertLogs("scoring_api.store", "WARNING"):
            await breaker.probing
        self.assertEqual(circuit_open_gauge(), 0.0)
        breaker.record_failure()
        self.assertTrue(breaker.allows())
        with self.assertLogs("scoring_api.store", "WARNING"):
            breaker.record_failure()  # the second in a row: the threshold
        self.assertFalse(breaker.allows())

    @gen_test
    async def test_the_open_gauge_follows_the_circuit(self):
        breaker = self.breaker()
        self.probe.side_effect = hang_forever
        self.trip(breaker)
        self.assertEqual(circuit_open_gauge(), 1.0)
        await breaker.close()
        self.assertEqual(circuit_open_gauge(), 0.0)

    @gen_test
    async def test_probes_wait_for_the_reset_timeout(self):
        breaker = CircuitBreaker("cache", mock.AsyncMock(return_value=True),
                                 failure_threshold=1, reset_timeout=60.0)
        with self.assertLogs("scoring_api.store", "WARNING"):
            breaker.record_failure()
        await asyncio.sleep(0.05)
        breaker.probe.assert_not_awaited()
        await breaker.close()

    @gen_test
    async def test_probes_repeat_until_one_succeeds_then_it_closes(self):
        breaker = self.breaker(False, False, True)
        self.trip(breaker)
        probing = breaker.probing
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            await probing
        self.assertEqual(self.probe.await_count, 3)
        self.assertTrue(breaker.allows())
        self.assertIn("circuit closed", logs.output[-1])

    @gen_test
    async def test_a_probe_that_raises_counts_as_down(self):
        breaker = self.breaker(RuntimeError("bug"), True)
        self.trip(breaker)
        with self.assertLogs("scoring_api.store", "WARNING"):
            await breaker.probing
        self.assertTrue(breaker.allows())

    @gen_test
    async def test_one_probe_task_however_many_failures(self):
        breaker = self.breaker(True)
        self.trip(breaker)
        probing = breaker.probing
        for _ in range(50):
            breaker.record_failure()
        self.assertIs(breaker.probing, probing)
        with self.assertLogs("scoring_api.store", "WARNING"):
            await probing
        self.assertEqual(self.probe.await_count, 1)

    @gen_test
    async def test_close_cancels_the_probing(self):
        breaker = self.breaker()
        self.probe.side_effect = hang_forever
        self.trip(breaker)
        probing = breaker.probing
        await breaker.close()
        self.assertTrue(probing.cancelled())

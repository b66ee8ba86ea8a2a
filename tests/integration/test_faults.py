"""The store's promises (docs/operations.md, "When Redis fails"), proven by
breaking a real Redis on purpose.

Each test's fault is undone by FaultLayer.testTearDown: the server is
resumed or restarted on its port, and black holes are closed.
"""
import json

import mock
from tornado.testing import gen_test

from tests.support.clock import admin_request, stop_auth_clock
from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.layers import FaultLayer
from tests.support.service import FAST, FaultTestCase

INTERESTS = api_request("clients_interests", {"client_ids": [1, 2]})
# The admin's score reads no Redis; its token is for the stopped clock's
# hour (tests.support.clock), so no run can cross an hour between build
# and check.
NEEDS_NO_REDIS = admin_request("online_score", {"first_name": "a",
                                                "last_name": "b"})
STORE_BUDGET = FAST.store.worst_call_seconds
CACHE_BUDGET = FAST.cache.worst_call_seconds
# Slack for a loaded 2-core machine; the bounds being proven are seconds.
SLACK_SECONDS = 0.5


class RedisKilledTest(FaultTestCase):
    def test_scores_still_answer_with_the_right_value(self):
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(5):
                (code, response), _ = self.timed(SCORE_REQUEST)
                self.assertEqual((code, response), (200, {"score": 3.0}))

    def test_interests_answer_503_within_the_budget(self):
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            (code, error), seconds = self.timed(INTERESTS)
        self.assertEqual((code, error), (503, "store is unavailable"))
        self.assertLess(seconds, STORE_BUDGET + SLACK_SECONDS)

    def test_after_a_restart_both_recover_without_restarting_the_service(
            self):
        self.assertEqual(self.timed(INTERESTS)[0][0], 200)
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertEqual(self.timed(INTERESTS)[0][0], 503)
            for _ in range(FAST.cache.failure_threshold):
                self.assertEqual(self.timed(SCORE_REQUEST)[0][0], 200)
            self.assertTrue(self.store.breaker.is_open)
            self.server.start()
            self.redis.set("i:1", json.dumps(["cars", "pets"]))
            (code, response), _ = self.timed(INTERESTS)
            self.assertEqual((code, response["1"]), (200, ["cars", "pets"]))
            self.wait_until(lambda: not self.store.breaker.is_open)
        (code, _), _ = self.timed(SCORE_REQUEST)
        self.assertEqual(code, 200)
        self.assertEqual(len(self.redis.keys("score:*")), 1)


class RedisHangingTest(FaultTestCase):
    def test_with_redis_paused_every_call_returns_within_its_budget(self):
        self.server.pause()
        with self.assertLogs("scoring_api.store", "WARNING"):
            (code, _), seconds = self.timed(INTERESTS)
            self.assertEqual(code, 503)
            self.assertLess(seconds, STORE_BUDGET + SLACK_SECONDS)
            (code, response), seconds = self.timed(SCORE_REQUEST)
        self.assertEqual((code, response), (200, {"score": 3.0}))
        # a cache_get and a cache_set, each at most the cache budget
        self.assertLess(seconds, 2 * CACHE_BUDGET + SLACK_SECONDS)


class OneRequestWaitingTest(FaultTestCase):
    """One request waits on a paused Redis for a few seconds (a timeout
    long enough for a busy machine to serve ten others meanwhile)."""

    base_settings = FAST.replace(store={"timeout": 3.0, "retries": 0})

    @gen_test(timeout=20)
    async def test_the_ioloop_serves_others_while_one_waits_on_redis(self):
        stop_auth_clock(self)
        self.server.pause()
        waiting = self.http_client.fetch(
            self.get_url("/method/"), method="POST",
            body=json.dumps(INTERESTS), raise_error=False)
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(10):
                served = await self.http_client.fetch(
                    self.get_url("/method/"), method="POST",
                    body=json.dumps(NEEDS_NO_REDIS))
                self.assertEqual(json.loads(served.body)["response"],
                                 {"score": 42})
            # all ten served while the first one still waits on Redis
            self.assertFalse(waiting.done(), "it should still be waiting")
            self.assertEqual((await waiting).code, 503)


class BlackHoleTest(FaultTestCase):
    """Store and cache point at a listener that never answers."""

    def redis_urls(self):
        hole = FaultLayer.black_hole()
        return hole.url, hole.url

    def test_interests_answer_503_within_the_budget(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            (code, _), seconds = self.timed(INTERESTS)
        self.assertEqual(code, 503)
        self.assertLess(seconds, STORE_BUDGET + SLACK_SECONDS)
        self.assertGreater(seconds, FAST.store.timeout)  # it did wait

    def test_scores_answer_and_the_breaker_stops_the_waiting(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(FAST.cache.failure_threshold):
                (code, response), _ = self.timed(SCORE_REQUEST)
                self.assertEqual((code, response), (200, {"score": 3.0}))
        self.assertTrue(self.store.breaker.is_open)
        (code, response), seconds = self.timed(SCORE_REQUEST)
        self.assertEqual((code, response), (200, {"score": 3.0}))
        self.assertLess(seconds, FAST.cache.timeout)


class CircuitOpenTest(FaultTestCase):
    """The circuit's probe waits an hour here: every Redis attempt counted
    is one a request made, however slow the machine is."""

    base_settings = FAST.replace(cache={"reset_timeout": 3600.0})

    def count_cache_attempts(self):
        client = self.store.cache.client
        counter = mock.patch.object(
            client, "execute_command", wraps=client.execute_command)
        spy = counter.start()
        self.addCleanup(counter.stop)
        return spy

    def test_with_the_cache_dead_50_scores_make_few_redis_attempts(self):
        attempts = self.count_cache_attempts()
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(50):
                (code, response), _ = self.timed(SCORE_REQUEST)
                self.assertEqual((code, response), (200, {"score": 3.0}))
        # No flood: the first failure and the opening of the circuit.
        self.assertEqual(len(logs.output), 2, logs.output)
        # failure_threshold calls of 1 + retries attempts open the circuit;
        # after that no request reaches Redis.
        self.assertEqual(
            attempts.await_count,
            FAST.cache.failure_threshold * (1 + FAST.cache.retries))
        self.assertTrue(self.store.breaker.is_open)


class CircuitBreakerTest(FaultTestCase):
    def test_the_first_score_after_the_cache_returns_uses_it(self):
        self.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(FAST.cache.failure_threshold):
                self.timed(SCORE_REQUEST)
            self.server.start()
            recovered_in = self.wait_until(
                lambda: not self.store.breaker.is_open)
        self.assertLess(recovered_in, FAST.cache.reset_timeout
                        + CACHE_BUDGET + SLACK_SECONDS)
        self.assertEqual(self.timed(SCORE_REQUEST)[0], (200, {"score": 3.0}))
        self.assertEqual(len(self.redis.keys("score:*")), 1)

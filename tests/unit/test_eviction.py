"""The start-up check that cached scores can never take the memory of
what must stay (store/eviction.py), on mocked clients."""
import unittest

import mock
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.store import RedisEndpoint
from scoring_api.store.eviction import ADVICE, check_eviction, eviction_risk
from tests.support.cases import cases
from tests.support.helpers import mock_redis
from tests.support.store_doubles import FAST, hang_forever

WHERE = "cache: the standalone Redis"
SHARED = "cache: the standalone Redis (the store's too)"


def answering(answer):
    """A side effect for a redis-py command method (a plain function that
    returns an awaitable): its awaitable gives `answer`, or raises it, or
    awaits it when it is a coroutine function."""
    async def awaitable(*args, **kwargs):
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return await answer()
        return answer
    return awaitable


class EvictionRiskTest(unittest.TestCase):
    @cases([
        (1 << 20, "volatile-lru"), (1 << 20, "volatile-lfu"),
        (1 << 20, "volatile-random"), (1 << 20, "volatile-ttl")])
    def test_a_bound_and_a_ttl_only_policy_are_safe_shared_or_not(
            self, case):
        maxmemory, policy = case
        self.assertIsNone(eviction_risk(maxmemory, policy, shared=True))
        self.assertIsNone(eviction_risk(maxmemory, policy, shared=False))

    @cases([
        (0, "volatile-lru", True, "has no maxmemory: cached scores grow"
         " until they take the memory the interests need"),
        (0, "volatile-lru", False, "has no maxmemory: cached scores grow"
         " until the host runs out of memory"),
        (1 << 20, "noeviction", True, "evicts nothing (maxmemory-policy"
         " noeviction): once cached scores fill it, the loader's writes of"
         " interests are refused"),
        (1 << 20, "noeviction", False, "evicts nothing (maxmemory-policy"
         " noeviction): once full, it refuses new scores and quota"
         " counters"),
        (1 << 20, "allkeys-lru", True, "evicts keys without a TTL"
         " (maxmemory-policy allkeys-lru): interests and quota counters may"
         " be evicted"),
        (1 << 20, "allkeys-lfu", False, "evicts keys without a TTL"
         " (maxmemory-policy allkeys-lfu): quota counters may be evicted"),
    ])
    def test_what_an_unsafe_set_up_can_do_is_named(self, case):
        maxmemory, policy, shared, risk = case
        self.assertEqual(eviction_risk(maxmemory, policy, shared), risk)


class CheckEvictionTest(AsyncTestCase):
    def endpoint(self, client):
        return RedisEndpoint("cache", client, FAST.cache)

    @gen_test
    async def test_a_safe_redis_is_asked_once_and_nothing_is_said(self):
        client = mock_redis()
        client.config_get.side_effect = answering({
            "maxmemory": "536870912", "maxmemory-policy": "volatile-lru"})
        with self.assertNoLogs("scoring_api.store"):
            self.assertIsNone(await check_eviction(
                self.endpoint(client), shared=True))
        client.config_get.assert_called_once_with(
            "maxmemory", "maxmemory-policy")

    @gen_test
    async def test_an_unsafe_redis_is_one_warning_naming_what_to_change(
            self):
        client = mock_redis()
        client.config_get.side_effect = answering({
            "maxmemory": "0", "maxmemory-policy": "noeviction"})
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            warning = await check_eviction(self.endpoint(client), True)
        self.assertEqual([record.getMessage() for record in logs.records],
                         [warning])
        self.assertEqual(warning, (
            "%s has no maxmemory: cached scores grow until they take the"
            " memory the interests need; give it a maxmemory (512mb, say)"
            " and maxmemory-policy volatile-lru, so that only cached scores"
            " (which carry a TTL) are ever evicted" % SHARED))

    @gen_test
    async def test_a_refused_config_is_said_not_to_be_checked(self):
        client = mock_redis()
        client.config_get.side_effect = answering(ResponseError(
            "unknown command 'CONFIG', with args beginning with: 'GET'"))
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_eviction(self.endpoint(client), False)
        self.assertEqual(warning, (
            "%s could not be checked: CONFIG GET is refused (ResponseError:"
            " unknown command 'CONFIG', with args beginning with: 'GET');"
            " make sure to %s" % (WHERE, ADVICE)))

    @cases([RedisConnectionError("Error 111 connecting"), hang_forever])
    @gen_test
    async def test_a_redis_that_does_not_answer_is_said_in_time(
            self, answer):
        client = mock_redis()
        client.config_get.side_effect = answering(answer)
        endpoint = self.endpoint(client)
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_eviction(endpoint, True)
        self.assertIn("%s could not be checked: it did not answer CONFIG"
                      " GET (" % SHARED, warning)

    @gen_test
    async def test_every_master_of_a_cluster_is_asked(self):
        client = mock.create_autospec(RedisCluster, instance=True)
        client.config_get.side_effect = answering({
            "10.0.0.1:7000": {"maxmemory": "1048576",
                              "maxmemory-policy": "volatile-lru"},
            "10.0.0.2:7001": {"maxmemory": "1048576",
                              "maxmemory-policy": "allkeys-lru"}})
        endpoint = RedisEndpoint("cache", client, FAST.cache, mode="cluster")
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_eviction(endpoint, True)
        self.assertIn("maxmemory-policy allkeys-lru", warning)
        client.config_get.assert_called_once_with(
            "maxmemory", "maxmemory-policy",
            target_nodes=RedisCluster.PRIMARIES)

    @gen_test
    async def test_a_cluster_of_one_master_is_asked_too(self):
        # redis-py answers with that master's own config, not a dict of
        # one per node.
        client = mock.create_autospec(RedisCluster, instance=True)
        client.config_get.side_effect = answering({
            "maxmemory": "0", "maxmemory-policy": "volatile-lru"})
        endpoint = RedisEndpoint("cache", client, FAST.cache, mode="cluster")
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_eviction(endpoint, False)
        self.assertEqual(warning, (
            "cache: the cluster Redis has no maxmemory: cached scores grow"
            " until the host runs out of memory; %s" % ADVICE))

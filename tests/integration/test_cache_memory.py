"""The cache can never take the store's memory (docs/operations.md,
"Memory"): a cache sharing the store's Redis, filled past that Redis's
maxmemory, and the loader still writes interests that read back; keys
without a TTL (interests, quota counters) are never evicted."""
import asyncio
import json
import os
import subprocess
import sys
import tempfile

import redis
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.scoring import score_key
from scoring_api.store import Store, check_cache_eviction
from tests.support.layers import (RedisLayer, RedisServer, free_port,
                                  requires_own_server)
from tests.support.service import FAST

# Room for some 15,000 cached scores (180 B each) beside the Redis's own
# 0.9 MB and its clients' buffers.
MAXMEMORY = "4mb"
SCORES = 20000  # 3.6 MB, past that bound: Redis must evict to take them
AT_ONCE = 8  # cache_set calls at a time (each connection has buffers)
CLIENTS = 2000
TTL_SECONDS = 3600
ADVICE = "give it a maxmemory (512mb, say) and maxmemory-policy volatile-lru"


class SharedRedisTestCase(AsyncTestCase):
    """A redis-server of the test's own, with `policy` and a small
    maxmemory, that the store and the cache share (empty [cache] url)."""

    layer = RedisLayer
    policy = "volatile-lru"
    more_args = ()

    def setUp(self):
        requires_own_server(self)
        super().setUp()
        self.server = RedisServer(free_port(), (
            "--maxmemory", MAXMEMORY, "--maxmemory-policy", self.policy,
            *self.more_args))
        self.server.start()
        self.addCleanup(self.server.stop)
        self.redis = redis.Redis.from_url(self.server.url, socket_timeout=5,
                                          decode_responses=True)
        self.addCleanup(self.redis.close)
        self.settings = FAST.replace(
            store={"url": self.server.url, "timeout": 2.0},
            cache={"timeout": 2.0})
        self.store = Store.from_settings(self.settings)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    async def fill_the_cache(self, count=SCORES, first=0):
        """cache_set `count` distinct scores, AT_ONCE at a time."""
        keys = [score_key(phone="7%010d" % number)
                for number in range(first, first + count)]
        for start in range(0, count, AT_ONCE):
            await asyncio.gather(*(
                self.store.cache_set(key, 3.0, TTL_SECONDS)
                for key in keys[start:start + AT_ONCE]))

    def load(self, clients=CLIENTS):
        """Run the loader on `clients` clients' interests."""
        handle = tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8")
        self.addCleanup(os.unlink, handle.name)
        with handle:
            for cid in range(clients):
                handle.write(json.dumps({"client_id": cid,
                                         "interests": ["cars", "n%d" % cid]})
                             + "\n")
        return subprocess.run(
            [sys.executable, "-m", "scoring_api.loader", handle.name],
            env=dict(os.environ, SCORING_STORE_URL=self.server.url),
            capture_output=True, text=True, timeout=60)

    def evicted(self):
        return self.redis.info("stats")["evicted_keys"]

    async def interests_read_back(self, clients=CLIENTS):
        """How many of the loaded clients read back as loaded."""
        values = await self.store.get_many(
            ["i:%d" % cid for cid in range(clients)])
        return sum(value is not None and json.loads(value) == ["cars",
                                                               "n%d" % cid]
                   for cid, value in zip(range(clients), values))


class VolatileLruTest(SharedRedisTestCase):
    @gen_test(timeout=120)
    async def test_a_cache_filled_past_maxmemory_leaves_room_for_interests(
            self):
        # What a quota counter is to this Redis: a key without a TTL.
        self.redis.set("quota-counter-stand-in", 17)
        await self.fill_the_cache()
        self.assertGreater(self.evicted(), 0)  # past the bound
        result = self.load()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("loaded interests of %d clients" % CLIENTS,
                      result.stdout)
        # The cache goes on filling: scores make way, interests stay.
        evicted = self.evicted()
        await self.fill_the_cache(count=2000, first=SCORES)
        self.assertGreater(self.evicted(), evicted)
        self.assertEqual(await self.interests_read_back(), CLIENTS)
        self.assertEqual(self.redis.get("quota-counter-stand-in"), "17")

    @gen_test(timeout=30)
    async def test_start_up_says_nothing_of_a_redis_set_up_so(self):
        with self.assertNoLogs("scoring_api.store"):
            self.assertIsNone(await check_cache_eviction(self.settings))

    @gen_test(timeout=30)
    async def test_start_up_warns_of_a_policy_that_would_evict_interests(
            self):
        self.redis.config_set("maxmemory-policy", "allkeys-lru")
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            warning = await check_cache_eviction(self.settings)
        self.assertEqual(len(logs.records), 1)
        self.assertEqual(warning, (
            "cache: the standalone %s (the store's too) evicts keys without"
            " a TTL (maxmemory-policy allkeys-lru): interests and quota"
            " counters may be evicted; %s, so that only cached scores (which"
            " carry a TTL) are ever evicted" % (self.server.url, ADVICE)))

    @gen_test(timeout=30)
    async def test_start_up_warns_of_a_redis_without_maxmemory(self):
        self.redis.config_set("maxmemory", 0)
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_cache_eviction(self.settings)
        self.assertIn("(the store's too) has no maxmemory: cached scores"
                      " grow until they take the memory the interests need;"
                      " " + ADVICE, warning)


class NoEvictionTest(SharedRedisTestCase):
    """What the test above guards against: with noeviction (what the store
    alone would want), a cache that filled the Redis refuses the loader."""

    policy = "noeviction"

    @gen_test(timeout=120)
    async def test_a_full_cache_makes_the_loader_fail(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            await self.fill_the_cache()
        result = self.load()
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("store: MSET failed: OutOfMemoryError", result.stderr)

    @gen_test(timeout=30)
    async def test_start_up_warns_that_interests_would_be_refused(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_cache_eviction(self.settings)
        self.assertIn("evicts nothing (maxmemory-policy noeviction): once"
                      " cached scores fill it, the loader's writes of"
                      " interests are refused; " + ADVICE, warning)


class ConfigRefusedTest(SharedRedisTestCase):
    """A managed Redis that refuses CONFIG: the check says it could not
    look, and what to make sure of."""

    more_args = ("--rename-command", "CONFIG", "")

    @gen_test(timeout=30)
    async def test_start_up_says_it_could_not_check(self):
        with self.assertLogs("scoring_api.store", "WARNING"):
            warning = await check_cache_eviction(self.settings)
        self.assertIn("cache: the standalone %s (the store's too) could not"
                      " be checked: CONFIG GET is refused (ResponseError:"
                      " unknown command 'CONFIG'" % self.server.url, warning)
        self.assertIn("make sure to " + ADVICE, warning)

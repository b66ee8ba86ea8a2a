"""The store against a real Redis: reads, writes, TTLs, round trips."""
import asyncio
import time

from tornado.testing import AsyncTestCase, gen_test

from scoring_api import scoring
from scoring_api.errors import StoreUnavailable
from scoring_api.store import OtherType, Store
from tests.support.service import FAST
from tests.support.layers import RedisLayer, requires_redis


class StoreRoundTripTest(AsyncTestCase):
    layer = RedisLayer

    def setUp(self):
        requires_redis(self)
        super().setUp()
        settings = FAST.replace(store={"url": RedisLayer.url})
        self.store = Store.from_settings(settings)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    async def command_calls(self, command):
        info = await self.store.store.call("INFO", "commandstats")
        return info.get("cmdstat_" + command, {}).get("calls", 0)

    async def commands_sent(self):
        """{command: calls} since the test began, but INFO and CONFIG
        (the layer's and this method's own)."""
        info = await self.store.store.call("INFO", "commandstats")
        return {name[len("cmdstat_"):]: stats["calls"]
                for name, stats in info.items()
                if not name.startswith(("cmdstat_info", "cmdstat_config"))}

    @gen_test
    async def test_get_returns_what_redis_holds_and_none_when_missing(self):
        await self.store.set_many({"i:1": '["cars"]'})
        self.assertEqual(await self.store.get("i:1"), b'["cars"]')
        self.assertIsNone(await self.store.get("i:2"))

    @gen_test
    async def test_many_keys_are_read_with_one_command(self):
        await self.store.set_many(
            {"i:%d" % n: '["x%d"]' % n for n in range(0, 100, 2)})
        values = await self.store.get_many(["i:%d" % n for n in range(100)])
        self.assertEqual(values[:4], [b'["x0"]', None, b'["x2"]', None])
        self.assertEqual(await self.command_calls("mget"), 1)
        self.assertEqual(await self.command_calls("get"), 0)

    @gen_test
    async def test_cache_set_then_cache_get_round_trips(self):
        await self.store.cache_set("score:k", 3.5, 60)
        self.assertEqual(await self.store.cache_get("score:k"), b"3.5")
        self.assertIsNone(await self.store.cache_get("score:other"))

    @gen_test
    async def test_a_score_miss_is_a_get_then_a_set_with_the_ttl(self):
        # On new connections: no HELLO, CLIENT SETINFO or
        # CLIENT MAINT_NOTIFICATIONS before the first command either.
        inputs = {"phone": "79175002040", "email": "a@b"}
        self.assertEqual(await scoring.get_score(self.store, 3600, **inputs),
                         3.0)
        self.assertEqual(await self.commands_sent(), {"get": 1, "set": 1})
        key = scoring.score_key(**inputs)
        self.assertEqual(await self.store.cache.call("GET", key), b"3.0")
        ttl = await self.store.cache.call("TTL", key)
        self.assertTrue(3590 <= ttl <= 3600, ttl)

    @gen_test
    async def test_a_score_hit_is_one_get(self):
        inputs = {"phone": "79175002040", "email": "a@b"}
        key = scoring.score_key(**inputs)
        await self.store.cache.call("SET", key, "4.5", "EX", 100)
        await self.store.cache.call("CONFIG", "RESETSTAT")
        self.assertEqual(await scoring.get_score(self.store, 3600, **inputs),
                         4.5)
        self.assertEqual(await self.commands_sent(), {"get": 1})

    @gen_test
    async def test_an_entry_that_is_not_a_score_is_overwritten(self):
        inputs = {"phone": "79175002040"}
        key = scoring.score_key(**inputs)
        await self.store.cache.call("SET", key, "garbage", "EX", 100)
        with self.assertLogs("scoring_api.scoring", "WARNING"):
            self.assertEqual(
                await scoring.get_score(self.store, 3600, **inputs), 1.5)
        self.assertEqual(await self.store.cache_get(key), b"1.5")
        self.assertGreater(await self.store.cache.call("TTL", key), 100)

    @gen_test
    async def test_a_score_key_of_another_type_reads_as_such(self):
        await self.store.cache.call("SADD", "score:k", "x")
        self.assertIsInstance(await self.store.cache_get("score:k"),
                              OtherType)
        self.assertEqual(await self.store.cache.call("TYPE", "score:k"),
                         b"set")

    @gen_test
    async def test_a_cached_value_gets_the_ttl_it_was_given(self):
        await self.store.cache_set("score:k", 1.5, 3600)
        ttl = await self.store.cache.call("TTL", "score:k")
        self.assertTrue(3590 <= ttl <= 3600, ttl)

    @gen_test(timeout=10)
    async def test_a_cached_value_expires_after_its_ttl(self):
        await self.store.cache_set("score:k", 1.5, 1)
        self.assertEqual(await self.store.cache_get("score:k"), b"1.5")
        deadline = time.monotonic() + 3.0
        while await self.store.cache_get("score:k") is not None:
            self.assertLess(time.monotonic(), deadline, "never expired")
            await asyncio.sleep(0.05)

    @gen_test
    async def test_set_many_writes_every_key_in_one_command(self):
        await self.store.set_many({"i:1": "[]", "i:2": '["a"]'})
        self.assertEqual(await self.store.get_many(["i:1", "i:2"]),
                         [b"[]", b'["a"]'])
        self.assertEqual(await self.command_calls("mset"), 1)

    @gen_test
    async def test_health_is_up_on_both_sides(self):
        self.assertEqual(await self.store.health(),
                         {"store": "up", "cache": "up"})

    @gen_test
    async def test_a_wrong_database_number_is_an_error_not_a_hang(self):
        store = Store.from_settings(FAST.replace(
            store={"url": RedisLayer.url.rsplit("/", 1)[0] + "/99999"}))
        try:
            with self.assertLogs("scoring_api.store", "WARNING"), \
                    self.assertRaises(StoreUnavailable):
                await store.get("i:1")
        finally:
            await store.close()

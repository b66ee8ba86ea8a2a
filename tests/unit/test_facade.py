"""The one Store (store/facade.py): a cache that never fails, a store
that fails loudly, the local tier in front, on mocked clients."""
import mock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tornado.testing import gen_test

from scoring_api.errors import StoreUnavailable
from scoring_api.store import OtherType, RedisEndpoint, Store
from tests.support.clock import FakeClock
from tests.support.helpers import mock_redis, store_over
from tests.support.store_doubles import FAST, ClosingTestCase


class StoreCacheTest(ClosingTestCase):
    @gen_test
    async def test_cache_get_returns_none_when_redis_fails(self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertIsNone(await store.cache_get("score:x"))
        self.assertEqual(cache.execute_command.await_count,
                         1 + FAST.cache.retries)

    @gen_test
    async def test_cache_set_swallows_a_failure(self):
        cache = mock_redis(forever=RedisTimeoutError("slow"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertIsNone(await store.cache_set("score:x", 3.0, 60))

    @gen_test
    async def test_cache_set_stores_with_the_ttl_in_seconds(self):
        cache = mock_redis(True)
        await self.closing(store_over(mock_redis(), cache, FAST)).cache_set(
            "score:x", 3.0, 60)
        cache.execute_command.assert_awaited_once_with(
            "SET", "score:x", 3.0, "EX", 60)

    @gen_test
    async def test_while_writes_are_paused_a_miss_only_reads(self):
        clock = FakeClock()
        cache = mock_redis(OutOfMemoryError("command not allowed"), None)
        store = self.closing(store_over(mock_redis(), cache, FAST))
        store.clock = clock
        with self.assertLogs("scoring_api.store", "WARNING"):
            await store.cache_set("score:x", 3.0, 60)
        self.assertIsNone(await store.cache_get("score:y"))
        await store.cache_set("score:y", 3.0, 60)
        self.assertEqual(cache.execute_command.await_args_list, [
            mock.call("SET", "score:x", 3.0, "EX", 60),
            mock.call("GET", "score:y")])

    @gen_test
    async def test_with_the_circuit_open_nothing_reaches_redis(self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            for number in range(20):
                self.assertIsNone(await store.cache_get("score:%d" % number))
        self.assertEqual(
            cache.execute_command.await_count,
            FAST.cache.failure_threshold * (1 + FAST.cache.retries))

    @gen_test
    async def test_a_refused_write_pauses_writes_and_leaves_reads_on(self):
        clock = FakeClock()
        cache = mock_redis(forever=OutOfMemoryError("command not allowed"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        store.clock = clock
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(20):
                await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(cache.execute_command.await_count, 1)
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertTrue(store.breaker.allows())
        cache.execute_command.side_effect = [b"4.5", True]
        self.assertEqual(await store.cache_get("score:y"), b"4.5")
        clock.now += FAST.cache.reset_timeout
        await store.cache_set("score:x", 3.0, 60)  # the pause is over
        self.assertEqual(cache.execute_command.await_count, 3)
        cache.execute_command.side_effect = OutOfMemoryError("not allowed")
        await store.cache_set("score:x", 3.0, 60)  # refused: pauses again
        clock.now += FAST.cache.reset_timeout * 10  # long after the pause
        cache.execute_command.side_effect = [True]
        await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(cache.execute_command.await_count, 5)

    @gen_test
    async def test_refused_reads_open_the_circuit(self):
        cache = mock_redis(forever=ResponseError("NOAUTH"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(FAST.cache.failure_threshold):
                self.assertIsNone(await store.cache_get("score:x"))
        self.assertFalse(store.breaker.allows())

    @gen_test
    async def test_an_open_circuit_keeps_calls_off_a_dead_cache(self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            for _ in range(50):
                self.assertIsNone(await store.cache_get("score:x"))
        # failure_threshold calls of 1 + retries attempts each, then none.
        self.assertEqual(
            cache.execute_command.await_count,
            FAST.cache.failure_threshold * (1 + FAST.cache.retries))

    @gen_test
    async def test_a_key_of_another_type_is_not_kept_in_the_local_tier(self):
        # Once it is overwritten with a score, the next read sees the score.
        cache = mock_redis(ResponseError("WRONGTYPE Operation against a"
                                         " key holding the wrong kind"),
                           b"3.0")
        store = self.closing(store_over(mock_redis(), cache,
                                        FAST.replace(cache={"local_size": 8})))
        self.assertIsInstance(await store.cache_get("score:x"), OtherType)
        self.assertEqual(await store.cache_get("score:x"), b"3.0")

    @gen_test
    async def test_a_probe_of_the_cache_is_one_ping(self):
        # A probe failing on a stale connection waits for the next one
        # rather than retrying at once.
        cache = mock_redis(forever=RedisConnectionError(
            "Connection closed by server."))
        store = self.closing(store_over(mock_redis(), cache, FAST))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await store.breaker.probe())
        cache.execute_command.assert_awaited_once_with("PING")

    @gen_test
    async def test_the_store_raises_where_the_cache_would_miss(self):
        client = mock_redis(forever=RedisConnectionError("refused"))
        store = store_over(client, settings=FAST)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable) as raised:
            await store.get_many(["i:1", "i:2"])
        self.assertEqual(str(raised.exception), "store is unavailable")

    @gen_test
    async def test_reading_no_keys_asks_redis_nothing(self):
        client = mock_redis()
        self.assertEqual(await store_over(client).get_many([]), [])
        client.execute_command.assert_not_awaited()

    @gen_test
    async def test_writing_no_keys_asks_redis_nothing(self):
        client = mock_redis()
        await store_over(client).set_many({})
        client.execute_command.assert_not_awaited()

    @gen_test
    async def test_health_reports_each_side(self):
        store = store_over(mock_redis(True),
                           mock_redis(forever=RedisConnectionError("no")),
                           FAST)
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertEqual(await store.health(),
                             {"store": "up", "cache": "down"})


class OverloadedCacheTest(ClosingTestCase):
    @gen_test
    async def test_a_late_process_misses_the_cache_without_blaming_it(self):
        # Timeouts while the process itself is starved: Overloaded, a miss,
        # no outage line, and no failure towards opening the circuit.
        cache = mock_redis(forever=RedisTimeoutError("slow"))
        store = self.closing(Store(
            RedisEndpoint("store", mock_redis(), FAST.store),
            RedisEndpoint("cache", cache, FAST.cache,
                          is_starved=lambda: True),
            FAST.cache))
        with self.assertNoLogs("scoring_api.store", "WARNING"):
            for number in range(FAST.cache.failure_threshold + 1):
                self.assertIsNone(await store.cache_get("score:%d" % number))
                self.assertIsNone(await store.cache_set(
                    "score:%d" % number, 3.0, 60))
        self.assertTrue(store.breaker.allows())
        self.assertEqual(cache.execute_command.await_count,
                         2 * (FAST.cache.failure_threshold + 1))


class LocalTierTest(ClosingTestCase):
    @gen_test
    async def test_a_hot_key_is_read_from_redis_once(self):
        cache = mock_redis("4.5")
        store = self.closing(store_over(mock_redis(), cache))
        for _ in range(5):
            self.assertEqual(await store.cache_get("score:x"), "4.5")
        self.assertEqual(cache.execute_command.await_count, 1)

    @gen_test
    async def test_a_score_just_set_is_read_back_without_redis(self):
        cache = mock_redis(True)
        store = self.closing(store_over(mock_redis(), cache))
        await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(await store.cache_get("score:x"), 3.0)
        self.assertEqual(cache.execute_command.await_count, 1)  # the SET

    @gen_test
    async def test_a_miss_and_a_hit_in_redis_are_then_kept_locally(self):
        cache = mock_redis(None, True, b"4.5")
        store = self.closing(store_over(mock_redis(), cache))
        self.assertIsNone(await store.cache_get("score:x"))
        await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(await store.cache_get("score:y"), b"4.5")
        for _ in range(3):
            self.assertEqual(await store.cache_get("score:x"), 3.0)
            self.assertEqual(await store.cache_get("score:y"), b"4.5")
        self.assertEqual(cache.execute_command.await_count, 3)

    @gen_test
    async def test_a_score_read_from_redis_is_kept_no_longer_than_ttl(self):
        # local_ttl over ttl: a score read back from Redis is still kept
        # only as long as one just computed would be.
        clock = FakeClock()
        settings = FAST.replace(cache={"ttl": 30, "local_ttl": 600.0})
        cache = mock_redis(b"4.5", b"4.5")
        store = self.closing(Store(
            RedisEndpoint("store", mock_redis(), settings.store),
            RedisEndpoint("cache", cache, settings.cache), settings.cache,
            clock=clock))
        self.assertEqual(await store.cache_get("score:x"), b"4.5")
        clock.now += 29.9
        self.assertEqual(await store.cache_get("score:x"), b"4.5")
        self.assertEqual(cache.execute_command.await_count, 1)
        clock.now += 0.1
        self.assertEqual(await store.cache_get("score:x"), b"4.5")
        self.assertEqual(cache.execute_command.await_count, 2)

    @gen_test
    async def test_with_the_cache_dead_the_local_tier_still_answers(self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = self.closing(store_over(mock_redis(), cache))
        with self.assertLogs("scoring_api.store", "WARNING"):
            await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(await store.cache_get("score:x"), 3.0)

"""The store's retry, timeout, backoff and circuit logic, on mocked clients."""
import asyncio
import unittest

import mock
import redis.asyncio
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import RedisError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import metrics
from scoring_api.config import Settings
from scoring_api.errors import StoreRefused, StoreUnavailable
from scoring_api.store import endpoint
from scoring_api.store.outages import reason
from scoring_api.store import (CircuitBreaker, LocalCache, OtherType,
                               OutageLog, RedisEndpoint)
from scoring_api.throttle import Throttle
from tests.support.clock import FakeClock
from tests.support.cases import cases
from tests.support.helpers import mock_redis, store_over
from tests.support.metrics_text import samples, value

FAST = Settings().replace(
    store={"retries": 3, "backoff": 0.001, "backoff_max": 0.002,
           "connect_timeout": 0.05, "timeout": 0.05},
    cache={"retries": 1, "backoff": 0.001, "backoff_max": 0.002,
           "connect_timeout": 0.05, "timeout": 0.05,
           "failure_threshold": 2, "reset_timeout": 10.0})
TRANSIENT = [RedisConnectionError("refused"), RedisTimeoutError("slow"),
             ConnectionResetError("reset"), TimeoutError("timed out")]


class RecordingBackoff:
    def __init__(self):
        self.failures = []

    def compute(self, failures):
        self.failures.append(failures)
        return 0


async def hang_forever(*args):
    await asyncio.Event().wait()


class ClosingTestCase(AsyncTestCase):
    """Closes what a test opened (breakers, stores) while the loop runs."""

    def setUp(self):
        super().setUp()
        self.to_close = []

    def closing(self, closable):
        self.to_close.append(closable)
        return closable

    def tearDown(self):
        for closable in self.to_close:
            self.io_loop.run_sync(closable.close)
        super().tearDown()


class RetryTest(AsyncTestCase):
    def endpoint(self, client, backoff=None):
        return RedisEndpoint("store", client, FAST.store, backoff=backoff)

    @cases(TRANSIENT)
    @gen_test
    async def test_a_transient_failure_is_tried_one_plus_retries_times(
            self, error):
        client = mock_redis(forever=error)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client).call("GET", "i:1")
        self.assertEqual(client.execute_command.await_count,
                         1 + FAST.store.retries)

    @cases([AttributeError("'NoneType' object has no attribute"
                           " 'writelines'"),
            TypeError("'NoneType' object is not callable")])
    @gen_test
    async def test_a_connection_torn_down_under_a_command_is_transient(
            self, error):
        # redis-py lets these out of a closed transport (redis-py#4287).
        client = mock_redis(error, "3.0")
        self.assertEqual(await self.endpoint(client).call("GET", "k"), "3.0")
        client = mock_redis(forever=error)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client).call("GET", "k")
        self.assertEqual(client.execute_command.await_count,
                         1 + FAST.store.retries)

    @gen_test
    async def test_a_call_that_fails_then_succeeds_returns_the_answer(self):
        client = mock_redis(RedisConnectionError("refused"), '["cars"]')
        self.assertEqual(await self.endpoint(client).call("GET", "i:1"),
                         '["cars"]')
        self.assertEqual(client.execute_command.await_count, 2)

    @cases([ResponseError("ERR unknown command"),
            OutOfMemoryError("OOM command not allowed"),
            ReadOnlyError("You can't write against a read only replica.")])
    @gen_test
    async def test_an_error_that_retrying_cannot_fix_is_not_retried(
            self, error):
        client = mock_redis(forever=error)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreRefused):
            await self.endpoint(client).call("SET", "i:1", "[]")
        self.assertEqual(client.execute_command.await_count, 1)

    @gen_test
    async def test_another_redis_error_is_unavailable_without_a_retry(self):
        # Not a connection failure and not an answer (a protocol error,
        # a cluster without a node for a slot): retrying would not help.
        client = mock_redis(forever=RedisError("Protocol error"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client).call("GET", "i:1")
        self.assertEqual(client.execute_command.await_count, 1)

    @gen_test
    async def test_a_key_of_another_type_reads_as_data_not_as_a_failure(
            self):
        client = mock_redis(ResponseError(
            "WRONGTYPE Operation against a key holding the wrong kind"))
        endpoint = self.endpoint(client)
        found = await endpoint.call("GET", "score:x")
        self.assertIsInstance(found, OtherType)
        self.assertFalse(endpoint.outages.down)
        # How the logs name it, with and without its type.
        self.assertEqual(repr(found), "a Redis value of another type")
        self.assertEqual(repr(OtherType("set")), "a Redis set")

    @cases(["standalone", "sentinel", "cluster"])
    @gen_test
    async def test_in_every_mode_an_attempt_is_bounded_as_a_whole(
            self, mode):
        # Connecting, AUTH and SELECT, asking a sentinel or learning a
        # cluster's layout add steps the client bounds one by one;
        # connect_timeout + timeout bounds them together.
        client = mock_redis(forever=RedisConnectionError("unused"))
        client.execute_command.side_effect = hang_forever
        settings = FAST.store.__class__(
            connect_timeout=0.05, timeout=0.05, retries=0)
        endpoint = RedisEndpoint("store", client, settings, mode=mode)
        started = asyncio.get_running_loop().time()
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await endpoint.call("GET", "i:1")
        self.assertLess(asyncio.get_running_loop().time() - started, 1.0)

    @gen_test
    async def test_a_cluster_between_two_layouts_is_tried_again(self):
        # TRYAGAIN while slots move: the next attempt, on the layout
        # learned again, succeeds.
        client = mock.AsyncMock()
        client.execute_command.side_effect = [
            TryAgainError("TRYAGAIN Multiple keys request during"
                          " rehashing of slot"), b'["cars"]']
        endpoint = RedisEndpoint("store", client, FAST.store, mode="cluster")
        self.assertEqual(await endpoint.call("GET", "i:1"), b'["cars"]')
        self.assertEqual(client.execute_command.await_count, 2)
        # The layout is asked for again before the second attempt.
        client.nodes_manager.initialize.assert_awaited_once_with()

    @gen_test
    async def test_types_are_read_in_a_pipeline_not_a_transaction(self):
        # A cluster refuses MULTI across slots; a read needs none.
        client = mock_redis()
        client.pipeline.return_value.execute.return_value = [b"set"]
        self.assertEqual(await self.endpoint(client).types(["i:1"]), ["set"])
        client.pipeline.assert_called_once_with(transaction=False)

    @gen_test
    async def test_closing_closes_the_sentinel_clients_too(self):
        sentinel = mock.AsyncMock()
        endpoint = RedisEndpoint("store", mock_redis(), FAST.store,
                                 mode="sentinel", closables=[sentinel])
        await endpoint.close()
        sentinel.aclose.assert_awaited_once_with()

    @gen_test
    async def test_the_backoff_is_asked_once_per_retry_with_the_count(self):
        backoff = RecordingBackoff()
        client = mock_redis(forever=RedisConnectionError("refused"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client, backoff).call("GET", "i:1")
        self.assertEqual(backoff.failures, [1, 2, 3])

    @gen_test
    async def test_the_client_is_built_with_every_bound_from_config(self):
        endpoint = RedisEndpoint.from_settings("store", FAST.store.__class__(
            **dict(vars(FAST.store), url="redis://127.0.0.1:1/3")))
        settings = endpoint.client.connection_pool.connection_kwargs
        self.assertEqual(settings["socket_connect_timeout"],
                         FAST.store.connect_timeout)
        self.assertIsNone(settings["socket_timeout"])  # the attempt's
        self.assertEqual(settings["retry"].get_retries(), 0)
        self.assertEqual(settings["db"], 3)
        self.assertFalse(settings.get("decode_responses", False))
        await endpoint.close()

    @gen_test
    async def test_calls_past_max_connections_wait_then_fail_in_time(self):
        settings = FAST.store.__class__(
            max_connections=2, connect_timeout=0.05, retries=0)
        release = asyncio.Event()

        async def held(*args):
            await release.wait()
            return "held"

        client = mock_redis(forever=held)
        endpoint = RedisEndpoint("store", client, settings)
        first = asyncio.ensure_future(endpoint.call("GET", "a"))
        second = asyncio.ensure_future(endpoint.call("GET", "b"))
        await asyncio.sleep(0)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await endpoint.call("GET", "c")  # no free slot in 0.05 s
        self.assertEqual(client.execute_command.await_count, 2)
        release.set()
        self.assertEqual(await asyncio.gather(first, second),
                         ["held", "held"])
        self.assertEqual(await endpoint.call("GET", "d"), "held")

    @gen_test
    async def test_retries_zero_means_one_attempt(self):
        client = mock_redis(forever=RedisConnectionError("refused"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client).call("GET", "i:1", retries=0)
        self.assertEqual(client.execute_command.await_count, 1)


class PingTest(AsyncTestCase):
    """/health's PING: a stale pooled connection must not say "down"."""

    def endpoint(self, client):
        return RedisEndpoint("store", client, FAST.store)

    @gen_test
    async def test_a_broken_connection_is_tried_once_more(self):
        client = mock_redis(RedisConnectionError("Connection closed by"
                                                 " server."), True)
        self.assertTrue(await self.endpoint(client).ping())
        self.assertEqual(client.execute_command.await_count, 2)

    @gen_test
    async def test_a_refused_ping_is_down_after_two_attempts(self):
        client = mock_redis(forever=RedisConnectionError("refused"))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await self.endpoint(client).ping())
        self.assertEqual(client.execute_command.await_count, 2)

    @gen_test
    async def test_asked_not_to_it_does_not_retry_a_broken_connection(self):
        client = mock_redis(forever=RedisConnectionError("Connection closed"
                                                         " by server."))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await self.endpoint(client).ping(
                retry_broken=False))
        self.assertEqual(client.execute_command.await_count, 1)

    @gen_test
    async def test_a_ping_that_timed_out_is_not_tried_again(self):
        client = mock_redis(forever=RedisTimeoutError("timed out"))
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await self.endpoint(client).ping())
        self.assertEqual(client.execute_command.await_count, 1)

    @cases([MasterNotFoundError("No master found for 'scoring' : timed"
                                " out"),
            TimeoutError()])  # the attempt's own bound
    @gen_test
    async def test_a_sentinel_or_attempt_that_timed_out_is_not_retried(
            self, error):
        # MasterNotFoundError is a ConnectionError, but what it says is
        # that the sentinels did not answer: asking again only waits.
        client = mock_redis(forever=error)
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await self.endpoint(client).ping())
        self.assertEqual(client.execute_command.await_count, 1)

    @gen_test
    async def test_a_hung_ping_is_cut_at_one_attempt_in_standalone_too(self):
        client = mock_redis(forever=hang_forever)
        started = asyncio.get_running_loop().time()
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertFalse(await self.endpoint(client).ping())
        self.assertLess(asyncio.get_running_loop().time() - started,
                        FAST.store.connect_timeout + FAST.store.timeout + 0.5)


class RedisPyCanaryTest(AsyncTestCase):
    """What the store leans on in redis-py 8.1.0 beyond its documented
    behaviour; a failure here means the library changed: revisit the
    named constant."""

    @gen_test
    async def test_a_connection_closed_under_a_command_raises_torn_down(
            self):
        # endpoint.TORN_DOWN_ERRORS (redis/redis-py#4287): another task
        # disconnects the connection while a command is being sent.
        async def silent(reader, writer):
            await reader.read()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = redis.asyncio.Connection(
            host="127.0.0.1", port=port, socket_timeout=1.0, protocol=2,
            driver_info=None)
        try:
            await connection.connect()
            sending = asyncio.ensure_future(
                connection.send_command("PING"))
            await asyncio.sleep(0)  # it starts sending, then:
            await connection.disconnect(nowait=True)
            with self.assertRaises(endpoint.TORN_DOWN_ERRORS,
                                   msg="redis-py now raises ConnectionError"
                                   " here: remove TORN_DOWN_ERRORS"):
                await sending
        finally:
            await connection.disconnect()
            server.close()
            await server.wait_closed()


class BackoffPolicyTest(unittest.TestCase):
    """The policy the store builds from `backoff` and `backoff_max`."""

    def test_pauses_double_with_each_retry_and_stop_at_the_cap(self):
        backoff = RedisEndpoint("store", None, Settings().store).backoff
        self.assertIsInstance(backoff, EqualJitterBackoff)
        base, cap = Settings().store.backoff, Settings().store.backoff_max
        for failures in range(1, 8):
            pause = backoff.compute(failures)
            ceiling = min(cap, base * 2 ** failures)
            with self.subTest(failures=failures, pause=pause):
                self.assertGreaterEqual(pause, ceiling / 2)
                self.assertLessEqual(pause, ceiling)


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


class OutageLogTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.outages = OutageLog("store", interval=10.0, clock=self.clock)
        self.error = RedisConnectionError("refused")

    def test_an_outage_is_logged_once_per_interval_and_its_end_once(self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(100):
                self.outages.failure("GET", self.error)
                self.clock.now += 0.05  # 5 s of failures: one line
            self.clock.now += 5.5
            self.outages.failure("GET", self.error)  # a new interval
            for _ in range(30):
                self.outages.success()
                self.clock.now += 1.0  # 30 s of answers: one line
        self.assertEqual(len(logs.output), 3, logs.output)
        self.assertIn("(1 failed calls since the last report)",
                      logs.output[0])
        self.assertIn("(100 failed calls since the last report)",
                      logs.output[1])
        self.assertIn("answering again for 10s", logs.output[2])

    def test_a_redis_failing_every_other_call_writes_a_line_per_interval(
            self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(1000):  # 50 s: a failed write, a good read
                self.outages.failure("SET", self.error)
                self.outages.success()
                self.clock.now += 0.05
        self.assertEqual(len(logs.output), 5, logs.output)
        self.assertTrue(all("SET failed" in line for line in logs.output))

    def test_a_recovery_is_reported_only_after_a_whole_interval_up(self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("GET", self.error)
            self.outages.success()
            self.clock.now += 9.9
            self.outages.success()
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertTrue(self.outages.down)

    def test_the_lines_of_an_outage_word_for_word(self):
        self.clock.now = 1.0  # small, so that now % up_since != now - it
        with self.assertNoLogs("scoring_api.store"):
            self.outages.success()  # up from the start: nothing to say
        self.assertFalse(self.outages.down)
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("GET", self.error)
            self.clock.now += 10.0
            self.outages.failure("MGET", TimeoutError())  # no text: its type
            self.outages.success()
            self.clock.now += 12.0
            self.outages.success()
        self.assertEqual([record.getMessage() for record in logs.records], [
            "store: GET failed: ConnectionError: refused (1 failed calls"
            " since the last report)",
            "store: MGET failed: TimeoutError (1 failed calls since the last"
            " report)",
            "store: answering again for 12s"])
        self.assertFalse(self.outages.down)

    def test_a_sentinel_outage_is_one_short_line_without_client_reprs(
            self):
        # What redis-py 8.1 raises when the sentinels time out: their
        # clients' reprs (about 1 KB each) in the message.
        sentinels = Sentinel([("10.0.0.1", 26379), ("10.0.0.2", 26380)])
        error = MasterNotFoundError(
            "No master found for 'scoring' : %s" % ", ".join(
                "%s - %r" % (client, RedisTimeoutError("Timeout reading"))
                for client in sentinels.sentinels))
        self.assertGreater(len(str(error)), 1000)
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("PING", error)
        self.assertEqual(logs.records[0].getMessage(), (
            "store: PING failed: MasterNotFoundError: No master found for"
            " 'scoring' (1 failed calls since the last report)"))

    @cases([("x" * 120, "x" * 120), ("x" * 121, "x" * 120 + "..."),
            ("y" * 5000, "y" * 120 + "...")])
    def test_a_long_message_is_cut_at_120_characters(self, case):
        message, shown = case
        self.assertEqual(reason(RedisConnectionError(message)),
                         "ConnectionError: " + shown)


class ThrottleTest(unittest.TestCase):
    def test_the_first_event_then_one_per_interval_with_the_count(self):
        clock = FakeClock()
        throttle = Throttle(interval=10.0, clock=clock)
        counts = []
        for _ in range(30):
            counts.append(throttle.event())
            clock.now += 1.0
        self.assertEqual([(i, n) for i, n in enumerate(counts) if n],
                         [(0, 1), (10, 10), (20, 10)])


class LocalCacheTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.local = LocalCache(size=2, ttl_seconds=10.0, clock=self.clock)

    def test_a_value_is_kept_for_its_ttl(self):
        self.local.set("a", "1.5")
        self.clock.now += 9.9
        self.assertEqual(self.local.get("a"), "1.5")
        self.clock.now += 0.1
        self.assertIsNone(self.local.get("a"))

    def test_an_entry_read_long_after_its_expiry_is_gone(self):
        self.local.set("a", "1.5")
        self.clock.now += 3600.0  # a stale score is never served
        self.assertIsNone(self.local.get("a"))

    def test_a_shorter_ttl_given_wins(self):
        self.local.set("a", "1.5", ttl_seconds=2)
        self.clock.now += 2.0
        self.assertIsNone(self.local.get("a"))

    def test_the_least_recently_used_entry_goes_first(self):
        self.local.set("a", "1")
        self.local.set("b", "2")
        self.local.get("a")
        self.local.set("c", "3")
        self.assertEqual((self.local.get("a"), self.local.get("b"),
                          self.local.get("c")), ("1", None, "3"))

    def test_size_zero_keeps_nothing(self):
        local = LocalCache(size=0, ttl_seconds=10.0)
        local.set("a", "1")
        self.assertIsNone(local.get("a"))


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
    async def test_with_the_cache_dead_the_local_tier_still_answers(self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = self.closing(store_over(mock_redis(), cache))
        with self.assertLogs("scoring_api.store", "WARNING"):
            await store.cache_set("score:x", 3.0, 60)
        self.assertEqual(await store.cache_get("score:x"), 3.0)

"""One Redis role (store/endpoint.py): its retries, timeouts, slots and
backoff, on mocked clients; and what it leans on in redis-py."""
import asyncio
import dataclasses
import inspect
import unittest

import mock
import redis.asyncio
from redis.asyncio.cluster import NodesManager, RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import RedisError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import metrics
from scoring_api.config import Settings, StoreSettings
from scoring_api.errors import Overloaded, StoreRefused, StoreUnavailable
from scoring_api.store import OtherType, RedisEndpoint, endpoint, modes
from tests.support.cases import cases
from tests.support.helpers import mock_redis
from tests.support.metrics_text import samples, value
from tests.support.store_doubles import (FAST, TRANSIENT, RecordingBackoff,
                                         hang_forever)


def cluster_client():
    """A mocked RedisCluster with redis-py's own signatures: a call its
    real class or its NodesManager would refuse fails here too."""
    client = mock.create_autospec(RedisCluster, instance=True)
    client.nodes_manager = mock.create_autospec(NodesManager, instance=True)
    return client


def redis_errors(role):
    """scoring_api_redis_errors_total{role} as /metrics shows it."""
    return value(samples(metrics.render()[0]),
                 "scoring_api_redis_errors_total", role=role)


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
        client = cluster_client()
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
        sentinel = mock.create_autospec(Sentinel, instance=True)
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
    async def test_retries_zero_means_one_attempt(self):
        client = mock_redis(forever=RedisConnectionError("refused"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client).call("GET", "i:1", retries=0)
        self.assertEqual(client.execute_command.await_count, 1)


class OverloadTest(AsyncTestCase):
    """A call held up by this process, not by Redis, is `Overloaded`: no
    outage line, no Redis error counted (docs/operations.md)."""

    def endpoint(self, client, max_connections=64, starved=False):
        settings = dataclasses.replace(FAST.store,
                                       max_connections=max_connections)
        return RedisEndpoint("store", client, settings,
                             is_starved=lambda: starved)

    @gen_test
    async def test_a_call_that_cannot_get_a_slot_in_time_is_overloaded(
            self):
        release = asyncio.Event()

        async def held(*args):
            await release.wait()
            return "held"

        client = mock_redis(forever=held)
        endpoint = self.endpoint(client, max_connections=2)
        first = asyncio.ensure_future(endpoint.call("GET", "a"))
        second = asyncio.ensure_future(endpoint.call("GET", "b"))
        await asyncio.sleep(0)
        errors_before = redis_errors("store")
        started = asyncio.get_running_loop().time()
        with self.assertNoLogs("scoring_api.store"), \
                self.assertRaises(Overloaded) as raised:
            await endpoint.call("GET", "c")  # no free slot in time
        waited = asyncio.get_running_loop().time() - started
        self.assertGreaterEqual(waited, FAST.store.connect_timeout)
        self.assertEqual(str(raised.exception), "overloaded, retry later")
        self.assertEqual(redis_errors("store"), errors_before)
        self.assertEqual(client.execute_command.await_count, 2)
        release.set()
        self.assertEqual(await asyncio.gather(first, second),
                         ["held", "held"])
        self.assertEqual(await endpoint.call("GET", "d"), "held")

    @cases([hang_forever, RedisTimeoutError("Timeout connecting")])
    @gen_test
    async def test_a_timeout_while_the_process_is_starved_is_overloaded(
            self, answer):
        client = mock_redis(forever=answer)
        errors_before = redis_errors("store")
        with self.assertNoLogs("scoring_api.store"), \
                self.assertRaises(Overloaded):
            await self.endpoint(client, starved=True).call("GET", "i:1")
        # Not retried: more attempts would only add to the process's load.
        self.assertEqual(client.execute_command.await_count, 1)
        self.assertEqual(redis_errors("store"), errors_before)

    @gen_test
    async def test_a_timeout_while_the_process_keeps_up_is_a_redis_failure(
            self):
        client = mock_redis(forever=hang_forever)
        errors_before = redis_errors("store")
        with self.assertLogs("scoring_api.store", "WARNING") as logs, \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client, starved=False).call("GET", "i:1")
        self.assertEqual(client.execute_command.await_count,
                         1 + FAST.store.retries)
        self.assertEqual(redis_errors("store"), errors_before + 1)
        self.assertIn("store: GET failed: TimeoutError", logs.output[0])

    @gen_test
    async def test_a_refusal_is_a_redis_failure_however_late_the_process(self):
        # Only a timeout can be the process's own doing.
        client = mock_redis(forever=RedisConnectionError("refused"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await self.endpoint(client, starved=True).call("GET", "i:1")
        self.assertEqual(client.execute_command.await_count,
                         1 + FAST.store.retries)

    @gen_test
    async def test_a_ping_of_a_starved_process_is_down_without_blame(self):
        client = mock_redis(forever=hang_forever)
        with self.assertNoLogs("scoring_api.store"):
            self.assertFalse(
                await self.endpoint(client, starved=True).ping())

    @gen_test
    async def test_by_default_every_timeout_is_a_redis_failure(self):
        endpoint = RedisEndpoint("store", mock_redis(forever=hang_forever),
                                 FAST.store)
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await endpoint.call("GET", "i:1")


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


class ClusterLayoutCanaryTest(unittest.TestCase):
    """endpoint._learn_layout leans on RedisCluster.nodes_manager, which
    redis-py 8.1.0 does not document: a real client must still have one,
    whose initialize() is a coroutine that takes no argument.
    tests/integration/test_cluster.py checks what it does."""

    def test_a_cluster_client_has_a_nodes_manager_to_initialize(self):
        client, _ = modes.build_client(StoreSettings(
            mode="cluster", url="redis://127.0.0.1:7000"))
        manager = client.nodes_manager
        self.assertIsInstance(manager, NodesManager)
        self.assertTrue(inspect.iscoroutinefunction(manager.initialize))
        inspect.signature(manager.initialize).bind()  # no argument needed


class BackoffPolicyTest(unittest.TestCase):
    """The policy the store builds from `backoff` and `backoff_max`."""

    @cases(range(1, 8))
    def test_pauses_double_with_each_retry_and_stop_at_the_cap(
            self, failures):
        backoff = RedisEndpoint("store", None, Settings().store).backoff
        self.assertIsInstance(backoff, EqualJitterBackoff)
        base, cap = Settings().store.backoff, Settings().store.backoff_max
        ceiling = min(cap, base * 2 ** failures)
        pause = backoff.compute(failures)
        self.assertGreaterEqual(pause, ceiling / 2)
        self.assertLessEqual(pause, ceiling)

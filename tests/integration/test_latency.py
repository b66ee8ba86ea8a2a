"""Redis behind a fault layer (tests/support/faultproxy.py): latency, stale
pooled connections and a sentinel that never answers (docs/operations.md,
"When Redis fails")."""
import asyncio
import json
import time

import redis
from tornado.testing import AsyncHTTPTestCase, AsyncTestCase, gen_test

from scoring_api.app import make_app
from scoring_api.config import Settings
from scoring_api.errors import StoreUnavailable
from scoring_api.store import Store
from tests.support.faultproxy import FaultProxy
from tests.support.helpers import api_request
from tests.support.layers import BlackHole, RedisLayer, requires_own_server

LATENCY_SECONDS = 0.2  # each way
# What the scheduler of a busy machine may add to a bound.
SLACK_SECONDS = 0.3


def behind_a_slow_link(test):
    """(proxy, admin) for `test`: a fault proxy with LATENCY_SECONDS each
    way in front of the layer's Redis, and a direct client to look inside
    it; both closed after the test."""
    proxy = FaultProxy(RedisLayer.server.port)
    test.addCleanup(proxy.close)
    proxy.latency = LATENCY_SECONDS
    admin = redis.Redis.from_url(RedisLayer.url, socket_timeout=2,
                                 protocol=2, driver_info=None)
    test.addCleanup(admin.close)
    return proxy, admin


class ProxiedTestCase(AsyncTestCase):
    """A store whose Redis is behind a fault proxy with added latency."""

    layer = RedisLayer

    def setUp(self):
        requires_own_server(self)
        super().setUp()
        self.proxy, self.admin = behind_a_slow_link(self)
        self.stores = []

    def tearDown(self):
        for store in self.stores:
            self.io_loop.run_sync(store.close)
        super().tearDown()

    def store(self, url=None, **keys):
        """A Store with config.ini's bounds (or `keys`) over the proxy."""
        store = Store.from_settings(Settings().replace(
            store=dict({"url": url or self.proxy.url}, **keys)))
        self.stores.append(store)
        return store


class NewConnectionTest(ProxiedTestCase):
    @gen_test(timeout=10)
    async def test_a_first_call_answers_within_one_attempt_budget(self):
        # redis-py 8.1's default handshake (HELLO 3, CLIENT
        # MAINT_NOTIFICATIONS, CLIENT SETINFO) cost 4 round trips of
        # 0.4 s before the command: 1.6 s.
        store = self.store(retries=0)
        settings = Settings().store
        started = time.monotonic()
        self.assertIsNone(await store.get("i:1"))
        self.assertLess(time.monotonic() - started,
                        settings.connect_timeout + settings.timeout)

    @gen_test(timeout=10)
    async def test_no_round_trip_before_the_first_command(self):
        store = self.store()
        await store.get("i:1")
        self.assertEqual(self.proxy.round_trips(), [1])  # the GET itself
        stats = self.admin.info("commandstats")
        self.assertEqual(
            [name for name in stats
             if name.startswith(("cmdstat_hello", "cmdstat_client"))], [])

    @gen_test(timeout=10)
    async def test_a_select_is_the_only_step_added_when_configured(self):
        store = self.store(url=self.proxy.url.replace("/0", "/1"))
        await store.get("i:1")
        self.assertEqual(self.proxy.round_trips(), [2])  # SELECT, GET

    @gen_test(timeout=10)
    async def test_an_attempt_is_bounded_as_a_whole_in_standalone(self):
        # Each step (SELECT, then GET) answers within `timeout`; the two
        # together do not fit in connect_timeout + timeout.
        self.proxy.latency = 0.35
        store = self.store(url=self.proxy.url.replace("/0", "/1"),
                           connect_timeout=0.2, timeout=0.8, retries=0)
        started = time.monotonic()
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await store.get("i:1")
        self.assertLess(time.monotonic() - started, 1.0 + SLACK_SECONDS)


class CutAndStallTest(ProxiedTestCase):
    @gen_test(timeout=10)
    async def test_after_a_cut_the_next_call_is_on_a_new_connection(self):
        self.proxy.latency = 0.0
        store = self.store(retries=0)
        self.assertIsNone(await store.get("i:1"))
        self.proxy.cut()
        await asyncio.sleep(0.1)
        self.assertIsNone(await store.get("i:1"))
        self.assertEqual(self.proxy.round_trips(), [1, 1])

    @gen_test(timeout=10)
    async def test_a_stalled_link_fails_within_the_worst_case(self):
        self.proxy.stalled = True
        store = self.store(connect_timeout=0.2, timeout=0.3, retries=1,
                           backoff=0.01, backoff_max=0.02)
        started = time.monotonic()
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await store.get("i:1")
        worst = Settings().store.__class__(
            connect_timeout=0.2, timeout=0.3, retries=1,
            backoff_max=0.02).worst_call_seconds
        self.assertLess(time.monotonic() - started, worst + SLACK_SECONDS)


class StaleConnectionTest(ProxiedTestCase):
    """Connections Redis has closed are replaced before reuse."""

    def kill_every_client(self):
        # SKIPME yes (the default): the admin's own connection stays.
        return self.admin.execute_command("CLIENT", "KILL", "TYPE",
                                          "normal")

    @gen_test(timeout=10)
    async def test_a_pooled_connection_redis_closed_is_not_used(self):
        # Without a retry to hide it: the first attempt must be on a
        # live connection.
        store = self.store(retries=0)
        for _ in range(3):
            await asyncio.gather(*(store.get("i:1") for _ in range(4)))
            self.assertGreaterEqual(self.kill_every_client(), 4)
            await asyncio.sleep(2 * LATENCY_SECONDS + 0.1)  # closes arrive
            self.assertEqual(
                await asyncio.gather(*(store.get("i:1") for _ in range(4))),
                [None] * 4)


class StaleConnectionServiceTest(AsyncHTTPTestCase):
    """Interests over HTTP while Redis closes every client connection."""

    layer = RedisLayer
    CLIENTS = 6

    def setUp(self):
        requires_own_server(self)
        self.proxy, self.admin = behind_a_slow_link(self)
        self.admin.set("i:1", json.dumps(["cars"]))
        super().setUp()

    def get_app(self):
        settings = Settings().replace(store={"url": self.proxy.url})
        self.store = Store.from_settings(settings)
        return make_app(settings, self.store)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    async def interests(self):
        body = json.dumps(api_request("clients_interests",
                                      {"client_ids": [1, 2]}))
        response = await self.http_client.fetch(
            self.get_url("/method/"), method="POST", body=body,
            raise_error=False)
        return response.code

    @gen_test(timeout=30)
    async def test_every_call_answers_200_while_redis_closes_connections(
            self):
        codes = []

        async def client(until):
            while time.monotonic() < until:
                codes.append(await self.interests())

        for _ in range(4):
            until = time.monotonic() + 1.5
            clients = asyncio.gather(*(client(until)
                                       for _ in range(self.CLIENTS)))
            await asyncio.sleep(0.5)  # under load
            self.admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
            await clients
            await asyncio.sleep(0.3)
            self.admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
            await asyncio.sleep(2 * LATENCY_SECONDS + 0.1)  # and idle
        self.assertGreater(len(codes), 4 * self.CLIENTS)
        self.assertEqual([code for code in codes if code != 200], [])


class SentinelBlackHoleTest(AsyncHTTPTestCase):
    """A sentinel that accepts connections and never answers."""

    CONNECT_TIMEOUT, TIMEOUT = 0.2, 1.0

    def get_app(self):
        self.hole = BlackHole()
        self.addCleanup(self.hole.close)
        port = self.hole.socket.getsockname()[1]
        settings = Settings().replace(store={
            "mode": "sentinel", "url": "", "service_name": "scoring",
            "sentinels": (("127.0.0.1", port),),
            "connect_timeout": self.CONNECT_TIMEOUT,
            "timeout": self.TIMEOUT})
        self.store = Store.from_settings(settings)
        return make_app(settings, self.store)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    def test_ready_is_503_within_one_attempt(self):
        started = time.monotonic()
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            response = self.fetch("/ready", raise_error=False)
        elapsed = time.monotonic() - started
        self.assertEqual(response.code, 503)
        self.assertLess(elapsed,
                        self.CONNECT_TIMEOUT + self.TIMEOUT + SLACK_SECONDS)
        lines = [record.getMessage() for record in logs.records]
        self.assertTrue(all(len(line) < 250 for line in lines), lines)

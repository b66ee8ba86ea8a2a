"""The client of each Redis mode, built from config, and the per-node
grouping of many keys in a cluster; no Redis needed."""
import collections
import tempfile
import unittest

import mock

import redis.asyncio
from redis.asyncio.cluster import ClusterNode, NodesManager, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.cluster import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import ConnectionError as RedisConnectionError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.config import Settings, StoreSettings, load_settings
from scoring_api.errors import StoreUnavailable
from scoring_api.store import RedisEndpoint, Store, describe, modes
from tests.support.cases import cases

BOUNDS = {"connect_timeout": 0.3, "timeout": 0.7, "retries": 2,
          "backoff": 0.001, "backoff_max": 0.002, "max_connections": 8}
SENTINEL = StoreSettings(
    mode="sentinel", url="", service_name="mymaster", db=2,
    password="s3cret", sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
    **BOUNDS)
CLUSTER = StoreSettings(
    mode="cluster", url="redis://:s3cret@10.0.0.1:7000,10.0.0.2:7001",
    **BOUNDS)


class ClusterUrlTest(unittest.TestCase):
    @cases([
        ("redis://h1:7000,h2:7001", (("h1", 7000), ("h2", 7001)), None,
         None, False),
        ("redis://h1", (("h1", 6379),), None, None, False),
        ("rediss://u:p%40ss@h1:7000, h2:7001/0",
         (("h1", 7000), ("h2", 7001)), "u", "p@ss", True),
        ("redis://:pw@[::1]:7000,[::1]:7001", (("::1", 7000), ("::1", 7001)),
         None, "pw", False),
    ])
    def test_seeds_and_credentials_are_read_from_the_url(self, case):
        url, seeds, username, password, ssl = case
        self.assertEqual(modes.parse_cluster_url(url), modes.ClusterAddress(
            seeds, username, password, ssl))

    def test_a_url_without_a_node_is_an_error_without_the_password(self):
        with self.assertRaises(ValueError) as raised:
            modes.parse_cluster_url("redis://:s3cret@")
        self.assertEqual(str(raised.exception),
                         "a cluster url names no seed node: redis://:***@")


class DescribeTest(unittest.TestCase):
    @cases([
        (StoreSettings(url="redis://:s3cret@h:6379/1"),
         "standalone redis://:***@h:6379/1"),
        (StoreSettings(url="redis://user:s3cret@h:6379/1"),
         "standalone redis://user:***@h:6379/1"),
        (StoreSettings(url="unix:///run/redis.sock"),
         "standalone unix:///run/redis.sock"),
        (StoreSettings(url="redis://user@h:6379/1"),  # no password
         "standalone redis://user@h:6379/1"),
        (SENTINEL, "sentinel master 'mymaster' via"
                   " 10.0.0.1:26379,10.0.0.2:26380, db 2, password ***"),
        (CLUSTER, "cluster redis://:***@10.0.0.1:7000,10.0.0.2:7001"),
    ])
    def test_one_line_names_the_redis_and_masks_the_password(self, case):
        settings, line = case
        self.assertEqual(describe(settings), line)
        self.assertNotIn("s3cret", describe(settings))


class BuildClientTest(AsyncTestCase):
    """Every bound of every mode comes from config; no client retries on
    its own (the endpoint counts the attempts)."""

    def setUp(self):
        super().setUp()
        self.endpoints = []

    def tearDown(self):
        for endpoint in self.endpoints:
            self.io_loop.run_sync(endpoint.close)
        super().tearDown()

    def build(self, settings):
        endpoint = RedisEndpoint.from_settings("store", settings)
        self.endpoints.append(endpoint)
        return endpoint

    def assert_bounds(self, kwargs):
        self.assertEqual(kwargs["socket_connect_timeout"], 0.3)
        self.assertIsNone(kwargs["socket_timeout"])  # the attempt's
        self.assertEqual(kwargs["retry"].get_retries(), 0)
        self.assertFalse(kwargs.get("decode_responses"))
        # No round trip before the first command but AUTH and SELECT.
        self.assertEqual(kwargs["protocol"], 2)
        self.assertIsNone(kwargs["driver_info"])

    def test_standalone_is_a_redis_client_of_the_url(self):
        endpoint = self.build(StoreSettings(url="redis://h:6380/4",
                                            **BOUNDS))
        kwargs = endpoint.client.connection_pool.connection_kwargs
        self.assert_bounds(kwargs)
        self.assertEqual((kwargs["host"], kwargs["port"], kwargs["db"]),
                         ("h", 6380, 4))
        self.assertEqual(endpoint.attempt_timeout, 1.0)
        self.assertFalse(
            endpoint.client.connection_pool.maint_notifications_enabled())

    def test_sentinel_is_the_master_of_the_service_with_bounds_both_ways(
            self):
        endpoint = self.build(SENTINEL)
        pool = endpoint.client.connection_pool
        self.assertIsInstance(pool, SentinelConnectionPool)
        self.assertEqual(pool.service_name, "mymaster")
        self.assert_bounds(pool.connection_kwargs)
        self.assertEqual((pool.connection_kwargs["db"],
                          pool.connection_kwargs["password"]), (2, "s3cret"))
        (sentinel,) = endpoint.closables
        asked = [client.connection_pool.connection_kwargs
                 for client in sentinel.sentinels]
        self.assertEqual([(kw["host"], kw["port"]) for kw in asked],
                         [("10.0.0.1", 26379), ("10.0.0.2", 26380)])
        for client in sentinel.sentinels:
            self.assertFalse(
                client.connection_pool.maint_notifications_enabled())
        for kwargs in asked:  # asking a sentinel is bounded too
            self.assert_bounds(kwargs)
            self.assertIsNone(kwargs["password"])
        self.assertEqual(endpoint.attempt_timeout, 1.0)
        self.assertFalse(pool.maint_notifications_enabled())

    @cases([
        ("mode = cluster\nurl = redis://10.0.0.1:7000,10.0.0.2:7001\n",
         RedisCluster, "cluster redis://10.0.0.1:7000,10.0.0.2:7001"),
        ("mode = sentinel\nsentinels = 10.0.0.1:26379\n"
         "service_name = mymaster\n", redis.asyncio.Redis,
         "sentinel master 'mymaster' via 10.0.0.1:26379, db 0"),
        ("mode = standalone\nurl = redis://h:6379/0\n",
         redis.asyncio.Redis, "standalone redis://h:6379/0"),
    ])
    def test_the_mode_as_read_from_a_config_file_decides(self, case):
        # The file's text, not the interned literals of a test.
        text, client_type, description = case
        with tempfile.NamedTemporaryFile("w", suffix=".ini") as ini:
            ini.write("[store]\n" + text)
            ini.flush()
            settings = load_settings(ini.name, {})
        endpoint = self.build(settings.store)
        self.assertIs(type(endpoint.client), client_type)
        self.assertEqual(endpoint.cluster, client_type is RedisCluster)
        self.assertEqual(endpoint.attempt_timeout, 1.5)  # in every mode
        self.assertEqual(endpoint.closables != [],
                         settings.store.mode == "sentinel")
        self.assertEqual(describe(settings.store), description)

    def test_cluster_starts_from_every_seed_and_retries_nothing_itself(
            self):
        endpoint = self.build(CLUSTER)
        client = endpoint.client
        self.assertIsInstance(client, RedisCluster)
        self.assertEqual([node.name for node in client.startup_nodes],
                         ["10.0.0.1:7000", "10.0.0.2:7001"])
        self.assertEqual(client.retry.get_retries(), 0)
        self.assertEqual(client.connection_kwargs["password"], "s3cret")
        self.assertEqual(client.connection_kwargs["max_connections"], 8)
        self.assertIsNone(client.connection_kwargs["socket_timeout"])
        self.assertEqual(
            client.connection_kwargs["socket_connect_timeout"], 0.3)
        self.assertEqual(endpoint.attempt_timeout, 1.0)
        self.assertEqual(client.connection_kwargs["protocol"], 2)
        self.assertIsNone(client.connection_kwargs["driver_info"])
        self.assertIs(client.maint_notifications_config.enabled, False)


class FakeNodes:
    """Stands for every node's network: answers each node's pipeline from
    `data` and records, per node, what it was sent."""

    def __init__(self, data):
        self.data = data
        self.pipelines = collections.defaultdict(list)  # node name: [...]
        self.dead = set()

    async def execute_pipeline(self, node, commands):
        if node.name in self.dead:
            raise RedisConnectionError("Error 111 connecting")
        self.pipelines[node.name].append([cmd.args for cmd in commands])
        for command in commands:
            name, *keys = command.args
            assert name == "MGET", name
            command.result = [self.data.get(key) for key in keys]
        return False


class ClusterGroupingTest(AsyncTestCase):
    NODES = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]

    def three_node_cluster(self, data, retries=2):
        """An endpoint over a RedisCluster whose layout is three masters
        (the slots in thirds) answering from `data`, without a network."""
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", 1)],
                              retry=modes.no_retry())
        nodes = [ClusterNode("127.0.0.1", 7000 + n, server_type="primary")
                 for n in range(3)]
        third = REDIS_CLUSTER_HASH_SLOTS // 3 + 1
        manager = client.nodes_manager
        manager.nodes_cache = {node.name: node for node in nodes}
        manager.slots_cache = {slot: [nodes[slot // third]]
                               for slot in range(REDIS_CLUSTER_HASH_SLOTS)}
        manager.default_node = nodes[0]
        # The layout above stands for what the cluster would answer; both
        # ways of learning it keep redis-py's signatures (autospec).
        learn = mock.patch.object(RedisCluster, "initialize", autospec=True)
        self.learn_layout = mock.patch.object(
            NodesManager, "initialize", autospec=True).start()
        learn.start()
        self.addCleanup(mock.patch.stopall)
        self.network = FakeNodes(data)
        patch = mock.patch.object(
            ClusterNode, "execute_pipeline", autospec=True,
            side_effect=self.network.execute_pipeline)
        patch.start()
        self.addCleanup(patch.stop)
        return client, RedisEndpoint(
            "store", client, StoreSettings(mode="cluster", retries=retries,
                                           backoff=0.001, backoff_max=0.002),
            mode="cluster")

    @gen_test
    async def test_a_thousand_keys_cost_one_pipeline_per_node(self):
        keys = ["i:%d" % n for n in range(1000)]
        data = {key: b'["%d"]' % n for n, key in enumerate(keys)
                if n % 3}
        client, endpoint = self.three_node_cluster(data)
        values = await endpoint.get_many(keys)
        self.assertEqual(values, [data.get(key) for key in keys])
        pipelines = self.network.pipelines
        self.assertEqual([len(pipelines[node]) for node in self.NODES],
                         [1, 1, 1])
        sent = []
        for node in self.NODES:
            for _, *node_keys in pipelines[node][0]:
                self.assertEqual(len({client.keyslot(key)
                                      for key in node_keys}), 1,
                                 "an MGET across slots: %s" % node_keys)
                sent.extend(node_keys)
        self.assertEqual(sorted(sent), sorted(keys))

    @gen_test
    async def test_a_failed_node_makes_the_client_learn_the_layout_again(
            self):
        client, endpoint = self.three_node_cluster({}, retries=1)
        self.network.dead.add("127.0.0.1:7001")
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await endpoint.get_many(["i:%d" % n for n in range(100)])
        # Before the retry: the layout is asked for again.
        self.learn_layout.assert_awaited_once_with(client.nodes_manager)
        self.network.dead.clear()
        for _ in range(3):  # once learned, the layout is used
            self.assertEqual(await endpoint.get_many(["i:1"]), [None])
        self.assertEqual(self.learn_layout.await_count, 2)


class ClientTypeTest(unittest.TestCase):
    def test_standalone_is_the_plain_asyncio_client(self):
        client, closables = modes.build_client(StoreSettings())
        self.assertIs(type(client), redis.asyncio.Redis)
        self.assertEqual(closables, [])


class StoreDescriptionTest(AsyncTestCase):
    @gen_test
    async def test_the_start_up_line_names_both_redis_without_passwords(
            self):
        settings = Settings().replace(
            store={"url": "redis://:s3cret@store:6379/0"},
            cache={"mode": "cluster",
                   "url": "redis://:0ther@c1:7000,c2:7000"})
        with self.assertLogs("scoring_api.store", "INFO") as logs:
            store = Store.from_settings(settings)
        await store.close()
        self.assertEqual(logs.output, [
            "INFO:scoring_api.store.facade:store: standalone"
            " redis://:***@store:6379/0; cache: cluster"
            " redis://:***@c1:7000,c2:7000"])

    @gen_test
    async def test_an_empty_cache_url_is_the_store_redis_in_every_mode(
            self):
        settings = Settings().replace(store=dict(
            vars(SENTINEL), connect_timeout=0.5))
        store = Store.from_settings(settings)
        await store.close()
        self.assertEqual(store.cache.description, describe(SENTINEL))
        self.assertEqual(store.cache.attempt_timeout,
                         settings.cache.connect_timeout
                         + settings.cache.timeout)

"""The service on a Redis Cluster (docs/operations.md, "Redis modes"):
three masters and their replicas, keys of every slot read per node, a
failover followed without a restart, a node that hangs kept within the
timeouts."""
import json
import os
import subprocess
import sys
import tempfile
import time

import redis
from tornado.testing import gen_test

from scoring_api.config import StoreSettings
from scoring_api.store import modes
from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.topology_service import (BOUNDED, CACHE_BUDGET,
                                            INTEREST_IDS, SLACK_SECONDS,
                                            STORE_BUDGET, ModeTestCase)
from tests.support.topologies import (CLUSTER_NODE_TIMEOUT_MS, ClusterLayer,
                                      cluster_failover_bound_seconds,
                                      requires_cluster)

THOUSAND = list(range(1000))
# From the kill until interests answer 200 again: the cluster's failover,
# then at most one call that began before it ended.
RECOVERY_BOUND_SECONDS = cluster_failover_bound_seconds() + STORE_BUDGET
# Reads a node processes for one pipelined batch (a round trip): one, or
# a few when the batch arrives in pieces (a busy machine). A request that
# paid a round trip per slot would cost a node some 330.
READS_PER_BATCH = 4
# Reads that are not the request's: our own INFO, and a replica's
# once-a-second acknowledgement.
OTHER_READS = 2


class ClusterTestCase(ModeTestCase):
    layer = ClusterLayer
    requires = requires_cluster

    def setUp(self):
        super().setUp()
        seed = self.topology.nodes[0]
        self.redis = redis.RedisCluster(
            "127.0.0.1", seed.port, decode_responses=True, socket_timeout=2)
        self.addCleanup(self.redis.close)

    def store_settings(self):
        return {"mode": "cluster", "url": self.topology.url}

    def put_interests(self, ids):
        self.redis.mset_nonatomic({
            "i:%d" % cid: json.dumps(["cars", "id %d" % cid])
            for cid in ids})
        for node in self.topology.masters():  # on the replicas too
            with node.client() as client:
                self.assertEqual(client.execute_command("WAIT", 1, 2000), 1)

    def node_stats(self, clients):
        """{port: (reads processed, MGET calls, GET calls)} of the masters
        `clients` reach, with one INFO each."""
        stats = {}
        for port, client in clients.items():
            info = client.info("all")
            stats[port] = (info["total_reads_processed"],
                           info.get("cmdstat_mget", {}).get("calls", 0),
                           info.get("cmdstat_get", {}).get("calls", 0))
        return stats

    def master_clients(self):
        """{port: an open client} of each master, so that looking costs
        no connecting."""
        clients = {}
        for node in self.topology.masters():
            clients[node.port] = node.client()
            self.addCleanup(clients[node.port].close)
            clients[node.port].ping()
        return clients


class ClusterServiceTest(ClusterTestCase):
    def test_a_thousand_ids_over_every_slot_cost_a_round_trip_a_node(self):
        self.put_interests(THOUSAND[::2])
        request = api_request("clients_interests", {"client_ids": THOUSAND})
        self.assertEqual(self.answer(self.post(request))[0], 200)  # connects
        clients = self.master_clients()
        before = self.node_stats(clients)
        code, response = self.answer(self.post(request))
        after = self.node_stats(clients)
        self.assertEqual(code, 200)
        self.assertEqual(response, {
            str(cid): ["cars", "id %d" % cid] if cid % 2 == 0 else []
            for cid in THOUSAND})
        self.assertEqual(len(after), 3)
        for port, (reads, mgets, gets) in after.items():
            self.assertLessEqual(reads - before[port][0],
                                 READS_PER_BATCH + OTHER_READS,
                                 "node %d: reads for one request" % port)
            self.assertGreater(mgets, before[port][1], "node %d" % port)
            self.assertEqual(gets, 0, "node %d: a GET per key" % port)

    def test_a_score_is_cached_on_its_node_for_an_hour(self):
        code, response = self.answer(self.post(SCORE_REQUEST))
        self.assertEqual((code, response), (200, {"score": 3.0}))
        keys = self.redis.keys("*", target_nodes=redis.RedisCluster.PRIMARIES)
        self.assertEqual(len(keys), 1, keys)
        self.assertEqual(self.redis.get(keys[0]), "3.0")
        self.assertTrue(3590 <= self.redis.ttl(keys[0]) <= 3600)

    def test_health_says_both_are_up(self):
        code, response = self.answer(self.fetch("/health"))
        self.assertEqual(code, 200)
        self.assertEqual((response["store"], response["cache"]),
                         ("up", "up"))


class ClusterStoreTest(ClusterTestCase):
    @gen_test
    async def test_keys_of_many_slots_are_written_and_read_back(self):
        mapping = {"i:%d" % n: json.dumps(["x%d" % n]) for n in range(200)}
        await self.store.set_many(mapping)
        values = await self.store.get_many(
            ["i:%d" % n for n in range(210)])
        self.assertEqual([v and json.loads(v) for v in values],
                         [["x%d" % n] for n in range(200)] + [None] * 10)
        self.assertEqual(self.redis.mget_nonatomic(list(mapping)),
                         list(mapping.values()))

    @gen_test
    async def test_a_cached_value_gets_the_ttl_it_was_given(self):
        await self.store.cache_set("score:k", 1.5, 60)
        self.assertEqual(float(await self.store.cache_get("score:k")), 1.5)
        self.assertTrue(50 <= self.redis.ttl("score:k") <= 60)


class ClusterLoaderTest(ClusterTestCase):
    def test_the_loader_writes_keys_of_every_node(self):
        with tempfile.NamedTemporaryFile(
                "w", suffix=".jsonl", delete=False) as handle:
            for cid in range(300):
                handle.write(json.dumps(
                    {"client_id": cid, "interests": ["id %d" % cid]}) + "\n")
        self.addCleanup(os.unlink, handle.name)
        environ = dict(os.environ, SCORING_STORE_MODE="cluster",
                       SCORING_STORE_URL=self.topology.url)
        result = subprocess.run(
            [sys.executable, "-m", "scoring_api.loader", handle.name],
            env=environ, capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("loaded interests of 300 clients", result.stdout)
        values = self.redis.mget_nonatomic(["i:%d" % c for c in range(300)])
        self.assertEqual([json.loads(v) for v in values],
                         [["id %d" % cid] for cid in range(300)])
        for node in self.topology.masters():
            with node.client() as client:
                self.assertGreater(client.dbsize(), 0, node.port)


class ClusterFailoverTest(ClusterTestCase):
    base_settings = BOUNDED

    @gen_test(timeout=RECOVERY_BOUND_SECONDS + 20)
    async def test_a_killed_master_is_replaced_by_its_replica(self):
        self.put_interests(INTEREST_IDS)
        victim = self.topology.master_of("i:1")
        fault_at, answers = await self.traffic_through(
            victim.kill, RECOVERY_BOUND_SECONDS)
        self.assertFailoverFollowed(fault_at, answers,
                                    RECOVERY_BOUND_SECONDS)
        self.assertNotEqual(self.topology.master_of("i:1"), victim)


class ClusterHangingNodeTest(ClusterTestCase):
    base_settings = BOUNDED

    def test_with_a_node_paused_every_call_returns_within_its_budget(self):
        self.put_interests(INTEREST_IDS)
        node = self.topology.master_of("i:1")
        node.pause()
        self.addCleanup(node.resume)
        codes = set()
        # Until the cluster would fail the node over: it is a hang, not a
        # dead node, that is tried here.
        until = time.monotonic() + CLUSTER_NODE_TIMEOUT_MS / 1000
        with self.assertLogs("scoring_api.store", "WARNING"):
            while time.monotonic() < until:
                started = time.monotonic()
                code, _ = self.answer(self.post(api_request(
                    "clients_interests", {"client_ids": INTEREST_IDS})))
                self.assertLess(time.monotonic() - started,
                                STORE_BUDGET + SLACK_SECONDS)
                codes.add(code)
                started = time.monotonic()
                self.assertEqual(self.answer(self.post(SCORE_REQUEST)),
                                 (200, {"score": 3.0}))
                self.assertLess(time.monotonic() - started,
                                2 * CACHE_BUDGET + SLACK_SECONDS)
        self.assertIn(503, codes)
        self.assertLessEqual(codes, {200, 503})


class ClusterLayoutCanaryTest(ClusterTestCase):
    """store/endpoint.py learns a cluster's layout again after a failed
    call with RedisCluster.nodes_manager.initialize(), which redis-py
    8.1.0 does not document. On a real cluster it must learn every master
    and which one serves a key: a failure here means redis-py changed
    it (see RedisEndpoint._learn_layout)."""

    @gen_test
    async def test_nodes_manager_initialize_learns_the_layout(self):
        client, _ = modes.build_client(StoreSettings(
            mode="cluster", url=self.topology.url))
        try:
            await client.nodes_manager.initialize()
            self.assertEqual(
                {node.port for node in client.get_primaries()},
                {node.port for node in self.topology.masters()})
            self.assertEqual(client.get_node_from_key("i:1").port,
                             self.topology.master_of("i:1").port)
        finally:
            await client.aclose()

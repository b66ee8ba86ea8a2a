"""The service on a Sentinel set (docs/operations.md, "Redis modes"): a
master, a replica and three sentinels, the master found through the
sentinels, a failover followed without a restart."""
import json
import os
import subprocess
import sys
import tempfile

from tornado.testing import gen_test

from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.topology_service import (BOUNDED, INTEREST_IDS, INTERESTS,
                                            STORE_BUDGET, ModeTestCase)
from tests.support.topologies import (SERVICE_NAME, SentinelLayer,
                                      requires_sentinel,
                                      sentinel_failover_bound_seconds)

# From the kill until interests answer 200 again: the sentinels' failover,
# then at most one call that began before it ended.
RECOVERY_BOUND_SECONDS = sentinel_failover_bound_seconds() + STORE_BUDGET


class SentinelTestCase(ModeTestCase):
    layer = SentinelLayer
    requires = requires_sentinel

    def store_settings(self):
        return {"mode": "sentinel", "url": "",
                "sentinels": self.topology.addresses,
                "service_name": SERVICE_NAME, "db": 0}

    def master_client(self):
        client = self.topology.master().client()
        self.addCleanup(client.close)
        return client

    def put_interests(self):
        client = self.master_client()
        client.mset({"i:" + cid: json.dumps(values)
                     for cid, values in INTERESTS.items()})
        # On the replica too, so that a failover keeps them.
        self.assertEqual(client.execute_command("WAIT", 1, 2000), 1)


class SentinelServiceTest(SentinelTestCase):
    def test_interests_are_read_from_the_master_the_sentinels_name(self):
        self.put_interests()
        code, response = self.answer(self.post(api_request(
            "clients_interests", {"client_ids": INTEREST_IDS + [999]})))
        self.assertEqual(code, 200)
        self.assertEqual(response, dict(INTERESTS, **{"999": []}))

    def test_a_score_is_cached_on_the_master_for_an_hour(self):
        code, response = self.answer(self.post(SCORE_REQUEST))
        self.assertEqual((code, response), (200, {"score": 3.0}))
        client = self.master_client()
        keys = client.keys("*")
        self.assertEqual(len(keys), 1, keys)
        self.assertEqual(client.get(keys[0]), "3.0")
        self.assertTrue(3590 <= client.ttl(keys[0]) <= 3600)

    def test_health_says_both_are_up(self):
        code, response = self.answer(self.fetch("/health"))
        self.assertEqual(code, 200)
        self.assertEqual((response["store"], response["cache"]),
                         ("up", "up"))


class SentinelStoreTest(SentinelTestCase):
    @gen_test
    async def test_writes_land_on_the_master_and_reach_the_replica(self):
        await self.store.set_many({"i:1": '["a"]', "i:2": "[]"})
        values = await self.store.get_many(["i:1", "i:2", "i:3"])
        self.assertEqual([v and json.loads(v) for v in values],
                         [["a"], [], None])
        client = self.master_client()
        self.assertEqual(client.execute_command("WAIT", 1, 2000), 1)
        with self.topology.replica().client() as replica:
            self.assertEqual(replica.get("i:1"), '["a"]')

    @gen_test
    async def test_a_cached_value_gets_the_ttl_it_was_given(self):
        await self.store.cache_set("score:k", 1.5, 60)
        self.assertEqual(float(await self.store.cache_get("score:k")), 1.5)
        self.assertTrue(50 <= self.master_client().ttl("score:k") <= 60)


class SentinelLoaderTest(SentinelTestCase):
    def test_the_loader_writes_to_the_master(self):
        with tempfile.NamedTemporaryFile(
                "w", suffix=".json", delete=False) as handle:
            json.dump({"1": ["cars"], "2": ["tv", "pets"]}, handle)
        self.addCleanup(os.unlink, handle.name)
        environ = dict(
            os.environ, SCORING_STORE_MODE="sentinel", SCORING_STORE_URL="",
            SCORING_STORE_SENTINELS=",".join(
                "%s:%d" % a for a in self.topology.addresses),
            SCORING_STORE_SERVICE_NAME=SERVICE_NAME)
        result = subprocess.run(
            [sys.executable, "-m", "scoring_api.loader", handle.name],
            env=environ, capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [json.loads(v) for v in self.master_client().mget("i:1", "i:2")],
            [["cars"], ["tv", "pets"]])


class SentinelFailoverTest(SentinelTestCase):
    base_settings = BOUNDED

    @gen_test(timeout=RECOVERY_BOUND_SECONDS + 20)
    async def test_a_killed_master_is_replaced_without_a_restart(self):
        self.put_interests()
        fault_at, answers = await self.traffic_through(
            self.topology.kill_master, RECOVERY_BOUND_SECONDS)
        self.assertFailoverFollowed(fault_at, answers,
                                    RECOVERY_BOUND_SECONDS)

"""Quotas shared through a real Redis: the counters' script (sums, stale
and foreign data, no TTL), two processes giving a partner its rate once,
not once each, the counters' Redis killed and restarted (the local share,
then one quota again, each said once), and the Sentinel and Cluster
modes. Time is a fake clock (the quotas' monotonic one, and the counters'
wall clock EPOCH seconds ahead of it); Redis is real."""
import bisect

import redis
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.quotas import Quotas
from scoring_api.store import RedisEndpoint
from scoring_api.store.counters import QuotaCounters
from tests.support.cases import cases
from tests.support.clock import FakeClock
from tests.support.layers import (FaultLayer, RedisLayer, requires_own_server,
                                  requires_redis)
from tests.support.topologies import (SERVICE_NAME, ClusterLayer,
                                      SentinelLayer, requires_cluster,
                                      requires_sentinel)
from tests.support.topology_service import PATIENT

EPOCH = 1700000000.0
KEY = "quota:{acme}"


class CountersTestCase(AsyncTestCase):
    """Counters of several processes (each its own endpoint, so its own
    connections) over one Redis, on a fake wall clock."""

    layer = RedisLayer
    base_settings = PATIENT  # no timeout a busy machine could reach

    def setUp(self):
        requires_redis(self)
        super().setUp()
        self.start_clocks()
        self.redis = redis.Redis.from_url(
            RedisLayer.url, socket_timeout=2, decode_responses=True)
        self.addCleanup(self.redis.close)

    def start_clocks(self):
        self.clock = FakeClock(0.0)
        self.wall_clock = lambda: EPOCH + self.clock.now
        self.endpoints = []

    def store_settings(self):
        return {"url": RedisLayer.url}

    def counters(self):
        settings = self.base_settings.replace(store=self.store_settings())
        endpoint = RedisEndpoint.from_settings("cache", settings.cache_redis)
        self.endpoints.append(endpoint)
        return QuotaCounters(endpoint, clock=self.wall_clock)

    def tearDown(self):
        for endpoint in self.endpoints:
            self.io_loop.run_sync(endpoint.close)
        super().tearDown()


class CountersScriptTest(CountersTestCase):
    @gen_test
    async def test_each_process_is_a_field_and_the_sum_is_everyone_s(self):
        first, second = self.counters(), self.counters()
        self.assertEqual(await first.exchange({"acme": 30.0}, "h:1"),
                         {"acme": 30.0})
        self.assertEqual(await second.exchange({"acme": 10.5}, "h:2"),
                         {"acme": 40.5})
        self.assertEqual(self.redis.hgetall(KEY), {
            "h:1": "30.0 1700000000.0", "h:2": "10.5 1700000000.0"})
        self.assertEqual(self.redis.ttl(KEY), -1)  # never evicted

    @gen_test
    async def test_a_process_without_demand_leaves_and_no_key_is_left(
            self):
        first, second = self.counters(), self.counters()
        await first.exchange({"acme": 30.0, "globex": 1.0}, "h:1")
        await second.exchange({"acme": 10.0}, "h:2")
        self.assertEqual(await first.exchange({"acme": 0.0}, "h:1"),
                         {"acme": 10.0})
        self.assertEqual(await second.exchange({"acme": 0.0}, "h:2"),
                         {"acme": 0.0})
        self.assertEqual(self.redis.keys("quota:*"), ["quota:{globex}"])

    @gen_test
    async def test_a_demand_not_refreshed_for_a_second_is_gone(self):
        first, second = self.counters(), self.counters()
        await first.exchange({"acme": 30.0}, "h:1")
        self.clock.now += 1.0
        self.assertEqual(await second.exchange({"acme": 10.0}, "h:2"),
                         {"acme": 40.0})
        self.clock.now += 0.5
        self.assertEqual(await second.exchange({"acme": 10.0}, "h:2"),
                         {"acme": 10.0})
        self.assertEqual(list(self.redis.hgetall(KEY)), ["h:2"])

    @cases([("string", None), ("list", None),
            ("hash", "garbage"), ("hash", "nan 1700000000"),
            ("hash", "inf 1700000000"), ("hash", "-3 1700000000"),
            ("hash", "1e13 1700000000"), ("hash", "5 nan"),
            ("hash", "5 inf"), ("hash", "5 -inf"),
            ("hash", "5 1800000000"), ("hash", "5 1600000000"),
            ("hash", "")])
    @gen_test
    async def test_data_the_service_did_not_write_is_replaced(self, case):
        kind, value = case
        if kind == "string":
            self.redis.set(KEY, "12")
        elif kind == "list":
            self.redis.rpush(KEY, "12")
        else:
            self.redis.hset(KEY, "other:1", value)
        counters = self.counters()
        self.assertEqual(await counters.exchange({"acme": 7.0}, "h:1"),
                         {"acme": 7.0})
        self.assertEqual(list(self.redis.hgetall(KEY)), ["h:1"])

    @gen_test
    async def test_every_account_is_one_script_call(self):
        counters = self.counters()
        accounts = {"p%d" % n: 1.0 for n in range(50)}
        self.redis.config_resetstat()
        totals = await counters.exchange(accounts, "h:1")
        self.assertEqual(totals, accounts)
        stats = self.redis.info("commandstats")
        self.assertEqual(stats["cmdstat_eval"]["calls"], 50)
        self.assertEqual(len(self.redis.keys("quota:*")), 50)


def windows(times, seconds, width=10.0, step=0.05):
    """(fewest, most) of `times` in any `width` s within `seconds`."""
    counts = [bisect.bisect_left(times, start + width)
              - bisect.bisect_left(times, start)
              for start in (k * step
                            for k in range(int((seconds - width) / step)))]
    return min(counts), max(counts)


class QuotasOverRedisTestCase(CountersTestCase):
    def processes(self, count, rate, burst, workers=2):
        self.quotas = [
            Quotas(rate, burst, workers=workers, counters=self.counters(),
                   clock=self.clock, process="h:%d" % n)
            for n in range(count)]
        return self.quotas

    async def send(self, calls_per_second, seconds, account="acme"):
        """From now on, `calls_per_second[n]` calls to process n for
        `seconds`, each process syncing every 0.2 s (the second 0.1 s
        after the first); the times (from now) of the calls admitted."""
        start = self.clock.now
        events = []
        for process, per_second in enumerate(calls_per_second):
            if per_second:
                events += [(k / per_second, process)
                           for k in range(int(seconds * per_second))]
        for process in range(len(self.quotas)):
            events += [(0.2 + 0.1 * process + 0.2 * k, 100 + process)
                       for k in range(int(seconds / 0.2))]
        admitted = []
        for when, what in sorted(events):
            self.clock.now = start + when
            if what >= 100:
                await self.quotas[what - 100].sync()
            elif self.quotas[what].admit(account).admitted:
                admitted.append(when)
        return admitted


class SharedQuotaTest(QuotasOverRedisTestCase):
    @gen_test(timeout=60)
    async def test_two_processes_give_a_partner_its_rate_once(self):
        rate, burst = 20.0, 10
        self.processes(2, rate, burst)
        with self.assertLogs("scoring_api.quotas", "WARNING"):
            admitted = await self.send([2 * rate, 2 * rate], 30.0)
        fewest, most = windows(admitted, 30.0)
        # Once, not once each (that would be 400 in 10 s).
        self.assertGreaterEqual(fewest, 0.9 * 10 * rate)
        self.assertLessEqual(most, 1.1 * (10 * rate + burst))
        self.assertEqual(self.redis.ttl(KEY), -1)


class CountersKilledTest(QuotasOverRedisTestCase):
    layer = FaultLayer  # (a refused connection fails at once, whatever
    # the timeouts)

    def setUp(self):
        super().setUp()
        requires_own_server(self)

    @gen_test(timeout=60)
    async def test_killed_counters_mean_the_local_share_said_once_each_way(
            self):
        rate = 20.0
        quota, = self.processes(1, rate, 0, workers=2)
        with self.assertLogs("scoring_api", "WARNING") as logs:
            before = await self.send([2 * rate], 5.0)
            RedisLayer.server.kill()
            during = await self.send([2 * rate], 5.0)
            self.assertFalse(quota.shared)
            RedisLayer.server.start()
            after = await self.send([2 * rate], 10.0)
        self.assertTrue(quota.shared)
        said = [line.split(":", 2)[2] for line in logs.output
                if line.startswith("WARNING:scoring_api.quotas:quotas: the")]
        self.assertEqual(said, [
            "quotas: the shared counters failed (cache is unavailable):"
            " each process holds 1/2 of every quota until they answer",
            "quotas: the shared counters answer again: the processes share"
            " every quota by demand again"])
        # Alone, with the counters: the whole rate; without them, the
        # local share (rate / workers); with them again, the whole rate.
        self.assertAlmostEqual(len([t for t in before if t >= 1.0]),
                               4 * rate, delta=2)
        self.assertAlmostEqual(len([t for t in during if t >= 1.0]),
                               4 * rate / 2, delta=2)
        self.assertAlmostEqual(len([t for t in after if t >= 5.0]),
                               5 * rate, delta=2)


class SentinelCountersTest(CountersTestCase):
    layer = SentinelLayer

    def setUp(self):
        requires_sentinel(self)
        AsyncTestCase.setUp(self)
        self.start_clocks()

    def store_settings(self):
        return {"mode": "sentinel", "url": "",
                "sentinels": SentinelLayer.topology.addresses,
                "service_name": SERVICE_NAME, "db": 0}

    @gen_test
    async def test_the_counters_live_on_the_master(self):
        first, second = self.counters(), self.counters()
        await first.exchange({"acme": 3.0}, "h:1")
        self.assertEqual(await second.exchange({"acme": 4.0}, "h:2"),
                         {"acme": 7.0})
        with SentinelLayer.topology.master().client() as client:
            self.assertEqual(sorted(client.hgetall(KEY)), ["h:1", "h:2"])


class ClusterCountersTest(CountersTestCase):
    layer = ClusterLayer

    def setUp(self):
        requires_cluster(self)
        AsyncTestCase.setUp(self)
        self.start_clocks()

    def store_settings(self):
        return {"mode": "cluster", "url": ClusterLayer.topology.url}

    @gen_test
    async def test_accounts_of_every_node_in_one_exchange(self):
        first, second = self.counters(), self.counters()
        accounts = ["p%d" % n for n in range(30)]
        nodes = {ClusterLayer.topology.master_of(first.key(a)).port
                 for a in accounts}
        self.assertEqual(len(nodes), 3)  # every master has some
        await first.exchange(dict.fromkeys(accounts, 2.0), "h:1")
        totals = await second.exchange(dict.fromkeys(accounts, 1.0), "h:2")
        self.assertEqual(totals, dict.fromkeys(accounts, 3.0))
        for account in accounts:
            key = first.key(account)
            with ClusterLayer.topology.master_of(key).client() as client:
                self.assertEqual(sorted(client.hgetall(key)),
                                 ["h:1", "h:2"])

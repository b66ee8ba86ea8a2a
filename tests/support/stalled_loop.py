"""A real Redis behind a fault proxy, and the event loop stalled by the
test while calls wait on it: what the starved-process tests share."""
import asyncio
import json
import time

from scoring_api import metrics
from tests.support.faultproxy import FaultProxy
from tests.support.helpers import api_request
from tests.support.layers import RedisLayer, requires_own_server
from tests.support.metrics_text import samples, value
from tests.support.service import FAST, ServiceTestCase

# Each way: a call waits LATENCY x 2 on Redis, within its attempt bound
# (connect_timeout + timeout), so only the stall makes it time out.
LATENCY_SECONDS = 0.5
SETTINGS = FAST.replace(store={"connect_timeout": 0.2, "timeout": 1.0,
                               "retries": 0})
ATTEMPT_SECONDS = SETTINGS.store.connect_timeout + SETTINGS.store.timeout
# The loop blocked for longer than an attempt may take.
STALL_SECONDS = ATTEMPT_SECONDS + 0.3
CALLS = 8
IDS = list(range(1, 11))


class LoopLagProbe:
    """What the service's loop-lag monitor tells the store, measured the
    simplest way: a tick every TICK_SECONDS notes how late it ran; the
    process is starved while the last tick ran more than LATE_SECONDS
    late."""

    TICK_SECONDS = 0.01
    LATE_SECONDS = 0.1

    def __init__(self):
        self.loop = asyncio.get_event_loop()
        self.lateness = 0.0
        self.handle = None
        self._schedule()

    def _schedule(self):
        due = self.loop.time() + self.TICK_SECONDS
        self.handle = self.loop.call_at(due, self._tick, due)

    def _tick(self, due):
        self.lateness = self.loop.time() - due
        self._schedule()

    def is_starved(self):
        return self.lateness > self.LATE_SECONDS

    def stop(self):
        self.handle.cancel()


def redis_errors(role):
    return value(samples(metrics.render()[0]),
                 "scoring_api_redis_errors_total", role=role)


class StalledLoopTestCase(ServiceTestCase):
    """CALLS clients_interests calls wait on a Redis that answers each in
    2 x LATENCY_SECONDS; once every one is sent, the test blocks the
    event loop for STALL_SECONDS, as the process's own CPU work would."""

    base_settings = SETTINGS

    def setUp(self):
        requires_own_server(self)
        self.proxy = FaultProxy(RedisLayer.server.port)
        self.addCleanup(self.proxy.close)
        self.proxy.latency = LATENCY_SECONDS
        super().setUp()
        self.redis.mset({"i:%d" % cid: json.dumps(["cars"]) for cid in IDS})

    def redis_urls(self):
        return self.proxy.url, ""

    async def responses_through_a_stall(self):
        """The answers to CALLS interests calls, each waiting on Redis
        while the event loop stalls STALL_SECONDS."""
        body = json.dumps(api_request("clients_interests",
                                      {"client_ids": IDS}))
        fetches = [asyncio.ensure_future(self.http_client.fetch(
            self.get_url("/method/"), method="POST", body=body,
            raise_error=False)) for _ in range(CALLS)]
        # Every MGET sent (the proxy holds its answer LATENCY_SECONDS).
        while sum(self.proxy.round_trips()) < CALLS:
            await asyncio.sleep(0.005)
        time.sleep(STALL_SECONDS)
        return await asyncio.gather(*fetches)

    async def calls_through_a_stall(self):
        """(code, error or None) of each call."""
        return [(response.code, json.loads(response.body).get("error"))
                for response in await self.responses_through_a_stall()]

"""What the integration tests share: settings with short bounds, the app
over the layer's Redis, and a direct client to look inside Redis."""
import asyncio
import json
import time

import redis

from tornado.testing import AsyncHTTPTestCase

from scoring_api.app import make_app
from scoring_api.config import Settings
from scoring_api.store import Store
from tests.support.layers import (FaultLayer, RedisLayer, requires_own_server,
                                  requires_redis)

# Short bounds, so a broken Redis costs the suite little time; no local
# tier, so every score reaches Redis (LocalTierTest turns it on).
FAST = Settings().replace(
    store={"connect_timeout": 0.2, "timeout": 0.3, "retries": 2,
           "backoff": 0.01, "backoff_max": 0.05},
    cache={"connect_timeout": 0.1, "timeout": 0.1, "retries": 1,
           "backoff": 0.01, "backoff_max": 0.02, "failure_threshold": 3,
           "reset_timeout": 0.2, "local_size": 0})


class ServiceTestCase(AsyncHTTPTestCase):
    """The real app against the layer's Redis (or `redis_urls()`)."""

    layer = RedisLayer
    base_settings = FAST

    def setUp(self):
        requires_redis(self)
        super().setUp()
        # A plain client, to put data in and look inside.
        self.redis = redis.Redis.from_url(
            RedisLayer.url, socket_timeout=2, decode_responses=True)
        self.addCleanup(self.redis.close)

    def redis_urls(self):
        """(store url, cache url) the app is given."""
        return RedisLayer.url, ""

    def store_options(self):
        """More keyword arguments of `Store.from_settings`."""
        return {}

    def get_app(self):
        store_url, cache_url = self.redis_urls()
        self.settings = self.base_settings.replace(
            store={"url": store_url}, cache={"url": cache_url})
        self.store = Store.from_settings(self.settings,
                                         **self.store_options())
        return make_app(self.settings, self.store)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    def post(self, body, **kwargs):
        return self.fetch("/method/", method="POST", body=json.dumps(body),
                          raise_error=False, **kwargs)

    def answer(self, response):
        """(code, response or error) of an API answer."""
        body = json.loads(response.body)
        self.assertEqual(body["code"], response.code)
        return response.code, body.get("response", body.get("error"))


# How long a restarted Redis may take to be used again.
RECOVERY_BOUND_SECONDS = 3.0


class FaultTestCase(ServiceTestCase):
    layer = FaultLayer

    def setUp(self):
        requires_own_server(self)
        super().setUp()
        self.server = RedisLayer.server
        self.redis.set("i:1", json.dumps(["cars", "pets"]))

    def timed(self, request):
        started = time.monotonic()
        response = self.post(request)
        return self.answer(response), time.monotonic() - started

    def wait_until(self, condition, bound=RECOVERY_BOUND_SECONDS):
        """Seconds until `condition()` held; fails past `bound`."""
        started = time.monotonic()
        while not condition():
            self.assertLess(time.monotonic() - started, bound,
                            "no recovery in %.1fs" % bound)
            self.io_loop.run_sync(lambda: asyncio.sleep(0.05))
        return time.monotonic() - started

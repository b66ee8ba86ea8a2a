"""The Redis store (SPEC 4): interests that must be read, scores that may be
cached.

Every call is bounded: each step of an attempt (waiting for one of the
`max_connections` slots, connecting, sending, reading) by
`connect_timeout` or `timeout`; the number of attempts by
`retries`; the pauses between them by `backoff_max`. A persistent-store
call that still fails raises `StoreUnavailable`; a cache call that fails
is reported as a miss, and a circuit breaker stops the cache calls while
the cache is known to be down.
"""
import asyncio
import collections
import contextvars
import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scoring_api import metrics
from scoring_api.errors import StoreUnavailable

logger = logging.getLogger(__name__)

# Worth another attempt: the connection or the server may come back.
# (redis-py's TimeoutError is not the built-in one; OSError covers both.)
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
OUTAGE_LOG_INTERVAL_SECONDS = 10.0


class OutageLog:
    """Reports a failing Redis at WARNING without flooding the log.

    The first failure is logged, then at most one line per `interval` with
    the number of failures since the last line, and one line on recovery.
    """

    def __init__(self, name, interval=OUTAGE_LOG_INTERVAL_SECONDS,
                 clock=time.monotonic):
        self.name = name
        self.interval = interval
        self.clock = clock
        self.down = False
        self.unreported = 0
        self.last_report = None

    def failure(self, command, error):
        self.down = True
        self.unreported += 1
        now = self.clock()
        if self.last_report is None or now - self.last_report >= self.interval:
            logger.warning("%s: %s failed: %s (%d failed calls since the last"
                           " report)", self.name, command,
                           error or type(error).__name__, self.unreported)
            self.last_report = now
            self.unreported = 0

    def success(self):
        if self.down:
            logger.warning("%s: answering again", self.name)
            self.down = False
            self.unreported = 0
            self.last_report = None


class RedisEndpoint:
    """One Redis role (the store or the cache): a client and its bounds."""

    def __init__(self, name, client, settings, backoff=None):
        self.name = name
        self.client = client
        # At most max_connections calls at once, so at most that many
        # connections; a call waits for a slot at most connect_timeout.
        # (redis-py's BlockingConnectionPool does the same at 5% of the
        # throughput of clients_interests; a free semaphore costs nothing.)
        self.slots = asyncio.Semaphore(settings.max_connections)
        self.slot_timeout = settings.connect_timeout
        self.retries = settings.retries
        self.backoff = backoff or EqualJitterBackoff(
            cap=settings.backoff_max, base=settings.backoff)
        self.outages = OutageLog(name)

    @classmethod
    def from_url(cls, name, url, settings):
        """An endpoint whose client connects lazily, on its first call."""
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.timeout,  # each send and each read
            retry=Retry(NoBackoff(), 0),  # retries are ours, counted below
            decode_responses=True,
        )
        return cls(name, client, settings)

    async def call(self, command, *args, retries=None):
        """Run one command; retry transient failures, then raise
        `StoreUnavailable`."""
        retries = self.retries if retries is None else retries
        failures = 0
        while True:
            try:
                result = await self._execute(command, args)
            except TRANSIENT_ERRORS as error:
                failures += 1
                if failures > retries:
                    self._give_up(command, error)
                await asyncio.sleep(self.backoff.compute(failures))
            except RedisError as error:
                self._give_up(command, error)
            else:
                self.outages.success()
                return result

    async def _execute(self, command, args):
        if self.slots.locked():
            async with asyncio.timeout(self.slot_timeout):
                await self.slots.acquire()
        else:
            await self.slots.acquire()
        try:
            # No asyncio.timeout around it: the client bounds every step
            # (see from_url), and one more timer per call cost 5% of the
            # throughput of clients_interests.
            return await self.client.execute_command(command, *args)
        finally:
            self.slots.release()

    def _give_up(self, command, error):
        self.outages.failure(command, error)
        metrics.redis_error(self.name)
        raise StoreUnavailable("%s is unavailable" % self.name) from error

    async def ping(self):
        """True when Redis answers one PING within the timeouts."""
        try:
            await self.call("PING", retries=0)
        except StoreUnavailable:
            return False
        return True

    async def close(self):
        await self.client.aclose()


class LocalCache:
    """An in-process LRU tier in front of the Redis cache.

    A hot score is answered without a network round trip. Entries live at
    most `ttl_seconds` (and never past the TTL they were given); size 0
    turns the tier off.
    """

    def __init__(self, size, ttl_seconds, clock=time.monotonic):
        self.size = size
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.entries = collections.OrderedDict()  # key: (expires_at, value)

    def get(self, key):
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self.clock():
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return value

    def set(self, key, value, ttl_seconds=None):
        if not self.size:
            return
        ttl = self.ttl_seconds if ttl_seconds is None else min(
            ttl_seconds, self.ttl_seconds)
        self.entries[key] = (self.clock() + ttl, value)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


class CircuitBreaker:
    """Keeps calls off a dependency known to be down, and notices its return.

    After `failure_threshold` failed calls in a row the circuit opens and
    `allows()` answers False at once. While it is open a background task
    probes every `reset_timeout` seconds; the first probe that succeeds
    closes it. No caller ever waits on a probe.
    """

    def __init__(self, name, probe, failure_threshold, reset_timeout):
        self.name = name
        self.probe = probe
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.failures = 0
        self.probing = None  # the probe task, while the circuit is open

    @property
    def is_open(self):
        return self.probing is not None

    def allows(self):
        return self.probing is None

    def record_success(self):
        self.failures = 0

    def record_failure(self):
        self.failures += 1
        if self.probing is None and self.failures >= self.failure_threshold:
            logger.warning("%s: circuit open after %d failed calls; probing"
                           " every %.1fs", self.name, self.failures,
                           self.reset_timeout)
            metrics.set_circuit_open(True)
            # A fresh context: the probe belongs to no request.
            self.probing = asyncio.get_running_loop().create_task(
                self._probe_until_up(), context=contextvars.Context())

    async def _probe_until_up(self):
        while True:
            await asyncio.sleep(self.reset_timeout)
            try:
                if await self.probe():
                    break
            except Exception:
                logger.exception("%s: the probe failed", self.name)
        self.failures = 0
        self.probing = None
        metrics.set_circuit_open(False)
        logger.warning("%s: circuit closed, calls resume", self.name)

    async def close(self):
        if self.probing is not None:
            self.probing.cancel()
            await asyncio.gather(self.probing, return_exceptions=True)
            self.probing = None
            metrics.set_circuit_open(False)


class Store:
    """The store of SPEC 4: `get` may fail loudly, the cache never fails."""

    def __init__(self, store, cache, cache_settings):
        """`store`, `cache`: `RedisEndpoint`s; `cache_settings`: the
        circuit breaker's and the local tier's keys of `[cache]`."""
        self.store = store
        self.cache = cache
        self.breaker = CircuitBreaker(
            "cache", cache.ping, cache_settings.failure_threshold,
            cache_settings.reset_timeout)
        self.local = LocalCache(cache_settings.local_size,
                                cache_settings.local_ttl)

    @classmethod
    def from_settings(cls, settings):
        return cls(
            RedisEndpoint.from_url("store", settings.store.url,
                                   settings.store),
            RedisEndpoint.from_url("cache", settings.cache_url,
                                   settings.cache),
            settings.cache)

    async def get(self, key):
        """The value at `key` or None; raises `StoreUnavailable`."""
        return await self.store.call("GET", key)

    async def get_many(self, keys):
        """Values at `keys` (None where missing), in one round trip."""
        if not keys:
            return []
        return await self.store.call("MGET", *keys)

    async def set_many(self, mapping):
        """Write every key of `mapping` at once (MSET is atomic)."""
        if mapping:
            args = [part for item in mapping.items() for part in item]
            await self.store.call("MSET", *args)

    async def cache_get(self, key):
        """The cached value at `key` (a string), or None on a miss or any
        failure. The local tier answers first."""
        value = self.local.get(key)
        if value is None:
            value = await self._cache_call("GET", key)
            if value is not None:
                self.local.set(key, value)
        return value

    async def cache_set(self, key, value, ttl_seconds):
        """Cache `value` for `ttl_seconds`; failures are ignored."""
        self.local.set(key, str(value), ttl_seconds)
        await self._cache_call("SET", key, value, "EX", int(ttl_seconds))

    async def _cache_call(self, command, *args):
        if not self.breaker.allows():
            return None
        try:
            result = await self.cache.call(command, *args)
        except StoreUnavailable:
            self.breaker.record_failure()
            return None
        self.breaker.record_success()
        return result

    async def health(self):
        """{"store": "up"|"down", "cache": "up"|"down"}, bounded by the
        timeouts."""
        store_up, cache_up = await asyncio.gather(
            self.store.ping(),
            self._cache_up(),
        )
        return {"store": _up(store_up), "cache": _up(cache_up)}

    async def _cache_up(self):
        return not self.breaker.is_open and await self.cache.ping()

    async def close(self):
        await self.breaker.close()
        await asyncio.gather(self.store.close(), self.cache.close())


def _up(flag):
    return "up" if flag else "down"

"""The one `Store` the rest of the service sees (docs/operations.md)."""
import asyncio
import functools
import logging
import time

from scoring_api.errors import Overloaded, StoreRefused, StoreUnavailable
from scoring_api.store.breaker import CircuitBreaker
from scoring_api.store.endpoint import (OtherType, RedisEndpoint,
                                        never_starved)
from scoring_api.store.local import LocalCache

logger = logging.getLogger(__name__)

# Types a key read as missing may have without being missing: a value
# written between the two round trips of get_many.
NOT_ANOTHER_TYPE = ("none", "string")


class Store:
    """`get` may fail loudly, the cache never fails (docs/operations.md).

    Values are bytes as Redis holds them (the callers decode them), None
    for a missing key, and `OtherType` for a key of another Redis type.
    """

    def __init__(self, store, cache, cache_settings, clock=time.monotonic):
        """`store`, `cache`: `RedisEndpoint`s; `cache_settings`: the
        circuit breaker's and the local tier's keys of `[cache]`."""
        self.store = store
        self.cache = cache
        self.clock = clock
        # One PING per probe: a probe that fails on a stale connection
        # only waits for the next one.
        self.breaker = CircuitBreaker(
            "cache", functools.partial(cache.ping, retry_broken=False),
            cache_settings.failure_threshold, cache_settings.reset_timeout)
        # A score read back from Redis is kept locally no longer than
        # one just computed: never past the cache's ttl.
        self.local = LocalCache(
            cache_settings.local_size,
            min(cache_settings.local_ttl, cache_settings.ttl), clock)
        # A cache that refuses writes (out of memory, read-only, MISCONF)
        # still serves reads; writes pause for this long after a refusal.
        self.write_pause = cache_settings.reset_timeout
        self.writes_resume_at = None

    @classmethod
    def from_settings(cls, settings, is_starved=never_starved):
        """The store and cache of `settings`, in their modes. Logs (INFO)
        which Redis each one uses, passwords masked. `is_starved()`: true
        while the process's own event loop is late (see RedisEndpoint)."""
        cache_settings = settings.cache_redis
        store = cls(
            RedisEndpoint.from_settings("store", settings.store, is_starved),
            RedisEndpoint.from_settings("cache", cache_settings, is_starved),
            cache_settings)
        logger.info("%s", store.describe())
        return store

    def describe(self):
        """One line naming the Redis of the store and of the cache."""
        return "store: %s; cache: %s" % (self.store.description,
                                         self.cache.description)

    async def get(self, key):
        """The value at `key` or None; raises `StoreUnavailable`."""
        return await self.store.call("GET", key)

    async def get_many(self, keys):
        """Values at `keys`, in one round trip (one per node in a cluster).

        MGET answers nil for a missing key and for a key of another type
        alike: only when some came back nil, a second round trip counts
        them (EXISTS), and a third, only if some exist, asks their types.
        """
        if not keys:
            return []
        values = await self.store.get_many(keys)
        if None not in values:  # every key held a string: the usual case
            return values
        nil_keys = [key for key, value in zip(keys, values) if value is None]
        if await self.store.count_existing(nil_keys):
            types = dict(zip(nil_keys, await self.store.types(nil_keys)))
            values = [
                OtherType(types[key])
                if value is None and types[key] not in NOT_ANOTHER_TYPE
                else value
                for key, value in zip(keys, values)]
        return values

    async def set_many(self, mapping):
        """Write every key of `mapping` (MSET: atomic in one Redis, per
        slot in a cluster)."""
        if mapping:
            await self.store.set_many(mapping)

    async def cache_get(self, key):
        """The cached value at `key`, or None on a miss or any failure.
        The local tier answers first."""
        value = self.local.get(key)
        if value is None:
            value = await self._cache_call("GET", key)
            if value is not None and not isinstance(value, OtherType):
                self.local.set(key, value)
        return value

    async def cache_set(self, key, value, ttl_seconds):
        """Cache `value` for `ttl_seconds`; failures are ignored."""
        self.local.set(key, value, ttl_seconds)
        if self._writes_paused():
            return
        await self._cache_call("SET", key, value, "EX", int(ttl_seconds))

    def _writes_paused(self):
        if self.writes_resume_at is not None:
            if self.clock() < self.writes_resume_at:
                return True
            self.writes_resume_at = None
        return False

    async def _cache_call(self, command, *args):
        if not self.breaker.allows():
            return None
        try:
            result = await self.cache.call(command, *args)
        except StoreRefused:
            if command == "SET":
                self.writes_resume_at = self.clock() + self.write_pause
            else:
                self.breaker.record_failure()
            return None
        except StoreUnavailable:
            self.breaker.record_failure()
            return None
        except Overloaded:
            return None  # this process was late, not the cache: no failure
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

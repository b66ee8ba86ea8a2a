"""Whether the cache can take the memory of what must stay (docs/
operations.md, "The cache and its memory").

Cached scores carry a TTL; interests and quota counters carry none. So a
Redis with a `maxmemory` and a `volatile-*` policy makes room by evicting
cached scores only, even when the cache shares the store's Redis. At
start-up the service asks the cache's Redis, and warns once when it is
set up otherwise.
"""
import asyncio
import logging

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from scoring_api.store.endpoint import RedisEndpoint
from scoring_api.store.outages import reason

logger = logging.getLogger(__name__)

# The policies that evict only keys with a TTL.
TTL_ONLY_POLICIES = frozenset({"volatile-lru", "volatile-lfu",
                               "volatile-random", "volatile-ttl"})
ADVICE = ("give it a maxmemory (512mb, say) and maxmemory-policy"
          " volatile-lru, so that only cached scores (which carry a TTL) are"
          " ever evicted")


def eviction_risk(maxmemory, policy, shared):
    """What cached scores can do to a Redis of `maxmemory` bytes (0: no
    bound) and `policy`, or None when only they can ever be evicted.
    `shared`: the cache shares the store's Redis."""
    if maxmemory == 0:
        return ("has no maxmemory: cached scores grow until they take the"
                " memory the interests need" if shared else
                "has no maxmemory: cached scores grow until the host runs"
                " out of memory")
    if policy == "noeviction":
        return ("evicts nothing (maxmemory-policy noeviction): once cached"
                " scores fill it, the loader's writes of interests are"
                " refused" if shared else
                "evicts nothing (maxmemory-policy noeviction): once full, it"
                " refuses new scores and quota counters")
    if policy not in TTL_ONLY_POLICIES:
        return ("evicts keys without a TTL (maxmemory-policy %s): %s may be"
                " evicted" % (policy, "interests and quota counters"
                              if shared else "quota counters"))
    return None


async def check_cache_eviction(settings):
    """Ask the cache's Redis of `settings` how it evicts (CONFIG GET, one
    attempt within the cache's bounds) and warn once, naming what to
    change, when cached scores could take what must stay, or when it
    could not be asked. Returns the warning, None when all is well."""
    endpoint = RedisEndpoint.from_settings("cache", settings.cache_redis)
    try:
        return await check_eviction(endpoint, settings.cache_shares_store)
    finally:
        await endpoint.close()


async def check_eviction(endpoint, shared):
    """`check_cache_eviction` for the Redis of `endpoint`."""
    where = "cache: the %s%s" % (
        endpoint.description, " (the store's too)" if shared else "")
    try:
        async with asyncio.timeout(endpoint.attempt_timeout):
            configs = await _memory_configs(endpoint.client)
    except ResponseError as error:
        warning = ("%s could not be checked: CONFIG GET is refused (%s); make"
                   " sure to %s" % (where, reason(error), ADVICE))
    except (RedisError, OSError) as error:  # TimeoutError too
        warning = ("%s could not be checked: it did not answer CONFIG GET"
                   " (%s); make sure to %s" % (where, reason(error), ADVICE))
    else:
        risks = sorted({eviction_risk(int(config["maxmemory"]),
                                      config["maxmemory-policy"], shared)
                        for config in configs} - {None})
        if not risks:
            return None
        warning = "%s %s; %s" % (where, " and ".join(risks), ADVICE)
    logger.warning("%s", warning)
    return warning


async def _memory_configs(client):
    """[{"maxmemory": ..., "maxmemory-policy": ...}] of each Redis the
    client writes to: one, or each master of a cluster."""
    names = ("maxmemory", "maxmemory-policy")
    if isinstance(client, RedisCluster):
        found = await client.config_get(
            *names, target_nodes=RedisCluster.PRIMARIES)
        # One dict per master, or the only master's own.
        return (list(found.values()) if found and all(
            isinstance(config, dict) for config in found.values())
            else [found])
    return [await client.config_get(*names)]

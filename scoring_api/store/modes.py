"""Building the redis-py client of one Redis role, per mode
(docs/operations.md, "Redis modes").

Every client gets its bounds from config and retries nothing itself: the
endpoint counts the attempts. Values are read as bytes (no
decode_responses): bytes that are not UTF-8 must not cost a connection.
"""
import dataclasses
import urllib.parse

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from scoring_api.config import MASK, mask_url

DEFAULT_PORT = 6379


@dataclasses.dataclass(frozen=True)
class ClusterAddress:
    """What a cluster `url` names: seed nodes and how to reach them."""

    seeds: tuple  # of (host, port)
    username: str = None
    password: str = None
    ssl: bool = False


def no_retry():
    """redis-py retries nothing; RedisEndpoint counts every attempt."""
    return Retry(NoBackoff(), 0)


def bounds(settings):
    """The keyword arguments of every client and connection: its
    timeouts, no retries of its own, and a handshake of no round trip
    beyond a configured AUTH and SELECT (redis-py 8.1's default is four:
    HELLO 3, CLIENT MAINT_NOTIFICATIONS and two CLIENT SETINFO).

    Maintenance notifications off also keeps the pool's check of a pooled
    connection before reuse, which redis-py 8.1 skips while they are on:
    a connection Redis has closed is replaced, not handed out.

    No socket_timeout: the endpoint bounds each attempt as a whole
    (connect_timeout + timeout), sends and reads included. redis-py would
    otherwise run every send as a task under asyncio.wait_for and every
    read under a timeout of its own: 5 % of an interests call."""
    return {"socket_connect_timeout": settings.connect_timeout,
            "socket_timeout": None,
            "retry": no_retry(),
            "protocol": 2,  # RESP2: no HELLO
            "driver_info": None,  # no CLIENT SETINFO
            "maint_notifications_config": MaintNotificationsConfig(
                enabled=False)}


def build_client(settings):
    """(client, [closables]) for `settings.mode`: standalone, sentinel or
    cluster. The client connects lazily, on its first call."""
    if settings.mode == "sentinel":
        return _sentinel_client(settings)
    if settings.mode == "cluster":
        return _cluster_client(settings), []
    return aioredis.Redis.from_url(settings.url, **bounds(settings)), []


def _sentinel_client(settings):
    sentinel = Sentinel(
        list(settings.sentinels),
        # Asking a sentinel for the master is bounded like any call.
        sentinel_kwargs=bounds(settings),
        **bounds(settings))
    master = sentinel.master_for(
        settings.service_name, db=settings.db,
        password=settings.password or None)
    return master, [sentinel]


def _cluster_client(settings):
    address = parse_cluster_url(settings.url)
    # retry=no_retry() (in bounds) also stops the cluster client's own
    # retries on a dead node or CLUSTERDOWN, which would multiply ours;
    # MOVED and ASK are followed all the same.
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port)
                       for host, port in address.seeds],
        username=address.username, password=address.password,
        ssl=address.ssl, max_connections=settings.max_connections,
        **bounds(settings))


def parse_cluster_url(url):
    """`ClusterAddress` of redis://[user:password@]host:port[,host:port...]
    (rediss:// for TLS)."""
    scheme, _, rest = url.partition("://")
    rest = rest.split("/", 1)[0]
    userinfo, _, hosts = rest.rpartition("@")
    username, _, password = userinfo.partition(":")
    seeds = [_host_port(part.strip()) for part in hosts.split(",")
             if part.strip()]
    if not seeds:
        raise ValueError("a cluster url names no seed node: %s"
                         % mask_url(url))
    return ClusterAddress(
        tuple(seeds), urllib.parse.unquote(username) or None,
        urllib.parse.unquote(password) or None, scheme == "rediss")


def _host_port(text):
    """(host, port) of host:port, [v6]:port or a bare host."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.partition(":")
    return urllib.parse.unquote(host), int(port) if port else DEFAULT_PORT


def describe(settings):
    """One line naming the Redis of `settings`, its password masked."""
    if settings.mode == "sentinel":
        return "sentinel master %r via %s, db %d%s" % (
            settings.service_name,
            ",".join("%s:%d" % node for node in settings.sentinels),
            settings.db, ", password %s" % MASK if settings.password else "")
    return "%s %s" % (settings.mode, mask_url(settings.url))

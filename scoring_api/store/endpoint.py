"""One Redis role (the store or the cache): its client, its bounds, its
counted retries and its outage log, in every mode."""
import asyncio

from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ClusterError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scoring_api import metrics
from scoring_api.errors import StoreRefused, StoreUnavailable
from scoring_api.store import modes
from scoring_api.store.outages import OutageLog

# Worth another attempt: the connection or the server may come back.
# (redis-py's TimeoutError is not the built-in one; OSError covers both.)
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# A cluster between two layouts (a failover, slots moving) answers these;
# the next attempt, on the layout learned again, succeeds.
CLUSTER_TRANSIENT_ERRORS = TRANSIENT_ERRORS + (
    ClusterError, TryAgainError, RedisClusterException)
# What redis-py 8.1.0's asyncio client lets out, instead of a
# ConnectionError, when a connection is closed under a command (another
# task's disconnect, a cluster dropping a node's connections in a
# failover, a peer reset on Python 3.12+): redis/redis-py#4287, fixed after
# 8.1.0 by redis/redis-py#4288. A broken connection all the same. The one
# place the service leans on this; tests/unit/test_endpoint.py's
# RedisPyCanaryTest fails once redis-py raises ConnectionError itself.
TORN_DOWN_ERRORS = (AttributeError, TypeError)
# A connection that broke (a pooled one to a Redis since restarted): one
# more attempt on a new connection tells whether Redis is up. Not a
# timeout, and not a sentinel that could not name the master (what
# redis-py raises when the sentinels timed out): those would only wait
# once more.
BROKEN_CONNECTION_ERRORS = (RedisConnectionError, ConnectionError)
NOT_BROKEN_ERRORS = (RedisTimeoutError, TimeoutError, MasterNotFoundError)
WRONGTYPE = "WRONGTYPE"


def is_broken_connection(error):
    """True for a connection that broke, not one that timed out."""
    return (isinstance(error, BROKEN_CONNECTION_ERRORS)
            and not isinstance(error, NOT_BROKEN_ERRORS))


def any_error(error):
    """Every transient failure is worth another attempt."""
    return True


class OtherType:
    """What a read finds at a key of another Redis type (a set, a hash)."""

    def __init__(self, type_name=None):
        self.type_name = type_name

    def __repr__(self):
        return "a Redis %s" % (self.type_name or "value of another type")


class RedisEndpoint:
    """One Redis role: a client and its bounds.

    Every call is bounded: waiting for one of the `max_connections`
    slots by `connect_timeout`; each attempt as a whole (connecting, the
    handshake, asking a sentinel or learning a cluster's layout, sending
    and reading) by `connect_timeout + timeout`, its connecting also by
    `connect_timeout`. The number of attempts is bounded by `retries`,
    the pauses between them by `backoff_max`.
    """

    def __init__(self, name, client, settings, backoff=None,
                 mode="standalone", closables=()):
        self.name = name
        self.client = client
        self.cluster = mode == "cluster"
        self.closables = list(closables)
        # At most max_connections calls at once, so at most that many
        # connections (per node in a cluster); a call waits for a slot at
        # most connect_timeout. (redis-py's BlockingConnectionPool does the
        # same at 5% of the throughput of clients_interests.)
        self.slots = asyncio.Semaphore(settings.max_connections)
        self.slot_timeout = settings.connect_timeout
        self.attempt_timeout = settings.connect_timeout + settings.timeout
        # Set when a cluster call failed: the next attempt learns the
        # layout first (a failed pipeline does not make redis-py 8.1 do it).
        self.layout_stale = False
        self.retries = settings.retries
        self.transient = (CLUSTER_TRANSIENT_ERRORS if self.cluster
                          else TRANSIENT_ERRORS)
        self.backoff = backoff or EqualJitterBackoff(
            cap=settings.backoff_max, base=settings.backoff)
        self.outages = OutageLog(name)
        self.description = "%s Redis" % mode  # from_settings: its address

    @classmethod
    def from_settings(cls, name, settings):
        """An endpoint for `settings.mode`; it connects on its first
        call."""
        client, closables = modes.build_client(settings)
        endpoint = cls(name, client, settings, mode=settings.mode,
                       closables=closables)
        endpoint.description = modes.describe(settings)
        return endpoint

    async def call(self, command, *args, retries=None):
        """Run one command; retry transient failures, then raise
        `StoreUnavailable`."""
        return await self.run(command, self._command, command, *args,
                              retries=retries)

    async def run(self, label, operation, *args, retries=None,
                  retry_on=any_error):
        """Await `operation(*args)`, retrying transient failures (those
        `retry_on(error)` is true of) up to `retries` times with backoff.

        Raises `StoreUnavailable`, or `StoreRefused` when Redis answered
        with an error (out of memory, read-only, ...). A key of another
        type (WRONGTYPE) is data, not a failure: it reads as `OtherType`.
        """
        retries = self.retries if retries is None else retries
        failures = 0
        while True:
            try:
                result = await self._attempt(operation, args)
            except self.transient as error:
                failures += 1
                self.layout_stale = self.cluster
                if failures > retries or not retry_on(error):
                    self._give_up(label, error, StoreUnavailable)
                await asyncio.sleep(self.backoff.compute(failures))
            except ResponseError as error:
                if str(error).startswith(WRONGTYPE):
                    self.outages.success()
                    return OtherType()
                self._give_up(label, error, StoreRefused)
            except RedisError as error:
                self._give_up(label, error, StoreUnavailable)
            else:
                self.outages.success()
                return result

    async def _attempt(self, operation, args):
        if self.slots.locked():
            async with asyncio.timeout(self.slot_timeout):
                await self.slots.acquire()
        else:
            await self.slots.acquire()
        try:
            async with asyncio.timeout(self.attempt_timeout):
                if self.layout_stale:
                    await self._learn_layout()
                return await operation(*args)
        except TORN_DOWN_ERRORS as error:
            raise RedisConnectionError(
                "connection torn down: %s" % error) from error
        finally:
            self.slots.release()

    def _command(self, *args):
        # Looked up at each call, so a test can wrap execute_command.
        return self.client.execute_command(*args)

    async def _learn_layout(self):
        # A cluster pipeline that failed does not make redis-py 8.1 learn
        # the layout again (a single command does): without this, reads
        # would go on to a dead master after its replica took over.
        self.layout_stale = False
        await self.client.nodes_manager.initialize()

    def _give_up(self, command, error, kind):
        self.outages.failure(command, error)
        metrics.redis_error(self.name)
        raise kind("%s is unavailable" % self.name) from error

    async def get_many(self, keys):
        """Values at `keys` (None where missing). One MGET; in a cluster,
        one MGET per slot, pipelined per node, the nodes at once."""
        if self.cluster:
            return await self.run("MGET", self.client.mget_nonatomic, keys)
        return await self.call("MGET", *keys)

    async def set_many(self, mapping):
        """MSET of `mapping`: whole in one Redis, whole per slot in a
        cluster."""
        if self.cluster:
            await self.run("MSET", self.client.mset_nonatomic, mapping)
        else:
            await self.call(
                "MSET", *[part for item in mapping.items() for part in item])

    async def count_existing(self, keys):
        """How many of `keys` exist (of any type)."""
        if self.cluster:
            return await self.run("EXISTS", self.client.exists, *keys)
        return await self.call("EXISTS", *keys)

    async def types(self, keys):
        """The Redis type of each of `keys` ("none" when missing), in one
        pipeline (per node, in a cluster)."""
        types = await self.run("TYPE", self._pipelined, "TYPE", keys)
        return [value.decode() if isinstance(value, bytes) else value
                for value in types]

    async def _pipelined(self, command, keys):
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.execute_command(command, key)
        return await pipeline.execute()

    async def ping(self, retry_broken=True):
        """True when Redis answers a PING within the timeouts. A broken
        connection (one pooled before a restart) is tried once more, on a
        new one, unless `retry_broken` is False."""
        try:
            await self.run("PING", self._command, "PING",
                           retries=1 if retry_broken else 0,
                           retry_on=is_broken_connection)
        except StoreUnavailable:
            return False
        return True

    async def close(self):
        await self.client.aclose()
        for closable in self.closables:
            await closable.aclose()

"""One Redis role (the store or the cache): its client, its bounds, its
counted retries and its outage log, in every mode (docs/operations.md)."""
import asyncio

from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ClusterError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scoring_api import metrics
from scoring_api.errors import Overloaded, StoreRefused, StoreUnavailable
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
# An attempt that ran out of time: its own bound, or connecting's.
TIMED_OUT_ERRORS = (RedisTimeoutError, TimeoutError)
WRONGTYPE = "WRONGTYPE"


def is_broken_connection(error):
    """True for a connection that broke, not one that timed out."""
    return (isinstance(error, BROKEN_CONNECTION_ERRORS)
            and not isinstance(error, NOT_BROKEN_ERRORS))


def any_error(error):
    """Every transient failure is worth another attempt."""
    return True


def never_starved():
    """The default `is_starved`: no timeout is ever the process's own."""
    return False


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

    A call that could not wait for a slot, or whose attempt timed out
    while `is_starved()` says the process itself was late, raises
    `Overloaded`: the process's congestion, not a Redis failure (no
    outage line, no Redis error metric).
    """

    def __init__(self, name, client, settings, backoff=None,
                 mode="standalone", closables=(), is_starved=never_starved):
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
        self.is_starved = is_starved
        # Set when a cluster call failed: the next attempt learns the
        # layout first (a failed pipeline does not make redis-py 8.1 do it).
        self.layout_stale = False
        self.transient = (CLUSTER_TRANSIENT_ERRORS if self.cluster
                          else TRANSIENT_ERRORS)
        self.backoff = backoff or EqualJitterBackoff(
            cap=settings.backoff_max, base=settings.backoff)
        self.retry = self._retry(settings.retries)
        self.outages = OutageLog(name)
        self.description = "%s Redis" % mode  # from_settings: its address

    def _retry(self, retries):
        # redis-py's Retry counts the attempts and pauses between them.
        # What it has no place for is done around it: each attempt bounded
        # as a whole (_attempt), a cluster's layout learned again (its
        # failure callback), WRONGTYPE read as data, one outage line and
        # one metric per failed call, not per attempt (run). Each call
        # backs off on its own: keeping concurrent calls off a dead cache
        # is the circuit breaker's job, not a shared backoff's.
        return Retry(self.backoff, retries, supported_errors=self.transient)

    @classmethod
    def from_settings(cls, name, settings, is_starved=never_starved):
        """An endpoint for `settings.mode`; it connects on its first
        call."""
        client, closables = modes.build_client(settings)
        endpoint = cls(name, client, settings, mode=settings.mode,
                       closables=closables, is_starved=is_starved)
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
        with an error (out of memory, read-only, ...), or `Overloaded`
        (see the class). A key of another type (WRONGTYPE) is data, not a
        failure: it reads as `OtherType`.
        """
        retry = self.retry if retries is None else self._retry(retries)
        try:
            result = await retry.call_with_retry(
                lambda: self._attempt(operation, args), self._attempt_failed,
                is_retryable=retry_on)
        except self.transient as error:
            self.layout_stale = self.cluster
            self._give_up(label, error, StoreUnavailable)
        except ResponseError as error:
            if not str(error).startswith(WRONGTYPE):
                self._give_up(label, error, StoreRefused)
            result = OtherType()
        except RedisError as error:
            self._give_up(label, error, StoreUnavailable)
        self.outages.success()
        return result

    async def _attempt_failed(self, error):
        self.layout_stale = self.cluster

    async def _attempt(self, operation, args):
        await self._take_slot()
        try:
            async with asyncio.timeout(self.attempt_timeout):
                if self.layout_stale:
                    await self._learn_layout()
                return await operation(*args)
        except TIMED_OUT_ERRORS as error:
            if self.is_starved():
                raise Overloaded() from error
            raise
        except TORN_DOWN_ERRORS as error:
            raise RedisConnectionError(
                "connection torn down: %s" % error) from error
        finally:
            self.slots.release()

    async def _take_slot(self):
        """One of the max_connections slots, or `Overloaded` when none
        frees up within `slot_timeout`: calls queued here wait on this
        process, not on Redis."""
        if not self.slots.locked():  # the usual case: no timer to arm
            await self.slots.acquire()
            return
        try:
            async with asyncio.timeout(self.slot_timeout):
                await self.slots.acquire()
        except TimeoutError as error:
            raise Overloaded() from error

    def _command(self, *args):
        # Looked up at each call, so a test can wrap execute_command.
        return self.client.execute_command(*args)

    async def _learn_layout(self):
        # A cluster pipeline that failed does not make redis-py 8.1 learn
        # the layout again (a single command does): without this, reads
        # would go on to a dead master after its replica took over.
        # RedisCluster has no public call for it (its initialize() runs
        # once; aclose() would cut the calls of other tasks): the
        # undocumented `nodes_manager.initialize()`, read from redis-py
        # 8.1.0, is the one place the service uses it. Guarded by
        # tests/unit/test_endpoint.py's ClusterLayoutCanaryTest and
        # tests/integration/test_cluster.py's ClusterLayoutCanaryTest.
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
        """True when Redis answers a PING within the timeouts (False too
        when the process is too overloaded to tell). A broken
        connection (one pooled before a restart) is tried once more, on a
        new one, unless `retry_broken` is False."""
        try:
            await self.run("PING", self._command, "PING",
                           retries=1 if retry_broken else 0,
                           retry_on=is_broken_connection)
        except (StoreUnavailable, Overloaded):
            # Overloaded: the process too late to tell (no outage line).
            return False
        return True

    async def close(self):
        await self.client.aclose()
        for closable in self.closables:
            await closable.aclose()

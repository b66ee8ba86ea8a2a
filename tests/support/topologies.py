"""nose2 layers for the Redis modes (docs/operations.md, "Redis modes"):
Sentinel and Cluster.

`SentinelLayer` runs a master, a replica and three sentinels;
`ClusterLayer` runs three masters and three replicas. Each starts its
processes on free loopback ports under temp dirs once for its tests,
before each test brings back what the last one broke (a killed or paused
process) and waits until the topology is whole again, then empties it;
it stops everything at the end, also on an interrupted run (atexit).

A failover moves the master: tests ask the topology (`master()`), which
asks the sentinels or the cluster, rather than remember a port.

Whether these tests can run is decided by the test classes
(`requires_sentinel`, `requires_cluster`), as for `RedisLayer`: a
layer's setUp that raises would fail its whole suite.
"""
import atexit
import random
import shutil
import socket
import subprocess
import time

import redis

from tests.support.layers import RedisServer, free_port, skip_or_fail

SERVICE_NAME = "scoring"
# Short, so a failover takes seconds: a master that does not answer for
# DOWN_AFTER_MS is down; a failover attempt that has not finished in
# FAILOVER_TIMEOUT_MS is abandoned, and a new one may start 2x that
# after the last one started.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2000
CLUSTER_NODE_TIMEOUT_MS = 1000
# A replica that must sync must not wait for others to join the transfer.
REPLICATION_ARGS = ("--repl-diskless-sync-delay", "0")
WHOLE_TIMEOUT_SECONDS = 30.0
START_ATTEMPTS = 3
CLUSTER_BUS_OFFSET = 10000  # Redis puts a node's bus on its port + 10000


def sentinel_failover_bound_seconds(slack=3.0):
    """How long a Sentinel failover may take, from the kill to a new
    master the sentinels name: the master is seen down after
    down-after-milliseconds; an election that splits the votes is retried
    2 x failover-timeout after the first; plus slack for the vote, the
    promotion and a loaded machine."""
    return (DOWN_AFTER_MS + 2 * FAILOVER_TIMEOUT_MS) / 1000 + slack


def cluster_failover_bound_seconds(slack=3.0):
    """How long a Cluster failover may take, from the kill to its replica
    serving the slots: node-timeout until the master is suspected, about
    as long again until a majority marks it failed, the replica's delay
    (500 ms plus up to 500 ms at random), an election retried after
    2 x node-timeout (at least 2 s), plus slack."""
    timeout = CLUSTER_NODE_TIMEOUT_MS / 1000
    return 2 * timeout + 1.0 + max(2 * timeout, 2.0) + slack


class SentinelServer(RedisServer):
    """A sentinel watching the master at `master_port`."""

    def __init__(self, port, master_port):
        super().__init__(port)
        self.config = "%s/sentinel.conf" % self.workdir
        with open(self.config, "w") as config:  # sentinels rewrite it
            config.write("\n".join([
                "port %d" % port,
                "bind 127.0.0.1",
                "dir %s" % self.workdir,
                "logfile %s/redis.log" % self.workdir,
                "sentinel monitor %s 127.0.0.1 %d 2" % (
                    SERVICE_NAME, master_port),
                "sentinel down-after-milliseconds %s %d" % (
                    SERVICE_NAME, DOWN_AFTER_MS),
                "sentinel failover-timeout %s %d" % (
                    SERVICE_NAME, FAILOVER_TIMEOUT_MS),
                "sentinel parallel-syncs %s 1" % SERVICE_NAME, ""]))

    def command(self):
        # redis-sentinel is redis-server under another name, and not
        # always installed.
        return ["redis-server", self.config, "--sentinel"]


class SentinelSet:
    """A master, a replica and three sentinels (quorum 2)."""

    def __init__(self):
        first, second = free_port(), free_port()
        self.data = [RedisServer(first, REPLICATION_ARGS),
                     RedisServer(second, REPLICATION_ARGS + _replica_of(
                         first))]
        self.sentinels = [SentinelServer(free_port(), first)
                          for _ in range(3)]
        self.master_killed_at = None

    @property
    def addresses(self):
        """The sentinels as (host, port), as [store] sentinels takes
        them."""
        return tuple(("127.0.0.1", s.port) for s in self.sentinels)

    @property
    def setting(self):
        """The sentinels as config.ini's `sentinels` value."""
        return ",".join("%s:%d" % address for address in self.addresses)

    def start(self):
        for server in self.data + self.sentinels:
            server.start()
        self.wait_until_whole()

    def stop(self):
        for server in self.sentinels + self.data:
            server.stop()

    def master(self):
        """The data server the sentinels name as master (asks one)."""
        return self._server(self._named_master(self.sentinels[0]))

    def replica(self):
        master = self.master()
        return next(s for s in self.data if s is not master)

    def kill_master(self):
        """SIGKILL the master, as in a crash; returns it."""
        master = self.master()
        master.kill()
        self.master_killed_at = time.monotonic()
        return master

    def flush(self):
        with self.master().client() as client:
            client.flushall()
            client.execute_command("WAIT", 1, 1000)
        for server in self.data:
            with server.client() as client:
                client.config_resetstat()

    def wait_until_whole(self, timeout=WHOLE_TIMEOUT_SECONDS):
        """Undo the faults a test left, and wait until every sentinel
        names one running master with a replica in sync and could fail
        it over again."""
        deadline = time.monotonic() + timeout
        for server in self.data + self.sentinels:
            if server.running:
                server.resume()
        _wait_until(self._one_master_named, deadline,
                    "the sentinels to agree on a running master")
        master = self.master()
        for server in self.data:
            if not server.running:
                # Back at once as a replica of the new master (a sentinel
                # would convert it only seconds after it comes back).
                server.args = list(REPLICATION_ARGS + _replica_of(
                    master.port))
                server.start()
        _wait_until(self._whole, deadline, "a replica in sync, known to"
                    " every sentinel")
        if self.master_killed_at is not None:
            # A sentinel starts no new failover of the same master before
            # 2 x failover-timeout after the last one.
            ready_at = self.master_killed_at + (
                DOWN_AFTER_MS + 2 * FAILOVER_TIMEOUT_MS) / 1000
            time.sleep(max(0.0, min(ready_at, deadline) - time.monotonic()))
            self.master_killed_at = None

    def _named_master(self, sentinel):
        with sentinel.client(timeout=1) as client:
            host, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE_NAME)
        return int(port)

    def _server(self, port):
        return next(s for s in self.data if s.port == port)

    def _one_master_named(self):
        ports = {self._named_master(s) for s in self.sentinels}
        if len(ports) != 1:
            return False
        master = self._server(ports.pop())
        return master.running and _info(master, "replication")[
            "role"] == "master"

    def _whole(self):
        master, replica = self.master(), self.replica()
        link = _info(replica, "replication")
        if (link.get("master_port") != master.port
                or link.get("master_link_status") != "up"):
            return False
        for sentinel in self.sentinels:
            with sentinel.client(timeout=1) as client:
                state = client.sentinel_master(SERVICE_NAME)
                replicas = client.sentinel_slaves(SERVICE_NAME)
            if (state["port"] != master.port or state["flags"] != "master"
                    or state["num-other-sentinels"] != 2):
                return False
            if not any(r["port"] == replica.port and r["flags"] == "slave"
                       and r["master-link-status"] == "ok"
                       for r in replicas):
                return False
        return True


class ClusterNode(RedisServer):
    def __init__(self, port):
        super().__init__(port, REPLICATION_ARGS + (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # in its own dir
            "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS)))

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port


class RedisClusterSet:
    """A Redis Cluster of three masters, each with one replica."""

    def __init__(self):
        self.nodes = [ClusterNode(free_cluster_port()) for _ in range(6)]

    @property
    def url(self):
        """Every node as a seed, as [store] url takes them."""
        return "redis://" + ",".join(node.address for node in self.nodes)

    def start(self):
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(node.address for node in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, timeout=WHOLE_TIMEOUT_SECONDS,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_until_whole()

    def stop(self):
        for node in self.nodes:
            node.stop()

    def masters(self):
        """The nodes that serve slots now, as one live node sees it."""
        return [self._node(port) for port, flags in self._view()
                if "master" in flags and "fail" not in flags]

    def master_of(self, key):
        """The node that serves `key` now."""
        with self._live().client() as client:
            slot = client.execute_command("CLUSTER KEYSLOT", key)
            for start, end, (host, port, *_), *_ in client.execute_command(
                    "CLUSTER SLOTS"):
                if start <= slot <= end:
                    return self._node(port)
        raise LookupError("no node serves slot %d" % slot)

    def flush(self):
        for node in self.masters():
            with node.client() as client:
                client.flushall()
                client.execute_command("WAIT", 1, 1000)
        for node in self.nodes:
            with node.client() as client:
                client.config_resetstat()

    def wait_until_whole(self, timeout=WHOLE_TIMEOUT_SECONDS):
        """Undo the faults a test left (a killed node comes back on its
        port with its nodes.conf and rejoins, as a replica if its slots
        moved), and wait until every node sees three masters each with a
        replica in sync, and answers with cluster_state:ok."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.running:
                node.resume()
            else:
                node.start()
        _wait_until(self._whole, deadline, "the cluster to be whole")

    def _whole(self):
        for node in self.nodes:
            if _info(node, "cluster", "CLUSTER INFO")[
                    "cluster_state"] != "ok":
                return False
            view = self._view(node)
            if (len(view) != len(self.nodes)
                    or any("fail" in flags for _, flags in view)
                    or sum("master" in flags for _, flags in view) != 3):
                return False
            link = _info(node, "replication")
            if link["role"] == "slave" and link[
                    "master_link_status"] != "up":
                return False
        return True

    def _view(self, node=None):
        """[(port, flags)] of every node, as `node` sees them."""
        with (node or self._live()).client() as client:
            lines = client.execute_command("CLUSTER NODES")
        if isinstance(lines, dict):  # redis-py parses it into a dict
            return [(int(address.split(":")[1].split("@")[0]),
                     set(state["flags"].split(",")))
                    for address, state in lines.items()]
        return [(int(line.split()[1].split(":")[1].split("@")[0]),
                 set(line.split()[2].split(",")))
                for line in lines.splitlines() if line.strip()]

    def _node(self, port):
        return next(node for node in self.nodes if node.port == port)

    def _live(self):
        return next(node for node in self.nodes if node.running)


class SentinelLayer:
    description = "a Redis master, a replica and three sentinels"
    needs = ("redis-server",)
    build = SentinelSet
    topology = None
    missing = None  # why there is none, when there is none
    broken = None  # why starting it failed

    # nose2 runs only the classmethods a layer defines itself.
    @classmethod
    def setUp(cls):
        _start(cls)

    @classmethod
    def tearDown(cls):
        _stop(cls)

    @classmethod
    def testSetUp(cls):
        _heal(cls)


class ClusterLayer:
    description = "a Redis Cluster of three masters and three replicas"
    needs = ("redis-server", "redis-cli")
    build = RedisClusterSet
    topology = None
    missing = None
    broken = None

    @classmethod
    def setUp(cls):
        _start(cls)

    @classmethod
    def tearDown(cls):
        _stop(cls)

    @classmethod
    def testSetUp(cls):
        _heal(cls)


def _start(layer):
    """Start `layer.build()` once for the layer's tests, or note in
    `layer.missing` or `layer.broken` why not (a layer's setUp that
    raised would fail its whole suite)."""
    absent = [name for name in layer.needs if shutil.which(name) is None]
    if absent:
        layer.missing = "%s not installed" % " and ".join(absent)
        return
    for _ in range(START_ATTEMPTS):
        topology = layer.build()
        atexit.register(topology.stop)  # also on an interrupted run
        try:
            topology.start()
        except (RuntimeError, OSError, subprocess.SubprocessError,
                redis.RedisError) as error:
            topology.stop()
            layer.broken = "%s did not start: %s" % (
                layer.description, _one_line(error))
            continue
        layer.topology, layer.broken = topology, None
        return


def _stop(layer):
    if layer.topology is not None:
        layer.topology.stop()
        layer.topology = None


def _heal(layer):
    """Before each test: whole again, and empty."""
    if layer.topology is not None:
        layer.topology.wait_until_whole()
        layer.topology.flush()


def requires_sentinel(test):
    """Skip (or, in CI, fail) `test` when there is no Sentinel set."""
    _requires(test, SentinelLayer)


def requires_cluster(test):
    """Skip (or, in CI, fail) `test` when there is no Redis Cluster."""
    _requires(test, ClusterLayer)


def _requires(test, layer):
    if layer.topology is not None:
        return
    if layer.broken:
        test.fail(layer.broken)  # installed but broken: never a skip
    skip_or_fail(test, "%s is needed for these tests: %s; install"
                 " redis-server and redis-cli (Debian: apt-get install"
                 " redis-server)" % (layer.description, layer.missing or
                                     "its layer did not run (run nose2)"))


def free_cluster_port():
    """A free loopback port whose cluster bus port is free too."""
    for _ in range(100):
        port = random.randrange(20000, 65535 - CLUSTER_BUS_OFFSET)
        if _free(port) and _free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _replica_of(port):
    return ("--replicaof", "127.0.0.1", str(port))


def _info(server, section, command="INFO"):
    """INFO `section` (or CLUSTER INFO) of `server` as a dict."""
    with server.client(timeout=1) as client:
        if command == "INFO":
            return client.info(section)
        text = client.execute_command(command)
    if isinstance(text, dict):
        return text
    return dict(line.split(":", 1) for line in text.splitlines()
                if ":" in line)


def _wait_until(condition, deadline, what):
    """Poll `condition` (Redis errors count as not yet) until `deadline`."""
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError, StopIteration):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("waited in vain for %s" % what)
        time.sleep(0.05)


def _one_line(error):
    text = getattr(error, "stderr", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(text.split())[:300]

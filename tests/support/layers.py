"""nose2 layers for the integration tests: a real redis-server, and faults.

`RedisLayer` starts one `redis-server` on a free loopback port for the
whole run (or uses SCORING_TEST_REDIS_URL), empties it before each test
and stops it at the end. `FaultLayer` adds what breaks it on purpose
(kill, restart, pause, a black hole) and undoes every fault after its test.

Whether Redis is missing is decided by the test classes (`requires_redis`),
not by a layer: a layer's setUp that raises fails its whole suite.
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import redis

REDIS_URL_ENV = "SCORING_TEST_REDIS_URL"
START_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 5.0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class RedisServer:
    """A redis-server process of the tests' own, without persistence."""

    def __init__(self, port, args=()):
        """`args`: more redis-server options, e.g. ("--replicaof", ...)."""
        self.port = port
        self.args = list(args)
        self.url = "redis://127.0.0.1:%d/0" % port
        self.workdir = tempfile.mkdtemp(prefix="scoring-test-redis-")
        self.process = None

    def command(self):
        return ["redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.workdir,
                "--logfile", os.path.join(self.workdir, "redis.log"),
                *self.args]

    def start(self):
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server on port %d exited with %d"
                                   % (self.port, self.process.returncode))
            if self.answers():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("redis-server on port %d did not answer in %.0fs"
                           % (self.port, START_TIMEOUT_SECONDS))

    def answers(self):
        try:
            return self.client(timeout=0.5).ping()
        except redis.RedisError:
            return False

    def client(self, timeout=2.0):
        return redis.Redis.from_url(self.url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout,
                                    decode_responses=True)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL: gone at once, as in a crash."""
        if self.running:
            self.resume()
            self.process.kill()
        if self.process is not None:
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def pause(self):
        """SIGSTOP: connections stay open and nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        if self.running:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class BlackHole:
    """A listener that accepts connections (the kernel does) and never
    reads or answers: a Redis host that hangs."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.url = "redis://127.0.0.1:%d/0" % self.socket.getsockname()[1]

    def close(self):
        self.socket.close()


class RedisLayer:
    """One Redis for the whole integration run, emptied before each test."""

    description = "a real redis-server"
    server = None  # RedisServer when the layer started one
    url = None  # None when there is no Redis to test against
    missing = None  # why, when url is None

    @classmethod
    def setUp(cls):
        given = os.environ.get(REDIS_URL_ENV)
        if given:
            RedisLayer.url = given
            return
        if shutil.which("redis-server") is None:
            RedisLayer.missing = "redis-server is not installed"
            return
        RedisLayer.server = _start_on_a_free_port()
        RedisLayer.url = RedisLayer.server.url
        atexit.register(RedisLayer.server.stop)  # also on an interrupted run

    @classmethod
    def tearDown(cls):
        if RedisLayer.server is not None:
            RedisLayer.server.stop()
            RedisLayer.server = None
        RedisLayer.url = None

    @classmethod
    def testSetUp(cls):
        if RedisLayer.url is not None:
            client = redis.Redis.from_url(RedisLayer.url, socket_timeout=2)
            with client:
                client.flushdb()
                client.config_resetstat()


class FaultLayer(RedisLayer):
    """Tests that break Redis: each fault is undone after its test."""

    description = "a real redis-server, broken on purpose"
    black_holes = []

    @classmethod
    def testTearDown(cls):
        server = RedisLayer.server
        if server is not None and not server.running:
            server.start()
        elif server is not None:
            server.resume()
        for hole in FaultLayer.black_holes:
            hole.close()
        FaultLayer.black_holes = []

    @classmethod
    def black_hole(cls):
        hole = BlackHole()
        FaultLayer.black_holes.append(hole)
        return hole


def _start_on_a_free_port(attempts=3):
    for attempt in range(attempts):
        server = RedisServer(free_port())
        try:
            server.start()
            return server
        except RuntimeError:
            server.stop()
            if attempt == attempts - 1:
                raise


def requires_redis(test):
    """Skip (or, in CI, fail) `test` when there is no Redis to use."""
    if RedisLayer.url is not None:
        return
    reason = RedisLayer.missing or "the Redis layer did not run (run nose2)"
    skip_or_fail(test, "no Redis for integration tests: %s; install"
                 " redis-server or set %s" % (reason, REDIS_URL_ENV))


def skip_or_fail(test, message):
    """Skip `test` with `message` on a developer's machine; fail it in CI,
    where every test must run."""
    if in_ci():
        test.fail(message)
    test.skipTest(message)


def requires_own_server(test):
    """Skip `test` when Redis is not a process these tests control."""
    requires_redis(test)
    if RedisLayer.server is None:
        test.skipTest("faults need a redis-server of the tests' own, not %s"
                      % urllib.parse.urlsplit(RedisLayer.url).netloc)

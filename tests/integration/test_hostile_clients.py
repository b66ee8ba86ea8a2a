"""docs/operations.md, "Limits" and "Slow clients", against `python -m
scoring_api` as a process: descriptors run out, connections past
max_connections, clients that send nothing, trickle a head, send half a
body, or never read their answers.

What is checked is what an operator sees: the process's CPU time and
descriptors (/proc), its log, and whether a client gets its answer.
"""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import redis

from tests.support.helpers import ROOT, SCORE_REQUEST, api_request
from tests.support.layers import RedisLayer, free_port, requires_redis

START_SECONDS = 10.0
# Generous: what is proven is "served at all", "closed at all", "freed".
DEADLINE_SECONDS = 10.0
# A client the service must not answer yet gets this long to be wrongly
# answered (one answers in milliseconds here).
NOT_ANSWERED_SECONDS = 0.5
DESCRIPTOR_LIMIT = 64
FLOOD_CONNECTIONS = 150
CPU_WINDOW_SECONDS = 2.0
CPU_BOUND_SECONDS = 0.5  # Tornado's own accept loop: the whole window
FD_SLACK = 2
# Past 1.25 x header_timeout: how late a loop turn may run on a machine
# shared with other test runs.
HEADER_SLACK_SECONDS = 0.75
TINY_RECEIVE_BUFFER = 1024
PIPELINED_REQUESTS = 20
# 1000 clients of 20 interests of 32 characters: about 700 KB an answer.
MANY_IDS = list(range(1, 1001))
LONG_INTERESTS = ["interest-%023d" % n for n in range(20)]


def http_request(body):
    """A POST /method/ request as bytes, for raw sockets."""
    data = json.dumps(body).encode()
    return (b"POST /method/ HTTP/1.1\r\nHost: test\r\nContent-Length: %d"
            b"\r\n\r\n%s" % (len(data), data))


def read_answer(sock):
    """(status, body) of one HTTP answer read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += _recv(sock)
    return int(head.split()[1]), json.loads(body)


def _recv(sock):
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("closed by the service")
    return chunk


def connect(port, timeout=DEADLINE_SECONDS, receive_buffer=None):
    sock = socket.socket()
    if receive_buffer:  # before connect, so the window starts small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def ask(port, body=SCORE_REQUEST):
    """(status, body) of one request on a new connection."""
    with connect(port) as sock:
        sock.sendall(http_request(body))
        return read_answer(sock)


def wait_for(condition, what, timeout=DEADLINE_SECONDS):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within %.0fs: %s" % (timeout, what))
        time.sleep(0.05)


class Service:
    """`python -m scoring_api` on a free port with SCORING_* `settings`,
    and optionally RLIMIT_NOFILE (soft, hard) set before it starts."""

    def __init__(self, test, descriptors=None, **settings):
        self.port = free_port()
        log = tempfile.NamedTemporaryFile(suffix=".log", delete=False)
        log.close()
        self.log = log.name
        test.addCleanup(os.unlink, self.log)
        environ = {**os.environ, "SCORING_SERVER_PORT": str(self.port),
                   "SCORING_SERVER_LOG_FILE": self.log,
                   "SCORING_STORE_URL":
                       "redis://127.0.0.1:%d/0" % free_port(),
                   **settings}

        def limit_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, descriptors)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "scoring_api"], env=environ, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=limit_descriptors if descriptors else None)
        test.addCleanup(self.stop)
        self.wait_until_serving()

    def wait_until_serving(self):
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                raise AssertionError("the service exited: %s"
                                     % self.process.stderr.read())
            try:
                with socket.create_connection(("127.0.0.1", self.port)):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the service did not start")
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()

    def log_text(self):
        with open(self.log) as log:
            return log.read()

    def wait_for_log(self, text):
        """The log once it has `text` (lines are flushed every second)."""
        wait_for(lambda: text in self.log_text(), "%r logged" % text)
        return self.log_text()

    def log_lines(self):
        return self.log_text().splitlines()

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.process.pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def descriptors(self):
        return len(os.listdir("/proc/%d/fd" % self.process.pid))

    def descriptor_limits(self):
        with open("/proc/%d/limits" % self.process.pid) as limits:
            line = next(line for line in limits
                        if line.startswith("Max open files"))
        return tuple(int(n) for n in line.split()[3:5])

    def holds_connection_from(self, client):
        """Whether the service still has a socket open to `client`."""
        inodes = set()
        fd_dir = "/proc/%d/fd" % self.process.pid
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        peer = "0100007F:%04X" % client.getsockname()[1]
        with open("/proc/net/tcp") as table:
            rows = [row.split() for row in table.readlines()[1:]]
        return any(row[2] == peer and row[9] in inodes for row in rows)


class DescriptorExhaustionTest(unittest.TestCase):
    def test_a_flood_past_the_descriptor_limit_costs_little_and_passes(self):
        service = Service(self, descriptors=(DESCRIPTOR_LIMIT,) * 2)
        self.assertEqual(ask(service.port)[0], 200)
        service.wait_for_log("online_score 200")  # flushed: counted before
        baseline = service.descriptors()
        lines_before = len(service.log_lines())
        flood = []
        self.addCleanup(lambda: [sock.close() for sock in flood])
        for _ in range(FLOOD_CONNECTIONS):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", service.port))
            flood.append(sock)
        wait_for(lambda: service.descriptors() >= DESCRIPTOR_LIMIT - 1,
                 "the flood used up the descriptors")

        cpu_before = service.cpu_seconds()
        time.sleep(CPU_WINDOW_SECONDS)
        self.assertLess(service.cpu_seconds() - cpu_before,
                        CPU_BOUND_SECONDS)

        for sock in flood:
            sock.close()
        self.assertEqual(ask(service.port),
                         (200, {"code": 200, "response": {"score": 3.0}}))
        wait_for(lambda: service.descriptors() <= baseline + FD_SLACK,
                 "descriptors back to %d" % baseline)
        wait_for(lambda: service.log_text().count("online_score 200") == 2,
                 "the flood's log flushed")
        new_lines = service.log_lines()[lines_before:]
        self.assertLessEqual(len(new_lines), 5, "\n".join(new_lines))
        refusals = [line for line in new_lines if "cannot accept" in line]
        self.assertLessEqual(len(refusals), 2, refusals)  # one per 10 s
        self.assertIn("Too many open files", refusals[0])
        self.assertNotIn("Traceback", service.log_text())
        # ... as start-up said it might:
        self.assertIn("descriptor limit 64 < 1160 needed ([server]"
                      " max_connections 1000 + Redis connections 128 + 32"
                      " for the process)", service.log_text())

    def test_the_soft_limit_is_raised_to_the_hard_one_without_warning(self):
        service = Service(self, descriptors=(DESCRIPTOR_LIMIT, 256),
                          SCORING_SERVER_MAX_CONNECTIONS="100",
                          SCORING_STORE_MAX_CONNECTIONS="8",
                          SCORING_CACHE_MAX_CONNECTIONS="8")
        self.assertEqual(service.descriptor_limits(), (256, 256))
        service.wait_for_log("serving on")
        self.assertNotIn("descriptor limit", service.log_text())


class ConnectionLimitTest(unittest.TestCase):
    def hold(self, service):
        """A kept-alive connection, served once, so counted; then idle."""
        sock = connect(service.port)
        self.addCleanup(sock.close)
        sock.sendall(http_request(SCORE_REQUEST))
        self.assertEqual(read_answer(sock)[0], 200)
        return sock

    def busy(self, service):
        """A connection whose request's body is still coming."""
        sock = connect(service.port)
        self.addCleanup(sock.close)
        sock.sendall(http_request(SCORE_REQUEST)[:-10])
        wait_for(lambda: service.holds_connection_from(sock),
                 "the busy client accepted")
        return sock

    def silent(self, service):
        """A connection that never sends a byte."""
        sock = connect(service.port)
        self.addCleanup(sock.close)
        wait_for(lambda: service.holds_connection_from(sock),
                 "the silent client accepted")
        return sock

    def waiting(self, service):
        """A client past max_connections: asks and gets no answer yet."""
        sock = connect(service.port, timeout=NOT_ANSWERED_SECONDS)
        self.addCleanup(sock.close)
        sock.sendall(http_request(SCORE_REQUEST))
        with self.assertRaises(socket.timeout):
            sock.recv(1)
        sock.settimeout(DEADLINE_SECONDS)
        return sock

    def test_past_max_connections_busy_with_requests_a_client_waits(self):
        service = Service(self, SCORING_SERVER_MAX_CONNECTIONS="2")
        first, _ = self.busy(service), self.busy(service)
        third = self.waiting(service)
        first.close()
        self.assertEqual(read_answer(third),
                         (200, {"code": 200, "response": {"score": 3.0}}))

    def test_silent_and_idle_connections_make_room_for_a_new_client(self):
        # Scaled down from issue 20's 300 silent sockets and 50 idle
        # keep-alive connections at max_connections 200.
        service = Service(self, SCORING_SERVER_MAX_CONNECTIONS="10")
        silent = [self.silent(service) for _ in range(7)]
        idle = [self.hold(service) for _ in range(3)]
        for _ in range(3):  # each evicts the longest waiting, silent first
            self.hold(service)  # answered 200, and kept alive
        for sock in silent[:3]:
            wait_for(lambda: not service.holds_connection_from(sock),
                     "the oldest silent connections closed")
        self.assertTrue(all(service.holds_connection_from(sock)
                            for sock in silent[3:] + idle))
        service.wait_for_log("max_connections (10) reached: closed"
                             " connections waiting for a request to admit"
                             " new clients (1 since the last such line)")

    def test_an_idle_timeout_frees_the_connection(self):
        service = Service(self, SCORING_SERVER_IDLE_TIMEOUT="0.5")
        idle = self.hold(service)
        wait_for(lambda: not service.holds_connection_from(idle),
                 "the idle connection closed")

    def test_a_body_timeout_frees_the_connection(self):
        service = Service(self, SCORING_SERVER_MAX_CONNECTIONS="1",
                          SCORING_SERVER_BODY_TIMEOUT="0.5")
        slow = self.busy(service)  # and never the rest
        self.assertEqual(ask(service.port)[0], 200)
        self.assertFalse(service.holds_connection_from(slow))
        service.wait_for_log("body not received in 0.5s")

    def test_a_malformed_request_frees_the_connection(self):
        service = Service(self, SCORING_SERVER_MAX_CONNECTIONS="1")
        bad = connect(service.port)
        self.addCleanup(bad.close)
        bad.sendall(b"NOT HTTP AT ALL")  # a head under way: not idle
        wait_for(lambda: service.holds_connection_from(bad),
                 "the bad client accepted")
        waiting = self.waiting(service)
        bad.sendall(b"\r\n\r\n")
        self.assertEqual(read_answer(waiting)[0], 200)
        self.assertFalse(service.holds_connection_from(bad))


class HeaderTimeoutTest(unittest.TestCase):
    def closed_after(self, sock, trickle_seconds=None):
        """Seconds until the service closed `sock`, sending a request head
        a byte every `trickle_seconds` meanwhile (None: nothing)."""
        started = time.monotonic()
        head = iter(http_request(SCORE_REQUEST))
        sock.settimeout(trickle_seconds or DEADLINE_SECONDS)
        while time.monotonic() - started < DEADLINE_SECONDS:
            try:
                if not sock.recv(1):
                    return time.monotonic() - started
            except socket.timeout:
                sock.send(bytes([next(head)]))
            except ConnectionResetError:
                return time.monotonic() - started
        raise AssertionError("not closed within %.0fs" % DEADLINE_SECONDS)

    def test_a_head_trickled_a_byte_at_a_time_is_cut_in_time(self):
        service = Service(self, SCORING_SERVER_HEADER_TIMEOUT="1")
        sock = connect(service.port)
        self.addCleanup(sock.close)
        seconds = self.closed_after(sock, trickle_seconds=0.05)
        # Counted from accept, after the client's connect: never early.
        self.assertGreaterEqual(seconds, 1.0)
        # 1.25 x header_timeout, plus a loop turn's slack on a busy machine.
        self.assertLess(seconds, 1.25 + HEADER_SLACK_SECONDS)
        service.wait_for_log("closed connections whose request head did"
                             " not come in 1.0s (1 since the last such"
                             " line)")

    def test_a_silent_connection_is_cut_after_header_timeout(self):
        service = Service(self, SCORING_SERVER_HEADER_TIMEOUT="1")
        sock = connect(service.port)
        self.addCleanup(sock.close)
        seconds = self.closed_after(sock)
        self.assertGreaterEqual(seconds, 1.0)
        self.assertLess(seconds, 1.25 + HEADER_SLACK_SECONDS)


class SlowReaderTest(unittest.TestCase):
    """Answers of about 700 KB, pipelined to a client that never reads."""

    layer = RedisLayer

    def setUp(self):
        requires_redis(self)
        client = redis.Redis.from_url(RedisLayer.url, socket_timeout=5)
        self.addCleanup(client.close)
        client.mset({"i:%d" % n: json.dumps(LONG_INTERESTS)
                     for n in MANY_IDS})

    def start(self, **settings):
        return Service(self, SCORING_STORE_URL=RedisLayer.url,
                       SCORING_SERVER_WRITE_TIMEOUT="1", **settings)

    def never_reads(self, service):
        """A client that pipelined requests for large answers and reads
        none, once the service has accepted it."""
        sock = connect(service.port, receive_buffer=TINY_RECEIVE_BUFFER)
        self.addCleanup(sock.close)
        sock.sendall(http_request(api_request(
            "clients_interests", {"client_ids": MANY_IDS}))
            * PIPELINED_REQUESTS)
        wait_for(lambda: service.holds_connection_from(sock),
                 "the slow client accepted")
        return sock

    def test_a_client_that_never_reads_is_cut_and_others_are_served(self):
        service = self.start()
        slow = self.never_reads(service)
        status, answer = ask(service.port, api_request(
            "clients_interests", {"client_ids": [1]}))
        self.assertEqual((status, answer["response"]),
                         (200, {"1": LONG_INTERESTS}))
        wait_for(lambda: not service.holds_connection_from(slow),
                 "the slow client cut")
        log = service.wait_for_log(
            "did not read its answer: answer not read in 1.0s")
        # Requests it pipelined but that were no longer read are not served.
        self.assertLess(log.count("clients_interests 200"),
                        PIPELINED_REQUESTS)

    def test_a_client_cut_for_not_reading_frees_its_connection(self):
        service = self.start(SCORING_SERVER_MAX_CONNECTIONS="1")
        slow = self.never_reads(service)
        self.assertEqual(ask(service.port)[0], 200)
        self.assertFalse(service.holds_connection_from(slow))

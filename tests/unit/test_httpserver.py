"""scoring_api.httpserver.ScoringHTTPServer over real sockets, serving a
bare Tornado application, with its head and idle deadlines on a fake
clock: the header and idle timeouts, room made at max_connections, the
requests in flight, the drain; and the canaries for the Tornado methods
it overrides."""
import asyncio
import hashlib
import inspect
import re
import socket
import ssl
import unittest

import mock
from tornado import http1connection, httpserver, httputil, tcpserver, web
from tornado.iostream import IOStream
from tornado.tcpclient import TCPClient
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from scoring_api.accept import Acceptor
from scoring_api.httpserver import ScoringHTTPServer, stream_of
from scoring_api.traffic import Traffic
from tests.support.cases import cases
from tests.support.timers import FakeLoop

HEADER_TIMEOUT = 10.0  # on the fake clock
IDLE_TIMEOUT = 100.0  # on the fake clock
DEADLINE_SECONDS = 5.0  # real time: a guard against a hang
LOGGER = "scoring_api.httpserver"
BIG_ANSWER = b"x" * 20_000_000
TINY_RECEIVE_BUFFER = 1024


class CountingTraffic(Traffic):
    """Traffic that also counts every start and finish."""

    def __init__(self):
        super().__init__()
        self.starts = 0
        self.finishes = 0

    def started(self):
        super().started()
        self.starts += 1

    def finished(self):
        super().finished()
        self.finishes += 1


class Hello(web.RequestHandler):
    def get(self):
        self.write("hello")


class Held(web.RequestHandler):
    """Answers once the test sets `release`."""

    def initialize(self, release):
        self.release = release

    async def get(self):
        await self.release.wait()
        self.write("held")


class HeldEcho(web.RequestHandler):
    """Answers a POST with its body once the test sets `release`; `bodies`
    lists the bodies read."""

    def initialize(self, release, bodies):
        self.release = release
        self.bodies = bodies

    async def post(self):
        self.bodies.append(self.request.body)
        await self.release.wait()
        self.write(self.request.body)


class Big(web.RequestHandler):
    def initialize(self, calls):
        self.calls = calls

    def get(self):
        self.calls.append(1)
        self.write(BIG_ANSWER)


def request_bytes(path="/"):
    return b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path.encode()


async def read_answer(stream):
    """(status, headers text, body) of one answer on a client stream."""
    head = await stream.read_until(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    body = await stream.read_bytes(length)
    return int(head.split()[1]), head.decode("latin-1"), body


async def until(condition):
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within %.0fs" % DEADLINE_SECONDS)
        await asyncio.sleep(0.005)


class ServerTestCase(AsyncTestCase):
    """A ScoringHTTPServer on a free port, its head and idle deadlines on
    `self.clock` (a FakeLoop)."""

    options = {}

    def setUp(self):
        super().setUp()
        self.traffic = CountingTraffic()
        self.release = asyncio.Event()
        self.big_calls = []
        self.bodies = []
        app = web.Application([
            (r"/", Hello), (r"/held", Held, {"release": self.release}),
            (r"/echo", HeldEcho, {"release": self.release,
                                  "bodies": self.bodies}),
            (r"/big", Big, {"calls": self.big_calls})])
        options = dict({"max_connections": 100, "write_timeout": 5.0,
                        "header_timeout": HEADER_TIMEOUT,
                        "idle_connection_timeout": IDLE_TIMEOUT},
                       **self.options)
        self.server = ScoringHTTPServer(app, traffic=self.traffic, **options)
        self.clock = FakeLoop()
        self.server.heads.loop = self.clock
        self.server.idle.loop = self.clock
        sock, self.port = bind_unused_port(reuse_port=True)
        self.server.add_sockets([sock])
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        self.server.stop()
        self.io_loop.run_sync(self.server.close_all_connections,
                              timeout=DEADLINE_SECONDS)
        super().tearDown()

    async def connect(self, **kwargs):
        client = await TCPClient().connect("127.0.0.1", self.port, **kwargs)
        self.clients.append(client)
        return client

    def queued_client(self):
        """A client the kernel connects at once, without a turn of the
        server's loop: in its queue until the loop accepts it."""
        client = IOStream(socket.create_connection(
            ("127.0.0.1", self.port), DEADLINE_SECONDS))
        self.clients.append(client)
        return client

    async def one_over_the_cap(self, path):
        """Three connections (the cap), then, for one turn of the server's
        loop, a new client and a request to `path` on each of the three,
        not read yet: none makes room for it, so the server holds one over
        its cap. (the three, the new one)"""
        eager = [await self.connect() for _ in range(3)]
        await self.accepted(3)
        first = self.queued_client()
        for client in eager:
            client.write(request_bytes(path))
        return eager, first

    async def client_left_waiting(self, holding):
        """A new client with a request sent, which the kernel connects but
        the server, holding `holding` connections, leaves waiting."""
        client = await self.connect()
        await client.write(request_bytes("/"))
        await asyncio.sleep(0.1)  # time enough to be accepted, wrongly
        self.assertEqual(self.server.open_connections, holding)
        return client

    def assert_port_closed(self):
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.port),
                                     DEADLINE_SECONDS).close()

    async def accepted(self, count):
        """Once the server holds `count` connections."""
        await until(lambda: self.server.open_connections == count)

    async def ask(self, client, path="/"):
        await client.write(request_bytes(path))
        return await read_answer(client)

    async def held(self):
        """A client whose request waits for `self.release`, in flight."""
        client = await self.connect()
        await client.write(request_bytes("/held"))
        await until(lambda: self.traffic.in_flight == 1)
        return client

    async def kept_alive(self):
        """A client served once, its connection kept alive, waiting."""
        client = await self.connect()
        self.assertEqual((await self.ask(client))[0], 200)
        await until(lambda: self.server.waiting)
        return client

    async def assert_closed_by_server(self, client):
        self.assertEqual(await client.read_until_close(), b"")


class HeaderTimeoutTest(ServerTestCase):
    @gen_test
    async def test_a_silent_connection_is_cut_after_header_timeout(self):
        client = await self.connect()
        await self.accepted(1)
        self.clock.advance(HEADER_TIMEOUT - 0.01)
        self.assertEqual(self.server.open_connections, 1)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.clock.advance(HEADER_TIMEOUT * 0.25 + 0.01)
        self.assertEqual(self.server.open_connections, 0)
        await self.assert_closed_by_server(client)
        self.assertEqual(logs.output, [
            "WARNING:%s:closed connections whose request head did not come"
            " in 10.0s (1 since the last such line)" % LOGGER])

    @gen_test
    async def test_a_first_head_trickled_is_cut_counted_from_accept(self):
        client = await self.connect()
        await self.accepted(1)
        for byte in b"GET / HTTP/1.1\r\n":  # a byte a fake second
            await client.write(bytes([byte]))
            await until(lambda: not self.server.waiting)  # head under way
            if self.clock.clock.now + 1.0 < 1000.0 + HEADER_TIMEOUT:
                self.clock.advance(1.0)
                self.assertEqual(self.server.open_connections, 1)
            else:
                break
        with self.assertLogs(LOGGER, "WARNING"):
            self.clock.advance(HEADER_TIMEOUT * 0.25)
        self.assertEqual(self.server.open_connections, 0)
        await self.assert_closed_by_server(client)

    @gen_test
    async def test_a_later_head_counts_from_its_first_byte_not_the_idle(self):
        client = await self.connect()
        self.assertEqual((await self.ask(client))[0], 200)
        await until(lambda: self.server.waiting)  # idle, kept alive
        self.clock.advance(HEADER_TIMEOUT * 5)  # idle: not the head's time
        self.assertEqual(self.server.open_connections, 1)
        await client.write(b"G")
        await until(lambda: not self.server.waiting)  # its first byte
        self.clock.advance(HEADER_TIMEOUT - 0.01)
        await client.write(b"ET / HTTP/1.1\r\n")
        self.assertEqual(self.server.open_connections, 1)
        with self.assertLogs(LOGGER, "WARNING"):
            self.clock.advance(HEADER_TIMEOUT * 0.25 + 0.01)
        self.assertEqual(self.server.open_connections, 0)
        await self.assert_closed_by_server(client)

    @gen_test
    async def test_a_body_sent_after_its_head_has_no_head_deadline(self):
        client = await self.connect()
        await client.write(b"POST /echo HTTP/1.1\r\nHost: test\r\n"
                           b"Content-Length: 5\r\n\r\n")
        await until(lambda: self.traffic.in_flight == 1)  # the head is read
        await client.write(b"hello")  # its body, in a later read
        await until(lambda: self.bodies)
        self.clock.advance(HEADER_TIMEOUT * 2)  # the head came in time
        self.release.set()
        self.assertEqual(await read_answer(client), (
            200, mock.ANY, b"hello"))

    @gen_test
    async def test_heads_that_come_in_time_are_served_and_leave_no_deadline(
            self):
        client = await self.connect()
        for _ in range(3):
            self.clock.advance(HEADER_TIMEOUT - 0.01)
            self.assertEqual(await self.ask(client), (
                200, mock.ANY, b"hello"))
        self.assertEqual(len(self.server.heads), 0)


class IdleTimeoutTest(ServerTestCase):
    @gen_test
    async def test_an_idle_connection_is_closed_after_idle_timeout(self):
        client = await self.kept_alive()
        self.clock.advance(IDLE_TIMEOUT - 0.01)
        self.assertEqual(self.server.open_connections, 1)
        with self.assertNoLogs(LOGGER):  # nothing wrong: as Tornado's
            self.clock.advance(IDLE_TIMEOUT * 0.25 + 0.01)
            await self.assert_closed_by_server(client)
        self.assertEqual(self.server.open_connections, 0)

    @gen_test
    async def test_each_request_starts_the_idle_time_anew(self):
        client = await self.connect()
        for _ in range(3):
            self.assertEqual((await self.ask(client))[0], 200)
            await until(lambda: self.server.waiting)
            self.clock.advance(IDLE_TIMEOUT - 0.01)
        self.assertEqual((await self.ask(client))[0], 200)
        await until(lambda: self.server.waiting)
        self.clock.advance(IDLE_TIMEOUT * 1.25 + 0.01)  # from the last
        await self.assert_closed_by_server(client)
        await self.accepted(0)
        self.assertEqual(len(self.server.idle), 0)

    @gen_test
    async def test_a_request_on_its_way_is_not_closed_as_idle(self):
        client = await self.kept_alive()
        client.write(request_bytes("/"))  # in the kernel, not read yet
        self.clock.advance(IDLE_TIMEOUT * 1.25 + 0.01)
        self.assertEqual((await read_answer(client))[2], b"hello")
        await until(lambda: self.server.waiting)  # idle again: closed
        self.clock.advance(IDLE_TIMEOUT * 1.25 + 0.01)
        await self.assert_closed_by_server(client)

    @gen_test
    async def test_a_connection_busy_with_a_request_is_not_idle(self):
        client = await self.held()
        self.clock.advance(IDLE_TIMEOUT * 2)
        self.release.set()
        self.assertEqual((await read_answer(client))[2], b"held")
        self.assertEqual(len(self.server.idle), 1)  # idle from the answer


class NoTimerPerHeadTest(ServerTestCase):
    """The idle bound is the server's sweep, on the fake clock here, not
    Tornado's timer around each head read, which runs on the real one."""

    options = {"idle_connection_timeout": 0.05}

    @gen_test
    async def test_no_real_time_timer_closes_an_idle_connection(self):
        client = await self.kept_alive()
        await asyncio.sleep(0.3)  # six times the idle timeout, for real
        self.assertEqual((await self.ask(client))[2], b"hello")


class MaxConnectionsTest(ServerTestCase):
    options = {"max_connections": 3}

    @gen_test
    async def test_waiting_connections_make_room_longest_waiting_first(self):
        silent = await self.connect()
        await self.accepted(1)
        idle = await self.kept_alive()
        later = await self.connect()
        await self.accepted(3)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            newcomer = await self.connect()
            self.assertEqual((await self.ask(newcomer))[2], b"hello")
            await self.assert_closed_by_server(silent)  # the oldest
            other = await self.connect()
            self.assertEqual((await self.ask(other))[2], b"hello")
            await self.assert_closed_by_server(idle)  # the next oldest
        self.assertFalse(later.closed())
        self.assertEqual(self.server.open_connections, 3)
        self.assertEqual(logs.output, [  # once per interval
            "WARNING:%s:max_connections (3) reached: closed connections"
            " waiting for a request to admit new clients (1 since the last"
            " such line)" % LOGGER])

    @gen_test
    async def test_a_connection_whose_request_is_on_its_way_is_passed_over(
            self):
        eager = await self.connect()  # waiting longest
        await self.accepted(1)
        idle = await self.connect()
        later = await self.connect()
        await self.accepted(3)
        # For one turn of the server's loop: a new client in the kernel's
        # queue, then the eager one's request, not read yet.
        newcomer = self.queued_client()
        eager.write(request_bytes("/"))
        with self.assertLogs(LOGGER, "WARNING"):
            await self.assert_closed_by_server(idle)  # not the eager one
        self.assertEqual((await read_answer(eager))[2], b"hello")
        self.assertEqual((await self.ask(newcomer))[2], b"hello")
        self.assertFalse(later.closed())
        self.assertEqual(self.server.open_connections, 3)

    @gen_test
    async def test_over_the_cap_each_new_client_still_makes_room(self):
        eager, first = await self.one_over_the_cap("/")
        for client in eager:
            self.assertEqual((await read_answer(client))[2], b"hello")
        await self.accepted(4)
        await until(lambda: len(self.server.waiting) == 4)
        with self.assertLogs(LOGGER, "WARNING"):
            second = await self.connect()
            await self.assert_closed_by_server(first)  # waiting longest
        self.assertEqual((await self.ask(second))[2], b"hello")
        self.assertEqual(self.server.open_connections, 4)

    @gen_test
    async def test_over_the_cap_a_new_client_waits_while_all_are_busy(self):
        eager, first = await self.one_over_the_cap("/held")  # all busy
        await self.accepted(4)
        await first.write(request_bytes("/held"))
        await until(lambda: self.traffic.in_flight == 4)
        late = await self.client_left_waiting(holding=4)
        with self.assertLogs(LOGGER, "WARNING"):  # room made for it
            self.release.set()
            for client in eager + [first]:
                self.assertEqual((await read_answer(client))[2], b"held")
            self.assertEqual((await read_answer(late))[2], b"hello")

    @gen_test
    async def test_busy_connections_are_kept_and_a_new_client_waits(self):
        busy = [await self.connect() for _ in range(3)]
        for client in busy:
            await client.write(request_bytes("/held"))
        await until(lambda: self.traffic.in_flight == 3)
        waiting = await self.client_left_waiting(holding=3)
        self.release.set()
        for client in busy:
            self.assertEqual((await read_answer(client))[2], b"held")
        self.assertEqual((await read_answer(waiting))[2], b"hello")

    @gen_test
    async def test_a_client_reconnecting_what_was_closed_locks_no_one_out(
            self):
        async def attacker():
            while True:
                client = await self.connect()
                await client.read_until_close()  # closed to make room

        with self.assertLogs(LOGGER, "WARNING"):
            attackers = [asyncio.ensure_future(attacker()) for _ in range(3)]
            await self.accepted(3)
            for _ in range(10):
                client = await self.connect()
                self.assertEqual((await self.ask(client))[2], b"hello")
                client.close()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)


class TrafficTest(ServerTestCase):
    @gen_test
    async def test_a_request_is_in_flight_from_its_head_to_its_answer(self):
        client = await self.held()
        self.release.set()
        self.assertEqual((await read_answer(client))[2], b"held")
        await until(lambda: self.traffic.in_flight == 0)
        self.assertEqual((self.traffic.starts, self.traffic.finishes), (1, 1))

    @gen_test
    async def test_keep_alive_requests_each_count_once(self):
        client = await self.connect()
        for _ in range(3):
            await self.ask(client)
        client.close()
        await self.accepted(0)
        self.assertEqual((self.traffic.starts, self.traffic.finishes,
                          self.traffic.in_flight), (3, 3, 0))

    @gen_test
    async def test_a_client_gone_mid_request_is_counted_out_once(self):
        client = await self.held()
        client.close()
        await self.accepted(0)
        self.release.set()
        await asyncio.sleep(0.05)  # the handler ends too
        self.assertEqual((self.traffic.starts, self.traffic.finishes,
                          self.traffic.in_flight), (1, 1, 0))

    @gen_test
    async def test_a_malformed_request_is_never_counted(self):
        client = await self.connect()
        await client.write(b"NOT HTTP AT ALL\r\n\r\n")
        await client.read_until_close()
        await self.accepted(0)
        self.assertEqual(self.traffic.starts, 0)


class ServeFailureTest(ServerTestCase):
    @gen_test
    async def test_a_connection_that_cannot_be_served_is_closed_and_said(
            self):
        with mock.patch.object(self.server, "handle_stream",
                               side_effect=RuntimeError("no room")):
            with self.assertLogs(LOGGER, "ERROR") as logs:
                client = await self.connect()
                await self.assert_closed_by_server(client)
        self.assertEqual(len(logs.output), 1)
        self.assertIn("cannot serve a new connection", logs.output[0])
        await self.accepted(0)
        other = await self.connect()
        self.assertEqual((await self.ask(other))[2], b"hello")


class PipelinedTest(ServerTestCase):
    options = {"write_timeout": 0.2}

    @gen_test
    async def test_requests_behind_an_answer_never_read_are_not_served(
            self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                        TINY_RECEIVE_BUFFER)
        sock.connect(("127.0.0.1", self.port))
        client = IOStream(sock)
        self.clients.append(client)
        await client.write(request_bytes("/big") * 5)  # and reads nothing
        with self.assertLogs("scoring_api.streams", "WARNING"):
            await self.accepted(1)
            await self.accepted(0)
        self.assertEqual(self.big_calls, [1])


class DrainTest(ServerTestCase):
    options = {"max_connections": 1}

    @gen_test
    async def test_draining_is_set_before_anything_else(self):
        self.server.drain()
        self.assertTrue(self.traffic.draining)

    @gen_test
    async def test_queued_clients_are_served_then_the_port_closes(self):
        busy = await self.connect()
        await busy.write(request_bytes("/held"))
        await until(lambda: self.traffic.in_flight == 1)
        queued = []  # full: these wait in the kernel's queue
        for _ in range(3):
            client = await self.connect()
            await client.write(request_bytes("/"))
            queued.append(client)
        await asyncio.sleep(0.05)
        self.assertEqual(self.server.open_connections, 1)
        await self.server.drain(grace_seconds=DEADLINE_SECONDS)
        for client in queued:
            self.assertEqual((await read_answer(client))[2], b"hello")
        self.release.set()
        self.assertEqual((await read_answer(busy))[2], b"held")
        self.assert_port_closed()

    @gen_test
    async def test_the_port_closes_before_a_dropped_handshake_is_retried(
            self):
        # A client whose SYN the filter dropped sends it again a second
        # later: by then the port must be closed (refused, or taken by
        # another listener), not still filtering.
        started = self.io_loop.time()
        await self.server.drain(grace_seconds=DEADLINE_SECONDS)
        # After the handshakes the kernel was completing as the filter came
        # have settled (tens of milliseconds).
        self.assertGreaterEqual(self.io_loop.time() - started, 0.04)
        self.assertLess(self.io_loop.time() - started, 1.0)
        self.assert_port_closed()

    @gen_test
    async def test_without_the_handshake_filter_the_port_closes_at_once(
            self):
        # Not Linux, or the kernel refused the filter: no handshake is
        # settling into the queue, so there is nothing to wait for.
        with mock.patch.object(Acceptor, "stop_handshakes",
                               return_value=False):
            drained = self.server.drain(grace_seconds=DEADLINE_SECONDS)
            for _ in range(5):
                await asyncio.sleep(0)  # loop turns, no time passing
        self.assertTrue(drained.done())
        self.assert_port_closed()

    @gen_test
    async def test_an_idle_connection_is_closed_after_the_grace(self):
        client = await self.connect()
        await self.ask(client)
        await until(lambda: self.server.waiting)
        await self.server.drain(grace_seconds=0.05)
        await self.assert_closed_by_server(client)
        await self.accepted(0)

    @gen_test
    async def test_an_idle_connection_has_one_second_by_default(self):
        client = await self.connect()
        await self.ask(client)
        await until(lambda: self.server.waiting)
        started = self.io_loop.time()
        self.server.drain()
        await self.assert_closed_by_server(client)
        # docs/operations.md, "Signals and the drain": one second.
        self.assertGreaterEqual(self.io_loop.time() - started, 1.0)
        self.assertLess(self.io_loop.time() - started, 2.0)

    @gen_test
    async def test_a_request_sent_within_the_grace_is_answered(self):
        client = await self.connect()
        await self.ask(client)
        drained = self.server.drain(grace_seconds=DEADLINE_SECONDS)
        self.assertEqual((await self.ask(client))[2], b"hello")
        await drained

    async def held_past_the_grace(self):
        """A client with a request in flight when the drain's grace ended."""
        client = await self.held()
        await self.server.drain(grace_seconds=0.01)
        await asyncio.sleep(0.05)  # the grace is over
        return client

    @gen_test
    async def test_a_connection_answered_after_the_grace_is_then_closed(
            self):
        client = await self.held_past_the_grace()
        self.release.set()
        self.assertEqual((await read_answer(client))[2], b"held")
        await self.assert_closed_by_server(client)  # no next request
        await self.accepted(0)

    @gen_test
    async def test_a_head_begun_after_the_grace_has_its_header_timeout(
            self):
        client = await self.held_past_the_grace()
        await client.write(b"GET / HT")  # a next head, never finished
        self.release.set()
        self.assertEqual((await read_answer(client))[2], b"held")
        await until(lambda: len(self.server.heads) == 1)
        with self.assertLogs(LOGGER, "WARNING"):
            self.clock.advance(HEADER_TIMEOUT * 1.25 + 0.01)
        await self.assert_closed_by_server(client)

    @gen_test
    async def test_an_answer_after_the_grace_logs_no_error(self):
        with self.assertNoLogs(level="ERROR"):
            client = await self.held_past_the_grace()
            self.release.set()
            self.assertEqual((await read_answer(client))[2], b"held")
            client.close()
            await self.accepted(0)


class SignatureTest(unittest.TestCase):
    def test_the_limits_are_given_by_name_never_by_position(self):
        # Counts and seconds side by side: one taken for another by
        # position would bound the wrong phase.
        with self.assertRaisesRegex(TypeError,
                                    "takes 2 positional arguments"):
            ScoringHTTPServer(lambda request: None, Traffic(), 1, 1.0, 1.0,
                              1.0)


class PlainHTTPOnlyTest(unittest.TestCase):
    def test_tls_is_refused(self):
        with self.assertRaisesRegex(ValueError, "plain HTTP only"):
            ScoringHTTPServer(
                lambda request: None, traffic=Traffic(),
                ssl_options=ssl.create_default_context(
                    ssl.Purpose.CLIENT_AUTH),
                max_connections=1, write_timeout=1.0, header_timeout=1.0,
                idle_connection_timeout=1.0)


def digest(obj):
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


class HTTPServerCanaryTest(unittest.TestCase):
    """ScoringHTTPServer overrides, and its delegate relies on, these
    pieces of Tornado 6.6.1. When one changes, re-read it, check
    scoring_api/httpserver.py, then update this."""

    READ_FROM = {
        "TCPServer.add_sockets": (tcpserver.TCPServer.add_sockets,
                                  "4cc159003c60dd83"),
        "TCPServer.stop": (tcpserver.TCPServer.stop, "8179afcd78d24900"),
        # initialize makes conn_params (its header_timeout set to None
        # after it), which handle_stream gives each connection.
        "HTTPServer.initialize": (httpserver.HTTPServer.initialize,
                                  "96e880b7decae55c"),
        "HTTPServer.handle_stream": (httpserver.HTTPServer.handle_stream,
                                     "164864e68f57d899"),
        "HTTPServer.start_request": (httpserver.HTTPServer.start_request,
                                     "3de37d633a9d15b5"),
        "HTTPServer.on_close": (httpserver.HTTPServer.on_close,
                                "ef043e5bf5894bd4"),
        # Its serving loop: start_request for each request, on_close last.
        "HTTP1ServerConnection": (http1connection.HTTP1ServerConnection,
                                  "38871fb004c63e47"),
        "HTTP1Connection.detach": (http1connection.HTTP1Connection.detach,
                                   "bd8f827cec92a67f"),
    }

    @cases(sorted(READ_FROM))
    def test_a_method_relied_on_is_as_read_from_tornado_6_6_1(self, name):
        method, expected = self.READ_FROM[name]
        self.assertEqual(digest(method), expected, name)

    def test_tcpservers_public_methods_are_those_overridden_or_kept(self):
        # add_socket, bind, listen and start end in add_sockets.
        self.assertEqual(
            sorted(name for name in dir(tcpserver.TCPServer)
                   if not name.startswith("_")),
            ["add_socket", "add_sockets", "bind", "handle_stream", "listen",
             "start", "stop"])

    @cases([(httputil.HTTPServerConnectionDelegate,
             ["on_close", "start_request"]),
            (httputil.HTTPMessageDelegate,
             ["data_received", "finish", "headers_received",
              "on_connection_close"])])
    def test_the_delegate_interfaces_are_those_implemented(self, case):
        interface, methods = case
        self.assertEqual(sorted(name for name in dir(interface)
                                if not name.startswith("_")), methods)


class HTTP1ConnectionCanaryTest(unittest.TestCase):
    """`stream_of` reads HTTP1Connection's undocumented `.stream`."""

    def test_the_stream_is_the_one_given_until_detached(self):
        server, client = socket.socketpair()
        self.addCleanup(client.close)
        stream = IOStream(server)
        self.addCleanup(stream.close)
        connection = http1connection.HTTP1Connection(stream, False)
        self.assertIs(stream_of(connection), stream)
        connection.detach()
        self.assertIsNone(stream_of(connection))

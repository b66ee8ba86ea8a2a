"""The pieces of scoring_api.connections on their own: the accept loop's
pauses, the throttled warning, the write timeout, the descriptor budget."""
import asyncio
import errno
import os
import resource
import socket
import ssl
import time
import unittest

import mock
from nose2.tools import params
from tornado.iostream import StreamClosedError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import connections
from scoring_api.config import Settings
from scoring_api.connections import (Acceptor, ThrottledWarning,
                                     WriteTimeoutStream)
from tests.support.clock import FakeClock

PAUSE_SECONDS = 0.05
DEADLINE_SECONDS = 5.0
LOGGER = "scoring_api.connections"


class Listener:
    """A listening socket whose accept() fails with `error` (EMFILE)
    `failures` times first; records when each accept() was tried."""

    def __init__(self, failures=0, error=errno.EMFILE):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.setblocking(False)
        self.address = self.socket.getsockname()
        self.failures = failures
        self.error = error
        self.attempts = []

    def fileno(self):
        return self.socket.fileno()

    def accept(self):
        self.attempts.append(time.monotonic())
        if self.failures:
            self.failures -= 1
            raise OSError(self.error, os.strerror(self.error))
        return self.socket.accept()

    def close(self):
        self.socket.close()


async def until(condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within %.0fs" % DEADLINE_SECONDS)
        await asyncio.sleep(0.01)


class ThrottledWarningTest(unittest.TestCase):
    def test_one_line_per_interval_with_the_count_since_the_last(self):
        clock = FakeClock()
        warning = ThrottledWarning("trouble", interval=10.0, clock=clock)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            for _ in range(5):
                warning.event("EMFILE")
                clock.now += 1.0
            clock.now += 5.0
            warning.event("ENFILE")
        self.assertEqual(logs.output, [
            "WARNING:%s:trouble: EMFILE (1 since the last such line)"
            % LOGGER,
            "WARNING:%s:trouble: ENFILE (5 since the last such line)"
            % LOGGER])


class AcceptorTest(AsyncTestCase):
    def listener(self, failures=0, error=errno.EMFILE):
        listener = Listener(failures, error)
        self.addCleanup(listener.close)
        return listener

    def client(self, listener):
        client = socket.create_connection(listener.address)
        self.addCleanup(client.close)
        return client

    def acceptor(self, listener, accepted, full=lambda: False):
        acceptor = Acceptor(
            [listener], lambda connection, address: accepted.append(
                connection), full, pause_seconds=PAUSE_SECONDS)
        self.addCleanup(acceptor.stop)
        self.addCleanup(lambda: [c.close() for c in accepted])
        acceptor.resume()
        return acceptor

    @gen_test
    async def test_out_of_descriptors_pauses_then_accepts(self):
        listener = self.listener(failures=3)
        accepted = []
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.acceptor(listener, accepted)
            self.client(listener)
            await until(lambda: accepted)
        failed = listener.attempts[:4]
        gaps = [later - earlier for earlier, later in zip(failed, failed[1:])]
        self.assertEqual(len(gaps), 3)
        for gap in gaps:  # never a retry at once: that is the spin
            self.assertGreaterEqual(gap, PAUSE_SECONDS * 0.9)
        self.assertEqual(len(logs.output), 1, logs.output)  # one interval
        self.assertIn("cannot accept connections, pausing 0.05s at a time:"
                      " [Errno 24] Too many open files (1 since the last"
                      " such line)", logs.output[0])

    @gen_test
    async def test_a_client_gone_before_its_accept_is_skipped_at_once(self):
        listener = self.listener(failures=1, error=errno.ECONNABORTED)
        accepted = []
        with self.assertNoLogs(LOGGER):
            self.acceptor(listener, accepted)
            self.client(listener)
            await until(lambda: accepted)
        # No pause: the next accept() followed in the same turn.
        self.assertLess(listener.attempts[1] - listener.attempts[0],
                        PAUSE_SECONDS)

    @gen_test
    async def test_a_turn_takes_a_bounded_number_the_next_the_rest(self):
        listener = self.listener()
        accepted = []
        with mock.patch.object(connections, "ACCEPTS_PER_TURN", 2):
            self.acceptor(listener, accepted)
            for _ in range(5):
                self.client(listener)
            await until(lambda: len(accepted) == 5)

    @gen_test
    async def test_when_full_clients_wait_until_resumed(self):
        listener = self.listener()
        accepted = []
        acceptor = self.acceptor(listener, accepted,
                                 full=lambda: len(accepted) >= 1)
        self.client(listener)
        self.client(listener)
        await until(lambda: accepted)
        await asyncio.sleep(0.1)  # time enough to take the second, wrongly
        self.assertEqual(len(accepted), 1)
        accepted.pop().close()  # a connection closes: the server resumes
        acceptor.resume()
        await until(lambda: accepted)

    @gen_test
    async def test_stopped_it_accepts_nothing_and_no_pause_resumes_it(self):
        listener = self.listener(failures=1)
        accepted = []
        with self.assertLogs(LOGGER, "WARNING"):
            acceptor = self.acceptor(listener, accepted)
            self.client(listener)
            await until(lambda: listener.attempts)
        acceptor.stop()  # during the pause
        await asyncio.sleep(PAUSE_SECONDS * 3)
        acceptor.resume()
        await asyncio.sleep(0.05)
        self.assertEqual((accepted, len(listener.attempts)), ([], 1))


class WriteTimeoutStreamTest(AsyncTestCase):
    def stream(self, write_timeout=0.1):
        """(server stream, client socket) over a socket pair."""
        server, client = socket.socketpair()
        self.addCleanup(client.close)
        stream = WriteTimeoutStream(
            server, write_timeout, ThrottledWarning("not read"))
        self.addCleanup(stream.close)
        return stream, client

    @gen_test
    async def test_an_answer_not_read_in_time_closes_the_stream(self):
        stream, client = self.stream()
        with self.assertLogs(LOGGER, "WARNING") as logs:
            with self.assertRaises(StreamClosedError):
                await stream.write(b"x" * 10_000_000)  # never read
        self.assertTrue(stream.closed())
        self.assertIn("not read: answer not read in 0.1s", logs.output[0])

    @gen_test
    async def test_an_answer_read_in_time_leaves_it_open(self):
        stream, client = self.stream(write_timeout=DEADLINE_SECONDS)
        client.setblocking(False)
        written = stream.write(b"x" * 1_000_000)
        self.assertIsNotNone(stream.write_timer)  # more than the buffers
        received = 0
        while received < 1_000_000:
            try:
                received += len(client.recv(1_000_000))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await written
        await asyncio.sleep(0)  # the write's callbacks
        self.assertIsNone(stream.write_timer)  # no deadline left running
        self.assertFalse(stream.closed())

    @params(*connections.READS)
    @gen_test
    async def test_closed_for_a_stall_it_reads_nothing_buffered(self, read):
        stream, client = self.stream()
        client.sendall(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        await stream.read_until_regex(b"\r\n\r\n")  # the next is buffered
        with self.assertLogs(LOGGER, "WARNING"):
            with self.assertRaises(StreamClosedError):
                await stream.write(b"x" * 10_000_000)  # never read
        arguments = {"read_until_regex": (b"\r\n\r\n",),
                     "read_until": (b"\r\n\r\n",), "read_bytes": (4,),
                     "read_into": (bytearray(4),), "read_until_close": ()}
        with self.assertRaises(StreamClosedError):
            await getattr(stream, read)(*arguments[read])


class LimitedHTTPServerTest(unittest.TestCase):
    def test_tls_is_refused_plain_http_only(self):
        with self.assertRaisesRegex(ValueError, "plain HTTP only"):
            connections.LimitedHTTPServer(
                lambda request: None,
                ssl_options=ssl.create_default_context(
                    ssl.Purpose.CLIENT_AUTH),
                max_connections=1, write_timeout=1.0)


class DescriptorLimitTest(unittest.TestCase):
    def test_the_soft_limit_is_raised_to_the_hard_one(self):
        with mock.patch.object(resource, "getrlimit",
                               return_value=(64, 4096)), \
                mock.patch.object(resource, "setrlimit") as setrlimit:
            self.assertEqual(connections.raise_descriptor_limit(), 4096)
        setrlimit.assert_called_once_with(resource.RLIMIT_NOFILE,
                                          (4096, 4096))

    def test_a_limit_that_cannot_be_raised_is_kept_with_a_warning(self):
        with mock.patch.object(resource, "getrlimit",
                               return_value=(64, 4096)), \
                mock.patch.object(resource, "setrlimit",
                                  side_effect=ValueError("not allowed")), \
                self.assertLogs(LOGGER, "WARNING") as logs:
            self.assertEqual(connections.raise_descriptor_limit(), 64)
        self.assertIn("cannot raise the descriptor limit from 64 to 4096:"
                      " not allowed", logs.output[0])

    def test_a_warning_when_connections_may_not_fit(self):
        settings = Settings().replace(server={"max_connections": 900},
                                      store={"max_connections": 50},
                                      cache={"max_connections": 50})
        with self.assertLogs(LOGGER, "WARNING") as logs:
            connections.warn_if_descriptors_short(settings, 1024)
        self.assertIn("descriptor limit 1024 < 1032 needed ([server]"
                      " max_connections 900 + Redis connections 100 + 32"
                      " for the process)", logs.output[0])

    def test_no_warning_when_they_fit(self):
        settings = Settings().replace(server={"max_connections": 892},
                                      store={"max_connections": 50},
                                      cache={"max_connections": 50})
        with self.assertNoLogs(LOGGER):
            connections.warn_if_descriptors_short(settings, 1024)

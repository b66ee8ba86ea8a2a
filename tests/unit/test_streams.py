"""scoring_api.streams.ClientStream over socket pairs: the write timeout,
the first-byte and close notices, the peek at unread bytes; and the
canary for the IOStream methods it overrides."""
import asyncio
import hashlib
import inspect
import socket
import unittest

from tornado.iostream import BaseIOStream, IOStream, StreamClosedError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.streams import ClientStream
from scoring_api.throttle import Throttle
from tests.support.cases import cases

DEADLINE_SECONDS = 5.0
LOGGER = "scoring_api.streams"
# Every public read of IOStream, with arguments that one byte satisfies.
READ_ARGUMENTS = {"read_until_regex": (b"x",), "read_until": (b"x",),
                  "read_bytes": (1,), "read_into": (bytearray(1),),
                  "read_until_close": ()}


def public_reads():
    return sorted(name for name in dir(IOStream)
                  if name.startswith("read_") and name != "read_from_fd")


class StreamTestCase(AsyncTestCase):
    def stream(self, write_timeout=0.1):
        """(server stream, client socket) over a socket pair."""
        server, client = socket.socketpair()
        self.addCleanup(client.close)
        self.first_bytes = []
        self.closes = []
        stream = ClientStream(server, write_timeout, Throttle(),
                              self.first_bytes.append, self.closes.append)
        self.addCleanup(stream.close)
        return stream, client


class WriteTimeoutTest(StreamTestCase):
    @gen_test
    async def test_an_answer_not_read_in_time_closes_the_stream(self):
        stream, client = self.stream()
        with self.assertLogs(LOGGER, "WARNING") as logs:
            with self.assertRaises(StreamClosedError):
                await stream.write(b"x" * 10_000_000)  # never read
        self.assertTrue(stream.closed())
        self.assertEqual(self.closes, [stream])
        self.assertIn("closed connections whose client did not read its"
                      " answer: answer not read in 0.1s (1 since the last"
                      " such line)", logs.output[0])

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


class NoticesTest(StreamTestCase):
    @cases(sorted(READ_ARGUMENTS))
    @gen_test
    async def test_the_first_byte_is_noticed_whatever_the_read(self, read):
        stream, client = self.stream()
        stream.watch_for_first_byte()
        client.sendall(b"x")
        if read == "read_until_close":
            client.shutdown(socket.SHUT_WR)
        await getattr(stream, read)(*READ_ARGUMENTS[read])
        self.assertEqual(self.first_bytes, [stream])

    @gen_test
    async def test_bytes_before_the_watch_are_not_a_first_byte(self):
        stream, client = self.stream()
        client.sendall(b"GET")
        await stream.read_bytes(3)
        self.assertEqual(self.first_bytes, [])
        stream.watch_for_first_byte()
        client.sendall(b"x")
        await stream.read_bytes(1)
        client.sendall(b"y")
        await stream.read_bytes(1)
        self.assertEqual(self.first_bytes, [stream])  # once

    @gen_test
    async def test_a_close_is_noticed_once(self):
        stream, client = self.stream()
        stream.close()
        stream.close()
        self.assertEqual(self.closes, [stream])


class UnreadBytesTest(StreamTestCase):
    @gen_test
    async def test_bytes_in_the_kernel_are_seen_and_left_there(self):
        stream, client = self.stream()
        self.assertFalse(stream.has_unread_bytes())
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        await asyncio.sleep(0.01)
        self.assertTrue(stream.has_unread_bytes())
        self.assertEqual(await stream.read_until(b"\r\n\r\n"),
                         b"GET / HTTP/1.1\r\n\r\n")

    @gen_test
    async def test_a_closed_stream_has_none_and_raises_nothing(self):
        # The drain asked this of a connection an answer had just closed:
        # AttributeError: 'NoneType' object has no attribute 'recv'.
        stream, client = self.stream()
        client.sendall(b"GET")
        stream.close()
        self.assertFalse(stream.has_unread_bytes())


class StreamCanaryTest(unittest.TestCase):
    """ClientStream overrides IOStream's `write`, `read_from_fd` and
    `close_fd` as Tornado 6.6.1 has them, and counts on every public read
    taking its bytes through `read_from_fd`. When one changes, re-read it,
    check ClientStream, then update this."""

    READ_FROM = {"IOStream.read_from_fd": (IOStream.read_from_fd,
                                           "2d579a9c4fa3294f"),
                 "IOStream.close_fd": (IOStream.close_fd, "9aab072a6990a676"),
                 "BaseIOStream.write": (BaseIOStream.write,
                                        "359435fb31c50ddb")}

    @cases(sorted(READ_FROM))
    def test_an_overridden_method_is_as_read_from_tornado_6_6_1(self, name):
        method, digest = self.READ_FROM[name]
        source = inspect.getsource(method)
        self.assertEqual(hashlib.sha256(source.encode()).hexdigest()[:16],
                         digest, name)

    def test_the_public_reads_are_those_the_first_byte_test_covers(self):
        self.assertEqual(public_reads(), sorted(READ_ARGUMENTS))

"""scoring_api.accept on real sockets: the accept loop's pauses and
per-turn bound, a listener that completes no new handshake, the
descriptor budget; and the canary for the Tornado code it re-implements."""
import asyncio
import errno
import hashlib
import inspect
import os
import resource
import select
import socket
import time
import unittest

import mock
from tornado import netutil
from tornado.ioloop import IOLoop
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import accept
from scoring_api.accept import Acceptor, stop_handshakes
from scoring_api.config import Settings

PAUSE_SECONDS = 0.05
DEADLINE_SECONDS = 5.0
# A client whose SYN the kernel drops retries after 1 s: a handshake not
# complete by this time was not completed at the first try.
NOT_CONNECTED_SECONDS = 0.3
LOGGER = "scoring_api.accept"


class Listener:
    """A listening socket whose accept() fails with `error` (EMFILE)
    `failures` times first; records when each accept() was tried."""

    def __init__(self, failures=0, error=errno.EMFILE):
        self.socket = listening_socket()
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


def listening_socket(port=0):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    sock.setblocking(False)
    return sock


async def until(condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within %.0fs" % DEADLINE_SECONDS)
        await asyncio.sleep(0.01)


class AcceptorTest(AsyncTestCase):
    def listener(self, failures=0, error=errno.EMFILE):
        listener = Listener(failures, error)
        self.addCleanup(listener.close)
        return listener

    def client(self, address):
        client = socket.create_connection(address)
        self.addCleanup(client.close)
        return client

    def acceptor(self, listener, accepted, can_admit=lambda: True,
                 on_accept=None, pause_seconds=PAUSE_SECONDS):
        """An Acceptor of `listener`, listening; `pause_seconds` None
        leaves its default."""
        acceptor = Acceptor(
            [listener], on_accept or (lambda connection, address:
                                      accepted.append(connection)),
            can_admit, **({} if pause_seconds is None
                          else dict(pause_seconds=pause_seconds)))
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
            self.client(listener.address)
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
    async def test_by_default_accepting_pauses_half_a_second(self):
        listener = self.listener(failures=1)
        accepted = []
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.acceptor(listener, accepted, pause_seconds=None)
            self.client(listener.address)
            await until(lambda: accepted)
        self.assertIn("pausing 0.5s at a time", logs.output[0])
        self.assertGreaterEqual(
            listener.attempts[1] - listener.attempts[0], 0.45)

    @gen_test
    async def test_a_resume_during_a_pause_waits_for_its_end(self):
        # The server resumes when a connection closes: not before the
        # pause is over, or accept() would fail at once again.
        listener = self.listener(failures=1)
        accepted = []
        with self.assertLogs(LOGGER, "WARNING"):
            acceptor = self.acceptor(listener, accepted, pause_seconds=0.5)
            self.client(listener.address)
            await until(lambda: listener.attempts)
            acceptor.resume()
            await until(lambda: accepted)
        self.assertGreaterEqual(
            listener.attempts[1] - listener.attempts[0], 0.45)

    @gen_test
    async def test_clients_gone_before_their_accept_take_no_loop_turns(self):
        listener = self.listener(failures=100, error=errno.ECONNABORTED)
        accepted = []
        turns = []

        def count_turn():
            turns.append(None)
            if not accepted:
                IOLoop.current().add_callback(count_turn)

        with self.assertNoLogs(LOGGER):
            self.acceptor(listener, accepted)
            self.client(listener.address)
            count_turn()
            await until(lambda: accepted)
        self.assertLess(len(turns), 50)  # not one a gone client

    @gen_test
    async def test_a_client_gone_before_its_accept_is_skipped_at_once(self):
        listener = self.listener(failures=1, error=errno.ECONNABORTED)
        accepted = []
        with self.assertNoLogs(LOGGER):
            self.acceptor(listener, accepted)
            self.client(listener.address)
            await until(lambda: accepted)
        # No pause: the next accept() followed in the same turn.
        self.assertLess(listener.attempts[1] - listener.attempts[0],
                        PAUSE_SECONDS)

    async def accepted_by_turn(self, listener, count):
        """Accept `count` queued clients of `listener`: the distinct counts
        accepted by the end of each turn of the loop, in order."""
        accepted = []
        at_turn_ends = []

        def on_accept(connection, address):
            accepted.append(connection)
            # Runs at the start of the next loop turn: the count then is
            # what the turns so far accepted.
            IOLoop.current().add_callback(
                lambda: at_turn_ends.append(len(accepted)))

        self.acceptor(listener, accepted, on_accept=on_accept)
        await until(lambda: len(at_turn_ends) == count)
        return sorted(set(at_turn_ends))

    @gen_test
    async def test_a_turn_takes_a_bounded_number_the_next_the_rest(self):
        listener = self.listener()
        for _ in range(5):  # all queued before the acceptor looks
            self.client(listener.address)
        with mock.patch.object(accept, "ACCEPTS_PER_TURN", 2):
            at_turn_ends = await self.accepted_by_turn(listener, 5)
        self.assertEqual(at_turn_ends, [2, 4, 5])

    @gen_test
    async def test_a_turn_takes_128_connections_as_tornado_does(self):
        listener = self.listener()
        listener.socket.listen(512)  # room for every client below
        for _ in range(130):
            self.client(listener.address)
        self.assertEqual(await self.accepted_by_turn(listener, 130),
                         [128, 130])

    @gen_test
    async def test_unable_to_admit_clients_wait_until_resumed(self):
        listener = self.listener()
        accepted = []
        acceptor = self.acceptor(listener, accepted,
                                 can_admit=lambda: len(accepted) < 1)
        self.client(listener.address)
        self.client(listener.address)
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
            self.client(listener.address)
            await until(lambda: listener.attempts)
        acceptor.stop()  # during the pause
        await asyncio.sleep(PAUSE_SECONDS * 3)
        acceptor.resume()
        await asyncio.sleep(0.05)
        self.assertEqual((accepted, len(listener.attempts)), ([], 1))

    @gen_test
    async def test_accept_queued_takes_every_queued_connection(self):
        listener = self.listener()
        for _ in range(3):
            self.client(listener.address)
        accepted = []
        acceptor = self.acceptor(listener, accepted,
                                 can_admit=lambda: False)
        acceptor.accept_queued()  # a drain's last turn: whatever the cap
        self.assertEqual(len(accepted), 3)


@unittest.skipUnless(hasattr(socket, "SO_REUSEPORT"), "Linux only")
class StopHandshakesTest(unittest.TestCase):
    """On this kernel: a listener with the drop-all filter completes no
    new connection, and still hands out those it had completed."""

    def listener(self, port=0):
        sock = listening_socket(port)
        self.addCleanup(sock.close)
        return sock

    def connecting(self, address):
        """A client whose handshake is under way."""
        client = socket.socket()
        self.addCleanup(client.close)
        client.setblocking(False)
        self.assertEqual(client.connect_ex(address), errno.EINPROGRESS)
        return client

    def connected_within(self, client, seconds):
        _, writable, _ = select.select([], [client], [], seconds)
        return bool(writable)

    def test_a_socket_refusing_the_filter_is_said_once_and_false(self):
        sock = mock.create_autospec(socket.socket, instance=True)
        sock.setsockopt.side_effect = OSError(errno.ENOPROTOOPT,
                                              "Protocol not available")
        sock.getsockname.return_value = ("127.0.0.1", 8080)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.assertFalse(stop_handshakes(sock))
        self.assertEqual(logs.output, [
            "WARNING:scoring_api.accept:cannot stop new connections on"
            " ('127.0.0.1', 8080) before closing it: [Errno 92] Protocol"
            " not available"])

    def test_elsewhere_than_linux_there_is_no_filter(self):
        sock = mock.create_autospec(socket.socket, instance=True)
        with mock.patch("sys.platform", "darwin"):
            self.assertFalse(stop_handshakes(sock))
        sock.setsockopt.assert_not_called()

    def test_no_new_connection_completes_queued_ones_are_accepted(self):
        listener = self.listener()
        address = listener.getsockname()
        before = socket.create_connection(address)
        self.addCleanup(before.close)
        before.sendall(b"sent before the drain")
        self.assertTrue(stop_handshakes(listener))
        after = self.connecting(address)
        self.assertFalse(self.connected_within(after, NOT_CONNECTED_SECONDS))
        connection, _ = listener.accept()
        self.addCleanup(connection.close)
        connection.settimeout(DEADLINE_SECONDS)
        self.assertEqual(connection.recv(100), b"sent before the drain")
        with self.assertRaises(BlockingIOError):  # the new one never queued
            listener.accept()

    def test_a_new_client_retries_to_another_listener_on_the_port(self):
        draining = self.listener()
        address = draining.getsockname()
        staying = self.listener(address[1])
        self.assertTrue(stop_handshakes(draining))
        # Some hashed to each listener; those of the draining one retry
        # their SYN a second later.
        clients = [self.connecting(address) for _ in range(8)]
        draining.close()  # nothing in its queue: no client is reset
        for client in clients:
            self.assertTrue(self.connected_within(client, DEADLINE_SECONDS))
            self.assertEqual(client.getsockopt(socket.SOL_SOCKET,
                                               socket.SO_ERROR), 0)
            client.send(b"x")
        staying.setblocking(True)
        staying.settimeout(DEADLINE_SECONDS)
        for _ in clients:
            connection, _ = staying.accept()
            self.addCleanup(connection.close)
            connection.settimeout(DEADLINE_SECONDS)
            self.assertEqual(connection.recv(1), b"x")


class DescriptorLimitTest(unittest.TestCase):
    def test_the_soft_limit_is_raised_to_the_hard_one(self):
        with mock.patch.object(resource, "getrlimit",
                               return_value=(64, 4096)), \
                mock.patch.object(resource, "setrlimit") as setrlimit:
            self.assertEqual(accept.raise_descriptor_limit(), 4096)
        setrlimit.assert_called_once_with(resource.RLIMIT_NOFILE,
                                          (4096, 4096))

    def test_an_unlimited_hard_limit_is_asked_for_too(self):
        # macOS: the hard limit is unlimited (RLIM_INFINITY, -1 here).
        with mock.patch.object(resource, "getrlimit", return_value=(
                    256, resource.RLIM_INFINITY)), \
                mock.patch.object(resource, "setrlimit") as setrlimit:
            self.assertEqual(accept.raise_descriptor_limit(),
                             resource.RLIM_INFINITY)
        setrlimit.assert_called_once_with(
            resource.RLIMIT_NOFILE,
            (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def test_a_limit_that_cannot_be_raised_is_kept_with_a_warning(self):
        with mock.patch.object(resource, "getrlimit",
                               return_value=(64, 4096)), \
                mock.patch.object(resource, "setrlimit",
                                  side_effect=ValueError("not allowed")), \
                self.assertLogs(LOGGER, "WARNING") as logs:
            self.assertEqual(accept.raise_descriptor_limit(), 64)
        self.assertIn("cannot raise the descriptor limit from 64 to 4096:"
                      " not allowed", logs.output[0])

    def test_a_warning_when_connections_may_not_fit(self):
        settings = Settings().replace(server={"max_connections": 900},
                                      store={"max_connections": 50},
                                      cache={"max_connections": 50})
        with self.assertLogs(LOGGER, "WARNING") as logs:
            accept.warn_if_descriptors_short(settings, 1024)
        self.assertIn("descriptor limit 1024 < 1032 needed ([server]"
                      " max_connections 900 + Redis connections 100 + 32"
                      " for the process)", logs.output[0])

    def test_no_warning_when_they_fit(self):
        settings = Settings().replace(server={"max_connections": 892},
                                      store={"max_connections": 50},
                                      cache={"max_connections": 50})
        with self.assertNoLogs(LOGGER):
            accept.warn_if_descriptors_short(settings, 1024)

    def test_no_warning_without_a_limit(self):
        settings = Settings().replace(server={"max_connections": 100000})
        with self.assertNoLogs(LOGGER):
            accept.warn_if_descriptors_short(settings,
                                             resource.RLIM_INFINITY)


class AcceptHandlerCanaryTest(unittest.TestCase):
    """Acceptor re-implements tornado.netutil.add_accept_handler as
    Tornado 6.6.1 has it: when Tornado changes it (say, it learns to
    pause on EMFILE), re-read it, compare Acceptor, then update this."""

    def test_add_accept_handler_is_as_read_from_tornado_6_6_1(self):
        source = inspect.getsource(netutil.add_accept_handler)
        self.assertEqual(hashlib.sha256(source.encode()).hexdigest()[:16],
                         "d2e9e2faa7d5c148")

"""server.listen and make_server: what [server] becomes."""
import asyncio
import signal
import socket
import subprocess
import sys
import unittest

import mock

from scoring_api import server
from scoring_api.config import Settings
from scoring_api.traffic import Traffic
from tornado.testing import AsyncTestCase, gen_test
from tornado.web import Application
from tests.support.cases import cases
from tests.support.helpers import ROOT
from tests.support.layers import free_port


class ListenTest(unittest.TestCase):
    def test_a_second_instance_can_listen_beside_the_first(self):
        # A rolling restart: the new instance binds before the old drains.
        settings = Settings().replace(server={"port": free_port()})
        first = server.listen(settings)
        self.addCleanup(lambda: [sock.close() for sock in first])
        second = server.listen(settings)
        self.addCleanup(lambda: [sock.close() for sock in second])
        self.assertEqual(second[0].getsockname(), first[0].getsockname())

    @cases([("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)])
    def test_an_ipv4_or_ipv6_host_is_listened_on(self, case):
        host, family = case
        settings = Settings().replace(server={"host": host,
                                              "port": free_port()})
        try:
            sockets = server.listen(settings)
        except socket.gaierror as error:
            self.fail("cannot listen on %s: %s" % (host, error))
        self.addCleanup(lambda: [sock.close() for sock in sockets])
        self.assertEqual([(sock.family, sock.getsockname()[0])
                          for sock in sockets], [(family, host)])

    def test_a_port_another_program_holds_is_refused(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            settings = Settings().replace(
                server={"port": taken.getsockname()[1]})
            with self.assertRaises(OSError):
                server.listen(settings)


class MakeServerTest(AsyncTestCase):
    @gen_test
    async def test_the_server_counts_in_the_traffic_it_is_given(self):
        traffic = Traffic()
        settings = Settings().replace(server={
            "max_connections": 7, "write_timeout": 3.0,
            "header_timeout": 4.0, "body_timeout": 5.0})
        made = server.make_server(settings, Application(), traffic)
        self.assertIs(made.traffic, traffic)
        self.assertEqual((made.max_connections, made.write_timeout,
                          made.heads.timeout, made.bodies.timeout),
                         (7, 3.0, 4.0, 5.0))
        made.drain()
        self.assertTrue(traffic.draining)


class RunLoopTest(unittest.TestCase):
    """The service serves on uvloop's event loop when uvloop is installed
    (requirements.txt), on asyncio's own otherwise."""

    @staticmethod
    async def loop_type():
        return type(asyncio.get_running_loop())

    def test_uvloop_when_installed(self):
        import uvloop
        self.assertIs(server.run_loop(self.loop_type()), uvloop.Loop)

    def test_asyncio_s_own_loop_without_it(self):
        # A Python where `import uvloop` fails (None in sys.modules).
        script = (
            "import asyncio, sys\n"
            "sys.modules['uvloop'] = None\n"
            "from scoring_api import server\n"
            "async def loop_type():\n"
            "    return type(asyncio.get_running_loop())\n"
            "print(server.run_loop(loop_type()).__module__)\n")
        module = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, check=True,
            capture_output=True, text=True).stdout.strip()
        self.assertEqual(module.split(".")[0], "asyncio")


class RunTest(unittest.TestCase):
    """server.run: one worker serves in this process, more are forked
    under a supervisor (docs/operations.md, "Workers")."""

    @cases([1, 2, 3])
    def test_one_worker_serves_here_more_under_a_supervisor(self, workers):
        self.addCleanup(signal.signal, signal.SIGHUP,
                        signal.getsignal(signal.SIGHUP))
        settings = Settings().replace(server={
            "workers": workers, "shutdown_timeout": 0.5,
            "max_worker_restarts": 4, "restart_window": 30.0})
        bound = socket.socket()
        self.addCleanup(bound.close)
        with mock.patch.object(server, "run_loop", side_effect=lambda
                               coroutine: coroutine.close()) as run_loop, \
                mock.patch.object(server, "listen", return_value=[bound]), \
                mock.patch.object(server, "supervise",
                                  return_value=0) as supervise, \
                mock.patch.object(server, "check_cache_eviction"), \
                mock.patch.object(server, "raise_descriptor_limit"), \
                mock.patch.object(server, "warn_if_descriptors_short"), \
                mock.patch.object(server, "metrics"):
            self.assertEqual(server.run(settings), 0)
        if workers == 1:
            self.assertEqual(run_loop.call_count, 1)
            supervise.assert_not_called()
            self.assertNotEqual(bound.fileno(), -1)  # serve() has it
            return
        run_loop.assert_not_called()
        # The supervisor's workers bind their own sockets: its own is
        # closed, or the kernel would hand it clients nobody accepts.
        self.assertEqual(bound.fileno(), -1)
        _, count, restarts, stop_seconds = supervise.call_args.args
        # Each worker gets shutdown_timeout and 2 s more to stop.
        self.assertEqual((count, restarts.limit, restarts.window,
                          stop_seconds), (workers, 4, 30.0, 2.5))

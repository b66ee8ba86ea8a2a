"""server.serve in this process (docs/operations.md, "Signals"): it
serves until SIGTERM, answers what is in flight, then stops; a worker
whose supervisor is gone stops by itself. The same as the process tests
(tests/integration/test_process.py) show, in a second instead of a
process start each."""
import asyncio
import gc
import json
import os
import signal
import socket
import time
import unittest

import mock

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from scoring_api import server
from scoring_api.config import Settings
from tests.support.cases import cases
from tests.support.helpers import SCORE_REQUEST, api_request
from tests.support.layers import BlackHole, free_port

# Guards against a hang only: a stop takes milliseconds.
STOP_SECONDS = 10.0


class ServeTest(unittest.TestCase):
    def setUp(self):
        thresholds = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *thresholds)
        self.addCleanup(gc.unfreeze)
        self.port = free_port()

    def settings(self, store_url=None, **store):
        # Nothing listens at the store's address unless one is given.
        # A busy machine lags the loop: a Redis timeout would then be the
        # process's own ("overloaded"), where a test expects the store's.
        # A stop with nothing in flight is at once: shutdown_timeout is
        # only how long it may wait for what is.
        return Settings().replace(
            server={"port": self.port, "shutdown_timeout": 6 * STOP_SECONDS},
            overload={"starved_lag": 30.0, "shed_lag": 0.0},
            store=dict(store, url=store_url or "redis://127.0.0.1:%d/0"
                       % free_port()))

    def serve(self, settings, scenario, parent=None):
        """Run serve() beside `scenario()` (a coroutine function) on one
        loop; returns what `scenario` returned, once serve() returned."""
        sockets = server.listen(settings)
        self.addCleanup(lambda: [sock.close() for sock in sockets])

        async def both():
            serving = asyncio.ensure_future(
                server.serve(settings, sockets, parent))
            try:
                result = await scenario()
                await asyncio.wait_for(serving, STOP_SECONDS)
            finally:
                serving.cancel()
                AsyncHTTPClient().close()
            return result

        return server.run_loop(both())

    async def post(self, body):
        answer = await AsyncHTTPClient().fetch(
            "http://127.0.0.1:%d/method/" % self.port, method="POST",
            body=json.dumps(body), raise_error=False)
        return answer.code, json.loads(answer.body)

    async def stop_while_a_call_waits(self, hole):
        """Send a call whose store is `hole` (a BlackHole), and SIGTERM once
        its store connection is made: the call's future, still waiting."""
        call = asyncio.ensure_future(self.post(api_request(
            "clients_interests", {"client_ids": [1]})))
        loop = asyncio.get_running_loop()
        hole.socket.setblocking(False)
        connection, _ = await loop.sock_accept(hole.socket)
        self.addCleanup(connection.close)
        os.kill(os.getpid(), signal.SIGTERM)  # the call waits on Redis
        return call

    def test_it_serves_until_sigterm_then_stops(self):
        async def scenario():
            answer = await self.post(SCORE_REQUEST)
            thresholds = gc.get_threshold()
            os.kill(os.getpid(), signal.SIGTERM)
            return answer, thresholds

        with self.assertLogs("scoring_api.server", "INFO") as logs:
            answer, thresholds = self.serve(self.settings(), scenario)
        self.assertEqual(answer, (200, {"code": 200,
                                        "response": {"score": 3.0}}))
        self.assertEqual([record.getMessage() for record in logs.records], [
            "serving on 127.0.0.1:%d (pid %d)" % (self.port, os.getpid()),
            "stopping: 0 requests in flight", "stopped"])
        # Young collections every 7000 allocations while it serves.
        self.assertEqual(thresholds, (7000, 10, 10))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.port), 1).close()

    def test_sigint_stops_it_too(self):
        async def scenario():
            await self.post(SCORE_REQUEST)
            os.kill(os.getpid(), signal.SIGINT)

        with self.assertLogs("scoring_api.server", "INFO") as logs:
            self.serve(self.settings(), scenario)
        self.assertEqual(logs.records[-1].getMessage(), "stopped")

    def test_a_request_in_flight_at_the_stop_is_answered(self):
        hole = BlackHole()
        self.addCleanup(hole.close)
        settings = self.settings(hole.url, timeout=0.5, retries=0)

        async def scenario():
            return await (await self.stop_while_a_call_waits(hole))

        with self.assertLogs("scoring_api.server", "INFO") as logs:
            answer = self.serve(settings, scenario)
        self.assertEqual(answer, (503, {"code": 503,
                                        "error": "store is unavailable"}))
        self.assertIn("stopping: 1 requests in flight",
                      [record.getMessage() for record in logs.records])

    def test_a_request_still_running_after_shutdown_timeout_is_cut(self):
        # docs/operations.md: after shutdown_timeout whatever is left is
        # closed; the store would take 30 s to answer this one.
        hole = BlackHole()
        self.addCleanup(hole.close)
        settings = self.settings(hole.url, timeout=30.0, retries=0).replace(
            server={"port": self.port, "shutdown_timeout": 1.5})

        async def scenario():
            call = await self.stop_while_a_call_waits(hole)
            stopped = time.monotonic()
            with self.assertRaises(HTTPClientError) as raised:
                await asyncio.wait_for(call, STOP_SECONDS)
            return raised.exception.code, time.monotonic() - stopped

        with self.assertLogs("scoring_api.server", "INFO"):
            code, cut_after = self.serve(settings, scenario)
        self.assertEqual(code, 599)
        # A supervisor (or an orchestrator) kills what overstays its time.
        self.assertGreaterEqual(cut_after, 1.5)
        self.assertLess(cut_after, 2.0)

    # Its new parent (init, a subreaper) may have a lower pid or a higher.
    @cases([1, -1])
    def test_a_worker_stops_when_its_supervisor_is_gone(self, offset):
        async def scenario():
            return await self.post(SCORE_REQUEST)

        gone = os.getppid() + offset  # not this process's parent
        with self.assertLogs("scoring_api.server", "INFO") as logs:
            self.assertEqual(self.serve(self.settings(), scenario, gone)[0],
                             200)
        messages = [record.getMessage() for record in logs.records]
        self.assertIn("the supervisor (pid %d) is gone; stopping" % gone,
                      messages)
        self.assertEqual(messages[-1], "stopped")

    def test_a_worker_whose_supervisor_lives_keeps_serving(self):
        async def scenario():
            # Past the first checks of its parent (one a second).
            await asyncio.sleep(server.PARENT_CHECK_MILLISECONDS / 500)
            answer = await self.post(SCORE_REQUEST)
            os.kill(os.getpid(), signal.SIGTERM)
            return answer

        timers = mock.patch.object(server, "PeriodicCallback",
                                   wraps=server.PeriodicCallback)
        with self.assertLogs("scoring_api.server", "INFO") as logs, \
                timers as made:
            self.assertEqual(
                self.serve(self.settings(), scenario, os.getppid())[0], 200)
        self.assertNotIn("gone", "".join(
            record.getMessage() for record in logs.records))
        # Lines flushed, and the parent checked, once a second.
        self.assertEqual([call.args[1] for call in made.call_args_list],
                         [1000, 1000])

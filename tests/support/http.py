"""The HTTP layer under test: the app over an in-memory store, served as in
production, and what the functional tests read of its answers."""
import asyncio
import json
import logging

from tornado.tcpclient import TCPClient
from tornado.testing import AsyncHTTPTestCase

from scoring_api.app import make_app
from scoring_api.config import Settings
from scoring_api.server import make_server
from scoring_api.traffic import Traffic
from tests.support.helpers import MemoryStore, api_request

SCORE_ARGUMENTS = {"phone": "79175002040", "email": "stupnikov@otus.ru"}
JSON_TYPE = "application/json; charset=UTF-8"


class HttpTestCase(AsyncHTTPTestCase):
    """The app of `settings` over a MemoryStore holding interests of
    client 1, behind the server production runs; `self.traffic` is the
    server's state the app reads (set `draining` to start a drain)."""

    settings = Settings().replace(server={"max_body_bytes": 1024})

    def get_app(self):
        self.store = MemoryStore()
        self.store.put_interests({1: ["cars", "pets"]})
        self.traffic = Traffic()
        self.app = make_app(self.settings, self.store, self.traffic,
                            self.make_admission())
        return self.app

    def make_admission(self):
        """The app's quotas and shedding (admission.Admission); None: those
        of `settings`."""
        return None

    def get_http_server(self):
        return make_server(self.settings, self.app)  # as in production

    def hold_store_reads(self):
        """Every read of many keys (clients_interests) waits until the
        returned event is set: a call stays in flight meanwhile."""
        release = asyncio.Event()
        real_get_many = self.store.get_many

        async def held_get_many(keys):
            await release.wait()
            return await real_get_many(keys)

        self.store.get_many = held_get_many
        return release

    async def leave_while_waiting(self, release):
        """Send a clients_interests call, close the connection while it
        waits on the store (see hold_store_reads), then let the store
        answer `release` and wait until the server is done with it."""
        body = json.dumps(api_request("clients_interests",
                                      {"client_ids": [1]})).encode()
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(b"POST /method/ HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: %d\r\n\r\n%s"
                           % (len(body), body))
        await asyncio.sleep(0.05)  # the call waits on the store
        stream.close()
        await asyncio.sleep(0.05)  # the server sees the close
        release.set()
        await self.assert_no_request_left()

    def post(self, body, path="/method/", headers=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return self.fetch(path, method="POST", body=body,
                          headers=headers or {})

    async def assert_no_request_left(self):
        """Nothing is still being served: no task is left but the test's
        own (a handler still waiting, a connection still read), and the
        count a stop waits for is 0."""
        await asyncio.sleep(0.05)
        left = [task for task in asyncio.all_tasks()
                if task is not asyncio.current_task()]
        self.assertEqual(left, [])
        self.assertEqual(self.traffic.in_flight, 0)

    def assert_answer(self, response, code):
        """The status is `code`, the body is JSON and says the same."""
        self.assertEqual(response.code, code, response.body)
        self.assertEqual(response.headers["Content-Type"], JSON_TYPE)
        body = json.loads(response.body)
        self.assertEqual(body["code"], code)
        self.assertEqual(set(body), {"code", "response" if code == 200
                                     else "error"})
        return body.get("response", body.get("error"))


async def raw_exchange(port, head, body=b""):
    """(stream, everything the service sent until it closed) of a request
    written as raw bytes."""
    stream = await TCPClient().connect("127.0.0.1", port)
    await stream.write(head + body)
    return stream, await stream.read_until_close()


def head_of(answer):
    """(status, {lower-case header name: value}, body) of one raw answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def keep_alive_call(stream, body):
    """(status, {lower-case header name: value}) of one POST /method/ of
    `body` (a dict) on `stream`, a kept-alive connection, its answer read
    whole."""
    data = json.dumps(body).encode()
    await stream.write(b"POST /method/ HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    status, headers, _ = head_of(await stream.read_until(b"\r\n\r\n"))
    await stream.read_bytes(int(headers["content-length"]))
    return status, headers


async def exchange(port, data):
    """Everything the service sent, until it closed the connection, for
    `data` sent on a new one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await reader.read()
    finally:
        writer.close()


class CaughtRecords(logging.Handler):
    """Every record of every logger, at every level, from `catch(test)`
    until the test ends."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    @classmethod
    def catch(cls, test):
        caught = cls()
        root = logging.getLogger()
        previous = root.level
        root.addHandler(caught)
        root.setLevel(logging.DEBUG)
        test.addCleanup(root.setLevel, previous)
        test.addCleanup(root.removeHandler, caught)
        return caught

"""POST /method/ without RequestHandler: the hot path of the service.

Tornado's RequestHandler costs about a third of a cache hit (measured:
a bare RequestHandler spends 440 us a request where a bare
HTTPMessageDelegate spends 325). `MethodRoute` is a route target that
answers /method/ with a small `HTTPMessageDelegate` keeping every promise
MethodHandler kept: the JSON envelope for every code (400, 405, 413, 500
included), X-Request-Id, the body limit and body timeout, the access log
line and the count of requests in flight.
"""
import asyncio
import contextvars
import logging
import time
from http import HTTPStatus

import orjson
import tornado
from tornado import httputil, routing

from scoring_api import logs
from scoring_api.deadlines import Deadlines
from scoring_api.handlers import (REQUEST_ID_HEADER, REQUEST_IDS,
                                  _REQUEST_ID_PATTERN, decode_body, envelope,
                                  log_request)
from scoring_api.methods import method_handler

logger = logging.getLogger("scoring_api.handlers")

ALLOWED = "POST"
CONTENT_TYPE = "application/json; charset=UTF-8"
SERVER = "TornadoServer/%s" % tornado.version


class _Date:
    """The Date header, formatted once a second instead of per answer."""

    second = None
    text = ""

    @classmethod
    def now(cls):
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.text = httputil.format_timestamp(second)
        return cls.text


class MethodRoute(routing.Router):
    """The route target of /method/, with what its requests need:
    `store`, `config` and `requests` (the RequestCounter a graceful stop
    waits on)."""

    def __init__(self, store, config, requests):
        self.dependencies = dict(
            store=store, config=config, requests=requests,
            bodies=Deadlines(config.server.body_timeout))

    def find_handler(self, request, **route_arguments):
        return MethodDelegate(request, **self.dependencies)


class MethodDelegate(httputil.HTTPMessageDelegate):
    """One request to /method/, from its headers to its answer."""

    api_method = None  # what the access log names, when a method ran
    error_message = None
    status = HTTPStatus.OK
    answered = False
    closed = False

    def __init__(self, request, bodies, store, config, requests):
        self.request = request
        self.bodies = bodies
        self.connection = request.connection
        self.store = store
        self.config = config
        self.requests = requests
        self.chunks = []
        given = request.headers.get(REQUEST_ID_HEADER, "")
        self.request_id = (given if _REQUEST_ID_PATTERN.fullmatch(given)
                           else REQUEST_IDS.next())
        requests.active += 1
        self.counted = True

    # The access log's view of a request (see handlers.log_request).
    def get_status(self):
        return int(self.status)

    def headers_received(self, start_line, headers):
        limit = self.config.server.max_body_bytes
        # Also cuts a chunked body that grows past the limit (bare 400).
        self.connection.set_max_body_size(limit)
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            self.answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        error="request body is over %d bytes" % limit)
            return
        # Cheaper than Tornado's body_timeout, which wraps every body read.
        self.bodies.wait(self)

    def data_received(self, chunk):
        self.chunks.append(chunk)

    def finish(self):
        self.stop_body_timer()
        if self.answered:
            return
        if self.request.method != ALLOWED:
            self.answer(HTTPStatus.METHOD_NOT_ALLOWED,
                        error=HTTPStatus.METHOD_NOT_ALLOWED.phrase)
            return
        context = contextvars.copy_context()
        context.run(logs.request_id.set, self.request_id)
        task = asyncio.get_running_loop().create_task(self.call(),
                                                      context=context)
        task.add_done_callback(_raise_unexpected)

    def on_connection_close(self):
        self.stop_body_timer()
        self.closed = True
        self.uncount()  # the client left, or we cut a slow body

    async def call(self):
        try:
            body = decode_body(b"".join(self.chunks))
        except ValueError as error:
            self.answer(HTTPStatus.BAD_REQUEST, error=str(error))
            return
        ctx = {"request_id": self.request_id}
        try:
            response, code = await method_handler(
                body, ctx, self.store, self.config)
        except Exception:
            logger.exception("unexpected error")
            response, code = (HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
                              HTTPStatus.INTERNAL_SERVER_ERROR)
        self.api_method = ctx.get("method")
        if code == HTTPStatus.OK:
            self.answer(code, response)
        else:
            self.answer(code, error=response)

    def answer(self, code, response=None, error=None):
        """Send the JSON envelope with `code`, log it, uncount the request."""
        code = HTTPStatus(code)
        self.answered = True
        self.status = code
        self.error_message = error
        try:
            if not self.closed:
                self.write(code, orjson.dumps(envelope(code, response, error)))
        finally:
            log_request(self)
            self.uncount()

    def write(self, code, body):
        headers = httputil.HTTPHeaders()
        headers["Server"] = SERVER
        headers["Content-Type"] = CONTENT_TYPE
        headers["Date"] = _Date.now()
        headers[REQUEST_ID_HEADER] = self.request_id
        headers["Content-Length"] = str(len(body))
        if code == HTTPStatus.METHOD_NOT_ALLOWED:
            headers["Allow"] = ALLOWED
        if self.request.method == "HEAD":
            body = None  # the headers of the answer, without its body
        self.connection.write_headers(
            httputil.ResponseStartLine("", int(code), code.phrase), headers,
            body)
        self.connection.finish()

    def late(self):  # the body did not come in time (see Deadlines)
        logger.warning("body not received in %.1fs; closing the connection",
                       self.config.server.body_timeout)
        self.connection.close()

    def stop_body_timer(self):
        self.bodies.done(self)

    def uncount(self):
        if self.counted:
            self.counted = False
            self.requests.active -= 1


def _raise_unexpected(task):
    """A failure `call` did not catch is logged, not lost with its task."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("request failed", exc_info=task.exception())

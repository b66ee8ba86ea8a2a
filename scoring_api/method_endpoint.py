"""POST /method/ without RequestHandler: the hot path of the service.

Tornado's RequestHandler costs about a third of a cache hit (measured:
a bare RequestHandler spends 440 us a request where a bare
HTTPMessageDelegate spends 325): its per-request setup (headers cleared
and set, the flow through prepare / the verb method / finish / on_finish,
a future per call) is most of it. `MethodRoute` is a route target that
answers /method/ with a small `HTTPMessageDelegate` keeping every promise
a RequestHandler kept: the JSON envelope for every code (400, 405, 413, 500
included), X-Request-Id, the body limit and body timeout, the access line,
the request metrics and the count of requests in flight. What it shares
with the other routes' JsonHandler lives in handlers.
"""
import asyncio
import contextvars
import logging
import re
import time
from http import HTTPStatus

import tornado
from tornado import httputil, routing

from scoring_api import logs
from scoring_api.deadlines import Deadlines
from scoring_api.handlers import (CONTENT_TYPE, REQUEST_ID_HEADER, Answer,
                                  decode_body, envelope, log_request,
                                  request_id_of)
from scoring_api.methods import method_handler

logger = logging.getLogger("scoring_api.handlers")

ALLOWED = "POST"
# Host headers HTTPServerRequest accepts, in their common form (a name or
# an IPv4 address, and a port); any other goes through HTTPServerRequest,
# whose checks answer 400 to a missing, invalid or repeated Host.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?", re.ASCII)
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


class MethodRequest:
    """What the delegate and the access line read of a request: the part
    of HTTPServerRequest they use, without its query string's parsing and
    copying (2.4 % of a cache hit in the profile)."""

    __slots__ = ("method", "path", "headers", "connection", "remote_ip",
                 "_start_time")

    def __init__(self, connection, start_line, headers):
        self.method = start_line.method
        self.path = start_line.path
        self.headers = headers
        self.connection = connection
        # The client's address (X-Real-Ip / X-Forwarded-For with xheaders).
        self.remote_ip = connection.context.remote_ip
        self._start_time = time.time()

    def request_time(self):
        return time.time() - self._start_time


class MethodRoute(routing.Router):
    """The route target of /method/, with what its requests need:
    `store`, `config` and `requests` (the RequestCounter a graceful stop
    waits on)."""

    def __init__(self, store, config, requests):
        self.dependencies = dict(
            store=store, config=config, requests=requests,
            bodies=Deadlines(config.server.body_timeout))

    def delegate(self, connection, start_line, headers):
        """The delegate of a request to exactly /method/, without a query
        string (see app.Application)."""
        if _PLAIN_HOST.fullmatch(headers.get("Host", "")):
            request = MethodRequest(connection, start_line, headers)
        else:
            request = httputil.HTTPServerRequest(
                connection=connection, start_line=start_line, headers=headers)
        return MethodDelegate(request, **self.dependencies)

    def find_handler(self, request, **route_arguments):
        """The delegate of a request Tornado's routing brought here."""
        return MethodDelegate(request, **self.dependencies)


class MethodDelegate(Answer, httputil.HTTPMessageDelegate):
    """One request to /method/, from its headers to its answer; `request`
    is a MethodRequest or an HTTPServerRequest."""

    is_api_call = True
    status = HTTPStatus.OK
    answered = False
    closed = False

    def __init__(self, request, bodies, store, config, requests):
        self.request = request
        self.bodies = bodies
        self.connection = request.connection
        self.store = store
        self.config = config
        self.chunks = []
        self.request_id = request_id_of(request.headers)
        self.count(requests)

    def get_status(self):  # for log_request
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
        self.bodies.done(self)
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
        self.bodies.done(self)
        self.closed = True
        self.uncount()  # the client left, or we cut a slow body

    def late(self):  # the body did not come in time (see Deadlines)
        logger.warning("body not received in %.1fs; closing the connection",
                       self.config.server.body_timeout)
        self.connection.close()

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
                self.write(code, envelope(code, response, error))
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


def _raise_unexpected(task):
    """A failure `call` did not catch is logged, not lost with its task."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("request failed", exc_info=task.exception())

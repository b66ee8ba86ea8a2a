"""HTTP <-> method calls: the only module that knows status lines and the
JSON envelope of SPEC 3."""
import asyncio
import itertools
import logging
import os
import re
import secrets
from http import HTTPStatus

import orjson
from tornado import web

from scoring_api import logs, metrics
from scoring_api.methods import method_handler

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's id is echoed only when it cannot forge a log line.
_REQUEST_ID_PATTERN = re.compile(r"[\w.:@/+=-]{1,128}", re.ASCII)


class RequestIds:
    """Request ids of 32 hex digits: a random prefix per process and a
    counter, unique without uuid4's cost on every request."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.prefix = secrets.token_hex(10)
        self.counter = itertools.count()

    def next(self):
        return "%s%012x" % (self.prefix, next(self.counter))


REQUEST_IDS = RequestIds()
os.register_at_fork(after_in_child=REQUEST_IDS.reset)  # one per worker


def decode_body(body):
    """The JSON object in `body` (bytes); ValueError says what is wrong.

    orjson refuses NaN, Infinity and nesting deeper than 1024: all "not
    valid JSON" here.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("body is not valid UTF-8") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def envelope(code, response=None, error=None):
    """The body of every answer: {"code", "response"} or {"code", "error"}."""
    if code == HTTPStatus.OK:
        return {"code": int(code), "response": response}
    return {"code": int(code), "error": error}


class RequestCounter:
    """How many requests are being served, so a stop can wait for them."""

    def __init__(self):
        self.active = 0


class JsonHandler(web.RequestHandler):
    """Answers everything, errors included, with the JSON envelope and the
    request id."""

    api_method = None  # what the access log names, when a method ran
    error_message = None
    is_api_call = False  # counted in the request metrics

    def initialize(self, **dependencies):
        self.__dict__.update(dependencies)
        self.application.settings["requests"].active += 1
        self.counted = True
        if self.is_api_call:
            metrics.request_started()

    def on_finish(self):
        self.uncount()

    def on_connection_close(self):
        super().on_connection_close()  # ends a body still awaited
        self.uncount()  # the client left, or we cut a slow body

    def uncount(self):
        if self.counted:
            self.counted = False
            self.application.settings["requests"].active -= 1
            if self.is_api_call:
                metrics.request_finished()

    @property
    def request_id(self):
        if "_request_id" not in self.__dict__:
            given = self.request.headers.get(REQUEST_ID_HEADER, "")
            self._request_id = (given if _REQUEST_ID_PATTERN.fullmatch(given)
                                else REQUEST_IDS.next())
        return self._request_id

    def set_default_headers(self):
        # Also runs on every error, after the headers were cleared.
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header(REQUEST_ID_HEADER, self.request_id)

    def prepare(self):
        logs.request_id.set(self.request_id)

    def send_json(self, code, response=None, error=None):
        self.error_message = error
        self.set_status(int(code))
        self.finish(orjson.dumps(envelope(code, response, error)))

    def write_error(self, status_code, **kwargs):
        if status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        self.send_json(status_code, error=self._reason)


class NotFoundHandler(JsonHandler):
    def prepare(self):
        super().prepare()
        raise web.HTTPError(HTTPStatus.NOT_FOUND)


class HealthHandler(JsonHandler):
    """200 while the process lives, with the state of the store and cache."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    async def get(self):
        self.send_json(HTTPStatus.OK, await self.store.health())

    head = get


class ReadyHandler(JsonHandler):
    """Readiness: 200 while the store answers a PING within its timeouts,
    503 otherwise, so that a load balancer takes the instance out."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    async def get(self):
        health = await self.store.health()
        if health["store"] == "up":
            self.send_json(HTTPStatus.OK, health)
        else:
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE,
                           error="store is unavailable")

    head = get


class MetricsHandler(JsonHandler):
    """Prometheus text of every worker's metrics."""

    SUPPORTED_METHODS = ("GET",)

    def get(self):
        body, content_type = metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


class DocumentHandler(JsonHandler):
    """A JSON document read once at start-up (the OpenAPI description)."""

    SUPPORTED_METHODS = ("GET",)

    def get(self):
        self.finish(self.document)


@web.stream_request_body
class MethodHandler(JsonHandler):
    """POST /method/: one API call. Needs `store` and `config`."""

    SUPPORTED_METHODS = ("POST",)
    is_api_call = True
    body_timer = None

    def prepare(self):
        super().prepare()
        self.chunks = []
        # Cheaper than Tornado's body_timeout, which wraps every body read.
        self.body_timer = asyncio.get_running_loop().call_later(
            self.config.server.body_timeout, self.body_too_slow)
        limit = self.config.server.max_body_bytes
        # Also cuts a chunked body that grows past the limit (bare 400).
        self.request.connection.set_max_body_size(limit)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           error="request body is over %d bytes" % limit)

    def data_received(self, chunk):
        self.chunks.append(chunk)

    def body_too_slow(self):
        logger.warning("body not received in %.1fs; closing the connection",
                       self.config.server.body_timeout)
        self.request.connection.close()

    def stop_body_timer(self):
        if self.body_timer is not None:
            self.body_timer.cancel()

    def on_finish(self):
        self.stop_body_timer()
        super().on_finish()

    def on_connection_close(self):
        self.stop_body_timer()
        super().on_connection_close()

    async def post(self):
        self.stop_body_timer()
        try:
            body = decode_body(b"".join(self.chunks))
        except ValueError as error:
            self.send_json(HTTPStatus.BAD_REQUEST, error=str(error))
            return
        ctx = {"request_id": self.request_id}
        response, code = await method_handler(
            body, ctx, self.store, self.config)
        self.api_method = ctx.get("method")
        if code == HTTPStatus.OK:
            self.send_json(code, response)
        else:
            self.send_json(code, error=response)


def log_request(handler):
    """Tornado's log_function, once per answer: the request metrics, and
    the access line (at WARNING from 400 up)."""
    status = handler.get_status()
    request = handler.request
    seconds = request.request_time()
    api_method = getattr(handler, "api_method", None)
    if getattr(handler, "is_api_call", False):
        metrics.observe_request(api_method, status, seconds)
    level = (logging.INFO if status < 400 else
             logging.WARNING if status < 500 else logging.ERROR)
    if not logger.isEnabledFor(level):
        return
    duration_ms = round(1000.0 * seconds, 2)
    error = getattr(handler, "error_message", None)
    logger.log(level, "%s %s %s %s %d %.2fms%s", request.remote_ip,
               request.method, request.path, api_method or "-", status,
               duration_ms, ": " + error if error else "",
               extra={"request_id": getattr(handler, "request_id", "-"),
                      "access": {"http_method": request.method,
                                 "path": request.path,
                                 "api_method": api_method,
                                 "code": status,
                                 "duration_ms": duration_ms,
                                 "client": request.remote_ip}})

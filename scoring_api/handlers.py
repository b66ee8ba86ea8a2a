"""The RequestHandlers: HTTP in, a call of the method logic, HTTP out.

Every answer is the JSON envelope of SPEC 3 with the request id; every
answer is counted while in flight (so a stop can wait for it) and logged
once, in `log_request`.
"""
import itertools
import logging
import os
import re
import secrets
from http import HTTPStatus

import orjson
from tornado import routing, web

from scoring_api import logs, metrics
from scoring_api.methods import method_handler

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
CONTENT_TYPE = "application/json; charset=UTF-8"
# A caller's id is echoed only when it cannot forge a log line.
_REQUEST_ID_PATTERN = re.compile(r"[\w.:@/+=-]{1,128}", re.ASCII)
# The largest body over max_body_bytes that is read (and thrown away)
# before its 413; a larger one is answered at once (TooLargeHandler).
DISCARDED_BODY_MAX_BYTES = 16 * 1024 * 1024


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
    """The body of every answer (bytes): {"code", "response"} or
    {"code", "error"}."""
    if code == HTTPStatus.OK:
        return orjson.dumps({"code": int(code), "response": response})
    return orjson.dumps({"code": int(code), "error": error})


class JsonHandler(web.RequestHandler):
    """Answers everything, errors included, with the JSON envelope and the
    request id. Dependencies come from the route's dict (`initialize`)."""

    api_method = None  # what the access log names, when a method ran
    error_message = None
    is_api_call = False  # counted in the request metrics
    counted = False
    close_after_answer = False

    def initialize(self, **dependencies):
        self.__dict__.update(dependencies)
        self.traffic = self.application.settings["traffic"]
        self.traffic.started()
        self.counted = True
        if self.is_api_call:
            metrics.request_started()

    def uncount(self):
        if self.counted:
            self.counted = False
            self.traffic.finished()
            if self.is_api_call:
                metrics.request_finished()

    def on_finish(self):
        self.uncount()

    def on_connection_close(self):
        super().on_connection_close()  # ends a body still awaited
        self.uncount()  # the client left

    @property
    def request_id(self):
        """The caller's X-Request-Id when it cannot forge a log line, else
        a new one."""
        if "_request_id" not in self.__dict__:
            headers = self.request.headers
            # `in` first: HTTPHeaders.get raises and catches a KeyError
            # for a missing header, dearer than the rest of this.
            given = (headers[REQUEST_ID_HEADER]
                     if REQUEST_ID_HEADER in headers else "")
            self._request_id = (given if _REQUEST_ID_PATTERN.fullmatch(given)
                                else REQUEST_IDS.next())
        return self._request_id

    def set_default_headers(self):
        # Also runs on every error, after the headers were cleared.
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header(REQUEST_ID_HEADER, self.request_id)

    def prepare(self):
        logs.request_id.set(self.request_id)

    def compute_etag(self):
        # No ETag, so never a bodyless 304: a probe or a proxy must see the
        # state of now, and every answer is the JSON envelope.
        return None

    def send_json(self, code, response=None, error=None):
        self.error_message = error
        self.set_status(int(code))
        self.finish(envelope(code, response, error))

    def finish(self, chunk=None):
        """Finish the answer; one that must close its connection (a 413, or
        any answer while the server drains) says so and closes it once
        written."""
        closing = self.close_after_answer or self.traffic.draining
        if closing:
            self.set_header("Connection", "close")
        written = super().finish(chunk)
        if closing:
            connection = self.request.connection
            written.add_done_callback(lambda _: connection.close())
        return written

    def log_exception(self, typ, value, tb):
        # Tornado's own line names the whole URI, query string included,
        # which may carry anything a caller put there.
        if isinstance(value, web.HTTPError):
            return  # an answer like any other: the access line says it
        logger.error("unexpected error in %s %s", self.request.method,
                     self.request.path, exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        if status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        error = kwargs.get("exc_info", (None, None, None))[1]
        self.send_json(status_code, error=_reason(status_code, error))


def _reason(status_code, error):
    """The reason phrase of an error answer: an HTTPError's own, else the
    standard one."""
    reason = getattr(error, "reason", None)
    if reason:
        return reason
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Unknown"


class MethodHandler(JsonHandler):
    """POST /method/: an API call (SPEC 3), answered by `method_handler`."""

    SUPPORTED_METHODS = ("POST",)
    is_api_call = True

    async def post(self):
        try:
            body = decode_body(self.request.body)
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


class LargerBody(routing.PathMatches):
    """A route matcher: `path_pattern`, for a request whose Content-Length
    is over `limit` bytes."""

    def __init__(self, path_pattern, limit):
        super().__init__(path_pattern)
        self.limit = limit

    def match(self, request):
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.limit:
            return super().match(request)
        return None


@web.stream_request_body
class TooLargeHandler(JsonHandler):
    """/method/ with a body over max_body_bytes (see LargerBody): 413.

    The body is read to its end and thrown away before the 413, so that a
    proxy still sending it reads the answer instead of a reset (SPEC 8,
    "Behind a proxy"); a body over DISCARDED_BODY_MAX_BYTES, or one the
    client waits to send (Expect: 100-continue), is answered at once. The
    answer closes the connection either way.
    """

    SUPPORTED_METHODS = ("POST",)
    is_api_call = True
    close_after_answer = True

    def prepare(self):
        super().prepare()
        length = int(self.request.headers["Content-Length"])
        if (length > DISCARDED_BODY_MAX_BYTES
                or self.request.headers.get("Expect") == "100-continue"):
            self.answer()  # the body is not read at all
        else:
            self.request.connection.set_max_body_size(length)

    def data_received(self, chunk):
        pass  # thrown away

    def post(self):
        self.answer()

    def answer(self):
        self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       error="request body is over %d bytes"
                       % self.config.server.max_body_bytes)


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

    SUPPORTED_METHODS = ("GET", "HEAD")

    def get(self):
        body, content_type = metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)

    head = get


class DocumentHandler(JsonHandler):
    """A JSON document read once at start-up (the OpenAPI description)."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def get(self):
        self.finish(self.document)

    head = get


def log_request(handler):
    """Once per answer (Tornado's log_function), `handler` a JsonHandler:
    the request metrics, and the access line (at WARNING from 400 up,
    ERROR for a 500 only: a 503 is Redis being down, which the store
    already reports once per interval)."""
    status = handler.get_status()
    request = handler.request
    seconds = request.request_time()
    api_method = handler.api_method
    if handler.is_api_call:
        metrics.observe_request(api_method, status, seconds)
    level = (logging.INFO if status < 400 else
             logging.ERROR if status == 500 else logging.WARNING)
    if not logger.isEnabledFor(level):
        return
    duration_ms = round(1000.0 * seconds, 2)
    error = handler.error_message
    logs.log_access(
        logger, level, "%s %s %s %s %d %.2fms%s" % (
            request.remote_ip, request.method, request.path,
            api_method or "-", status, duration_ms,
            ": " + error if error else ""),
        handler.request_id,
        {"http_method": request.method, "path": request.path,
         "api_method": api_method, "code": status,
         "duration_ms": duration_ms, "client": request.remote_ip})

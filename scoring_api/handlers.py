"""What every answer shares, the JSON envelope of SPEC 3, the request id,
the count in flight and the access line, and the RequestHandlers of every
path but /method/ (answered by method_endpoint, at less cost)."""
import itertools
import logging
import os
import re
import secrets
from http import HTTPStatus

import orjson
from tornado import web

from scoring_api import logs, metrics

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
CONTENT_TYPE = "application/json; charset=UTF-8"
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


def request_id_of(headers):
    """The caller's X-Request-Id when it cannot forge a log line, else a
    new one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return (given if _REQUEST_ID_PATTERN.fullmatch(given)
            else REQUEST_IDS.next())


def envelope(code, response=None, error=None):
    """The body of every answer (bytes): {"code", "response"} or
    {"code", "error"}."""
    if code == HTTPStatus.OK:
        return orjson.dumps({"code": int(code), "response": response})
    return orjson.dumps({"code": int(code), "error": error})


class RequestCounter:
    """How many requests are being served, so a stop can wait for them."""

    def __init__(self):
        self.active = 0


class Answer:
    """What every request's answerer shares, a RequestHandler (JsonHandler)
    or the /method/ delegate (method_endpoint): its count in flight, and
    the fields `log_request` reads (with `request`, `request_id` and
    `get_status()`, which each has)."""

    api_method = None  # what the access log names, when a method ran
    error_message = None
    is_api_call = False  # counted in the request metrics
    counted = False

    def count(self, requests):
        """Count this request in `requests` (a RequestCounter) until
        `uncount`."""
        self.requests = requests
        requests.active += 1
        self.counted = True
        if self.is_api_call:
            metrics.request_started()

    def uncount(self):
        if self.counted:
            self.counted = False
            self.requests.active -= 1
            if self.is_api_call:
                metrics.request_finished()


class JsonHandler(Answer, web.RequestHandler):
    """Answers everything, errors included, with the JSON envelope and the
    request id."""

    def initialize(self, **dependencies):
        self.__dict__.update(dependencies)
        self.count(self.application.settings["requests"])

    def on_finish(self):
        self.uncount()

    def on_connection_close(self):
        super().on_connection_close()  # ends a body still awaited
        self.uncount()  # the client left

    @property
    def request_id(self):
        if "_request_id" not in self.__dict__:
            self._request_id = request_id_of(self.request.headers)
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
    """Once per answer (Tornado's log_function, and the /method/ delegate's
    call), `handler` an Answer: the request metrics, and the access line
    (at WARNING from 400 up, ERROR for a 500 only: a 503 is Redis being
    down, which the store already reports once per interval)."""
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

"""The RequestHandlers: HTTP in, a call of the method logic, HTTP out.

Every answer is the JSON envelope of docs/api.md with the request id, and
is logged once, in `log_request`. Each handler takes its dependencies in
`initialize`, from its route's dict (`app.make_app` builds them).
"""
import http.client
import logging
from http import HTTPStatus

import orjson
from tornado import routing, web

from scoring_api import logs, metrics, requestids
from scoring_api.body import BodyError, decode_body
from scoring_api.methods import method_handler
from scoring_api.quotas import header_fields

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json; charset=UTF-8"
# The largest body over max_body_bytes that is read (and thrown away)
# before its 413; a larger one is answered at once.
DISCARDED_BODY_MAX_BYTES = 16 * 1024 * 1024
# nginx's code for a call whose client closed the connection before the
# answer: no answer reached it, whatever the call came to.
CLIENT_CLOSED_REQUEST = 499
CLIENT_LEFT = "client closed the connection before the answer"
DRAINING = "shutting down"
# What the access log names as the HTTP method; any other token (a
# request line's method may be any word, a phone number too) is OTHER.
HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
     "CONNECT"))
OTHER = "-"


def envelope(code, response=None, error=None):
    """The body of every answer (bytes): {"code", "response"} or
    {"code", "error"}."""
    if code == HTTPStatus.OK:
        return orjson.dumps({"code": int(code), "response": response})
    return orjson.dumps({"code": int(code), "error": error})


def declared_length(headers):
    """The body length the Content-Length of `headers` (HTTPHeaders)
    declares, or None when it declares none that is one plain number: at
    most 19 ASCII digits (str.isdigit alone would take a superscript "2",
    and int() raises on 4,301 digits). Tornado refuses any other with its
    bare 400 when it reads the body, or reads the length itself."""
    # get_list: one lookup, no KeyError raised for a missing header.
    values = headers.get_list("Content-Length")
    if len(values) == 1:
        value = values[0]
        if len(value) < 20 and value.isascii() and value.isdigit():
            return int(value)
    return None


class JsonHandler(web.RequestHandler):
    """Answers everything, errors included, with the JSON envelope and the
    request id; any answer while the server drains closes its connection.

    `traffic`: the server's Traffic (is it draining?); `request_ids`: the
    RequestIds the request's id comes from when the caller sent none that
    is kept.
    """

    api_method = None  # what the access log names, when a method ran
    error_message = None
    is_api_call = False  # counted in the request metrics
    close_after_answer = False
    # Refused over quota or shed: logged at INFO, the refusals are
    # reported once per interval (quotas.py, admission.py).
    refused = False
    client_left = False  # the connection closed before the answer

    def initialize(self, traffic, request_ids):
        self.traffic = traffic
        self.request_ids = request_ids

    @property
    def request_id(self):
        """The caller's X-Request-Id when kept (requestids.kept), else a
        new one; the same for the whole request."""
        if "_request_id" not in self.__dict__:
            self._request_id = self.request_ids.of(self.request.headers)
        return self._request_id

    def logged_path(self):
        """The path as the access log writes it: the route's own."""
        return self.request.path

    def set_default_headers(self):
        # Also runs on every error, after the headers were cleared; the
        # request id is set by `finish` (this runs before `initialize`).
        self.set_header("Content-Type", CONTENT_TYPE)

    def prepare(self):
        requestids.current.set(self.request_id)

    def on_connection_close(self):
        super().on_connection_close()  # ends a body still awaited
        self.client_left = True

    def compute_etag(self):
        # No ETag, so never a bodyless 304: a probe or a proxy must see the
        # state of now, and every answer is the JSON envelope.
        return None

    def send_json(self, code, response=None, error=None):
        self.error_message = error
        self.set_status(int(code))
        self.finish(envelope(code, response, error))

    def finish(self, chunk=None):
        """Finish the answer, with the request id; one that must close its
        connection (a 413, or any answer while the server drains) says so
        and closes it once written."""
        self.set_header(requestids.HEADER, self.request_id)
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
        logger.error("unexpected error in %s %s", _http_method(self.request),
                     self.logged_path(), exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        if status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        # The standard phrase only: an exception's own text (a `reason`
        # attribute, say) may hold anything, a host name or a secret.
        self.send_json(status_code,
                       error=http.client.responses.get(status_code, "Unknown"))


class MethodHandler(JsonHandler):
    """POST /method/: an API call (docs/api.md), answered by
    `method_handler`."""

    SUPPORTED_METHODS = ("POST",)
    is_api_call = True

    def initialize(self, settings, store, authenticator, traffic,
                   request_ids, admission=None):
        super().initialize(traffic, request_ids)
        # Tornado's own `self.settings` is the Application's dict.
        self.service_settings = settings
        self.store = store
        self.authenticator = authenticator
        self.admission = admission

    def body(self):
        return self.request.body

    async def refused_after_delay(self, ctx):
        """Retry-After of a call refused over quota or shed, once the
        hold of a partner that keeps calling is over (docs/api.md,
        "Quotas")."""
        self.refused = True
        retry_after, close = await self.admission.delay(ctx)
        self.set_header("Retry-After", str(retry_after))
        self.close_after_answer = self.close_after_answer or close

    async def post(self):
        try:
            body = decode_body(self.body())
        except BodyError as error:
            self.send_json(HTTPStatus.BAD_REQUEST, error=str(error))
            return
        ctx = {"request_id": self.request_id}
        response, code = await method_handler(
            body, ctx, self.store, self.service_settings, self.authenticator,
            self.admission)
        self.api_method = ctx.get("method")
        if "quota" in ctx:  # counted: the quota header fields
            for name, value in header_fields(ctx["quota"]):
                self.set_header(name, value)
            if code == HTTPStatus.TOO_MANY_REQUESTS or "shed" in ctx:
                await self.refused_after_delay(ctx)
        if code == HTTPStatus.OK:
            self.send_json(code, response)
        else:
            self.send_json(code, error=response)


# The Content-Types whose bodies Tornado 6.6.1 parses as a form before a
# handler runs (httputil.parse_body_arguments: these prefixes, case as
# written); a handler that streams its body is never parsed.
# AnyContentTypeTest fails should Tornado parse more.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class StreamedBody(routing.PathMatches):
    """A route matcher: `path_pattern`, for a request whose body must not
    reach Tornado's own reading: a form type (see FORM_TYPES), or a
    Content-Length over `limit` bytes. Never raises, whatever the headers
    hold."""

    def __init__(self, path_pattern, limit):
        super().__init__(path_pattern)
        self.limit = limit

    def match(self, request):
        content_types = request.headers.get_list("Content-Type")
        length = declared_length(request.headers)
        if ((content_types and content_types[0].startswith(FORM_TYPES))
                or (length is not None and length > self.limit)):
            return super().match(request)
        return None


@web.stream_request_body
class StreamedMethodHandler(MethodHandler):
    """/method/ for a request routed by StreamedBody: the handler collects
    the body itself, so that Tornado never parses it as a form: the body
    is JSON whatever the Content-Type says (`curl -d` sends a form type;
    Tornado refuses a form of more than 1,000 fields, and a multipart body
    it cannot parse, with a 400 that does not say why). Measured
    (callgrind, a cached score): a streamed call costs 2.3 % more
    instructions than a plain one, so the other calls keep MethodHandler;
    the matcher costs 0.3 %.

    A body declared over max_body_bytes is answered 413 after it is read
    to its end and thrown away, so that a proxy still sending it reads the
    answer instead of a reset (docs/operations.md "Behind a proxy"); a
    body over DISCARDED_BODY_MAX_BYTES, or one the client waits to send
    (Expect: 100-continue), is answered at once. A 413 closes the
    connection either way.
    """

    chunks = None  # the body's chunks; None: thrown away
    too_large = False

    def prepare(self):
        super().prepare()
        length = declared_length(self.request.headers)
        if (length is None
                or length <= self.service_settings.server.max_body_bytes):
            self.chunks = []
            return
        self.too_large = True
        self.close_after_answer = True
        if (length > DISCARDED_BODY_MAX_BYTES
                or self.request.headers.get("Expect") == "100-continue"):
            self.answer_too_large()  # the body is not read at all
        else:
            self.request.connection.set_max_body_size(length)

    def data_received(self, chunk):
        if self.chunks is not None:
            self.chunks.append(chunk)

    def body(self):
        return b"".join(self.chunks)

    async def post(self):
        if self.too_large:
            self.answer_too_large()
        else:
            await super().post()

    def answer_too_large(self):
        self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       error="request body is over %d bytes"
                       % self.service_settings.server.max_body_bytes)


class NotFoundHandler(JsonHandler):
    """Every path no route knows: 404."""

    def prepare(self):
        super().prepare()
        raise web.HTTPError(HTTPStatus.NOT_FOUND)

    def logged_path(self):
        # Not the path as sent: a caller may put anything in it, personal
        # data included (/79175002040/stupnikov@otus.ru).
        return "/<unknown path, %d chars>" % len(_sent_path(
            self.request.path))


def _sent_path(path):
    """A request's path as the client sent it: Tornado decodes its bytes
    as latin-1; a client sends UTF-8."""
    if path.isascii():
        return path
    return path.encode("latin-1", "replace").decode("utf-8", "replace")


class HealthHandler(JsonHandler):
    """200 while the process lives, with the state of the store and cache."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, store, traffic, request_ids):
        super().initialize(traffic, request_ids)
        self.store = store

    async def get(self):
        self.send_json(HTTPStatus.OK, await self.store.health())

    head = get


class ReadyHandler(HealthHandler):
    """Readiness: 200 while the store answers a PING within its timeouts;
    503 otherwise, and from the moment the server starts draining, so that
    a load balancer takes the instance out."""

    async def get(self):
        if self.traffic.draining:
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, error=DRAINING)
            return
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

    def initialize(self, document, traffic, request_ids):
        super().initialize(traffic, request_ids)
        self.document = document

    def get(self):
        self.finish(self.document)

    head = get


def _http_method(request):
    return request.method if request.method in HTTP_METHODS else OTHER


def log_request(handler):
    """Once per answer (Tornado's log_function), `handler` a JsonHandler:
    the request metrics, and the access line (at WARNING from 400 up,
    ERROR for a 500 only: a 503 is Redis being down, which the store
    already reports once per interval; at INFO for a call refused over
    quota or shed, which are reported once per interval). A call whose
    client left before the answer is logged and counted as 499."""
    if handler.client_left:
        status, error = CLIENT_CLOSED_REQUEST, CLIENT_LEFT
    else:
        status, error = handler.get_status(), handler.error_message
    request = handler.request
    seconds = request.request_time()
    api_method = handler.api_method
    if handler.is_api_call:
        metrics.observe_request(api_method, status, seconds)
    level = (logging.INFO if status < 400 or handler.refused else
             logging.ERROR if status == 500 else logging.WARNING)
    if not logger.isEnabledFor(level):
        return
    duration_ms = round(1000.0 * seconds, 2)
    http_method = _http_method(request)
    path = handler.logged_path()
    logs.log_access(
        logger, level, "%s %s %s %s %d %.2fms%s" % (
            request.remote_ip, http_method, path, api_method or "-", status,
            duration_ms, ": " + error if error else ""),
        handler.request_id,
        {"http_method": http_method, "path": path, "api_method": api_method,
         "code": status, "duration_ms": duration_ms,
         "client": request.remote_ip})

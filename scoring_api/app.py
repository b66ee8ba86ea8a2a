"""The Tornado application: routes and the dependencies they are given."""
import os

from tornado import httputil, web

from scoring_api.deadlines import Deadlines
from scoring_api.handlers import (DocumentHandler, HealthHandler,
                                  MetricsHandler, NotFoundHandler,
                                  ReadyHandler, RequestCounter, log_request)
from scoring_api.method_endpoint import MethodRoute

METHOD_PATHS = ("/method/", "/method")
OPENAPI_PATH = os.path.join(os.path.dirname(__file__), "openapi.json")


def read_openapi():
    with open(OPENAPI_PATH, "rb") as document:
        return document.read()


class Application(web.Application):
    """Sends /method/ straight to its delegate; other paths (and /method/
    with a query string) go through Tornado's routing.

    Also keeps `idle_timeout` for the connections waiting for a request's
    headers, at less cost than Tornado's header timeout (a gen.with_timeout
    around every header read, 5 % of a cache hit): the server turns that
    one off (see server.serve).
    """

    def __init__(self, method_route, idle_timeout, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.method_route = method_route
        self.idle = Deadlines(idle_timeout)

    def start_request(self, server_conn, request_conn):
        return _MethodFirst(self, server_conn, request_conn)


class _MethodFirst(httputil.HTTPMessageDelegate):
    """Picks the delegate of one request from its start line."""

    def __init__(self, app, server_conn, request_conn):
        self.app = app
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate = None
        app.idle.wait(self)  # until its headers come

    def late(self):  # no headers in idle_timeout (see Deadlines)
        self.request_conn.close()

    def headers_received(self, start_line, headers):
        self.app.idle.done(self)
        if start_line.path in METHOD_PATHS:
            self.delegate = self.app.method_route.delegate(
                self.request_conn, start_line, headers)
        else:
            self.delegate = web.Application.start_request(
                self.app, self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        self.delegate.finish()

    def on_connection_close(self):
        self.app.idle.done(self)
        if self.delegate is not None:
            self.delegate.on_connection_close()


def make_app(settings, store):
    """The application serving `settings` with `store`."""
    requests = RequestCounter()
    method_route = MethodRoute(store, settings, requests)
    return Application(
        method_route, settings.server.idle_timeout,
        [
            (r"/method/?", method_route),
            (r"/health", HealthHandler, {"store": store}),
            (r"/ready", ReadyHandler, {"store": store}),
            (r"/metrics", MetricsHandler),
            (r"/openapi.json", DocumentHandler, {"document": read_openapi()}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        requests=requests,
    )

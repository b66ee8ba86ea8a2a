"""The Tornado application: routes and the dependencies they are given."""
import os

from tornado import routing, web

from scoring_api.handlers import (DocumentHandler, HealthHandler,
                                  LargerBody, MethodHandler, MetricsHandler,
                                  NotFoundHandler, ReadyHandler,
                                  TooLargeHandler, log_request)
from scoring_api.traffic import Traffic

METHOD_PATH = r"/method/?"
OPENAPI_PATH = os.path.join(os.path.dirname(__file__), "openapi.json")


def read_openapi():
    with open(OPENAPI_PATH, "rb") as document:
        return document.read()


def make_app(settings, store, traffic=None):
    """The application serving `settings` with `store`; its handlers count
    themselves in `traffic` (the server's, see `serve`)."""
    method = {"store": store, "config": settings}
    return web.Application(
        [
            # First: a body too large for /method/ (413, read to its end).
            routing.Rule(LargerBody(METHOD_PATH,
                                    settings.server.max_body_bytes),
                         TooLargeHandler, {"config": settings}),
            (METHOD_PATH, MethodHandler, method),
            (r"/health", HealthHandler, {"store": store}),
            (r"/ready", ReadyHandler, {"store": store}),
            (r"/metrics", MetricsHandler),
            (r"/openapi.json", DocumentHandler, {"document": read_openapi()}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        traffic=Traffic() if traffic is None else traffic,
    )

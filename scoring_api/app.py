"""The Tornado application: routes and the dependencies they are given."""
import os

from tornado import web

from scoring_api.deadlines import Deadlines
from scoring_api.handlers import (DocumentHandler, HealthHandler,
                                  MethodHandler, MetricsHandler,
                                  NotFoundHandler, ReadyHandler,
                                  RequestCounter, log_request)

OPENAPI_PATH = os.path.join(os.path.dirname(__file__), "openapi.json")


def read_openapi():
    with open(OPENAPI_PATH, "rb") as document:
        return document.read()


def make_app(settings, store):
    """The application serving `settings` with `store`."""
    method = {"store": store, "config": settings,
              "bodies": Deadlines(settings.server.body_timeout)}
    return web.Application(
        [
            (r"/method/?", MethodHandler, method),
            (r"/health", HealthHandler, {"store": store}),
            (r"/ready", ReadyHandler, {"store": store}),
            (r"/metrics", MetricsHandler),
            (r"/openapi.json", DocumentHandler, {"document": read_openapi()}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        requests=RequestCounter(),
    )

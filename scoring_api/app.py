"""The Tornado application: routes, and the dependencies each handler is
given through its route's dict."""
import os

from tornado import routing, web

from scoring_api.admission import Admission
from scoring_api.auth import Authenticator
from scoring_api.handlers import (DocumentHandler, HealthHandler,
                                  MethodHandler, MetricsHandler,
                                  NotFoundHandler, ReadyHandler,
                                  StreamedBody, StreamedMethodHandler,
                                  log_request)
from scoring_api.requestids import RequestIds
from scoring_api.traffic import Traffic

METHOD_PATH = r"/method/?"
OPENAPI_PATH = os.path.join(os.path.dirname(__file__), "openapi.json")


def read_openapi():
    with open(OPENAPI_PATH, "rb") as document:
        return document.read()


def make_app(settings, store, traffic=None, admission=None):
    """The application serving `settings` with `store`; `traffic` is the
    server's (see `server.serve`): whether it drains; `admission`: the
    process's quotas and shedding (admission.Admission; when not given,
    one of `settings` whose quotas are this process's alone and whose
    loop lag is not measured)."""
    every = {"traffic": Traffic() if traffic is None else traffic,
             "request_ids": RequestIds()}
    method = dict(every, settings=settings, store=store,
                  authenticator=Authenticator.from_settings(settings.auth),
                  admission=(Admission.from_settings(settings)
                             if admission is None else admission))
    return web.Application(
        [
            # First: a body Tornado must not read itself (a form type, or
            # over the limit: 413).
            routing.Rule(StreamedBody(METHOD_PATH,
                                      settings.server.max_body_bytes),
                         StreamedMethodHandler, method),
            (METHOD_PATH, MethodHandler, method),
            (r"/health", HealthHandler, dict(every, store=store)),
            (r"/ready", ReadyHandler, dict(every, store=store)),
            (r"/metrics", MetricsHandler, every),
            (r"/openapi.json", DocumentHandler,
             dict(every, document=read_openapi())),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=every,
        log_function=log_request,
    )

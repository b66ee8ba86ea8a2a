"""The Tornado application: routes and the dependencies they are given."""
from tornado import web

from scoring_api.handlers import (HealthHandler, NotFoundHandler,
                                  RequestCounter, log_request)
from scoring_api.method_endpoint import MethodRoute


def make_app(settings, store):
    """The application serving `settings` with `store`."""
    requests = RequestCounter()
    return web.Application(
        [
            (r"/method/?", MethodRoute(),
             {"store": store, "config": settings, "requests": requests}),
            (r"/health", HealthHandler, {"store": store}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        requests=requests,
    )

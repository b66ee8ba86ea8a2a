"""The Tornado application: routes and the dependencies they are given."""
from tornado import web

from scoring_api.handlers import (HealthHandler, MethodHandler,
                                  NotFoundHandler, RequestCounter,
                                  log_request)


def make_app(settings, store):
    """The application serving `settings` with `store`."""
    return web.Application(
        [
            (r"/method/?", MethodHandler,
             {"store": store, "config": settings}),
            (r"/health", HealthHandler, {"store": store}),
        ],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        requests=RequestCounter(),
    )

"""The API methods and the handler that routes a request to one of them.

Nothing here knows HTTP: `method_handler` takes the decoded request body and
returns `(response, code)`.
"""
import logging
from http import HTTPStatus

from scoring_api import scoring
from scoring_api.auth import Authenticator
from scoring_api.config import Settings
from scoring_api.errors import (ApiError, Forbidden, Overloaded,
                                ValidationError)
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)

logger = logging.getLogger(__name__)

ADMIN_SCORE = 42


async def online_score(request, ctx, store, settings):
    arguments = OnlineScoreRequest(request.arguments or {})
    ctx["has"] = arguments.present()
    if request.is_admin:
        return {"score": ADMIN_SCORE}
    score = await scoring.get_score(store, settings.cache.ttl,
                                    **arguments.values)
    return {"score": score}


async def clients_interests(request, ctx, store, settings):
    arguments = ClientsInterestsRequest(
        request.arguments or {},
        max_client_ids=settings.server.max_client_ids)
    ctx["nclients"] = len(arguments.client_ids)
    interests = await scoring.get_interests(store, arguments.client_ids)
    return {str(client_id): value for client_id, value in interests.items()}


METHODS = {
    "online_score": online_score,
    "clients_interests": clients_interests,
}
# The fields of the API: the envelope's, and every method's arguments.
ENVELOPE_FIELDS = frozenset(MethodRequest.declared_fields)
ARGUMENT_FIELDS = frozenset(
    name for arguments in (OnlineScoreRequest, ClientsInterestsRequest)
    for name in arguments.declared_fields)


def authenticate(request, authenticator):
    """Raise 403 unless the token of the envelope `request` is right."""
    if not authenticator.check(request.account, request.login,
                               request.token):
        raise Forbidden()
    request.is_admin = authenticator.is_admin(request.login)


def call(method, envelope, ctx, store, settings):
    """The awaitable response of `method` (None: unknown, 422)."""
    if method is None:
        # Not echoed: the access log writes the message, and a caller's
        # value may be anything, personal data included.
        raise ValidationError({"method": "unknown method (known: %s)"
                               % ", ".join(METHODS)})
    return method(envelope, ctx, store, settings)


async def method_handler(request, ctx, store, settings=None,
                         authenticator=None, admission=None):
    """Validate, authenticate and run one API call.

    `request`: the decoded JSON body; `ctx`: a dict the call fills with
    facts for the log (`method`, `has`, `nclients`) and, with `admission`,
    what it decided (`quota`, `shed`); `store`: the `Store`; `settings`:
    the service's Settings (the defaults when not given, as the course
    task's callers pass none); `authenticator`: the Authenticator of
    `settings.auth` (made from it when not given; the server makes one
    for all its calls); `admission`: the process's admission.Admission
    (none: no quota, no shedding). Returns `(response, code)`: the
    response dict with 200, otherwise the error message with its code.
    """
    if settings is None:
        settings = Settings()
    try:
        envelope = MethodRequest(request)
        method = METHODS.get(envelope.method)
        ctx["method"] = envelope.method if method else "unknown"
        authenticate(envelope, authenticator
                     or Authenticator.from_settings(settings.auth))
        if admission is None:
            response = await call(method, envelope, ctx, store, settings)
        else:
            # After authentication (a wrong token spends no one's quota),
            # before the arguments (a 422 spends it too).
            admission.admit(envelope.account or "", ctx)
            try:
                response = await call(method, envelope, ctx, store,
                                      settings)
            except Overloaded:
                admission.store_overloaded(ctx)
                raise
            finally:
                admission.finished(ctx)
        return response, HTTPStatus.OK
    except ApiError as error:
        return str(error), error.code
    except Exception:
        logger.exception("unexpected error in %s", ctx.get("method", "?"))
        return (HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
                HTTPStatus.INTERNAL_SERVER_ERROR)

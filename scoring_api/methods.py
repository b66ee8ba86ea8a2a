"""The API methods and the handler that routes a request to one of them.

Nothing here knows HTTP: `method_handler` takes the decoded request body and
returns `(response, code)`.
"""
import logging
from http import HTTPStatus

from scoring_api import scoring
from scoring_api.auth import Authenticator
from scoring_api.config import Settings
from scoring_api.errors import ApiError, Forbidden, ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)

logger = logging.getLogger(__name__)

ADMIN_SCORE = 42
DEFAULT_SETTINGS = Settings()


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


class _Authenticators:
    """The Authenticator of an `[auth]` settings object, made once for it
    (hashing the frozen settings on every call would cost more)."""

    def __init__(self):
        self.settings = self.authenticator = None

    def of(self, auth_settings):
        if auth_settings is not self.settings:
            self.authenticator = Authenticator.from_settings(auth_settings)
            self.settings = auth_settings
        return self.authenticator


_authenticators = _Authenticators()


def authenticate(request, settings):
    """Raise 403 unless the token of the envelope `request` is right."""
    authenticator = _authenticators.of(settings.auth)
    if not authenticator.check(request.account, request.login,
                               request.token):
        raise Forbidden()
    request.is_admin = authenticator.is_admin(request.login)


async def method_handler(request, ctx, store, settings=DEFAULT_SETTINGS):
    """Validate, authenticate and run one API call.

    `request`: the decoded JSON body; `ctx`: a dict the call fills with
    facts for the log (`method`, `has`, `nclients`); `store`: the `Store`.
    Returns `(response, code)`: the response dict with 200, otherwise the
    error message with its code.
    """
    try:
        envelope = MethodRequest(request)
        method = METHODS.get(envelope.method)
        ctx["method"] = envelope.method if method else "unknown"
        authenticate(envelope, settings)
        if method is None:
            # Not echoed: the access log writes the message, and a
            # caller's value may be anything, personal data included.
            raise ValidationError({"method": "unknown method (known: %s)"
                                   % ", ".join(METHODS)})
        return await method(envelope, ctx, store, settings), HTTPStatus.OK
    except ApiError as error:
        return str(error), error.code
    except Exception:
        logger.exception("unexpected error in %s", ctx.get("method", "?"))
        return (HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
                HTTPStatus.INTERNAL_SERVER_ERROR)

"""Errors the method logic raises, each with the HTTP code it becomes."""
from http import HTTPStatus


class ApiError(Exception):
    """An error the caller is told about: `code` and a message."""

    code = HTTPStatus.INTERNAL_SERVER_ERROR


class ValidationError(ApiError):
    """Invalid input; holds {field name: reason} for every bad field."""

    code = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, errors):
        self.errors = dict(errors)
        super().__init__("; ".join(
            "%s: %s" % item for item in self.errors.items()))


class Forbidden(ApiError):
    code = HTTPStatus.FORBIDDEN

    def __init__(self):
        super().__init__("Forbidden")


class StoreUnavailable(ApiError):
    """The persistent store did not answer after the configured retries."""

    code = HTTPStatus.SERVICE_UNAVAILABLE


class StoreDataError(ApiError):
    """The store answered with a value that is not what it should hold."""

    code = HTTPStatus.INTERNAL_SERVER_ERROR


class StoreRefused(StoreUnavailable):
    """Redis answered with an error: out of memory, read-only, MISCONF."""


class Overloaded(ApiError):
    """The process cannot answer this call in time: it sheds it at once
    instead of letting it wait (or blaming Redis for its own lag)."""

    code = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, message="overloaded, retry later"):
        super().__init__(message)

"""online_score on FastAPI with pydantic v2, served by uvicorn with uvloop
and httptools, one worker (bench/requirements-peers.txt says how).

As FastAPI's documentation has it: the body is a pydantic model (strict
types, validators for the forms, a model validator for the pairs rule),
the answer a declared return type that pydantic serializes, and the
service's error envelope and messages from exception handlers: the
envelope first (422), then the token (403), then the arguments (422).
"""
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (AfterValidator, BaseModel, BeforeValidator,
                      ConfigDict, ValidationError, model_validator)
from pydantic_core import PydanticCustomError

from bench.peers import rules


def _nullable(value):
    return None if rules.is_empty(value) else value


def _not_empty(value):
    if rules.is_empty(value):
        raise PydanticCustomError("empty", rules.EMPTY)
    return value


def _form(check):
    """An after-validator raising `check`'s message as it is."""
    def validator(value):
        if value is None:
            return None
        try:
            return check(value)
        except rules.Invalid as error:
            raise PydanticCustomError("form", str(error)) from None
    return AfterValidator(validator)


Nullable = BeforeValidator(_nullable)


class Envelope(BaseModel):
    model_config = ConfigDict(strict=True)

    account: Annotated[str | None, Nullable] = None
    login: Annotated[str | None, Nullable]
    token: Annotated[str | None, Nullable]
    arguments: Annotated[dict[str, Any] | None, Nullable]
    method: Annotated[str, BeforeValidator(_not_empty)]


class OnlineScoreArguments(BaseModel):
    model_config = ConfigDict(strict=True)

    phone: Annotated[str | int | None, Nullable,
                     _form(rules.check_phone)] = None
    email: Annotated[str | None, Nullable, _form(rules.check_email)] = None
    first_name: Annotated[str | None, Nullable] = None
    last_name: Annotated[str | None, Nullable] = None
    birthday: Annotated[str | None, Nullable,
                        _form(rules.check_birthday)] = None
    gender: Annotated[int | None, Nullable, _form(rules.check_gender)] = None

    @model_validator(mode="after")
    def one_pair(self):
        if rules.missing_pair(vars(self)):
            raise PydanticCustomError("pairs", rules.PAIRS_MESSAGE)
        return self


class Score(BaseModel):
    score: int | float


class Answer(BaseModel):
    code: int
    response: Score


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


app = FastAPI()


@app.exception_handler(ApiError)
async def api_error(request: Request, error: ApiError):
    return JSONResponse({"code": error.code, "error": error.message},
                        status_code=error.code)


@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, error: RequestValidationError):
    errors = error.errors()
    if any(each["type"] == "json_invalid" for each in errors):
        return await api_error(request, ApiError(
            400, "body is not valid JSON"))
    if any(each["loc"] == ("body",) for each in errors):
        return await api_error(request, ApiError(
            400, "body must be a JSON object"))
    return await api_error(request, ApiError(422, message(errors, 1)))


def message(errors, depth):
    """The service's 422 message from pydantic's errors: one reason a
    field (`depth`: how much of each error's loc is not the field)."""
    reasons = {}
    for each in errors:
        location = each["loc"][depth:]
        name = location[0] if location else "arguments"
        if each["type"] == "missing":
            reason = rules.REQUIRED
        elif each["type"] in ("empty", "form", "pairs"):
            reason = each["msg"]
        else:
            reason = rules.TYPE_MESSAGES[name].format(
                got=rules.type_name(each["input"]))
        reasons.setdefault(name, reason)
    return rules.message(reasons)


cache = rules.ScoreCache()


@app.post("/method/")
async def method(envelope: Envelope) -> Answer:
    if not rules.token_is_right(envelope.account, envelope.login,
                                envelope.token):
        raise ApiError(403, rules.FORBIDDEN)
    if envelope.method != "online_score":
        raise ApiError(422, rules.message({"method": rules.UNKNOWN_METHOD}))
    try:
        arguments = OnlineScoreArguments.model_validate(
            envelope.arguments or {})
    except ValidationError as error:
        raise ApiError(422, message(error.errors(), 0)) from None
    if envelope.login == rules.ADMIN_LOGIN:
        return Answer(code=200, response=Score(score=rules.ADMIN_SCORE))
    score = cache.score(**dict(arguments))
    return Answer(code=200, response=Score(score=score))

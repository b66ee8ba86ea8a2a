"""The JSON body of an API call, decoded strictly (docs/api.md "Requests").

orjson parses every body. It keeps the last of duplicated keys and turns
an integer beyond 64 bits into a float (or refuses it, past a float's
range); a proxy reading the first of two keys would see another request,
and a phone of 2**64 would be told it is "not float". So a parse is
checked against its source, at C speed: the body must hold as many `:`
as orjson's own writing of what it parsed (a dropped key takes one away;
an escaped colon, `\\u003a`, could give it back: such a body takes the
long way), and that writing must hold no `+` (every integer past 64
bits becomes a float of 1e16 or more, which orjson writes with `e+`).
Only a body that fails the check is parsed again, by the standard
library, which sees every key and every integer as written (so does a
body with a `+` in a string, `alice+news@example.com`: the long way,
still right).

Measured (timed, best of many runs): 1.3 us for a 280-byte cached-score
call (orjson's parse of it: 0.8 us), 8 us for a body of 1,000 client ids
(the parse: 21 us).
"""
import json
import re

import orjson

from scoring_api import methods

# Bytes looked for with memchr (an int is found ten times faster than a
# one-byte bytes object).
_BACKSLASH = ord("\\")
_PLUS = ord("+")
# A run of digits that may be an integer past 64 bits (2**64 has 20).
_LONG_DIGITS = re.compile(r"[0-9]{20,}")
# Integer literals longer than this are kept as a value no field accepts,
# not converted (int() of 4,301 digits raises, and costs quadratic time).
_MAX_INTEGER_DIGITS = 40
_TOO_LARGE = 10 ** _MAX_INTEGER_DIGITS
NOT_UTF8 = "body is not valid UTF-8"
NOT_JSON = "body is not valid JSON"
NOT_AN_OBJECT = "body must be a JSON object"
TOO_DEEP = "body is nested too deeply"
DUPLICATE_KEY = "body has a duplicate key"


class BodyError(ValueError):
    """A body that is not one JSON object; the message says why."""


def decode_body(body):
    """The JSON object in `body` (bytes); BodyError says what is wrong.

    orjson refuses NaN, Infinity and nesting deeper than 1024: all "not
    valid JSON" here.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(NOT_UTF8) from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = _exact(text) if _numbers_too_large(text) else None
        if data is None:
            raise BodyError(NOT_JSON) from None
    else:
        if not _whole(body, data):
            data = _exact(text)
    if not isinstance(data, dict):
        raise BodyError(NOT_AN_OBJECT)
    return data


def _whole(body, data):
    """True when `data`, orjson's parse of `body`, holds every key and
    integer of it (see the module's docstring)."""
    try:
        written = orjson.dumps(data)
    except orjson.JSONEncodeError:  # deeper than orjson writes (254)
        return False
    return ((_BACKSLASH not in body or b"\\u003" not in body)
            and _PLUS not in written
            and body.count(b":") == written.count(b":"))


def _numbers_too_large(text):
    """True when `text`, which orjson refused, is valid JSON once every
    integer literal of 20 digits or more (past 64 bits, or near) is
    written 0: orjson refuses an integer beyond a float's range."""
    shortened = _LONG_DIGITS.sub("0", text)
    try:
        orjson.loads(shortened)
    except orjson.JSONDecodeError:
        return False
    return True


def _exact(text):
    """The value of the JSON `text`, every key and integer as written;
    BodyError for a duplicated key (named when it is a field of the API,
    never echoed otherwise) or nesting deeper than Python parses."""
    duplicated = []  # (the object, its first repeated key)

    def to_object(pairs):
        found = dict(pairs)
        if len(found) != len(pairs):
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    duplicated.append((found, key))
                    break
                seen.add(key)
        return found

    try:
        data = json.loads(text, object_pairs_hook=to_object,
                          parse_int=_integer, parse_float=_finite,
                          parse_constant=_refuse)
    except RecursionError:
        raise BodyError(TOO_DEEP) from None
    except ValueError:  # what orjson refuses too: NaN, Infinity, 1e400
        raise BodyError(NOT_JSON) from None
    if duplicated:
        named = [_api_field(data, found, key) for found, key in duplicated]
        raise BodyError(next(
            ("%s: %s" % (DUPLICATE_KEY, name) for name in named if name),
            DUPLICATE_KEY))
    return data


def _api_field(data, found, key):
    """How `key`, duplicated in the object `found` of `data`, is named in
    an answer: as a field of the API (`token`, `arguments.phone`), or
    None for any other key (a caller's text is never echoed)."""
    if not isinstance(data, dict):
        return None
    if found is data and key in methods.ENVELOPE_FIELDS:
        return key
    if found is data.get("arguments") and key in methods.ARGUMENT_FIELDS:
        return "arguments." + key
    return None


def _integer(literal):
    if len(literal.lstrip("-")) > _MAX_INTEGER_DIGITS:
        return -_TOO_LARGE if literal.startswith("-") else _TOO_LARGE
    return int(literal)


def _finite(literal):
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def _refuse(constant):
    raise ValueError("%s is not JSON" % constant)

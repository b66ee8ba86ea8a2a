"""The API's rules for online_score, framework-free, as a team porting the
service would write them: the token, the score, its cache, and (for the
peers without a validation library of their own) the field checks with
the service's messages. Standard library only: it runs in the peers' venv.
"""
import collections
import datetime
import hashlib
import hmac
import json
import re
import time

SALT, ADMIN_LOGIN, ADMIN_SALT = "Otus", "admin", "42"
ADMIN_SCORE = 42
CACHE_SIZE = 10000
CACHE_TTL_SECONDS = 3600
MAX_AGE_YEARS = 70

FORBIDDEN = "Forbidden"
UNKNOWN_METHOD = "unknown method (known: online_score, clients_interests)"
PAIRS_MESSAGE = ("need at least one pair with values: phone and email,"
                 " first_name and last_name, or gender and birthday")
PAIRS = (("phone", "email"), ("first_name", "last_name"),
         ("gender", "birthday"))
REQUIRED = "is required"
EMPTY = "may not be empty"
# field -> what a value of the wrong type is told ({got}: its type)
TYPE_MESSAGES = {
    "account": "must be a string, not {got}",
    "login": "must be a string, not {got}",
    "token": "must be a string, not {got}",
    "arguments": "must be an object, not {got}",
    "method": "must be a string, not {got}",
    "phone": "must be a string or an integer, not {got}",
    "email": "must be a string, not {got}",
    "first_name": "must be a string, not {got}",
    "last_name": "must be a string, not {got}",
    "birthday": "must be a string DD.MM.YYYY, not {got}",
    "gender": "must be an integer 0, 1 or 2, not {got}",
}
PHONE_FORM = "must be 11 digits starting with 7"
EMAIL_FORM = "must contain @"
DATE_FORM = "must be a real date in the form DD.MM.YYYY"
BIRTHDAY_FUTURE = "may not be in the future"
BIRTHDAY_TOO_OLD = "must be at most %d years ago" % MAX_AGE_YEARS
GENDER_FORM = "must be 0 (unknown), 1 (male) or 2 (female)"

_PHONE = re.compile(r"7\d{10}", re.ASCII)
_DATE = re.compile(r"\d{2}\.\d{2}\.\d{4}", re.ASCII)
PHONE_MIN, PHONE_MAX = 70000000000, 79999999999


class Invalid(ValueError):
    """A value a rule refuses; the message says why."""


def type_name(value):
    return "null" if value is None else type(value).__name__


def is_empty(value):
    """None, "", [] and {}: what a nullable field may hold."""
    return value is None or (type(value) in (str, list, dict) and not value)


# -- the rules of single values: each returns the clean value or raises --

def check_phone(value):
    if isinstance(value, str):
        if not _PHONE.fullmatch(value):
            raise Invalid(PHONE_FORM)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not PHONE_MIN <= value <= PHONE_MAX:
            raise Invalid(PHONE_FORM)
    else:
        raise Invalid(TYPE_MESSAGES["phone"].format(got=type_name(value)))
    return value


def check_email(value):
    if "@" not in value:
        raise Invalid(EMAIL_FORM)
    return value


def check_birthday(value):
    if not _DATE.fullmatch(value):
        raise Invalid(DATE_FORM)
    try:
        birthday = datetime.datetime.strptime(value, "%d.%m.%Y").date()
    except ValueError:
        raise Invalid(DATE_FORM) from None
    today = datetime.date.today()
    if birthday > today:
        raise Invalid(BIRTHDAY_FUTURE)
    try:
        oldest = today.replace(year=today.year - MAX_AGE_YEARS)
    except ValueError:  # 29 February
        oldest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
    if birthday < oldest:
        raise Invalid(BIRTHDAY_TOO_OLD)
    return birthday


def check_gender(value):
    if value not in (0, 1, 2):
        raise Invalid(GENDER_FORM)
    return value


def missing_pair(values):
    """The pairs rule: True when no pair has both values."""
    return not any(not is_empty(values.get(first))
                   and not is_empty(values.get(second))
                   for first, second in PAIRS)


# -- plain validation, for the peers without a library for it -------------

def _string(name, value):
    if not isinstance(value, str):
        raise Invalid(TYPE_MESSAGES[name].format(got=type_name(value)))
    return value


def _integer(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(TYPE_MESSAGES[name].format(got=type_name(value)))
    return value


def _object(name, value):
    if not isinstance(value, dict):
        raise Invalid(TYPE_MESSAGES[name].format(got=type_name(value)))
    return value


# name -> (required, nullable, check)
ENVELOPE = {
    "account": (False, True, _string),
    "login": (True, True, _string),
    "token": (True, True, _string),
    "arguments": (True, True, _object),
    "method": (True, False, _string),
}
ONLINE_SCORE = {
    "phone": (False, True, lambda name, value: check_phone(value)),
    "email": (False, True,
              lambda name, value: check_email(_string(name, value))),
    "first_name": (False, True, _string),
    "last_name": (False, True, _string),
    "birthday": (False, True,
                 lambda name, value: check_birthday(_string(name, value))),
    "gender": (False, True,
               lambda name, value: check_gender(_integer(name, value))),
}


def validate(data, fields):
    """({name: clean value}, {name: message}) of `data` under `fields`."""
    values, errors = {}, {}
    for name, (required, nullable, check) in fields.items():
        if name not in data:
            if required:
                errors[name] = REQUIRED
            values[name] = None
            continue
        value = data[name]
        if is_empty(value):
            if not nullable:
                errors[name] = EMPTY
            values[name] = value
            continue
        try:
            values[name] = check(name, value)
        except Invalid as error:
            errors[name] = str(error)
    return values, errors


def message(errors):
    """The service's 422 message: `name: why` joined by "; "."""
    return "; ".join("%s: %s" % item for item in errors.items())


# -- the token and the score ----------------------------------------------

def local_now():
    return datetime.datetime.now()


def token_is_right(account, login, token):
    if login == ADMIN_LOGIN:
        secret = local_now().strftime("%Y%m%d%H") + ADMIN_SALT
    else:
        secret = (account or "") + (login or "") + SALT
    expected = hashlib.sha512(secret.encode()).hexdigest()
    return hmac.compare_digest(expected.encode(),
                               (token or "").encode("utf-8", "replace"))


def score_key(phone=None, email=None, birthday=None, gender=None,
              first_name=None, last_name=None):
    """A digest of every input of the score."""
    inputs = ["" if phone is None else str(phone), email or "",
              birthday.isoformat() if birthday else "",
              "" if gender is None else str(gender),
              first_name or "", last_name or ""]
    return hashlib.blake2b(json.dumps(inputs).encode(),
                           digest_size=16).hexdigest()


def compute_score(phone=None, email=None, birthday=None, gender=None,
                  first_name=None, last_name=None):
    score = 0.0
    if phone:
        score += 1.5
    if email:
        score += 1.5
    if birthday and gender:
        score += 1.5
    if first_name and last_name:
        score += 0.5
    return score


class ScoreCache:
    """An in-process LRU of scores whose entries expire."""

    def __init__(self, size=CACHE_SIZE, ttl_seconds=CACHE_TTL_SECONDS):
        self.size = size
        self.ttl_seconds = ttl_seconds
        self.entries = collections.OrderedDict()  # key: (expires_at, score)

    def score(self, **inputs):
        """The cached score of `inputs`, or a new one, cached."""
        key = score_key(**inputs)
        entry = self.entries.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            self.entries.move_to_end(key)
            return entry[1]
        score = compute_score(**inputs)
        self.entries[key] = (now + self.ttl_seconds, score)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return score


def online_score(envelope_data, cache):
    """(code, response or message) of one call, for the peers with no
    validation library: the envelope (422), the token (403), the method,
    the arguments (422), the score."""
    envelope, errors = validate(envelope_data, ENVELOPE)
    if errors:
        return 422, message(errors)
    if not token_is_right(envelope["account"], envelope["login"],
                          envelope["token"]):
        return 403, FORBIDDEN
    if envelope["method"] != "online_score":
        return 422, message({"method": UNKNOWN_METHOD})
    arguments, errors = validate(envelope["arguments"] or {}, ONLINE_SCORE)
    if not errors and missing_pair(arguments):
        errors = {"arguments": PAIRS_MESSAGE}
    if errors:
        return 422, message(errors)
    if envelope["login"] == ADMIN_LOGIN:
        return 200, {"score": ADMIN_SCORE}
    return 200, {"score": cache.score(**arguments)}

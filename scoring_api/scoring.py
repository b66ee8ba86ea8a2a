"""The scoring rules and the interests lookup."""
import hashlib
import itertools
import logging
import re

import orjson

from scoring_api.errors import StoreDataError
from scoring_api.store import OtherType
from scoring_api.throttle import Throttle

logger = logging.getLogger(__name__)

SCORE_KEY_PREFIX = "score:"
INTERESTS_KEY_PREFIX = "i:"


def score_key(phone=None, email=None, birthday=None, gender=None,
              first_name=None, last_name=None):
    """The cache key of a score: a digest of every input of the score.

    A phone given as 79175002040 or "79175002040" is the same person.
    """
    inputs = [
        "" if phone is None else str(phone),
        email or "",
        birthday.isoformat() if birthday else "",
        "" if gender is None else str(gender),
        first_name or "",
        last_name or "",
    ]
    # JSON keeps "a", "b|c" apart from "a|b", "c".
    digest = hashlib.blake2b(orjson.dumps(inputs), digest_size=16)
    return SCORE_KEY_PREFIX + digest.hexdigest()


WEIGHTS = {"phone": 1.5, "email": 1.5, "birthday and gender": 1.5,
           "first and last name": 0.5}
# Every score the rules can give: the sums of the subsets of WEIGHTS.
POSSIBLE_SCORES = frozenset(
    sum(chosen) for size in range(len(WEIGHTS) + 1)
    for chosen in itertools.combinations(WEIGHTS.values(), size))


def compute_score(phone=None, email=None, birthday=None, gender=None,
                  first_name=None, last_name=None):
    score = 0.0
    if phone:
        score += WEIGHTS["phone"]
    if email:
        score += WEIGHTS["email"]
    if birthday and gender:
        score += WEIGHTS["birthday and gender"]
    if first_name and last_name:
        score += WEIGHTS["first and last name"]
    return score


_SCORE_TEXT = re.compile(rb"[0-9]+(\.[0-9]+)?")
# Corrupt cache entries are logged once per interval, however many.
corrupt_scores = Throttle()


def cached_score(value):
    """The score a cache entry holds, or None when it holds something the
    rules cannot give: not UTF-8, not a number, nan, inf, -100, 99, ..."""
    if isinstance(value, float):  # from the local tier
        return value
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    # What cache_set writes ("3.0"): float() alone would also take "-0",
    # "0_5" (5.0), " 3" and non-ASCII digits.
    if not isinstance(value, bytes) or not _SCORE_TEXT.fullmatch(value):
        return None
    score = float(value)
    return score if score in POSSIBLE_SCORES else None


async def get_score(store, ttl_seconds, **inputs):
    """The cached score of these inputs, or a fresh one, cached. A cache
    entry that is not a score is a miss, and overwritten."""
    key = score_key(**inputs)
    cached = await store.cache_get(key)
    if cached is not None:
        cached_value = cached_score(cached)
        if cached_value is not None:
            return cached_value
        count = corrupt_scores.event()
        if count:
            logger.warning("cache: %s holds %r, not a score; recomputed and"
                           " overwritten (%d such entries since the last"
                           " report)", key, _excerpt(cached), count)
    score = compute_score(**inputs)
    await store.cache_set(key, score, ttl_seconds)
    return score


def _excerpt(value):
    return value[:40] if isinstance(value, (bytes, str)) else value


_NOT_JSON = object()
_STR = itertools.repeat(str)


def interests_key(client_id):
    return "%s%d" % (INTERESTS_KEY_PREFIX, client_id)


async def get_interests(store, client_ids):
    """{client_id: [interest, ...]} for each id, in one store round trip."""
    unique_ids = list(dict.fromkeys(client_ids))
    values = await store.get_many([interests_key(cid) for cid in unique_ids])
    return {cid: _parse_interests(cid, value)
            for cid, value in zip(unique_ids, values)}


def _parse_interests(client_id, value):
    """The list of strings `value` holds; StoreDataError otherwise."""
    if value is None:
        return []
    try:
        interests = orjson.loads(value)  # bytes: checks UTF-8 too
    except orjson.JSONDecodeError:  # also for an OtherType
        interests = _NOT_JSON
    # map() keeps the per-item check in C: a generator costs twice as much.
    if (type(interests) is not list
            or not all(map(isinstance, interests, _STR))):
        found = (repr(value) if isinstance(value, OtherType) else
                 "not JSON" if interests is _NOT_JSON else "other JSON")
        logger.error("store: %s is %s, not a JSON list of strings",
                     interests_key(client_id), found)
        raise StoreDataError(
            "stored interests of client %d are not a JSON list of strings"
            % client_id)
    return interests

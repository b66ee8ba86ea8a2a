"""The scoring rules and the interests lookup."""
import hashlib
import logging

import orjson

from scoring_api.errors import StoreDataError

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


async def get_score(store, ttl_seconds, **inputs):
    """The cached score of these inputs, or a fresh one, cached."""
    key = score_key(**inputs)
    cached = await store.cache_get(key)
    if cached is not None:
        try:
            return float(cached)
        except ValueError:
            logger.warning("cache: %s holds %r, not a score; recomputing",
                           key, cached[:40])
    score = compute_score(**inputs)
    await store.cache_set(key, score, ttl_seconds)
    return score


def interests_key(client_id):
    return "%s%d" % (INTERESTS_KEY_PREFIX, client_id)


async def get_interests(store, client_ids):
    """{client_id: [interest, ...]} for each id, in one store round trip."""
    unique_ids = list(dict.fromkeys(client_ids))
    values = await store.get_many([interests_key(cid) for cid in unique_ids])
    return {cid: _parse_interests(cid, value)
            for cid, value in zip(unique_ids, values)}


def _parse_interests(client_id, value):
    if value is None:
        return []
    try:
        interests = orjson.loads(value)
    except orjson.JSONDecodeError:
        interests = None
    if (not isinstance(interests, list)
            or not all(isinstance(item, str) for item in interests)):
        logger.error("store: %s is not a JSON list of strings",
                     interests_key(client_id))
        raise StoreDataError(
            "stored interests of client %d are not a JSON list of strings"
            % client_id)
    return interests

"""What the tests share: tokens, request bodies and an in-memory store."""
import datetime
import hashlib
import json
import os

import mock
import redis.asyncio

from scoring_api.config import Settings
from scoring_api.errors import StoreUnavailable
from scoring_api.store import RedisEndpoint, Store

ACCOUNT, LOGIN = "horns&hoofs", "h&f"
SALT, ADMIN_SALT = "Otus", "42"


def user_token(account=ACCOUNT, login=LOGIN, salt=SALT):
    return hashlib.sha512(
        ((account or "") + (login or "") + salt).encode()).hexdigest()


def admin_token(now=None, salt=ADMIN_SALT):
    now = now or datetime.datetime.now()
    return hashlib.sha512(
        (now.strftime("%Y%m%d%H") + salt).encode()).hexdigest()


def api_request(method, arguments, login=LOGIN, account=ACCOUNT,
                token=None):
    """A request body with a valid token unless `token` is given."""
    if token is None:
        token = admin_token() if login == "admin" else user_token(
            account, login)
    return {"account": account, "login": login, "method": method,
            "token": token, "arguments": arguments}


def today():
    return datetime.date.today().strftime("%d.%m.%Y")


class MemoryStore:
    """The `Store` interface over dicts, for tests that need no Redis.

    Values are kept as strings (the Redis store returns bytes; the
    callers decode either); with
    `down=True` the persistent store fails and the cache misses, as the
    real store does when Redis is gone.
    """

    def __init__(self, data=None, down=False):
        self.data = {key: _as_text(value)
                     for key, value in (data or {}).items()}
        self.cache = {}
        self.down = down
        self.round_trips = 0

    def put_interests(self, interests):
        for client_id, values in interests.items():
            self.data["i:%d" % client_id] = json.dumps(values)

    async def get(self, key):
        return (await self.get_many([key]))[0]

    async def get_many(self, keys):
        self.round_trips += 1
        if self.down:
            raise StoreUnavailable("store is unavailable")
        return [self.data.get(key) for key in keys]

    async def set_many(self, mapping):
        if self.down:
            raise StoreUnavailable("store is unavailable")
        self.data.update((key, _as_text(v)) for key, v in mapping.items())

    async def cache_get(self, key):
        return None if self.down else self.cache.get(key)

    async def cache_set(self, key, value, ttl_seconds):
        if not self.down:
            self.cache[key] = _as_text(value)

    async def health(self):
        state = "down" if self.down else "up"
        return {"store": state, "cache": state}

    async def close(self):
        pass


def _as_text(value):
    return value if isinstance(value, str) else str(value)


def mock_redis(*answers, forever=None):
    """A mocked redis.asyncio client: each call of `execute_command` takes
    the next of `answers` (an exception is raised), or always `forever`.
    Count attempts with `client.execute_command.await_count`. Its
    `pipeline()` is a mock too: set `pipeline.return_value.execute`."""
    client = mock.AsyncMock(spec_set=redis.asyncio.Redis)
    client.execute_command.side_effect = (
        forever if forever is not None else list(answers))
    client.pipeline.return_value = mock.AsyncMock(
        spec_set=redis.asyncio.client.Pipeline)
    return client


def store_over(store_client, cache_client=None, settings=None):
    """A real `Store` whose Redis clients are mocks."""
    settings = settings or Settings()
    return Store(
        RedisEndpoint("store", store_client, settings.store),
        RedisEndpoint("cache", cache_client or mock_redis(), settings.cache),
        settings.cache)


# The reference vectors (docs/api.md): online_score arguments answered 200.
SCORED_ARGUMENTS = [
    {"phone": "79175002040", "email": "stupnikov@otus.ru"},
    {"phone": 79175002040, "email": "stupnikov@otus.ru"},
    {"gender": 1, "birthday": "01.01.2000", "first_name": "a",
     "last_name": "b"},
    {"gender": 0, "birthday": "01.01.2000"},
    {"gender": 2, "birthday": "01.01.2000"},
    {"first_name": "a", "last_name": "b"},
    {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
     "birthday": "01.01.2000", "first_name": "a", "last_name": "b"},
]

# The repository, where `python -m scoring_api` runs from.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# A user's online_score request answered 200 with score 3.0.
SCORE_REQUEST = api_request("online_score", SCORED_ARGUMENTS[0])

"""What the store's unit tests share: short bounds, a backoff that
records what it is asked, a call that never ends, and a test case that
closes what it opened while its loop still runs."""
import asyncio

from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tornado.testing import AsyncTestCase

from scoring_api.config import Settings

FAST = Settings().replace(
    store={"retries": 3, "backoff": 0.001, "backoff_max": 0.002,
           "connect_timeout": 0.05, "timeout": 0.05},
    cache={"retries": 1, "backoff": 0.001, "backoff_max": 0.002,
           "connect_timeout": 0.05, "timeout": 0.05,
           "failure_threshold": 2, "reset_timeout": 10.0})
TRANSIENT = [RedisConnectionError("refused"), RedisTimeoutError("slow"),
             ConnectionResetError("reset"), TimeoutError("timed out")]


class RecordingBackoff(AbstractBackoff):
    """No pause; remembers the failure count of each time it is asked."""

    def __init__(self):
        self.failures = []

    def compute(self, failures):
        self.failures.append(failures)
        return 0


async def hang_forever(*args):
    await asyncio.Event().wait()


class ClosingTestCase(AsyncTestCase):
    """Closes what a test opened (breakers, stores) while the loop runs."""

    def setUp(self):
        super().setUp()
        self.to_close = []

    def closing(self, closable):
        self.to_close.append(closable)
        return closable

    def tearDown(self):
        for closable in self.to_close:
            self.io_loop.run_sync(closable.close)
        super().tearDown()

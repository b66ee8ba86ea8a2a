"""A cache that answers reads and refuses writes (issue 7.4): Redis out of
memory with `noeviction`. Scores stay right, the log stays short."""
import asyncio
import json

from tornado.testing import gen_test

from scoring_api import scoring
from tests.support.helpers import api_request
from tests.support.service import ServiceTestCase
from tests.support.layers import requires_own_server

CONCURRENT_MISSES = 50
WARNINGS_AT_MOST = 3
FIRST_NAMES = ["n%d" % n for n in range(CONCURRENT_MISSES)]


def score_request(first_name):
    """A request of its own cache key; its score is 3.5."""
    return api_request("online_score", {
        "phone": "79175002040", "email": "a@b", "first_name": first_name,
        "last_name": "x"})


class OutOfMemoryCacheTest(ServiceTestCase):
    def setUp(self):
        requires_own_server(self)  # CONFIG SET on a Redis of our own only
        super().setUp()
        policy = self.redis.config_get("maxmemory*")
        self.addCleanup(self.redis.config_set, "maxmemory",
                        policy["maxmemory"])
        self.addCleanup(self.redis.config_set, "maxmemory-policy",
                        policy["maxmemory-policy"])

    def run_out_of_memory(self):
        self.redis.config_set("maxmemory-policy", "noeviction")
        self.redis.config_set("maxmemory", 1)

    async def scores(self, first_names):
        answers = await asyncio.gather(*(
            self.http_client.fetch(
                self.get_url("/method/"), method="POST",
                body=json.dumps(score_request(name)), raise_error=False)
            for name in first_names))
        return [(answer.code, json.loads(answer.body)) for answer in answers]

    @gen_test(timeout=30)
    async def test_concurrent_misses_answer_right_and_log_a_few_lines(self):
        self.run_out_of_memory()
        with self.assertLogs("scoring_api", "WARNING") as logs:
            for _ in range(3):  # three waves, past the write pause
                answers = await self.scores(FIRST_NAMES)
                self.assertEqual(answers, [
                    (200, {"code": 200, "response": {"score": 3.5}})
                ] * CONCURRENT_MISSES)
                await asyncio.sleep(self.settings.cache.reset_timeout)
        self.assertLessEqual(len(logs.output), WARNINGS_AT_MOST, logs.output)
        self.assertIn("SET failed", logs.output[0])
        self.assertIn("maxmemory", logs.output[0])
        self.assertFalse(self.store.breaker.is_open)

    @gen_test(timeout=30)
    async def test_hits_are_still_served_while_writes_are_refused(self):
        key = scoring.score_key(phone="79175002040", email="a@b",
                                first_name="n0", last_name="x")
        self.redis.set(key, "4.5", ex=60)  # a score, not the one computed
        self.run_out_of_memory()
        with self.assertLogs("scoring_api", "WARNING"):
            await self.scores(FIRST_NAMES[1:])  # misses: refused writes
        self.assertEqual(await self.scores(["n0"]), [
            (200, {"code": 200, "response": {"score": 4.5}})])

    @gen_test(timeout=30)
    async def test_writes_resume_once_memory_is_back(self):
        self.run_out_of_memory()
        with self.assertLogs("scoring_api", "WARNING"):
            await self.scores(FIRST_NAMES[:5])
        self.redis.config_set("maxmemory", 0)
        await asyncio.sleep(self.settings.cache.reset_timeout)
        await self.scores(FIRST_NAMES[:5])
        self.assertEqual(len(self.redis.keys("score:*")), 5)

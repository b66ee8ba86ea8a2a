"""Data the service did not write, put in a real Redis (docs/api.md and
docs/operations.md: what a corrupt cache entry or interests key answers)."""
import datetime
import json

import mock

from scoring_api import scoring
from tests.support.cases import cases
from tests.support.helpers import api_request
from tests.support.service import ServiceTestCase

ARGUMENTS = {"phone": "79175002040", "email": "stupnikov@otus.ru",
             "birthday": "01.01.2000", "gender": 1}
SCORE = 4.5
KEY = scoring.score_key(phone="79175002040", email="stupnikov@otus.ru",
                        birthday=datetime.date(2000, 1, 1), gender=1)
NOT_A_SCORE = [b"\xff", b"nan", b"inf", b"-inf", b"1e400", b"-100",
               b"1e308", b"1_000", b"99", b"42", b"", b"4.4", b"score"]
ANOTHER_TYPE = {
    "set": lambda redis, key: redis.sadd(key, "cars", "pets"),
    "hash": lambda redis, key: redis.hset(key, "cars", "1"),
    "list": lambda redis, key: redis.rpush(key, "cars"),
    "zset": lambda redis, key: redis.zadd(key, {"cars": 1}),
    "stream": lambda redis, key: redis.xadd(key, {"cars": "1"}),
}
NOT_A_LIST_OF_STRINGS = [b'["caf\xe9"]', b"\xff\xfe", b"", b"cars,pets",
                         b'{"cars": 1}', b"null", b"42", b'"cars"',
                         b'["cars", 1]', b'[["cars"]]']


class CorruptCacheTest(ServiceTestCase):
    def setUp(self):
        super().setUp()
        scoring.corrupt_scores.reset()  # each test sees its first line

    def score(self):
        return self.answer(self.post(api_request("online_score", ARGUMENTS)))

    @cases(NOT_A_SCORE)
    def test_an_entry_that_is_not_a_score_is_a_miss_and_overwritten(
            self, stored):
        self.redis.set(KEY, stored, ex=60)
        with self.assertLogs("scoring_api.scoring", "WARNING"):
            self.assertEqual(self.score(), (200, {"score": SCORE}))
        self.assertEqual(self.redis.get(KEY), str(SCORE))
        self.assertEqual(self.score(), (200, {"score": SCORE}))

    @cases(sorted(ANOTHER_TYPE))
    def test_an_entry_of_another_type_is_a_miss_and_overwritten(
            self, type_name):
        ANOTHER_TYPE[type_name](self.redis, KEY)
        with self.assertLogs("scoring_api.scoring", "WARNING"):
            self.assertEqual(self.score(), (200, {"score": SCORE}))
        self.assertEqual(self.redis.get(KEY), str(SCORE))
        self.assertFalse(self.store.breaker.is_open)

    def test_many_corrupt_entries_write_one_line(self):
        frozen = mock.patch.object(scoring.corrupt_scores, "clock",
                                   lambda: 0.0)  # all within one interval
        with frozen, self.assertLogs("scoring_api", "WARNING") as logs:
            for _ in range(20):
                self.redis.set(KEY, b"nan", ex=60)
                self.assertEqual(self.score(), (200, {"score": SCORE}))
        self.assertEqual(len(logs.output), 1, logs.output)


class CorruptInterestsTest(ServiceTestCase):
    def interests(self, client_ids):
        return self.answer(self.post(api_request(
            "clients_interests", {"client_ids": client_ids})))

    def assert_names_client(self, client_id):
        with self.assertLogs("scoring_api.scoring", "ERROR"):
            code, error = self.interests([1, client_id, 3])
        self.assertEqual((code, error), (
            500, "stored interests of client %d are not a JSON list of"
                 " strings" % client_id))

    @cases(NOT_A_LIST_OF_STRINGS)
    def test_a_value_that_is_not_a_json_list_of_strings_is_a_500(
            self, stored):
        self.redis.set("i:1", json.dumps(["cars"]))
        self.redis.set("i:2", stored)
        self.assert_names_client(2)

    @cases(sorted(ANOTHER_TYPE))
    def test_a_key_of_another_type_is_a_500_not_an_empty_list(
            self, type_name):
        ANOTHER_TYPE[type_name](self.redis, "i:2")
        self.assert_names_client(2)

    def test_only_a_key_that_does_not_exist_is_an_empty_list(self):
        self.redis.set("i:1", "[]")
        self.assertEqual(self.interests([1, 2]), (200, {"1": [], "2": []}))

    def test_bad_bytes_cost_no_new_connection(self):
        self.redis.set("i:2", b'["caf\xe9"]')
        self.assert_names_client(2)
        before = self.redis.info("stats")["total_connections_received"]
        with self.assertLogs("scoring_api.scoring", "ERROR"):
            for _ in range(20):
                self.assertEqual(self.interests([2])[0], 500)
        after = self.redis.info("stats")["total_connections_received"]
        self.assertEqual(after, before)

    def test_a_read_of_present_keys_is_one_mget_and_nothing_else(self):
        self.redis.mset({"i:%d" % n: '["x"]' for n in range(100)})
        self.redis.config_resetstat()
        self.assertEqual(self.interests(list(range(100)))[0], 200)
        self.assertEqual(self.commands(), {"mget": 1})

    def test_missing_keys_cost_one_exists_and_no_type(self):
        self.redis.mset({"i:%d" % n: '["x"]' for n in range(0, 100, 2)})
        self.redis.config_resetstat()
        self.assertEqual(self.interests(list(range(100)))[0], 200)
        self.assertEqual(self.commands(), {"mget": 1, "exists": 1})

    def commands(self):
        """{command: calls} of the reading commands since the last CONFIG
        RESETSTAT."""
        stats = self.redis.info("commandstats")
        return {name: stats["cmdstat_" + name]["calls"]
                for name in ("get", "mget", "exists", "type")
                if "cmdstat_" + name in stats}

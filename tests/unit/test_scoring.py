import datetime
import unittest

import mock
from redis.exceptions import ConnectionError as RedisConnectionError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import scoring
from scoring_api.errors import StoreDataError
from scoring_api.store import OtherType, Store
from tests.support.cases import cases
from tests.support.helpers import mock_redis, store_over

BIRTHDAY = datetime.date(2000, 1, 1)
FULL = {"phone": "79175002040", "email": "a@b", "birthday": BIRTHDAY,
        "gender": 1, "first_name": "a", "last_name": "b"}
TTL = 3600


def cache_mock(cached=None):
    store = mock.AsyncMock(spec_set=Store)
    store.cache_get.return_value = cached
    return store


class ComputeScoreTest(unittest.TestCase):
    @cases([
        ({}, 0.0),
        ({"phone": "79175002040", "email": "a@b"}, 3.0),
        ({"phone": 79175002040}, 1.5),
        ({"birthday": BIRTHDAY, "gender": 1}, 1.5),
        ({"birthday": BIRTHDAY, "gender": 0}, 0.0),
        ({"first_name": "a", "last_name": "b"}, 0.5),
        ({"first_name": "a"}, 0.0),
        (FULL, 5.0),
    ])
    def test_score_adds_the_weight_of_each_present_input(self, case):
        inputs, score = case
        self.assertEqual(scoring.compute_score(**inputs), score)


class ScoreKeyTest(unittest.TestCase):
    @cases(sorted(FULL))
    def test_every_input_changes_the_key(self, name):
        changed = dict(FULL, **{name: {
            "phone": "79990000000", "email": "c@d",
            "birthday": datetime.date(2001, 1, 1), "gender": 2,
            "first_name": "x", "last_name": "y"}[name]})
        self.assertNotEqual(scoring.score_key(**FULL),
                            scoring.score_key(**changed))

    def test_a_phone_as_number_or_string_is_one_key(self):
        self.assertEqual(scoring.score_key(phone=79175002040),
                         scoring.score_key(phone="79175002040"))

    def test_values_cannot_leak_into_the_next_field(self):
        self.assertNotEqual(
            scoring.score_key(first_name="a b", last_name="c"),
            scoring.score_key(first_name="a", last_name="b c"))

    def test_gender_0_and_no_gender_are_different_keys(self):
        self.assertNotEqual(scoring.score_key(gender=0), scoring.score_key())

    def test_the_key_of_a_person_is_the_same_in_every_release(self):
        # Scores cached by the previous release stay hits after an
        # upgrade: a change of the key's recipe must be a decision.
        self.assertEqual(scoring.score_key(**FULL),
                         "score:f31b61f0fcffa2e49933944ee1b64507")
        self.assertEqual(scoring.score_key(),
                         "score:20fa1ba31fcc216c657e99f4c6011787")


class GetScoreTest(AsyncTestCase):
    @gen_test
    async def test_a_cache_hit_returns_the_cached_score_and_writes_nothing(
            self):
        store = cache_mock(cached="4.5")
        self.assertEqual(await scoring.get_score(store, TTL, **FULL), 4.5)
        store.cache_get.assert_awaited_once_with(scoring.score_key(**FULL))
        store.cache_set.assert_not_awaited()

    @gen_test
    async def test_a_cache_miss_computes_and_caches_for_the_ttl(self):
        store = cache_mock(cached=None)
        self.assertEqual(await scoring.get_score(store, TTL, **FULL), 5.0)
        self.assertEqual(store.mock_calls, [
            mock.call.cache_get(scoring.score_key(**FULL)),
            mock.call.cache_set(scoring.score_key(**FULL), 5.0, TTL)])

    @cases([b"garbage", b"\xff", b"nan", b"inf", b"-inf", b"1e400", b"-100",
            b"1e308", b"1_000", b"99", b"42", b"", b"4.4", b"-0.5",
            b"-0", b"+3", b"0_5", b" 3", b"3\n", b"3.", b".5", b"3e0",
            b"\xd9\xa3", OtherType()])
    @gen_test
    async def test_a_cached_value_that_is_not_a_score_is_recomputed(
            self, cached):
        scoring.corrupt_scores.reset()
        store = cache_mock(cached=cached)
        with self.assertLogs("scoring_api.scoring", "WARNING"):
            self.assertEqual(await scoring.get_score(store, TTL, **FULL), 5.0)
        store.cache_set.assert_awaited_once_with(
            scoring.score_key(**FULL), 5.0, TTL)

    @cases([b"0.0", b"0.5", b"1.5", b"2.0", b"3.0", b"3.5", b"4.5", b"5.0",
            b"3", "3.0", 3.0])
    @gen_test
    async def test_every_score_the_rules_give_is_a_hit(self, cached):
        store = cache_mock(cached=cached)
        self.assertEqual(await scoring.get_score(store, TTL, **FULL),
                         float(cached))
        store.cache_set.assert_not_awaited()

    @gen_test
    async def test_corrupt_entries_are_logged_once_per_interval(self):
        scoring.corrupt_scores.reset()
        store = cache_mock(cached=b"nan")
        frozen = mock.patch.object(scoring.corrupt_scores, "clock",
                                   lambda: 0.0)  # all within one interval
        with frozen, self.assertLogs("scoring_api.scoring", "WARNING") as logs:
            for _ in range(50):
                await scoring.get_score(store, TTL, **FULL)
        self.assertEqual(len(logs.output), 1, logs.output)

    @cases([
        (b"x" * 100, repr(b"x" * 40)),  # cut: a huge value stays one line
        ("7" * 50, repr("7" * 40)),
        (OtherType(), "a Redis value of another type"),  # a WRONGTYPE
    ])
    @gen_test
    async def test_a_corrupt_entry_is_logged_by_its_first_40_characters(
            self, case):
        cached, shown = case
        scoring.corrupt_scores.reset()
        with self.assertLogs("scoring_api.scoring", "WARNING") as logs:
            await scoring.get_score(cache_mock(cached), TTL, **FULL)
        self.assertEqual(logs.records[0].getMessage(), (
            "cache: %s holds %s, not a score; recomputed and overwritten (1"
            " such entries since the last report)" % (
                scoring.score_key(**FULL), shown)))

    @gen_test
    async def test_a_cache_that_raises_is_a_miss_and_the_score_is_computed(
            self):
        cache = mock_redis(forever=RedisConnectionError("refused"))
        store = store_over(mock_redis(), cache)
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertEqual(await scoring.get_score(store, TTL, **FULL), 5.0)
        self.assertGreater(cache.execute_command.await_count, 0)


class GetInterestsTest(AsyncTestCase):
    @gen_test
    async def test_many_ids_are_read_in_one_round_trip(self):
        redis = mock_redis([b'["cars", "pets"]', b'["tv"]', b'[]'])
        store = store_over(redis)
        interests = await scoring.get_interests(store, [1, 2, 3])
        self.assertEqual(interests, {1: ["cars", "pets"], 2: ["tv"], 3: []})
        redis.execute_command.assert_awaited_once_with(
            "MGET", "i:1", "i:2", "i:3")

    @gen_test
    async def test_only_the_ids_read_as_nil_are_checked_for_existence(
            self):
        redis = mock_redis([b'["cars"]', None, None], 0)
        interests = await scoring.get_interests(store_over(redis), [1, 2, 3])
        self.assertEqual(interests, {1: ["cars"], 2: [], 3: []})
        self.assertEqual(redis.execute_command.await_args_list, [
            mock.call("MGET", "i:1", "i:2", "i:3"),
            mock.call("EXISTS", "i:2", "i:3")])

    @cases(["set", "hash", "list", "zset", "stream"])
    @gen_test
    async def test_a_key_of_another_redis_type_is_an_error_naming_the_id(
            self, type_name):
        redis = mock_redis([b'["cars"]', None, None], 1)
        pipeline = redis.pipeline.return_value
        pipeline.execute.return_value = [b"none", type_name.encode()]
        with self.assertLogs("scoring_api.scoring", "ERROR") as logs, \
                self.assertRaises(StoreDataError) as raised:
            await scoring.get_interests(store_over(redis), [1, 2, 3])
        self.assertEqual(
            str(raised.exception),
            "stored interests of client 3 are not a JSON list of strings")
        self.assertIn("i:3 is a Redis %s" % type_name, logs.output[0])
        self.assertEqual(pipeline.execute_command.call_args_list, [
            mock.call("TYPE", "i:2"), mock.call("TYPE", "i:3")])

    @gen_test
    async def test_a_repeated_id_is_read_once(self):
        redis = mock_redis(['["cars"]'])
        interests = await scoring.get_interests(store_over(redis), [7, 7])
        self.assertEqual(interests, {7: ["cars"]})
        redis.execute_command.assert_awaited_once_with("MGET", "i:7")

    @cases([('{"cars": 1}', "other JSON"), ("not json", "not JSON"),
            ('["cars", 1]', "other JSON"), ('"cars"', "other JSON"),
            ("null", "other JSON"), (b'["caf\xe9"]', "not JSON"),
            (b"\xff\xfe", "not JSON"), (b"", "not JSON")])
    @gen_test
    async def test_a_stored_value_that_is_not_a_list_of_strings_is_an_error(
            self, case):
        stored, found = case
        store = store_over(mock_redis([stored]))
        with self.assertLogs("scoring_api.scoring", "ERROR") as logs, \
                self.assertRaises(StoreDataError) as raised:
            await scoring.get_interests(store, [3])
        self.assertEqual(
            str(raised.exception),
            "stored interests of client 3 are not a JSON list of strings")
        self.assertEqual(logs.records[0].getMessage(),
                         "store: i:3 is %s, not a JSON list of strings"
                         % found)

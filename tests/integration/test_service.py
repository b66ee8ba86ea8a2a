"""The HTTP service end to end over a real Redis."""
import datetime
import json

from scoring_api import scoring
from tests.support.clock import admin_request, stop_auth_clock
from tests.support.helpers import api_request
from tests.support.service import ServiceTestCase

ARGUMENTS = {"phone": "79175002040", "email": "stupnikov@otus.ru",
             "birthday": "01.01.2000", "gender": 1}
KEY = scoring.score_key(phone="79175002040", email="stupnikov@otus.ru",
                        birthday=datetime.date(2000, 1, 1), gender=1)


class OnlineScoreTest(ServiceTestCase):
    def test_a_miss_computes_the_score_and_caches_it_for_an_hour(self):
        code, response = self.answer(self.post(
            api_request("online_score", ARGUMENTS)))
        self.assertEqual((code, response), (200, {"score": 4.5}))
        self.assertEqual(self.redis.get(KEY), "4.5")
        self.assertTrue(3590 <= self.redis.ttl(KEY) <= 3600)

    def test_a_hit_returns_the_cached_score_even_if_it_differs(self):
        self.redis.set(KEY, "3.5", ex=60)  # a score, not the one computed
        code, response = self.answer(self.post(
            api_request("online_score", ARGUMENTS)))
        self.assertEqual((code, response), (200, {"score": 3.5}))

    def test_other_inputs_do_not_share_a_cached_score(self):
        self.redis.set(KEY, "9.25", ex=60)
        other = dict(ARGUMENTS, gender=2)
        code, response = self.answer(self.post(
            api_request("online_score", other)))
        self.assertEqual((code, response), (200, {"score": 4.5}))

    def test_the_admin_score_writes_no_cache(self):
        stop_auth_clock(self)
        code, response = self.answer(self.post(
            admin_request("online_score", ARGUMENTS)))
        self.assertEqual((code, response), (200, {"score": 42}))
        self.assertEqual(self.redis.dbsize(), 0)


class ClientsInterestsTest(ServiceTestCase):
    def test_interests_come_from_redis_and_missing_ids_are_empty(self):
        self.redis.set("i:1", json.dumps(["cars", "pets"]))
        self.redis.set("i:3", json.dumps(["\u043a\u043d\u0438\u0433\u0438"]))
        code, response = self.answer(self.post(api_request(
            "clients_interests", {"client_ids": [1, 2, 3]})))
        self.assertEqual(code, 200)
        self.assertEqual(response, {"1": ["cars", "pets"], "2": [],
                                    "3": ["\u043a\u043d\u0438\u0433\u0438"]})

    def test_a_value_that_is_not_json_is_a_clear_500(self):
        self.redis.set("i:1", json.dumps(["cars"]))
        self.redis.set("i:2", "cars,pets")
        with self.assertLogs("scoring_api.scoring", "ERROR"):
            code, error = self.answer(self.post(api_request(
                "clients_interests", {"client_ids": [1, 2]})))
        self.assertEqual((code, error), (500, "stored interests of client 2"
                                              " are not a JSON list of"
                                              " strings"))

    def test_a_key_of_another_type_is_a_clear_500(self):
        self.redis.rpush("i:1", "cars")  # MGET answers nil for a list
        with self.assertLogs("scoring_api.scoring", "ERROR"):
            code, error = self.answer(self.post(api_request(
                "clients_interests", {"client_ids": [1]})))
        self.assertEqual((code, error), (500, "stored interests of client 1"
                                              " are not a JSON list of"
                                              " strings"))

    def test_a_thousand_ids_are_one_mget(self):
        self.redis.config_resetstat()
        code, response = self.answer(self.post(api_request(
            "clients_interests", {"client_ids": list(range(1000))})))
        self.assertEqual((code, len(response)), (200, 1000))
        stats = self.redis.info("commandstats")
        self.assertEqual(stats["cmdstat_mget"]["calls"], 1)


class HealthTest(ServiceTestCase):
    def test_health_says_both_are_up(self):
        code, response = self.answer(self.fetch("/health"))
        self.assertEqual((code, response), (200, {"store": "up",
                                                  "cache": "up"}))


class LocalTierTest(ServiceTestCase):
    base_settings = ServiceTestCase.base_settings.replace(
        cache={"local_size": 100})

    def test_a_hot_score_reaches_redis_once(self):
        for _ in range(20):
            code, response = self.answer(self.post(
                api_request("online_score", ARGUMENTS)))
            self.assertEqual((code, response), (200, {"score": 4.5}))
        # The miss (a GET, then a SET); the 19 hits answer locally.
        stats = self.redis.info("commandstats")
        self.assertEqual(stats["cmdstat_get"]["calls"], 1)
        self.assertEqual(stats["cmdstat_set"]["calls"], 1)

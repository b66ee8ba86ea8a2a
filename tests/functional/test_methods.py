"""The method handler with an in-memory store: every reference vector of
docs/api.md."""
import mock
from tornado.testing import AsyncTestCase, gen_test

from scoring_api import methods
from scoring_api.admission import Admission
from scoring_api.config import Settings
from scoring_api.errors import Overloaded
from tests.support.cases import cases
from tests.support.clock import NOW, admin_request, stop_auth_clock
from tests.support.helpers import (SCORED_ARGUMENTS, MemoryStore, admin_token,
                                   api_request, today, user_token)

INTERESTS = {0: ["books"], 1: ["cars", "pets"], 2: ["travel"],
             3: ["music", "tv", "sport"]}


class MethodHandlerTestCase(AsyncTestCase):
    settings = Settings()

    def setUp(self):
        super().setUp()
        stop_auth_clock(self)
        self.store = MemoryStore()
        self.store.put_interests(INTERESTS)
        self.context = {}

    async def call(self, request):
        self.context = {}
        return await methods.method_handler(
            request, self.context, self.store, self.settings)

    async def assert_code(self, request, code):
        response, got = await self.call(request)
        self.assertEqual(got, code, response)
        return response


class EnvelopeTest(MethodHandlerTestCase):
    @gen_test
    async def test_an_empty_request_is_invalid(self):
        response = await self.assert_code({}, 422)
        self.assertEqual(response, "login: is required; token: is required;"
                                   " arguments: is required; method: is"
                                   " required")

    @cases([
        {"account": "horns&hoofs", "login": "h&f", "method": "online_score",
         "token": "", "arguments": {}},
        {"account": "horns&hoofs", "login": "h&f", "method": "online_score",
         "token": "sdd", "arguments": {}},
        {"account": "horns&hoofs", "login": "admin",
         "method": "online_score", "token": "", "arguments": {}},
    ])
    @gen_test
    async def test_bad_auth_is_forbidden(self, request):
        self.assertEqual(await self.assert_code(request, 403), "Forbidden")

    @cases([
        ({"account": "horns&hoofs", "login": "h&f",
          "method": "online_score"}, "arguments"),
        ({"account": "horns&hoofs", "login": "h&f", "arguments": {}},
         "method"),
        ({"account": "horns&hoofs", "method": "online_score",
          "arguments": {}}, "login"),
    ])
    @gen_test
    async def test_an_invalid_envelope_is_422_before_auth(self, case):
        request, missing = case
        request = dict(request, token=user_token(
            request.get("account"), request.get("login")))
        response = await self.assert_code(request, 422)
        self.assertEqual(response, "%s: is required" % missing)

    @gen_test
    async def test_an_unknown_method_is_422(self):
        response = await self.assert_code(
            api_request("delete_everything", {}), 422)
        self.assertEqual(response, "method: unknown method (known:"
                                   " online_score, clients_interests)")
        self.assertEqual(self.context["method"], "unknown")

    @gen_test
    async def test_the_unknown_name_is_never_echoed(self):
        response = await self.assert_code(
            api_request("79175002040 " * 100, {}), 422)
        self.assertEqual(response, "method: unknown method (known:"
                                   " online_score, clients_interests)")

    @gen_test
    async def test_an_unknown_method_with_a_bad_token_is_403(self):
        response = await self.assert_code(
            api_request("delete_everything", {}, token="sdd"), 403)
        self.assertEqual(response, "Forbidden")

    @gen_test
    async def test_the_context_names_the_method_called(self):
        await self.assert_code(api_request(
            "online_score", {"first_name": "a", "last_name": "b"}), 200)
        self.assertEqual(self.context["method"], "online_score")

    @cases([([1], "list"), ("x", "str"), (7, "int")])
    @gen_test
    async def test_arguments_that_are_not_an_object_are_422(self, case):
        arguments, kind = case
        response = await self.assert_code(
            api_request("online_score", arguments), 422)
        self.assertEqual(response,
                         "arguments: must be an object, not %s" % kind)

    @cases([None, {}])
    @gen_test
    async def test_empty_arguments_are_read_as_no_arguments(self, empty):
        response = await self.assert_code(
            api_request("online_score", empty), 422)
        self.assertEqual(response, "arguments: need at least one pair with"
                                   " values: phone and email, first_name"
                                   " and last_name, or gender and birthday")

    @gen_test
    async def test_each_call_checks_the_salts_of_its_own_settings(self):
        arguments = {"first_name": "a", "last_name": "b"}
        peppered = api_request("online_score", arguments,
                               token=user_token(salt="pepper"))
        await self.assert_code(api_request("online_score", arguments), 200)
        self.settings = Settings().replace(auth={"salt": "pepper"})
        await self.assert_code(peppered, 200)
        await self.assert_code(api_request("online_score", arguments), 403)
        self.settings = Settings()
        await self.assert_code(peppered, 403)

    @gen_test
    async def test_the_admin_token_of_another_hour_is_forbidden(self):
        request = api_request(
            "online_score", {"first_name": "a", "last_name": "b"},
            login="admin", token=admin_token(NOW.replace(hour=11)))
        self.assertEqual(await self.assert_code(request, 403), "Forbidden")


class OnlineScoreTest(MethodHandlerTestCase):
    @cases([
        {},
        {"phone": "79175002040"},
        {"phone": "89175002040", "email": "stupnikov@otus.ru"},
        {"phone": "79175002040", "email": "stupnikovotus.ru"},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": -1},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": "1"},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
         "birthday": "01.01.1890"},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
         "birthday": "XXX"},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
         "birthday": "01.01.2000", "first_name": 1},
        {"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
         "birthday": "01.01.2000", "first_name": "s", "last_name": 2},
        {"phone": "79175002040", "birthday": "01.01.2000",
         "first_name": "s"},
        {"email": "stupnikov@otus.ru", "gender": 1, "last_name": 2},
    ])
    @gen_test
    async def test_invalid_arguments_are_422(self, arguments):
        response = await self.assert_code(
            api_request("online_score", arguments), 422)
        self.assertIsInstance(response, str)
        self.assertTrue(response)

    @cases([
        ({"phone": "89175002040", "email": "stupnikov@otus.ru"},
         "phone: must be 11 digits starting with 7"),
        ({"phone": "79175002040", "email": "stupnikovotus.ru"},
         "email: must contain @"),
        ({"phone": "79175002040", "email": "stupnikov@otus.ru",
          "gender": -1},
         "gender: must be 0 (unknown), 1 (male) or 2 (female)"),
        ({"phone": "79175002040", "email": "stupnikov@otus.ru",
          "gender": "1"}, "gender: must be an integer 0, 1 or 2, not str"),
        ({"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
          "birthday": "01.01.1890"}, "birthday: must be at most 70 years ago"),
        ({"email": "stupnikov@otus.ru", "gender": 1, "last_name": 2},
         "last_name: must be a string, not int"),
        ({"phone": "79175002040", "birthday": "01.01.2000",
          "first_name": "s"},
         "arguments: need at least one pair with values: phone and email,"
         " first_name and last_name, or gender and birthday"),
    ])
    @gen_test
    async def test_the_422_names_the_field_and_why(self, case):
        arguments, message = case
        response = await self.assert_code(
            api_request("online_score", arguments), 422)
        self.assertEqual(response, message)

    @cases(SCORED_ARGUMENTS)
    @gen_test
    async def test_valid_arguments_are_scored(self, arguments):
        response = await self.assert_code(
            api_request("online_score", arguments), 200)
        self.assertIsInstance(response["score"], float)
        self.assertGreaterEqual(response["score"], 0)
        self.assertEqual(sorted(self.context["has"]), sorted(arguments))

    @cases([
        ({"phone": "79175002040", "email": "stupnikov@otus.ru"}, 3.0),
        ({"gender": 0, "birthday": "01.01.2000"}, 0.0),
        ({"gender": 2, "birthday": "01.01.2000"}, 1.5),
        ({"first_name": "a", "last_name": "b"}, 0.5),
        ({"phone": "79175002040", "email": "stupnikov@otus.ru", "gender": 1,
          "birthday": "01.01.2000", "first_name": "a", "last_name": "b"},
         5.0),
    ])
    @gen_test
    async def test_the_score_is_the_sum_of_the_weights(self, case):
        arguments, score = case
        response = await self.assert_code(
            api_request("online_score", arguments), 200)
        self.assertEqual(response, {"score": score})

    @gen_test
    async def test_the_admin_always_scores_42(self):
        arguments = {"phone": "79175002040", "email": "stupnikov@otus.ru"}
        response = await self.assert_code(
            admin_request("online_score", arguments), 200)
        self.assertEqual(response, {"score": 42})
        self.assertEqual(sorted(self.context["has"]), ["email", "phone"])
        self.assertEqual(self.store.cache, {})

    @gen_test
    async def test_the_admin_arguments_are_still_validated(self):
        await self.assert_code(admin_request(
            "online_score", {"phone": "79175002040"}), 422)

    @gen_test
    async def test_the_admin_gets_interests_like_anyone(self):
        response = await self.assert_code(admin_request(
            "clients_interests", {"client_ids": [1]}), 200)
        self.assertEqual(response, {"1": ["cars", "pets"]})

    @gen_test
    async def test_has_lists_the_non_empty_arguments_in_field_order(self):
        await self.assert_code(api_request("online_score", {
            "last_name": "b", "first_name": "a", "email": "",
            "gender": 0, "birthday": "01.01.2000"}), 200)
        self.assertEqual(self.context["has"],
                         ["first_name", "last_name", "birthday", "gender"])

    @cases([("phone", 79175002041), ("email", "b@a"), ("gender", 2),
            ("birthday", "02.01.2000"), ("first_name", "c"),
            ("last_name", "d")])
    @gen_test
    async def test_every_argument_reaches_the_score(self, case):
        name, other = case
        arguments = {"phone": 79175002040, "email": "a@b", "gender": 1,
                     "birthday": "01.01.2000", "first_name": "a",
                     "last_name": "b"}
        await self.assert_code(api_request("online_score", arguments), 200)
        (key,) = self.store.cache
        self.assertEqual(self.store.cache[key], "5.0")
        self.store.cache = {}
        await self.assert_code(api_request(
            "online_score", dict(arguments, **{name: other})), 200)
        (other_key,) = self.store.cache
        self.assertNotEqual(other_key, key)

    @gen_test
    async def test_a_second_request_is_answered_from_the_cache(self):
        request = api_request("online_score", {"first_name": "a",
                                               "last_name": "b"})
        await self.assert_code(request, 200)
        (key,) = self.store.cache
        self.store.cache[key] = "4.5"  # a score, not the one computed
        self.assertEqual(await self.assert_code(request, 200),
                         {"score": 4.5})

    @gen_test
    async def test_scores_are_cached_for_the_configured_ttl(self):
        self.store.cache_set = mock.AsyncMock()
        self.settings = Settings().replace(cache={"ttl": 120})
        await self.assert_code(api_request(
            "online_score", {"first_name": "a", "last_name": "b"}), 200)
        self.assertEqual(self.store.cache_set.await_args.args[2], 120)

    @gen_test
    async def test_with_the_store_down_the_score_still_answers(self):
        self.store.down = True
        response = await self.assert_code(api_request(
            "online_score", {"phone": "79175002040", "email": "a@b"}), 200)
        self.assertEqual(response, {"score": 3.0})


class ClientsInterestsTest(MethodHandlerTestCase):
    @cases([
        {},
        {"date": "20.07.2017"},
        {"client_ids": [], "date": "20.07.2017"},
        {"client_ids": {"1": 2}, "date": "20.07.2017"},
        {"client_ids": ["1", "2"], "date": "20.07.2017"},
        {"client_ids": [1, 2], "date": "XXX"},
    ])
    @gen_test
    async def test_invalid_arguments_are_422(self, arguments):
        await self.assert_code(
            api_request("clients_interests", arguments), 422)

    @cases([
        ({}, "client_ids: is required"),
        ({"client_ids": [], "date": "20.07.2017"},
         "client_ids: may not be empty"),
        ({"client_ids": {"1": 2}},
         "client_ids: must be a list of integers, not dict"),
        ({"client_ids": [-1]},
         "client_ids: must hold only integers from 0 to 18446744073709551615"),
        ({"client_ids": [1, 2], "date": "XXX"},
         "date: must be a real date in the form DD.MM.YYYY"),
    ])
    @gen_test
    async def test_the_422_names_the_field_and_why(self, case):
        arguments, message = case
        response = await self.assert_code(
            api_request("clients_interests", arguments), 422)
        self.assertEqual(response, message)

    @gen_test
    async def test_repeated_ids_are_answered_once(self):
        response = await self.assert_code(api_request(
            "clients_interests", {"client_ids": [1, 1, 2]}), 200)
        self.assertEqual(response, {"1": ["cars", "pets"], "2": ["travel"]})
        self.assertEqual(self.context["nclients"], 3)

    @gen_test
    async def test_the_default_cap_is_1000_ids(self):
        await self.assert_code(api_request(
            "clients_interests", {"client_ids": list(range(1000))}), 200)
        response = await self.assert_code(api_request(
            "clients_interests", {"client_ids": list(range(1001))}), 422)
        self.assertEqual(response, "client_ids: may hold at most 1000 ids")

    @cases([
        {"client_ids": [1, 2, 3], "date": today()},
        {"client_ids": [1, 2], "date": "19.07.2017"},
        {"client_ids": [0]},
    ])
    @gen_test
    async def test_each_id_gets_its_interests(self, arguments):
        response = await self.assert_code(
            api_request("clients_interests", arguments), 200)
        ids = arguments["client_ids"]
        self.assertEqual(response,
                         {str(cid): INTERESTS[cid] for cid in ids})
        for interests in response.values():
            self.assertTrue(interests)
            self.assertTrue(all(isinstance(i, str) for i in interests))
        self.assertEqual(self.context["nclients"], len(ids))

    @gen_test
    async def test_an_unknown_id_has_no_interests(self):
        response = await self.assert_code(
            api_request("clients_interests", {"client_ids": [1, 404]}), 200)
        self.assertEqual(response, {"1": ["cars", "pets"], "404": []})

    @gen_test
    async def test_all_ids_are_read_in_one_round_trip(self):
        await self.assert_code(api_request(
            "clients_interests", {"client_ids": list(range(100))}), 200)
        self.assertEqual(self.store.round_trips, 1)

    @gen_test
    async def test_more_ids_than_the_cap_are_422(self):
        self.settings = Settings().replace(server={"max_client_ids": 2})
        response = await self.assert_code(api_request(
            "clients_interests", {"client_ids": [1, 2, 3]}), 422)
        self.assertEqual(response, "client_ids: may hold at most 2 ids")

    @gen_test
    async def test_a_store_that_is_down_is_503(self):
        self.store.down = True
        response = await self.assert_code(
            api_request("clients_interests", {"client_ids": [1]}), 503)
        self.assertEqual(response, "store is unavailable")

    @gen_test
    async def test_a_corrupt_stored_value_is_500_naming_the_client(self):
        self.store.data["i:2"] = "{not json"
        with self.assertLogs("scoring_api.scoring", "ERROR"):
            response = await self.assert_code(api_request(
                "clients_interests", {"client_ids": [1, 2]}), 500)
        self.assertEqual(response, "stored interests of client 2 are not a"
                                   " JSON list of strings")

    @gen_test
    async def test_an_unexpected_error_is_500_without_detail(self):
        self.store.get_many = mock.AsyncMock(
            side_effect=RuntimeError("secret internals"))
        with self.assertLogs("scoring_api.methods", "ERROR") as logs:
            response = await self.assert_code(api_request(
                "clients_interests", {"client_ids": [1]}), 500)
        self.assertEqual(response, "Internal Server Error")
        self.assertIn("secret internals", "\n".join(logs.output))


class AdmissionTest(MethodHandlerTestCase):
    """method_handler with the process's Admission (docs/api.md, "Quotas"):
    one call at once per account, refilled in 1,000 s, so that a second
    call is refused however slow the machine."""

    settings = Settings().replace(limits={"rate": 0.001, "burst": 0})

    def setUp(self):
        super().setUp()
        self.admission = Admission.from_settings(self.settings)

    async def call(self, request):
        self.context = {}
        return await methods.method_handler(
            request, self.context, self.store, self.settings,
            admission=self.admission)

    @gen_test
    async def test_each_account_has_a_quota_of_its_own(self):
        arguments = {"first_name": "a", "last_name": "b"}
        await self.assert_code(api_request(
            "online_score", arguments, account="acme"), 200)
        refused = await self.assert_code(api_request(
            "online_score", arguments, account="acme"), 429)
        self.assertEqual(refused, "rate limit exceeded")
        await self.assert_code(api_request(
            "online_score", arguments, account="globex"), 200)

    @gen_test
    async def test_a_call_the_store_was_too_late_for_costs_no_quota(self):
        request = api_request("clients_interests", {"client_ids": [1]})
        self.store.get_many = mock.AsyncMock(side_effect=Overloaded())
        self.assertEqual(await self.assert_code(request, 503),
                         "overloaded, retry later")
        del self.store.get_many  # the store answers again
        self.assertEqual(await self.assert_code(request, 200),
                         {"1": ["cars", "pets"]})

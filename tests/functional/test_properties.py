"""Properties of the whole method handler, for any input hypothesis makes
(tests/support/strategies.py: how many, and the profiles)."""
import asyncio
import json
import unittest

from hypothesis import given
from hypothesis import strategies as st

from scoring_api import methods
from scoring_api.config import Settings
from tests.support import strategies
from tests.support.clock import stop_calendar
from tests.support.helpers import MemoryStore, api_request
from tests.support.http import HttpTestCase

SCORE_ARGUMENTS = {"phone": "79175002040", "email": "stupnikov@otus.ru",
                   "first_name": "a", "last_name": "b"}
INTERESTS_ARGUMENTS = {"client_ids": [1, 2], "date": "20.07.2017"}
# (method, valid arguments, the argument given any JSON)
ARGUMENT_TARGETS = (
    [("online_score", SCORE_ARGUMENTS, name)
     for name in [*SCORE_ARGUMENTS, "birthday", "gender"]]
    + [("clients_interests", INTERESTS_ARGUMENTS, name)
       for name in INTERESTS_ARGUMENTS])
ENVELOPE_KEYS = ["account", "login", "method", "token", "arguments"]
SETTINGS = Settings()


def call(request, store=None):
    """(response, code, ctx) of one call of the handler."""
    ctx = {}
    response, code = asyncio.run(methods.method_handler(
        request, ctx, store or MemoryStore(), SETTINGS))
    return response, code, ctx


class AnyJsonTest(unittest.TestCase):
    """Whatever JSON a field holds, the answer is 200 or a 4xx naming what
    is wrong; never a 500."""

    def setUp(self):
        stop_calendar(self, strategies.TODAY)

    @given(st.sampled_from(ARGUMENT_TARGETS),
           strategies.json_values)
    def test_an_argument_is_accepted_or_named(self, target, value):
        method, arguments, name = target
        request = api_request(method, dict(arguments, **{name: value}))
        response, code, _ = call(json.loads(json.dumps(request)))
        self.assertIn(code, (200, 422), response)
        if code == 422 and not response.startswith("arguments: "):
            self.assertTrue(response.startswith(name + ": "), response)

    @given(st.sampled_from(ENVELOPE_KEYS), strategies.json_values)
    def test_an_envelope_key_is_accepted_or_refused(self, name, value):
        request = dict(api_request("online_score", SCORE_ARGUMENTS),
                       **{name: value})
        response, code, _ = call(request)
        self.assertIn(code, (200, 403, 422), response)
        if code == 422 and name != "arguments":
            self.assertTrue(response.startswith(name + ": "), response)


class AnyJsonOverHttpTest(HttpTestCase):
    """The same through HTTP, the body decoded by the service: an integer
    past 64 bits, or any other value, is named by its field."""

    settings = Settings().replace(server={"max_body_bytes": 65536})

    def setUp(self):
        super().setUp()
        stop_calendar(self, strategies.TODAY)

    @given(st.sampled_from(ARGUMENT_TARGETS), strategies.json_values)
    def test_an_argument_is_accepted_or_named(self, target, value):
        method, arguments, name = target
        response = self.post(api_request(
            method, dict(arguments, **{name: value})))
        answer = json.loads(response.body)
        self.assertIn(response.code, (200, 422), answer)
        if response.code == 422 and not answer["error"].startswith(
                "arguments: "):
            self.assertTrue(answer["error"].startswith(name + ": "), answer)


class InterestsTest(unittest.TestCase):
    @given(strategies.client_ids,
           st.dictionaries(st.integers(0, 2 ** 31), strategies.interests,
                           max_size=10), st.data())
    def test_every_requested_id_is_answered(self, ids, stored, data):
        stored.update(data.draw(st.dictionaries(
            st.sampled_from(ids), strategies.interests, max_size=3)))
        store = MemoryStore()
        store.put_interests(stored)
        response, code, ctx = call(
            api_request("clients_interests", {"client_ids": ids}), store)
        self.assertEqual(code, 200, response)
        self.assertEqual(response, {str(cid): stored.get(cid, [])
                                    for cid in ids})
        self.assertEqual(ctx["nclients"], len(ids))


class ScoreTest(unittest.TestCase):
    def setUp(self):
        stop_calendar(self, strategies.TODAY)

    @given(strategies.score_arguments())
    def test_the_answer_is_the_spec_score_and_is_cached(self, arguments):
        store = MemoryStore()
        response, code, ctx = call(
            api_request("online_score", arguments), store)
        self.assertEqual((code, response),
                         (200, {"score": strategies.expected_score(
                             arguments)}))
        self.assertEqual(sorted(ctx["has"]), sorted(
            name for name, value in arguments.items()
            if value is not None and value != ""))
        self.assertEqual(list(store.cache.values()),
                         [str(response["score"])])

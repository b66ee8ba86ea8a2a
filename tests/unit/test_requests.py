import unittest

from scoring_api.errors import ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)
from tests.cases import cases

ENVELOPE = {"account": "a", "login": "l", "method": "online_score",
            "token": "t", "arguments": {}}


def without(data, key):
    return {name: value for name, value in data.items() if name != key}


class MethodRequestTest(unittest.TestCase):
    def test_a_full_envelope_is_read(self):
        request = MethodRequest(ENVELOPE)
        self.assertEqual(
            (request.account, request.login, request.method, request.token,
             request.arguments), ("a", "l", "online_score", "t", {}))

    @cases(["login", "method", "token", "arguments"])
    def test_each_required_key_must_be_present(self, key):
        with self.assertRaises(ValidationError) as raised:
            MethodRequest(without(ENVELOPE, key))
        self.assertEqual(raised.exception.errors, {key: "is required"})

    def test_account_may_be_absent(self):
        self.assertIsNone(MethodRequest(without(ENVELOPE, "account")).account)

    @cases(["login", "token", "account", "arguments"])
    def test_nullable_keys_may_be_null(self, key):
        MethodRequest(dict(ENVELOPE, **{key: None}))

    def test_method_may_not_be_empty(self):
        with self.assertRaises(ValidationError) as raised:
            MethodRequest(dict(ENVELOPE, method=""))
        self.assertEqual(str(raised.exception), "method: may not be empty")

    def test_every_invalid_key_is_reported_at_once(self):
        with self.assertRaises(ValidationError) as raised:
            MethodRequest({"login": 1, "method": None, "arguments": "x"})
        self.assertEqual(raised.exception.errors, {
            "login": "must be a string, not int",
            "token": "is required",
            "arguments": "must be an object, not str",
            "method": "may not be empty",
        })

    def test_a_body_that_is_not_an_object_is_invalid(self):
        with self.assertRaises(ValidationError):
            MethodRequest(["login"])


class OnlineScoreRequestTest(unittest.TestCase):
    @cases([
        ({"phone": "79175002040", "email": "a@b"}, ["phone", "email"]),
        ({"first_name": "a", "last_name": "b"}, ["first_name", "last_name"]),
        ({"gender": 0, "birthday": "01.01.2000"}, ["birthday", "gender"]),
        ({"gender": 1, "birthday": "01.01.2000", "phone": ""},
         ["birthday", "gender"]),
        ({"first_name": "a", "last_name": "b", "email": None, "x": 1},
         ["first_name", "last_name"]),
    ])
    def test_present_names_the_non_empty_arguments(self, case):
        arguments, present = case
        self.assertEqual(OnlineScoreRequest(arguments).present(), present)

    @cases([
        {},
        {"phone": "79175002040"},
        {"phone": "79175002040", "birthday": "01.01.2000",
         "first_name": "s"},
        {"phone": "79175002040", "email": ""},
        {"gender": None, "birthday": "01.01.2000"},
    ])
    def test_without_a_complete_pair_the_arguments_are_invalid(self, case):
        with self.assertRaises(ValidationError) as raised:
            OnlineScoreRequest(case)
        self.assertEqual(raised.exception.errors, {
            "arguments": "need at least one pair with values: phone and"
                         " email, first_name and last_name, or gender and"
                         " birthday"})

    def test_the_pair_rule_waits_until_every_field_is_valid(self):
        with self.assertRaises(ValidationError) as raised:
            OnlineScoreRequest({"phone": "89175002040", "email": "x"})
        self.assertEqual(
            str(raised.exception),
            "phone: must be 11 digits starting with 7; email: must contain @")


class ClientsInterestsRequestTest(unittest.TestCase):
    def test_ids_and_date_are_read(self):
        request = ClientsInterestsRequest(
            {"client_ids": [1, 2], "date": "19.07.2017"})
        self.assertEqual(request.client_ids, [1, 2])
        self.assertEqual(request.date.isoformat(), "2017-07-19")

    def test_client_ids_are_required(self):
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest({"date": "20.07.2017"})
        self.assertEqual(str(raised.exception), "client_ids: is required")

    def test_the_number_of_ids_is_capped(self):
        ClientsInterestsRequest({"client_ids": [1, 2, 3]}, max_client_ids=3)
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest(
                {"client_ids": [1, 2, 3, 4]}, max_client_ids=3)
        self.assertEqual(str(raised.exception),
                         "client_ids: may hold at most 3 ids")

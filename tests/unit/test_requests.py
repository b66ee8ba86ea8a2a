import unittest

from scoring_api import fields
from scoring_api.errors import ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest, Request)
from tests.support.cases import cases

ENVELOPE = {"account": "a", "login": "l", "method": "online_score",
            "token": "t", "arguments": {}}

BAD_ID = "must hold only integers from 0 to 18446744073709551615"


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

    def test_a_request_is_not_the_admins_until_its_token_is_checked(self):
        self.assertFalse(MethodRequest(dict(ENVELOPE, login="admin")).is_admin)

    def test_account_may_be_absent(self):
        self.assertIsNone(MethodRequest(without(ENVELOPE, "account")).account)

    @cases(["login", "token", "account", "arguments"])
    def test_nullable_keys_may_be_null(self, key):
        request = MethodRequest(dict(ENVELOPE, **{key: None}))
        self.assertIsNone(getattr(request, key))
        self.assertNotIn(key, request.present())
        self.assertEqual(request.method, "online_score")

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

    @cases([(["login"], "list"), ("login", "str"), (None, "null"),
            (1, "int")])
    def test_a_body_that_is_not_an_object_is_invalid(self, case):
        body, kind = case
        with self.assertRaises(ValidationError) as raised:
            MethodRequest(body)
        self.assertEqual(raised.exception.errors,
                         {"arguments": "must be an object, not %s" % kind})


class Optional(Request):
    """A key that may be absent but, when given, may not be empty."""

    name = fields.CharField(required=False, nullable=False)


class Plain(Request):
    """A field declared without options."""

    name = fields.CharField()


class PresenceTest(unittest.TestCase):
    """`required` is about the key, `nullable` about its value (docs/api.md,
    "The request envelope")."""

    def test_an_optional_key_may_be_absent_even_if_not_nullable(self):
        self.assertIsNone(Optional({}).name)
        self.assertEqual(Optional({}).present(), [])

    @cases([None, "", [], {}])
    def test_an_optional_key_given_empty_is_invalid_if_not_nullable(
            self, value):
        with self.assertRaises(ValidationError) as raised:
            Optional({"name": value})
        self.assertEqual(raised.exception.errors,
                         {"name": "may not be empty"})

    def test_an_optional_key_given_a_value_keeps_it(self):
        self.assertEqual(Optional({"name": "x"}).name, "x")

    def test_a_field_is_optional_and_not_nullable_unless_declared(self):
        self.assertIsNone(Plain({}).name)
        with self.assertRaises(ValidationError) as raised:
            Plain({"name": ""})
        self.assertEqual(raised.exception.errors,
                         {"name": "may not be empty"})

    def test_keys_no_field_declares_are_ignored(self):
        request = Optional({"name": "x", "other": 1})
        self.assertFalse(hasattr(request, "other"))


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

    @cases([
        {"gender": 0, "birthday": "01.01.2000"},
        {"phone": 79175002040, "email": "a@b"},
        {"first_name": "a", "last_name": "b", "phone": None},
    ])
    def test_one_complete_pair_is_enough(self, arguments):
        present = OnlineScoreRequest(arguments).present()
        self.assertIn(present, [["phone", "email"],
                                ["first_name", "last_name"],
                                ["birthday", "gender"]])

    def test_each_argument_is_kept_as_cleaned(self):
        request = OnlineScoreRequest({
            "phone": 79175002040, "email": "a@b", "first_name": "f",
            "last_name": "l", "birthday": "01.01.2000", "gender": 2})
        self.assertEqual(
            (request.phone, request.email, request.first_name,
             request.last_name, request.birthday.isoformat(),
             request.gender),
            (79175002040, "a@b", "f", "l", "2000-01-01", 2))

    def test_every_invalid_argument_is_named(self):
        with self.assertRaises(ValidationError) as raised:
            OnlineScoreRequest({"phone": 1, "email": 2, "first_name": 3,
                                "last_name": 4, "birthday": 5,
                                "gender": 6})
        self.assertEqual(raised.exception.errors, {
            "phone": "must be 11 digits starting with 7",
            "email": "must be a string, not int",
            "first_name": "must be a string, not int",
            "last_name": "must be a string, not int",
            "birthday": "must be a string DD.MM.YYYY, not int",
            "gender": "must be 0 (unknown), 1 (male) or 2 (female)",
        })

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

    def test_the_default_cap_is_1000_ids(self):
        self.assertEqual(len(ClientsInterestsRequest(
            {"client_ids": list(range(1000))}).client_ids), 1000)
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest({"client_ids": list(range(1001))})
        self.assertEqual(str(raised.exception),
                         "client_ids: may hold at most 1000 ids")

    def test_the_cap_waits_until_every_field_is_valid(self):
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest(
                {"client_ids": [1, 2, 3], "date": "XXX"}, max_client_ids=2)
        self.assertEqual(raised.exception.errors, {
            "date": "must be a real date in the form DD.MM.YYYY"})

    @cases([
        ({"client_ids": None}, "may not be empty"),
        ({"client_ids": []}, "may not be empty"),
        ({"client_ids": [-1]}, BAD_ID),
        ({"client_ids": [False]}, BAD_ID),
    ])
    def test_invalid_ids_are_named(self, case):
        arguments, message = case
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest(arguments)
        self.assertEqual(raised.exception.errors, {"client_ids": message})

    @cases([{"client_ids": [1]}, {"client_ids": [1], "date": None},
            {"client_ids": [1], "date": ""}])
    def test_the_date_may_be_absent_or_empty(self, arguments):
        request = ClientsInterestsRequest(arguments)
        self.assertEqual(request.client_ids, [1])
        self.assertFalse(request.date)
        self.assertEqual(request.present(), ["client_ids"])

    def test_the_number_of_ids_is_capped(self):
        self.assertEqual(ClientsInterestsRequest(
            {"client_ids": [1, 2, 3]}, max_client_ids=3).client_ids,
            [1, 2, 3])
        with self.assertRaises(ValidationError) as raised:
            ClientsInterestsRequest(
                {"client_ids": [1, 2, 3, 4]}, max_client_ids=3)
        self.assertEqual(str(raised.exception),
                         "client_ids: may hold at most 3 ids")

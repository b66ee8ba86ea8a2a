"""The OpenAPI document: served as kept, true of every reference vector,
and of every rule fields.py declares.

Each vector is sent to the service; its answer must match what the
document says of that path and code, and the request must be valid by the
document exactly when the service accepts it (except for the rules no
schema can say: the token, and a birthday's age). Each field's schema
accepts what the field accepts, on probes on both sides of each rule, so a
rule changed in fields.py fails here until the document says the same.
"""
import datetime
import itertools
import json
import re
import unittest

from scoring_api import config, fields
from scoring_api.errors import ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)
from tests.support.cases import cases
from tests.support.clock import (admin_request, stop_auth_clock,
                                 stop_calendar)
from tests.support.http import HttpTestCase
from tests.support.openapi import DOCUMENT, answer_validator, validator
from tests.support.helpers import (SCORED_ARGUMENTS, api_request, today,
                                   user_token)


PHONE_EMAIL = {"phone": "79175002040", "email": "stupnikov@otus.ru"}
FULL = dict(PHONE_EMAIL, gender=1, birthday="01.01.2000")
OK, UNSAYABLE = True, None  # valid by the document; valid, yet refused


def envelope(account=None, login=None, method=None, token=None):
    request = {"account": account, "login": login, "method": method,
               "token": token}
    return {key: value for key, value in request.items() if value is not None}


def with_token(request):
    return dict(request, token=user_token(request.get("account"),
                                          request.get("login")))


# The reference vectors: (request, code, valid by the document)
VECTORS = [
    ({}, 422, False),
    (dict(envelope("horns&hoofs", "h&f", "online_score", ""),
          arguments={}), 403, False),
    (dict(envelope("horns&hoofs", "h&f", "online_score", "sdd"),
          arguments={}), 403, False),
    (dict(envelope("horns&hoofs", "admin", "online_score", ""),
          arguments={}), 403, False),
    (with_token(envelope("horns&hoofs", "h&f", "online_score")), 422, False),
    (with_token(dict(envelope("horns&hoofs", "h&f"), arguments={})), 422,
     False),
    (with_token(dict(envelope("horns&hoofs", method="online_score"),
                     arguments={})), 422, False),
] + [
    (api_request("online_score", arguments), 422, valid)
    for arguments, valid in [
        ({}, False),
        ({"phone": "79175002040"}, False),
        ({"phone": "89175002040", "email": "stupnikov@otus.ru"}, False),
        ({"phone": "79175002040", "email": "stupnikovotus.ru"}, False),
        (dict(PHONE_EMAIL, gender=-1), False),
        (dict(PHONE_EMAIL, gender="1"), False),
        (dict(PHONE_EMAIL, gender=1, birthday="01.01.1890"), UNSAYABLE),
        (dict(PHONE_EMAIL, gender=1, birthday="XXX"), False),
        (dict(FULL, first_name=1), False),
        (dict(FULL, first_name="s", last_name=2), False),
        ({"phone": "79175002040", "birthday": "01.01.2000",
          "first_name": "s"}, False),
        ({"email": "stupnikov@otus.ru", "gender": 1, "last_name": 2}, False),
    ]
] + [
    (api_request("online_score", arguments), 200, OK)
    for arguments in SCORED_ARGUMENTS
] + [
    # the admin token of the stopped clock's hour (see setUp)
    (admin_request("online_score", PHONE_EMAIL), 200, OK),
] + [
    (api_request("clients_interests", arguments), 422, False)
    for arguments in [
        {}, {"date": "20.07.2017"}, {"client_ids": [], "date": "20.07.2017"},
        {"client_ids": {"1": 2}, "date": "20.07.2017"},
        {"client_ids": ["1", "2"], "date": "20.07.2017"},
        {"client_ids": [1, 2], "date": "XXX"},
    ]
] + [
    (api_request("clients_interests", arguments), 200, OK)
    for arguments in [
        {"client_ids": [1, 2, 3], "date": today()},
        {"client_ids": [1, 2], "date": "19.07.2017"},
        {"client_ids": [0]},
    ]
]


REQUEST = validator("#/components/schemas/MethodRequest")


class OpenApiTest(HttpTestCase):
    def setUp(self):
        super().setUp()
        stop_auth_clock(self)

    def get_app(self):
        application = super().get_app()
        self.store.put_interests({0: ["books"], 2: ["travel"],
                                  3: ["music"]})
        return application

    def test_the_document_is_served_as_kept(self):
        response = self.fetch("/openapi.json")
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(response.body), DOCUMENT)
        self.assertEqual(DOCUMENT["openapi"][:2], "3.")

    def test_every_path_and_code_of_the_spec_is_described(self):
        self.assertEqual(set(DOCUMENT["paths"]), {
            "/method/", "/health", "/ready", "/metrics", "/openapi.json"})
        self.assertEqual(
            set(DOCUMENT["paths"]["/method/"]["post"]["responses"]),
            {"200", "400", "403", "405", "413", "422", "429", "500",
             "503"})
        self.assertIn("503", DOCUMENT["paths"]["/ready"]["get"]["responses"])

    @cases(VECTORS)
    def test_each_vector_is_answered_as_the_document_says(self, vector):
        request, code, valid = vector
        response = self.post(request)
        self.assertEqual(response.code, code, response.body)
        errors = [error.message for error in answer_validator(
            "/method/", "post", code).iter_errors(json.loads(response.body))]
        self.assertEqual(errors, [], response.body)
        if valid is not UNSAYABLE:
            self.assertEqual(REQUEST.is_valid(request), valid)

    @cases([("/health", False, 200), ("/ready", False, 200),
            ("/ready", True, 503)])
    def test_health_and_ready_answer_as_the_document_says(self, case):
        path, down, code = case
        self.store.down = down
        response = self.fetch(path)
        self.assertEqual(response.code, code)
        validator_ = answer_validator(path, "get", code)
        self.assertTrue(validator_.is_valid(json.loads(response.body)),
                        response.body)

    @cases([(b"{", 400), (b"{" + b" " * 2000 + b"}", 413)])
    def test_bad_bodies_answer_as_the_document_says(self, case):
        body, code = case
        response = self.post(body)
        self.assertEqual(response.code, code)
        self.assertTrue(answer_validator("/method/", "post", code).is_valid(
            json.loads(response.body)), response.body)


# The rules of fields.py, probed. The calendar is stopped on TODAY.
TODAY = datetime.date(2026, 11, 24)
SCHEMAS = DOCUMENT["components"]["schemas"]
MOST_IDS = config.Settings().server.max_client_ids
# Values of every JSON type, and on both sides of each rule: digit strings
# and integers of 9 to 13 digits led by each digit (the phone), gender's
# neighbours, the date's form, the id list's items. (No integral float:
# JSON Schema counts 1.0 as an integer, the fields do not, and the
# document says so in words.)
PROBES = (
    [None, "", [], {}, True, False, 1.5, "a", "@", "a@b", "ab", ["a"],
     {"a": 1}, "7917500204a", "+79175002040", " 79175002040",
     "79175002040\n", "\u0667" * 11, "7" + "\u0661" * 10, 2 ** 64]
    + [lead + "1" * (digits - 1)
       for lead in "0789" for digits in range(9, 14)]
    + [int(lead + "1" * (digits - 1))
       for lead in "789" for digits in range(9, 14)]
    + [69999999999, 70000000000, 79999999999, 80000000000, -79175002040]
    + list(range(-2, 6)) + ["0", "1", "2"]
    + ["20.07.2017", "29.02.2016", "29.02.2017", "31.04.2017", "2017-07-20",
       "1.1.2017", "20.07.17", "20/07/2017", "20.07.2017 ",
       "\u0662\u0660.07.2017", "24.11.2026", "25.11.2026",
       "24.11.%d" % (TODAY.year - fields.MAX_AGE_YEARS),
       "23.11.%d" % (TODAY.year - fields.MAX_AGE_YEARS)]
    + [[0], [1, 2], [-1], ["1"], [True], [1.5], [None], [[1]], [0, -1],
       [2 ** 63]])
# (document schema, request class, fields whose schema is the field's)
REQUESTS = [
    ("OnlineScoreCall", MethodRequest, ["account", "login", "token"]),
    ("ClientsInterestsCall", MethodRequest, ["account", "login", "token"]),
    ("OnlineScoreArguments", OnlineScoreRequest,
     list(OnlineScoreRequest.declared_fields)),
    ("ClientsInterestsArguments", ClientsInterestsRequest,
     list(ClientsInterestsRequest.declared_fields)),
]
FIELDS = [(schema, request_class, name)
          for schema, request_class, names in REQUESTS for name in names]
# A value of each online_score argument that passes alone.
VALID_ARGUMENTS = {"phone": "79175002040", "email": "stupnikov@otus.ru",
                   "first_name": "a", "last_name": "b",
                   "birthday": "01.01.2000", "gender": 0}


def accepts(request_or_field, value):
    try:
        request_or_field(value)
    except (fields.FieldError, ValidationError):
        return False
    return True


class FieldRulesTest(unittest.TestCase):
    """Each field's schema in the document says what fields.py does."""

    def setUp(self):
        stop_calendar(self, TODAY)

    def test_the_document_has_a_schema_for_every_field(self):
        for schema, request_class, _ in REQUESTS:
            self.assertEqual(set(SCHEMAS[schema]["properties"]),
                             set(request_class.declared_fields), schema)

    @cases([(schema, request_class) for schema, request_class, _ in REQUESTS])
    def test_the_required_fields_are_fields_py_s(self, case):
        schema, request_class = case
        self.assertEqual(
            set(SCHEMAS[schema].get("required", [])),
            {name for name, field in request_class.declared_fields.items()
             if field.required})

    @cases(FIELDS)
    def test_a_field_s_schema_accepts_what_the_field_accepts(self, case):
        schema, request_class, name = case
        field = request_class.declared_fields[name]
        valid = validator("#/components/schemas/%s/properties/%s"
                          % (schema, name)).is_valid
        disagree = []
        for value in PROBES:
            by_field, by_schema = accepts(field.clean, value), valid(value)
            # A date's calendar and a birthday's age no schema can say:
            # there the document may accept what the field refuses.
            unsayable = isinstance(field, fields.DateField) and by_schema
            if by_field != by_schema and not unsayable:
                disagree.append("%r: the field %s, the document %s" % (
                    value, "accepts" if by_field else "refuses",
                    "accepts" if by_schema else "refuses"))
        self.assertEqual(disagree, [])

    def test_the_probes_reach_both_sides_of_every_field(self):
        # Else the test above could hold of a field no probe passes.
        for schema, request_class, name in FIELDS:
            field = request_class.declared_fields[name]
            verdicts = {accepts(field.clean, value) for value in PROBES}
            self.assertEqual(verdicts, {True, False}, name)

    def test_the_pairs_are_requests_py_s(self):
        pairs = {frozenset(option["required"])
                 for option in SCHEMAS["OnlineScoreArguments"]["anyOf"]}
        self.assertEqual(pairs, set(map(frozenset, OnlineScoreRequest.PAIRS)))

    @cases([dict(zip(VALID_ARGUMENTS, values)) for values in
            itertools.product(*[(value, None) for value in
                                VALID_ARGUMENTS.values()])])
    def test_the_document_takes_the_arguments_the_request_takes(self, given):
        arguments = {key: value for key, value in given.items()
                     if value is not None or key == "gender"}
        self.assertEqual(
            validator("#/components/schemas/OnlineScoreArguments").is_valid(
                arguments),
            accepts(OnlineScoreRequest, arguments))

    @cases([1, MOST_IDS, MOST_IDS + 1])
    def test_the_id_limit_is_config_s_default(self, count):
        arguments = {"client_ids": list(range(count))}
        self.assertEqual(
            validator("#/components/schemas/ClientsInterestsArguments")
            .is_valid(arguments),
            accepts(lambda data: ClientsInterestsRequest(
                data, max_client_ids=MOST_IDS), arguments))

    def test_every_number_in_words_is_the_code_s(self):
        text = json.dumps(DOCUMENT)
        ages = re.findall(r"([0-9]+) years", text)
        self.assertTrue(ages)
        self.assertEqual(set(ages), {str(fields.MAX_AGE_YEARS)})
        defaults = re.findall(r"max_client_ids \(default ([0-9]+)\)", text)
        self.assertEqual(defaults, [str(MOST_IDS)])

    def test_the_examples_are_the_service_s_own_messages(self):
        responses = DOCUMENT["components"]["responses"]

        def example(name):
            return responses[name]["content"]["application/json"][
                "example"]["error"]

        with self.assertRaises(ValidationError) as raised:
            OnlineScoreRequest({"phone": "89175002040",
                                "email": "stupnikovotus.ru"})
        self.assertEqual(example("Unprocessable"), str(raised.exception))
        self.assertEqual(example("TooLarge"),
                         "request body is over %d bytes"
                         % config.Settings().server.max_body_bytes)

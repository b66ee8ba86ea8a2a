"""The OpenAPI document: served as kept, and true of every SPEC 7 vector.

Each vector is sent to the service; its answer must match what the
document says of that path and code, and the request must be valid by the
document exactly when the service accepts it (except for the rules no
schema can say: the token, and a birthday's age).
"""
import json

import jsonschema_rs

from scoring_api import app
from tests.support.cases import cases
from tests.support.clock import admin_request, stop_auth_clock
from tests.functional.test_http import HttpTestCase
from tests.support.helpers import (SCORED_ARGUMENTS, api_request, today,
                                   user_token)

with open(app.OPENAPI_PATH, encoding="utf-8") as _document:
    DOCUMENT = json.load(_document)

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


# (request, code, valid by the document)
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


def validator(pointer):
    """A JSON Schema validator of the schema at `pointer` ("#/..."), with
    the document's components in reach of its references."""
    return jsonschema_rs.Draft202012Validator(
        {"$ref": pointer, "components": DOCUMENT["components"]})


def resolve(node):
    """`node`, or what its "$ref" ("#/a/b") points at."""
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def answer_validator(path, verb, code):
    """A validator of the body the document gives for `code`."""
    responses = DOCUMENT["paths"][path][verb]["responses"]
    response = resolve(responses[str(code)])
    schema = response["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator(
        dict(schema, components=DOCUMENT["components"]))


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
            {"200", "400", "403", "405", "413", "422", "500", "503"})
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

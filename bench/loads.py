"""What the bench sends: the request bodies of each script, and the calls
whose answers every peer must give byte for byte as the service does."""
import collections
import json

from bench.support import ADMIN_LOGIN, api_request

HIT_BODIES = 1000
INTEREST_IDS = 100
PHONE_PLACEHOLDER = "7PHONE"
FIRST_NAMES = ["Ivan", "Maria", "Olga", "Petr", "Anna", "Oleg", "Irina"]
LAST_NAMES = ["Ivanov", "Petrova", "Sidorov", "Smirnova", "Kuznetsov"]


def person(number):
    """The six arguments of online_score, different for each `number`."""
    return {"phone": "7%010d" % (9175000000 + number),
            "email": "client%d@example.com" % number,
            "first_name": FIRST_NAMES[number % len(FIRST_NAMES)],
            "last_name": LAST_NAMES[number % len(LAST_NAMES)],
            "birthday": "%02d.%02d.%d" % (1 + number % 28, 1 + number % 12,
                                          1960 + number % 40),
            "gender": number % 3}


class Script(collections.namedtuple("Script", "name bodies expected")):
    """Request bodies (bytes) sent in turn, each answered `expected`; a
    body holding PHONE_PLACEHOLDER gets a phone never sent before on every
    request (a cache miss)."""

    @property
    def counting(self):
        return PHONE_PLACEHOLDER.encode() in self.bodies[0]


def encoded(body):
    return json.dumps(body).encode()


def scripts(hit_bodies=HIT_BODIES):
    """{name: Script}."""
    first = person(0)
    return {script.name: script for script in [
        Script("hit", [encoded(api_request("online_score", person(number)))
                       for number in range(hit_bodies)], 200),
        Script("miss", [encoded(api_request(
            "online_score", dict(first, phone=PHONE_PLACEHOLDER)))], 200),
        Script("10 ids", [encoded(api_request(
            "clients_interests", {"client_ids": list(range(10))}))], 200),
        Script("100 ids", [encoded(api_request(
            "clients_interests",
            {"client_ids": list(range(INTEREST_IDS))}))], 200),
        Script("invalid", [encoded(api_request(
            "online_score", dict(first, phone="89175002040")))], 422),
        Script("bad token", [encoded(api_request(
            "online_score", first, token="0" * 128))], 403),
    ]}


def with_phone(body, number):
    """`body` (bytes) with its PHONE_PLACEHOLDER made a phone."""
    return body.replace(PHONE_PLACEHOLDER.encode(), b"7%010d" % number)


def conformity_calls():
    """[(what, body bytes)]: the calls whose answers (status, media type,
    body) a peer must give exactly as the service does, besides every body
    of the hit script: the 422 and 403 rows, and the online_score vectors
    of the API's reference list."""
    first = person(0)
    envelope = {"account": "horns&hoofs", "login": "h&f",
                "method": "online_score"}
    calls = [
        ("the 422 row", scripts(1)["invalid"].bodies[0]),
        ("the 403 row", scripts(1)["bad token"].bodies[0]),
        ("a body that is not JSON", b"nope"),
        ("a body that is not an object", b"[1]"),
        ("an empty body object", encoded({})),
        ("an empty token", encoded(dict(envelope, token="", arguments={}))),
        ("a wrong token", encoded(dict(envelope, token="sdd",
                                       arguments={}))),
        ("the admin with an empty token", encoded(dict(
            envelope, login=ADMIN_LOGIN, token="", arguments={}))),
        ("no arguments", encoded(api_request("online_score", None))),
        ("an unknown method", encoded(api_request("no_such_method", {}))),
        ("the admin", encoded(api_request("online_score", first,
                                          login=ADMIN_LOGIN))),
        ("envelope types", encoded(dict(
            api_request("online_score", {}), account=5, method=""))),
    ]
    for arguments in [
            {}, {"phone": "79175002040"},
            {"phone": "89175002040", "email": "stupnikov@otus.ru"},
            {"phone": "79175002040", "email": "stupnikovotus.ru"},
            dict(first, gender=-1), dict(first, gender="1"),
            dict(first, gender=True), dict(first, birthday="01.01.1890"),
            dict(first, birthday="XXX"), dict(first, birthday="31.02.2000"),
            dict(first, birthday="01.01.2999"), dict(first, first_name=1),
            dict(first, last_name=2), dict(first, phone=1.5, email=5),
            {"phone": "79175002040", "birthday": "01.01.2000",
             "first_name": "s"},
            {"email": "stupnikov@otus.ru", "gender": 1, "last_name": 2},
            {"phone": 79175002040, "email": "stupnikov@otus.ru"},
            {"phone": "", "email": "", "gender": 0, "birthday": "01.01.2000"},
            {"first_name": "a", "last_name": "b"},
            {"gender": 1, "birthday": "01.01.2000"}]:
        calls.append(("arguments %s" % json.dumps(arguments),
                      encoded(api_request("online_score", arguments))))
    return calls

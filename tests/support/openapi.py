"""The OpenAPI document the service serves, and validators of its
schemas, for the tests that check answers against it."""
import json

import jsonschema_rs

from scoring_api import app

with open(app.OPENAPI_PATH, encoding="utf-8") as _document:
    DOCUMENT = json.load(_document)


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

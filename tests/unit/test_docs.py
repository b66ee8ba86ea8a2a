"""The documentation stays a guide a newcomer reads in ten minutes, and
true to the code.

README.md is at most README_MAX_LINES lines; README.md and docs/ cite no
"SPEC n" (the code neither), carry no history (commit hashes, issue
numbers, "this round": that is CHANGELOG.md's), and every relative link
in them leads to a file (and heading) that exists. The rules of the
fields (docs/api.md) and the config keys (docs/operations.md) are tables
rendered here from scoring_api/fields.py, requests.py and config.py: a
rule or a default changed in the code fails a test until the docs say
the same. Run this module to print both tables.
"""
import asyncio
import dataclasses
import glob
import os
import re
import unittest

from scoring_api import config, fields, methods
from scoring_api.errors import ValidationError
from scoring_api.requests import (ClientsInterestsRequest, MethodRequest,
                                  OnlineScoreRequest)
from tests.support.cases import cases
from tests.support.helpers import ROOT, api_request

README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")
API = os.path.join(DOCS, "api.md")
OPERATIONS = os.path.join(DOCS, "operations.md")
README_MAX_LINES = 200
# The documents a reader follows: README.md and what it links to.
DOCUMENTS = [README] + sorted(glob.glob(os.path.join(DOCS, "*")))
MARKDOWN = [path for path in DOCUMENTS if path.endswith(".md")]
CODE = sorted(
    path for path in glob.glob(os.path.join(ROOT, "scoring_api", "**", "*"),
                               recursive=True)
    if path.endswith((".py", ".json")))

SPEC_CITATION = re.compile(r"SPEC [0-9]")
# An abbreviated (7 to 12 hex digits) or a whole commit hash: hex with a
# digit and a letter, so "facade" or "1000000" are not; 32-hex request
# ids and 128-hex tokens are not commit hashes either.
COMMIT_HASH = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])"
    r"([0-9a-f]{7,12}|[0-9a-f]{40})(?![0-9A-Za-z])")
# "#19", "issue 19", "issues 15 and 16"; another project's issue
# ("redis/redis-py#4287") is a reference, not this project's history.
ISSUE_NUMBER = re.compile(
    r"(?<![\w/.-])#[0-9]+|\bissues? +[0-9]+|\bPR +[0-9]+", re.I)
THIS_ROUND = re.compile(r"\bthis round\b", re.I)
# [text](target): a Markdown link; the target up to a space or ")".
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def read(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


def relative(path):
    return os.path.relpath(path, ROOT)


def anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation out,
    spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    text = FENCE.sub("", read(path))
    return {anchor(heading) for heading in HEADING.findall(text)}


def matches(pattern, paths):
    """'file:line: text' of every match of `pattern` in `paths`."""
    found = []
    for path in paths:
        for number, line in enumerate(read(path).splitlines(), 1):
            for match in pattern.finditer(line):
                found.append("%s:%d: %s" % (relative(path), number,
                                            match.group()))
    return found


# The rules of each request, as docs/api.md must show them.

TYPE_PLACEHOLDER = "<type>"


def field_messages(field):
    """What a field may answer, besides "is required" and "may not be
    empty" (the table's own columns say when those come)."""
    return [text.format(got=TYPE_PLACEHOLDER)
            for key, text in field.messages.items()
            if key not in ("required", "null")]


def request_rules(request_class, rules):
    """{name: (required, may be empty, [messages])} of `request_class`,
    then the names of `rules` ({name: message} of the rules beyond one
    field's) with theirs."""
    table = {name: ("yes" if field.required else "no",
                    "yes" if field.nullable else "no",
                    field_messages(field))
             for name, field in request_class.declared_fields.items()}
    for name, message in rules.items():
        required, empty, messages = table.get(name, ("-", "-", []))
        table[name] = (required, empty, messages + [message])
    return table


def errors_of(make_request):
    """{name: message} of the ValidationError `make_request()` raises."""
    try:
        make_request()
    except ValidationError as error:
        return error.errors
    raise AssertionError("%r raised no ValidationError" % make_request)


def unknown_method_error():
    """The 422's {name: message} for a method no one knows."""
    message, code = asyncio.run(methods.method_handler(
        api_request("no_such_method", {}), {}, store=None))
    assert code == 422, (code, message)
    name, _, text = message.partition(": ")
    return {name: text}


def rules_table():
    """The Markdown table of every field's rules and messages."""
    most = config.Settings().server.max_client_ids
    requests = [
        ("envelope", MethodRequest, unknown_method_error()),
        ("online_score", OnlineScoreRequest,
         errors_of(lambda: OnlineScoreRequest({}))),
        ("clients_interests", ClientsInterestsRequest, errors_of(
            lambda: ClientsInterestsRequest({"client_ids": [0] * (most + 1)},
                                            max_client_ids=most))),
    ]
    lines = ["| in | field | required | may be empty | refused with |",
             "| --- | --- | --- | --- | --- |"]
    for where, request_class, rules in requests:
        for name, (required, empty, messages) in request_rules(
                request_class, rules).items():
            lines.append("| %s | %s | %s | %s | %s |" % (
                where, name, required, empty,
                "; ".join("`%s`" % message for message in messages)))
    return "\n".join(lines) + "\n"


# The config keys, as docs/operations.md must show them.

def shown_default(value):
    if value in ("", ()):
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "%g" % value
    return str(value)


def config_table():
    """The Markdown table of every config key: its default and meaning."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for section, settings_class in config.SECTIONS.items():
        for key in dataclasses.fields(settings_class):
            lines.append("| `[%s] %s` | %s | %s |" % (
                section, key.name, shown_default(key.default),
                key.metadata["doc"]))
    return "\n".join(lines) + "\n"


class ReadmeTest(unittest.TestCase):
    def test_readme_is_at_most_200_lines(self):
        lines = read(README).count("\n")
        self.assertLessEqual(lines, README_MAX_LINES,
                             "README.md is %d lines" % lines)

    def test_readme_links_every_document_in_docs(self):
        links = {os.path.normpath(os.path.join(ROOT, target.split("#")[0]))
                 for target in LINK.findall(read(README))}
        self.assertEqual(
            [relative(path) for path in DOCUMENTS[1:] if path not in links],
            [])


class HistoryTest(unittest.TestCase):
    """README.md and docs/ describe what is; CHANGELOG.md what changed."""

    def test_the_documents_are_found(self):
        self.assertGreater(len(DOCUMENTS), 5)
        self.assertGreater(len(CODE), 20)

    def test_no_spec_citation_in_the_code_or_the_docs(self):
        # No such document is in the repository: cite docs/ instead.
        self.assertEqual(matches(SPEC_CITATION, CODE + DOCUMENTS), [],
                         "cite docs/api.md (the HTTP contract, the fields,"
                         " authentication) or docs/operations.md (Redis"
                         " modes and failures, limits, logs, metrics)")

    @cases([("a commit hash", COMMIT_HASH), ("an issue number", ISSUE_NUMBER),
            ("'this round'", THIS_ROUND)])
    def test_no_history_in_the_docs(self, case):
        what, pattern = case
        self.assertEqual(matches(pattern, DOCUMENTS), [],
                         "%s belongs in CHANGELOG.md" % what)

    @cases([("f598362", True), ("at b2cd4fa:", True), ("#19", True),
            ("issue 19", True), ("issues 15 and 16", True),
            ("This round", True), ("a16b0c5e" * 5, True),
            ("facade.py", False), ("1000000 ids", False),
            ("6befdee9437144f79d3469d18a917418", False),
            ("redis/redis-py#4287", False), ("[api](api.md#errors)", False),
            ("# {\"code\": 200}", False)])
    def test_the_patterns_find_history_and_only_history(self, case):
        text, history = case
        found = any(pattern.search(text) for pattern in
                    (COMMIT_HASH, ISSUE_NUMBER, THIS_ROUND))
        self.assertEqual(found, history)


class LinkTest(unittest.TestCase):
    def test_every_relative_link_leads_to_a_file_and_heading(self):
        broken = []
        for path in MARKDOWN:
            for target in LINK.findall(FENCE.sub("", read(path))):
                if re.match(r"[a-z]+:", target):
                    continue  # https:, mailto:
                file_part, _, heading = target.partition("#")
                linked = (os.path.normpath(os.path.join(
                    os.path.dirname(path), file_part)) if file_part
                    else path)
                if not os.path.exists(linked):
                    broken.append("%s: %s (no such file)"
                                  % (relative(path), target))
                elif heading and (not linked.endswith(".md")
                                  or heading not in anchors(linked)):
                    broken.append("%s: %s (no such heading)"
                                  % (relative(path), target))
        self.assertEqual(broken, [])

    def test_anchors_are_made_as_github_makes_them(self):
        self.assertEqual(anchor("Errors and codes"), "errors-and-codes")
        self.assertEqual(anchor("`/health`, `/ready`"), "health-ready")
        self.assertEqual(anchor("When Redis fails"), "when-redis-fails")


class RulesTest(unittest.TestCase):
    """docs/api.md shows each field's rules as fields.py declares them."""

    def test_api_md_holds_the_rules_of_fields_py(self):
        table = rules_table()
        self.assertIn(table, read(API),
                      "docs/api.md's table of rules should read:\n" + table)

    def test_the_table_names_what_the_rules_depend_on(self):
        # Else the test above could pass against a table missing them.
        table = rules_table()
        self.assertIn("at most %d years ago" % fields.MAX_AGE_YEARS, table)
        self.assertIn("at most %d ids"
                      % config.Settings().server.max_client_ids, table)
        self.assertIn(" | gender | no | yes | ", table)
        self.assertIn("need at least one pair", table)
        self.assertIn("unknown method", table)

    def test_every_age_in_the_docs_is_fields_py_s(self):
        ages = re.compile(r"([0-9]+) years")
        found = matches(ages, MARKDOWN)
        self.assertTrue(found)
        self.assertEqual(
            [line for line in found if not line.endswith(
                "%d years" % fields.MAX_AGE_YEARS)], [])

    def test_every_max_client_ids_default_in_the_docs_is_config_s(self):
        stated = re.compile(r"max_client_ids[^.|\n]*?default,? ([0-9]+)")
        most = config.Settings().server.max_client_ids
        found = [(relative(path), int(number)) for path in MARKDOWN
                 for number in stated.findall(read(path))]
        self.assertTrue(found)
        self.assertEqual([each for each in found if each[1] != most], [])


class ConfigTableTest(unittest.TestCase):
    def test_operations_md_holds_every_key_with_its_default(self):
        table = config_table()
        self.assertIn(table, read(OPERATIONS),
                      "docs/operations.md's table of config keys should"
                      " read:\n" + table)

    def test_config_ini_sets_every_key_to_its_default(self):
        # config.ini is the other place a reader learns the defaults.
        settings = config.load_settings(os.path.join(ROOT, "config.ini"),
                                        environ={})
        self.assertEqual(settings, config.Settings())


if __name__ == "__main__":
    print(rules_table())
    print(config_table())

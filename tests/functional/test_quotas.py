"""Quotas and shedding over HTTP (docs/api.md, "Quotas"; docs/operations.md,
"Overload"): the RateLimit fields' values, the 429 and 503 envelopes with
Retry-After, shadow mode, the order of the checks, and the metrics. The
quotas run on a FakeClock and the loop's lag is what the test sets: no
answer depends on how busy the machine is."""
import asyncio
import json
import logging

from tornado.tcpclient import TCPClient
from tornado.testing import gen_test

from scoring_api.admission import Admission
from scoring_api.config import Settings
from scoring_api.errors import Overloaded
from scoring_api.overload import Overload
from scoring_api.quotas import Quotas
from tests.support.cases import cases
from tests.support.clock import NOW, FakeClock, admin_request, \
    stop_auth_clock
from tests.support.helpers import api_request
from tests.support.openapi import DOCUMENT, answer_validator, resolve
from tests.support.http import (SCORE_ARGUMENTS, HttpTestCase,
                                keep_alive_call)
from tests.support.metrics_text import samples, value

REFUSED = {"code": 429, "error": "rate limit exceeded"}
OVERLOADED = {"code": 503, "error": "overloaded, retry later"}
SCORE = api_request("online_score", SCORE_ARGUMENTS)
REFUSED_TOTAL = "scoring_api_calls_refused_total"
OVER_QUOTA_TOTAL = "scoring_api_calls_over_quota_total"


class FixedLag:
    """A LoopLag whose lag is what the test sets."""

    def __init__(self):
        self.lag = 0.0

    def is_starved(self, since=None):
        return False


class QuotaTestCase(HttpTestCase):
    """The app with quotas of `rate`, `burst`, `enforce` and `accounts`
    on a FakeClock (`self.clock`), shedding on a FixedLag (`self.lag`),
    refusals never held (unless `max_held`)."""

    rate, burst, enforce, accounts = 0.5, 2, True, None
    max_held = 0

    def make_admission(self):
        self.clock = FakeClock()
        self.lag = FixedLag()
        self.quotas = Quotas(self.rate, self.burst, self.enforce,
                             self.accounts, clock=self.clock)
        return Admission(self.quotas, Overload(
            self.lag, shed_lag=0.1, budget=1.0, max_held=self.max_held,
            clock=self.clock))

    def answer(self, body=SCORE):
        """(code, body as a dict, headers) of one call."""
        response = self.post(body)
        return response.code, json.loads(response.body), response.headers

    def scrape(self):
        return samples(self.fetch("/metrics").body)


class HeaderFieldsTest(QuotaTestCase):
    def test_each_answer_says_the_policy_and_what_is_left(self):
        # rate 0.5/s, burst 2: 3 calls at once, a full bucket in 6 s.
        expected = [(200, 'r=2;t=2'), (200, 'r=1;t=4'), (200, 'r=0;t=6')]
        for code, limit in expected:
            got, _, headers = self.answer()
            self.assertEqual(got, code)
            self.assertEqual(headers["RateLimit-Policy"],
                             '"default";q=3;w=6')
            self.assertEqual(headers["RateLimit"], '"default";' + limit)
            self.assertNotIn("Retry-After", headers)

    def test_over_quota_is_429_in_the_envelope_with_retry_after(self):
        for _ in range(3):
            self.answer()
        self.clock.now += 0.5  # a quarter of a call refilled
        code, body, headers = self.answer()
        self.assertEqual((code, body), (429, REFUSED))
        self.assertEqual(headers["Retry-After"], "2")  # 1.5 s, rounded up
        self.assertEqual(headers["RateLimit"], '"default";r=0;t=6')
        self.assertEqual(headers["RateLimit-Policy"], '"default";q=3;w=6')

    def test_a_refused_call_spends_nothing(self):
        for _ in range(3):
            self.answer()
        for _ in range(5):
            self.assertEqual(self.answer()[0], 429)
        self.clock.now += 2.0  # one call refilled, none taken meanwhile
        code, _, headers = self.answer()
        self.assertEqual(code, 200)
        self.assertEqual(headers["RateLimit"], '"default";r=0;t=6')

    def test_retry_after_is_at_least_a_second(self):
        for _ in range(3):
            self.answer()
        self.clock.now += 1.99  # 0.005 s left
        self.assertEqual(self.answer()[2]["Retry-After"], "1")

    def test_each_partner_has_its_own_quota(self):
        for _ in range(3):
            self.answer()
        other = api_request("online_score", SCORE_ARGUMENTS,
                            account="globex")
        self.assertEqual(self.answer(other)[0], 200)
        self.assertEqual(self.answer()[0], 429)


class NoQuotaTest(QuotaTestCase):
    rate = 0

    def test_without_a_quota_no_field_is_added(self):
        for _ in range(20):
            code, _, headers = self.answer()
            self.assertEqual(code, 200)
            self.assertNotIn("RateLimit", headers)
            self.assertNotIn("RateLimit-Policy", headers)


class AccountOverridesTest(QuotaTestCase):
    rate = 0
    accounts = {"Acme": (1.0, 0), "horns&hoofs": (0.0, None)}

    def test_an_override_is_the_account_s_own_quota_in_its_exact_case(
            self):
        acme = api_request("online_score", SCORE_ARGUMENTS, account="Acme")
        lower = api_request("online_score", SCORE_ARGUMENTS, account="acme")
        code, _, headers = self.answer(acme)
        self.assertEqual(headers["RateLimit-Policy"], '"default";q=1;w=1')
        self.assertEqual(self.answer(acme)[0], 429)
        for _ in range(5):  # no default quota, and "acme" is another
            self.assertEqual(self.answer(lower)[0], 200)
        self.assertEqual(self.answer(SCORE)[2].get("RateLimit"), None)


class ShadowModeTest(QuotaTestCase):
    enforce = False

    def test_shadow_mode_serves_every_call_with_the_fields(self):
        before = self.scrape()
        for _ in range(6):
            code, _, headers = self.answer()
            self.assertEqual(code, 200)
            self.assertIn("RateLimit", headers)
            self.assertNotIn("Retry-After", headers)
        self.assertEqual(headers["RateLimit"], '"default";r=0;t=6')
        after = self.scrape()
        self.assertEqual(
            value(after, OVER_QUOTA_TOTAL, partner="other", enforced="false")
            - value(before, OVER_QUOTA_TOTAL, partner="other",
                    enforced="false"), 3)
        self.assertEqual(
            value(after, REFUSED_TOTAL, reason="quota", partner="other"),
            value(before, REFUSED_TOTAL, reason="quota", partner="other"))


class OrderTest(QuotaTestCase):
    """The quota is checked after authentication, before the method's
    name and arguments."""

    rate, burst = 0.5, 0  # one call, then one every 2 s

    def test_a_wrong_token_never_spends_the_quota_of_the_account_it_names(
            self):
        forged = api_request("online_score", SCORE_ARGUMENTS, token="x")
        for _ in range(5):
            code, body, headers = self.answer(forged)
            self.assertEqual((code, body),
                             (403, {"code": 403, "error": "Forbidden"}))
            self.assertNotIn("RateLimit", headers)
        self.assertEqual(self.answer()[0], 200)

    @cases([{"phone": "1"}, {}, None])
    def test_a_call_admitted_then_invalid_spends_its_quota(self, arguments):
        code, _, headers = self.answer(
            api_request("online_score", arguments))
        self.assertEqual(code, 422)
        self.assertEqual(headers["RateLimit"], '"default";r=0;t=2')
        self.assertEqual(self.answer()[0], 429)
        self.clock.now += 2.0

    def test_an_unknown_method_spends_its_quota_too(self):
        self.assertEqual(self.answer(api_request("no_such", {}))[0], 422)
        self.assertEqual(self.answer()[0], 429)

    def test_an_invalid_envelope_spends_nothing(self):
        self.assertEqual(self.answer({"login": 5})[0], 422)
        self.assertEqual(self.answer()[0], 200)

    def test_an_empty_account_is_a_partner_like_any_other(self):
        for account in ("", None):  # both the empty account
            empty = api_request("online_score", SCORE_ARGUMENTS,
                                account=account)
            self.assertEqual(self.answer(empty)[0],
                             200 if account == "" else 429)

    def test_the_admin_counts_like_any_other_partner(self):
        stop_auth_clock(self)
        admin = admin_request("online_score", SCORE_ARGUMENTS, now=NOW)
        self.assertEqual(self.answer(admin)[0], 200)
        self.assertEqual(self.answer(admin)[:2], (429, REFUSED))


class RefusalLogTest(QuotaTestCase):
    rate, burst = 0.5, 0

    def test_refusals_are_access_lines_at_info_and_one_warning_a_while(
            self):
        self.answer()
        with self.assertLogs(level=logging.INFO) as logs:
            for _ in range(5):
                self.assertEqual(self.answer()[0], 429)
        warnings = [line for line in logs.output
                    if line.startswith("WARNING")]
        self.assertEqual(warnings, [
            "WARNING:scoring_api.quotas:quotas: 1 calls refused over quota"
            " since the last report (other 1)"])
        access = [line for line in logs.output if " 429 " in line]
        self.assertEqual(len(access), 5)
        self.assertTrue(all(line.startswith("INFO:") for line in access))


class SheddingTest(QuotaTestCase):
    rate, burst = 0.5, 0

    def test_a_lagging_process_answers_503_at_once_and_refunds_the_call(
            self):
        before = self.scrape()
        self.lag.lag = 2.5
        code, body, headers = self.answer()
        self.assertEqual((code, body), (503, OVERLOADED))
        self.assertEqual(headers["Retry-After"], "3")
        self.lag.lag = 0.0
        self.assertEqual(self.answer()[0], 200)  # the quota was given back
        after = self.scrape()
        self.assertEqual(
            value(after, REFUSED_TOTAL, reason="loop_lag", partner="other")
            - value(before, REFUSED_TOTAL, reason="loop_lag",
                    partner="other"), 1)

    def test_a_store_call_the_process_was_too_late_for_is_503_overloaded(
            self):
        self.store.get_many = self.overloaded
        before = self.scrape()
        code, body, headers = self.answer(
            api_request("clients_interests", {"client_ids": [1]}))
        self.assertEqual((code, body), (503, OVERLOADED))
        self.assertEqual(headers["Retry-After"], "1")
        self.assertIn("RateLimit", headers)
        self.assertEqual(self.answer()[0], 200)  # the quota was given back
        after = self.scrape()
        self.assertEqual(
            value(after, REFUSED_TOTAL, reason="store_overloaded",
                  partner="other")
            - value(before, REFUSED_TOTAL, reason="store_overloaded",
                    partner="other"), 1)

    async def overloaded(self, keys):
        raise Overloaded()

    def test_shed_calls_are_logged_once_a_while_at_warning(self):
        self.lag.lag = 1.0
        with self.assertLogs(level=logging.INFO) as logs:
            for _ in range(4):
                self.assertEqual(self.answer()[0], 503)
        warnings = [line for line in logs.output
                    if line.startswith("WARNING")]
        self.assertEqual(warnings, [
            "WARNING:scoring_api.admission:overload: 1 calls shed since the"
            " last report (loop_lag 1)"])


class HeldRefusalTest(QuotaTestCase):
    rate, burst, max_held = 0.5, 0, 1

    async def call(self):
        """(status, headers) of one call on a new kept-alive connection."""
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        try:
            return await keep_alive_call(stream, SCORE)
        finally:
            stream.close()

    @gen_test
    async def test_a_partner_calling_again_while_refused_waits_for_it(self):
        self.assertEqual((await self.call())[0], 200)
        self.assertEqual((await self.call())[0], 429)  # not held: the first
        self.clock.now += 0.5
        # Refused again within the second: held for its wait (1.5 s of
        # the FakeClock, at least a second of the loop's).
        started = self.io_loop.time()
        code, headers = await self.call()
        self.assertEqual(code, 429)
        self.assertGreaterEqual(self.io_loop.time() - started, 1.0)
        self.assertEqual(headers["retry-after"], "1")

    @gen_test
    async def test_a_refusal_past_max_held_is_answered_and_closed(self):
        self.assertEqual((await self.call())[0], 200)
        self.assertEqual((await self.call())[0], 429)
        self.clock.now += 0.5
        # Two refusals to hold, room for one: the other closes its
        # connection (so the partner cannot hold a connection open a call).
        answers = await asyncio.gather(self.call(), self.call())
        self.assertEqual([code for code, _ in answers], [429, 429])
        self.assertEqual(sorted(headers.get("connection") == "close"
                                for _, headers in answers), [False, True])


class PartnerLabelTest(QuotaTestCase):
    rate = 0.5
    burst = 0
    accounts = {"acme": (0.5, 0)}

    def test_only_partners_named_in_limits_accounts_have_a_label(self):
        before = self.scrape()
        for account in ("acme", "acme", "invented-1", "invented-1",
                        "invented-2", "invented-2"):
            self.answer(api_request("online_score", SCORE_ARGUMENTS,
                                    account=account))
        after = self.scrape()

        def refused(partner):
            return (value(after, REFUSED_TOTAL, reason="quota",
                          partner=partner)
                    - value(before, REFUSED_TOTAL, reason="quota",
                            partner=partner))
        self.assertEqual((refused("acme"), refused("other")), (1, 2))
        self.assertNotIn("invented-1", self.fetch("/metrics").body.decode())


class DefaultAdmissionTest(HttpTestCase):
    """make_app without an Admission: the quotas of its settings."""

    settings = Settings().replace(limits={"rate": 1.0, "burst": 0})

    def test_the_settings_quota_applies(self):
        self.assertEqual(self.post(SCORE).code, 200)
        response = self.post(SCORE)
        self.assertEqual(response.code, 429)
        self.assertEqual(response.headers["RateLimit-Policy"],
                         '"default";q=1;w=1')


class DocumentedAnswersTest(QuotaTestCase):
    """The 429 and the 503 "overloaded" answer as openapi.json says, with
    the header fields it describes."""

    rate, burst = 0.5, 0

    def assert_documented(self, code, body, headers):
        self.assertTrue(answer_validator("/method/", "post", code)
                        .is_valid(body), body)
        response = resolve(
            DOCUMENT["paths"]["/method/"]["post"]["responses"][str(code)])
        for name, spec in response["headers"].items():
            spec = resolve(spec)
            if spec.get("required"):
                self.assertIn(name, headers)
            if name in headers and "pattern" in spec["schema"]:
                self.assertRegex(headers[name], spec["schema"]["pattern"])
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)

    def test_the_429_is_documented(self):
        self.answer()
        self.assert_documented(*self.answer())

    def test_the_503_overloaded_is_documented(self):
        self.lag.lag = 1.0
        code, body, headers = self.answer()
        self.assertEqual(code, 503)
        self.assertIn(body, [example["value"] for example in resolve(
            DOCUMENT["paths"]["/method/"]["post"]["responses"]["503"])[
                "content"]["application/json"]["examples"].values()])
        self.assert_documented(code, body, headers)

"""GET /metrics over an in-memory store: the counts after known traffic."""
import asyncio
import json

from tornado.testing import gen_test

from tests.support.helpers import api_request
from tests.support.http import SCORE_ARGUMENTS, HttpTestCase
from tests.support.metrics_text import requests_total, samples, value

DURATION_COUNT = "scoring_api_request_duration_seconds_count"


class MetricsTest(HttpTestCase):
    def scrape(self):
        response = self.fetch("/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith(
            "text/plain"), response.headers["Content-Type"])
        return samples(response.body)

    def test_every_metric_of_the_spec_is_served(self):
        text = self.fetch("/metrics").body.decode()
        for name in ("scoring_api_requests_total",
                     "scoring_api_request_duration_seconds",
                     "scoring_api_redis_errors_total",
                     "scoring_api_cache_circuit_open",
                     "scoring_api_requests_in_flight"):
            self.assertIn("# TYPE %s " % name, text)

    def test_answered_calls_are_counted_by_method_and_code(self):
        before = self.scrape()
        for _ in range(3):
            self.post(api_request("online_score", SCORE_ARGUMENTS))
        self.post(api_request("online_score", SCORE_ARGUMENTS, token="x"))
        self.post(api_request("online_score", {"phone": "1"}))
        self.post(api_request("clients_interests", {"client_ids": [1]}))
        self.post(api_request("no_such_method", {}))
        self.post(b"{not json")
        self.fetch("/method/")  # 405
        after = self.scrape()
        expected = {("online_score", 200): 3, ("online_score", 403): 1,
                    ("online_score", 422): 1, ("clients_interests", 200): 1,
                    ("unknown", 422): 1, ("unknown", 400): 1,
                    ("unknown", 405): 1}
        for (api_method, code), count in expected.items():
            self.assertEqual(
                requests_total(after, api_method, code)
                - requests_total(before, api_method, code), count,
                (api_method, code))
        self.assertEqual(
            value(after, DURATION_COUNT, api_method="online_score")
            - value(before, DURATION_COUNT, api_method="online_score"), 5)

    def test_health_ready_and_metrics_are_not_api_calls(self):
        before = self.scrape()
        self.fetch("/health")
        self.fetch("/ready")
        after = self.scrape()
        self.assertEqual(
            sum(v for (name, _), v in after.items()
                if name == "scoring_api_requests_total"),
            sum(v for (name, _), v in before.items()
                if name == "scoring_api_requests_total"))

    def test_a_store_outage_answered_503_is_counted(self):
        self.store.down = True
        before = self.scrape()
        self.post(api_request("clients_interests", {"client_ids": [1]}))
        self.assertEqual(
            requests_total(self.scrape(), "clients_interests", 503)
            - requests_total(before, "clients_interests", 503), 1)

    @gen_test(timeout=5)
    async def test_in_flight_counts_calls_being_served(self):
        release = self.hold_store_reads()
        metrics_url = self.get_url("/metrics")

        async def in_flight():
            answer = await self.http_client.fetch(metrics_url)
            return value(samples(answer.body),
                         "scoring_api_requests_in_flight")

        idle = await in_flight()  # the scrape itself, when it counts
        url = self.get_url("/method/")
        body = json.dumps(api_request("clients_interests",
                                      {"client_ids": [1]}))
        calls = [self.http_client.fetch(url, method="POST", body=body)
                 for _ in range(2)]
        for _ in range(100):  # until both calls wait on the store
            held = await in_flight()
            if held == idle + 2:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(held, idle + 2)
        release.set()
        for call in calls:
            self.assertEqual((await call).code, 200)
        self.assertEqual(await in_flight(), idle)

    @gen_test(timeout=5)
    async def test_a_call_whose_client_left_is_counted_as_499(self):
        release = self.hold_store_reads()
        metrics_url = self.get_url("/metrics")
        before = samples((await self.http_client.fetch(metrics_url)).body)
        await self.leave_while_waiting(release)
        after = samples((await self.http_client.fetch(metrics_url)).body)
        for code, count in ((499, 1), (200, 0)):
            self.assertEqual(
                requests_total(after, "clients_interests", code)
                - requests_total(before, "clients_interests", code), count,
                code)

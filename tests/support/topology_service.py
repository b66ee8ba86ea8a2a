"""What the Sentinel and Cluster tests share: the app over a topology,
and mixed traffic sent while a fault happens, with what it answered."""
import asyncio
import collections
import json
import time

from tornado.testing import AsyncHTTPTestCase

from scoring_api.app import make_app
from scoring_api.store import Store
from tests.support.helpers import api_request
from tests.support.service import FAST

# For the tests of faults: FAST, with the shipped cache timeouts (a new
# cluster client's first call also learns the slots).
BOUNDED = FAST.replace(cache={"connect_timeout": 0.2, "timeout": 0.2})
# For the tests of what is read and written: no timeout a busy machine
# could reach, so that a slow first call is no failed test.
PATIENT = FAST.replace(
    store={"connect_timeout": 2.0, "timeout": 2.0},
    cache={"connect_timeout": 2.0, "timeout": 2.0})
STORE_BUDGET = BOUNDED.store.worst_call_seconds
CACHE_BUDGET = BOUNDED.cache.worst_call_seconds
# Slack for a 2-core machine shared with CPU-bound processes, where the
# event loop itself waits for the CPU. A hang is redis-py's default of
# about a minute per call; the bounds proven here are seconds.
SLACK_SECONDS = 2.0
INTEREST_IDS = list(range(30))  # enough to land on every node
INTERESTS = {str(cid): ["cars", "id %d" % cid] for cid in INTEREST_IDS}
CLIENTS = 4
PAUSE_SECONDS = 0.05
WARM_UP_SECONDS = 0.5  # answers before the fault, to compare with
STEADY_SECONDS = 1.0  # answers after the recovery, to prove it lasts

# One request as the traffic saw it; times are monotonic seconds.
Answer = collections.namedtuple("Answer", "method sent seconds code body")


class ModeTestCase(AsyncHTTPTestCase):
    """The real app over the topology of `layer`; subclasses name
    `requires(test)` and `store_settings()` ([store] keys of the mode)."""

    layer = None
    base_settings = PATIENT

    def setUp(self):
        type(self).requires(self)
        super().setUp()

    @property
    def topology(self):
        return self.layer.topology

    def get_app(self):
        # Empty [cache] mode and url: the cache is the store's Redis.
        self.settings = self.base_settings.replace(
            store=self.store_settings())
        self.store = Store.from_settings(self.settings)
        return make_app(self.settings, self.store)

    def tearDown(self):
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    def post(self, body):
        return self.fetch("/method/", method="POST", body=json.dumps(body),
                          raise_error=False)

    def answer(self, response):
        """(code, response or error) of an API answer."""
        body = json.loads(response.body)
        self.assertEqual(body["code"], response.code)
        return response.code, body.get("response", body.get("error"))

    async def traffic_through(self, fault, recovery_bound):
        """Mixed online_score and clients_interests from a few clients;
        `fault()` once they are answered, and on until interests have
        answered 200 again for a while (or `recovery_bound` seconds after
        the fault). Returns (when the fault happened, [Answer])."""
        answers = []
        stop = asyncio.Event()
        clients = [asyncio.ensure_future(self._client(n, stop, answers))
                   for n in range(CLIENTS)]
        try:
            await asyncio.sleep(WARM_UP_SECONDS)
            fault_at = time.monotonic()
            fault()
            deadline = fault_at + recovery_bound + STORE_BUDGET
            while time.monotonic() < deadline:
                recovered = failover_times(answers, fault_at)[2]
                if (recovered is not None and time.monotonic()
                        > fault_at + recovered + STEADY_SECONDS):
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        return fault_at, answers

    async def _client(self, number, stop, answers):
        sequence = 0
        while not stop.is_set():
            sequence += 1
            if sequence % 2:
                body = api_request("online_score", {
                    "phone": "7%010d" % (number * 100000 + sequence),
                    "email": "u%d@example.com" % number})
            else:
                body = api_request("clients_interests",
                                   {"client_ids": INTEREST_IDS})
            sent = time.monotonic()
            response = await self.http_client.fetch(
                self.get_url("/method/"), method="POST",
                body=json.dumps(body), raise_error=False,
                request_timeout=STORE_BUDGET + 10)
            answers.append(Answer(
                body["method"], sent, time.monotonic() - sent,
                response.code, json.loads(response.body or b"null")))
            await asyncio.sleep(PAUSE_SECONDS)

    def assertFailoverFollowed(self, fault_at, answers, recovery_bound):
        """Scores never failed; interests answered 503 only from the fault
        to the recovery, and 200 with the data again within
        `recovery_bound`; no call outlived the store's budget."""
        scores = [a for a in answers if a.method == "online_score"]
        interests = [a for a in answers if a.method != "online_score"]
        self.assertTrue([a for a in scores if a.sent > fault_at],
                        "no score asked after the fault")
        for answer in scores:
            self.assertEqual((answer.code, answer.body),
                             (200, {"code": 200, "response": {"score": 3.0}}))
        self.assertEqual({a.code for a in interests} - {200, 503}, set())
        for answer in interests:
            self.assertEqual(answer.body, {"code": 200, "response": INTERESTS}
                             if answer.code == 200 else
                             {"code": 503, "error": "store is unavailable"})
        longest = max(answers, key=lambda a: a.seconds)
        self.assertLess(longest.seconds, STORE_BUDGET + SLACK_SECONDS,
                        longest)
        first_503, last_503, recovered = failover_times(answers, fault_at)
        self.assertIsNotNone(first_503, "the fault never showed")
        self.assertIsNotNone(recovered, "interests never came back")
        self.assertLess(recovered, recovery_bound)
        for answer in interests:
            done = answer.sent + answer.seconds
            if answer.code == 503:
                self.assertGreater(done, fault_at, "a 503 before the fault")
                self.assertLess(answer.sent - fault_at, recovered,
                                "a 503 after the recovery")


def failover_times(answers, fault_at):
    """(first 503, last 503, first 200 again) of clients_interests, in
    seconds from the fault to each answer; all None before a 503."""
    def done(answer):
        return answer.sent + answer.seconds - fault_at

    interests = [a for a in answers if a.method == "clients_interests"]
    failed = [done(a) for a in interests if a.code == 503]
    if not failed:
        return None, None, None
    again = [done(a) for a in interests if a.code == 200
             and a.sent - fault_at >= min(failed)]
    return min(failed), max(failed), min(again, default=None)

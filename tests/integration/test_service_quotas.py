"""Quotas of the real service (`python -m scoring_api`) over a real Redis
(docs/api.md, "Quotas"): two workers give a partner its rate once, not
once each, and count their refusals in one set of metrics; the counters'
Redis killed and restarted: each process falls back to its local share
and says so once, then shares again and says so once, and no call
fails meanwhile.

The bounds hold whatever the machine's load: the quota is measured
against the time the calls actually took, and a slow client only sends
fewer calls, which the lower bound accounts for."""
import threading
import time
import urllib.request

from tests.support.helpers import SCORE_REQUEST
from tests.support.layers import (FaultLayer, RedisLayer,
                                  requires_own_server, requires_redis)
from tests.support.metrics_text import samples, value
from tests.support.process import ProcessTestCase, post

RATE, BURST = 20, 5
# Refusals never held: the client sends at the pace it means to.
QUOTA = {"SCORING_LIMITS_RATE": str(RATE), "SCORING_LIMITS_BURST": str(BURST),
         "SCORING_LIMITS_ACCOUNTS": "horns&hoofs=%d/%d" % (RATE, BURST),
         "SCORING_OVERLOAD_MAX_HELD": "0"}


def send(port, calls_per_second, seconds, threads=4):
    """Calls at `calls_per_second` (each on a new connection, so that the
    kernel spreads them over the workers) for `seconds`: (codes, the
    seconds the sending took)."""
    codes = []
    interval = threads / calls_per_second
    started = time.monotonic()

    def one_sender(offset):
        due = started + offset
        while due < started + seconds:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            codes.append(post(port, SCORE_REQUEST)[0])
            due += interval

    senders = [threading.Thread(target=one_sender,
                                args=(n * interval / threads,))
               for n in range(threads)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    return codes, time.monotonic() - started


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as response:
        return samples(response.read())


class TwoWorkersTest(ProcessTestCase):
    layer = RedisLayer

    def setUp(self):
        requires_redis(self)

    def test_two_workers_give_a_partner_its_rate_once(self):
        process = self.start(SCORING_SERVER_WORKERS="2",
                             SCORING_STORE_URL=RedisLayer.url, **QUOTA)
        self.wait_for_workers(2)
        self.wait_until_serving(process)
        codes, seconds = send(self.port, 2 * RATE, 6.0)
        admitted, refused = codes.count(200), codes.count(429)
        self.assertEqual(admitted + refused, len(codes))
        # Twice the rate asked (less when the machine is slow: then the
        # quota allows a larger part).
        self.assertGreater(len(codes), 1.2 * RATE * seconds)
        # Once, not once each: at most the rate and burst over the time
        # the calls took (10 % for the shares' headroom and their lag).
        self.assertLessEqual(admitted, 1.1 * (RATE * seconds + BURST + 1))
        self.assertGreaterEqual(admitted, 0.8 * RATE * seconds)
        # Both workers served, and /metrics adds their refusals up.
        metrics = scrape(self.port)
        self.assertEqual(value(metrics, "scoring_api_calls_refused_total",
                               reason="quota", partner="horns&hoofs"),
                         refused)
        self.assertEqual(
            value(metrics, "scoring_api_requests_total",
                  api_method="online_score", code="429"), refused)
        # The loop's lag, the worst live worker's (written each second).
        self.assertIn(("scoring_api_event_loop_lag_seconds", frozenset()),
                      metrics)


class CountersRedisKilledTest(ProcessTestCase):
    layer = FaultLayer

    def setUp(self):
        requires_redis(self)
        requires_own_server(self)

    def log_lines(self, text):
        with open(self.log_path) as log:
            return [line for line in log if text in line]

    def test_the_local_share_then_the_shared_quota_said_once_each(self):
        process = self.start(SCORING_STORE_URL=RedisLayer.url,
                             SCORING_SERVER_WORKERS="1", **QUOTA)
        self.wait_until_serving(process)
        before, _ = send(self.port, 2 * RATE, 2.0)
        RedisLayer.server.kill()
        during, _ = send(self.port, 2 * RATE, 3.0)
        RedisLayer.server.start()
        after, _ = send(self.port, 2 * RATE, 3.0)
        # Scores need no Redis: no call fails because of the counters.
        for codes in (before, during, after):
            self.assertLessEqual(set(codes), {200, 429})
            self.assertIn(200, codes)
        self.assertEqual(len(self.log_lines(
            "quotas: the shared counters failed")), 1)
        self.assertEqual(len(self.log_lines(
            "quotas: the shared counters answer again")), 1)
        self.assertEqual(self.log_lines("Traceback"), [])

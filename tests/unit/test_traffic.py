"""Traffic: the in-flight count, and the metrics' gauge that follows it."""
import unittest

from scoring_api import metrics
from scoring_api.traffic import Traffic
from tests.support.metrics_text import samples, value


def gauge():
    return value(samples(metrics.render()[0]),
                 "scoring_api_requests_in_flight")


class TrafficTest(unittest.TestCase):
    def test_the_count_and_the_gauge_follow_starts_and_finishes(self):
        traffic = Traffic()
        before = gauge()
        traffic.started()
        traffic.started()
        self.assertEqual((traffic.in_flight, gauge() - before), (2, 2))
        traffic.finished()
        traffic.finished()
        self.assertEqual((traffic.in_flight, gauge() - before), (0, 0))

    def test_a_new_traffic_serves_and_does_not_drain(self):
        traffic = Traffic()
        self.assertEqual((traffic.in_flight, traffic.draining), (0, False))

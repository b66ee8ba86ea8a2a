"""/health right after Redis restarts (issue 7.8): the pooled connections
are stale, Redis is up, and /health says so the first time."""
from tests.support.service import ServiceTestCase
from tests.support.layers import FaultLayer, RedisLayer, requires_own_server

BOTH_UP = (200, {"store": "up", "cache": "up"})


class HealthAfterRestartTest(ServiceTestCase):
    layer = FaultLayer

    def setUp(self):
        requires_own_server(self)
        super().setUp()

    def health(self):
        return self.answer(self.fetch("/health"))

    def test_the_first_health_after_a_restart_says_up(self):
        self.assertEqual(self.health(), BOTH_UP)  # connections now pooled
        RedisLayer.server.kill()
        RedisLayer.server.start()
        self.assertEqual(self.health(), BOTH_UP)

    def test_health_says_down_while_redis_is_down(self):
        RedisLayer.server.kill()
        with self.assertLogs("scoring_api.store", "WARNING"):
            self.assertEqual(self.health(),
                             (200, {"store": "down", "cache": "down"}))

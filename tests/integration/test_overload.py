"""The burst once blamed on Redis, scaled down and made deterministic
(docs/operations.md, "Overload"): calls wait on a real Redis behind a
fault proxy while the test stalls the event loop, as the process's own
CPU work would. With the service's own loop-lag monitor (LoopLag) and
admission wired as `serve` wires them, no answer blames the store, the
Redis error metric does not move, the cache's circuit stays closed, and
every call is answered 200 or 503 "overloaded, retry later" with
Retry-After, counted as shed."""
import json

from tornado.testing import gen_test

from scoring_api import metrics
from scoring_api.admission import Admission
from scoring_api.app import make_app
from scoring_api.overload import LoopLag
from scoring_api.store import Store
from tests.support.metrics_text import samples, value
from tests.support.stalled_loop import SETTINGS, StalledLoopTestCase


def scraped(name, **labels):
    return value(samples(metrics.render()[0]), name, **labels)


class StarvedServiceTest(StalledLoopTestCase):
    # Shedding by lag off: the test's own stall must not shed the calls
    # before they reach Redis; what is tested is how a starved call ends.
    base_settings = SETTINGS.replace(overload={"shed_lag": 0})

    def get_app(self):
        self.settings = self.base_settings.replace(
            store={"url": self.proxy.url}, cache={"url": ""})
        lag = LoopLag(starved_lag=self.settings.overload.starved_lag)
        lag.start(self.io_loop.asyncio_loop)
        self.addCleanup(lag.stop)
        self.store = Store.from_settings(self.settings,
                                         is_starved=lag.is_starved)
        return make_app(self.settings, self.store,
                        admission=Admission.from_settings(self.settings, lag))

    async def answers_through_a_stall(self):
        """(code, error or None, Retry-After or None) of each call."""
        return [(response.code, json.loads(response.body).get("error"),
                 response.headers.get("Retry-After"))
                for response in await self.responses_through_a_stall()]

    @gen_test(timeout=30)
    async def test_a_stalled_process_sheds_and_never_blames_redis(self):
        errors_before = scraped("scoring_api_redis_errors_total",
                                role="store")
        shed_before = scraped("scoring_api_calls_refused_total",
                              reason="store_overloaded", partner="other")
        with self.assertNoLogs("scoring_api.store", "WARNING"):
            answers = await self.answers_through_a_stall()
        overloaded = [answer for answer in answers if answer[0] == 503]
        self.assertTrue(overloaded)  # the stall did make calls time out
        self.assertLessEqual({answer[:2] for answer in answers}, {
            (200, None), (503, "overloaded, retry later")})
        self.assertTrue(all(int(retry_after) >= 1
                            for _, _, retry_after in overloaded))
        self.assertEqual(scraped("scoring_api_redis_errors_total",
                                 role="store"), errors_before)
        self.assertEqual(scraped("scoring_api_calls_refused_total",
                                 reason="store_overloaded", partner="other")
                         - shed_before, len(overloaded))
        self.assertTrue(self.store.breaker.allows())

"""The outage log (store/outages.py): a failing Redis reported without
flooding the log."""
import unittest

from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scoring_api.store import OutageLog
from scoring_api.store.outages import reason
from tests.support.cases import cases
from tests.support.clock import FakeClock


class OutageLogTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.outages = OutageLog("store", interval=10.0, clock=self.clock)
        self.error = RedisConnectionError("refused")

    def test_an_outage_is_logged_once_per_interval_and_its_end_once(self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(100):
                self.outages.failure("GET", self.error)
                self.clock.now += 0.05  # 5 s of failures: one line
            self.clock.now += 5.5
            self.outages.failure("GET", self.error)  # a new interval
            for _ in range(30):
                self.outages.success()
                self.clock.now += 1.0  # 30 s of answers: one line
        self.assertEqual(len(logs.output), 3, logs.output)
        self.assertIn("(1 failed calls since the last report)",
                      logs.output[0])
        self.assertIn("(100 failed calls since the last report)",
                      logs.output[1])
        self.assertIn("answering again for 10s", logs.output[2])

    def test_a_redis_failing_every_other_call_writes_a_line_per_interval(
            self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            for _ in range(1000):  # 50 s: a failed write, a good read
                self.outages.failure("SET", self.error)
                self.outages.success()
                self.clock.now += 0.05
        self.assertEqual(len(logs.output), 5, logs.output)
        self.assertTrue(all("SET failed" in line for line in logs.output))

    def test_a_recovery_is_reported_only_after_a_whole_interval_up(self):
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("GET", self.error)
            self.outages.success()
            self.clock.now += 9.9
            self.outages.success()
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertTrue(self.outages.down)

    def test_the_lines_of_an_outage_word_for_word(self):
        self.clock.now = 1.0  # small, so that now % up_since != now - it
        with self.assertNoLogs("scoring_api.store"):
            self.outages.success()  # up from the start: nothing to say
        self.assertFalse(self.outages.down)
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("GET", self.error)
            self.clock.now += 10.0
            self.outages.failure("MGET", TimeoutError())  # no text: its type
            self.outages.success()
            self.clock.now += 12.0
            self.outages.success()
        self.assertEqual([record.getMessage() for record in logs.records], [
            "store: GET failed: ConnectionError: refused (1 failed calls"
            " since the last report)",
            "store: MGET failed: TimeoutError (1 failed calls since the last"
            " report)",
            "store: answering again for 12s"])
        self.assertFalse(self.outages.down)

    def test_a_sentinel_outage_is_one_short_line_without_client_reprs(
            self):
        # What redis-py 8.1 raises when the sentinels time out: their
        # clients' reprs (about 1 KB each) in the message.
        sentinels = Sentinel([("10.0.0.1", 26379), ("10.0.0.2", 26380)])
        error = MasterNotFoundError(
            "No master found for 'scoring' : %s" % ", ".join(
                "%s - %r" % (client, RedisTimeoutError("Timeout reading"))
                for client in sentinels.sentinels))
        self.assertGreater(len(str(error)), 1000)
        with self.assertLogs("scoring_api.store", "WARNING") as logs:
            self.outages.failure("PING", error)
        self.assertEqual(logs.records[0].getMessage(), (
            "store: PING failed: MasterNotFoundError: No master found for"
            " 'scoring' (1 failed calls since the last report)"))

    @cases([("x" * 120, "x" * 120), ("x" * 121, "x" * 120 + "..."),
            ("y" * 5000, "y" * 120 + "...")])
    def test_a_long_message_is_cut_at_120_characters(self, case):
        message, shown = case
        self.assertEqual(reason(RedisConnectionError(message)),
                         "ConnectionError: " + shown)

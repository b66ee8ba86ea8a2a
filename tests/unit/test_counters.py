"""The quota counters' keys and round trips, on a mocked Redis client (the
script itself runs against a real Redis in
tests/integration/test_quotas.py)."""
import mock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from tornado.testing import AsyncTestCase, gen_test

from scoring_api.config import Settings
from scoring_api.errors import StoreRefused, StoreUnavailable
from scoring_api.store import RedisEndpoint
from scoring_api.store.counters import (DEMAND_SCRIPT, LONGEST_KEY_NAME,
                                        QuotaCounters, this_process)
from tests.support.cases import cases
from tests.support.clock import FakeClock

CACHE = Settings().replace(
    cache={"retries": 2, "backoff": 0.001, "backoff_max": 0.002}).cache


class RecordingPipeline:
    """A redis-py pipeline that records its commands; `execute` answers
    `answers` (or raises it)."""

    def __init__(self, answers):
        self.answers = answers
        self.commands = []

    def execute_command(self, *args):
        self.commands.append(args)
        return self

    async def execute(self):
        if isinstance(self.answers, Exception):
            raise self.answers
        return self.answers


class CountersTestCase(AsyncTestCase):
    def counters(self, *answers):
        """Counters over an endpoint whose client's pipelines answer
        `answers` in turn; `self.pipelines` records them."""
        self.pipelines = [RecordingPipeline(answer) for answer in answers]
        client = mock.Mock()
        client.pipeline.side_effect = self.pipelines
        self.endpoint = RedisEndpoint("cache", client, CACHE)
        return QuotaCounters(self.endpoint, clock=FakeClock(1700000000.5))


class KeyTest(CountersTestCase):
    @cases([("acme", b"quota:{acme}"),
            ("", b"quota:{}"),
            ("horns&hoofs", b"quota:{horns&hoofs}"),
            ("\u043f\u0430\u0440\u0442\u043d\u0435\u0440",
             "quota:{\u043f\u0430\u0440\u0442\u043d\u0435\u0440}".encode()),
            ("a}b{c", b"quota:{a}b{c}")])
    def test_an_account_is_the_hash_tag_of_its_key(self, case):
        account, key = case
        self.assertEqual(self.counters().key(account), key)

    def test_a_lone_surrogate_makes_a_key_not_an_error(self):
        # orjson lets none through, but a key must never be what fails.
        key = self.counters().key("bad\ud800name")
        self.assertTrue(key.startswith(b"quota:{bad"), key)

    def test_a_long_account_is_keyed_by_its_digest(self):
        counters = self.counters()
        long_name = "x" * (LONGEST_KEY_NAME + 1)
        key = counters.key(long_name)
        self.assertTrue(key.startswith(b"quota:{sha256:"), key)
        self.assertEqual(len(key), len(b"quota:{sha256:}") + 64)
        self.assertNotEqual(key, counters.key(long_name + "y"))
        self.assertEqual(counters.key("x" * LONGEST_KEY_NAME),
                         b"quota:{" + b"x" * LONGEST_KEY_NAME + b"}")

    def test_an_account_of_up_to_100_bytes_is_keyed_by_its_name(self):
        # docs/operations.md: "an account over 100 bytes is keyed by its
        # digest"; a byte is counted in UTF-8.
        counters = self.counters()
        self.assertEqual(counters.key("x" * 100), b"quota:{%s}" % (b"x" * 100))
        self.assertTrue(counters.key("x" * 101).startswith(b"quota:{sha256:"))
        self.assertTrue(counters.key("\u044f" * 51).startswith(
            b"quota:{sha256:"))

    def test_this_process_is_named_by_host_and_pid(self):
        host, _, pid = this_process().rpartition(":")
        self.assertTrue(host)
        self.assertTrue(pid.isdigit(), pid)


class ExchangeTest(CountersTestCase):
    @gen_test
    async def test_every_account_is_one_script_call_in_one_round_trip(
            self):
        counters = self.counters([b"12.5", b"0"])
        totals = await counters.exchange({"acme": 12.5, "globex": 0},
                                         process="h:1")
        self.assertEqual(totals, {"acme": 12.5, "globex": 0.0})
        self.assertEqual(len(self.pipelines), 1)
        # Not a transaction: a cluster's pipeline cannot be one, and the
        # accounts need none (each script call is atomic).
        self.endpoint.client.pipeline.assert_called_once_with(
            transaction=False)
        commands = self.pipelines[0].commands
        self.assertEqual(
            [command[:3] for command in commands],
            [("EVAL", DEMAND_SCRIPT, 1), ("EVAL", DEMAND_SCRIPT, 1)])
        self.assertEqual(commands[0][3:], (
            b"quota:{acme}", "1700000000.5", b"h:1", "12.5", "1.0",
            "1000000000000.0"))
        self.assertEqual(commands[1][3], b"quota:{globex}")
        self.assertEqual(commands[1][6], "0.0")  # no demand: field goes

    @gen_test
    async def test_hundreds_of_partners_are_one_round_trip(self):
        demands = {"partner-%d" % n: float(n) for n in range(300)}
        counters = self.counters([b"%d" % n for n in range(300)])
        totals = await counters.exchange(demands, process="h:1")
        self.assertEqual(totals, demands)
        self.assertEqual(len(self.pipelines[0].commands), 300)

    @gen_test
    async def test_nothing_to_exchange_costs_no_round_trip(self):
        counters = self.counters()
        self.assertEqual(await counters.exchange({}, process="h:1"), {})
        self.assertEqual(self.pipelines, [])

    @gen_test
    async def test_without_a_name_the_process_is_host_and_pid(self):
        counters = self.counters([b"1"])
        await counters.exchange({"acme": 1.0})
        self.assertEqual(self.pipelines[0].commands[0][5],
                         this_process().encode())

    @gen_test
    async def test_a_failing_redis_is_not_retried_and_raises(self):
        counters = self.counters(RedisConnectionError("refused"),
                                 [b"1"])
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreUnavailable):
            await counters.exchange({"acme": 1.0}, process="h:1")
        self.assertEqual(len(self.pipelines[0].commands), 1)
        self.assertEqual(self.pipelines[1].commands, [])  # no retry

    @gen_test
    async def test_retries_can_be_asked_for(self):
        counters = self.counters(RedisConnectionError("refused"), [b"3"])
        self.assertEqual(
            await counters.exchange({"acme": 1.0}, process="h:1",
                                    retries=1),
            {"acme": 3.0})

    @gen_test
    async def test_a_refusing_redis_raises(self):
        counters = self.counters(ResponseError(
            "OOM command not allowed when used memory > 'maxmemory'"))
        with self.assertLogs("scoring_api.store", "WARNING"), \
                self.assertRaises(StoreRefused):
            await counters.exchange({"acme": 1.0}, process="h:1")

    @cases([[], [b"1", b"2"], "a string"])
    @gen_test
    async def test_an_answer_of_the_wrong_shape_is_a_failure(self, answer):
        counters = self.counters(answer)
        with self.assertRaisesRegex(StoreUnavailable, "quota script"):
            await counters.exchange({"acme": 1.0}, process="h:1")

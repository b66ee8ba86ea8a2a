"""The HTTP layer over an in-memory store: every code of docs/api.md."""
import asyncio
import json
import logging
import re
import urllib.error

import mock
from hypothesis import example, given
from hypothesis import strategies as st
from tornado import web
from tornado.httputil import HTTPHeaders
from tornado.tcpclient import TCPClient
from tornado.testing import gen_test

from scoring_api import handlers, logs
from scoring_api.config import Settings
from scoring_api.handlers import MethodHandler
from tests.support.cases import cases
from tests.support.helpers import api_request
from tests.support import strategies  # noqa: F401 (the settings profiles)
from tests.support.http import (SCORE_ARGUMENTS, CaughtRecords,
                                HttpTestCase, exchange, head_of,
                                keep_alive_call, raw_exchange)


class MethodEndpointTest(HttpTestCase):
    def test_online_score_answers_200_with_the_score(self):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS))
        self.assertEqual(self.assert_answer(response, 200), {"score": 3.0})

    def test_clients_interests_answers_200_with_the_interests(self):
        response = self.post(api_request(
            "clients_interests", {"client_ids": [1, 2]}))
        self.assertEqual(self.assert_answer(response, 200),
                         {"1": ["cars", "pets"], "2": []})

    def test_the_path_without_the_trailing_slash_works(self):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                             path="/method")
        self.assert_answer(response, 200)

    @cases([
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b'{"a": NaN}', "body is not valid JSON"),
        (b'{"a": 1e400}', "body is not valid JSON"),
        (b'{"login": "\xff"}', "body is not valid UTF-8"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'"text"', "body must be a JSON object"),
    ])
    def test_a_body_that_is_not_a_json_object_is_400(self, case):
        body, message = case
        self.assertEqual(self.assert_answer(self.post(body), 400), message)

    def test_bad_auth_is_403(self):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS,
                                         token="sdd"))
        self.assertEqual(self.assert_answer(response, 403), "Forbidden")

    def test_invalid_arguments_are_422_naming_every_field(self):
        response = self.post(api_request("online_score", {
            "phone": "89175002040", "email": "stupnikovotus.ru"}))
        self.assertEqual(
            self.assert_answer(response, 422),
            "phone: must be 11 digits starting with 7; email: must contain @")

    def test_a_body_over_the_limit_is_413(self):
        response = self.post(b"{" + b" " * 1024 + b"}")
        self.assertEqual(self.assert_answer(response, 413),
                         "request body is over 1024 bytes")

    def test_a_body_at_the_limit_is_read(self):
        request = json.dumps(api_request("online_score", SCORE_ARGUMENTS))
        response = self.post(request + " " * (1024 - len(request)))
        self.assert_answer(response, 200)

    def test_an_unexpected_error_is_500_without_a_traceback(self):
        self.store.get_many = mock.AsyncMock(side_effect=KeyError("boom"))
        with self.assertLogs("scoring_api.methods", "ERROR"):
            response = self.post(api_request(
                "clients_interests", {"client_ids": [1]}))
        self.assertEqual(self.assert_answer(response, 500),
                         "Internal Server Error")
        self.assertNotIn(b"Traceback", response.body)
        self.assertNotIn(b"boom", response.body)

    def test_a_failure_in_the_handler_is_500_logged_without_the_query(self):
        with mock.patch.object(handlers, "decode_body",
                               side_effect=RuntimeError("boom")), \
                self.assertLogs("scoring_api.handlers", "ERROR") as logs:
            response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                                 path="/method/?phone=79175002040")
        self.assertEqual(self.assert_answer(response, 500),
                         "Internal Server Error")
        self.assertIn("unexpected error in POST /method/", logs.output[0])
        self.assertNotIn("79175002040", "\n".join(logs.output))

    def test_a_store_that_is_down_is_503(self):
        self.store.down = True
        response = self.post(api_request(
            "clients_interests", {"client_ids": [1]}))
        self.assertEqual(self.assert_answer(response, 503),
                         "store is unavailable")

    def test_a_query_string_does_not_change_the_endpoint(self):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                             path="/method/?source=x")
        self.assertEqual(self.assert_answer(response, 200), {"score": 3.0})

    def test_head_is_405_with_headers_only(self):
        response = self.fetch("/method/", method="HEAD")
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers["Allow"], "POST")
        self.assertEqual(response.body, b"")

    @cases(["GET", "PUT", "DELETE", "PATCH"])
    def test_another_verb_is_405_naming_post(self, verb):
        response = self.fetch("/method/", method=verb,
                              body=None if verb in ("GET", "DELETE") else "{}")
        self.assertEqual(self.assert_answer(response, 405),
                         "Method Not Allowed")
        self.assertEqual(response.headers["Allow"], "POST")


class DeepJsonTest(HttpTestCase):
    settings = Settings().replace(server={"max_body_bytes": 300000})

    def test_json_nested_past_the_recursion_limit_is_400(self):
        body = b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"
        self.assertEqual(self.assert_answer(self.post(body), 400),
                         "body is not valid JSON")


class SlowClientTest(HttpTestCase):
    settings = Settings().replace(server={"body_timeout": 0.2})

    @gen_test(timeout=5)
    async def test_a_body_that_never_arrives_is_cut_after_body_timeout(self):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(b"POST /method/ HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 100\r\n\r\n{\"login\":")
        with self.assertLogs("scoring_api", "WARNING") as logs:
            answer = await stream.read_until_close()
        self.assertEqual(answer, b"")  # closed, nothing sent
        self.assertIn("body not received in 0.2s", logs.output[0])
        await self.assert_no_request_left()


class HostHeaderTest(HttpTestCase):
    """/method/ checks the Host header as every other path does."""

    async def raw_answer(self, head):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(head + b"Content-Length: 2\r\n\r\n{}")
        with self.assertLogs("tornado.general", "INFO"):
            return await stream.read_until_close()

    @cases([b"", b"Host: a, b\r\n", b"Host: a b\r\n"])
    @gen_test(timeout=5)
    async def test_a_missing_or_bad_host_is_400(self, host):
        answer = await self.raw_answer(b"POST /method/ HTTP/1.1\r\n" + host)
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer)
        await self.assert_no_request_left()

    @cases(["127.0.0.1:8080", "[::1]:8080", "api.example"])
    def test_a_good_host_reaches_the_method(self, host):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                             headers={"Host": host})
        self.assert_answer(response, 200)


class ChunkedBodyTest(HttpTestCase):
    @gen_test(timeout=5)
    async def test_a_chunked_body_over_the_limit_is_cut_and_forgotten(self):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        chunk = b"x" * 600
        await stream.write(b"POST /method/ HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2)
        with self.assertLogs("tornado.general", "INFO"):
            answer = await stream.read_until_close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer)
        await self.assert_no_request_left()


class OtherPathsTest(HttpTestCase):
    @cases(["/", "/method/online_score", "/methods/", "/health/x"])
    def test_an_unknown_path_is_404(self, path):
        self.assertEqual(self.assert_answer(self.fetch(path), 404),
                         "Not Found")

    def test_a_post_to_an_unknown_path_is_404(self):
        self.assert_answer(self.post({}, path="/score"), 404)

    def test_health_reports_store_and_cache(self):
        self.assertEqual(self.assert_answer(self.fetch("/health"), 200),
                         {"store": "up", "cache": "up"})

    def test_health_answers_200_when_redis_is_down(self):
        self.store.down = True
        self.assertEqual(self.assert_answer(self.fetch("/health"), 200),
                         {"store": "down", "cache": "down"})

    def test_ready_answers_200_while_the_store_answers(self):
        self.assertEqual(self.assert_answer(self.fetch("/ready"), 200),
                         {"store": "up", "cache": "up"})

    def test_ready_answers_503_when_the_store_is_down(self):
        self.store.down = True
        self.assertEqual(self.assert_answer(self.fetch("/ready"), 503),
                         "store is unavailable")

    def test_an_unexpected_error_is_a_500_that_shows_none_of_its_text(self):
        # URLError keeps its text in `reason`, as an HTTPError would.
        failure = urllib.error.URLError("redis.internal:6380 refused")
        with mock.patch.object(self.store, "health", side_effect=failure), \
                self.assertLogs("scoring_api.handlers", "ERROR") as logs:
            response = self.fetch("/ready")
        self.assertEqual(self.assert_answer(response, 500),
                         "Internal Server Error")
        self.assertIn("unexpected error in GET /ready", logs.output[0])
        self.assertRegex(logs.output[1], r"^ERROR:.* GET /ready - 500 ")
        self.assertNotIn("Allow", response.headers)  # a 405's only

    def test_an_unknown_path_is_a_404_without_allow(self):
        response = self.fetch("/no/such/path")
        self.assertEqual(self.assert_answer(response, 404), "Not Found")
        self.assertNotIn("Allow", response.headers)

    @cases(["/health", "/ready"])
    def test_a_post_to_health_or_ready_is_405(self, path):
        response = self.post({}, path=path)
        self.assert_answer(response, 405)
        self.assertEqual(response.headers["Allow"], "GET, HEAD")

    @cases(["/health", "/ready", "/metrics", "/openapi.json"])
    def test_a_conditional_get_is_answered_in_full(self, path):
        self.assertNotIn("Etag", self.fetch(path).headers)
        again = self.fetch(path, headers={"If-None-Match": "*"})
        self.assertEqual(again.code, 200)
        self.assertTrue(again.body)

    @cases(["/health", "/ready", "/metrics", "/openapi.json"])
    def test_head_answers_200_without_a_body(self, path):
        response = self.fetch(path, method="HEAD")
        self.assertEqual((response.code, response.body), (200, b""))


class RequestIdTest(HttpTestCase):
    def test_a_request_id_is_generated_when_none_is_given(self):
        first = self.post(api_request("online_score", SCORE_ARGUMENTS))
        second = self.post(api_request("online_score", SCORE_ARGUMENTS))
        self.assertRegex(first.headers["X-Request-Id"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(first.headers["X-Request-Id"],
                            second.headers["X-Request-Id"])

    @cases(["/method/", "/nowhere"])
    def test_the_callers_request_id_is_sent_back(self, path):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                             path=path, headers={"X-Request-Id": "abc-123"})
        self.assertEqual(response.headers["X-Request-Id"], "abc-123")

    def test_the_request_id_comes_back_on_a_405(self):
        response = self.fetch("/method/",
                              headers={"X-Request-Id": "abc-405"})
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers["X-Request-Id"], "abc-405")

    @cases(["a b\tfake line", "stupnikov@otus.ru", "79175002040",
            "+7 917 500-20-40", "7-917-500-20-40", "ab" * 64])
    def test_an_unsafe_or_personal_request_id_is_replaced(self, given):
        with self.assertLogs("scoring_api.handlers", "INFO") as caught:
            response = self.post(
                api_request("online_score", SCORE_ARGUMENTS),
                headers={"X-Request-Id": given})
        replaced = response.headers["X-Request-Id"]
        self.assertRegex(replaced, r"^[0-9a-f]{32}$")
        self.assertEqual(caught.records[0].request_id, replaced)

    @cases(["4bf92f3577b34da6a3ce929d0e0e4736",
            "0af76519-16cd-43dd-8448-eb211c80319c"])
    def test_a_trace_id_is_kept(self, given):
        response = self.post(api_request("online_score", SCORE_ARGUMENTS),
                             headers={"X-Request-Id": given})
        self.assertEqual(response.headers["X-Request-Id"], given)

    def test_the_services_own_id_is_kept_when_sent_back(self):
        first = self.post(api_request("online_score", SCORE_ARGUMENTS))
        own = first.headers["X-Request-Id"]
        again = self.post(api_request("online_score", SCORE_ARGUMENTS),
                          headers={"X-Request-Id": own})
        self.assertEqual(again.headers["X-Request-Id"], own)


class AccessLogTest(HttpTestCase):
    def test_one_line_per_request_with_id_method_code_and_duration(self):
        request = api_request("online_score", SCORE_ARGUMENTS)
        with self.assertLogs("scoring_api.handlers", "INFO") as logs:
            self.post(request, headers={"X-Request-Id": "req-1"})
        (record,) = logs.records
        self.assertEqual(record.request_id, "req-1")
        self.assertRegex(record.getMessage(),
                         r"^127\.0\.0\.1 POST /method/ online_score 200"
                         r" \d+\.\d\dms$")
        self.assertNotIn(request["token"], record.getMessage())

    def test_a_failed_request_is_a_warning_with_its_reason(self):
        with self.assertLogs("scoring_api.handlers", "WARNING") as logs:
            self.post(api_request("online_score", {"phone": "1"},
                                  token="sdd"))
        self.assertRegex(logs.output[0],
                         r"POST /method/ online_score 403 .*ms: Forbidden$")
        self.assertNotIn("sdd", logs.output[0])

    def test_a_store_error_logs_a_warning_with_the_request_id(self):
        self.store.down = True
        with self.assertLogs("scoring_api.handlers", "WARNING") as logs:
            self.post(api_request("clients_interests", {"client_ids": [1]}),
                      headers={"X-Request-Id": "req-503"})
        self.assertEqual(logs.records[0].request_id, "req-503")
        # The store's outage lines say why; one ERROR per probe would flood.
        self.assertEqual(logs.records[0].levelname, "WARNING")


class RoutingTest(HttpTestCase):
    @cases(["/method/", "/method"])
    def test_the_method_path_is_answered_by_a_request_handler(self, path):
        self.assertTrue(issubclass(MethodHandler, web.RequestHandler))
        with mock.patch.object(MethodHandler, "prepare", autospec=True,
                               side_effect=MethodHandler.prepare) as prepare:
            self.assert_answer(self.post(api_request(
                "online_score", SCORE_ARGUMENTS), path=path), 200)
            self.assert_answer(self.post(b"{" + b" " * 1024 + b"}",
                                         path=path), 413)
        self.assertEqual(prepare.call_count, 2)


class BodyTimeoutTest(HttpTestCase):
    """A body not received within body_timeout closes the connection, on
    every path (docs/operations.md, "Slow clients")."""

    settings = Settings().replace(server={"body_timeout": 0.2})

    @cases(["/method/", "/health", "/nowhere"])
    @gen_test(timeout=5)
    async def test_a_body_that_never_arrives_is_cut_on_every_path(self, path):
        head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                % path.encode())
        with self.assertLogs("scoring_api", "WARNING"):
            _, answer = await raw_exchange(self.get_http_port(), head,
                                           b"{\"a")
        self.assertEqual(answer, b"")  # closed, nothing sent
        await self.assert_no_request_left()


class TooLargeTest(HttpTestCase):
    """The 413 says Connection: close, and comes after the body is read,
    so a proxy still sending it is not reset (docs/operations.md, "Behind
    a proxy")."""

    HEAD = (b"POST /method/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: %d\r\n%s\r\n")

    def assert_413_closing(self, answer):
        status, headers, body = head_of(answer)
        self.assertEqual(status, 413, answer)
        self.assertEqual(headers["connection"], "close")
        self.assertEqual(json.loads(body), {
            "code": 413, "error": "request body is over 1024 bytes"})

    @cases([3000, 16 * 2 ** 20])  # up to 16 MiB is worth reading
    @gen_test(timeout=5)
    async def test_the_body_is_read_to_its_end_before_the_413(self, length):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(self.HEAD % (length, b"") + b"x" * 1500)
        early = stream.read_until_close()
        await asyncio.sleep(0.2)
        self.assertFalse(early.done())  # not answered: the body goes on
        await stream.write(b"x" * (length - 1500))  # not reset: still read
        self.assert_413_closing(await early)  # and closed after it
        await self.assert_no_request_left()

    @gen_test(timeout=5)
    async def test_a_client_that_waits_for_100_continue_is_answered_now(
            self):
        _, answer = await raw_exchange(
            self.get_http_port(),
            self.HEAD % (3000, b"Expect: 100-continue\r\n"))
        self.assertNotIn(b"100 (Continue)", answer)
        self.assert_413_closing(answer)

    @gen_test(timeout=5)
    async def test_a_body_past_what_is_worth_reading_is_answered_now(self):
        _, answer = await raw_exchange(
            self.get_http_port(),
            self.HEAD % (16 * 2 ** 20 + 1, b""))
        self.assert_413_closing(answer)

    def test_the_next_call_after_a_413_is_answered(self):
        self.assert_answer(self.post(b"{" + b" " * 2000 + b"}"), 413)
        response = self.post(api_request("online_score", SCORE_ARGUMENTS))
        self.assert_answer(response, 200)


class DrainTest(HttpTestCase):
    """While the server drains, every answer closes its connection, and a
    connection waiting for its next request is closed (docs/operations.md,
    "Signals")."""

    async def keep_alive_exchange(self, stream):
        return await keep_alive_call(
            stream, api_request("online_score", SCORE_ARGUMENTS))

    @gen_test(timeout=5)
    async def test_an_answer_while_draining_says_close_and_closes(self):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        self.assertNotIn("connection",
                         (await self.keep_alive_exchange(stream))[1])
        self.traffic.draining = True
        status, headers = await self.keep_alive_exchange(stream)
        self.assertEqual((status, headers["connection"]), (200, "close"))
        self.assertEqual(await stream.read_until_close(), b"")

    @gen_test(timeout=5)
    async def test_an_idle_kept_alive_connection_is_closed_by_a_drain(self):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await self.keep_alive_exchange(stream)
        await asyncio.sleep(0.05)  # the server waits for the next request
        self.http_server.drain(grace_seconds=0.05)
        self.assertEqual(await stream.read_until_close(), b"")
        await asyncio.sleep(0.05)
        self.assertEqual(self.http_server.open_connections, 0)


class ReadyWhileDrainingTest(HttpTestCase):
    def test_ready_answers_503_from_the_moment_a_drain_starts(self):
        self.assert_answer(self.fetch("/ready"), 200)
        self.traffic.draining = True
        response = self.fetch("/ready")
        self.assertEqual(self.assert_answer(response, 503), "shutting down")
        self.assertEqual(response.headers["Connection"], "close")

    def test_health_still_answers_200_while_draining(self):
        self.traffic.draining = True
        self.assertEqual(self.assert_answer(self.fetch("/health"), 200),
                         {"store": "up", "cache": "up"})


class ClientLeftTest(HttpTestCase):
    """A call whose client closed its connection before the answer is
    logged and counted as 499 (as nginx does), never as the 200 no one
    received."""

    @gen_test(timeout=5)
    async def test_a_call_whose_client_left_is_499(self):
        release = self.hold_store_reads()
        with self.assertLogs("scoring_api.handlers", "INFO") as caught:
            await self.leave_while_waiting(release)
        (line,) = caught.output
        self.assertRegex(line, r"^WARNING:scoring_api\.handlers:127\.0\.0\.1"
                               r" POST /method/ clients_interests 499"
                               r" \d+\.\d\dms: client closed the connection"
                               r" before the answer$")

    @gen_test(timeout=5)
    async def test_an_answered_call_is_logged_with_its_own_code(self):
        with self.assertLogs("scoring_api.handlers", "INFO") as caught:
            _, answer = await raw_exchange(
                self.get_http_port(),
                b"GET /health HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
        self.assertEqual(head_of(answer)[0], 200)
        self.assertIn(" GET /health - 200 ", caught.output[0])


FORM = "application/x-www-form-urlencoded"


class AnyContentTypeTest(HttpTestCase):
    """/method/ reads its body as JSON whatever the Content-Type says
    (`curl -d` sends a form type); Tornado would parse a form first."""

    settings = Settings().replace(server={"max_body_bytes": 16384})

    # Every type Tornado 6.6.1 parses as a form, and others it does not
    # (which a later Tornado might: then this test fails).
    @cases([FORM, FORM + "; charset=UTF-8", "multipart/form-data",
            "multipart/form-data; boundary=x", "multipart/form-dataxyz",
            "Application/X-WWW-Form-Urlencoded", "MULTIPART/FORM-DATA",
            " " + FORM, "text/plain", "application/json",
            "application/octet-stream", "x", ""])
    def test_any_type_is_read_as_json(self, content_type):
        # More than 1,000 "&": more fields than Tornado's form parser takes.
        request = api_request("online_score", dict(
            SCORE_ARGUMENTS, first_name="&" * 1001, last_name="&=x"))
        response = self.post(request, headers={"Content-Type": content_type})
        self.assertEqual(self.assert_answer(response, 200), {"score": 3.5})

    def test_a_form_type_given_first_of_two_is_still_read_as_json(self):
        # Tornado reads the first (the two joined by a comma).
        headers = HTTPHeaders()
        headers.add("Content-Type", FORM)
        headers.add("Content-Type", "application/json")
        request = api_request("online_score", dict(
            SCORE_ARGUMENTS, first_name="&" * 1001, last_name="&=x"))
        response = self.post(request, headers=headers)
        self.assertEqual(self.assert_answer(response, 200), {"score": 3.5})

    def test_a_body_that_is_not_json_is_still_said_so(self):
        response = self.post("a=1&b=2", headers={"Content-Type": FORM})
        self.assertEqual(self.assert_answer(response, 400),
                         "body is not valid JSON")


class DuplicateKeyTest(HttpTestCase):
    """A key given twice is refused: a proxy reading the first would see
    another request than the service reading the last."""

    @cases([
        (b'{"token": "bad", "token": %s, "account": "horns&hoofs",'
         b' "login": "h&f", "method": "online_score", "arguments": {}}',
         "body has a duplicate key: token"),
        (b'{"method": "online_score", "method": "clients_interests"}',
         "body has a duplicate key: method"),
        (b'{"arguments": {"phone": "79175002040", "phone": 1}}',
         "body has a duplicate key: arguments.phone"),
        (b'{"arguments": {"x": {"y": 1, "y": 2}}}',
         "body has a duplicate key"),
        (b'{"79175002040": 1, "79175002040": 2}', "body has a duplicate key"),
        (b'{"arguments": {"phone": 1}, "x": {"phone": 1, "phone": 2}}',
         "body has a duplicate key"),
        (b'{"a": [{"b": 1, "b": 1}]}', "body has a duplicate key"),
        (b'{"to\\u006ben": 1, "token": 2}', "body has a duplicate key: token"),
    ])
    def test_a_duplicated_key_is_400(self, case):
        body, message = case
        if b"%s" in body:
            body = body % json.dumps(
                api_request("online_score", {})["token"]).encode()
        self.assertEqual(self.assert_answer(self.post(body), 400), message)


class LargeIntegerTest(HttpTestCase):
    """An integer past 64 bits is an integer like any other: the field
    says what it accepts."""

    settings = Settings().replace(server={"max_body_bytes": 16384})

    @cases([
        (b'"phone": %d' % 2 ** 64,
         "phone: must be 11 digits starting with 7"),
        (b'"phone": -%d' % 2 ** 63,
         "phone: must be 11 digits starting with 7"),
        (b'"phone": 7' + b"0" * 400,
         "phone: must be 11 digits starting with 7"),
        (b'"phone": 7' + b"0" * 5000,
         "phone: must be 11 digits starting with 7"),
        (b'"gender": %d, "birthday": "01.01.2000"' % 2 ** 64,
         "gender: must be 0 (unknown), 1 (male) or 2 (female)"),
    ])
    def test_a_large_integer_argument_is_named(self, case):
        arguments, message = case
        body = json.dumps(api_request("online_score", {"email": "a@b"}))
        body = body.replace('"email"', arguments.decode() + ', "email"')
        self.assertEqual(self.assert_answer(self.post(body), 422), message)

    @cases([2 ** 64, -1, -2 ** 63 - 1, 10 ** 400])
    def test_a_client_id_out_of_range_is_named(self, client_id):
        body = json.dumps(api_request("clients_interests",
                                      {"client_ids": [1, 0]}))
        body = body.replace("[1, 0]", "[1, %d]" % client_id)
        self.assertEqual(
            self.assert_answer(self.post(body), 422),
            "client_ids: must hold only integers from 0 to"
            " 18446744073709551615")

    def test_the_largest_client_id_is_answered(self):
        response = self.post(api_request(
            "clients_interests", {"client_ids": [2 ** 64 - 1]}))
        self.assertEqual(self.assert_answer(response, 200),
                         {str(2 ** 64 - 1): []})


BARE_400 = b"HTTP/1.1 400 Bad Request\r\n\r\n"
# Route kinds: the API, a probe, the metrics, an unknown path.
PATHS = ["/method/", "/health", "/metrics", "/nowhere"]
# Pieces of a Content-Length: ASCII digits and what merely looks like one
# (latin-1 superscripts and fractions, Arabic-Indic and full-width digits
# in UTF-8), signs, separators, spaces.
LENGTH_PIECES = [b"0", b"1", b"2", b"9", b"\xb2", b"\xb3", b"\xb9", b"\xbd",
                 "\u0662".encode(), "\uff12".encode(), b"+", b"-", b".",
                 b",", b" ", b"\t", b"e", b"x", b"_"]
content_lengths = (
    st.lists(st.sampled_from(LENGTH_PIECES), max_size=12).map(b"".join)
    | st.integers(1, 5000).map(lambda digits: b"9" * digits)
    | st.integers(0, 2 ** 70).map(b"%d".__mod__))
ASCII_LENGTH = re.compile(rb"[0-9]+(,[ \t]*[0-9]+)*")


class ContentLengthPropertyTest(HttpTestCase):
    """Whatever a Content-Length holds, on every route kind: no ERROR and
    no traceback. One that is not ASCII digits gets Tornado's bare 400 and
    its one INFO "Malformed HTTP message" line, nothing else. (No body is
    sent: a length the service takes waits for it until body_timeout.)"""

    settings = HttpTestCase.settings.replace(server={"body_timeout": 0.05})

    def setUp(self):
        super().setUp()
        logs.keep_callers_text_out()
        self.caught = CaughtRecords.catch(self)

    def send(self, path, value):
        del self.caught.records[:]
        head = (b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: %s\r\n\r\n"
                % (b"POST" if path == "/method/" else b"GET",
                   path.encode(), value))
        return self.io_loop.run_sync(
            lambda: exchange(self.get_http_port(), head))

    @given(st.sampled_from(PATHS), content_lengths)
    @example("/method/", b"\xb2")
    @example("/health", b"\xb9\xb3")
    @example("/method/", b"9" * 4000)
    @example("/nowhere", b"9" * 4301)
    @example("/method/", b"9" * 4301)
    @example("/metrics", b"+2")
    @example("/method/", b"-1")
    @example("/method/", b"2 2")
    @example("/method/", "\u0662".encode())
    @example("/method/", b"1, 2")
    def test_no_content_length_reaches_a_traceback(self, path, value):
        answer = self.send(path, value)
        records = self.caught.records
        for record in records:
            self.assertLess(record.levelno, logging.ERROR,
                            record.getMessage())
            self.assertIsNone(record.exc_info, record.getMessage())
        self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 "),
                        answer)
        if not ASCII_LENGTH.fullmatch(value.strip(b" \t")):
            self.assertEqual(answer, BARE_400)
            self.assertEqual(
                [(record.name, record.levelno,
                  record.getMessage().startswith("Malformed HTTP message"))
                 for record in records],
                [("tornado.general", logging.INFO, True)])

    @cases([(path, value) for path in PATHS
            for value in (b"\xb2", b"\xb9\xb3", b"9" * 4000, b"9" * 4301,
                          b"+2", b"-1", b" 2 2", b"0x10")])
    def test_the_issues_values_get_the_bare_400(self, case):
        path, value = case
        self.assertEqual(self.send(path, value), BARE_400)
        (record,) = self.caught.records
        self.assertEqual(record.levelno, logging.INFO)

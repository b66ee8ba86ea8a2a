"""Log lines: text and JSON, the client behind a proxy, reopening the file,
and nothing personal in any line."""
import contextlib
import gc
import io
import json
import logging
import os
import re
import tempfile
import unittest
import urllib.parse
import warnings
from unittest import mock

from hypothesis import assume, example, given
from hypothesis import strategies as st
from tornado.httputil import HTTPServerRequest
from tornado.tcpclient import TCPClient
from tornado.testing import AsyncHTTPTestCase, gen_test

from scoring_api import logs
from scoring_api.requestids import RequestIdFilter
from tests.support import strategies  # noqa: F401 (the settings profiles)
from tests.support.cases import cases
from tests.support.helpers import admin_token, api_request
from tests.support.http import (SCORE_ARGUMENTS, CaughtRecords, HttpTestCase,
                                exchange)

ISO_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$"


class LogFileMixin:
    """Lines of the service's own handler, writing to a temporary file."""

    log_format = "text"

    def setUp(self):
        super().setUp()
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.log_path = os.path.join(directory.name, "service.log")
        self.handler = logs.make_handler(self.log_path, self.log_format)
        root = logging.getLogger()
        root.addHandler(self.handler)
        self.addCleanup(self.handler.close)
        self.addCleanup(root.removeHandler, self.handler)

    def log_text(self, path=None):
        self.handler.flush()
        with open(path or self.log_path, encoding="utf-8") as log:
            return log.read()

    def json_lines(self):
        return [json.loads(line) for line in self.log_text().splitlines()]


class JsonLogTest(LogFileMixin, HttpTestCase):
    log_format = "json"

    def test_an_access_line_is_one_object_with_the_spec_keys(self):
        self.post(api_request("online_score", SCORE_ARGUMENTS),
                  headers={"X-Request-Id": "req-json"})
        (line,) = [line for line in self.json_lines() if "code" in line]
        self.assertRegex(line.pop("time"), ISO_TIME)
        self.assertIsInstance(line.pop("duration_ms"), float)
        self.assertEqual(line, {
            "level": "INFO", "request_id": "req-json",
            "message": line["message"], "http_method": "POST",
            "path": "/method/", "api_method": "online_score", "code": 200,
            "client": "127.0.0.1"})
        self.assertRegex(line["message"],
                         r"^127\.0\.0\.1 POST /method/ online_score 200 ")

    def test_a_request_id_is_kept_whatever_character_it_starts_with(self):
        for request_id in ("+1", ".a", "9", "z"):
            self.post(api_request("online_score", SCORE_ARGUMENTS),
                      headers={"X-Request-Id": request_id})
        self.assertEqual([line["request_id"] for line in self.json_lines()
                          if "code" in line], ["+1", ".a", "9", "z"])

    def test_the_duration_is_in_milliseconds_to_a_hundredth(self):
        with mock.patch.object(HTTPServerRequest, "request_time",
                               return_value=0.0123456):
            self.post(api_request("online_score", SCORE_ARGUMENTS))
        (line,) = [line for line in self.json_lines() if "code" in line]
        self.assertEqual(line["duration_ms"], 12.35)
        self.assertTrue(line["message"].endswith(" 200 12.35ms"),
                        line["message"])

    @cases([(api_request("online_score", {"phone": "1"}), 422,
             ": phone: must be 11 digits starting with 7"),
            ("{", 400, ": body is not valid JSON")])
    def test_a_failed_call_is_a_warning_with_its_reason(self, case):
        body, code, reason = case
        self.post(body)
        (line,) = [line for line in self.json_lines() if "code" in line]
        self.assertEqual((line["level"], line["code"]), ("WARNING", code))
        self.assertTrue(line["message"].endswith(reason), line["message"])

    def test_a_traceback_stays_in_its_line(self):
        try:
            raise ValueError("boom \uffff\U0001f600")
        except ValueError:
            logging.getLogger("scoring_api").exception("it failed")
        (line,) = self.json_lines()
        self.assertEqual((line["level"], line["message"]),
                         ("ERROR", "it failed"))
        self.assertIn("ValueError: boom \uffff\U0001f600", line["traceback"])
        self.assertNotIn("request_id", line)  # outside any request


class BufferedLinesTest(LogFileMixin, unittest.TestCase):
    """docs/operations.md, "Logs": lines wait in a buffer for the next
    flush (every second), but ERROR and worse are written at once."""

    def lines_in_the_file(self):
        with open(self.log_path, encoding="utf-8") as log:
            return log.read().splitlines()

    def test_a_line_that_cannot_be_written_is_reported_not_raised(self):
        class FullDisk(io.StringIO):
            def write(self, text):
                raise OSError(28, "No space left on device")

        self.addCleanup(self.handler.setStream,
                        self.handler.setStream(FullDisk()))
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            logging.getLogger("scoring_api").error("lost")
        self.assertIn("--- Logging error ---", stderr.getvalue())

    @cases([(logging.INFO, 0), (logging.WARNING, 0), (logging.ERROR, 1),
            (logging.CRITICAL, 1)])
    def test_error_and_worse_are_in_the_file_at_once(self, case):
        level, at_once = case
        logging.getLogger("scoring_api").log(level, "written when?")
        self.assertEqual(len(self.lines_in_the_file()), at_once)
        logs.flush_logs()
        self.assertEqual(len(self.lines_in_the_file()), 1)


class TextLogTest(LogFileMixin, HttpTestCase):
    def test_a_traceback_follows_its_line(self):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("scoring_api").exception("it failed")
        lines = self.log_text().splitlines()
        self.assertTrue(lines[0].endswith(" E - it failed"), lines[0])
        self.assertEqual(lines[1], "Traceback (most recent call last):")
        self.assertEqual(lines[-1], "ValueError: boom")

    def test_a_stack_follows_its_line(self):
        logging.getLogger("scoring_api").warning("here", stack_info=True)
        lines = self.log_text().splitlines()
        self.assertTrue(lines[0].endswith(" W - here"), lines[0])
        self.assertEqual(lines[1], "Stack (most recent call last):")

    def test_an_access_line_names_the_client(self):
        self.post(api_request("online_score", SCORE_ARGUMENTS),
                  headers={"X-Request-Id": "req-text"})
        self.assertRegex(
            self.log_text(),
            r"^\[\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d\] I req-text 127\.0\.0\.1"
            r" POST /method/ online_score 200 \d+\.\d\dms\n$")

    def test_a_proxys_forwarded_for_is_ignored_without_xheaders(self):
        self.post(api_request("online_score", SCORE_ARGUMENTS),
                  headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertIn(" 127.0.0.1 POST /method/", self.log_text())
        self.assertNotIn("203.0.113.7", self.log_text())


class BehindProxyTest(LogFileMixin, AsyncHTTPTestCase):
    """[server] xheaders = true becomes HTTPServer(xheaders=True)."""

    get_app = HttpTestCase.get_app
    make_admission = HttpTestCase.make_admission
    post = HttpTestCase.post
    settings = HttpTestCase.settings

    def get_httpserver_options(self):
        return {"xheaders": True}

    def test_the_client_is_taken_from_x_real_ip(self):
        self.post(api_request("online_score", SCORE_ARGUMENTS),
                  headers={"X-Real-Ip": "203.0.113.7"})
        self.assertIn(" 203.0.113.7 POST /method/", self.log_text())

    def test_the_client_is_the_last_hop_of_x_forwarded_for(self):
        self.post(api_request("online_score", SCORE_ARGUMENTS),
                  headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
        self.assertIn(" 203.0.113.9 POST /method/", self.log_text())


class ReopenTest(LogFileMixin, HttpTestCase):
    def test_after_the_file_is_moved_reopen_writes_a_new_one(self):
        logger = logging.getLogger("scoring_api")
        logger.warning("before the rotation")
        os.rename(self.log_path, self.log_path + ".1")
        logger.warning("still to the moved file")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.handler.reopen()
            gc.collect()
        # The moved file is closed, not left to the garbage collector.
        self.assertEqual([str(w.message) for w in caught], [])
        logger.warning("after the rotation")
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text(self.log_path + ".1").splitlines()],
            ["before the rotation", "still to the moved file"])
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text().splitlines()], ["after the rotation"])

    def test_reopen_logs_passes_over_a_handler_without_a_file(self):
        root = logging.getLogger()
        saved = root.handlers[:]
        self.addCleanup(root.handlers.__setitem__, slice(None), saved)
        root.handlers[:] = [logging.StreamHandler(io.StringIO()),
                            self.handler]
        os.rename(self.log_path, self.log_path + ".1")
        self.assertTrue(logs.reopen_logs())
        logging.getLogger("scoring_api").warning("after the rotation")
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text().splitlines()],
            ["log file reopened", "after the rotation"])


PERSONAL = {"phone": "79175002040", "email": "stupnikov@otus.ru",
            "first_name": "Stanislav", "last_name": "Stupnikov",
            "birthday": "01.01.1990", "gender": 1}


class NothingPersonalTest(LogFileMixin, HttpTestCase):
    """Every personal value and token sent, valid or not: none is logged."""

    def send_everything(self):
        self.post(api_request("online_score", PERSONAL))
        self.post(api_request("online_score", PERSONAL, login="admin"))
        self.post(api_request("online_score", PERSONAL, token="0" * 128))
        bad = dict(PERSONAL, phone="89175002040", email="stupnikovotus.ru",
                   birthday="01.01.1890", gender=7)
        self.post(api_request("online_score", bad))
        self.post(api_request("online_score", dict(
            PERSONAL, first_name=["Stanislav"], last_name={"Stupnikov": 1},
            birthday="31.02.1990", gender="1", phone=7917500204)))
        self.post(api_request("online_score", PERSONAL, login=None))
        self.post(api_request(PERSONAL["email"], PERSONAL))
        self.post(json.dumps(api_request("online_score", PERSONAL))[:-5])
        self.post(api_request("clients_interests", {
            "client_ids": [PERSONAL["phone"]], "date": "01.01.1990"}))

    def assert_nothing_personal(self):
        text = self.log_text()
        self.assertEqual(len(text.splitlines()), 9, text)
        secrets = [str(value) for value in PERSONAL.values()
                   if value != 1] + [
            "89175002040", "stupnikovotus.ru", "01.01.1890", "31.02.1990",
            "7917500204", "Stanislav", "Stupnikov", "1990",
            api_request("online_score", {})["token"], admin_token(),
            "0" * 128]
        for secret in secrets:
            self.assertNotIn(secret, text)

    def test_no_text_line_holds_a_token_or_a_personal_field(self):
        self.send_everything()
        self.assert_nothing_personal()


class MalformedRequestTest(LogFileMixin, HttpTestCase):
    """Tornado's own line about a malformed request says what is wrong,
    never the caller's text (a header may carry a token)."""

    @gen_test
    async def test_a_bad_header_value_is_not_logged(self):
        logs.keep_callers_text_out()
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        with self.assertLogs("tornado.general", "INFO") as caught:
            await stream.write(b"GET /health HTTP/1.1\r\nHost: x\r\n"
                               b"X-Secret: hunter2-79175002040\x01\r\n\r\n")
            await stream.read_until_close()
        line = caught.output[0]
        self.assertIn("Malformed HTTP message", line)
        self.assertIn("Invalid header value", line)
        self.assertNotIn("hunter2", line)


class NothingPersonalInJsonTest(NothingPersonalTest):
    log_format = "json"


class MalformedHttpFilterTest(unittest.TestCase):
    @cases([("Malformed HTTP message from %s: %s %s", ("a", "b", "c")),
            ("Bad thing from %s: %s", ("a", ValueError("b"))),
            ("Malformed HTTP message from %s", ("a",)),
            ("Malformed HTTP message", ())])
    def test_a_record_of_another_shape_passes_untouched(self, case):
        # A later Tornado may log it otherwise: never raise over it.
        message, args = case
        record = logging.LogRecord("tornado.general", logging.INFO, "", 0,
                                   message, args, None)
        self.assertTrue(logs.MalformedHttpFilter().filter(record))
        self.assertEqual(record.args, args)


class CaughtLines(logging.Handler):
    """Every record of every logger, as the service's text lines."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        self.setFormatter(logs.Formatter())
        self.addFilter(RequestIdFilter())

    def emit(self, record):
        self.lines.append(self.format(record))


SECRETS = ["SECRETTOKEN123", "stupnikov@otus.ru", "79175002040",
           "Stupnikov"]
# Header text as Tornado reads it (latin-1), without the line ends that
# would start another header or request.
header_text = st.text(
    st.sampled_from(["'", '"', "\\", "\x00", "\x01", "\x7f", ",", " "])
    | st.characters(max_codepoint=0xff, blacklist_characters="\r\n"),
    max_size=8)


class MalformedHeaderPropertyTest(AsyncHTTPTestCase):
    """Whatever a header holds (quotes, control bytes, personal data), no
    part of it reaches a log line, whichever logger writes it."""

    get_app = HttpTestCase.get_app
    make_admission = HttpTestCase.make_admission
    settings = HttpTestCase.settings

    def setUp(self):
        super().setUp()
        logs.keep_callers_text_out()
        self.caught = CaughtLines()
        root = logging.getLogger()
        previous = root.level
        root.addHandler(self.caught)
        root.setLevel(logging.DEBUG)
        self.addCleanup(root.setLevel, previous)
        self.addCleanup(root.removeHandler, self.caught)

    async def send(self, head):
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        try:
            await stream.write(head)
            await stream.read_until_close()
        finally:
            stream.close()

    def lines_after(self, head):
        del self.caught.lines[:]
        self.io_loop.run_sync(lambda: self.send(head))
        return self.caught.lines

    def assert_no_secret(self, lines, head):
        for line in lines:
            for secret in SECRETS:
                self.assertNotIn(secret, line, head)

    @given(header_text, st.sampled_from(SECRETS), header_text,
           st.sampled_from(["Authorization", "Host", "X-Contact",
                            "Content-Length", "Transfer-Encoding"]))
    @example("Bearer ", "SECRETTOKEN123", "'\x01", "Authorization")
    @example("", "stupnikov@otus.ru", "'", "Host")
    @example("", "79175002040", "'", "Content-Length")
    def test_no_part_of_a_header_value_is_logged(self, before, secret,
                                                 after, name):
        value = before + secret + after
        head = ("POST /method/ HTTP/1.1\r\nHost: x\r\n%s: %s\r\n"
                "Connection: close\r\nContent-Length: 2\r\n\r\n{}" % (
                    name, value)).encode(
                    "latin-1")
        self.assert_no_secret(self.lines_after(head), head)

    @given(header_text, st.sampled_from(SECRETS), header_text)
    @example("", "Stupnikov", "'(")
    def test_no_part_of_a_header_name_is_logged(self, before, secret, after):
        head = ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                "%s%s%s: 1\r\n\r\n" % (before, secret, after)).encode(
                    "latin-1")
        self.assert_no_secret(self.lines_after(head), head)

    @cases([
        (b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer"
         b" SECRETTOKEN123'\x01\r\n\r\n", "Invalid header value"),
        (b"GET / HTTP/1.1\r\nHost: stupnikov@otus.ru'\r\n\r\n",
         "Invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nStupnikov' (x): 1\r\n\r\n",
         "Invalid header name")])
    def test_the_seen_leaks_say_what_is_wrong_and_nothing_else(self, case):
        head, wrong = case
        lines = [line for line in self.lines_after(head)
                 if "Malformed" in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].endswith(": " + wrong), lines)

    def test_an_unknown_error_is_named_by_its_class_only(self):
        self.assertEqual(logs.describe_malformed(ValueError(
            "Bearer SECRETTOKEN123")), "ValueError")


STUPNIKOV_CYRILLIC = ("\u0421\u0442\u0443\u043f\u043d\u0438\u043a"
                      "\u043e\u0432")
NAMES = ["Stupnikov", "Stanislav", STUPNIKOV_CYRILLIC,
         "\u0418\u0432\u0430\u043d\u043e\u0432\u0430",
         "M\u00fcller-Schmidt", "O'Connor", "Zhang Wei"]


def phone_as(digits, form):
    """The 11 `digits` written as people write a phone."""
    d = str(digits)
    return {"plain": d, "plus": "+" + d,
            "spaced": "+%s (%s) %s-%s-%s" % (d[0], d[1:4], d[4:7], d[7:9],
                                             d[9:]),
            "dashed": "8-%s-%s-%s-%s" % (d[1:4], d[4:7], d[7:9], d[9:]),
            "dotted": d[:4] + "." + d[4:]}[form]


phones = st.builds(phone_as, st.integers(70000000000, 79999999999),
                   st.sampled_from(["plain", "plus", "spaced", "dashed",
                                    "dotted"]))
names = st.sampled_from(NAMES)
personal_values = (
    st.emails().filter(lambda email: 6 <= len(email) <= 200) | phones | names
    | st.binary(min_size=32, max_size=64).map(bytes.hex))  # a token
# What a request line takes as its method (RFC 9110's token).
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Every header a client may send, the request id and the address headers
# behind a proxy included.
HEADERS = ["X-Request-Id", "Authorization", "Cookie", "User-Agent",
           "Referer", "X-Forwarded-For", "X-Real-Ip", "Host", "Content-Type",
           "Accept", "X-Contact"]
# (HTTP method, path, body) of every route kind.
ROUTES = [("POST", "/method/", json.dumps(
              api_request("online_score", SCORE_ARGUMENTS)).encode()),
          ("GET", "/health", b""), ("GET", "/ready", b""),
          ("GET", "/metrics", b""), ("GET", "/openapi.json", b""),
          ("GET", "/nowhere", b"")]
# Where a value goes in a request's path: "{route}" is the route's path,
# "{value}" the value, percent-encoded, or as UTF-8 bytes when "raw".
PATH_PLACES = ["/{value}", "{route}/{value}", "{route}?q={value}",
               "/{value}{route}", "{route}?{value}", "/{raw}",
               "{route}/{raw}"]


# An id the service made (a random prefix and a counter, 32 hex digits):
# its digits may spell a phone (70000000000 in ...ff36700000000000012),
# but it is the service's own text, not the caller's.
SERVICE_MADE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def forms(value):
    """What a value may look like in a log line: as sent, percent-encoded,
    as Tornado reads its UTF-8 bytes (latin-1), escaped as JSON, escaped
    as the logs escape what is not printable; a phone as its digits."""
    seen = {value, urllib.parse.quote(value, safe=""),
            value.encode().decode("latin-1"), json.dumps(value)[1:-1]}
    seen |= {logs.printable(form) for form in seen}
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) == 11:
        seen.add(digits)
    return seen


class PersonalDataPropertyTest(HttpTestCase):
    """Personal values (e-mails, phones, names, tokens) sent through every
    header, every part of the path and the method, to every route kind:
    none reaches a log line, text or JSON (docs/operations.md, "Logs").

    A name is not sent as X-Request-Id: nothing tells a name from an id
    such as `checkout`; ids that look like an e-mail, a phone or a token
    are replaced (test_request_ids)."""

    def setUp(self):
        super().setUp()
        logs.keep_callers_text_out()
        self.caught = CaughtRecords.catch(self)
        self.text = logs.Formatter()
        self.json = logs.JsonFormatter()
        self.ids = RequestIdFilter()

    def lines(self):
        """Every record caught, as a text line and as the values of a JSON
        line."""
        for record in self.caught.records:
            self.ids.filter(record)
            yield self.text.format(record)
            line = self.json.format(record)
            self.assertTrue(line.isascii(), line)
            yield " ".join(map(str, json.loads(line).values()))

    def send(self, head, body):
        del self.caught.records[:]
        self.io_loop.run_sync(lambda: exchange(
            self.get_http_port(), head + b"\r\n" + body))

    def assert_not_logged(self, value, request):
        for line in self.lines():
            line = SERVICE_MADE_ID.sub("<id>", line)
            for form in forms(value):
                self.assertNotIn(form, line, request)

    def head(self, method, path, body, header=None):
        head = (b"%s %s HTTP/1.1\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n"
                % (method.encode(), path, len(body)))
        if header != ("Host", None):
            head += b"Host: x\r\n"
        return head

    @given(personal_values, st.sampled_from(HEADERS),
           st.sampled_from(ROUTES))
    @example("stupnikov@otus.ru", "X-Request-Id", ROUTES[0])
    @example("+7 (917) 500-20-40", "X-Request-Id", ROUTES[-1])
    @example("f" * 128, "X-Request-Id", ROUTES[1])
    @example("Stupnikov", "Authorization", ROUTES[0])
    def test_no_header_value_is_logged(self, value, header, route):
        assume(not (header == "X-Request-Id" and value in NAMES))
        method, path, body = route
        head = self.head(method, path.encode(), body, (header, None))
        head += b"%s: %s\r\n" % (header.encode(), value.encode())
        self.send(head, body)
        self.assertTrue(self.caught.records)  # an access line at least
        self.assert_not_logged(value, head)

    @given(personal_values, st.sampled_from(PATH_PLACES),
           st.sampled_from(ROUTES))
    @example("stupnikov@otus.ru", "/{value}", ROUTES[0])
    @example("79175002040", "{route}/{raw}", ROUTES[0])
    @example(STUPNIKOV_CYRILLIC, "/{raw}", ROUTES[-1])
    def test_no_path_is_logged(self, value, place, route):
        method, route_path, body = route
        path = place.format(route=route_path,
                            value=urllib.parse.quote(value, safe=""),
                            raw="{raw}").encode()
        path = path.replace(b"{raw}", value.encode())
        head = self.head(method, path, body)
        self.send(head, body)
        self.assertTrue(self.caught.records)  # a line of some kind
        self.assert_not_logged(value, head)

    @given(personal_values.filter(TOKEN.fullmatch), st.sampled_from(ROUTES))
    @example("79175002040", ROUTES[0])
    @example("Stupnikov", ROUTES[-1])
    def test_no_http_method_is_logged(self, value, route):
        _, path, body = route
        head = self.head(value, path.encode(), body)
        self.send(head, body)
        self.assertTrue(self.caught.records)  # an access line at least
        self.assert_not_logged(value, head)


class UnknownPathTest(LogFileMixin, HttpTestCase):
    """The path of an unknown route is not logged: a caller may put
    anything there (/79175002040/stupnikov@otus.ru); the line says how
    long it was. Whatever it holds, the record stays one short line."""

    def send_raw_path(self, raw):
        async def send():
            stream = await TCPClient().connect("127.0.0.1",
                                               self.get_http_port())
            await stream.write(b"GET /" + raw + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
            await stream.read_until_close()
            stream.close()
        self.io_loop.run_sync(send)

    def test_a_path_is_written_as_its_length(self):
        for raw in ("79175002040/stupnikov@otus.ru".encode(),
                    "\u043f\u0443\u0442\u044c".encode(),  # UTF-8: 4 chars
                    "a\u2028b".encode(), "a\x85b".encode(), b"a\xffb",
                    "\u202egnp.exe".encode()):
            self.send_raw_path(raw)
        self.assertEqual(
            [re.search(r" GET (.*) - 404 ", line).group(1)
             for line in self.log_text().splitlines()],
            ["/<unknown path, %d chars>" % length
             for length in (30, 5, 4, 4, 4, 9)])

    def test_a_long_path_is_not_a_long_line(self):
        self.send_raw_path(b"x" * 60000)
        (line,) = self.log_text().splitlines()
        self.assertLess(len(line), 200)
        self.assertIn(" GET /<unknown path, 60001 chars> - 404 ", line)


class UnknownPathJsonTest(UnknownPathTest):
    log_format = "json"

    def test_a_path_is_written_as_its_length(self):
        for raw in ("79175002040/stupnikov@otus.ru".encode(),
                    "a\u2028b".encode(), "\u202egnp.exe".encode()):
            self.send_raw_path(raw)
        text = self.log_text()
        self.assertTrue(text.isascii(), text)
        self.assertEqual(
            [(line["path"], line["code"]) for line in self.json_lines()],
            [("/<unknown path, 30 chars>", 404),
             ("/<unknown path, 4 chars>", 404),
             ("/<unknown path, 9 chars>", 404)])

    def test_a_long_path_is_not_a_long_line(self):
        self.send_raw_path(b"x" * 60000)
        (line,) = self.json_lines()
        self.assertLess(len(self.log_text()), 400)
        self.assertEqual(line["path"], "/<unknown path, 60001 chars>")


class LineShapeTest(LogFileMixin, unittest.TestCase):
    """Any line, whatever its message holds: one line, capped, and nothing
    that is not printable (a line break, a control, a bidirectional
    override that reorders the line as displayed)."""

    def log(self, message):
        logging.getLogger("scoring_api").warning("%s", message)

    def test_a_message_of_1000_characters_is_whole(self):
        self.log("x" * 1000)
        (line,) = self.log_text().splitlines()
        self.assertTrue(line.endswith(" " + "x" * 1000), line[-80:])

    def test_a_long_message_is_cut_with_the_marker(self):
        self.log("x" * 60000)
        (line,) = self.log_text().splitlines()
        self.assertTrue(line.endswith(" " + "x" * 1000 + logs.CUT_MARKER),
                        line[-80:])

    @cases([
        ("a\u202eb", "a\\u202eb"), ("a\u2066b\u2069", "a\\u2066b\\u2069"),
        ("a\nb", "a\\x0ab"), ("a\u2028b", "a\\u2028b"), ("a\x85b", "a\\x85b"),
        ("a\tb", "a\\x09b"), ("a\x1bb", "a\\x1bb"),
        ("a\U000e0001", "a\\U000e0001"), ("a\uffff", "a\\uffff"),
        ("\u043f\u0443\u0442\u044c", "\u043f\u0443\u0442\u044c"),
    ])
    def test_what_is_not_printable_is_escaped(self, case):
        message, written = case
        self.log(message)
        (line,) = self.log_text().splitlines()
        self.assertTrue(line.endswith(" " + written), line)

    def test_the_cut_comes_before_the_escapes(self):
        self.log("\u202e" * 60000)
        (line,) = self.log_text().splitlines()
        self.assertTrue(line.endswith(" " + "\\u202e" * logs.MAX_VALUE_CHARS
                                      + logs.CUT_MARKER), line[-80:])


class JsonLineShapeTest(LineShapeTest):
    log_format = "json"

    def message(self):
        (line,) = self.json_lines()
        self.assertTrue(self.log_text().isascii())
        return line["message"]

    def test_a_message_of_1000_characters_is_whole(self):
        self.log("x" * 1000)
        self.assertEqual(self.message(), "x" * 1000)

    def test_a_long_message_is_cut_with_the_marker(self):
        self.log("x" * 60000)
        self.assertEqual(self.message(), "x" * 1000 + logs.CUT_MARKER)

    @cases([
        ("a\u202eb", "a\\u202eb"), ("a\nb", "a\\x0ab"),
        ("a\U000e0001", "a\\U000e0001"),
        ("\u043f\u0443\u0442\u044c", "\u043f\u0443\u0442\u044c"),
        ("\U0001f600", "\U0001f600"), ("\U0001f601", "\U0001f601"),
        ("\U00010000", "\U00010000"),
    ])
    def test_what_is_not_printable_is_escaped(self, case):
        message, written = case
        self.log(message)
        self.assertEqual(self.message(), written)

    def test_the_cut_comes_before_the_escapes(self):
        self.log("\u202e" * 60000)
        self.assertEqual(self.message(), "\\u202e" * logs.MAX_VALUE_CHARS
                         + logs.CUT_MARKER)

    def test_each_value_is_cut_and_escaped_once(self):
        logs.log_access(logging.getLogger("scoring_api"), logging.WARNING,
                        "\u202e" * 60000, "req-1", {"path": "a\u202eb"})
        (line,) = self.json_lines()
        self.assertEqual(line["message"], "\\u202e" * logs.MAX_VALUE_CHARS
                         + logs.CUT_MARKER)
        self.assertEqual(line["path"], "a\\u202eb")


class FailedReopenTest(LogFileMixin, HttpTestCase):
    def setUp(self):
        """The service's only handler, its file moved to `old_path` and
        its directory gone: it cannot be reopened."""
        super().setUp()
        moved = tempfile.TemporaryDirectory()
        self.addCleanup(moved.cleanup)
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers[:] = [self.handler]
        self.addCleanup(root.handlers.__setitem__, slice(None), saved)
        self.old_path = os.path.join(moved.name, "service.log")
        os.rename(self.log_path, self.old_path)
        os.rmdir(os.path.dirname(self.log_path))

    def test_without_a_standard_error_it_is_still_no_error(self):
        closed = io.StringIO()
        closed.close()
        with mock.patch("sys.stderr", closed):
            self.assertFalse(logs.reopen_logs())

    def test_a_file_that_cannot_be_reopened_is_kept_and_said_once(self):
        logger = logging.getLogger("scoring_api")
        old_path = self.old_path
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            self.assertFalse(logs.reopen_logs())
            logger.warning("still served")
        self.assertEqual(stderr.getvalue(), (
            "scoring_api: cannot reopen the log file %s: No such file or"
            " directory; still writing to the old one\n" % self.log_path))
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text(old_path).splitlines()],
            ["cannot reopen the log file %s: No such file or directory;"
             " still writing to the old one" % self.log_path,
             "still served"])

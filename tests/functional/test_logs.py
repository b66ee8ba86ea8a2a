"""Log lines: text and JSON, the client behind a proxy, reopening the file,
and nothing personal in any line."""
import json
import logging
import os
import tempfile

from tornado.tcpclient import TCPClient
from tornado.testing import AsyncHTTPTestCase, gen_test

from scoring_api import logs
from tests.functional.test_http import SCORE_ARGUMENTS, HttpTestCase
from tests.helpers import admin_token, api_request

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

    def test_a_failed_call_is_a_warning_with_its_reason(self):
        self.post(api_request("online_score", {"phone": "1"}))
        (line,) = [line for line in self.json_lines() if "code" in line]
        self.assertEqual((line["level"], line["code"]), ("WARNING", 422))
        self.assertTrue(line["message"].endswith(
            ": phone: must be 11 digits starting with 7"), line["message"])

    def test_a_traceback_stays_in_its_line(self):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("scoring_api").exception("it failed")
        (line,) = self.json_lines()
        self.assertEqual((line["level"], line["message"]),
                         ("ERROR", "it failed"))
        self.assertIn("ValueError: boom", line["traceback"])
        self.assertNotIn("request_id", line)  # outside any request


class TextLogTest(LogFileMixin, HttpTestCase):
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
        self.handler.reopen()
        logger.warning("after the rotation")
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text(self.log_path + ".1").splitlines()],
            ["before the rotation", "still to the moved file"])
        self.assertEqual(
            [line.split("- ", 1)[1] for line in
             self.log_text().splitlines()], ["after the rotation"])


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

"""What the handlers read of a request's head, whatever it holds."""
import unittest

from tornado.httputil import HTTPHeaders

from scoring_api.handlers import declared_length
from tests.support.cases import cases


class DeclaredLengthTest(unittest.TestCase):
    @cases([("0", 0), ("2", 2), ("1024", 1024), ("0007", 7),
            ("9" * 19, int("9" * 19))])
    def test_ascii_digits_are_a_length(self, case):
        value, length = case
        self.assertEqual(declared_length(HTTPHeaders(
            {"Content-Length": value})), length)

    @cases(["", "\u00b2", "\u00b9\u00b3", "\u0662", "\uff12", "+2", "-1",
            "2 2", "2.0", "0x10", "2e3", "1_000", "9" * 20, "9" * 4301])
    def test_anything_else_is_no_length(self, value):
        self.assertIsNone(declared_length(HTTPHeaders(
            {"Content-Length": value})))

    def test_no_header_is_no_length(self):
        self.assertIsNone(declared_length(HTTPHeaders()))

    def test_two_headers_are_no_length(self):
        headers = HTTPHeaders()
        headers.add("Content-Length", "2")
        headers.add("Content-Length", "2")
        self.assertIsNone(declared_length(headers))

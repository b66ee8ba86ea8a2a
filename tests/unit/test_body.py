"""The body of an API call: one JSON object, every key once, every
integer as written (docs/api.md, "Requests")."""
import json
import unittest

from hypothesis import given
from hypothesis import strategies as st

from scoring_api.body import BodyError, decode_body
from tests.support import strategies
from tests.support.cases import cases


class DecodeTest(unittest.TestCase):
    def assert_refused(self, body, message):
        with self.assertRaises(BodyError) as raised:
            decode_body(body)
        self.assertEqual(str(raised.exception), message)

    @cases([
        b'{"a": 1}', b'{"a": {"b": [1, 2.5, "x:y.e", null, true]}}',
        b'{"a": "\\u00e9\\"\\\\"}', b'  {"a" : 1 , "b" :2}  ',
        b'{"a": 1.5e3, "b": 2E2, "c": -0.0}',
        b'{"a": 18446744073709551615, "b": -9223372036854775808}',
        b'{"t\\u006fken": 1}', b'{"a": "\\u003a"}', b'{}',
        b'{"email": "alice+news@example.com", "b": 1e+16}',
    ])
    def test_a_json_object_is_read_as_the_standard_library_reads_it(
            self, body):
        self.assertEqual(decode_body(body), json.loads(body))

    @cases([
        (b'{"a": 1, "a": 2}', "body has a duplicate key"),
        (b'{"x": {"a": 1, "a": 1}}', "body has a duplicate key"),
        (b'{"x": [[{"a": 1, "b": 2, "a": 3}]]}', "body has a duplicate key"),
        (b'{"token": "", "token": ""}', "body has a duplicate key: token"),
        (b'{"arguments": {}, "arguments": {}}',
         "body has a duplicate key: arguments"),
        (b'{"arguments": {"client_ids": [1], "client_ids": [2]}}',
         "body has a duplicate key: arguments.client_ids"),
        (b'{"arguments": {"x": {"phone": 1, "phone": 1}}}',
         "body has a duplicate key"),
        (b'{"x": {"token": 1, "token": 1}}', "body has a duplicate key"),
        (b'{"x": {"a": 1, "a": 1}, "login": 1, "login": 2}',
         "body has a duplicate key: login"),
        # an escaped colon elsewhere does not hide the duplicate
        (b'{"a\\u003a": 1, "b": 1, "b": 2}', "body has a duplicate key"),
        (b'{"a": "\\u003A", "method": 1, "method": 2}',
         "body has a duplicate key: method"),
        (b'{"lo\\u0067in": 1, "login": 2}', "body has a duplicate key: login"),
        # an object equal to the arguments is not the arguments
        (b'{"arguments": {"phone": 1}, "x": {"phone": 1, "phone": 1}}',
         "body has a duplicate key"),
        # one repeated key an object: the first (here not a field)
        (b'{"x": 1, "x": 2, "token": "", "token": ""}',
         "body has a duplicate key"),
        (b'{"token": "", "token": "", "x": 1, "x": 2}',
         "body has a duplicate key: token"),
    ])
    def test_a_duplicated_key_is_refused_named_only_if_a_field(self, case):
        body, message = case
        self.assert_refused(body, message)

    def test_a_duplicate_deeper_than_orjson_writes_is_found(self):
        deep = b'{"a": ' * 300 + b'{"b": 1, "b": 2}' + b"}" * 300
        self.assert_refused(deep, "body has a duplicate key")
        self.assertIsInstance(decode_body(deep.replace(b'"b": 2', b'"c": 2')),
                              dict)

    @cases([
        (b'{"a": 18446744073709551616}', 2 ** 64),
        (b'{"a": -9223372036854775809}', -2 ** 63 - 1),
        (b'{"a": 100000000000000000000}', 10 ** 20),
        (b'{"a": [1, 123456789012345678901234567890]}',
         123456789012345678901234567890),
        # float literals that orjson writes another way do not hide it
        (b'{"x": [2.5e3, 1.0e20, 1e-7], "a": 18446744073709551616}',
         2 ** 64),
    ])
    def test_an_integer_past_64_bits_stays_an_integer(self, case):
        body, value = case
        decoded = decode_body(body)["a"]
        self.assertEqual(decoded[-1] if isinstance(decoded, list)
                         else decoded, value)

    @cases([b"7" + b"0" * 400, b"-7" + b"0" * 400, b"9" * 5000])
    def test_an_integer_past_a_floats_range_is_an_integer_no_field_takes(
            self, digits):
        value = decode_body(b'{"a": %s}' % digits)["a"]
        self.assertIsInstance(value, int)
        self.assertGreater(abs(value), 2 ** 64)
        self.assertEqual(value < 0, digits.startswith(b"-"))

    def test_an_exponent_of_20_digits_within_range_is_read(self):
        self.assertEqual(decode_body(b'{"a": 1e%s1}' % (b"0" * 19)),
                         {"a": 10.0})

    @cases([b"1" * 40, b"-" + b"9" * 40])
    def test_an_integer_of_up_to_40_digits_is_read_as_written(self, digits):
        self.assertEqual(decode_body(b'{"a": %s}' % digits)["a"],
                         int(digits))

    @cases([b"1" * 41, b"-" + b"9" * 41])
    def test_an_integer_of_more_than_40_digits_is_not_read_as_written(
            self, digits):
        # docs/api.md: read as one no field accepts, 10**40 with its sign
        # (int() of a long literal costs quadratic time)
        value = decode_body(b'{"a": %s}' % digits)["a"]
        self.assertNotEqual(value, int(digits))
        self.assertEqual(value, -10 ** 40 if digits.startswith(b"-")
                         else 10 ** 40)

    @cases([
        (b"{not json", "body is not valid JSON"),
        (b'{"a": NaN}', "body is not valid JSON"),
        (b'{"a": Infinity, "b": %s}' % (b"9" * 30), "body is not valid JSON"),
        (b'{"a": 1e400}', "body is not valid JSON"),
        (b'{"a": 1e400, "b": %s}' % (b"9" * 30), "body is not valid JSON"),
        # an exponent of 20 digits or more, past a float's range
        (b'{"a": 1e%s400}' % (b"0" * 19), "body is not valid JSON"),
        (b'{"a": -1E%s999}' % (b"0" * 20), "body is not valid JSON"),
        (b'{"a": "\\ud800", "b": %s}' % (b"9" * 400),
         "body is not valid JSON"),
        (b'{"a": 1}x', "body is not valid JSON"),
        (b'{"a": "\xff"}', "body is not valid UTF-8"),
        (b"[1]", "body must be a JSON object"),
        (b"%s" % (b"9" * 400), "body must be a JSON object"),
        (b'[' * 2000 + b']' * 2000, "body is not valid JSON"),
        # orjson reads 1,024 levels but writes 254: past that the exact
        # parse checks, as deep as Python's recursion limit lets it
        (b'{"a": ' + b'[' * 1020 + b']' * 1020 + b'}',
         "body is nested too deeply"),
    ])
    def test_what_is_not_one_json_object_is_refused(self, case):
        body, message = case
        self.assert_refused(body, message)

    def test_a_duplicate_is_found_in_a_large_object_in_linear_time(self):
        keys = b", ".join(b'"k%d": 1' % number for number in range(100000))
        self.assert_refused(b"{" + keys + b', "k0": 2}',
                            "body has a duplicate key")


class AnyJsonTest(unittest.TestCase):
    """Any JSON object, as an API client writes it: read exactly as the
    standard library reads it; with one key repeated, refused."""

    @given(st.dictionaries(st.text(max_size=8), strategies.json_values,
                           max_size=6))
    def test_any_object_reads_as_written(self, value):
        for body in (json.dumps(value), json.dumps(value, indent=1),
                     json.dumps(value, ensure_ascii=False)):
            self.assertEqual(decode_body(body.encode()), value)

    @given(st.dictionaries(st.text(max_size=8), strategies.json_values,
                           min_size=1, max_size=6), st.data())
    def test_any_repeated_key_is_refused(self, value, data):
        key = data.draw(st.sampled_from(sorted(value)))
        body = json.dumps(value)
        repeated = "{%s: 0, %s" % (json.dumps(key), body[1:])
        with self.assertRaises(BodyError):
            decode_body(repeated.encode())

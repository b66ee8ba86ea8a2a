import unittest

from scoring_api.loader import parse_interests
from tests.cases import cases


class ParseInterestsTest(unittest.TestCase):
    def test_json_lines_are_read_skipping_blank_lines(self):
        entries = parse_interests(
            '{"client_id": 1, "interests": ["cars", "pets"]}\n\n'
            '{"client_id": 2, "interests": []}\n')
        self.assertEqual(entries.interests, {1: ["cars", "pets"], 2: []})
        self.assertEqual(entries.errors, [])

    def test_one_json_object_is_read_by_key(self):
        entries = parse_interests('{"1": ["cars"], "20": ["tv", "pets"]}')
        self.assertEqual(entries.interests, {1: ["cars"], 20: ["tv", "pets"]})

    def test_a_single_json_line_is_not_taken_for_a_mapping(self):
        entries = parse_interests('{"client_id": 7, "interests": ["a"]}')
        self.assertEqual(entries.interests, {7: ["a"]})

    @cases([
        ("nope", "line 2: not valid JSON"),
        ('{"client_id": 1}', 'line 2: expected {"client_id": N,'
                             ' "interests": [...]}'),
        ("[1, 2]", 'line 2: expected {"client_id": N, "interests": [...]}'),
        ('{"client_id": -1, "interests": []}',
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": "3", "interests": []}',
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": true, "interests": []}',
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": 3, "interests": "cars"}',
         "line 2: interests of client 3 must be a list of strings"),
        ('{"client_id": 3, "interests": ["cars", 1]}',
         "line 2: interests of client 3 must be a list of strings"),
        ('{"client_id": 1, "interests": ["again"]}',
         "line 2: client 1 is already given at line 1"),
        ('{"client_id": 18446744073709551616, "interests": []}',
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": 3, "interests": ["\\ud800"]}',
         "line 2: interests of client 3 must be a list of strings"),
        ('{"client_id": 2, "client_id": 3, "interests": ["x"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
    ])
    def test_a_bad_line_is_reported_with_its_number(self, case):
        bad_line, message = case
        entries = parse_interests(
            '{"client_id": 1, "interests": ["cars"]}\n' + bad_line + "\n")
        self.assertEqual(["%s: %s" % error for error in entries.errors],
                         [message])
        self.assertEqual(entries.interests, {1: ["cars"]})

    def test_a_bad_key_of_an_object_is_reported_by_name(self):
        entries = parse_interests('{"1": ["a"], "x": ["b"]}')
        self.assertEqual(entries.errors, [
            ('key "x"', "client_id must be a non-negative integer below"
             " 2**64")])

    def test_a_key_given_twice_in_an_object_is_an_error(self):
        entries = parse_interests(
            '{"1": ["first"], "2": ["b"], "1": ["second"]}')
        self.assertEqual(entries.errors, [
            ('key "1"', "given twice in the object")])
        self.assertEqual(entries.interests, {2: ["b"]})  # for --partial

    def test_the_largest_client_id_the_api_can_ask_for_loads(self):
        entries = parse_interests(
            '{"client_id": 18446744073709551615, "interests": ["a"]}')
        self.assertEqual(entries.interests, {2 ** 64 - 1: ["a"]})

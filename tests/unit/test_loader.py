import asyncio
import io
import json
import unittest
from unittest import mock

from scoring_api import loader
from scoring_api.config import Settings
from scoring_api.errors import StoreUnavailable
from tests.support.cases import cases


def parse(text, **limits):
    """(interests by client id that would be written, bad entries said)
    of the file `text`."""
    said = []
    report = loader.Report("f", say=said.append)
    source = io.BytesIO(text.encode("utf-8"))
    values = loader.check(source, report)
    if values is None:
        source.seek(0)
        values = dict(loader.good_lines(source, report))
    interests = {int(key[2:]): json.loads(value)
                 for key, value in values.items()}
    return interests, [line[len("f: "):] for line in said
                       if line.startswith("f: ")]


class ParseInterestsTest(unittest.TestCase):
    def test_json_lines_are_read_skipping_blank_lines(self):
        self.assertEqual(parse(
            '{"client_id": 1, "interests": ["cars", "pets"]}\n\n'
            '{"client_id": 2, "interests": []}\n'),
            ({1: ["cars", "pets"], 2: []}, []))

    def test_one_json_object_is_read_by_key(self):
        self.assertEqual(parse('{"1": ["cars"], "20": ["tv", "pets"]}'),
                         ({1: ["cars"], 20: ["tv", "pets"]}, []))

    def test_a_single_json_line_is_not_taken_for_a_mapping(self):
        self.assertEqual(parse('{"client_id": 7, "interests": ["a"]}'),
                         ({7: ["a"]}, []))

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
        # Python's own limits: recursion, and digits an int() may take.
        ("[" * 100000, "line 2: not valid JSON"),
        ('{"client_id": %s, "interests": []}' % ("9" * 5000),
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": 3, "interests": [%s]}' % ("1" * 5000),
         "line 2: interests of client 3 must be a list of strings"),
        ("x" * (loader.MAX_LINE_BYTES + 1),
         "line 2: longer than %d bytes" % loader.MAX_LINE_BYTES),
    ])
    def test_a_bad_line_is_reported_with_its_number(self, case):
        bad_line, message = case
        self.assertEqual(
            parse('{"client_id": 1, "interests": ["cars"]}\n' + bad_line
                  + '\n{"client_id": 4, "interests": []}\n'),
            ({1: ["cars"], 4: []}, [message]))

    def test_a_bad_key_of_an_object_is_reported_by_name(self):
        self.assertEqual(parse('{"1": ["a"], "x": ["b"]}'), ({1: ["a"]}, [
            'key "x": client_id must be a non-negative integer below'
            ' 2**64']))

    def test_a_key_of_5000_digits_is_a_bad_key(self):
        self.assertEqual(parse('{"%s": ["a"]}' % ("9" * 5000))[1], [
            'key "%s": client_id must be a non-negative integer below'
            ' 2**64' % ("9" * 5000)])

    def test_a_key_given_twice_in_an_object_is_an_error(self):
        self.assertEqual(
            parse('{"1": ["first"], "2": ["b"], "1": ["second"]}'),
            ({2: ["b"]}, ['key "1": given twice in the object']))

    def test_two_keys_of_one_client_in_an_object_are_an_error(self):
        self.assertEqual(parse('{"1": ["a"], "01": ["b"]}'), (
            {1: ["a"]}, ['key "01": client 1 is already given at key "1"']))

    def test_the_largest_client_id_the_api_can_ask_for_loads(self):
        self.assertEqual(
            parse('{"client_id": 18446744073709551615, "interests": ["a"]}'),
            ({2 ** 64 - 1: ["a"]}, []))


class DuplicateTest(unittest.TestCase):
    """Ids given twice are found across the runs spilled to disk."""

    def test_a_repeated_id_is_found_in_any_run_and_the_first_is_kept(self):
        lines = ['{"client_id": %d, "interests": ["n%d"]}' % (i % 25, i)
                 for i in range(30)]
        said = []
        report = loader.Report("f", say=said.append)
        source = io.BytesIO("\n".join(lines).encode())
        spilled = []
        spill = loader.ClientIndex._spill
        with mock.patch.object(loader, "RUN_SIZE", 4), mock.patch.object(
                loader.ClientIndex, "_spill", autospec=True,
                side_effect=lambda index: (spilled.append(1), spill(index))):
            self.assertIsNone(loader.check(source, report))
        self.assertEqual(len(spilled), 8)  # 7 runs of 4, the last of 2
        self.assertEqual(said, [
            "f: line %d: client %d is already given at line %d" % (
                i + 26, i, i + 1) for i in range(5)])
        source.seek(0)
        written = dict(loader.good_lines(source, report))
        self.assertEqual(len(written), 25)
        self.assertEqual(written["i:3"], '["n3"]')  # the first of two
        self.assertEqual((report.good, report.bad), (25, 5))


class BigObjectTest(unittest.TestCase):
    def test_one_object_above_the_size_limit_is_refused(self):
        text = "{\n" + ",\n".join('"%d": ["a"]' % i for i in range(10)) + "}"
        for start in (text, text.replace("\n", "")):
            report = loader.Report("f", say=lambda line: None)
            with mock.patch.object(loader, "MAX_OBJECT_BYTES", 20):
                with self.assertRaisesRegex(loader.TooBigObject,
                                            "write a file this large as"
                                            " JSON lines"):
                    loader.check(io.BytesIO(start.encode()), report)


class FailingStore:
    """A store whose `set_many` fails from its `fail_at`-th call."""

    def __init__(self, fail_at):
        self.fail_at = fail_at
        self.batches = []

    async def set_many(self, mapping):
        if len(self.batches) + 1 >= self.fail_at:
            raise StoreUnavailable("store is unavailable")
        self.batches.append(dict(mapping))


class WriteBatchesTest(unittest.TestCase):
    def pairs(self, count):
        return (("i:%d" % i, "[]") for i in range(count))

    def test_writes_go_in_batches_with_progress(self):
        store = FailingStore(fail_at=10 ** 9)
        said = []
        report = loader.Report("f", say=said.append)
        with mock.patch.object(loader, "PROGRESS_EVERY", 2000):
            written = asyncio.run(loader.write_batches(
                store, self.pairs(4500), report))
        self.assertEqual(written, 4500)
        self.assertEqual([len(batch) for batch in store.batches],
                         [1000, 1000, 1000, 1000, 500])
        self.assertEqual(said, ["loader: 2000 entries written",
                                "loader: 4000 entries written"])

    def test_a_failure_half_way_says_how_many_were_written(self):
        store = FailingStore(fail_at=3)
        report = loader.Report("f", say=lambda line: None)
        with self.assertRaises(StoreUnavailable) as raised:
            asyncio.run(loader.write_batches(store, self.pairs(4500),
                                             report))
        self.assertEqual(raised.exception.written, 2000)
        self.assertEqual(loader._outcome(Settings(), 2000),
                         "the first 2000 clients are written; loading again"
                         " replaces them")

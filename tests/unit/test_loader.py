import asyncio
import contextlib
import io
import json
import os
import shutil
import tempfile
import tracemalloc
import unittest
from unittest import mock

from scoring_api import loader
from scoring_api.errors import StoreUnavailable
from tests.support.cases import cases


def written(text):
    """({key: value} that would be written, bad entries said) of the file
    `text`."""
    said = []
    report = loader.Report("f", say=said.append)
    source = io.BytesIO(text.encode("utf-8"))
    values = loader.check(source, report)
    if values is None:
        source.seek(0)
        values = dict(loader.good_lines(source, report))
    return values, [line[len("f: "):] for line in said
                    if line.startswith("f: ")]


def parse(text, **limits):
    """(interests by client id that would be written, bad entries said)
    of the file `text`."""
    values, said = written(text)
    return {int(key[2:]): json.loads(value)
            for key, value in values.items()}, said


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
        ('{"client_id": 3, "interests": [], "interests": ["x"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        ('{"client_id": 3, "interests": [], "tags": ["x"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        ('{"id": 3, "tags": ["x"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        # The names of the two keys, but as values.
        ('["client_id", "interests"]',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        ('{"id": 3, "interests": ["client_id"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        ('{"client_id": 3, "tags": ["interests"]}',
         'line 2: expected {"client_id": N, "interests": [...]}'),
        # Python's own limits: recursion, and digits an int() may take.
        ("[" * 100000, "line 2: not valid JSON"),
        ('{"client_id": %s, "interests": []}' % ("9" * 5000),
         "line 2: client_id must be a non-negative integer below 2**64"),
        ('{"client_id": 3, "interests": [%s]}' % ("1" * 5000),
         "line 2: interests of client 3 must be a list of strings"),
        ("x" * (loader.MAX_LINE_BYTES + 1),
         "line 2: longer than %d bytes" % loader.MAX_LINE_BYTES),
        # Skipped to its end, though that takes more than one read.
        ("x" * (5 * 2 ** 19), "line 2: longer than 1048576 bytes"),
    ])
    def test_a_bad_line_is_reported_with_its_number(self, case):
        bad_line, message = case
        self.assertEqual(
            parse('{"client_id": 1, "interests": ["cars"]}\n' + bad_line
                  + '\n{"client_id": 4, "interests": []}\n'),
            ({1: ["cars"], 4: []}, [message]))

    @cases(['{"1": ["a"], "x": ["b"]}', '{"x": ["b"], "1": ["a"]}'])
    def test_a_bad_key_of_an_object_is_reported_by_name(self, text):
        self.assertEqual(parse(text), ({1: ["a"]}, [
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

    @cases([(2 ** 20, "\n", []), (2 ** 20, "", []),  # the last line
            (2 ** 20 + 1, "\n", ["line 2: longer than 1048576 bytes"])])
    def test_a_line_of_up_to_1_mib_is_an_entry(self, case):
        size, end, bad = case
        head = '{"client_id": 2, "interests": ["'
        line = head + "x" * (size - len(head) - 3) + '"]}'
        self.assertEqual(len(line), size)
        interests, said = parse('{"client_id": 1, "interests": []}\n'
                                + line + end)
        self.assertEqual((sorted(interests), said),
                         ([1] if bad else [1, 2], bad))

    @cases(['{"client_id": 18446744073709551615, "interests": ["a"]}',
            # An escape: read by the full parser, not the fast one.
            '{"client_id": 18446744073709551615, "interests": ["\\u0061"]}',
            '{"18446744073709551615": ["a"]}'])
    def test_the_largest_client_id_the_api_can_ask_for_loads(self, text):
        self.assertEqual(parse(text), ({2 ** 64 - 1: ["a"]}, []))


class StoredValueTest(unittest.TestCase):
    @cases(['{"client_id": 1, "interests": ["кино", "café", "🎸"]}\n',
            '{"1": ["кино", "café", "🎸"]}'])
    def test_interests_are_stored_as_utf8_json_unescaped(self, text):
        # Escaped, a Cyrillic letter would take 6 bytes of Redis memory
        # instead of 2.
        self.assertEqual(written(text),
                         ({"i:1": '["кино", "café", "🎸"]'}, []))


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

    def test_a_repeat_is_found_past_the_first_100000_entries(self):
        # They are a run on disk by then, read back a chunk at a time: ids
        # in the first chunk, in a later one, in the last run.
        count, repeated = 120000, [5, 1500, 99999, 110000]
        lines = ['{"client_id": %d, "interests": []}' % i
                 for i in range(count)]
        lines += ['{"client_id": %d, "interests": ["again"]}' % i
                  for i in repeated]
        values, said = written("\n".join(lines))
        self.assertEqual(said, [
            "line %d: client %d is already given at line %d" % (
                count + n + 1, client_id, client_id + 1)
            for n, client_id in enumerate(repeated)])
        self.assertEqual((len(values), values["i:1500"]), (count, "[]"))


BIG_OBJECT = "{\n" + ",\n".join('"%d": ["a"]' % i for i in range(10)) + "}"


class ClientIndexTest(unittest.TestCase):
    def test_closing_the_index_closes_its_temporary_files(self):
        index = loader.ClientIndex(run_size=2)
        for client_id in range(5):
            index.add(client_id, client_id + 1)
        runs = list(index.runs)
        self.assertEqual(len(runs), 2)
        index.close()
        self.assertEqual([run.closed for run in runs], [True, True])
        self.assertEqual(index.runs, [])

    def test_the_runs_are_merged_reading_a_chunk_of_each_at_a_time(self):
        # Bounded memory however large the file: 400000 ids, 6.4 MB in
        # runs on disk, are not read back whole.
        index = loader.ClientIndex()
        self.addCleanup(index.close)
        for client_id in range(400000):
            index.add(client_id, client_id + 1)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        self.assertEqual(list(index.duplicates()), [])
        self.assertLess(tracemalloc.get_traced_memory()[1], 6.4e6 / 2)


class BigObjectTest(unittest.TestCase):
    @cases([BIG_OBJECT, BIG_OBJECT.replace("\n", "")])
    def test_one_object_above_the_size_limit_is_refused(self, text):
        report = loader.Report("f", say=lambda line: None)
        with mock.patch.object(loader, "MAX_OBJECT_BYTES", 20):
            with self.assertRaisesRegex(loader.TooBigObject,
                                        "write a file this large as"
                                        " JSON lines"):
                loader.check(io.BytesIO(text.encode()), report)

    def test_the_limit_is_the_8_mib_its_refusal_names(self):
        head = '{"1": ["cars"], "2": []}'
        at_limit = head + " " * (8 * 2 ** 20 - len(head))
        self.assertEqual(parse(at_limit), ({1: ["cars"], 2: []}, []))
        with self.assertRaisesRegex(loader.TooBigObject,
                                    "one JSON object of more than 8 MiB"):
            parse(at_limit + " ")

    @cases([("", []), ("nope", ["line 1: not valid JSON"])])
    def test_json_lines_above_the_limit_are_read_whatever_the_first(
            self, case):
        first, bad = case
        lines = ['{"client_id": %d, "interests": ["%s"]}' % (
            client_id, "x" * 10 ** 6) for client_id in range(9)]
        interests, said = parse(first + "\n" + "\n".join(lines))
        self.assertEqual((sorted(interests), said), (list(range(9)), bad))


class FailingStore:
    """A store whose `set_many` fails from its `fail_at`-th call."""

    def __init__(self, fail_at):
        self.fail_at = fail_at
        self.batches = []

    async def set_many(self, mapping):
        if len(self.batches) + 1 >= self.fail_at:
            raise StoreUnavailable("store is unavailable")
        self.batches.append(dict(mapping))


class ProgressTest(unittest.TestCase):
    def test_checking_says_every_100000_entries_and_no_sooner(self):
        said = []
        report = loader.Report("f", say=said.append)
        loader.check(io.BytesIO(b"".join(
            b'{"client_id": %d, "interests": []}\n' % client_id
            for client_id in range(199999))), report)
        self.assertEqual(said, ["loader: 100000 entries checked"])


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

    @cases([(1, 0, 1000), (3, 2000, 3000), (5, 4000, 4500)])
    def test_a_failure_says_what_is_written_and_what_may_be(self, case):
        # The batch that failed may have landed: a timed-out MSET is
        # applied when Redis resumes.
        fail_at, written, attempted = case
        store = FailingStore(fail_at=fail_at)
        report = loader.Report("f", say=lambda line: None)
        with self.assertRaises(StoreUnavailable) as raised:
            asyncio.run(loader.write_batches(store, self.pairs(4500),
                                             report))
        self.assertEqual((raised.exception.written,
                          raised.exception.attempted), (written, attempted))


class OutcomeTest(unittest.TestCase):
    @cases([
        (0, 6, "clients 1 to 6 may be written; loading again replaces"
               " them"),
        (0, 1, "client 1 may be written; loading again replaces them"),
        (0, 2, "clients 1 to 2 may be written; loading again replaces"
               " them"),
        (2000, 3000, "the first 2000 clients are written; clients 2001 to"
                     " 3000 may be written too; loading again replaces"
                     " them"),
        (4000, 4001, "the first 4000 clients are written; client 4001 may"
                     " be written too; loading again replaces them"),
    ])
    def test_only_what_is_known_is_said(self, case):
        written, attempted, said = case
        self.assertEqual(loader.outcome(written, attempted), said)


class RegularFileTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def path(self, name):
        return os.path.join(self.directory, name)

    def test_a_regular_file_and_a_link_to_one_pass(self):
        with open(self.path("f.jsonl"), "w"):
            pass
        os.symlink(self.path("f.jsonl"), self.path("link"))
        loader.check_regular(self.path("f.jsonl"))
        loader.check_regular(self.path("link"))

    @cases([("/dev/zero", "a character device"),
            ("fifo", "a FIFO"), (".", "a directory")])
    def test_anything_else_is_refused_before_it_is_opened(self, case):
        name, kind = case
        if name == "fifo":
            os.mkfifo(self.path(name))  # opening it would wait for a writer
        with self.assertRaises(loader.NotARegularFile) as raised:
            loader.check_regular(self.path(name))
        self.assertEqual(str(raised.exception), (
            "not a regular file (%s); give a file of JSON lines or one JSON"
            " object" % kind))


NOT_UTF8_AT_LINE_3 = (b'{"client_id": 1, "interests": []}\n\n'
                      b'{"client_id": 2, "interests": ["caf\xe9"]}\n')


class MainTest(unittest.TestCase):
    """The loader's exit codes and its one line, nothing ever written: the
    configured Redis does not exist (port 1, refused at once)."""

    ENVIRON = {"SCORING_STORE_URL": "redis://127.0.0.1:1/0"}

    def run_loader(self, *argv):
        """(exit code, standard output, standard error)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = loader.main(list(argv), self.ENVIRON)
        return code, out.getvalue(), err.getvalue()

    def file_of(self, content):
        """The path of a new file of `content`, text (UTF-8) or bytes."""
        handle = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
        with handle:
            handle.write(content if isinstance(content, bytes)
                         else content.encode("utf-8"))
        self.addCleanup(os.unlink, handle.name)
        return handle.name

    @cases(["", "\n  \n", "{}"])
    def test_a_file_of_no_client_is_an_error(self, text):
        path = self.file_of(text)
        self.assertEqual(self.run_loader(path), (
            loader.EXIT_EMPTY, "", "loader: %s: holds no client; nothing"
            " loaded (--allow-empty accepts an empty file)\n" % path))
        self.assertEqual(loader.EXIT_EMPTY, 4)

    def test_allow_empty_accepts_it(self):
        code, out, err = self.run_loader(self.file_of(""), "--allow-empty")
        self.assertEqual((code, err), (loader.EXIT_OK, ""))
        self.assertEqual(out, "loaded interests of 0 clients into"
                              " standalone redis://127.0.0.1:1/0\n")

    def test_a_missing_file_is_refused_in_one_line(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "interests.jsonl")
        self.assertEqual(self.run_loader(path), (
            loader.EXIT_USAGE, "", "loader: [Errno 2] No such file or"
            " directory: %r\n" % path))

    def test_bad_entries_load_nothing_and_say_how_many(self):
        path = self.file_of('{"client_id": 1, "interests": []}\nnope\n')
        self.assertEqual(self.run_loader(path), (
            loader.EXIT_BAD_INPUT, "", "%s: line 2: not valid JSON\n"
            "loader: 1 bad entries; nothing loaded (--partial loads the 1"
            " good ones)\n" % path))

    def test_a_store_that_is_down_exits_3_saying_what_may_be_written(self):
        code, out, err = self.run_loader(self.file_of(
            '{"client_id": 1, "interests": []}\n'))
        self.assertEqual((code, out), (loader.EXIT_STORE, ""))
        self.assertEqual(err.splitlines()[-1], (
            "loader: store is unavailable at standalone redis://127.0.0.1:1/0;"
            " client 1 may be written; loading again replaces them"), err)

    def test_dev_zero_is_refused_in_one_line(self):
        self.assertEqual(self.run_loader("/dev/zero"), (
            loader.EXIT_USAGE, "", "loader: /dev/zero: not a regular file (a"
            " character device); give a file of JSON lines or one JSON"
            " object\n"))

    def test_ctrl_c_while_checking_is_one_line_and_nothing_loaded(self):
        path = self.file_of('{"client_id": 1, "interests": []}\n')
        with mock.patch.object(loader, "check",
                               side_effect=KeyboardInterrupt):
            self.assertEqual(self.run_loader(path), (
                loader.EXIT_USAGE, "",
                "loader: interrupted; nothing loaded\n"))

    @cases([
        (b'{"client_id": 1, "interests": ["caf\xe9"]}\n', 1),
        (b'\n{"client_id": 1, "interests": ["caf\xe9"]}\n', 2),
        (NOT_UTF8_AT_LINE_3, 3),
        # Over 8 MiB it is read a line at a time, not decoded whole.
        (NOT_UTF8_AT_LINE_3 + b"\n" * (9 * 2 ** 20), 3),
    ])
    def test_a_file_that_is_not_utf8_is_refused_naming_the_line(self, case):
        content, line = case
        path = self.file_of(content)
        self.assertEqual(self.run_loader(path), (
            loader.EXIT_USAGE, "",
            "loader: %s: line %d is not UTF-8 text\n" % (path, line)))

    def test_a_file_changed_between_the_two_passes_is_refused(self):
        path = self.file_of('{"client_id": 1, "interests": []}\n')
        check = loader.check

        def check_then_change(source, report):
            values = check(source, report)
            with open(path, "wb") as changed:  # by another program
                changed.write(NOT_UTF8_AT_LINE_3)
            return values

        with mock.patch.object(loader, "check",
                               side_effect=check_then_change):
            self.assertEqual(self.run_loader(path), (
                loader.EXIT_USAGE, "",
                "loader: %s: line 3 is not UTF-8 text\n" % path))

    def test_ctrl_c_while_writing_is_one_line_saying_what_stays(self):
        path = self.file_of('{"client_id": 1, "interests": []}\n')
        with mock.patch.object(loader, "write_batches",
                               side_effect=KeyboardInterrupt):
            self.assertEqual(self.run_loader(path), (
                loader.EXIT_USAGE, "", "loader: interrupted; the batches"
                " written stay (loading again replaces them)\n"))

    def test_the_docstring_names_every_exit_code(self):
        for name, code in vars(loader).items():
            if name.startswith("EXIT_"):
                self.assertIn(" %d " % code, loader.__doc__, name)

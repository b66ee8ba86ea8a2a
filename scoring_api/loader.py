"""Load clients' interests into the store.

    python -m scoring_api.loader FILE [--config config.ini] [--partial]
                                      [--allow-empty]

FILE holds JSON lines, `{"client_id": 1, "interests": ["cars", "pets"]}`,
or one JSON object, `{"1": ["cars", "pets"], "2": []}` (a file of at most
MAX_OBJECT_BYTES; a larger one must be JSON lines).

JSON lines are read twice, a line at a time, so that memory stays bounded
whatever the file's size: the first pass checks every entry and reports
each bad one with its line number; the second writes, in batches of
BATCH_SIZE clients (one MSET each; in a Redis Cluster one per slot). A bad
entry means nothing is written, unless --partial asks to write the good
ones. Progress goes to standard error every PROGRESS_EVERY entries. When
the store fails half-way, the batches already written stay: loading the
file again replaces them. The file must not change while it loads.

FILE must be a regular file (not a directory, device or FIFO) holding at
least one client, unless --allow-empty says an empty one is fine.

Exit codes: 0 loaded; 1 bad entries (nothing loaded, or with --partial
the good ones); 2 the file or config cannot be used; 3 the store failed
(the message says which clients are written and which may be); 4 the
file holds no client.
"""
import argparse
import array
import asyncio
import heapq
import json
import logging
import os
import stat
import sys
import tempfile

import orjson

from scoring_api import config, logs
from scoring_api.errors import StoreUnavailable
from scoring_api.scoring import interests_key
from scoring_api.store import Store, describe

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_STORE, EXIT_EMPTY = 0, 1, 2, 3, 4
# The largest id a clients_interests request can carry (its JSON parser
# reads integers up to 64 bits), and its number of digits.
MAX_CLIENT_ID = 2 ** 64 - 1
MAX_ID_DIGITS = len(str(MAX_CLIENT_ID))
BATCH_SIZE = 1000  # clients a MSET
PROGRESS_EVERY = 100000  # entries between two progress lines
# A file of one JSON object is parsed whole: its size bounds the memory.
MAX_OBJECT_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024  # a longer line is a bad entry
# Entries of the duplicate check kept in memory before a sorted run of
# them goes to a temporary file.
RUN_SIZE = 100000
READ_PAIRS = 8192  # (id, line) pairs read from a run at a time
LINE_ENTRY = 'expected {"client_id": N, "interests": [...]}'
NOT_AN_ID = "client_id must be a non-negative integer below 2**64"


class _TooLong:
    """An integer of more digits than any client id (int() of it may
    exceed Python's limit of digits)."""


def _parse_int(text):
    return int(text) if len(text) <= MAX_ID_DIGITS + 1 else _TooLong()


class _Object(dict):
    """A JSON object that remembers the keys it was given twice (json
    keeps the last silently)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        seen = set()
        self.repeated = [key for key, _ in pairs
                         if key in seen or seen.add(key)]


def _json(text):
    """The JSON value of `text`; ValueError when it is not JSON (nested
    too deeply included)."""
    try:
        return json.loads(text, object_pairs_hook=_Object,
                          parse_int=_parse_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _is_text(item):
    """A string Redis and the API can carry: no lone surrogate."""
    if not isinstance(item, str):
        return False
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_entry(client_id, interests):
    """Why (client_id, interests) cannot be loaded, or None."""
    if (not isinstance(client_id, int) or isinstance(client_id, bool)
            or not 0 <= client_id <= MAX_CLIENT_ID):
        return NOT_AN_ID
    if (not isinstance(interests, list)
            or not all(map(_is_text, interests))):
        return "interests of client %d must be a list of strings" % client_id
    return None


class NotText(Exception):
    """The file is not UTF-8: `line` is the first line that is not."""

    def __init__(self, line):
        super().__init__("line %d is not UTF-8 text" % line)
        self.line = line


def read_lines(source):
    """(line number, bytes) of each non-blank line of the binary file
    `source`; bytes None for a line longer than MAX_LINE_BYTES."""
    number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # the rest of it
                raw = source.readline(MAX_LINE_BYTES)
            yield number, None
        elif not raw.isspace():
            yield number, raw


def _plain_entry(raw):
    """The entry of a line written plainly, as most are (no escape, each
    key once), by the fast parser; None for any other line."""
    if (b"\\" in raw or raw.count(b'"client_id"') != 1
            or raw.count(b'"interests"') != 1):
        return None
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:  # not UTF-8 too: told by the slow way
        return None
    if (type(entry) is dict and len(entry) == 2
            and type(entry.get("client_id")) is int
            and type(entry.get("interests")) is list):
        return entry
    return None


def read_entry(raw):
    """(client id, interests, why not) of one JSON line: `why not` None
    for a good entry, else what is wrong. NotText for one not UTF-8."""
    entry = _plain_entry(raw)
    if entry is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotText(0) from None
        try:
            entry = _json(text)
        except ValueError:
            return None, None, "not valid JSON"
        if not isinstance(entry, dict) or entry.repeated or set(
                entry) != {"client_id", "interests"}:
            return None, None, LINE_ENTRY
    client_id, interests = entry["client_id"], entry["interests"]
    why_not = check_entry(client_id, interests)
    if why_not:
        return None, None, why_not
    return client_id, interests, None


def read_entries(source):
    """(line number, client id, interests, why not) of each entry of the
    JSON-lines file `source` (see `read_entry`)."""
    for number, raw in read_lines(source):
        if raw is None:
            yield number, None, None, "longer than %d bytes" % MAX_LINE_BYTES
            continue
        try:
            yield (number, *read_entry(raw))
        except NotText:
            raise NotText(number) from None


class ClientIndex:
    """The (client id, line) of every good entry, to find the ids given
    twice in bounded memory: sorted runs of RUN_SIZE pairs go to
    temporary files, merged at the end."""

    def __init__(self, run_size=None):
        self.run_size = run_size or RUN_SIZE
        self.pending = []
        self.runs = []

    def add(self, client_id, line):
        self.pending.append((client_id, line))
        if len(self.pending) >= self.run_size:
            self._spill()

    def _spill(self):
        self.pending.sort()
        pairs = array.array("Q")
        for pair in self.pending:
            pairs.extend(pair)
        run = tempfile.TemporaryFile()
        pairs.tofile(run)
        run.seek(0)
        self.runs.append(run)
        self.pending = []

    @staticmethod
    def _read(run):
        while True:
            pairs = array.array("Q")
            pairs.frombytes(run.read(READ_PAIRS * 2 * pairs.itemsize))
            if not pairs:
                return
            yield from zip(pairs[::2], pairs[1::2])

    def duplicates(self):
        """(client id, first line, later line) of each id given again, by
        client id."""
        if self.runs:
            self._spill()
            pairs = heapq.merge(*map(self._read, self.runs))
        else:
            pairs = sorted(self.pending)
        previous, first = None, None
        for client_id, line in pairs:
            if client_id == previous:
                yield client_id, first, line
            else:
                previous, first = client_id, line

    def close(self):
        for run in self.runs:
            run.close()
        self.runs = []


class Report:
    """What the checking pass found: bad entries are said at once (on
    standard error unless `say` is given), only their count is kept."""

    def __init__(self, name, say=None):
        self.name = name
        self.say = say or (lambda line: print(line, file=sys.stderr))
        self.good = 0
        self.bad = 0
        self.skipped_lines = set()  # the later lines of repeated ids

    def bad_entry(self, where, message):
        self.bad += 1
        self.say("%s: %s: %s" % (self.name, where, message))

    def progress(self, count, what):
        if count % PROGRESS_EVERY == 0:
            self.say("loader: %d entries %s" % (count, what))


def check_lines(source, report):
    """The first pass over a JSON-lines file: every entry checked."""
    index = ClientIndex()
    try:
        count = 0
        for number, client_id, _, why_not in read_entries(source):
            count += 1
            if why_not:
                report.bad_entry("line %d" % number, why_not)
            else:
                report.good += 1
                index.add(client_id, number)
            report.progress(count, "checked")
        for client_id, first, later in index.duplicates():
            report.good -= 1
            report.bad_entry("line %d" % later, "client %d is already given"
                             " at line %d" % (client_id, first))
            report.skipped_lines.add(later)
    finally:
        index.close()


def good_lines(source, report):
    """The second pass: {key: value} of each good entry, in file order."""
    for number, client_id, interests, why_not in read_entries(source):
        if why_not is None and number not in report.skipped_lines:
            yield interests_key(client_id), _value(interests)


def _value(interests):
    return json.dumps(interests, ensure_ascii=False)


def read_object(text, report):
    """{key: value} of the good entries of one JSON object of
    interests by client id, or None when `text` is not one."""
    try:
        whole = _json(text)
    except ValueError:
        return None
    if not isinstance(whole, dict) or "client_id" in whole:
        return None
    for key in whole.repeated:
        report.bad_entry("key %s" % json.dumps(key),
                         "given twice in the object")
    given_at = {}
    values = {}
    for key, interests in whole.items():
        if key in whole.repeated:
            continue  # which of its values was meant is unknown
        where = "key %s" % json.dumps(key)
        client_id = (int(key) if key.isascii() and key.isdigit()
                     and len(key) <= MAX_ID_DIGITS else key)
        why_not = check_entry(client_id, interests)
        if not why_not and client_id in given_at:
            why_not = "client %d is already given at %s" % (
                client_id, given_at[client_id])
        if why_not:
            report.bad_entry(where, why_not)
            continue
        given_at[client_id] = where
        values[interests_key(client_id)] = _value(interests)
    report.good = len(values)
    return values


async def write_batches(store, pairs, report):
    """Write the (key, value) `pairs` in MSETs of BATCH_SIZE; returns how
    many were written. StoreUnavailable carries how many are known to be
    written as `written`, and how many may be as `attempted`: a batch that
    failed may have landed (a timed-out MSET is applied when Redis
    resumes; a cluster's is one per slot)."""
    written = 0
    batch = {}
    try:
        for key, value in pairs:
            batch[key] = value
            if len(batch) >= BATCH_SIZE:
                await store.set_many(batch)
                written += len(batch)
                batch = {}
                report.progress(written, "written")
        if batch:
            await store.set_many(batch)
            written += len(batch)
    except StoreUnavailable as error:
        error.written = written
        error.attempted = written + len(batch)
        raise
    return written


async def _write(settings, pairs, report):
    store = Store.from_settings(settings)
    try:
        return await write_batches(store, pairs, report)
    finally:
        await store.close()


class NotARegularFile(Exception):
    """FILE is a directory, a device, a FIFO or a socket: reading it could
    block or never end."""

    KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character"
             " device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))

    def __init__(self, mode):
        kind = next((name for test, name in self.KINDS if test(mode)),
                    "something else")
        super().__init__("not a regular file (%s); give a file of JSON"
                         " lines or one JSON object" % kind)


def check_regular(path):
    """NotARegularFile unless `path` is a regular file (symbolic links
    followed); OSError when it cannot be looked at. Before any open: a
    FIFO's would wait for a writer."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotARegularFile(mode)


class TooBigObject(Exception):
    """A file of one JSON object larger than MAX_OBJECT_BYTES."""

    def __init__(self):
        super().__init__(
            "one JSON object of more than %d MiB: write a file this large as"
            ' JSON lines, {"client_id": N, "interests": [...]} a line'
            % (MAX_OBJECT_BYTES // 2 ** 20))


def check(source, report):
    """The first pass over the binary file `source`: {key: value} of a
    one-object file, or None for JSON lines (the file is then read again
    by `good_lines`). NotText, TooBigObject or OSError when it cannot be
    read."""
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    if size <= MAX_OBJECT_BYTES:
        data = source.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NotText(data.count(b"\n", 0, error.start) + 1) from None
        values = read_object(text, report)
        if values is not None:
            return values
    elif _starts_an_object(source):
        raise TooBigObject()
    source.seek(0)
    check_lines(source, report)
    return None


def _starts_an_object(source):
    """The first line of `source` opens one JSON object of interests by
    client id, not a JSON line."""
    first = source.readline(MAX_LINE_BYTES).strip()
    if first == b"{":  # an object written over many lines
        return True
    try:
        entry = _json(first.decode("utf-8", "replace"))
    except ValueError:
        return False
    return isinstance(entry, dict) and "client_id" not in entry


def main(argv=None, environ=None):
    parser = argparse.ArgumentParser(
        prog="python -m scoring_api.loader",
        description="Load clients' interests into the store.")
    parser.add_argument("file", help="JSON lines or one JSON object")
    parser.add_argument("--config", metavar="FILE",
                        help="config.ini naming the store")
    parser.add_argument("--partial", action="store_true",
                        help="write the good entries even if some are bad")
    parser.add_argument("--allow-empty", action="store_true",
                        help="a file that holds no client is fine (exit 0)")
    args = parser.parse_args(argv)
    logs.setup_logging(logging.WARNING)
    report = Report(args.file)
    try:
        settings = config.load_settings(args.config, environ)
        check_regular(args.file)
        with open(args.file, "rb") as source:
            values = check(source, report)
    except (config.ConfigError, OSError) as error:
        print("loader: %s" % error, file=sys.stderr)
        return EXIT_USAGE
    except (NotARegularFile, NotText, TooBigObject) as error:
        print("loader: %s: %s" % (args.file, error), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loader: interrupted; nothing loaded", file=sys.stderr)
        return EXIT_USAGE
    if report.bad and not args.partial:
        print("loader: %d bad entries; nothing loaded (--partial loads the"
              " %d good ones)" % (report.bad, report.good), file=sys.stderr)
        return EXIT_BAD_INPUT
    if not (report.good or report.bad or args.allow_empty):
        print("loader: %s: holds no client; nothing loaded (--allow-empty"
              " accepts an empty file)" % args.file, file=sys.stderr)
        return EXIT_EMPTY
    try:
        if values is not None:
            written = asyncio.run(_write(settings, values.items(), report))
        else:
            with open(args.file, "rb") as source:
                written = asyncio.run(_write(
                    settings, good_lines(source, report), report))
    except StoreUnavailable as error:
        print("loader: %s at %s; %s" % (
            error, describe(settings.store),
            outcome(error.written, error.attempted)), file=sys.stderr)
        return EXIT_STORE
    except (OSError, NotText) as error:  # the file changed under us
        print("loader: %s: %s" % (args.file, error), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loader: interrupted; the batches written stay (loading again"
              " replaces them)", file=sys.stderr)
        return EXIT_USAGE
    print("loaded interests of %d clients into %s" % (
        written, describe(settings.store)))
    return EXIT_BAD_INPUT if report.bad else EXIT_OK


def outcome(written, attempted):
    """What is known of the store after a failure: the first `written`
    clients are in it, the next ones up to `attempted` may be."""
    maybe = ("clients %d to %d may be written" % (written + 1, attempted)
             if attempted > written + 1 else
             "client %d may be written" % attempted)
    if written:
        return ("the first %d clients are written; %s too; loading again"
                " replaces them" % (written, maybe))
    return "%s; loading again replaces them" % maybe


if __name__ == "__main__":
    sys.exit(main())

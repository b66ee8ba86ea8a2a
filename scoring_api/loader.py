"""Load clients' interests into the store.

    python -m scoring_api.loader FILE [--config config.ini] [--partial]

FILE holds JSON lines, `{"client_id": 1, "interests": ["cars", "pets"]}`,
or one JSON object, `{"1": ["cars", "pets"], "2": []}`. Every entry is
checked first; any bad entry is reported with its line number and nothing
is written, unless --partial asks to write the good ones. The writing is a
single MSET: all of it lands, or none (in a Redis Cluster, one MSET per
slot: all or none of each slot's clients).
"""
import argparse
import asyncio
import json
import logging
import sys

from scoring_api import config, logs
from scoring_api.errors import StoreUnavailable
from scoring_api.scoring import interests_key
from scoring_api.store import Store, describe

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3
# The largest id a clients_interests request can carry (its JSON parser
# reads integers up to 64 bits).
MAX_CLIENT_ID = 2 ** 64 - 1


class _Object(dict):
    """A JSON object that remembers the keys it was given twice (json
    keeps the last silently)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        seen = set()
        self.repeated = [key for key, _ in pairs
                         if key in seen or seen.add(key)]


def _json(text):
    return json.loads(text, object_pairs_hook=_Object)


def _is_text(item):
    """A string Redis and the API can carry: no lone surrogate."""
    if not isinstance(item, str):
        return False
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Entries:
    """What a file holds: interests by client id, and its bad entries."""

    def __init__(self):
        self.interests = {}
        self.errors = []  # (where, message)
        self.given_at = {}

    def add(self, where, client_id, interests):
        """Keep one entry, or note why not; `where`: "line 3", 'key "x"'."""
        if (not isinstance(client_id, int) or isinstance(client_id, bool)
                or not 0 <= client_id <= MAX_CLIENT_ID):
            self.errors.append(
                (where, "client_id must be a non-negative integer"
                 " below 2**64"))
        elif (not isinstance(interests, list)
              or not all(map(_is_text, interests))):
            self.errors.append(
                (where, "interests of client %d must be a list of strings"
                 % client_id))
        elif client_id in self.interests:
            self.errors.append((where, "client %d is already given at %s"
                                % (client_id, self.given_at[client_id])))
        else:
            self.interests[client_id] = interests
            self.given_at[client_id] = where


def parse_interests(text):
    """`Entries` of a JSON-lines text or of one JSON object."""
    entries = Entries()
    try:
        whole = _json(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "client_id" not in whole:
        for key in whole.repeated:
            entries.errors.append(("key %s" % json.dumps(key),
                                   "given twice in the object"))
        for key, interests in whole.items():
            if key in whole.repeated:
                continue  # which of its values was meant is unknown
            client_id = int(key) if key.isascii() and key.isdigit() else key
            entries.add("key %s" % json.dumps(key), client_id, interests)
        return entries
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = _json(line)
        except ValueError:
            entries.errors.append(("line %d" % number, "not valid JSON"))
            continue
        if not isinstance(entry, dict) or entry.repeated or set(entry) != {
                "client_id", "interests"}:
            entries.errors.append(("line %d" % number,
                                   'expected {"client_id": N, "interests":'
                                   ' [...]}'))
            continue
        entries.add("line %d" % number, entry["client_id"],
                    entry["interests"])
    return entries


async def load(store, interests):
    """Write `interests` ({client id: [str]}) to `store` in one MSET (one
    per slot in a cluster)."""
    await store.set_many({
        interests_key(client_id): json.dumps(values, ensure_ascii=False)
        for client_id, values in interests.items()})


async def _load_with_settings(settings, interests):
    store = Store.from_settings(settings)
    try:
        await load(store, interests)
    finally:
        await store.close()


def main(argv=None, environ=None):
    parser = argparse.ArgumentParser(
        prog="python -m scoring_api.loader",
        description="Load clients' interests into the store.")
    parser.add_argument("file", help="JSON lines or one JSON object")
    parser.add_argument("--config", metavar="FILE",
                        help="config.ini naming the store")
    parser.add_argument("--partial", action="store_true",
                        help="write the good entries even if some are bad")
    args = parser.parse_args(argv)
    logs.setup_logging(logging.WARNING)
    try:
        settings = config.load_settings(args.config, environ)
        with open(args.file, "rb") as source:
            data = source.read()
        entries = parse_interests(data.decode("utf-8"))
    except (config.ConfigError, OSError) as error:
        print("loader: %s" % error, file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as error:
        print("loader: %s: line %d is not UTF-8 text" % (
            args.file, data.count(b"\n", 0, error.start) + 1),
            file=sys.stderr)
        return EXIT_USAGE
    for where, message in entries.errors:
        print("%s: %s: %s" % (args.file, where, message), file=sys.stderr)
    if entries.errors and not args.partial:
        print("loader: %d bad entries; nothing loaded (--partial loads the"
              " %d good ones)" % (len(entries.errors),
                                  len(entries.interests)), file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_load_with_settings(settings, entries.interests))
    except StoreUnavailable as error:
        # A cluster's MSET is one per slot: some slots may have landed.
        outcome = ("some slots may be written; loading again replaces them"
                   if settings.store.mode == "cluster" else "nothing loaded")
        print("loader: %s at %s; %s" % (
            error, describe(settings.store), outcome), file=sys.stderr)
        return EXIT_STORE
    print("loaded interests of %d clients into %s" % (
        len(entries.interests), describe(settings.store)))
    return EXIT_BAD_INPUT if entries.errors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

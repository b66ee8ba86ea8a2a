"""The instructions one request costs, counted by callgrind.

    ./run.sh bench --instructions [--rounds N] [--requests N] [--warm-up N]
                   [--only ROW ...] [--under-load] [--against CHECKOUT]
                   [--dumps DIR]
    ./run.sh bench --instructions --list

Each server runs under `valgrind --tool=callgrind`, which counts the
user-space instructions the process executes: a count that does not
depend on how busy the machine is, where wall-clock figures swing by a
third. For each row, a plain client (outside valgrind) sends a warm-up of
requests on one keep-alive connection (it pays for connecting to Redis,
first imports and caches), then `callgrind_control -z` zeroes the
counters, the client sends N requests, one at a time, and
`callgrind_control -d` dumps them: the dump's instructions over N is the
cost of one request.

Timers of the server (the log flush every second, the breaker's probe)
also run while the requests are sent, and under valgrind a request takes
about 50 times its usual wall time. After its rows each server sits idle
for as long as a row took and is counted again: that idle rate, times a
row's seconds, is taken off the row ("idle" gives its share).

Every round starts every server anew (a new process, so a new hash seed);
a row's figure is its median over the rounds, "spread" the max - min of
the rounds over that median. Ratios are bare/row: bare Tornado answering a
fixed body (bench/bare.py) over the row, 1.0 = as cheap as the bare
handler. The service runs with config.ini, its access log at INFO to a
file as in production, and longer Redis timeouts (valgrind slows the
process, not Redis; the code path is the same).

Two workers: the service with workers = 2; the client keeps one
connection to each worker (found through /proc: which process holds the
server's end of the connection) and sends N requests to each, back to
back as the one-process rows get them, so each worker's count is over
exactly N requests of the same pattern.

--against CHECKOUT: the same service rows for another checkout's service
(e.g. a git worktree of the commit before a change), started beside this
one's in every round: a change measured as before and after. The rows go
to bench/results/instructions.json (instructions-against.json with
--against).
"""
import argparse
import collections
import glob
import http.client
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench.run import (INTEREST_IDS, PHONE_EMAIL, load_interests, machine,
                       progress)
from bench.service import ROOT, spawn_service, stop, wait_until_answering
from bench.wrk import PHONE_PLACEHOLDER
from tests.support.helpers import api_request
from tests.support.layers import RedisServer, free_port

RESULTS = os.path.join(ROOT, "bench", "results", "instructions.json")
AGAINST_RESULTS = os.path.join(ROOT, "bench", "results",
                               "instructions-against.json")
ROUNDS = 3
REQUESTS = 300
WARM_UP = 200
# Python starts about 50 times slower under callgrind; a busy machine
# slows it more.
START_TIMEOUT_SECONDS = 300.0
REQUEST_TIMEOUT_SECONDS = 60.0
DUMP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
# Connections opened at most to find one held by each of two workers.
WORKER_CONNECTION_ATTEMPTS = 64
# Redis answers at its own speed, but the service reads the answer at
# valgrind's: the defaults (0.2 s for the cache) would trip on a busy
# machine, turning hits into misses.
SLOW_PROCESS_SETTINGS = {
    "SCORING_STORE_CONNECT_TIMEOUT": "10", "SCORING_STORE_TIMEOUT": "10",
    "SCORING_CACHE_CONNECT_TIMEOUT": "10", "SCORING_CACHE_TIMEOUT": "10"}
# Warm-up phones of the miss script: one counter for the whole run, so
# that no request repeats a phone that an earlier round made a hit.
FIRST_PHONE = 8 * 10 ** 9

BARE = "bare"
THIS, BEFORE = "this", "before"  # the checkouts: ours, --against's

# name -> (request body, expected status)
SCRIPTS = {
    "hit": (api_request("online_score", PHONE_EMAIL), 200),
    "miss": (api_request("online_score", {
        "phone": PHONE_PLACEHOLDER, "email": "bench@example.com"}), 200),
    "10 ids": (api_request("clients_interests",
                           {"client_ids": list(range(10))}), 200),
    "100 ids": (api_request("clients_interests",
                            {"client_ids": list(range(INTEREST_IDS))}), 200),
    "invalid": (api_request("online_score", {"phone": "123"}), 422),
    "bad token": (api_request("online_score", PHONE_EMAIL, token="0" * 128),
                  403),
}

# server -> (SCORING_* settings over config.ini, workers)
SERVICES = {
    "service": ({}, 1),
    "service, no local tier": ({"SCORING_CACHE_LOCAL_SIZE": "0"}, 1),
    "service, cache dead": ({"SCORING_CACHE_URL": None}, 1),  # a free port
    "service x2": ({"SCORING_SERVER_WORKERS": "2"}, 2),
}
HIT_ROW = "score cache hit"
SHORT_NAMES = {HIT_ROW: "hit"}  # in the target column


class AtLeast(collections.namedtuple("AtLeast", "ratio")):
    """bare/row at least `ratio`."""

    def __str__(self):
        return ">= %.2f" % self.ratio

    def check(self, result, results):
        return result["bare_ratio"] >= self.ratio


class NoDearerThan(collections.namedtuple("NoDearerThan", "row")):
    """No more instructions a request than the row `row`."""

    def __str__(self):
        return "instr <= %s" % SHORT_NAMES.get(self.row, self.row)

    def check(self, result, results):
        return result["instructions"] <= results[self.row]["instructions"]


class EachWorkerWithin(collections.namedtuple("EachWorkerWithin",
                                              "row factor")):
    """Every worker's instructions a request at most `factor` times the
    single process's of `row`."""

    def __str__(self):
        return "each <= %.2fx %s" % (self.factor,
                                     SHORT_NAMES.get(self.row, self.row))

    def check(self, result, results):
        single = results[self.row]["instructions"]
        return max(result["workers"]) <= self.factor * single


class Row(collections.namedtuple("Row", "name server script target")):
    """A line of the table: `script` sent to `server`."""


ROWS = [
    Row(BARE, BARE, "hit", None),
    # The hot score in production: config.ini's local tier answers it.
    Row(HIT_ROW, "service", "hit", AtLeast(0.75)),
    Row("score Redis hit", "service, no local tier", "hit", None),
    Row("score cache miss", "service", "miss", None),
    Row("interests 10 ids", "service", "10 ids", AtLeast(0.55)),
    Row("interests 100 ids", "service", "100 ids", None),
    Row("invalid 422", "service", "invalid", NoDearerThan(HIT_ROW)),
    Row("bad token 403", "service", "bad token", NoDearerThan(HIT_ROW)),
    Row("score cache dead", "service, cache dead", "hit", None),
    Row("2 workers", "service x2", "hit", EachWorkerWithin(HIT_ROW, 1.05)),
]
NAMES = [row.name for row in ROWS]


# -- callgrind's files and /proc: the pure parts ---------------------------

def dump_instructions(text):
    """Instructions (the Ir event) of one callgrind dump.

    From its `summary:` line: the `totals:` line of the first dump after a
    zeroing also counts the calls that were in progress at the zeroing
    (measured: 2 % more than `summary:` there, equal in later dumps)."""
    events = summary = totals = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "events":
            events = value.split()
        elif key == "summary":
            summary = [int(cost) for cost in value.split()]
        elif key == "totals":
            totals = [int(cost) for cost in value.split()]
    costs = summary if summary is not None else totals
    if events is None or costs is None or "Ir" not in events:
        raise ValueError("not a callgrind dump with an Ir count")
    index = events.index("Ir")
    return costs[index] if index < len(costs) else 0


def latest_dump(base, paths):
    """Of `paths`, the dump `base`.N with the highest N (callgrind names
    a process's dumps PATTERN.PID.1, .2, ...), or None."""
    numbered = [(int(path[len(base) + 1:]), path) for path in paths
                if path.startswith(base + ".")
                and path[len(base) + 1:].isdigit()]
    return max(numbered)[1] if numbered else None


def _port_of(address):
    return int(address.rsplit(":", 1)[1], 16)


def server_socket_inode(tcp_table, server_port, client_port):
    """The inode of the server's end of the connection from `client_port`
    to `server_port`, read from the text of /proc/net/tcp; None when
    there is no such connection."""
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and _port_of(fields[1]) == server_port \
                and _port_of(fields[2]) == client_port:
            return int(fields[9])
    return None


def per_request(instructions, seconds, idle_per_second, requests):
    """Instructions a request, less what the idle server would have spent
    in `seconds`; and that idle share of `instructions`."""
    idle = min(instructions, idle_per_second * seconds)
    return ((instructions - idle) / requests,
            idle / instructions if instructions else 0.0)


def spread(values):
    """(max - min) / median."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


# -- processes -------------------------------------------------------------

def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def _socket_owner(inode, pids):
    """The one of `pids` with a descriptor on the socket `inode`."""
    target = "socket:[%d]" % inode
    for pid in pids:
        directory = "/proc/%d/fd" % pid
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(os.path.join(directory, name)) == target:
                    return pid
            except OSError:
                continue
    return None


def _tcp_table():
    with open("/proc/net/tcp") as table:
        return table.read()


class Client:
    """One keep-alive connection, one request at a time."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS)
        self.connection.connect()
        self.local_port = self.connection.sock.getsockname()[1]

    def post(self, body):
        self.connection.request("POST", "/method/", body,
                                {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self):
        self.connection.close()


class Bodies:
    """The request bodies of each script; the miss script's phones are
    new on every request of the run."""

    def __init__(self):
        self.phones = itertools.count(FIRST_PHONE)
        self.fixed = {name: json.dumps(body).encode()
                      for name, (body, _) in SCRIPTS.items()}

    def next(self, script):
        body = self.fixed[script]
        if script == "miss":
            body = body.replace(PHONE_PLACEHOLDER.encode(),
                                b"7%010d" % next(self.phones))
        return body


class Server:
    """A server under callgrind: its process, port and dumps."""

    def __init__(self, name, checkout, root, redis_url, workdir):
        self.name = name
        self.checkout = checkout
        self.workers = SERVICES[name][1] if name in SERVICES else 1
        self.port = free_port()
        label = re.sub(r"\W+", "-", "%s-%s" % (checkout, name))
        self.out_pattern = os.path.join(workdir, "callgrind.%s" % label)
        prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                  "--callgrind-out-file=%s.%%p" % self.out_pattern]
        self.valgrind_log = open(os.path.join(workdir, label + ".valgrind"),
                                 "w")
        if name == BARE:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "bench.bare",
                 "--port", str(self.port)], cwd=ROOT,
                stderr=self.valgrind_log)
        else:
            settings = dict(SLOW_PROCESS_SETTINGS, **SERVICES[name][0])
            if "SCORING_CACHE_URL" in settings:  # nothing listens there
                settings["SCORING_CACHE_URL"] = \
                    "redis://127.0.0.1:%d/0" % free_port()
            self.process = spawn_service(
                self.port, redis_url,
                os.path.join(workdir, label + ".log"), root=root,
                prefix=prefix, stderr=self.valgrind_log, **settings)

    def wait_until_answering(self):
        try:
            wait_until_answering(
                self.port, "/method/" if self.name == BARE else "/health",
                START_TIMEOUT_SECONDS, self.process)
        except RuntimeError as error:
            sys.exit("bench: %s (%s): %s; see %s" % (
                self.name, self.checkout, error, self.valgrind_log.name))

    def clients(self, first_body, expected):
        """{pid: Client}: one connection to each process that serves,
        each having sent `first_body`."""
        if self.workers == 1:
            client = Client(self.port)
            _expect(self, client.post(first_body), expected)
            return {self.process.pid: client}
        held, spare = {}, []
        for _ in range(WORKER_CONNECTION_ATTEMPTS):
            client = Client(self.port)
            _expect(self, client.post(first_body), expected)  # accepted
            inode = server_socket_inode(_tcp_table(), self.port,
                                        client.local_port)
            owner = inode and _socket_owner(inode,
                                            _children(self.process.pid))
            if owner and owner not in held:
                held[owner] = client
            else:
                spare.append(client)
            if len(held) == self.workers:
                break
        for client in spare:
            client.close()
        if len(held) < self.workers:
            sys.exit("bench: %d connections to %s reached only %d of its %d"
                     " workers" % (WORKER_CONNECTION_ATTEMPTS, self.name,
                                   len(held), self.workers))
        return held

    def zero(self, pid):
        _callgrind_control("-z", pid)

    def dump(self, pid):
        """Dump `pid`'s counters; its instructions since the last zero."""
        base = "%s.%d" % (self.out_pattern, pid)
        before = latest_dump(base, glob.glob(base + ".*"))
        _callgrind_control("-d", pid)
        deadline = time.monotonic() + DUMP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            path = latest_dump(base, glob.glob(base + ".*"))
            if path != before:
                with open(path) as dump:
                    text = dump.read()
                if "\ntotals:" in text:  # its last line: written in full
                    return dump_instructions(text)
            time.sleep(0.05)
        sys.exit("bench: no callgrind dump of %s (pid %d) in %.0f s"
                 % (self.name, pid, DUMP_TIMEOUT_SECONDS))

    def stop(self):
        stop(self.process, STOP_TIMEOUT_SECONDS)
        self.valgrind_log.close()


def _callgrind_control(option, pid):
    done = subprocess.run(["callgrind_control", option, str(pid)],
                          capture_output=True, text=True,
                          timeout=DUMP_TIMEOUT_SECONDS)
    if done.returncode != 0 or "OK" not in done.stdout:
        sys.exit("bench: callgrind_control %s %d failed: %s%s"
                 % (option, pid, done.stdout, done.stderr))


def _expect(server, status, expected):
    if status != expected:
        sys.exit("bench: %s answered %d, not %d" % (server.name, status,
                                                    expected))


# -- a round ---------------------------------------------------------------

def measure(server, script, bodies, requests, warm_up):
    """{pid: (instructions, seconds)} of `requests` requests of `script`
    to each process of `server`, after `warm_up` of them."""
    expected = expected_status(server.name, script)
    clients = server.clients(bodies.next(script), expected)
    try:
        for _ in range(warm_up):
            for client in clients.values():
                _expect(server, client.post(bodies.next(script)), expected)
        for pid in clients:
            server.zero(pid)
        started = time.monotonic()
        # Each process's requests back to back, as a lone server gets
        # them: taken in turns, a process waits for every next request
        # (an epoll registration and one more loop turn each: 5 % of a
        # cache hit), which a lone server's next request, already there
        # when it reads, never costs.
        for client in clients.values():
            for _ in range(requests):
                _expect(server, client.post(bodies.next(script)), expected)
        seconds = time.monotonic() - started
        return {pid: (server.dump(pid), seconds) for pid in clients}
    finally:
        for client in clients.values():
            client.close()


def idle_rate(server, pids, seconds):
    """{pid: instructions a second} of each process of `server` while no
    request comes, over `seconds`."""
    for pid in pids:
        server.zero(pid)
    started = time.monotonic()
    time.sleep(seconds)
    counts = {pid: server.dump(pid) for pid in pids}
    elapsed = time.monotonic() - started
    return {pid: count / elapsed for pid, count in counts.items()}


def expected_status(server, script):
    return 200 if server == BARE else SCRIPTS[script][1]


def run_round(rows, checkouts, redis_url, workdir, bodies, requests,
              warm_up):
    """{(checkout, row name): {"per_worker": [...], "idle_share": ...}}."""
    servers = {}
    for row in rows:
        for checkout, root in checkouts:
            if row.server == BARE:
                checkout, root = THIS, ROOT
            if (checkout, row.server) not in servers:
                servers[checkout, row.server] = Server(
                    row.server, checkout, root, redis_url, workdir)
    figures = {}
    try:
        for server in servers.values():
            server.wait_until_answering()
        for (checkout, name), server in servers.items():
            measured = {}
            for row in rows:
                if row.server == name:
                    progress("  %s (%s): %s" % (row.name, checkout, name))
                    measured[row.name] = measure(server, row.script, bodies,
                                                 requests, warm_up)
            pids = next(iter(measured.values())).keys()
            seconds = statistics.median(
                each[pid][1] for each in measured.values() for pid in pids)
            idle = idle_rate(server, pids, seconds)
            for row_name, each in measured.items():
                costs = [per_request(instructions, seconds_taken, idle[pid],
                                     requests)
                         for pid, (instructions, seconds_taken)
                         in each.items()]
                figures[checkout, row_name] = {
                    "per_worker": [cost for cost, _ in costs],
                    "idle_share": max(share for _, share in costs)}
    finally:
        for server in servers.values():
            server.stop()
    return figures


# -- the table -------------------------------------------------------------

def summarize(rows, rounds, checkout):
    """{row name: result} of `checkout` from the figures of every round."""
    results = {}
    for row in rows:
        key = (THIS if row.server == BARE else checkout, row.name)
        per_round = [figures[key] for figures in rounds]
        workers = [statistics.median(each["per_worker"][i]
                                     for each in per_round)
                   for i in range(len(per_round[0]["per_worker"]))]
        values = [max(each["per_worker"]) for each in per_round]
        results[row.name] = {
            "row": row.name, "checkout": checkout, "server": row.server,
            "script": row.script,
            "expected_status": expected_status(row.server, row.script),
            "instructions": round(statistics.median(values)),
            "rounds": [round(value) for value in values],
            "workers": [round(value) for value in workers],
            "spread": round(spread(values), 4),
            "idle_share": round(max(each["idle_share"]
                                    for each in per_round), 4),
        }
    bare = results.get(BARE)
    for result in results.values():
        result["bare_ratio"] = (
            round(bare["instructions"] / result["instructions"], 3)
            if bare else None)
    for row in rows:
        result = results[row.name]
        result["target"] = str(row.target) if row.target else None
        if row.target and bare and all(
                name in results for name in _needs(row.target)):
            result["passed"] = row.target.check(result, results)
    return results


def _needs(target):
    return [target.row] if hasattr(target, "row") else []


COLUMNS = "%-18s %11s %7s %6s %8s  %-18s %-4s"
HEADER = COLUMNS % ("row", "instr/req", "spread", "idle", "bare/row",
                    "target", "")
AGAINST_COLUMNS = " %11s %8s %7s"
AGAINST_HEADER = AGAINST_COLUMNS % ("before", "bare/row", "change")


def format_row(result, before=None):
    """A line of the table; with `before` (the same row of --against's
    checkout), its figures and the change."""
    verdict = ("" if "passed" not in result
               else "PASS" if result["passed"] else "FAIL")
    text = COLUMNS % (
        result["row"], "{:,}".format(result["instructions"]),
        "%.1f%%" % (100 * result["spread"]),
        "%.1f%%" % (100 * result["idle_share"]),
        "%.2f" % result["bare_ratio"] if result["bare_ratio"] else "-",
        result["target"] or "-", verdict)
    if before is not None and result["server"] != BARE:
        text += AGAINST_COLUMNS % (
            "{:,}".format(before["instructions"]),
            "%.2f" % before["bare_ratio"] if before["bare_ratio"] else "-",
            "%+.1f%%" % (100 * (result["instructions"]
                                / before["instructions"] - 1)))
    if len(result["workers"]) > 1:
        text += "  workers: " + ", ".join("{:,}".format(each)
                                          for each in result["workers"])
    return text.rstrip()


# -- the command -----------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="./run.sh bench --instructions",
        description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="rounds, each with new server processes"
                        " (default %d)" % ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS,
                        help="requests counted a row and round (default %d)"
                        % REQUESTS)
    parser.add_argument("--warm-up", type=int, default=WARM_UP,
                        help="requests sent before counting (default %d)"
                        % WARM_UP)
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="ROW",
                        help="only these rows (and bare, for the ratios;"
                        " see --list)")
    parser.add_argument("--list", action="store_true",
                        help="print the rows and exit")
    parser.add_argument("--under-load", action="store_true",
                        help="keep a CPU-bound process running meanwhile:"
                        " the counts should not move")
    parser.add_argument("--against", metavar="CHECKOUT",
                        help="also count another checkout's service (e.g. a"
                        " git worktree of the commit before a change)")
    parser.add_argument("--dumps", metavar="DIR",
                        help="keep callgrind's dumps (and the servers' logs)"
                        " in DIR, for callgrind_annotate")
    args = parser.parse_args(argv)
    if args.against and not os.path.isfile(
            os.path.join(args.against, "scoring_api", "__main__.py")):
        parser.error("--against: no scoring_api in %s" % args.against)
    for name in ("rounds", "requests"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name)
    if args.warm_up < 0:
        parser.error("--warm-up must be at least 0")
    return args


def selected_rows(only):
    names = set(only or NAMES)
    for row in ROWS:
        if row.name in names and row.target:
            names.update(_needs(row.target))
    return [row for row in ROWS if row.name in names or row.server == BARE]


def cpu_burner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for row in ROWS:
            print("%-18s %s/%s%s" % (row.name, row.server, row.script,
                                     "; target " + str(row.target)
                                     if row.target else ""))
        return
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed (Debian: apt-get install"
                     " valgrind)" % tool)
    rows = selected_rows(args.only)
    checkouts = [(THIS, ROOT)] + (
        [(BEFORE, os.path.abspath(args.against))] if args.against else [])
    workdir = args.dumps or tempfile.mkdtemp(prefix="scoring-bench-cg-")
    os.makedirs(workdir, exist_ok=True)
    redis_server = RedisServer(free_port())
    burner = cpu_burner() if args.under_load else None
    rounds = []
    try:
        redis_server.start()
        with redis_server.client() as client:
            load_interests(client)
        bodies = Bodies()
        for number in range(args.rounds):
            progress("round %d/%d" % (number + 1, args.rounds))
            rounds.append(run_round(rows, checkouts, redis_server.url,
                                    workdir, bodies, args.requests,
                                    args.warm_up))
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
        redis_server.stop()
        if not args.dumps:
            shutil.rmtree(workdir, ignore_errors=True)
    results = {checkout: summarize(rows, rounds, checkout)
               for checkout, _ in checkouts}
    print("machine: %s; %d rounds of %d requests a row after %d to warm"
          " up%s" % (machine(), args.rounds, args.requests, args.warm_up,
                     "; a CPU-bound process beside" if args.under_load
                     else ""))
    print((HEADER + AGAINST_HEADER if args.against else HEADER).rstrip())
    for row in rows:
        print(format_row(results[THIS][row.name],
                         results[BEFORE][row.name] if args.against
                         else None))
    print("instr/req: user-space instructions a request (callgrind), less"
          " the idle server's; spread: max - min of the rounds over the"
          " median; idle: the share taken off")
    if args.against:
        print("before: %s; change: this checkout's instructions over"
              " before's" % args.against)
    path = AGAINST_RESULTS if args.against else RESULTS
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as output:
        json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                   "rounds": args.rounds, "requests": args.requests,
                   "warm_up": args.warm_up, "under_load": args.under_load,
                   "against": args.against,
                   "rows": [results[THIS][row.name] for row in rows],
                   "before": ([results[BEFORE][row.name] for row in rows]
                              if args.against else None)},
                  output, indent=1)
    print("rows written to %s" % os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()

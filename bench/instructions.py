"""The instructions one request costs, counted by callgrind: a diagnostic.

    ./run.sh bench --instructions [--rounds N] [--requests N] [--warm-up N]
                   [--only ROW ...] [--under-load] [--against REV]
                   [--dumps DIR]
    ./run.sh bench --instructions --list
    (python -m bench.instructions ...)

What users feel is CPU time a call (`./run.sh bench`, bench/run.py, where
the targets are); callgrind counts the user-space instructions behind it,
to find where they go: a count that a busy machine does not move, blind
to the kernel and to how fast the instructions run.

Each server runs under `valgrind --tool=callgrind`. For each row, a plain
client (outside valgrind) first sends every body of the row's script once
to each process when it has not had them (so that each hit is a cache
hit; the hit script cycles through 100 of its bodies here), then a
warm-up on one keep-alive connection, then `callgrind_control -z` zeroes
the counters, the client sends N requests, one at a time, and
`callgrind_control -d` dumps them: the dump's instructions over N is the
cost of one request.

Timers of the server (the log flush every second, the breaker's probe)
also run while the requests are sent, and under valgrind a request takes
about 50 times its usual wall time. After its rows each server sits idle
for as long as a row took and is counted again: that idle rate, times a
row's seconds, is taken off the row ("idle" gives its share).

Every round starts every server anew (a new process, so a new hash seed);
a row's figure is its median over the rounds, "spread" the max - min of
the rounds over that median. bare/row: bare Tornado answering a fixed
body (bench/bare.py) over the row, 1.0 = as cheap as the bare handler.
The service runs with config.ini, its access log at INFO to a file as in
production, longer Redis timeouts and a longer local_ttl (valgrind slows
the process, not Redis nor the clock; the code path is the same).

Two workers: the service with workers = 2; the client keeps one
connection to each worker (found through /proc: which process holds the
server's end of the connection) and sends N requests to each, back to
back as the one-process rows get them, so each worker's count is over
exactly N requests of the same pattern.

--against REV: the same service rows for another version of the service
(a git revision of this repository, or a directory holding a checkout),
started beside this one's in every round. The rows go to
bench/results/instructions.json (instructions-against.json with
--against), or to --json FILE.
"""
import argparse
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

from bench import loads, procstat, servers
from bench.servers import (BEFORE, NO_LOCAL_TIER, SERVICE, THIS,
                           TWO_WORKERS, Row, Server)
from bench.support import (ROOT, RedisServer, free_port, load_average,
                           machine, progress)

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
# machine, turning hits into misses. Likewise the local tier's 10 s hold
# some 30,000 calls at full speed but only a few hundred under valgrind:
# its entries would expire in the middle of a row, turning local-tier
# hits into Redis hits. And its event loop lags at valgrind's pace: it
# would shed the calls it is to count (503 overloaded), so no shedding.
SLOW_PROCESS_SETTINGS = {
    "SCORING_STORE_CONNECT_TIMEOUT": "10", "SCORING_STORE_TIMEOUT": "10",
    "SCORING_CACHE_CONNECT_TIMEOUT": "10", "SCORING_CACHE_TIMEOUT": "10",
    "SCORING_CACHE_LOCAL_TTL": "600", "SCORING_OVERLOAD_SHED_LAG": "0",
    "SCORING_OVERLOAD_BUDGET": "0"}
# Under callgrind a request takes about 50 times as long: the hit script
# cycles through this many of its bodies, each sent to every process once
# before a row is counted, to keep that first pass short.
HIT_BODIES = 100
# Warm-up phones of the miss script: one counter for the whole run, so
# that no request repeats a phone that an earlier round made a hit.
FIRST_PHONE = 8 * 10 ** 9

BARE = Server("bare", "bare")
CACHE_DEAD = Server("service, cache dead", "service",
                    {"SCORING_CACHE_URL": None})  # nothing listens there
ROWS = [
    Row("bare", BARE, "hit"),
    # The hot score in production: config.ini's local tier answers it.
    Row("score cache hit", SERVICE, "hit"),
    Row("score Redis hit", NO_LOCAL_TIER, "hit"),
    Row("score cache miss", SERVICE, "miss"),
    Row("interests 10 ids", SERVICE, "10 ids"),
    Row("interests 100 ids", SERVICE, "100 ids"),
    Row("invalid 422", SERVICE, "invalid"),
    Row("bad token 403", SERVICE, "bad token"),
    Row("score cache dead", CACHE_DEAD, "hit"),
    Row("2 workers", TWO_WORKERS, "hit"),
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
    """The request bodies of each script, in turn; the miss script's
    phones are new on every request of the run."""

    def __init__(self, scripts=None):
        self.scripts = scripts or loads.scripts(HIT_BODIES)
        self.phones = itertools.count(FIRST_PHONE)
        self.sent = {name: itertools.count() for name in self.scripts}

    def next(self, name):
        script = self.scripts[name]
        if script.counting:
            return loads.with_phone(script.bodies[0], next(self.phones))
        return script.bodies[next(self.sent[name]) % len(script.bodies)]


class Counted:
    """A server under callgrind: its process, port and dumps."""

    def __init__(self, server, context):
        self.server = server
        self.name = server.name
        self.checkout = server.checkout
        self.workers = server.workers
        self.primed = set()  # the scripts whose bodies it has had
        label = re.sub(r"\W+", "-", "%s-%s" % (self.checkout, self.name))
        self.out_pattern = os.path.join(context.workdir,
                                        "callgrind.%s" % label)
        prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                  "--callgrind-out-file=%s.%%p" % self.out_pattern]
        if server.kind == "service":
            server = server._replace(
                settings=dict(SLOW_PROCESS_SETTINGS, **server.settings))
        self.running = servers.start(
            server, free_port(), context.workdir, context.redis_url,
            context.roots, prefix, context.python, context.peers)
        self.port = self.running.port
        self.process = self.running.process

    def wait_until_answering(self):
        try:
            self.running.wait_until_answering(START_TIMEOUT_SECONDS)
        except RuntimeError as error:
            sys.exit("bench: %s (%s): %s; see %s" % (
                self.name, self.checkout, error,
                os.path.splitext(self.running.log_path)[0] + ".out"))

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
            owner = inode and _socket_owner(
                inode, procstat.children(self.process.pid))
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
        self.running.stop(STOP_TIMEOUT_SECONDS)


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

class Context:
    """What starting the servers of a round needs: a directory for their
    files, the Redis, the checkouts' directories, the peers' Python and
    commands (None without peers)."""

    def __init__(self, workdir, redis_url, roots, python=None, peers=None):
        self.workdir = workdir
        self.redis_url = redis_url
        self.roots = roots
        self.python = python
        self.peers = peers


def measure(server, script, bodies, requests, warm_up):
    """{pid: (instructions, seconds)} of `requests` requests of `script`
    to each process of `server`, after `warm_up` of them (and, the first
    time, every body of the script once to each process)."""
    expected = expected_status(server.server, script)
    clients = server.clients(bodies.next(script), expected)
    try:
        if script not in server.primed and not bodies.scripts[
                script].counting:
            for body in bodies.scripts[script].bodies:
                for client in clients.values():
                    _expect(server, client.post(body), expected)
        server.primed.add(script)
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
    """The status `server` (a Server) answers `script` with: bare
    Tornado's is always 200."""
    return 200 if server.kind == "bare" else loads.scripts(1)[
        script].expected


def run_round(rows, context, bodies, requests, warm_up):
    """{(checkout, row name): {"per_worker": [...], "idle_share": ...}}
    of one round: every server of `rows` started anew, under callgrind."""
    started = {}
    for row in rows:
        key = (row.server.checkout, row.server.name)
        if key not in started:
            started[key] = Counted(row.server, context)
    figures = {}
    try:
        for server in started.values():
            server.wait_until_answering()
        for key, server in started.items():
            measured = {}
            for row in rows:
                if (row.server.checkout, row.server.name) == key:
                    progress("  %s (%s): %s" % (row.name, server.checkout,
                                                server.name))
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
                figures[server.checkout, row_name] = {
                    "per_worker": [cost for cost, _ in costs],
                    "idle_share": max(share for _, share in costs)}
    finally:
        for server in started.values():
            server.stop()
    return figures


def count(rows, context, rounds=1, requests=REQUESTS, warm_up=WARM_UP):
    """{(checkout, row name): result} of `rows` over `rounds` rounds."""
    bodies = Bodies()
    measured = []
    for number in range(rounds):
        progress("callgrind round %d/%d" % (number + 1, rounds))
        measured.append(run_round(rows, context, bodies, requests, warm_up))
    return summarize(rows, measured)


# -- the table -------------------------------------------------------------

def summarize(rows, rounds):
    """{(checkout, row name): result} from the figures of every round."""
    results = {}
    for row in rows:
        key = (row.server.checkout, row.name)
        per_round = [figures[key] for figures in rounds]
        workers = [statistics.median(each["per_worker"][i]
                                     for each in per_round)
                   for i in range(len(per_round[0]["per_worker"]))]
        values = [max(each["per_worker"]) for each in per_round]
        results[key] = {
            "row": row.name, "checkout": row.server.checkout,
            "server": row.server.name, "script": row.script,
            "instructions": round(statistics.median(values)),
            "rounds": [round(value) for value in values],
            "workers": [round(value) for value in workers],
            "spread": round(spread(values), 4),
            "idle_share": round(max(each["idle_share"]
                                    for each in per_round), 4),
        }
    bare = next((results[THIS, row.name] for row in rows
                 if row.server.kind == "bare"), None)
    for result in results.values():
        result["bare_ratio"] = (
            round(bare["instructions"] / result["instructions"], 3)
            if bare else None)
    return results


COLUMNS = "%-18s %11s %7s %6s %8s"
HEADER = COLUMNS % ("row", "instr/req", "spread", "idle", "bare/row")
AGAINST_COLUMNS = " %11s %8s %7s"
AGAINST_HEADER = AGAINST_COLUMNS % ("before", "bare/row", "change")


def format_row(result, before=None):
    """A line of the table; with `before` (the same row of --against's
    checkout), its figures and the change."""
    text = COLUMNS % (
        result["row"], "{:,}".format(result["instructions"]),
        "%.1f%%" % (100 * result["spread"]),
        "%.1f%%" % (100 * result["idle_share"]),
        "%.2f" % result["bare_ratio"] if result["bare_ratio"] else "-")
    if before is not None:
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
    parser.add_argument("--against", metavar="REV",
                        help="also count another version's service: a git"
                        " revision of this repository, or a directory"
                        " holding a checkout")
    parser.add_argument("--dumps", metavar="DIR",
                        help="keep callgrind's dumps (and the servers' logs)"
                        " in DIR, for callgrind_annotate")
    parser.add_argument("--json", metavar="FILE",
                        help="write the rows there (default %s)"
                        % os.path.relpath(RESULTS, ROOT))
    args = parser.parse_args(argv)
    for name in ("rounds", "requests"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name)
    if args.warm_up < 0:
        parser.error("--warm-up must be at least 0")
    return args


def selected_rows(only, against=False):
    """The rows to count: bare always (for the ratios); with `against`,
    each service row again for the other checkout."""
    rows = [row for row in ROWS
            if row.server == BARE or not only or row.name in only]
    if against:
        rows += [row._replace(server=row.server._replace(checkout=BEFORE))
                 for row in rows if row.server.kind == "service"]
    return rows


def cpu_burner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for row in ROWS:
            print("%-18s %s/%s" % (row.name, row.server.name, row.script))
        return
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed (Debian: apt-get install"
                     " valgrind)" % tool)
    roots = {THIS: ROOT}
    temporary = False
    if args.against:
        try:
            roots[BEFORE], temporary = servers.checkout(args.against)
        except ValueError as error:
            sys.exit("bench: %s" % error)
    rows = selected_rows(args.only, bool(args.against))
    workdir = args.dumps or tempfile.mkdtemp(prefix="scoring-bench-cg-")
    os.makedirs(workdir, exist_ok=True)
    redis_server = RedisServer()
    burner = cpu_burner() if args.under_load else None
    load_before = load_average()
    try:
        redis_server.start()
        redis_server.load_interests(range(loads.INTEREST_IDS))
        results = count(rows, Context(workdir, redis_server.url, roots),
                        args.rounds, args.requests, args.warm_up)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
        redis_server.stop()
        if not args.dumps:
            shutil.rmtree(workdir, ignore_errors=True)
        if temporary:
            shutil.rmtree(roots[BEFORE], ignore_errors=True)
    load_after = load_average()
    this_rows = [row for row in rows if row.server.checkout == THIS]
    print("machine: %(cpu)s, %(cores)d cores;" % machine()
          + " %d rounds of %d requests a row after %d to warm up%s" % (
              args.rounds, args.requests, args.warm_up,
              "; a CPU-bound process beside" if args.under_load else ""))
    print((HEADER + AGAINST_HEADER if args.against else HEADER).rstrip())
    for row in this_rows:
        print(format_row(results[THIS, row.name],
                         results.get((BEFORE, row.name))))
    print("instr/req: user-space instructions a request (callgrind), less"
          " the idle server's; spread: max - min of the rounds over the"
          " median; idle: the share taken off. A diagnostic: the targets"
          " are on CPU time a call (./run.sh bench)")
    if args.against:
        print("before: %s; change: this checkout's instructions over"
              " before's" % args.against)
    path = args.json or (AGAINST_RESULTS if args.against else RESULTS)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as output:
        json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                   "load_average": {"before": load_before,
                                    "after": load_after},
                   "rounds": args.rounds, "requests": args.requests,
                   "warm_up": args.warm_up, "under_load": args.under_load,
                   "against": args.against,
                   "rows": [results[THIS, row.name] for row in this_rows],
                   "before": [results[BEFORE, row.name] for row in this_rows
                              if (BEFORE, row.name) in results]},
                  output, indent=1)
    print("rows written to %s" % path)


if __name__ == "__main__":
    main()

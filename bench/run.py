"""The wall-clock benchmark: each service row beside its yardstick.

    ./run.sh bench [--quick] [--rounds N] [--passes N] [--duration S]
                   [--connections N ...]
                   [--only NAME ...] [--against CHECKOUT]
    ./run.sh bench --list
    ./run.sh bench --instructions ...   (bench/instructions.py)

Starts its own redis-server, loads interests, then starts every server it
needs once and keeps it running: the service (config.ini, access log at
INFO to a file, as in production) with 1 and 2 workers and with a dead
cache, bench/reference.py (the least a Tornado service does for the same
request) and bench/bare.py (Tornado answering a fixed body: the ceiling).

A busy machine's speed drifts by a quarter from one minute to the next, so
only figures taken side by side compare. For each concurrency, the loads
(a server and a script) that compare are driven in turns, A B C, then
C B A, then A B C, after a short warm-up: one round. Other work on the
machine only ever slows a run down, so a load's figure in a round is its
best run there (as timeit takes its fastest). Each round gives one ratio
of a row to its yardstick, and the table shows the median of these ratios
with their min..max, and the same from the server's CPU time a request.
The same rows go to bench/results/latest.json. --against runs another
checkout's service beside this one, request by request.

These are figures for users, with no target: on a machine of two cores the
load generator, Redis and the server share them, and the ratios swing by a
third from run to run. The figures that a change is judged by are the
instructions a request costs (--instructions), which a busy machine does
not move.
"""
import argparse
import collections
import concurrent.futures
import contextlib
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

from bench import wrk
from bench.service import (ROOT, cpu_seconds, spawn_service, stop,
                           wait_until_answering)
from tests.support.helpers import api_request
from tests.support.layers import RedisServer, free_port

RESULTS = os.path.join(ROOT, "bench", "results", "latest.json")
AGAINST_RESULTS = os.path.join(ROOT, "bench", "results", "against.json")
PHONE_EMAIL = {"phone": "79175002040", "email": "stupnikov@otus.ru"}
INTEREST_IDS = 100
# A spread (max - min of the ratios) wider than this share of the median
# is flagged: the machine was too busy for that row to be trusted.
WIDE_SPREAD = 0.15
# Before the rounds, each load gets this many requests on each of a few
# connections: the first requests pay for connecting to Redis, or for
# finding the cache dead. (wrk cannot stop before its duration is over.)
WARM_UP_CONNECTIONS = 4
WARM_UP_REQUESTS = 25
WARM_UP_TIMEOUT_SECONDS = 5.0
# Warm-up phones of the miss script: far above any phone wrk counts to.
WARM_UP_FIRST_PHONE = 9 * 10 ** 9


class Mode(collections.namedtuple(
        "Mode", "rounds passes seconds concurrencies")):
    """How long a run measures, per concurrency: `rounds`, each of
    `passes` over the loads (one wrk run of `seconds` per load and pass,
    every other pass in reverse order)."""


FULL = Mode(rounds=7, passes=3, seconds=1, concurrencies=(16, 64))
QUICK = Mode(rounds=3, passes=1, seconds=1, concurrencies=(16,))

# name -> (request body, expected status, family). Scripts of one family
# are measured in the same rounds.
SCRIPTS = {
    "hit": (api_request("online_score", PHONE_EMAIL), 200, "score"),
    "invalid": (api_request("online_score", {"phone": "123"}), 422, "score"),
    "bad token": (api_request("online_score", PHONE_EMAIL, token="0" * 128),
                  403, "score"),
    "miss": (api_request("online_score", {
        "phone": wrk.PHONE_PLACEHOLDER, "email": "bench@example.com"}),
        200, "miss"),
    "10 ids": (api_request("clients_interests",
                           {"client_ids": list(range(10))}), 200, "10 ids"),
    "100 ids": (api_request("clients_interests",
                            {"client_ids": list(range(INTEREST_IDS))}),
                200, "100 ids"),
}
BARE = "bare"
AGAINST = "before"  # the service of another checkout (--against)
SERVERS = ("reference", AGAINST, "service", BARE, "service cache dead",
           "service x2")


WORKERS = {"service x2": 2}  # the others have one process
Load = collections.namedtuple("Load", "server script")
# The order of the loads within a round (every other round reversed):
# each row next to its yardstick where it can be, the rows with the
# narrowest margins nearest. Loads not named here come last, in the order
# of SERVERS.
ROUND_ORDER = [
    Load("reference", "hit"), Load("service cache dead", "hit"),
    Load(AGAINST, "invalid"), Load("service", "invalid"),
    Load(AGAINST, "hit"), Load("service", "hit"), Load(BARE, "hit"),
    Load("service", "bad token"), Load(AGAINST, "bad token"),
    Load("service x2", "hit"),
]


class Scenario(collections.namedtuple(
        "Scenario", "name load yardstick yardstick_name")):
    """A row: `load` measured in alternation with `yardstick` and with the
    bare server."""

    @property
    def bare(self):
        """The bare load of this row's family (bare ignores the body)."""
        family = SCRIPTS[self.load.script][2]
        return Load(BARE, next(name for name, (_, _, of) in SCRIPTS.items()
                               if of == family))

    def loads(self):
        return (self.load, self.yardstick, self.bare)


SCENARIOS = [
    Scenario("score cache hit", Load("service", "hit"),
             Load("reference", "hit"), "reference"),
    Scenario("score cache miss", Load("service", "miss"),
             Load("reference", "miss"), "reference"),
    Scenario("score cache dead", Load("service cache dead", "hit"),
             Load("service", "hit"), "own hit"),
    Scenario("2 workers", Load("service x2", "hit"),
             Load("service", "hit"), "1 worker"),
    Scenario("interests 10 ids", Load("service", "10 ids"),
             Load("reference", "10 ids"), "reference"),
    Scenario("interests 100 ids", Load("service", "100 ids"),
             Load("reference", "100 ids"), "reference"),
    Scenario("invalid 422", Load("service", "invalid"),
             Load("service", "hit"), "hit row"),
    Scenario("bad token 403", Load("service", "bad token"),
             Load("service", "hit"), "hit row"),
]
NAMES = [scenario.name for scenario in SCENARIOS]


class Servers:
    """Starts the servers once, all at the same time, and stops them."""

    def __init__(self, redis_url, workdir, against=None):
        self.redis_url = redis_url
        self.workdir = workdir
        self.against = against
        self.running = {}  # name -> (port, process)

    def start(self, names):
        for name in names:
            port = free_port()
            self.running[name] = (port, self._spawn(name, port))
        for name in names:
            wait_until_answering(self.port(name), "/method/" if name in (
                "reference", BARE) else "/health")

    def port(self, name):
        return self.running[name][0]

    def cpu_seconds(self, name):
        return cpu_seconds(self.running[name][1].pid)

    def _spawn(self, name, port):
        if name in ("reference", BARE):
            command = [sys.executable, "-m", "bench." + name,
                       "--port", str(port)]
            if name == "reference":
                command += ["--redis", self.redis_url]
            return subprocess.Popen(command, cwd=ROOT)
        dead_cache = "redis://127.0.0.1:%d/0" % free_port()
        return spawn_service(
            port, self.redis_url,
            os.path.join(self.workdir, name.replace(" ", "-") + ".log"),
            SCORING_SERVER_WORKERS=str(WORKERS.get(name, 1)),
            root=self.against if name == AGAINST else ROOT,
            SCORING_CACHE_URL=dead_cache if name == "service cache dead"
            else "")

    def stop(self):
        for _, process in self.running.values():
            stop(process)


def families(scenarios):
    """{family: [load, ...]}: the loads to alternate, in round order."""
    loads = collections.defaultdict(set)
    for scenario in scenarios:
        loads[SCRIPTS[scenario.load.script][2]].update(scenario.loads())
    return {family: sorted(members, key=_round_position)
            for family, members in loads.items()}


def _round_position(load):
    if load in ROUND_ORDER:
        return ROUND_ORDER.index(load), 0
    return len(ROUND_ORDER), SERVERS.index(load.server)


class Bench:
    """Measures the loads of each family in rounds, for one mode."""

    def __init__(self, mode, servers, driver):
        self.mode = mode
        self.servers = servers
        self.wrk = driver
        self.scripts = {}
        for name, (body, _, _) in SCRIPTS.items():
            self.scripts[name] = (wrk.counting_script(body) if name == "miss"
                                  else wrk.fixed_script(body))
        self.phones = itertools.count(WARM_UP_FIRST_PHONE)

    def warm_up(self, load):
        """Send the load's requests from a few connections; stop the run
        if one is answered with another status than expected."""
        body = json.dumps(SCRIPTS[load.script][0])
        bodies = [body.replace(wrk.PHONE_PLACEHOLDER,
                               "7%010d" % next(self.phones)).encode()
                  for _ in range(WARM_UP_CONNECTIONS * WARM_UP_REQUESTS)]
        port = self.servers.port(load.server)
        with concurrent.futures.ThreadPoolExecutor(
                WARM_UP_CONNECTIONS) as pool:
            statuses = collections.Counter()
            for counts in pool.map(
                    lambda part: post_all(port, part),
                    [bodies[i::WARM_UP_CONNECTIONS]
                     for i in range(WARM_UP_CONNECTIONS)]):
                statuses.update(counts)
        if set(statuses) != {expected_status(load)}:
            sys.exit("bench: %s/%s answered %s, not %d" % (
                load.server, load.script, dict(statuses),
                expected_status(load)))

    def measure(self, loads, connections):
        """{load: [wrk result per round]}: in each round, the best of the
        load's runs (the highest req/s), with every run under "runs"."""
        for load in loads:
            self.warm_up(load)
        results = {load: [] for load in loads}
        passes = itertools.cycle([loads, loads[::-1]])
        for round_number in range(self.mode.rounds):
            progress("  round %d/%d at %d connections: %s"
                     % (round_number + 1, self.mode.rounds, connections,
                        ", ".join("%s/%s" % load for load in loads)))
            runs = collections.defaultdict(list)
            for _ in range(self.mode.passes):
                for load in next(passes):
                    runs[load].append(self.run(load, connections))
            for load in loads:
                best = max(runs[load], key=lambda result: result["rps"])
                results[load].append(dict(best, runs=runs[load]))
        return results

    def run(self, load, connections):
        """One wrk run, and the server's CPU time a request meanwhile."""
        cpu_before = self.servers.cpu_seconds(load.server)
        result = self.wrk.run(self.servers.port(load.server),
                              self.scripts[load.script], connections,
                              self.mode.seconds)
        cpu_after = self.servers.cpu_seconds(load.server)
        check(result, load)
        result["cpu_us"] = (
            None if cpu_before is None or cpu_after is None
            else round(1e6 * (cpu_after - cpu_before) / result["requests"]))
        return result


def post_all(port, bodies):
    """{status: count} of POSTing each of `bodies` to /method/ on one
    keep-alive connection."""
    statuses = collections.Counter()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=WARM_UP_TIMEOUT_SECONDS)
    try:
        for body in bodies:
            connection.request("POST", "/method/", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
    finally:
        connection.close()
    return statuses


def expected_status(load):
    return 200 if load.server == BARE else SCRIPTS[load.script][1]


def check(result, load):
    """Stop the run when a load answers with another status than its own
    (a socket error, e.g. a timeout on a busy machine, is only noted)."""
    expected = expected_status(load)
    wrong = (result["non_2xx"] if expected < 300
             else result["requests"] - result["non_2xx"])
    if wrong:
        sys.exit("bench: %s/%s answered %d of %d requests with another"
                 " status than %d" % (load.server, load.script, wrong,
                                      result["requests"], expected))


def ratios(results, load, yardstick):
    """Median, min and max of the per-round ratios of `load` to
    `yardstick`."""
    values = [mine["rps"] / theirs["rps"]
              for mine, theirs in zip(results[load], results[yardstick])]
    return summarize(values)


def cpu_ratios(results, load, yardstick):
    """Like `ratios`, from the CPU time a request instead of req/s (its
    yardstick's over its own): far less swayed by a busy machine, but
    meaningless between different numbers of workers."""
    values = [theirs["cpu_us"] / mine["cpu_us"]
              for mine, theirs in zip(results[load], results[yardstick])
              if mine["cpu_us"] and theirs["cpu_us"]]
    return summarize(values) if values else None


def summarize(values):
    return {"median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "rounds": [round(value, 3) for value in values]}


def is_wide(ratio):
    return ratio["max"] - ratio["min"] > WIDE_SPREAD * ratio["median"]


def row(scenario, connections, results):
    mine = results[scenario.load]
    vs = ratios(results, scenario.load, scenario.yardstick)
    bare = ratios(results, scenario.load, scenario.bare)
    workers = WORKERS.get(scenario.load.server, 1)
    return {
        "scenario": scenario.name,
        "server": scenario.load.server,
        "concurrency": connections,
        "expected_status": expected_status(scenario.load),
        "rps": round(statistics.median(r["rps"] for r in mine)),
        "rps_rounds": [r["rps"] for r in mine],
        "rps_runs": [[run["rps"] for run in r["runs"]] for r in mine],
        "p50_ms": statistics.median(r["p50_ms"] for r in mine),
        "p99_ms": statistics.median(r["p99_ms"] for r in mine),
        "yardstick": scenario.yardstick_name,
        "yardstick_server": scenario.yardstick.server,
        "socket_errors": [r["socket_errors"] for r in mine
                          if r["socket_errors"]],
        "cpu_us": statistics.median(r["cpu_us"] or 0 for r in mine),
        "vs": vs,
        "vs_bare": bare,
        "vs_cpu": (cpu_ratios(results, scenario.load, scenario.yardstick)
                   if workers == WORKERS.get(scenario.yardstick.server, 1)
                   else None),
        "vs_bare_cpu": (cpu_ratios(results, scenario.load, scenario.bare)
                        if workers == WORKERS.get(scenario.bare.server, 1)
                        else None),
        "wide_spread": is_wide(vs) or is_wide(bare),
    }


HEADER = "%-17s %4s %6s %6s  %-9s %6s %-11s %5s %6s %-11s %5s" % (
    "scenario", "conc", "req/s", "p99ms", "vs", "ratio", "min..max", "cpu",
    "x bare", "min..max", "cpu")


def spread(ratio):
    return "%.2f..%.2f%s" % (ratio["min"], ratio["max"],
                             "!" if is_wide(ratio) else "")


def format_row(result):
    return "%-17s %4d %6d %6.1f  %-9s %5.2fx %-11s %5s %5.2fx %-11s" \
        " %5s" % (
            result["scenario"], result["concurrency"], result["rps"],
            result["p99_ms"], result["yardstick"],
            result["vs"]["median"], spread(result["vs"]),
            _median(result["vs_cpu"]),
            result["vs_bare"]["median"], spread(result["vs_bare"]),
            _median(result["vs_bare_cpu"])) + (
                " (socket errors)" if result["socket_errors"] else "")


def _median(ratio):
    return "%.2fx" % ratio["median"] if ratio else "-"


def progress(text):
    print(text, file=sys.stderr, flush=True)


def against_scenarios(scenarios):
    """The rows of --against: this checkout's service beside the other
    one's, for each script of `scenarios` that the service runs."""
    scripts = dict.fromkeys(scenario.load.script for scenario in scenarios
                            if scenario.load.server == "service")
    names = {s.load.script: s.name for s in reversed(SCENARIOS)
             if s.load.server == "service"}
    return [Scenario(names[script], Load("service", script),
                     Load(AGAINST, script), AGAINST)
            for script in scripts]


def run(mode, scenarios, against=None):
    rows = []
    workdir = tempfile.mkdtemp(prefix="scoring-bench-")
    redis_server = RedisServer(free_port())
    redis_server.start()
    servers = Servers(redis_server.url, workdir, against)
    try:
        with redis_server.client() as client:
            load_interests(client)
        groups = families(scenarios)
        servers.start(sorted({load.server for loads in groups.values()
                              for load in loads}, key=SERVERS.index))
        bench = Bench(mode, servers, wrk.Wrk(workdir))
        for connections in mode.concurrencies:
            for family, loads in groups.items():
                results = bench.measure(loads, connections)
                for scenario in scenarios:
                    if SCRIPTS[scenario.load.script][2] == family:
                        rows.append(row(scenario, connections, results))
                        print(format_row(rows[-1]), flush=True)
    finally:
        servers.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def load_interests(client):
    """Interests for client ids 0 .. INTEREST_IDS - 1 in the bench's
    Redis (`client`: a redis.Redis)."""
    client.mset({"i:%d" % cid: json.dumps(["cars", "pets", "tv"])
                 for cid in range(INTEREST_IDS)})


def summary():
    return ("x bare: the row's share of bare Tornado answering a fixed"
            " body; '!': min..max wider than %d%% of the median; cpu: the"
            " same from the server's CPU time a request"
            % (100 * WIDE_SPREAD))


def machine():
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            model = re.search(r"model name\s*:\s*(.*)", cpuinfo.read())
            return "%s, %d cores" % (model.group(1) if model else "?",
                                     os.cpu_count())
    return "%d cores" % os.cpu_count()


def load_average():
    """The 1-minute load average, or None where /proc has none."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/loadavg") as loadavg:
            return float(loadavg.read().split()[0])
    return None


def busy_note(before, after):
    """A line saying how busy the machine was, louder past one runnable
    process per core beyond what the benchmark runs itself."""
    if before is None or after is None:
        return ""
    note = "load average %.1f before, %.1f after, on %d cores" % (
        before, after, os.cpu_count())
    if max(before, after) > os.cpu_count() + 1:
        note += ": a busy machine, the ratios may be off; rerun when quieter"
    return note


def describe(scenario):
    return "%-18s %s/%s vs %s/%s" % (
        scenario.name, scenario.load.server, scenario.load.script,
        scenario.yardstick.server, scenario.yardstick.script)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="%d rounds of %d s at %s connections (about a"
                        " minute)" % (
                            QUICK.rounds, QUICK.seconds,
                            QUICK.concurrencies[0]))
    parser.add_argument("--rounds", type=int,
                        help="rounds per load (default %d)" % FULL.rounds)
    parser.add_argument("--passes", type=int,
                        help="runs per load in a round, of which the best"
                        " counts (default %d)" % FULL.passes)
    parser.add_argument("--duration", type=int, metavar="SECONDS",
                        help="seconds per wrk run (default %d)"
                        % FULL.seconds)
    parser.add_argument("--connections", type=int, nargs="+", metavar="N",
                        help="concurrencies to run (default %s)" % " ".join(
                            map(str, FULL.concurrencies)))
    parser.add_argument("--only", nargs="+", choices=NAMES,
                        metavar="SCENARIO", help="run only these scenarios"
                        " (see --list)")
    parser.add_argument("--list", action="store_true",
                        help="print the scenarios and exit")
    parser.add_argument("--instructions", action="store_true",
                        help="count the instructions a request costs"
                        " instead (see --instructions --help)")
    parser.add_argument("--against", metavar="CHECKOUT",
                        help="compare this checkout's service with the one"
                        " in CHECKOUT (e.g. a git worktree of the commit"
                        " before a change), script by script")
    args = parser.parse_args(argv)
    if args.against and not os.path.isfile(
            os.path.join(args.against, "scoring_api", "__main__.py")):
        parser.error("--against: no scoring_api in %s" % args.against)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.passes is not None and args.passes < 1:
        parser.error("--passes must be at least 1")
    if args.duration is not None and args.duration < 1:
        parser.error("--duration must be at least 1")
    if args.connections and min(args.connections) < 1:
        parser.error("--connections must be at least 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--instructions" in argv:
        from bench import instructions
        return instructions.main([arg for arg in argv
                                  if arg != "--instructions"])
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(describe(scenario))
        return
    mode = QUICK if args.quick else FULL
    mode = mode._replace(
        rounds=args.rounds or mode.rounds,
        passes=args.passes or mode.passes,
        seconds=args.duration or mode.seconds,
        concurrencies=args.connections or mode.concurrencies)
    scenarios = [s for s in SCENARIOS
                 if not args.only or s.name in args.only]
    if args.against:
        scenarios = against_scenarios(scenarios)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")
    print("machine: %s; %d rounds; in each, a load's best of %d runs of %d"
          " s" % (machine(), mode.rounds, mode.passes, mode.seconds))
    print(HEADER.rstrip())
    load_before = load_average()
    rows = run(mode, scenarios, args.against)
    load_after = load_average()
    print(summary())
    if busy_note(load_before, load_after):
        print(busy_note(load_before, load_after))
    path = AGAINST_RESULTS if args.against else RESULTS
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as results:
        json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                   "rounds": mode.rounds, "passes": mode.passes,
                   "duration_s": mode.seconds,
                   "quick": args.quick, "against": args.against,
                   "load_average": [load_before, load_after],
                   "rows": rows}, results, indent=1)
    print("rows written to %s" % os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()

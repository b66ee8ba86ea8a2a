"""CPU time a call, side by side: the benchmark (`./run.sh bench`).

    ./run.sh bench [--quick] [--peers] [--rounds N] [--duration S]
                   [--connections N] [--only ROW ...] [--against REV]
                   [--json FILE] [--callgrind | --no-callgrind]
    ./run.sh bench --list
    ./run.sh bench --instructions ...      (bench/instructions.py)
    ./run.sh bench --fairness ...          (bench/fairness.py)
    (python -m bench.run ...)

What a user feels is the CPU time a call costs the server process: it
decides how many cores serve a load. The bench starts every server once,
pinned with taskset to a core of its own (wrk, Redis and the bench share
the others), checks their answers, then drives each row with wrk (one
thread, a few seconds) in interleaved rounds: every row once a round, the
order reversed every other round. For each run it reads the server's CPU
time (user and system, its workers included) from /proc/<pid>/stat before
and after, and divides by the requests wrk counted; wrk gives req/s and
p99. A row's figure is the median over the rounds; ratios between rows
(the targets) are taken round by round, so other work on the machine
slows both sides of each ratio alike.

Rows: the service (config.ini unchanged, its own redis-server through
SCORING_STORE_URL, access log at INFO to a file) on a score-cache hit,
a Redis hit (no local tier), a miss, interests for 10 and 100 ids, a 422,
a 403 and with two workers; bare Tornado answering a fixed body
(bench/bare.py, the ceiling). --peers adds the same hit on FastAPI,
Starlette and aiohttp (bench/peers/, in their own venv; their answers
are checked byte for byte against the service's first). The hit script
cycles through 1,000 different valid bodies, the same for every server,
each sent to every server before the rounds: every timed hit is a
score-cache hit. --against REV runs another version of the service (a
git revision, or a checkout's directory) beside this one, row by row.

Then, unless --quick (or --no-callgrind), each row's instructions a call
under callgrind, for attribution only (bench/instructions.py). The run's
JSON (machine, load average before and after, every round of every row)
goes to --json FILE (default bench/results/latest.json).
"""
import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time

from bench import (conformity, figures, instructions, loads, procstat,
                   servers, wrk)
from bench.servers import (BEFORE, MISSES, NO_LOCAL_TIER, SERVICE, THIS,
                           TWO_WORKERS, Row, Server)
from bench.support import (ROOT, RedisServer, free_port, load_average,
                           machine, progress)

RESULTS = os.path.join(ROOT, "bench", "results", "latest.json")


class Mode(collections.namedtuple(
        "Mode", "rounds seconds warm_up_seconds connections callgrind")):
    """How long a run measures: `rounds` of one wrk run of `seconds` a
    row, after one of `warm_up_seconds`; `callgrind`: count instructions
    afterwards."""


FULL = Mode(rounds=6, seconds=5, warm_up_seconds=2, connections=16,
            callgrind=True)
QUICK = Mode(rounds=2, seconds=2, warm_up_seconds=1, connections=16,
             callgrind=False)

CALLGRIND_TOOLS = ("valgrind", "callgrind_control")
BARE = Server("bare Tornado", "bare")
PEERS = ("FastAPI", "Starlette", "aiohttp")
SERVICE_HIT = "service hit"
ROWS = [
    Row(SERVICE_HIT, SERVICE, "hit"),
    *(Row("%s hit" % peer, Server(peer, "peer"), "hit") for peer in PEERS),
    Row("bare Tornado", BARE, "hit"),
    Row("service Redis hit", NO_LOCAL_TIER, "hit"),
    Row("service miss", MISSES, "miss"),
    Row("interests 10 ids", SERVICE, "10 ids"),
    Row("interests 100 ids", SERVICE, "100 ids"),
    Row("422", SERVICE, "invalid"),
    Row("403", SERVICE, "bad token"),
    Row("2 workers", TWO_WORKERS, "hit"),
]
NAMES = [row.name for row in ROWS]
TARGETS = [
    figures.Target(SERVICE_HIT, "FastAPI hit", 1.05),
    figures.Target("422", SERVICE_HIT, 1.0),
    figures.Target("403", SERVICE_HIT, 1.0),
    figures.Target("interests 10 ids", SERVICE_HIT, 1.6),
]
# Under the table: what the service does on every call that the peers
# do not, so that the reader weighs the figures.
SERVICE_ONLY = (
    "the service does on every call what the peers do not: a request id"
    " (X-Request-Id, in every log line), Prometheus metrics, the in-flight"
    " count of the graceful drain, partner quotas (off in config.ini), the"
    " connection cap and the header, body, idle and write deadlines; the"
    " peers serve online_score only, with an in-process cache and no"
    " Redis behind it")


def before_row(row):
    """The row of --against's checkout for a service row."""
    return row._replace(server=row.server._replace(checkout=BEFORE))


def row_key(row):
    return (row.server.checkout, row.name)


def selected_rows(only=None, peers=False, against=False):
    """The rows of a run: --only's (with the rows their targets compare
    with), the peers' only with `peers`; with `against`, each service row
    again for the other checkout."""
    names = set(only or NAMES)
    for target in TARGETS:
        if target.row in names:
            names.add(target.reference)
    rows = [row for row in ROWS if row.name in names
            and (peers or row.server.kind != "peer")]
    if against:
        rows += [before_row(row) for row in rows
                 if row.server.kind == "service"]
    return rows


class Bench:
    """The servers of a run, started once and pinned, and their rounds."""

    def __init__(self, rows, mode, workdir, redis_url, roots, cpus,
                 python=None, peers=None):
        self.rows = rows
        self.mode = mode
        self.workdir = workdir
        self.redis_url = redis_url
        self.roots = roots
        self.server_cpus, self.load_cpus = cpus
        self.python = python
        self.peers = peers
        self.scripts = loads.scripts()
        self.wrk = wrk.Wrk(workdir, self.load_cpus)
        self.running = {}  # (checkout, server name) -> servers.Running
        self.phones = iter(range(9 * 10 ** 9, 10 ** 10))

    def start(self):
        for row in self.rows:
            key = (row.server.checkout, row.server.name)
            if key not in self.running:
                self.running[key] = servers.start(
                    row.server, free_port(), self.workdir, self.redis_url,
                    self.roots, servers_prefix(self.server_cpus),
                    self.python, self.peers)
        for running in self.running.values():
            running.wait_until_answering()

    def stop(self):
        for running in self.running.values():
            running.stop()

    def server_of(self, row):
        return self.running[row.server.checkout, row.server.name]

    def check(self):
        """Every peer answers the conformity calls and the hit bodies as
        the service does; every server answers each of its scripts with
        the status expected (and has had every hit body once)."""
        calls = loads.conformity_calls()
        whats = [what for what, _ in calls]
        service = self.running[THIS, SERVICE.name]
        expected = conformity.post_each(service.port,
                                        [body for _, body in calls])
        hits = self.scripts["hit"].bodies
        service_hits = conformity.post_each(service.port, hits)
        conformity.require_status(SERVICE.name, self.scripts["hit"],
                                  service_hits)
        hit_whats = ["hit body %d" % number for number in range(len(hits))]
        checked = {(THIS, SERVICE.name, "hit")}
        for (checkout, name), running in self.running.items():
            if running.server.kind == "peer":
                checked.add((checkout, name, "hit"))
                progress("checking %s against the service" % name)
                conformity.require_same(name, whats, expected,
                                        conformity.post_each(
                                            running.port,
                                            [body for _, body in calls]))
                conformity.require_same(
                    name, hit_whats, service_hits,
                    conformity.post_each(running.port, hits))
        for row in self.rows:
            running = self.server_of(row)
            script = self.scripts[row.script]
            if (running.server.kind == "bare"  # a fixed answer
                    or (row.server.checkout, row.server.name,
                        row.script) in checked):
                continue
            bodies = (hits if row.script == "hit" else
                      [loads.with_phone(script.bodies[0], next(self.phones))
                       for _ in range(conformity.CONNECTIONS)]
                      if script.counting else script.bodies)
            conformity.require_status(
                "%s (%s)" % (running.server.name, running.server.checkout),
                script, conformity.post_each(running.port, bodies))

    def run(self, row, seconds):
        """One wrk run of `row`: wrk's figures and the CPU time a call."""
        running = self.server_of(row)
        self.alone_on_server_cpus(running)
        before = procstat.cpu_times(running.pid)
        result = self.wrk.run(running.port, self.scripts[row.script],
                              self.mode.connections, seconds)
        after = procstat.cpu_times(running.pid)
        expected = (200 if running.server.kind == "bare"
                    else self.scripts[row.script].expected)
        wrong = (result["errors"]["status"] if expected < 400
                 else result["requests"] - result["errors"]["status"])
        if not result["requests"] or wrong:
            sys.exit("bench: %s answered %d of %d requests with another"
                     " status than %d" % (row.name, wrong,
                                          result["requests"], expected))
        if before is None or after is None:
            sys.exit("bench: no /proc/%d/stat for %s: CPU time cannot be"
                     " read" % (running.pid, row.name))
        result.update(procstat.per_call(before, after, result["requests"]))
        return result

    def alone_on_server_cpus(self, measured):
        """`measured` (a servers.Running) on the server CPUs, every other
        server on the load CPUs while it is measured: an idle server's
        timers (the service's loop-lag probe wakes 20 times a second)
        would take the measured one's CPU caches, which no server has to
        share in production. Measured on the full table: FastAPI's hit
        223 -> 211 us a call, the service's 238 -> 231 us."""
        if not (self.server_cpus and self.load_cpus):
            return
        for running in self.running.values():
            procstat.move_to(running.pid, self.server_cpus
                             if running is measured else self.load_cpus)

    def rounds(self):
        """{(checkout, row name): [figures of each round]}."""
        for row in self.rows:
            self.run(row, self.mode.warm_up_seconds)
        measured = {row_key(row): [] for row in self.rows}
        for number in range(self.mode.rounds):
            order = self.rows if number % 2 == 0 else self.rows[::-1]
            progress("round %d/%d: %s" % (number + 1, self.mode.rounds,
                                          ", ".join(label(row)
                                                    for row in order)))
            for row in order:
                measured[row_key(row)].append(
                    self.run(row, self.mode.seconds))
        return measured


def servers_prefix(cpus):
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def label(row):
    return row.name + (" (before)" if row.server.checkout == BEFORE else "")


def split_cpus(available, server_cpus=None, load_cpus=None):
    """(server CPUs, load CPUs): the last core for the server, the others
    for wrk, Redis and the bench, unless given; ([], []) on one core."""
    available = sorted(available)
    if len(available) < 2 and not (server_cpus and load_cpus):
        return [], []
    return (server_cpus or available[-1:],
            load_cpus or [cpu for cpu in available
                          if cpu not in (server_cpus or available[-1:])])


# -- the table -------------------------------------------------------------

COLUMNS = "%-18s %7s %7s %9s %6s %5s %11s %9s"
INSTRUCTIONS_COLUMN = " %10s"
AGAINST_COLUMNS = " %9s %7s %11s"


def header(reference_label, instructions=False, against=False):
    return (COLUMNS % ("row", "req/s", "p99 ms", "CPU/call", "user", "sys",
                       "min..max", reference_label)
            + (INSTRUCTIONS_COLUMN % "instr/call" if instructions else "")
            + (AGAINST_COLUMNS % ("before", "change", "this/before")
               if against else "")).rstrip()


def format_row(name, mine, reference=None, before=None, instructions=None):
    """A line of the table: `mine` a row's figures (figures.row_figures);
    `reference`: its ratio to the reference row; `before`: (figures of
    --against's, figures.against_verdict); `instructions`: a call's."""
    text = COLUMNS % (
        name, "{:,.0f}".format(mine["rps"]), "%.1f" % mine["p99_ms"],
        "%.0f us" % mine["cpu_us"], "%.0f" % mine["user_us"],
        "%.0f" % mine["system_us"],
        "%.0f..%.0f" % (mine["cpu_us_min"], mine["cpu_us_max"]),
        "%.2fx" % reference["median"] if reference else "-")
    if instructions is not None:
        text += INSTRUCTIONS_COLUMN % "{:,}k".format(
            round(instructions / 1000))
    if before is not None:
        figures_before, (dearer, change) = before
        text += AGAINST_COLUMNS % (
            "%.0f us" % figures_before["cpu_us"],
            "%+.1f%%" % (100 * (change["median"] - 1)),
            "%.2f..%.2f" % (change["min"], change["max"])) + (
                " DEARER" if dearer else "")
    return text.rstrip()


def socket_errors(rounds):
    """The connections wrk lost (connect, read, write, timeout) in
    `rounds`: on a busy machine a few are noise, many are a fault."""
    return sum(count for each in rounds for kind, count in
               each["errors"].items() if kind != "status")


def report(rows, measured, reference_name, counted=None, against=None):
    """The table's lines, the targets' PASS/FAIL lines, and the summary
    (for the JSON) of each row."""
    lines = [header("x " + reference_name.split()[0], bool(counted),
                    bool(against))]
    summaries = []
    by_name = {row.name: measured[row_key(row)] for row in rows
               if row.server.checkout == THIS}
    for row in rows:
        if row.server.checkout != THIS:
            continue
        mine = figures.row_figures(measured[row_key(row)])
        reference = (figures.ratio(by_name[row.name], by_name[reference_name])
                     if reference_name in by_name else None)
        before = None
        if (BEFORE, row.name) in measured:
            before = (figures.row_figures(measured[BEFORE, row.name]),
                      figures.against_verdict(measured[THIS, row.name],
                                              measured[BEFORE, row.name]))
        instructions = (counted or {}).get((THIS, row.name))
        lines.append(format_row(
            row.name, mine, reference, before,
            instructions["instructions"] if instructions else None) + (
                " (socket errors)" if socket_errors(measured[row_key(row)])
                else ""))
        summaries.append(dict(
            mine, row=row.name, server=row.server.name, script=row.script,
            **{"x " + reference_name: reference,
               "instructions": instructions,
               "against": before and {"before": before[0],
                                      "dearer": before[1][0],
                                      "ratio": before[1][1]}}))
    verdicts = []
    for target in TARGETS:
        verdict = target.verdict(by_name)
        if verdict is None:
            continue
        passed, found = verdict
        verdicts.append({"target": str(target), "passed": passed,
                         "ratio": found})
        lines.append("%s %s: %.2fx (rounds %.2f..%.2f)" % (
            "PASS" if passed else "FAIL", target, found["median"],
            found["min"], found["max"]))
    if against:
        dearer = [summary["row"] for summary in summaries
                  if summary["against"] and summary["against"]["dearer"]]
        lines.append("%s no service row dearer than %s by more than the"
                     " run's spread%s" % ("FAIL" if dearer else "PASS",
                                          against, ": " + ", ".join(dearer)
                                          if dearer else ""))
    return lines, summaries, verdicts


# -- the command -----------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./run.sh bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="%d rounds of %d s, no callgrind (a few"
                        " minutes)" % (QUICK.rounds, QUICK.seconds))
    parser.add_argument("--peers", action="store_true",
                        help="add FastAPI, Starlette and aiohttp on the hit"
                        " row (bench/peers/; their venv is made when"
                        " missing)")
    parser.add_argument("--rounds", type=int,
                        help="rounds (default %d)" % FULL.rounds)
    parser.add_argument("--duration", type=int, metavar="SECONDS",
                        help="seconds of a row's wrk run (default %d)"
                        % FULL.seconds)
    parser.add_argument("--connections", type=int,
                        help="wrk's connections (default %d)"
                        % FULL.connections)
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="ROW",
                        help="only these rows (and those their targets"
                        " compare with; see --list)")
    parser.add_argument("--list", action="store_true",
                        help="print the rows and the targets, and exit")
    parser.add_argument("--against", metavar="REV",
                        help="also run another version of the service: a"
                        " git revision of this repository, or a directory"
                        " holding a checkout")
    parser.add_argument("--json", metavar="FILE",
                        help="where the run's JSON goes (default %s)"
                        % os.path.relpath(RESULTS, ROOT))
    callgrind = parser.add_mutually_exclusive_group()
    callgrind.add_argument("--callgrind", action="store_true",
                           help="count instructions a call afterwards even"
                           " with --quick")
    callgrind.add_argument("--no-callgrind", action="store_true",
                           help="skip the instruction counts")
    parser.add_argument("--server-cpus", type=_cpus, metavar="N[,N]",
                        help="CPUs for the servers (default the last)")
    parser.add_argument("--load-cpus", type=_cpus, metavar="N[,N]",
                        help="CPUs for wrk and Redis (default the others)")
    parser.add_argument("--instructions", action="store_true",
                        help="count the instructions a request costs"
                        " instead (see --instructions --help)")
    args = parser.parse_args(argv)
    for name in ("rounds", "duration", "connections"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error("--%s must be at least 1" % name)
    return args


def _cpus(text):
    return [int(cpu) for cpu in text.split(",")]


def mode_of(args):
    mode = QUICK if args.quick else FULL
    return mode._replace(
        rounds=args.rounds or mode.rounds,
        seconds=args.duration or mode.seconds,
        connections=args.connections or mode.connections,
        callgrind=(args.callgrind or mode.callgrind) and not
        args.no_callgrind)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--fairness" in argv:
        from bench import fairness  # it imports this module
        return fairness.main([arg for arg in argv if arg != "--fairness"])
    if "--instructions" in argv:
        return instructions.main([arg for arg in argv
                                  if arg != "--instructions"])
    args = parse_args(argv)
    if args.list:
        for row in ROWS:
            print("%-18s %s/%s%s" % (row.name, row.server.name, row.script,
                                     " (--peers)" if row.server.kind == "peer"
                                     else ""))
        for target in TARGETS:
            print("target: " + str(target))
        return
    mode = mode_of(args)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")
    if mode.callgrind and not all(map(shutil.which, CALLGRIND_TOOLS)):
        if args.callgrind:
            sys.exit("bench: valgrind is not installed (Debian: apt-get"
                     " install valgrind)")
        progress("bench: valgrind is not installed: no instruction counts"
                 " (Debian: apt-get install valgrind)")
        mode = mode._replace(callgrind=False)
    cpus = split_cpus(os.sched_getaffinity(0), args.server_cpus,
                      args.load_cpus)
    rows = selected_rows(args.only, args.peers, bool(args.against))
    python = peers = None
    if args.peers:
        python = servers.peers_python()
        peers = servers.read_peer_commands()
    roots = {THIS: ROOT}
    temporary = False
    if args.against:
        try:
            roots[BEFORE], temporary = servers.checkout(args.against)
        except ValueError as error:
            sys.exit("bench: %s" % error)
    workdir = tempfile.mkdtemp(prefix="scoring-bench-")
    redis_server = RedisServer(cpus[1])
    load_before = load_average()
    bench = Bench(rows, mode, workdir, redis_server.url, roots, cpus,
                  python, peers)
    try:
        redis_server.start()
        redis_server.load_interests(range(loads.INTEREST_IDS))
        bench.start()
        try:
            bench.check()
        except conformity.Refused as error:
            sys.exit("bench: %s" % error)
        measured = bench.rounds()
        bench.stop()
        load_after = load_average()
        counted = None
        if mode.callgrind:
            counted = instructions.count(
                [row for row in rows if row.server.checkout == THIS],
                instructions.Context(workdir, redis_server.url, roots,
                                     python, peers))
    finally:
        bench.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if temporary:
            shutil.rmtree(roots[BEFORE], ignore_errors=True)
    reference_name = "FastAPI hit" if args.peers else SERVICE_HIT
    lines, summaries, verdicts = report(rows, measured, reference_name,
                                        counted, args.against)
    print("machine: %(cpu)s, %(cores)d cores" % machine()
          + "; servers on CPU %s, wrk and Redis on %s; %d rounds of %d s,"
          " wrk -t1 -c%d" % (",".join(map(str, cpus[0])) or "any",
                             ",".join(map(str, cpus[1])) or "any",
                             mode.rounds, mode.seconds, mode.connections))
    print("\n".join(lines))
    print("CPU/call: the server's CPU time (user + system, in us, from"
          " /proc) over the requests wrk counted, median of the rounds;"
          " min..max: of the rounds; x %s: the ratio to the %s row's CPU"
          " time a call, round by round (median)%s" % (
              reference_name.split()[0], reference_name,
              "; instr/call: callgrind, user space only, a diagnostic"
              if counted else ""))
    if args.peers:
        print(SERVICE_ONLY)
    print("load average (1, 5, 15 min): %s before, %s after" % (
        load_before, load_after))
    path = args.json or RESULTS
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as output:
        json.dump({
            "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "load_average": {"before": load_before, "after": load_after},
            "cpus": {"servers": cpus[0], "load": cpus[1]},
            "mode": mode._asdict(), "against": args.against,
            "rows": summaries, "targets": verdicts,
            "rounds": [{"row": row.name, "checkout": row.server.checkout,
                        "server": row.server.name, "script": row.script,
                        "rounds": measured[row_key(row)]} for row in rows],
        }, output, indent=1)
    print("the run's JSON: %s" % path)


if __name__ == "__main__":
    main()

"""./run.sh bench --fairness: partners sharing one service (docs/
performance.md).

A quiet partner sends one online_score every 20 ms on one keep-alive
connection: alone, then beside a flooding partner (wrk, many
connections, as fast as it answers), with quotas off and on
([limits] rate and burst for every partner: the quiet one stays within
its quota, the flood is far over it). Then the cost of quotas on a cache
hit: the service's CPU time a call (from /proc) under wrk's hit script,
quotas off against quotas on with a rate nothing reaches (every call
counted, nothing refused). Then the burst: 900 connections each send
one clients_interests of 1,000 ids at once, twice (answers by code and
message, when the last one came, the store's Redis error metric before
and after). Then the lock-out: at max_connections 200, 300 silent
sockets and 50 idle keep-alive connections, a new client's wait for its
answer and when a head trickled a byte every 0.5 s is cut. Each of the
last two on a service and a Redis of their own; a PASS/FAIL line each
(the targets of docs/performance.md). About a minute and a half.
"""
import argparse
import asyncio
import collections
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request

from bench import loads, procstat, servers
from bench.run import split_cpus
from bench.servers import Server
from bench.support import (RedisServer, api_request, free_port, load_average,
                           machine, pinned, progress)
from bench.wrk import Wrk

QUIET, FLOOD = "quiet", "flood"
QUIET_INTERVAL_SECONDS = 0.02
QUIET_TIMEOUT_SECONDS = 2.0
# The quota of every partner when quotas are on: the quiet partner's 50
# calls a second are well within it.
RATE, BURST = 100, 100
QUOTAS_OFF = {"SCORING_LIMITS_RATE": "0"}
QUOTAS_ON = {"SCORING_LIMITS_RATE": str(RATE),
             "SCORING_LIMITS_BURST": str(BURST)}
# Quotas on, never reached: what counting costs.
QUOTAS_COUNTING = {"SCORING_LIMITS_RATE": "1000000"}
COST_CONNECTIONS = 16
COST_ROUNDS = 2


def quiet_partner(port, seconds, results):
    """One call every QUIET_INTERVAL_SECONDS on one keep-alive connection
    (a new one after a failure) for `seconds`; appends (code or None,
    seconds) to `results`."""
    body = json.dumps(api_request("online_score", loads.person(1),
                                  account=QUIET))
    connection = None
    started = time.monotonic()
    due = started
    while due < started + seconds:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        due = max(due + QUIET_INTERVAL_SECONDS, time.monotonic())
        sent = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(
                    servers.HOST, port, timeout=QUIET_TIMEOUT_SECONDS)
            connection.request("POST", "/method/", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            code = response.status
            if response.getheader("Connection") == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            code = None
            if connection is not None:
                connection.close()
            connection = None
        results.append((code, time.monotonic() - sent))
    if connection is not None:
        connection.close()


def flood(port, connections, seconds, workdir, cpus):
    """wrk, `connections` connections of the flooding partner for
    `seconds`: its figures."""
    script = loads.Script(FLOOD, [loads.encoded(api_request(
        "online_score", loads.person(2), account=FLOOD))], 200)
    return Wrk(workdir, cpus).run(port, script, connections, seconds)


def scenario(port, seconds, connections, workdir, cpus, with_flood):
    """The quiet partner's figures, alone or beside the flood."""
    results = []
    quiet = threading.Thread(target=quiet_partner,
                             args=(port, seconds, results))
    flood_figures = {}
    if with_flood:
        def run_flood():
            flood_figures.update(flood(port, connections, seconds + 1,
                                       workdir, cpus))
        flooding = threading.Thread(target=run_flood)
        flooding.start()
        time.sleep(0.5)  # the flood at full strength first
    quiet.start()
    quiet.join()
    if with_flood:
        flooding.join()
    answered = sorted(latency for code, latency in results if code == 200)
    return {
        "sent": len(results), "answered_200": len(answered),
        "codes": {str(code): sum(1 for c, _ in results if c == code)
                  for code in sorted({c for c, _ in results}, key=str)},
        "p50_ms": 1000 * percentile(answered, 0.50),
        "p99_ms": 1000 * percentile(answered, 0.99),
        "flood": flood_figures,
    }


def percentile(values, fraction):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


def cost(service, seconds, workdir, cpus):
    """CPU time (us) a cache hit costs `service`, under wrk."""
    script = loads.scripts()["hit"]
    wrk = Wrk(workdir, cpus)
    wrk.run(service.port, script, COST_CONNECTIONS, 1)  # warm the caches
    before = procstat.cpu_times(service.pid)
    figures = wrk.run(service.port, script, COST_CONNECTIONS, seconds)
    after = procstat.cpu_times(service.pid)
    return procstat.per_call(before, after, figures["requests"])["cpu_us"]


# -- the burst: many big calls at once ------------------------------------

BURST_CONNECTIONS = 900
BURST_IDS = 1000
BURST_ROUNDS = 2
BURST_WITHIN_SECONDS = 12.0
ANSWER_TIMEOUT_SECONDS = 30.0
OVERLOADED = "overloaded, retry later"
STORE_DOWN = "store is unavailable"
# The kinds of answer the burst may get (docs/operations.md, "Overload").
ALLOWED_KINDS = ("200", "429", "503 overloaded")
NO_ANSWER = "no answer"
STORE_ERRORS = re.compile(
    r'^scoring_api_redis_errors_total\{role="store"\}\s+(\S+)$', re.M)


def http_post(body, path="/method/"):
    """The bytes of one keep-alive POST of `body` (bytes)."""
    return (b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n" % (
                path.encode(), servers.HOST.encode(), len(body))) + body


def parse_head(head):
    """(status code, Content-Length or 0) of an answer's head (bytes)."""
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return code, length


def answer_kind(code, body):
    """What one answer says: "200", "429", "503 overloaded", "503 store",
    "<code> <error>" for any other, NO_ANSWER when `code` is None."""
    if code is None:
        return NO_ANSWER
    if code in (200, 429):
        return str(code)
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if code == 503 and error == OVERLOADED:
        return "503 overloaded"
    if code == 503 and error == STORE_DOWN:
        return "503 store"
    return "%d %s" % (code, error or "?")


def count_kinds(answers):
    """{kind: count} of [(code, body)], in a stable order."""
    counts = collections.Counter(answer_kind(code, body)
                                 for code, body in answers)
    return dict(sorted(counts.items()))


def store_errors(metrics_text):
    """scoring_api_redis_errors_total{role="store"} in a /metrics text (0
    before the first error)."""
    found = STORE_ERRORS.search(metrics_text)
    return float(found.group(1)) if found else 0.0


def read_store_errors(port):
    with urllib.request.urlopen("http://%s:%d/metrics" % (servers.HOST, port),
                                timeout=ANSWER_TIMEOUT_SECONDS) as answer:
        return store_errors(answer.read().decode())


def burst_failures(figures, within=BURST_WITHIN_SECONDS):
    """Why the burst misses its target ([] when it meets it): no answer
    blames the store, the Redis error metric unchanged, every answer 200,
    429 or 503-overloaded, all within `within` seconds."""
    failures = []
    counts = figures["answers"]
    if counts.get("503 store"):
        failures.append("%d answers blame the store" % counts["503 store"])
    if figures["store_errors_after"] != figures["store_errors_before"]:
        failures.append("the Redis error metric went %g -> %g" % (
            figures["store_errors_before"], figures["store_errors_after"]))
    others = {kind: count for kind, count in counts.items()
              if kind not in ALLOWED_KINDS + ("503 store",)}
    if others:
        failures.append("other answers: %s" % ", ".join(
            "%s: %d" % item for item in others.items()))
    if figures["all_answered_s"] is None:
        failures.append("not every call was answered")
    elif figures["all_answered_s"] > within:
        failures.append("the last answer came after %.1f s (> %g s)" % (
            figures["all_answered_s"], within))
    return failures


async def read_answer(reader):
    """(code, body) of the next answer on `reader`, (None, b"") when the
    connection ends or fails first."""
    try:
        code, length = parse_head(await reader.readuntil(b"\r\n\r\n"))
        return code, await reader.readexactly(length)
    except (OSError, EOFError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError, ValueError, IndexError):
        return None, b""


async def burst_round(port, request, connections):
    """`connections` connections opened, then `request` sent on each at
    once: [(code, body, seconds from the sending to the answer)]."""
    opened = await asyncio.gather(*(asyncio.wait_for(
        asyncio.open_connection(servers.HOST, port),
        ANSWER_TIMEOUT_SECONDS) for _ in range(connections)),
        return_exceptions=True)
    streams = [pair for pair in opened if not isinstance(pair, BaseException)]
    started = time.monotonic()
    for _, writer in streams:
        writer.write(request)

    async def answer(reader):
        try:
            code, body = await asyncio.wait_for(read_answer(reader),
                                                ANSWER_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            code, body = None, b""
        return code, body, time.monotonic() - started

    answers = await asyncio.gather(*(answer(reader) for reader, _ in streams))
    for _, writer in streams:
        writer.close()
    failed = len(opened) - len(streams)
    return list(answers) + [(None, b"", None)] * failed


def burst(port, connections=BURST_CONNECTIONS, ids=BURST_IDS,
          rounds=BURST_ROUNDS):
    """The burst's figures against the service on `port`."""
    request = http_post(loads.encoded(api_request(
        "clients_interests", {"client_ids": list(range(ids))})))
    before = read_store_errors(port)
    answers, rounds_s = [], []
    for _ in range(rounds):
        this_round = asyncio.run(burst_round(port, request, connections))
        answers.extend(this_round)
        times = [seconds for code, _, seconds in this_round
                 if code is not None]
        rounds_s.append(max(times) if len(times) == len(this_round)
                        else None)
    return {
        "connections": connections, "ids": ids, "rounds": rounds,
        "answers": count_kinds((code, body) for code, body, _ in answers),
        "rounds_all_answered_s": rounds_s,
        "all_answered_s": (None if None in rounds_s else max(rounds_s)),
        "store_errors_before": before,
        "store_errors_after": read_store_errors(port),
    }


# -- the lock-out: idle sockets at max_connections -------------------------

LOCKOUT_MAX_CONNECTIONS = 200
LOCKOUT_SILENT = 300
LOCKOUT_IDLE = 50
LOCKOUT_ANSWERED_WITHIN_SECONDS = 2.0
TRICKLE_INTERVAL_SECONDS = 0.5
HEADER_TIMEOUT_SECONDS = 10.0  # config.ini's default
HEADER_TIMEOUT_SLACK = 1.25
HEALTH = (b"GET /health HTTP/1.1\r\nHost: %s\r\n\r\n"
          % servers.HOST.encode())


def lockout_failures(figures):
    """Why the lock-out misses its target ([] when it meets it): the new
    client answered within 2 s, the trickled head cut within 1.25 x
    header_timeout."""
    failures = []
    answered = figures["new_client_s"]
    if answered is None:
        failures.append("the new client got no answer")
    elif answered > LOCKOUT_ANSWERED_WITHIN_SECONDS:
        failures.append("the new client waited %.2f s (> %g s)" % (
            answered, LOCKOUT_ANSWERED_WITHIN_SECONDS))
    bound = HEADER_TIMEOUT_SLACK * figures["header_timeout_s"]
    cut = figures["trickle_cut_s"]
    if cut is None:
        failures.append("the trickled head was never cut")
    elif cut > bound:
        failures.append("the trickled head was cut after %.1f s (> %g s)"
                        % (cut, bound))
    return failures


async def open_quietly(port, timeout):
    """A connection to `port`, or None when none opens within
    `timeout`."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(servers.HOST, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return None


async def one_call(port, timeout):
    """(code, seconds, the connection) of a GET /health on a new
    connection: the code None when unanswered within `timeout`."""
    started = time.monotonic()

    async def call():
        pair = await open_quietly(port, timeout)
        if pair is None:
            return None, None
        pair[1].write(HEALTH)
        code, _ = await read_answer(pair[0])
        return code, pair

    try:
        code, pair = await asyncio.wait_for(call(), timeout)
    except asyncio.TimeoutError:
        code, pair = None, None
    return code, time.monotonic() - started, pair


async def trickle(port, limit):
    """Seconds from connecting until the service cut (or answered) a head
    sent a byte every TRICKLE_INTERVAL_SECONDS; None when it held it past
    `limit` seconds."""
    started = time.monotonic()
    pair = await open_quietly(port, limit)
    if pair is None:
        return None
    reader, writer = pair
    head = (b"GET /health HTTP/1.1\r\nHost: %s\r\nX-Trickle: %s\r\n\r\n"
            % (servers.HOST.encode(), b"." * int(
                2 * limit / TRICKLE_INTERVAL_SECONDS)))

    async def feed():
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(TRICKLE_INTERVAL_SECONDS)

    feeding = asyncio.ensure_future(feed())
    try:
        await asyncio.wait_for(reader.read(1), limit - (
            time.monotonic() - started))
        cut = time.monotonic() - started
    except asyncio.TimeoutError:
        cut = None
    except OSError:
        cut = time.monotonic() - started
    feeding.cancel()
    with contextlib.suppress(asyncio.CancelledError, OSError):
        await feeding
    writer.close()
    return cut


async def lockout_scenario(port, header_timeout):
    silent = await asyncio.gather(*(open_quietly(port, 5.0)
                                    for _ in range(LOCKOUT_SILENT)))
    idle = await asyncio.gather(*(one_call(port, 15.0)
                                  for _ in range(LOCKOUT_IDLE)))
    code, seconds, pair = await one_call(port, 15.0)
    cut = await trickle(port, 3 * header_timeout)
    for held in [*silent, *(call[2] for call in idle), pair]:
        if held is not None:
            held[1].close()
    return {
        "max_connections": LOCKOUT_MAX_CONNECTIONS,
        "header_timeout_s": header_timeout,
        "silent_opened": sum(1 for held in silent if held is not None),
        "idle_answered": sum(1 for call in idle if call[0] is not None),
        "new_client_code": code,
        "new_client_s": seconds if code is not None else None,
        "trickle_cut_s": cut,
    }


def lockout(port, header_timeout):
    return asyncio.run(lockout_scenario(port, header_timeout))


@contextlib.contextmanager
def running_on(cpus):
    """This process (the bench's sockets) on `cpus` meanwhile, as wrk."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


PARTS = ("partners", "cost", "burst", "lockout")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./run.sh bench --fairness",
                                     description=__doc__)
    parser.add_argument("--duration", type=int, default=6,
                        metavar="SECONDS", help="seconds of each scenario")
    parser.add_argument("--connections", type=int, default=800,
                        help="the flood's connections (wrk -c)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the figures there")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable): %s"
                        % ", ".join(PARTS))
    parser.add_argument("--header-timeout", type=float, metavar="SECONDS",
                        help="the lock-out's [server] header_timeout"
                        " (default: config.ini's, %g s)"
                        % HEADER_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    args.only = args.only or list(PARTS)
    return args


def main(argv):
    args = parse_args(argv)
    if {"partners", "cost"} & set(args.only) and shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (Debian: apt-get"
                         " install wrk)")
    cpus = split_cpus(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp(prefix="scoring-bench-fairness-")
    load_before = load_average()
    figures = {}
    try:
        if {"partners", "cost"} & set(args.only):
            partners(args, cpus, workdir, figures)
        if "burst" in args.only:
            progress("burst: %d connections x %d ids, %d rounds" % (
                BURST_CONNECTIONS, BURST_IDS, BURST_ROUNDS))
            with started_service("burst", {}, cpus, workdir,
                                 BURST_IDS) as service:
                with running_on(cpus[1]):
                    figures["burst"] = burst(service.port)
            figures["burst"]["failures"] = burst_failures(figures["burst"])
        if "lockout" in args.only:
            progress("lock-out: %d silent sockets, %d idle keep-alive at"
                     " max_connections %d" % (
                         LOCKOUT_SILENT, LOCKOUT_IDLE,
                         LOCKOUT_MAX_CONNECTIONS))
            settings = {"SCORING_SERVER_MAX_CONNECTIONS":
                        str(LOCKOUT_MAX_CONNECTIONS)}
            if args.header_timeout is not None:
                settings["SCORING_SERVER_HEADER_TIMEOUT"] = "%g" % (
                    args.header_timeout)
            with started_service("lock-out", settings, cpus,
                                 workdir) as service:
                with running_on(cpus[1]):
                    figures["lockout"] = lockout(
                        service.port,
                        args.header_timeout or HEADER_TIMEOUT_SECONDS)
            figures["lockout"]["failures"] = lockout_failures(
                figures["lockout"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures, args, cpus, load_before)
    if args.json:
        with open(args.json, "w") as output:
            json.dump(figures, output, indent=1)


@contextlib.contextmanager
def started_service(name, settings, cpus, workdir, interests=0):
    """The service alone (one worker, config.ini but `settings`) with a
    redis-server of its own holding interests for ids 0..`interests`-1."""
    redis_server = RedisServer(cpus[1])
    service = None
    try:
        redis_server.start()
        if interests:
            redis_server.load_interests(range(interests))
        service = servers.start(Server("service, %s" % name, "service",
                                       settings),
                                free_port(), workdir, redis_server.url,
                                prefix=pinned([], cpus[0]))
        service.wait_until_answering()
        yield service
    finally:
        if service is not None:
            service.stop()
        redis_server.stop()


def partners(args, cpus, workdir, figures):
    """The quiet partner beside the flood, and the cost of quotas."""
    redis_server = RedisServer(cpus[1])
    started = []
    try:
        redis_server.start()
        running = {}
        for name, settings in (("off", QUOTAS_OFF), ("on", QUOTAS_ON),
                               ("counting", QUOTAS_COUNTING)):
            service = servers.start(
                Server("service, quotas %s" % name, "service", settings),
                free_port(), workdir, redis_server.url,
                prefix=pinned([], cpus[0]))
            started.append(service)
            service.wait_until_answering()
            running[name] = service
        if "partners" in args.only:
            figures["scenarios"] = []
            for quotas in ("off", "on"):
                for with_flood in (False, True):
                    progress("fairness: quotas %s, %s" % (
                        quotas,
                        "beside the flood" if with_flood else "alone"))
                    result = scenario(running[quotas].port, args.duration,
                                      args.connections, workdir, cpus[1],
                                      with_flood)
                    result.update(quotas=quotas, flood_beside=with_flood)
                    figures["scenarios"].append(result)
        if "cost" in args.only:
            figures["cost_us"] = {}
            for name in ("off", "counting") * COST_ROUNDS:
                progress("cost: quotas %s" % name)
                figures["cost_us"].setdefault(name, []).append(
                    cost(running[name], max(3, args.duration // 2), workdir,
                         cpus[1]))
    finally:
        for service in started:
            service.stop()
        redis_server.stop()


def verdict(target, failures):
    """The PASS/FAIL line of `target` given its failures."""
    if not failures:
        return "PASS %s" % target
    return "FAIL %s: %s" % (target, "; ".join(failures))


def report(figures, args, cpus, load_before):
    print("machine: %(cpu)s, %(cores)d cores" % machine()
          + "; service on CPU %s, wrk, Redis and the bench's clients on %s"
          % (",".join(map(str, cpus[0])) or "any",
             ",".join(map(str, cpus[1])) or "any"))
    if "scenarios" in figures:
        report_partners(figures, args)
    if "cost_us" in figures:
        off = statistics.median(figures["cost_us"]["off"])
        on = statistics.median(figures["cost_us"]["counting"])
        print("cost of quotas on a cache hit (wrk -c%d, CPU time a call,"
              " median of %d rounds): off %.0f us, on %.0f us (%+.1f %%)"
              % (COST_CONNECTIONS, COST_ROUNDS, off, on,
                 100 * (on / off - 1)))
    if "burst" in figures:
        report_burst(figures["burst"])
    if "lockout" in figures:
        report_lockout(figures["lockout"])
    print("load average (1, 5, 15 min): %s before, %s after" % (
        load_before, load_average()))


def report_partners(figures, args):
    print("a quiet partner: 1 online_score / %d ms on one connection, %d s;"
          " the flood: wrk -c%d; quotas on: rate %d/s, burst %d for every"
          " partner" % (1000 * QUIET_INTERVAL_SECONDS, args.duration,
                        args.connections, RATE, BURST))
    print("%-7s %-8s %14s %8s %8s  %-26s %s" % (
        "quotas", "flood", "quiet 200/sent", "p50 ms", "p99 ms",
        "quiet codes", "flood: calls/s, answers >= 400"))
    for result in figures["scenarios"]:
        flood_figures = result["flood"]
        print("%-7s %-8s %14s %8.1f %8.1f  %-26s %s" % (
            result["quotas"], "beside" if result["flood_beside"] else "none",
            "%d/%d" % (result["answered_200"], result["sent"]),
            result["p50_ms"], result["p99_ms"],
            " ".join("%s:%d" % item for item in result["codes"].items()),
            "%.0f, %d" % (flood_figures["rps"],
                          flood_figures["errors"]["status"])
            if flood_figures else "-"))


def seconds_text(seconds):
    return "never" if seconds is None else "%.2f s" % seconds


def report_burst(result):
    print("the burst: %d connections each send one clients_interests of %d"
          " ids at once, %d rounds (one worker, its own Redis)" % (
              result["connections"], result["ids"], result["rounds"]))
    print("  answers: %s" % ", ".join(
        "%s: %d" % item for item in result["answers"].items()))
    print("  every answer in by: %s (each round: %s)" % (
        seconds_text(result["all_answered_s"]),
        ", ".join(map(seconds_text, result["rounds_all_answered_s"]))))
    print('  scoring_api_redis_errors_total{role="store"}: %g before,'
          " %g after" % (result["store_errors_before"],
                         result["store_errors_after"]))
    print(verdict("burst: no answer blames the store, the Redis error"
                  " metric unchanged, every answer 200, 429 or"
                  " 503-overloaded within %g s" % BURST_WITHIN_SECONDS,
                  result["failures"]))


def report_lockout(result):
    print("the lock-out: max_connections %d, header_timeout %g s; %d silent"
          " sockets opened, %d idle keep-alive connections answered" % (
              result["max_connections"], result["header_timeout_s"],
              result["silent_opened"], result["idle_answered"]))
    print("  a new client answered (%s) after %s; a head trickled a byte"
          " every %g s cut after %s" % (
              result["new_client_code"], seconds_text(result["new_client_s"]),
              TRICKLE_INTERVAL_SECONDS, seconds_text(result["trickle_cut_s"])))
    print(verdict("lock-out: a new client answered within %g s, a trickled"
                  " head cut within %g x header_timeout = %g s" % (
                      LOCKOUT_ANSWERED_WITHIN_SECONDS, HEADER_TIMEOUT_SLACK,
                      HEADER_TIMEOUT_SLACK * result["header_timeout_s"]),
                  result["failures"]))

"""./run.sh bench --fairness: partners sharing one service (docs/
performance.md).

A quiet partner sends one online_score every 20 ms on one keep-alive
connection: alone, then beside a flooding partner (wrk, many
connections, as fast as it answers), with quotas off and on
([limits] rate and burst for every partner: the quiet one stays within
its quota, the flood is far over it). Then the cost of quotas on a cache
hit: the service's CPU time a call (from /proc) under wrk's hit script,
quotas off against quotas on with a rate nothing reaches (every call
counted, nothing refused). About a minute.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time

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


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./run.sh bench --fairness",
                                     description=__doc__)
    parser.add_argument("--duration", type=int, default=6,
                        metavar="SECONDS", help="seconds of each scenario")
    parser.add_argument("--connections", type=int, default=800,
                        help="the flood's connections (wrk -c)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the figures there")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (Debian: apt-get"
                         " install wrk)")
    cpus = split_cpus(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp(prefix="scoring-bench-fairness-")
    redis_server = RedisServer(cpus[1])
    load_before = load_average()
    started = []
    figures = {"scenarios": [], "cost_us": {}}
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
        for quotas in ("off", "on"):
            for with_flood in (False, True):
                progress("fairness: quotas %s, %s" % (
                    quotas, "beside the flood" if with_flood else "alone"))
                result = scenario(running[quotas].port, args.duration,
                                  args.connections, workdir, cpus[1],
                                  with_flood)
                result.update(quotas=quotas, flood_beside=with_flood)
                figures["scenarios"].append(result)
        for name in ("off", "counting") * COST_ROUNDS:
            progress("cost: quotas %s" % name)
            figures["cost_us"].setdefault(name, []).append(
                cost(running[name], max(3, args.duration // 2), workdir,
                     cpus[1]))
    finally:
        for service in started:
            service.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures, args, cpus, load_before)
    if args.json:
        with open(args.json, "w") as output:
            json.dump(figures, output, indent=1)


def report(figures, args, cpus, load_before):
    print("machine: %(cpu)s, %(cores)d cores" % machine()
          + "; service on CPU %s, wrk, Redis and the quiet partner on %s"
          % (",".join(map(str, cpus[0])) or "any",
             ",".join(map(str, cpus[1])) or "any"))
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
    off = statistics.median(figures["cost_us"]["off"])
    on = statistics.median(figures["cost_us"]["counting"])
    print("cost of quotas on a cache hit (wrk -c%d, CPU time a call,"
          " median of %d rounds): off %.0f us, on %.0f us (%+.1f %%)" % (
              COST_CONNECTIONS, COST_ROUNDS, off, on, 100 * (on / off - 1)))
    print("load average (1, 5, 15 min): %s before, %s after" % (
        load_before, load_average()))

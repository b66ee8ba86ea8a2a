"""The benchmark: the service beside a reference server, in the same run.

    ./run.sh bench [--duration SECONDS] [--only SCENARIO ...]

Starts its own redis-server on a free port, loads interests, starts the
reference server (bench/reference.py) and the service (config.ini, log
to a file at INFO, as in production) with 1 and 2 workers and with a dead
cache, warms each up for a second per scenario, drives each with wrk (one
thread, so the load generator takes as little of the 2 cores as it can)
and prints one table; the same rows go to
bench/results/latest.json. Ratios are against the reference in the same
scenario and concurrency, measured minutes apart on the same machine.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench.service import ROOT, start_service, stop, wait_until_answering
from tests.helpers import api_request
from tests.layers import RedisServer, free_port

RESULTS = os.path.join(ROOT, "bench", "results", "latest.json")
CONCURRENCIES = (16, 64)
PHONE_EMAIL = {"phone": "79175002040", "email": "stupnikov@otus.ru"}
INTEREST_IDS = 100
# Each server runs each scenario once unmeasured first: the first requests
# pay for connecting to Redis, or for finding the cache dead.
WARM_UP_SECONDS = 1

# A new phone every request: every request is a cache miss.
MISS_SCRIPT = """
local counter = 0
local template = %s
request = function()
    counter = counter + 1
    local body = string.format(template, string.format("%%010d", counter))
    return wrk.format("POST", "/method/",
                      {["Content-Type"] = "application/json"}, body)
end
"""
FIXED_SCRIPT = """
wrk.method = "POST"
wrk.path = "/method/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %s
"""


def lua_string(text):
    return "[==[" + text + "]==]"


def fixed(body):
    return FIXED_SCRIPT % lua_string(json.dumps(body))


def miss_script():
    body = json.dumps(api_request("online_score", {
        "phone": "7PHONE", "email": "bench@example.com"}))
    return MISS_SCRIPT % lua_string(
        body.replace("%", "%%").replace("7PHONE", "7%s"))


# name -> (servers it runs on, wrk script, expected status)
SCENARIOS = {
    "score cache hit": (("reference", "service", "service x2"),
                        fixed(api_request("online_score", PHONE_EMAIL)),
                        200),
    "score cache miss": (("reference", "service"), miss_script(), 200),
    "score cache dead": (("service cache dead",),
                         fixed(api_request("online_score", PHONE_EMAIL)),
                         200),
    "interests 10 ids": (("reference", "service"),
                         fixed(api_request("clients_interests",
                                           {"client_ids": list(range(10))})),
                         200),
    "interests 100 ids": (("reference", "service"),
                          fixed(api_request(
                              "clients_interests",
                              {"client_ids": list(range(INTEREST_IDS))})),
                          200),
    "invalid 422": (("service",),
                    fixed(api_request("online_score", {"phone": "123"})),
                    422),
    "bad token 403": (("service",),
                      fixed(api_request("online_score", PHONE_EMAIL,
                                        token="0" * 128)), 403),
}


class Servers:
    """Starts each server once, on demand, and stops them all."""

    def __init__(self, redis_url, workdir):
        self.redis_url = redis_url
        self.workdir = workdir
        self.running = {}  # name -> (port, process, workers)

    def port(self, name):
        if name not in self.running:
            self.running[name] = self._start(name)
        return self.running[name][0]

    def workers(self, name):
        return self.running[name][2]

    def _start(self, name):
        port = free_port()
        if name == "reference":
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.reference", "--port",
                 str(port), "--redis", self.redis_url], cwd=ROOT)
            wait_until_answering(port, "/method/")
            return port, process, 1
        workers = 2 if name == "service x2" else 1
        dead_cache = "redis://127.0.0.1:%d/0" % free_port()
        process = start_service(
            port, self.redis_url,
            os.path.join(self.workdir, name.replace(" ", "-") + ".log"),
            SCORING_SERVER_WORKERS=str(workers),
            SCORING_CACHE_URL=dead_cache if name == "service cache dead"
            else "")
        return port, process, workers

    def stop(self):
        for _, process, _ in self.running.values():
            stop(process)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(port, script_path, connections, duration):
    output = subprocess.run(
        ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency",
         "-s", script_path, "http://127.0.0.1:%d/method/" % port],
        capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", output, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _milliseconds(percentiles["50"]),
        "p99_ms": _milliseconds(percentiles["99"]),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def run(duration, only):
    rows = []
    workdir = tempfile.mkdtemp(prefix="scoring-bench-")
    redis_server = RedisServer(free_port())
    redis_server.start()
    servers = Servers(redis_server.url, workdir)
    try:
        with redis_server.client() as client:
            client.mset({"i:%d" % cid: json.dumps(["cars", "pets", "tv"])
                         for cid in range(INTEREST_IDS)})
        for scenario, (names, script, expected) in SCENARIOS.items():
            if only and scenario not in only:
                continue
            script_path = os.path.join(workdir, "script.lua")
            with open(script_path, "w") as script_file:
                script_file.write(script)
            for name in names:  # warm-up, not measured
                run_wrk(servers.port(name), script_path, CONCURRENCIES[0],
                        WARM_UP_SECONDS)
            for connections in CONCURRENCIES:
                reference = None
                for name in names:
                    port = servers.port(name)
                    result = run_wrk(port, script_path, connections, duration)
                    if name == "reference":
                        reference = result["rps"]
                    row = dict(scenario=scenario, server=name,
                               workers=servers.workers(name),
                               concurrency=connections, **result)
                    row["vs_reference"] = (
                        round(result["rps"] / reference, 2)
                        if reference else None)
                    row["expected_status"] = expected
                    rows.append(row)
                    print_row(row)
    finally:
        servers.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


HEADER = "%-18s %-19s %7s %5s %10s %9s %9s %7s" % (
    "scenario", "server", "workers", "conc", "req/s", "p50 ms", "p99 ms",
    "vs ref")


def print_row(row):
    flag = ""
    if row["expected_status"] == 200 and row["non_2xx"]:
        flag = "  (%d non-2xx!)" % row["non_2xx"]
    if row["socket_errors"]:
        flag += "  (socket errors: %s)" % row["socket_errors"]
    print("%-18s %-19s %7d %5d %10.0f %9.2f %9.2f %7s%s" % (
        row["scenario"], row["server"], row["workers"], row["concurrency"],
        row["rps"], row["p50_ms"], row["p99_ms"],
        "%.2fx" % row["vs_reference"] if row["vs_reference"] else "-",
        flag), flush=True)


def machine():
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            model = re.search(r"model name\s*:\s*(.*)", cpuinfo.read())
            return "%s, %d cores" % (model.group(1) if model else "?",
                                     os.cpu_count())
    return "%d cores" % os.cpu_count()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=4,
                        help="seconds per wrk run (default 4)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS,
                        metavar="SCENARIO", help="run only these scenarios")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")
    print("machine: %s" % machine())
    print(HEADER)
    rows = run(args.duration, args.only)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as results:
        json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                   "duration_s": args.duration, "rows": rows},
                  results, indent=1)
    print("rows written to %s" % os.path.relpath(RESULTS, ROOT))


if __name__ == "__main__":
    main()

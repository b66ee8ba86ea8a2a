"""Soak under faults: steady mixed traffic while Redis dies and returns.

    ./run.sh soak [--mode standalone|sentinel|cluster]   (about 40 seconds)
    (python -m tests.soak ...)

Starts its own Redis (one redis-server; or a master, a replica and three
sentinels; or a cluster of three masters and three replicas, as the test
layers do) and the service (config.ini, so the shipped timeouts are what
is measured), loads interests, then sends online_score and
clients_interests from a few concurrent clients while the (master) Redis
is killed twice. Standalone, it is restarted after a while; in sentinel
and cluster mode a replica takes over by itself, and the killed process
comes back later as a replica. Prints the codes per method, the longest
response, when interests failed and answered again after each kill, and
exits 1 if a promise broke: an online_score that is not 200, a response
slower than the budget, a 503 from clients_interests while Redis was up
(standalone) or past the failover bound (other modes), or interests that
never came back.
"""
import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import redis
from tornado.httpclient import AsyncHTTPClient

from scoring_api.config import load_settings
from tests.support.helpers import api_request
from tests.support.layers import RedisServer, free_port
from tests.support.topologies import (SERVICE_NAME, RedisClusterSet,
                                      SentinelSet,
                                      cluster_failover_bound_seconds,
                                      sentinel_failover_bound_seconds)

CLIENT_IDS = list(range(10))
# (seconds from the start, what happens to Redis)
SCHEDULE = [(8.0, "kill"), (14.0, "restore"), (22.0, "kill"),
            (28.0, "restore")]
DURATION_SECONDS = 36.0
CLIENTS = 8
PAUSE_BETWEEN_REQUESTS_SECONDS = 0.01
# A 503 may start just before a restart and end just after it.
GRACE_SECONDS = 0.5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def start_service(port, redis_url, log_path, **settings):
    """`python -m scoring_api` with config.ini on `port`, over the Redis at
    `redis_url`, its log in `log_path`; `settings`: more SCORING_*
    variables. Returns the process once /health answers."""
    environ = dict(os.environ, SCORING_STORE_URL=redis_url,
                   SCORING_SERVER_LOG_FILE=log_path, **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "scoring_api", "--config",
         os.path.join(ROOT, "config.ini"), "--port", str(port)],
        env=environ, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % port,
                                   timeout=1)
            return process
        except urllib.error.HTTPError:
            return process  # it answered
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError("the service on port %d did not answer in %.0f s"
                       % (port, START_TIMEOUT_SECONDS))


def stop(process):
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Standalone:
    """One redis-server: interests fail from the kill to the restart."""

    name = "standalone"
    failover_bound = None  # nothing fails over: it is down until restored

    def __init__(self):
        self.server = RedisServer(free_port())

    def start(self):
        self.server.start()

    def stop(self):
        self.server.stop()

    def where(self):
        return "Redis on port %d" % self.server.port

    def environ(self):
        return {"SCORING_STORE_URL": self.server.url}

    def load(self, mapping):
        with self.server.client() as client:
            client.mset(mapping)

    def kill(self):
        self.server.kill()

    def restore(self):
        self.server.start()


class Sentinel:
    """A master, a replica and three sentinels: the replica takes over."""

    name = "sentinel"
    failover_bound = sentinel_failover_bound_seconds()

    def __init__(self):
        self.topology = SentinelSet()

    def start(self):
        self.topology.start()

    def stop(self):
        self.topology.stop()

    def where(self):
        return "sentinels %s, master on port %d" % (
            self.topology.setting, self.topology.master().port)

    def environ(self):
        return {"SCORING_STORE_MODE": "sentinel", "SCORING_STORE_URL": "",
                "SCORING_STORE_SENTINELS": self.topology.setting,
                "SCORING_STORE_SERVICE_NAME": SERVICE_NAME}

    def load(self, mapping):
        with self.topology.master().client() as client:
            client.mset(mapping)
            client.execute_command("WAIT", 1, 2000)  # the replica has it

    def kill(self):
        self.topology.kill_master()

    def restore(self):
        self.topology.wait_until_whole()


class Cluster:
    """Three masters and three replicas: the killed master's replica takes
    over its slots."""

    name = "cluster"
    failover_bound = cluster_failover_bound_seconds()

    def __init__(self):
        self.topology = RedisClusterSet()

    def start(self):
        self.topology.start()

    def stop(self):
        self.topology.stop()

    def where(self):
        return "cluster on ports %s" % ",".join(
            str(node.port) for node in self.topology.nodes)

    def environ(self):
        return {"SCORING_STORE_MODE": "cluster",
                "SCORING_STORE_URL": self.topology.url}

    def load(self, mapping):
        seed = self.topology.nodes[0]
        with redis.RedisCluster("127.0.0.1", seed.port) as client:
            client.mset_nonatomic(mapping)
        for node in self.topology.masters():
            with node.client() as client:
                client.execute_command("WAIT", 1, 2000)

    def kill(self):
        # The master of client 0's key: every interests call needs it.
        self.topology.master_of("i:%d" % CLIENT_IDS[0]).kill()

    def restore(self):
        self.topology.wait_until_whole()


MODES = {mode.name: mode for mode in (Standalone, Sentinel, Cluster)}


class Soak:
    def __init__(self, service_url, mode):
        self.url = service_url + "/method/"
        self.mode = mode
        self.redis_down = []  # [start, end) intervals, monotonic seconds
        self.codes = collections.defaultdict(collections.Counter)
        self.longest = (0.0, None)
        self.late_503 = []
        self.kills = []  # monotonic time of each kill
        self.restores = []  # monotonic time of each restore
        self.interests = []  # (sent, done, code) of clients_interests
        self.http = None

    def down_at(self, moment):
        return any(start - GRACE_SECONDS <= moment < end + GRACE_SECONDS
                   for start, end in self.redis_down)

    async def faults(self, started):
        loop = asyncio.get_running_loop()
        for at, action in SCHEDULE:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            if action == "kill":
                self.mode.kill()
                now = time.monotonic()
                self.kills.append(now)
                self.redis_down.append([now, float("inf") if
                                        self.mode.failover_bound is None
                                        else now + self.mode.failover_bound])
            else:
                # Waiting for a topology to be whole takes seconds: not on
                # the loop that times the traffic.
                await loop.run_in_executor(None, self.mode.restore)
                now = time.monotonic()
                if self.mode.failover_bound is None:
                    self.redis_down[-1][1] = now
                self.restores.append(now)
            print("%5.1fs  redis %s" % (time.monotonic() - started, action),
                  flush=True)

    async def client(self, number, deadline):
        sequence = 0
        while time.monotonic() < deadline:
            sequence += 1
            if sequence % 2:
                body = api_request("online_score", {
                    "phone": "7%010d" % (number * 1000 + sequence % 50),
                    "email": "u%d@example.com" % number})
            else:
                body = api_request("clients_interests",
                                   {"client_ids": CLIENT_IDS})
            await self.send(body)
            await asyncio.sleep(PAUSE_BETWEEN_REQUESTS_SECONDS)

    async def send(self, body):
        sent = time.monotonic()
        response = await self.http.fetch(
            self.url, method="POST", body=json.dumps(body),
            raise_error=False, request_timeout=30)
        done = time.monotonic()
        method = body["method"]
        self.codes[method][response.code] += 1
        if done - sent > self.longest[0]:
            self.longest = (done - sent, method)
        if method == "clients_interests":
            self.interests.append((sent, done, response.code))
            if response.code == 503 and not self.down_at(sent):
                self.late_503.append(sent)

    def outages(self):
        """(first 503, last 503, first 200 again) of interests after each
        kill, in seconds from it (when the answer came); None if none."""
        result = []
        ends = self.kills[1:] + [float("inf")]
        for kill, end in zip(self.kills, ends):
            failed = [done - kill for sent, done, code in self.interests
                      if code == 503 and kill <= done < end]
            again = [done - kill for sent, done, code in self.interests
                     if code == 200 and failed and kill + failed[0] <= sent
                     < end]
            result.append((min(failed, default=None),
                           max(failed, default=None),
                           min(again, default=None)))
        return result

    async def run(self):
        self.http = AsyncHTTPClient(max_clients=CLIENTS)
        started = time.monotonic()
        deadline = started + DURATION_SECONDS
        await asyncio.gather(
            self.faults(started),
            *(self.client(n, deadline) for n in range(CLIENTS)))


def _seconds(value):
    return "never" if value is None else "%.3fs" % value


def report(soak, budget):
    print("\ncodes per method:")
    for method, counter in sorted(soak.codes.items()):
        print("  %-18s %s" % (method, ", ".join(
            "%d: %d" % item for item in sorted(counter.items()))))
    print("longest response: %.3fs (%s); budget %.2fs"
          % (soak.longest[0], soak.longest[1], budget))
    outages = soak.outages()
    for number, (first, last, again) in enumerate(outages, 1):
        print("kill %d: interests 503 from %s to %s, 200 again at %s after"
              " the kill" % (number, _seconds(first), _seconds(last),
                             _seconds(again)))
    bound = soak.mode.failover_bound
    if bound is None:
        for number, restore in enumerate(soak.restores, 1):
            again = [done for sent, done, code in soak.interests
                     if code == 200 and sent >= restore]
            print("recovery after restart %d: %s" % (number, _seconds(
                min(again) - restore if again else None)))
    else:
        print("failover bound: %.1fs (from the %s settings)" % (
            bound, soak.mode.name))
    broken = []
    scores = soak.codes["online_score"]
    if set(scores) - {200}:
        broken.append("online_score answered %s" % dict(scores))
    if soak.longest[0] > budget:
        broken.append("a response took %.2fs" % soak.longest[0])
    if soak.late_503:
        broken.append("%d clients_interests 503s while Redis was up"
                      % len(soak.late_503))
    if any(again is None for _, _, again in outages):
        broken.append("clients_interests did not recover")
    elif bound is not None and any(again > bound + budget
                                   for _, _, again in outages):
        broken.append("clients_interests recovered later than %.1fs"
                      % (bound + budget))
    print("\n" + ("FAILED: " + "; ".join(broken) if broken else
                  "OK: every promise held"))
    return 1 if broken else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./run.sh soak",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=MODES, default="standalone",
                        help="the Redis to run and break (default"
                        " standalone)")
    args = parser.parse_args(argv)
    settings = load_settings(os.path.join(ROOT, "config.ini"), {})
    budget = settings.store.worst_call_seconds
    workdir = tempfile.mkdtemp(prefix="scoring-soak-")
    mode = MODES[args.mode]()
    service = None
    try:
        mode.start()
        mode.load({"i:%d" % cid: json.dumps(["cars", "pets"])
                   for cid in CLIENT_IDS})
        port = free_port()
        environ = mode.environ()
        service = start_service(port, environ.pop("SCORING_STORE_URL"),
                                os.path.join(workdir, "service.log"),
                                SCORING_SERVER_LOG_LEVEL="WARNING",
                                **environ)
        print("soak: %d clients for %.0fs against 127.0.0.1:%d, %s"
              % (CLIENTS, DURATION_SECONDS, port, mode.where()), flush=True)
        soak = Soak("http://127.0.0.1:%d" % port, mode)
        asyncio.run(soak.run())
        return report(soak, budget)
    finally:
        if service is not None:
            stop(service)
        mode.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

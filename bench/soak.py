"""Soak under faults: steady mixed traffic while Redis dies and returns.

    ./run.sh soak            (about 40 seconds)

Starts its own redis-server and the service (config.ini, so the shipped
timeouts are what is measured), loads interests, then sends online_score
and clients_interests from a few concurrent clients while Redis is killed
and restarted twice. Prints the codes per method, the longest response and
the recovery time after each restart, and exits 1 if a promise broke:
an online_score that is not 200, a response slower than the budget, or a
503 from clients_interests while Redis was up.
"""
import argparse
import asyncio
import collections
import json
import os
import shutil
import sys
import tempfile
import time

from tornado.httpclient import AsyncHTTPClient

from bench.service import ROOT, start_service, stop
from scoring_api.config import load_settings
from tests.helpers import api_request
from tests.layers import RedisServer, free_port

CLIENT_IDS = list(range(10))
# (seconds from the start, what happens to Redis)
SCHEDULE = [(8.0, "kill"), (14.0, "restart"), (22.0, "kill"),
            (28.0, "restart")]
DURATION_SECONDS = 36.0
CLIENTS = 8
PAUSE_BETWEEN_REQUESTS_SECONDS = 0.01
# A 503 may start just before a restart and end just after it.
GRACE_SECONDS = 0.5


class Soak:
    def __init__(self, service_url, redis_server):
        self.url = service_url + "/method/"
        self.redis = redis_server
        self.redis_down = []  # [start, end) intervals, monotonic seconds
        self.codes = collections.defaultdict(collections.Counter)
        self.longest = (0.0, None)
        self.late_503 = []
        self.restarts = []  # monotonic time of each restart
        self.first_200_after = {}  # restart time -> first good interests
        self.http = None

    def down_at(self, moment):
        return any(start - GRACE_SECONDS <= moment < end + GRACE_SECONDS
                   for start, end in self.redis_down)

    async def faults(self, started):
        for at, action in SCHEDULE:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            if action == "kill":
                self.redis.kill()
                self.redis_down.append([time.monotonic(), float("inf")])
            else:
                self.redis.start()
                now = time.monotonic()
                self.redis_down[-1][1] = now
                self.restarts.append(now)
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
            if response.code == 503 and not self.down_at(sent):
                self.late_503.append(sent)
            if response.code == 200:
                for restart in self.restarts:
                    if sent >= restart:
                        self.first_200_after.setdefault(restart, done)

    async def run(self):
        self.http = AsyncHTTPClient(max_clients=CLIENTS)
        started = time.monotonic()
        deadline = started + DURATION_SECONDS
        await asyncio.gather(
            self.faults(started),
            *(self.client(n, deadline) for n in range(CLIENTS)))


def report(soak, budget):
    print("\ncodes per method:")
    for method, counter in sorted(soak.codes.items()):
        print("  %-18s %s" % (method, ", ".join(
            "%d: %d" % item for item in sorted(counter.items()))))
    print("longest response: %.3fs (%s); budget %.2fs"
          % (soak.longest[0], soak.longest[1], budget))
    for number, restart in enumerate(soak.restarts, 1):
        recovered = soak.first_200_after.get(restart)
        print("recovery after restart %d: %s" % (number, "never" if
              recovered is None else "%.3fs" % (recovered - restart)))
    broken = []
    scores = soak.codes["online_score"]
    if set(scores) - {200}:
        broken.append("online_score answered %s" % dict(scores))
    if soak.longest[0] > budget:
        broken.append("a response took %.2fs" % soak.longest[0])
    if soak.late_503:
        broken.append("%d clients_interests 503s while Redis was up"
                      % len(soak.late_503))
    if len(soak.first_200_after) < len(soak.restarts):
        broken.append("clients_interests did not recover")
    print("\n" + ("FAILED: " + "; ".join(broken) if broken else
                  "OK: every promise held"))
    return 1 if broken else 0


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(
        argv)
    settings = load_settings(os.path.join(ROOT, "config.ini"), {})
    budget = settings.store.worst_call_seconds
    workdir = tempfile.mkdtemp(prefix="scoring-soak-")
    redis_server = RedisServer(free_port())
    redis_server.start()
    service = None
    try:
        with redis_server.client() as client:
            client.mset({"i:%d" % cid: json.dumps(["cars", "pets"])
                         for cid in CLIENT_IDS})
        port = free_port()
        service = start_service(port, redis_server.url,
                                os.path.join(workdir, "service.log"),
                                SCORING_SERVER_LOG_LEVEL="WARNING")
        print("soak: %d clients for %.0fs against 127.0.0.1:%d, Redis on"
              " port %d" % (CLIENTS, DURATION_SECONDS, port,
                            redis_server.port), flush=True)
        soak = Soak("http://127.0.0.1:%d" % port, redis_server)
        asyncio.run(soak.run())
        return report(soak, budget)
    finally:
        if service is not None:
            stop(service)
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

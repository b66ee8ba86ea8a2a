"""What every bench tool needs and the service does not provide: a Redis
of its own on a free port, tokens, the machine it runs on."""
import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# config.ini's [auth]: the bench never changes it.
ACCOUNT, LOGIN = "horns&hoofs", "h&f"
SALT, ADMIN_LOGIN, ADMIN_SALT = "Otus", "admin", "42"
REDIS_START_TIMEOUT_SECONDS = 10.0
REDIS_STOP_TIMEOUT_SECONDS = 10.0
INTERESTS = ["cars", "pets", "tv"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def user_token(account=ACCOUNT, login=LOGIN):
    return hashlib.sha512(
        ((account or "") + (login or "") + SALT).encode()).hexdigest()


def local_now():
    """The local time the admin token is made of (the service's rule)."""
    return datetime.datetime.now()


def admin_token(now=None):
    now = now or local_now()
    return hashlib.sha512(
        (now.strftime("%Y%m%d%H") + ADMIN_SALT).encode()).hexdigest()


def api_request(method, arguments, login=LOGIN, account=ACCOUNT,
                token=None):
    """A request body (a dict) with a valid token unless `token` is
    given."""
    if token is None:
        token = (admin_token() if login == ADMIN_LOGIN
                 else user_token(account, login))
    return {"account": account, "login": login, "method": method,
            "token": token, "arguments": arguments}


class RedisServer:
    """A redis-server of the bench's own: a free port, no persistence, its
    files in a temporary directory; `cpus` pins it (taskset)."""

    def __init__(self, cpus=None):
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.cpus = cpus
        self.workdir = tempfile.mkdtemp(prefix="scoring-bench-redis-")
        self.process = None

    def start(self):
        command = ["redis-server", "--port", str(self.port),
                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", self.workdir,
                   "--logfile", os.path.join(self.workdir, "redis.log")]
        self.process = subprocess.Popen(
            pinned(command, self.cpus), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server on port %d exited with %d"
                                   % (self.port, self.process.returncode))
            with contextlib.suppress(redis.RedisError):
                with self.client() as client:
                    client.ping()
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server on port %d did not answer in %.0f s"
                           % (self.port, REDIS_START_TIMEOUT_SECONDS))

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=2,
                                    socket_connect_timeout=2)

    def load_interests(self, client_ids):
        """Interests for each of `client_ids` (key i:<id>)."""
        with self.client() as client:
            client.mset({"i:%d" % cid: json.dumps(INTERESTS)
                         for cid in client_ids})

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(REDIS_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def pinned(command, cpus):
    """`command` run on the CPUs `cpus` (taskset -c), or as it is."""
    if not cpus:
        return list(command)
    return ["taskset", "-c", ",".join(map(str, cpus)), *command]


def progress(text):
    print(text, file=sys.stderr, flush=True)


def machine():
    """{"cpu": model name, "cores": number} of this machine."""
    model = None
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            found = re.search(r"model name\s*:\s*(.*)", cpuinfo.read())
            model = found.group(1).strip() if found else None
    return {"cpu": model or "?", "cores": os.cpu_count()}


def load_average():
    """The 1-, 5- and 15-minute load averages, or None without /proc."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/loadavg") as loadavg:
            return [float(value) for value in loadavg.read().split()[:3]]
    return None

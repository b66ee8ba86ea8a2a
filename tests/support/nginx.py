"""A real nginx in front of a service, with the documented configuration.

`documented_site()` is docs/nginx.conf, the site the docs tell operators
to install, so the configuration they get is the one the tests run. `Nginx`
runs it as a process of the tests' own: on a free loopback port, in front
of the service at 127.0.0.1:`service_port`, with its pid file, logs and
temporary files in a directory of its own (nothing under /var, so it
also runs as root), stopped by its pid.

Whether nginx is missing is decided by the test classes (`requires_nginx`),
not by a layer: a layer's setUp that raises fails its whole suite.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from tests.support.helpers import ROOT
from tests.support.layers import free_port, skip_or_fail

SITE = os.path.join(ROOT, "docs", "nginx.conf")
# What the documented site says, and what a test puts in its place.
SERVICE_ADDRESS = "server 127.0.0.1:8080;"
LISTEN = "listen 80;"
START_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 5.0

# The documented site goes inside http {}, as in Debian's nginx.conf.
MAIN_CONFIG = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log error;
events {{
    worker_connections 256;
}}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def nginx_binary():
    """nginx's path: on PATH, or Debian's /usr/sbin (not on every PATH)."""
    return shutil.which("nginx") or shutil.which(
        "nginx", path="/usr/sbin:/usr/local/sbin")


def requires_nginx(test):
    """Skip (or, in CI, fail) `test` when nginx is not installed."""
    if nginx_binary() is None:
        skip_or_fail(test, "nginx is not installed (apt-get install nginx;"
                     " .ci/run installs it)")


def documented_site(path=SITE):
    """docs/nginx.conf: the upstream and server blocks of the site."""
    with open(path, encoding="utf-8") as file:
        return file.read()


def site_for(site, service_port, listen_port):
    """`site` in front of 127.0.0.1:`service_port`, listening on
    127.0.0.1:`listen_port`; each address must be in it once."""
    for placeholder in (SERVICE_ADDRESS, LISTEN):
        if site.count(placeholder) != 1:
            raise ValueError("the nginx site must hold %r once, not %d"
                             " times" % (placeholder, site.count(placeholder)))
    return site.replace(
        SERVICE_ADDRESS, "server 127.0.0.1:%d;" % service_port).replace(
        LISTEN, "listen 127.0.0.1:%d;" % listen_port)


class Nginx:
    """An nginx process of the tests' own in front of one service."""

    def __init__(self, service_port, site=None):
        """`site`: the upstream and server blocks (docs/nginx.conf's by
        default)."""
        self.port = free_port()
        self.prefix = tempfile.mkdtemp(prefix="scoring-test-nginx-")
        # Run as root, nginx's workers are "nobody": they must reach the
        # temporary directories nginx makes (and chowns) in here.
        os.chmod(self.prefix, 0o755)
        self.config = os.path.join(self.prefix, "nginx.conf")
        with open(self.config, "w") as file:
            file.write(MAIN_CONFIG.format(
                prefix=self.prefix, site=site_for(
                    documented_site() if site is None else site,
                    service_port, self.port)))
        self.process = None

    def start(self):
        """Start nginx; return once it accepts connections."""
        with open(os.path.join(self.prefix, "stderr.log"), "w") as stderr:
            self.process = subprocess.Popen(
                [nginx_binary(), "-p", self.prefix, "-c", self.config,
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited with %d: %s" % (
                    self.process.returncode, self.errors()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("nginx did not listen on port %d in %.0fs"
                           % (self.port, START_TIMEOUT_SECONDS))

    def errors(self):
        """What nginx wrote to standard error and its error log."""
        text = []
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.prefix, name)) as file:
                    text.append(file.read())
            except OSError:
                pass
        return "".join(text).strip()

    def stop(self):
        """SIGTERM (nginx's fast stop), SIGKILL to it and its workers past
        the timeout; then remove its directory."""
        if self.process is not None:
            if self.process.poll() is None:
                workers = _children(self.process.pid)
                self.process.terminate()
                try:
                    self.process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()  # workers outlive a killed master
                    for pid in workers:
                        _kill(pid)
                    self.process.wait()
            self.process = None
        shutil.rmtree(self.prefix, ignore_errors=True)


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
            return [int(child) for child in children.read().split()]
    except OSError:  # not Linux, or already gone
        return []


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

"""Starting the service for the soak and the benchmark."""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def start_service(port, redis_url, log_path, **settings):
    """`python -m scoring_api` with config.ini, on `port`, over the Redis
    at `redis_url`; `settings` are more SCORING_* variables. Returns the
    process once /health answers."""
    process = spawn_service(port, redis_url, log_path, **settings)
    try:
        wait_until_answering(port)
    except RuntimeError:
        stop(process)
        raise
    return process


def spawn_service(port, redis_url, log_path, root=ROOT, prefix=(),
                  stderr=None, **settings):
    """The process of `start_service`, without waiting for it to answer;
    `root`: the checkout to run (another one to compare two versions);
    `prefix`: a command that runs Python (e.g. valgrind and its options);
    `stderr`: where the process's standard error goes (default: ours)."""
    environ = dict(os.environ, SCORING_STORE_URL=redis_url,
                   SCORING_SERVER_LOG_FILE=log_path, **settings)
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "scoring_api", "--config",
         os.path.join(root, "config.ini"), "--port", str(port)],
        env=environ, cwd=root, stderr=stderr)


def cpu_seconds(pid):
    """CPU time used so far by the process `pid` and its children."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
            child_pids = [int(child) for child in children.read().split()]
    except OSError:  # no /proc (not Linux), or the process is gone
        return None
    # utime and stime, fields 14 and 15 of proc(5)
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(cpu_seconds(child) or 0.0 for child in child_pids)


def wait_until_answering(port, path="/health",
                         timeout=START_TIMEOUT_SECONDS, process=None):
    """Return once something answers HTTP on `port` (any status); a
    RuntimeError after `timeout` seconds, or as soon as `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the server for port %d exited with %d"
                               % (port, process.returncode))
        try:
            urllib.request.urlopen(
                "http://127.0.0.1:%d%s" % (port, path), timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing answers on port %d" % port)


def stop(process, timeout=10.0):
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

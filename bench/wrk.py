"""wrk: the load generator of the benchmark, its Lua scripts and its output.

One wrk thread, so the load generator takes as little of the machine as
it can; each run is a few seconds against one server.
"""
import json
import os
import re
import subprocess
import tempfile

# The same request every time.
FIXED_SCRIPT = """
wrk.method = "POST"
wrk.path = "/method/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %s
"""
# A new phone every request, counted from a first number given to the run,
# so that no run repeats a phone of an earlier one: every request is a miss.
MISS_SCRIPT = """
local counter = 0
local template = %s
init = function(args)
    counter = tonumber(args[1] or "0")
end
request = function()
    counter = counter + 1
    local body = string.format(template, string.format("%%010d", counter))
    return wrk.format("POST", "/method/",
                      {["Content-Type"] = "application/json"}, body)
end
"""
PHONE_PLACEHOLDER = "7PHONE"


def _lua_string(text):
    return "[==[" + text + "]==]"


def fixed_script(body):
    """A script sending the JSON `body` (a dict) on every request."""
    return FIXED_SCRIPT % _lua_string(json.dumps(body))


def counting_script(body):
    """A script sending `body` with each PHONE_PLACEHOLDER in it replaced
    by a phone not sent before (7 and 10 digits from the run's first
    number)."""
    template = json.dumps(body).replace("%", "%%").replace(
        PHONE_PLACEHOLDER, "7%s")
    return MISS_SCRIPT % _lua_string(template)


class Wrk:
    """Runs wrk with scripts kept in `workdir`."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.paths = {}
        self.runs = 0

    def _path(self, script):
        if script not in self.paths:
            handle, path = tempfile.mkstemp(suffix=".lua", dir=self.workdir)
            with os.fdopen(handle, "w") as script_file:
                script_file.write(script)
            self.paths[script] = path
        return self.paths[script]

    def run(self, port, script, connections, seconds):
        """Drive the server on `port` for `seconds`; the figures of wrk."""
        self.runs += 1
        # Each run's counting script starts at a number of its own.
        first_number = str(self.runs * 10 ** 6)
        output = subprocess.run(
            ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
             "--latency", "-s", self._path(script),
             "http://127.0.0.1:%d/method/" % port, "--", first_number],
            capture_output=True, text=True, check=True).stdout
        return parse(output)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def parse(output):
    """{rps, p50_ms, p99_ms, requests, non_2xx, socket_errors} of one run."""
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output,
                                  re.M))
    if "99" not in percentiles:
        raise ValueError("wrk said something unexpected:\n" + output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _milliseconds(percentiles["50"]),
        "p99_ms": _milliseconds(percentiles["99"]),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }

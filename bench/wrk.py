"""wrk, the load generator: its Lua scripts and its figures.

One wrk thread, pinned to a core of its own; each run drives one server
for a few seconds. A script sends its bodies in turn (the hit script's
1,000 different bodies, so that nothing can answer by remembering whole
requests), or a body with a phone never sent before on each request (a
cache miss). Its `done` prints the figures as one JSON line.
"""
import json
import os
import subprocess
import tempfile

from bench.loads import PHONE_PLACEHOLDER
from bench.support import pinned

# Every request formatted once, in `init`; then sent in turn.
CYCLE_SCRIPT = """
local bodies = {%s}
local formatted = {}
local sent = 0
init = function(args)
    for i, body in ipairs(bodies) do
        formatted[i] = wrk.format("POST", "/method/",
                                  {["Content-Type"] = "application/json"},
                                  body)
    end
    sent = tonumber(args[1] or "0") %% #formatted
end
request = function()
    sent = sent %% #formatted + 1
    return formatted[sent]
end
"""
# A new phone every request, counted from a first number given to the
# run, so that no run repeats a phone of an earlier one.
COUNTING_SCRIPT = """
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
DONE = """
done = function(summary, latency, requests)
    io.write(string.format(
        "%s{\\"requests\\": %%d, \\"duration_us\\": %%d,"
        .. " \\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d,"
        .. " \\"status\\": %%d, \\"timeout\\": %%d,"
        .. " \\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
        summary.requests, summary.duration,
        summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.status, summary.errors.timeout,
        latency:percentile(50), latency:percentile(99)))
end
"""
MARK = "WRK_FIGURES "


def _lua_string(text):
    """`text` as a Lua long string: its closing bracket of a level found
    nowhere before the end."""
    level = 0
    while True:
        closing = "]%s]" % ("=" * level)
        if (text + closing).find(closing) == len(text):
            return "[%s[%s%s" % ("=" * level, text, closing)
        level += 1


def lua_script(script):
    """The Lua text that sends the bodies of `script` (a loads.Script)."""
    if script.counting:
        template = script.bodies[0].decode().replace("%", "%%").replace(
            PHONE_PLACEHOLDER, "7%s")
        text = COUNTING_SCRIPT % _lua_string(template)
    else:
        text = CYCLE_SCRIPT % ",\n".join(_lua_string(body.decode())
                                         for body in script.bodies)
    return text + DONE % MARK


def parse(output):
    """The figures of one run from wrk's standard output: requests, req/s,
    p50 and p99 in ms, and the errors by kind ("status": answers of 400 and
    up)."""
    for line in output.splitlines():
        if line.startswith(MARK):
            figures = json.loads(line[len(MARK):])
            break
    else:
        raise ValueError("wrk printed no figures:\n" + output)
    seconds = figures["duration_us"] / 1e6
    return {
        "requests": figures["requests"],
        "seconds": seconds,
        "rps": figures["requests"] / seconds if seconds else 0.0,
        "p50_ms": figures["p50_us"] / 1000.0,
        "p99_ms": figures["p99_us"] / 1000.0,
        "errors": {kind: figures[kind] for kind in (
            "connect", "read", "write", "status", "timeout")},
    }


class Wrk:
    """Runs wrk on `cpus` with scripts written into `workdir`."""

    def __init__(self, workdir, cpus=None):
        self.workdir = workdir
        self.cpus = cpus
        self.paths = {}
        self.runs = 0

    def _path(self, script):
        if script.name not in self.paths:
            handle, path = tempfile.mkstemp(suffix=".lua", dir=self.workdir)
            with os.fdopen(handle, "w") as lua:
                lua.write(lua_script(script))
            self.paths[script.name] = path
        return self.paths[script.name]

    def run(self, port, script, connections, seconds):
        """Drive the server on `port` with `script` for `seconds`."""
        self.runs += 1
        # Each run's phones (or first body) from a number of its own.
        first_number = str(self.runs * 10 ** 6)
        done = subprocess.run(pinned(
            ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
             "-s", self._path(script), "http://127.0.0.1:%d/method/" % port,
             "--", first_number], self.cpus),
            capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("wrk failed (%d): %s" % (
                done.returncode, done.stderr.strip() or done.stdout))
        return parse(done.stdout)

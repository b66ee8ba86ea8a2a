#!/usr/bin/env bash
# The one entry point of the repository: ./run.sh help lists its commands.
set -euo pipefail
cd "$(dirname "$0")"

CONFIG=config.ini
VENV=.venv
PY=$VENV/bin/python

say() { printf 'run.sh: %s\n' "$*" >&2; }

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

usage() {
    cat <<'USAGE'
usage: ./run.sh [COMMAND [ARGS]]    (README.md explains each)

  (none) [--port N] [--log FILE]      set up .venv, check Redis, serve
  test [--under-load] [NOSE2 ARGS]    flake8, nose2 -v, a counted summary
  load-interests FILE [--partial] [--allow-empty]
                                      load interests into the store
  soak [--mode MODE]                  traffic while Redis dies twice
  bench [--peers] [--quick] [--instructions] [--fairness]
                                      CPU time a call beside its peers (wrk,
                                      callgrind); --help lists the rest
  fuzz [--max-time S] [--seed N]      schemathesis against openapi.json
  mutate [MODULE ...]                 mutation testing, a row a module
  coverage [NOSE2 ARGS]               line and branch coverage
  stop-redis                          stop the redis-server run.sh started
  help, -h, --help                    this list
USAGE
}

# Create the venv and install requirements, only when they changed. The
# test requirements include the service's: their stamp serves for both.
setup_venv() {
    local requirements=$1 stamp="$VENV/.installed-$1" digest
    if [ ! -x "$PY" ] || ! python_ok "$PY"; then
        python_ok python3 || { say "Python 3.11 or newer is needed"; exit 1; }
        say "creating $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV" || {
            say "python3 -m venv failed (Debian: apt-get install python3-venv)"
            exit 1; }
    fi
    digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ] && [ "$(cat \
            "$VENV/.installed-requirements-test.txt" 2>/dev/null)" != "$digest" ]
    then
        say "installing $requirements"
        "$PY" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        echo "$digest" > "$stamp"
    fi
}

# One line: the configured store and cache as they may be printed
# (passwords masked), each followed by "host port" when it is a TCP
# address on this host, "-" otherwise; fields separated by tabs. Nothing
# for a bad config: the server or the loader says what is wrong.
redis_plan() {
    "$PY" - "$CONFIG" <<'PYTHON'
import sys
import urllib.parse
from scoring_api.config import ConfigError, load_settings, mask_url
try:
    settings = load_settings(sys.argv[1])
except ConfigError:
    sys.exit(0)


def described(redis):
    if redis.mode == "sentinel":
        return "sentinel %s via %s" % (redis.service_name, ",".join(
            "%s:%d" % node for node in redis.sentinels))
    prefix = "cluster " if redis.mode == "cluster" else ""
    return prefix + mask_url(redis.url)


def local(redis):
    url = urllib.parse.urlsplit(redis.url)
    if redis.mode == "standalone" and url.scheme == "redis" \
            and url.hostname in ("127.0.0.1", "localhost"):
        return "%s %d" % (url.hostname, url.port or 6379)
    return "-"


same = not (settings.cache.mode or settings.cache.url)
cache = settings.cache_redis
print("\t".join([described(settings.store), local(settings.store),
                 "-" if same else described(cache),
                 "-" if same else local(cache)]))
PYTHON
}

# Exit 0 when Redis at $1:$2 answers a PING, waiting up to $3 seconds
# (default 0: one try); 2 when something there accepts and stays silent or
# is not Redis; 1 when nothing listens.
redis_answers() {
    "$PY" - "$1" "$2" "${3:-0}" <<'PYTHON'
import socket
import sys
import time

host, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + wait
while True:
    try:
        with socket.create_connection((host, port), 0.5) as s:
            s.settimeout(0.5)
            s.sendall(b"PING\r\n")
            answer = s.recv(16)
        sys.exit(0 if answer.startswith((b"+PONG", b"-NOAUTH")) else 2)
    except socket.timeout:
        sys.exit(2)
    except OSError:
        if time.monotonic() >= deadline:
            sys.exit(1)
        time.sleep(0.1)
PYTHON
}

# The state of the Redis at "host port" (or "-": elsewhere), starting a
# local redis-server (data and append-only file under var/redis) when
# `may_start` and it is on this host, down, and the binary is installed.
redis_state() {
    local address=$1 may_start=$2 host port
    if [ "$address" = "-" ]; then
        echo "not on this host, not checked"
        return
    fi
    read -r host port <<< "$address"
    local answer=0
    redis_answers "$host" "$port" || answer=$?
    case $answer in
    0) echo "found running"; return ;;
    2) echo "something on $host:$port accepts but does not answer as Redis;" \
            "not starting one"; return ;;
    esac
    if [ "$may_start" != yes ]; then
        echo "not answering"
        return
    fi
    if ! command -v redis-server > /dev/null; then
        echo "not answering, and redis-server is not installed"
        return
    fi
    mkdir -p var/redis
    if ! redis-server --bind "$host" --port "$port" --dir "$PWD/var/redis" \
            --appendonly yes --save "" --daemonize yes \
            --maxmemory 512mb --maxmemory-policy volatile-lru \
            --pidfile "$PWD/var/redis/redis.pid" \
            --logfile "$PWD/var/redis/redis.log" > /dev/null; then
        echo "redis-server failed to start: see var/redis/redis.log"
        return
    fi
    if redis_answers "$host" "$port" 5; then
        echo "started by run.sh, data in var/redis; it keeps running" \
             "until ./run.sh stop-redis"
    else
        echo "redis-server did not answer within 5 s: see var/redis/redis.log"
    fi
}

# Say which store and cache are used and whether their Redis answers
# (starting the store's when it is local and down). $1: server or loader.
ensure_redis() {
    local plan store store_at cache cache_at state cache_state
    plan=$(redis_plan)
    [ -n "$plan" ] || return 0  # a bad config: the command itself says so
    IFS=$'\t' read -r store store_at cache cache_at <<< "$plan"
    state=$(redis_state "$store_at" yes)
    if [ "$cache" = "-" ]; then
        say "store $store: $state; cache: the same Redis"
    else
        cache_state=$(redis_state "$cache_at" no)
        say "store $store: $state; cache $cache: $cache_state"
    fi
    case "$state" in
    found*|started\ by*|not\ on*) ;;
    *) if [ "$1" = server ]; then
           say "clients_interests answers 503 until the store answers;" \
               "online_score works without it"
       fi ;;
    esac
}

# Stop the redis-server that ./run.sh started (var/redis/redis.pid).
stop_redis() {
    local pidfile=var/redis/redis.pid pid
    pid=$(cat "$pidfile" 2> /dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2> /dev/null \
            || [ "$(cat "/proc/$pid/comm" 2> /dev/null)" != redis-server ]
    then
        say "no redis-server started by run.sh is running"
        return 0
    fi
    kill "$pid"
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2> /dev/null; then
            say "stopped redis-server (pid $pid); its data stays in var/redis"
            return 0
        fi
        sleep 0.1
    done
    say "redis-server (pid $pid) did not stop in 10 s"
    return 1
}

# Make sure the command $1 exists, installing the Debian package $2 with
# apt-get when it is missing (apt-get update once a run).
apt_updated=no
need_tool() {
    command -v "$1" > /dev/null && return 0
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo > /dev/null; then
            say "$1 is not installed: as root, apt-get install $2"
            exit 1
        fi
        sudo=(sudo)
    fi
    if ! command -v apt-get > /dev/null; then
        say "$1 is not installed, and this is not Debian: install $2"
        exit 1
    fi
    say "$1 is not installed: apt-get install $2"
    if [ "$apt_updated" = no ]; then
        "${sudo[@]}" apt-get update -qq \
            || { say "apt-get update failed"; exit 1; }
        apt_updated=yes
    fi
    "${sudo[@]}" apt-get install -y -qq "$2" > /dev/null \
        || { say "apt-get install $2 failed"; exit 1; }
}

# Two CPU-bound processes for as long as this script runs: the suite must
# pass on a busy machine (docs/testing.md). Stopped by pid on any exit.
start_cpu_load() {
    local pids=()
    for _ in 1 2; do
        "$PY" -c 'while True: pass' &
        pids+=("$!")
    done
    # shellcheck disable=SC2064  # the pids are known now
    trap "kill ${pids[*]} 2> /dev/null || true" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    say "under load: CPU-bound processes ${pids[*]} until the tests end"
}

# "N passed, N failed, N skipped" of the last nose2 run, counted from its
# junit report (nose2-junit.xml), plus one failure for each the report
# cannot show: flake8's, and nose2's own when its report has none (a
# layer that failed to set up). $1: flake8's exit code, $2: nose2's.
test_summary() {
    "$PY" - "$1" "$2" <<'PYTHON'
import sys
import xml.etree.ElementTree as ElementTree

flake8, nose2 = int(sys.argv[1]), int(sys.argv[2])
try:
    root = ElementTree.parse("nose2-junit.xml").getroot()
except (OSError, ElementTree.ParseError):
    root = None
suites = [] if root is None else (
    [root] if root.tag == "testsuite" else root.findall("testsuite"))


def count(name):
    return sum(int(suite.get(name, 0)) for suite in suites)


failed = count("failures") + count("errors")
skipped = count("skipped")
passed = max(count("tests") - failed - skipped, 0)
if nose2 and not failed:
    print("run.sh: nose2 failed (exit %d) outside its report: a layer?"
          % nose2, file=sys.stderr)
    failed += 1
if flake8:
    print("run.sh: flake8 failed: counted as one failure", file=sys.stderr)
    failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
PYTHON
}

case "${1:-}" in
help|-h|--help)
    usage
    ;;
test)
    shift
    setup_venv requirements-test.txt
    rm -f nose2-junit.xml
    if [ "${1:-}" = --under-load ]; then
        shift
        start_cpu_load
    fi
    flake8=0 nose2=0
    "$VENV/bin/flake8" scoring_api tests bench || flake8=$?
    "$VENV/bin/nose2" -v "$@" || nose2=$?
    test_summary "$flake8" "$nose2"
    # The verdict is the tools' exit codes; the report only gives counts.
    [ "$nose2" = 0 ] || exit "$nose2"
    exit "$flake8"
    ;;
coverage)
    shift
    setup_venv requirements-test.txt
    rm -rf var/coverage
    mkdir -p var/coverage
    status=0
    "$VENV/bin/coverage" run -m nose2 "$@" || status=$?
    "$VENV/bin/coverage" combine --quiet
    "$VENV/bin/coverage" report
    "$VENV/bin/coverage" json --quiet -o var/coverage/coverage.json
    "$PY" - <<'PYTHON'
import json
totals = json.load(open("var/coverage/coverage.json"))["totals"]
print("lines %d/%d = %.1f %%, branches %d/%d = %.1f %%" % (
    totals["covered_lines"], totals["num_statements"],
    100.0 * totals["covered_lines"] / totals["num_statements"],
    totals["covered_branches"], totals["num_branches"],
    100.0 * totals["covered_branches"] / totals["num_branches"]))
PYTHON
    exit "$status"
    ;;
mutate)
    shift
    setup_venv requirements-test.txt
    exec "$PY" -m tests.mutation.run "$@"
    ;;
bench)
    shift
    setup_venv requirements-test.txt
    case " $* " in
    *" --list "*|*" -h "*|*" --help "*) ;;  # nothing runs
    *" --instructions "*) need_tool valgrind valgrind
                          need_tool callgrind_control valgrind ;;
    # A whole run adds callgrind's attribution to wrk's rounds.
    *" --quick "*|*" --no-callgrind "*) need_tool wrk wrk ;;
    *) need_tool wrk wrk
       need_tool valgrind valgrind
       need_tool callgrind_control valgrind ;;
    esac
    exec "$PY" -m bench.run "$@"
    ;;
soak)
    shift
    setup_venv requirements-test.txt
    exec "$PY" -m tests.soak "$@"
    ;;
load-interests)
    shift
    setup_venv requirements.txt
    ensure_redis loader
    exec "$PY" -m scoring_api.loader --config "$CONFIG" "$@"
    ;;
fuzz)
    shift
    setup_venv requirements-test.txt
    exec "$PY" -m tests.fuzz "$@"
    ;;
stop-redis)
    stop_redis
    ;;
*)
    setup_venv requirements.txt
    ensure_redis server
    exec "$PY" -m scoring_api --config "$CONFIG" "$@"
    ;;
esac

#!/usr/bin/env bash
# ./run.sh [server options]     set up, make sure Redis answers, serve
# ./run.sh test [nose2 args]    set up with test tools, flake8, nose2 -v
# ./run.sh load-interests FILE [--partial]
#                               load interests into the configured store
# ./run.sh soak                 about 40 s of traffic while Redis dies twice
# ./run.sh bench [--quick]      the service beside a reference server and
#                               bare Tornado, in alternation (wrk); --list
#                               names the scenarios, --only runs some
set -euo pipefail
cd "$(dirname "$0")"

CONFIG=config.ini
VENV=.venv
PY=$VENV/bin/python

say() { printf 'run.sh: %s\n' "$*" >&2; }

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

# Create the venv and install requirements, only when they changed.
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
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        say "installing $requirements"
        "$PY" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        echo "$digest" > "$stamp"
    fi
}

# Print "host port" of the configured store, or nothing if it is not a
# TCP address on this host.
local_store_address() {
    "$PY" - "$CONFIG" <<'PYTHON'
import sys
import urllib.parse
from scoring_api.config import ConfigError, load_settings
try:
    url = urllib.parse.urlsplit(load_settings(sys.argv[1]).store.url)
except ConfigError as error:
    sys.exit("run.sh: %s" % error)
if url.scheme == "redis" and url.hostname in ("127.0.0.1", "localhost"):
    print(url.hostname, url.port or 6379)
PYTHON
}

redis_answers() {
    "$PY" - "$1" "$2" <<'PYTHON'
import socket
import sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), 1) as s:
        s.settimeout(1)
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith((b"+PONG", b"-NOAUTH")) else 1)
except OSError:
    sys.exit(1)
PYTHON
}

# Start a local redis-server (data and append-only file under var/) when
# the configured store is on this host and does not answer.
ensure_redis() {
    local address host port
    address=$(local_store_address)
    if [ -z "$address" ]; then
        say "store is not on this host; not starting Redis"
        return
    fi
    read -r host port <<< "$address"
    if redis_answers "$host" "$port"; then
        return
    fi
    if ! command -v redis-server > /dev/null; then
        say "no Redis at $host:$port and redis-server is not installed:"
        say "online_score works without it; clients_interests answers 503"
        return
    fi
    mkdir -p var/redis
    say "starting redis-server on $host:$port (data in var/redis)"
    redis-server --bind "$host" --port "$port" --dir "$PWD/var/redis" \
        --appendonly yes --save "" --daemonize yes \
        --pidfile "$PWD/var/redis/redis.pid" \
        --logfile "$PWD/var/redis/redis.log"
    for _ in $(seq 50); do
        redis_answers "$host" "$port" && return
        sleep 0.1
    done
    say "redis-server did not answer in 5 s: see var/redis/redis.log;"
    say "clients_interests will answer 503 until Redis is up"
}

case "${1:-}" in
test)
    shift
    setup_venv requirements-test.txt
    rm -f nose2-junit.xml
    status=0
    "$VENV/bin/flake8" scoring_api tests bench || status=$?
    "$VENV/bin/nose2" -v "$@" || status=$?
    exit "$status"
    ;;
bench)
    shift
    setup_venv requirements-test.txt
    exec "$PY" -m bench.run "$@"
    ;;
soak)
    shift
    setup_venv requirements-test.txt
    exec "$PY" -m bench.soak "$@"
    ;;
load-interests)
    shift
    setup_venv requirements.txt
    ensure_redis
    exec "$PY" -m scoring_api.loader --config "$CONFIG" "$@"
    ;;
*)
    setup_venv requirements.txt
    ensure_redis
    exec "$PY" -m scoring_api --config "$CONFIG" "$@"
    ;;
esac

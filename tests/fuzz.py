"""Fuzzing the HTTP contract with schemathesis: `./run.sh fuzz`
(python -m tests.fuzz).

Starts its own redis-server (free port, temporary directory) and the
service (config.ini, its own free port), then lets schemathesis send
requests made from scoring_api/openapi.json to every operation for at
most --max-time seconds, checking that no answer is a 500, that every
answer (status, content type, headers, body) is one the document
describes, that a verb the document does not list gets 405, and that no
answer takes longer than --max-response-time. Prints schemathesis's
summary, then the service's own count of the API calls it answered (from
/metrics) by method and code; exits with schemathesis's code.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import urllib.request

from tests.soak import ROOT, start_service, stop
from tests.support.layers import RedisServer, free_port
from tests.support.metrics_text import samples

CHECKS = ("not_a_server_error", "status_code_conformance",
          "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "unsupported_method",
          "allow_header_conformance")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./run.sh fuzz")
    parser.add_argument("--max-time", type=int, default=80,
                        help="seconds of fuzzing in all (default 80)")
    parser.add_argument("--max-examples", type=int, default=2000,
                        help="most POST /method/ requests per phase"
                        " (default 2000)")
    parser.add_argument("--max-response-time", type=float, default=2.0,
                        help="seconds an answer may take (default 2)")
    parser.add_argument("--seed", type=int, help="repeat an earlier run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scoring-fuzz-") as workdir:
        redis_server = RedisServer(free_port())
        redis_server.start()
        try:
            with redis_server.client() as client:
                client.mset({"i:%d" % n: '["cars", "pets"]'
                             for n in range(10)})
            port = free_port()
            service = start_service(
                port, redis_server.url, os.path.join(workdir, "service.log"),
                SCORING_SERVER_LOG_LEVEL="WARNING")
            try:
                status = fuzz(port, args)
                print_counts(port)
                return status
            finally:
                stop(service)
        finally:
            redis_server.stop()


def fuzz(port, args):
    """Two schemathesis runs: a few examples of the GET endpoints, then the
    rest of the time on POST /method/, where the rules are. Returns the
    worse exit code."""
    get_seconds = min(20, args.max_time // 4)
    return max(
        schemathesis(port, args, "--exclude-path", "/method/",
                     "--max-time", str(get_seconds), "--max-examples", "30"),
        schemathesis(port, args, "--include-path", "/method/",
                     "--max-time", str(args.max_time - get_seconds),
                     "--max-examples", str(args.max_examples)))


def schemathesis(port, args, *options):
    command = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run",
        "http://127.0.0.1:%d/openapi.json" % port,
        "--checks", ",".join(CHECKS),
        "--max-response-time", str(args.max_response_time),
        "--request-timeout", str(args.max_response_time + 5),
        "--generation-database", "none",
        "--workers", "2",
        "--no-color",
        *options,
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    environ = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz_hooks",
                   PYTHONPATH=ROOT)
    return subprocess.call(command, env=environ, cwd=ROOT)


def print_counts(port):
    with urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % port, timeout=10) as response:
        scraped = samples(response.read())
    counts = sorted(
        (dict(labels)["api_method"], dict(labels)["code"], int(count))
        for (name, labels), count in scraped.items()
        if name == "scoring_api_requests_total")
    print("API calls the service answered, by method and code:")
    for api_method, code, count in counts:
        print("  %-18s %s %7d" % (api_method, code, count))
    print("  %-18s %s %7d" % ("all", "   ", sum(c for _, _, c in counts)))


if __name__ == "__main__":
    sys.exit(main())

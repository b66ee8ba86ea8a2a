"""online_score on aiohttp.web, one process on uvloop:

    python -m bench.peers.aiohttp_app --port N

aiohttp's own server (`web.run_app`) with its access log, the JSON in and
out with `request.json()` and `web.json_response` (compact, UTF-8, as the
service writes it), the rules of bench/peers/rules.py.
"""
import argparse
import functools
import json
import logging
import sys

import uvloop
from aiohttp import web

from bench.peers import rules

CACHE = web.AppKey("cache", rules.ScoreCache)
DUMPS = functools.partial(json.dumps, separators=(",", ":"),
                          ensure_ascii=False)


def answer(code, payload):
    key = "response" if code == 200 else "error"
    return web.json_response({"code": code, key: payload}, status=code,
                             dumps=DUMPS)


async def method(request):
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return answer(400, "body is not valid JSON")
    if not isinstance(body, dict):
        return answer(400, "body must be a JSON object")
    return answer(*rules.online_score(body, request.app[CACHE]))


def make_app():
    app = web.Application()
    app[CACHE] = rules.ScoreCache()
    app.add_routes([web.post("/method/", method)])
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The access log at INFO, one line a request, to standard output.
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    web.run_app(make_app(), host=args.host, port=args.port, print=None,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()

"""The ceiling: what Tornado alone does for POST /method/ on this machine.

    python -m bench.bare --port N

A RequestHandler answering one fixed JSON body, without reading the
request body: no parsing, no validation, no Redis, no log. A service row
divided by this one is the share of Tornado's best that the service keeps.
"""
import argparse
import asyncio
import logging

from tornado import web
from tornado.httpserver import HTTPServer

BODY = b'{"code": 200, "response": {"score": 3.0}}'


class BareHandler(web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)


async def serve(port):
    app = web.Application([(r"/method/?", BareHandler)])
    HTTPServer(app).listen(port, "127.0.0.1")
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # no access log: a ceiling
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()

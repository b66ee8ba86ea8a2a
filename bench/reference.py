"""The yardstick: the least a Tornado service can do for the same requests.

    python -m bench.reference --port N --redis URL

Parse the JSON, check the token with one sha512, then one redis.asyncio
GET of the cache key (a SET on a miss) for online_score, or one MGET for
clients_interests, and dump the reply. No validation, no logging. It is
measured beside the service, not tuned.
"""
import argparse
import asyncio
import hashlib
import json
import logging

import redis.asyncio as aioredis
from tornado import web
from tornado.httpserver import HTTPServer

SALT = "Otus"


class ReferenceHandler(web.RequestHandler):
    def initialize(self, redis):
        self.redis = redis

    async def post(self):
        request = json.loads(self.request.body)
        token = hashlib.sha512((request.get("account", "") + request["login"]
                                + SALT).encode()).hexdigest()
        if token != request["token"]:
            self.set_status(403)
            self.finish(json.dumps({"code": 403, "error": "Forbidden"}))
            return
        arguments = request["arguments"]
        if request["method"] == "online_score":
            key = "ref:" + hashlib.md5(json.dumps(
                arguments, sort_keys=True).encode()).hexdigest()
            score = await self.redis.get(key)
            if score is None:
                score = 1.5 * bool(arguments.get("phone")) + 1.5 * bool(
                    arguments.get("email"))
                await self.redis.set(key, score, ex=3600)
            response = {"score": float(score)}
        else:
            ids = arguments["client_ids"]
            values = await self.redis.mget(["i:%d" % cid for cid in ids])
            response = {str(cid): json.loads(value) if value else []
                        for cid, value in zip(ids, values)}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": 200, "response": response}))


async def serve(port, redis_url):
    # A pool that waits for a free connection, as the service's does: on a
    # busy machine wrk's reconnects leave more than 100 requests in flight,
    # and the default pool would answer them 500 ("Too many connections").
    redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool
                           .from_url(redis_url, max_connections=100))
    app = web.Application([(r"/method/?", ReferenceHandler,
                            {"redis": redis})])
    HTTPServer(app).listen(port, "127.0.0.1")
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # no access log: a yardstick
    asyncio.run(serve(args.port, args.redis))


if __name__ == "__main__":
    main()

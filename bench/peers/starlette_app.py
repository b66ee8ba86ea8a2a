"""online_score on Starlette, served by uvicorn (bench/requirements-peers.txt
says how): one route, the JSON in and out with Starlette's own Request and
JSONResponse, the rules of bench/peers/rules.py."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers import rules

cache = rules.ScoreCache()


def answer(code, payload):
    key = "response" if code == 200 else "error"
    return JSONResponse({"code": code, key: payload}, status_code=code)


async def method(request):
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return answer(400, "body is not valid JSON")
    if not isinstance(body, dict):
        return answer(400, "body must be a JSON object")
    return answer(*rules.online_score(body, cache))


app = Starlette(routes=[Route("/method/", method, methods=["POST"])])

"""The anchors of `./run.sh bench --peers`: the `online_score` path of the
API written as each framework's documentation recommends for production.

Each answers POST /method/ with the service's JSON, status codes and
messages for online_score (the bench checks them byte for byte before it
times anything), checks the token with the same sha512, keeps scores in an
in-process cache and writes an access line a request. They run in a venv
of their own (bench/requirements-peers.txt, which also says how each is
served); the service never imports them.
"""

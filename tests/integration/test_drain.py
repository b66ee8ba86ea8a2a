"""SPEC 8 "Signals": a SIGTERM while keep-alive clients call in a loop.

Every request the service began to read is answered: an answer given
while draining says Connection: close, a connection waiting for its next
request is closed after a short grace (a client in a loop brings its next
one in time), and no request the service logged goes unanswered.
"""
import http.client
import json
import re
import signal
import threading
import time

from tests.support.helpers import SCORE_REQUEST
from tests.integration.test_process import STOP_SECONDS, ProcessTestCase

CLIENTS = 16
ANSWERS_BEFORE_THE_STOP = 5  # each client's, so that all of them loop
_LOGGED_ID = re.compile(r"^\[[^]]*\] . (c\d+-\d+) ", re.MULTILINE)


class Client(threading.Thread):
    """Calls online_score on one keep-alive connection until the service
    is gone; connects again when the service closed the connection."""

    def __init__(self, number, port):
        super().__init__(daemon=True)
        self.number = number
        self.port = port
        self.answered = {}  # request id: the answer's Connection header
        self.failed = []  # (request id, error) of requests not answered
        self.gone = threading.Event()

    def run(self):
        body = json.dumps(SCORE_REQUEST)
        connection = None
        for count in range(100000):
            request_id = "c%d-%d" % (self.number, count)
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=STOP_SECONDS)
                    connection.connect()
            except ConnectionRefusedError:
                break  # the service no longer listens
            try:
                connection.request("POST", "/method/", body, headers={
                    "X-Request-Id": request_id})
                answer = connection.getresponse()
                answer.read()
                self.answered[request_id] = answer.getheader("Connection")
                if answer.getheader("Connection") == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                self.failed.append((request_id, type(error).__name__))
                connection.close()
                connection = None
        self.gone.set()


class DrainTest(ProcessTestCase):
    def test_keep_alive_clients_in_a_loop_lose_no_request_on_sigterm(self):
        process = self.start(SCORING_SERVER_SHUTDOWN_TIMEOUT="5")
        self.wait_until_serving(process)
        clients = [Client(number, self.port) for number in range(CLIENTS)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + STOP_SECONDS
        while any(len(client.answered) < ANSWERS_BEFORE_THE_STOP
                  for client in clients):
            self.assertLess(time.monotonic(), deadline, "clients not served")
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        for client in clients:
            client.join(STOP_SECONDS)
        with open(self.log_path) as log:
            logged = set(_LOGGED_ID.findall(log.read()))
        answered = {request_id for client in clients
                    for request_id in client.answered}
        failed = [failure for client in clients for failure in client.failed]
        self.assertEqual(failed, [])  # no request found a closed connection
        self.assertTrue(logged, "no access line")
        self.assertEqual(logged - answered, set())  # none read, not answered
        # Each client's connection was closed after an answer saying so.
        for client in clients:
            self.assertIn("close", client.answered.values(), client.number)

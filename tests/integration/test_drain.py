"""docs/operations.md, "Signals": a graceful stop loses no request, with
any number of workers.

Keep-alive clients call in a loop while the service gets SIGTERM; a worker
is stopped (SIGSTOP) with clients queued in its listening socket while the
service is told to stop; a second instance starts on the port before the
first drains (a rolling restart). Every request a client sent is
answered: an answer given while draining says Connection: close, a
connection waiting for its next request is closed after a short grace,
a client connecting meanwhile is either served or refused before it
sends, and nothing is logged at ERROR.
"""
import http.client
import json
import os
import re
import signal
import socket
import threading
import time

from tests.support.helpers import SCORE_REQUEST
from tests.support.process import START_SECONDS, STOP_SECONDS, \
    ProcessTestCase

CLIENTS = 16
ANSWERS_BEFORE_THE_STOP = 5  # each client's, so that all of them loop
QUEUED_CLIENTS = 32
# The live worker answers its share of QUEUED_CLIENTS in milliseconds; a
# client still unanswered after this waits in the stopped worker's queue.
LIVE_SHARE_SECONDS = 1.0
_LOGGED_ID = re.compile(r"^\[[^]]*\] . (c\d+-\d+) ", re.MULTILINE)
_ERROR_LINE = re.compile(r"^\[[^]]*\] E ", re.MULTILINE)


class Client(threading.Thread):
    """Calls online_score on one keep-alive connection until the service
    is gone (or `stop` is set); connects again when the service closed
    the connection."""

    def __init__(self, number, port, stop=None):
        super().__init__(daemon=True)
        self.number = number
        self.port = port
        self.stop = stop or threading.Event()
        self.answered = {}  # request id: the answer's Connection header
        self.failed = []  # (request id, error) of requests not answered
        self.refused = False  # the port was closed: the service is gone

    def run(self):
        body = json.dumps(SCORE_REQUEST)
        connection = None
        for count in range(100000):
            if self.stop.is_set():
                break
            request_id = "c%d-%d" % (self.number, count)
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=STOP_SECONDS)
                    connection.connect()
            except ConnectionRefusedError:
                self.refused = True
                break
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
        if connection is not None:
            connection.close()


class DrainTestCase(ProcessTestCase):
    def read_log(self):
        with open(self.log_path, encoding="utf-8") as log:
            return log.read()

    def start_clients(self, count, stop=None):
        clients = [Client(number, self.port, stop) for number in range(count)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + START_SECONDS
        while any(len(client.answered) < ANSWERS_BEFORE_THE_STOP
                  for client in clients):
            self.assertLess(time.monotonic(), deadline, "clients not served")
            time.sleep(0.01)
        return clients

    def assert_nothing_lost(self, clients):
        for client in clients:
            client.join(STOP_SECONDS)
            self.assertFalse(client.is_alive())
        logged = set(_LOGGED_ID.findall(self.read_log()))
        answered = {request_id for client in clients
                    for request_id in client.answered}
        failed = [failure for client in clients for failure in client.failed]
        self.assertEqual(failed, [])  # no request found a closed connection
        self.assertTrue(logged, "no access line")
        self.assertEqual(logged - answered, set())  # none read, not answered
        self.assertEqual(_ERROR_LINE.findall(self.read_log()), [])

    def sigterm_while_clients_loop(self, **settings):
        process = self.start(SCORING_SERVER_SHUTDOWN_TIMEOUT="5", **settings)
        self.wait_until_serving(process)
        clients = self.start_clients(CLIENTS)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assert_nothing_lost(clients)
        for client in clients:
            # Its connection was closed after an answer saying so, then the
            # port was closed: refused, never reset.
            self.assertIn("close", client.answered.values(), client.number)
            self.assertTrue(client.refused, client.number)


class DrainTest(DrainTestCase):
    def test_keep_alive_clients_in_a_loop_lose_no_request_on_sigterm(self):
        self.sigterm_while_clients_loop()

    def test_with_two_workers_no_client_loses_a_request_on_sigterm(self):
        self.sigterm_while_clients_loop(SCORING_SERVER_WORKERS="2")


class QueuedClientsTest(DrainTestCase):
    def test_clients_queued_for_a_stopped_worker_are_all_answered(self):
        process = self.start(SCORING_SERVER_WORKERS="2",
                             SCORING_SERVER_SHUTDOWN_TIMEOUT="5")
        self.wait_until_serving(process)
        stopped = self.wait_for_workers(2)[0]
        self.addCleanup(self.continue_, stopped)
        os.kill(stopped, signal.SIGSTOP)
        clients = []
        for _ in range(QUEUED_CLIENTS):  # the kernel completes each one
            sock = socket.create_connection(("127.0.0.1", self.port),
                                            timeout=STOP_SECONDS)
            self.addCleanup(sock.close)
            sock.sendall(b"POST /method/ HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (
                             len(json.dumps(SCORE_REQUEST)),
                             json.dumps(SCORE_REQUEST).encode()))
            clients.append(sock)
        answers = {}
        readers = [threading.Thread(target=self.read_answer,
                                    args=(sock, answers), daemon=True)
                   for sock in clients]
        for reader in readers:
            reader.start()
        time.sleep(LIVE_SHARE_SECONDS)
        queued = QUEUED_CLIENTS - len(answers)
        self.assertGreater(queued, 0, "none queued for the stopped worker")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the live worker drains; the stopped one cannot
        os.kill(stopped, signal.SIGCONT)
        for reader in readers:
            reader.join(STOP_SECONDS)
        self.assertEqual(process.wait(STOP_SECONDS), 0)
        self.assertEqual(sorted(answers.values()),
                         [200] * QUEUED_CLIENTS, answers)
        self.assertEqual(_ERROR_LINE.findall(self.read_log()), [])

    def continue_(self, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def read_answer(self, sock, answers):
        try:
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    answers[sock.fileno()] = "closed"
                    return
                head += chunk
            answers[sock.fileno()] = int(head.split()[1])
        except OSError as error:
            answers[sock.fileno()] = type(error).__name__


class RollingRestartTest(DrainTestCase):
    def test_a_new_instance_beside_the_draining_one_loses_no_request(self):
        old = self.start(SCORING_SERVER_SHUTDOWN_TIMEOUT="5")
        self.wait_until_serving(old)
        stop = threading.Event()
        clients = self.start_clients(CLIENTS, stop)
        old_log = self.log_path
        new = self.start(SCORING_SERVER_SHUTDOWN_TIMEOUT="5",
                         port=self.port)
        self.wait_until_serving(new)
        new_log = self.log_path
        old.send_signal(signal.SIGTERM)
        self.assertEqual(old.wait(STOP_SECONDS), 0)
        served_by_new = {id(client): len(client.answered)
                         for client in clients}
        deadline = time.monotonic() + START_SECONDS
        while any(len(client.answered) < served_by_new[id(client)]
                  + ANSWERS_BEFORE_THE_STOP for client in clients):
            self.assertLess(time.monotonic(), deadline, "new not serving")
            time.sleep(0.01)
        stop.set()
        for client in clients:
            client.join(STOP_SECONDS)
        new.send_signal(signal.SIGTERM)
        self.assertEqual(new.wait(STOP_SECONDS), 0)
        self.assertEqual([client.refused for client in clients],
                         [False] * CLIENTS)
        answered = {request_id for client in clients
                    for request_id in client.answered}
        failed = [failure for client in clients for failure in client.failed]
        self.assertEqual(failed, [])
        for log_path in (old_log, new_log):
            with open(log_path, encoding="utf-8") as log:
                text = log.read()
            self.assertEqual(set(_LOGGED_ID.findall(text)) - answered, set())
            self.assertEqual(_ERROR_LINE.findall(text), [])

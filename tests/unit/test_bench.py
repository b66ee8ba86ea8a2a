"""The benchmark's own logic: CPU time a call from /proc, wrk's figures,
the ratios and targets, the byte-for-byte check of the peers, the request
bodies, callgrind's dumps; and that bench/ stands on its own. Nothing here
starts wrk or valgrind."""
import ast
import asyncio
import datetime
import glob
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import unittest

import mock

from bench import (conformity, fairness, figures, instructions, loads,
                   procstat, run)
from bench import servers, wrk
from bench.instructions import (dump_instructions, latest_dump, per_request,
                                server_socket_inode, spread)
from bench.peers import rules
from bench.support import ROOT
from scoring_api.errors import Overloaded
from scoring_api.handlers import decode_body, envelope
from scoring_api.methods import method_handler
from tests.support.cases import cases
from tests.support.helpers import MemoryStore

# The header and the end of a dump written by `callgrind_control -d`
# (valgrind 3.19), its cost lines cut.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 8742
cmd:  /work/.venv/bin/python -m bench.bare --port 40369
part: 1

desc: I1 cache:
desc: Timerange: Basic block 0 - 235624043
desc: Trigger: dump

positions: line
events: Ir
summary: 288273707


totals: 293540743
"""
TCP_TABLE = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when"
    " retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000"
    " 00000000     0        0 5327 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000"
    " 00000000     0        0 7001 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000"
    " 00000000     0        0 7002 1 0000000000000000 20 4 30 10 -1\n")
# /proc/<pid>/stat of a process whose name holds a space and parentheses
# (proc(5): utime and stime are fields 14 and 15).
STAT = ("4242 (python (x) 3) S 1 4242 4242 0 -1 4194560 2300 0 0 0"
        " 1234 56 0 0 20 0 1 0 98765 30000000 4000 18446744073709551615")
WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8080/method/
  1 threads and 16 connections
  15000 requests in 5.00s, 2.51MB read
WRK_FIGURES {"requests": 15000, "duration_us": 5000000, "connect": 0,\
 "read": 2, "write": 0, "status": 0, "timeout": 1, "p50_us": 4100,\
 "p99_us": 7900}
"""


def _round(cpu_us, rps=1000.0, timeouts=0):
    return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_us": cpu_us,
            "user_us": cpu_us * 0.9, "system_us": cpu_us * 0.1,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 0,
                       "timeout": timeouts}}


def service_answer(body):
    """(code, response or message) of the service's own method logic."""
    data = json.loads(body)
    response, code = asyncio.run(method_handler(data, {}, MemoryStore()))
    return int(code), response


class ProcStatTest(unittest.TestCase):
    def test_user_and_system_time_after_the_command_name(self):
        self.assertEqual(procstat.parse_stat(STAT, clock_ticks=100),
                         procstat.CpuTimes(12.34, 0.56))

    def test_a_call_costs_the_cpu_time_between_over_the_calls(self):
        cost = procstat.per_call(procstat.CpuTimes(10.0, 2.0),
                                 procstat.CpuTimes(10.9, 2.3), 3000)
        self.assertAlmostEqual(cost["user_us"], 300.0)
        self.assertAlmostEqual(cost["system_us"], 100.0)
        self.assertAlmostEqual(cost["cpu_us"], 400.0)

    @unittest.skipUnless(os.path.exists("/proc/self/stat"), "needs Linux")
    def test_a_process_counts_the_cpu_time_of_its_children(self):
        # A worker forked by the service is such a child: it burns 0.3 s
        # of CPU, then waits to be read.
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys, time\n"
             "while time.process_time() < 0.3: pass\n"
             "print('done', flush=True)\nsys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(child.stdout.readline(), "done\n")
            with open("/proc/%d/stat" % child.pid) as stat:
                own = procstat.parse_stat(stat.read())
            mine = procstat.cpu_times(os.getpid())
            self.assertGreaterEqual(own.total, 0.29)
            self.assertIn(child.pid, procstat.children(os.getpid()))
            self.assertGreaterEqual(mine.total, own.total)
        finally:
            child.stdin.close()
            child.wait()

    @unittest.skipUnless(hasattr(os, "sched_setaffinity"), "needs Linux")
    def test_a_process_and_its_workers_are_moved_to_the_cpus_given(self):
        # A service with workers: the process, and a child it started.
        parent = subprocess.Popen(
            [sys.executable, "-c", "import subprocess, sys\n"
             "child = subprocess.Popen([sys.executable, '-c', 'import sys;"
             " sys.stdin.read()'], stdin=subprocess.PIPE)\n"
             "print(child.pid, flush=True)\nsys.stdin.read()\n"
             "child.stdin.close()\nchild.wait()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            child = int(parent.stdout.readline())
            every = os.sched_getaffinity(0)
            for cpus in ({min(every)}, {max(every)}, every):
                procstat.move_to(parent.pid, cpus)
                self.assertEqual((os.sched_getaffinity(parent.pid),
                                  os.sched_getaffinity(child)),
                                 (cpus, cpus))
        finally:
            parent.stdin.close()
            parent.wait()

    def test_a_process_that_is_gone_has_no_cpu_time(self):
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        self.assertIsNone(procstat.cpu_times(child.pid))


class WrkTest(unittest.TestCase):
    def test_the_figures_of_a_run(self):
        result = wrk.parse(WRK_OUTPUT)
        self.assertEqual(result["requests"], 15000)
        self.assertAlmostEqual(result["rps"], 3000.0)
        self.assertAlmostEqual(result["p50_ms"], 4.1)
        self.assertAlmostEqual(result["p99_ms"], 7.9)
        self.assertEqual(result["errors"], {"connect": 0, "read": 2,
                                            "write": 0, "status": 0,
                                            "timeout": 1})

    def test_no_figures_is_an_error(self):
        with self.assertRaises(ValueError):
            wrk.parse("unable to connect to 127.0.0.1:8080\n")

    def test_the_hit_script_sends_every_body_in_turn(self):
        script = loads.scripts()["hit"]
        text = wrk.lua_script(script)
        for body in script.bodies:
            self.assertIn("[[%s]]" % body.decode(), text)
        self.assertIn("sent = sent % #formatted + 1", text)

    def test_a_body_holding_the_lua_bracket_stays_one_string(self):
        script = loads.Script("odd", [b'{"a": "]]"}', b'{"b": "]=]"}',
                                      b'x]'], 200)
        text = wrk.lua_script(script)
        self.assertIn('[=[{"a": "]]"}]=]', text)
        self.assertIn('[[{"b": "]=]"}]]', text)
        self.assertIn('[=[x]]=]', text)

    def test_the_miss_script_puts_a_new_phone_in_each_body(self):
        text = wrk.lua_script(loads.scripts()["miss"])
        self.assertNotIn(loads.PHONE_PLACEHOLDER, text)
        self.assertIn('"phone": "7%s"', text)
        self.assertIn("counter = counter + 1", text)


class ScriptsTest(unittest.TestCase):
    def test_the_hit_bodies_are_a_thousand_different_valid_calls(self):
        hits = loads.scripts()["hit"].bodies
        self.assertGreaterEqual(len(set(hits)), 1000)
        self.assertEqual(len(set(hits)), len(hits))
        codes = {service_answer(body)[0] for body in hits}
        self.assertEqual(codes, {200})

    @cases(["miss", "10 ids", "100 ids", "invalid", "bad token"])
    def test_each_script_gets_its_status_from_the_service(self, name):
        script = loads.scripts()[name]
        body = loads.with_phone(script.bodies[0], 7_000_000_001)
        code, response = service_answer(body)
        self.assertEqual(code, script.expected, response)

    def test_only_the_miss_script_counts_phones(self):
        self.assertEqual([name for name, script in loads.scripts().items()
                          if script.counting], ["miss"])


# One hour for the admin's tokens of the service, the peers and the bench.
NOON = datetime.datetime(2024, 2, 29, 12, 30)


def at_noon(test):
    for clock in ("scoring_api.auth.local_now", "bench.peers.rules.local_now",
                  "bench.support.local_now"):
        test = mock.patch(clock, new=lambda: NOON)(test)
    return test


class PeerRulesTest(unittest.TestCase):
    """The rules the Starlette and aiohttp peers share give the service's
    answer to every call the bench checks them with (the FastAPI peer's
    pydantic path is checked by the bench itself, in the peers' venv)."""

    @cases(range(len(loads.conformity_calls())))
    @at_noon
    def test_the_same_code_and_message_as_the_service(self, number):
        what, body = loads.conformity_calls()[number]
        if not body.startswith(b"{"):  # the service's HTTP layer says 400
            with self.assertRaisesRegex(ValueError, "JSON"):
                decode_body(body)
            return
        code, response = service_answer(body)
        peer_code, peer_response = rules.online_score(json.loads(body),
                                                      rules.ScoreCache())
        self.assertEqual((peer_code, peer_response), (code, response), what)

    @at_noon
    def test_the_admins_token_is_the_hours(self):
        _, body = next(call for call in loads.conformity_calls()
                       if call[0] == "the admin")
        self.assertEqual(rules.online_score(json.loads(body),
                                            rules.ScoreCache()),
                         (200, {"score": 42}))
        with mock.patch("bench.peers.rules.local_now",
                        new=lambda: NOON + datetime.timedelta(hours=1)):
            self.assertEqual(rules.online_score(json.loads(body),
                                                rules.ScoreCache()),
                             (403, "Forbidden"))

    def test_the_cache_answers_a_score_once_computed(self):
        cache = rules.ScoreCache(size=2)
        self.assertEqual(cache.score(phone="79175002040", email="a@b"), 3.0)
        self.assertEqual(len(cache.entries), 1)
        cache.score(first_name="a", last_name="b")
        cache.score(gender=1, birthday=None)
        self.assertEqual(len(cache.entries), 2)  # the oldest went


class _FixedAnswers(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the JSON body {"echo": <its body>}, or a
    different one for a body of b"odd" when `server.odd`."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"echo": body.decode()}).encode()
        if body == b"odd" and self.server.odd:
            answer = answer.replace(b"odd", b"0dd")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class ConformityTest(unittest.TestCase):
    BODIES = [b"a", b"odd", b"c", b"d", b"e"]

    def serve(self, odd):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 _FixedAnswers)
        server.odd = odd
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    def test_answers_come_back_in_the_order_sent(self):
        answers = conformity.post_each(self.serve(odd=False), self.BODIES,
                                       connections=2)
        self.assertEqual([json.loads(answer.body)["echo"]
                          for answer in answers], ["a", "odd", "c", "d", "e"])
        self.assertEqual({answer.media_type for answer in answers},
                         {"application/json"})

    def test_a_peer_answering_as_the_service_does_passes(self):
        expected = conformity.post_each(self.serve(odd=False), self.BODIES)
        got = conformity.post_each(self.serve(odd=False), self.BODIES)
        conformity.require_same("twin", list("abcde"), expected, got)

    def test_a_peer_answering_one_byte_otherwise_is_refused(self):
        expected = conformity.post_each(self.serve(odd=False), self.BODIES)
        got = conformity.post_each(self.serve(odd=True), self.BODIES)
        with self.assertRaises(conformity.Refused) as refused:
            conformity.require_same("peer", ["a", "the odd call", "c", "d",
                                             "e"], expected, got)
        self.assertIn("peer does not answer as the service does (1 of 5",
                      str(refused.exception))
        self.assertIn("the odd call", str(refused.exception))
        self.assertIn("0dd", str(refused.exception))

    @cases([conformity.Answer(403, "application/json", b"{}"),
            conformity.Answer(200, "text/plain", b"{}")])
    def test_another_status_or_media_type_is_a_difference(self, other):
        same = conformity.Answer(200, "application/json", b"{}")
        self.assertEqual(len(conformity.differences(["x"], [same], [other])),
                         1)

    def test_a_script_answered_with_another_status_is_refused(self):
        script = loads.Script("invalid", [b"{}"], 422)
        answers = [conformity.Answer(422, "application/json", b"")] * 3 + [
            conformity.Answer(200, "application/json", b"")]
        with self.assertRaisesRegex(conformity.Refused, r"\{200: 1\}"):
            conformity.require_status("service", script, answers)
        conformity.require_status("service", script, answers[:3])


def _burst_figures(**changes):
    figures = {"answers": {"200": 1500, "429": 100, "503 overloaded": 200},
               "store_errors_before": 0.0, "store_errors_after": 0.0,
               "all_answered_s": 11.9}
    figures.update(changes)
    return figures


def _lockout_figures(**changes):
    figures = {"header_timeout_s": 10.0, "new_client_s": 0.3,
               "trickle_cut_s": 12.4}
    figures.update(changes)
    return figures


class _BurstAnswers(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next of `server.answers` ((code, error
    or None) in turn), each "store" one counting a Redis error in GET
    /metrics, as the service does."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            code, error = self.server.answers[
                self.server.sent % len(self.server.answers)]
            self.server.sent += 1
            if error == fairness.STORE_DOWN:
                self.server.store_errors += 1
        self.answer(code, envelope(code, {}, error))

    def do_GET(self):
        self.answer(200, (
            "# TYPE scoring_api_redis_errors_total counter\n"
            'scoring_api_redis_errors_total{role="cache"} 7.0\n'
            'scoring_api_redis_errors_total{role="store"} %.1f\n'
            % self.server.store_errors).encode())

    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FairnessTest(unittest.TestCase):
    def serve(self, answers):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 _BurstAnswers)
        server.answers, server.sent, server.store_errors = answers, 0, 0
        server.lock = threading.Lock()
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    @cases([(200, None, "200"), (429, "rate limit exceeded", "429"),
            (503, str(Overloaded()), "503 overloaded"),
            (503, "store is unavailable", "503 store"),
            (503, "shutting down", "503 shutting down"),
            (500, "Internal Server Error", "500 Internal Server Error")])
    def test_an_answer_is_named_by_its_code_and_message(self, case):
        code, error, kind = case
        self.assertEqual(fairness.answer_kind(code, envelope(code, {}, error)),
                         kind)

    @cases([b"", b"<html>", b"[1]"])
    def test_a_body_without_a_message_is_still_counted(self, body):
        self.assertEqual(fairness.answer_kind(503, body), "503 ?")

    def test_no_answer_is_a_kind_of_its_own(self):
        self.assertEqual(fairness.count_kinds(
            [(None, b""), (200, b"{}"), (None, b"")]),
            {"200": 1, fairness.NO_ANSWER: 2})

    def test_the_head_of_an_answer(self):
        self.assertEqual(fairness.parse_head(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
            b"content-length: 48\r\n\r\n"), (503, 48))

    def test_the_store_errors_are_the_stores_line_only(self):
        text = ('scoring_api_redis_errors_total{role="cache"} 3.0\n'
                'scoring_api_redis_errors_total{role="store"} 320.0\n')
        self.assertEqual(fairness.store_errors(text), 320)
        self.assertEqual(fairness.store_errors(text.split("\n")[0]), 0)

    def test_the_burst_meets_its_target_at_its_bounds(self):
        self.assertEqual(fairness.burst_failures(_burst_figures()), [])
        self.assertEqual(fairness.burst_failures(
            _burst_figures(all_answered_s=12.0)), [])
        self.assertEqual(fairness.verdict("burst", []), "PASS burst")

    @cases([({"all_answered_s": 12.1}, "after 12.1 s"),
            ({"all_answered_s": None}, "not every call was answered"),
            ({"answers": {"200": 5, "503 store": 320}},
             "320 answers blame the store"),
            ({"store_errors_after": 320.0}, "went 0 -> 320"),
            ({"answers": {"200": 5, "500 ?": 2}}, "other answers: 500 ?: 2"),
            ({"answers": {"200": 5, fairness.NO_ANSWER: 1}},
             "other answers: no answer: 1")])
    def test_the_burst_fails_past_any_bound(self, case):
        changes, reason = case
        failures = fairness.burst_failures(_burst_figures(**changes))
        self.assertEqual(len(failures), 1)
        self.assertIn(reason, failures[0])
        self.assertTrue(fairness.verdict("burst", failures).startswith(
            "FAIL burst: "))

    def test_the_lockout_meets_its_target_at_its_bounds(self):
        self.assertEqual(fairness.lockout_failures(_lockout_figures(
            new_client_s=2.0, trickle_cut_s=12.5)), [])
        self.assertEqual(fairness.lockout_failures(_lockout_figures(
            header_timeout_s=2.0, trickle_cut_s=2.5)), [])

    @cases([({"new_client_s": 2.01}, "waited 2.01 s"),
            ({"new_client_s": None}, "no answer"),
            ({"trickle_cut_s": 12.6}, "after 12.6 s (> 12.5 s)"),
            ({"header_timeout_s": 2.0, "trickle_cut_s": 2.6}, "(> 2.5 s)"),
            ({"trickle_cut_s": None}, "never cut")])
    def test_the_lockout_fails_past_any_bound(self, case):
        changes, reason = case
        failures = fairness.lockout_failures(_lockout_figures(**changes))
        self.assertEqual(len(failures), 1)
        self.assertIn(reason, failures[0])

    def test_the_burst_counts_every_answer_and_the_metric_it_moved(self):
        port = self.serve([(200, None), (503, str(Overloaded())),
                           (503, fairness.STORE_DOWN)])
        result = fairness.burst(port, connections=4, ids=3, rounds=3)
        self.assertEqual(result["answers"], {
            "200": 4, "503 overloaded": 4, "503 store": 4})
        self.assertEqual((result["store_errors_before"],
                          result["store_errors_after"]), (0, 4))
        self.assertEqual(len(result["rounds_all_answered_s"]), 3)
        self.assertIsNotNone(result["all_answered_s"])
        self.assertEqual(len(fairness.burst_failures(result)), 2)

    def test_a_request_is_one_post_of_its_body(self):
        request = fairness.http_post(b'{"a": 1}')
        head, body = request.split(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"POST /method/ HTTP/1.1\r\n"))
        self.assertIn(b"Content-Length: 8", head)
        self.assertEqual(body, b'{"a": 1}')

    def test_a_head_the_service_cuts_at_once_is_cut(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def cut_one():
            connection, _ = listener.accept()
            connection.close()

        threading.Thread(target=cut_one, daemon=True).start()
        cut = asyncio.run(fairness.trickle(listener.getsockname()[1], 10.0))
        self.assertIsNotNone(cut)
        self.assertLess(cut, 10.0)


class FiguresTest(unittest.TestCase):
    def test_a_rows_figures_are_medians_over_its_rounds(self):
        found = figures.row_figures([_round(300), _round(360, 900),
                                     _round(320, 1100)])
        self.assertEqual(found["cpu_us"], 320)
        self.assertEqual((found["cpu_us_min"], found["cpu_us_max"]),
                         (300, 360))
        self.assertEqual(found["rps"], 1000.0)
        self.assertAlmostEqual(found["user_us"], 288.0)

    def test_ratios_are_taken_round_by_round(self):
        # A busy second round slows both rows: its ratio stays.
        found = figures.ratio([_round(300), _round(600)],
                              [_round(250), _round(500)])
        self.assertEqual(found["rounds"], [1.2, 1.2])
        self.assertAlmostEqual(found["median"], 1.2)

    def test_a_target_passes_at_its_bound_and_fails_past_it(self):
        target = figures.Target("service hit", "FastAPI hit", 1.05)
        passed, found = target.verdict({"service hit": [_round(315)],
                                        "FastAPI hit": [_round(300)]})
        self.assertTrue(passed)
        self.assertAlmostEqual(found["median"], 1.05)
        passed, _ = target.verdict({"service hit": [_round(316)],
                                    "FastAPI hit": [_round(300)]})
        self.assertFalse(passed)

    def test_a_target_whose_rows_did_not_run_has_no_verdict(self):
        target = figures.Target("422", "service hit", 1.0)
        self.assertIsNone(target.verdict({"422": [_round(300)]}))
        self.assertEqual(str(target), "422 no dearer than service hit")

    def test_dearer_than_before_only_beyond_the_spread(self):
        before = [_round(300), _round(300), _round(300)]
        dearer, _ = figures.against_verdict(
            [_round(309), _round(303), _round(315)], before)
        self.assertFalse(dearer)  # +3 % with rounds 1.01..1.05
        dearer, found = figures.against_verdict(
            [_round(330), _round(333), _round(327)], before)
        self.assertTrue(dearer)  # +10 % with rounds 1.09..1.11
        self.assertAlmostEqual(found["median"], 1.1)


class RowsTest(unittest.TestCase):
    def test_the_peers_run_only_when_asked(self):
        names = [row.name for row in run.selected_rows()]
        self.assertNotIn("FastAPI hit", names)
        self.assertIn("bare Tornado", names)
        names = [row.name for row in run.selected_rows(peers=True)]
        for peer in ("FastAPI hit", "Starlette hit", "aiohttp hit"):
            self.assertIn(peer, names)

    def test_a_row_brings_the_row_its_target_compares_with(self):
        self.assertEqual([row.name for row in run.selected_rows(["422"])],
                         ["service hit", "422"])

    def test_against_runs_each_service_row_again_for_before(self):
        rows = run.selected_rows(["bare Tornado", "service miss"],
                                 against=True)
        self.assertEqual([(row.name, row.server.checkout) for row in rows],
                         [("bare Tornado", "this"), ("service miss", "this"),
                          ("service miss", "before")])

    def test_the_hit_rows_process_caches_no_miss_rows_scores(self):
        # A miss row's new scores would evict the hit bodies from the
        # local tier: the hit row would measure their refill from Redis.
        rows = run.selected_rows(peers=True)
        hit_servers = {row.server.name for row in rows
                       if row.script == "hit"}
        miss_servers = {row.server.name for row in rows
                        if row.script == "miss"}
        self.assertTrue(miss_servers)
        self.assertFalse(hit_servers & miss_servers)

    def test_the_server_gets_a_core_of_its_own(self):
        self.assertEqual(run.split_cpus({0, 1}), ([1], [0]))
        self.assertEqual(run.split_cpus({0, 1, 2, 3}), ([3], [0, 1, 2]))
        self.assertEqual(run.split_cpus({0}), ([], []))
        self.assertEqual(run.split_cpus({0, 1}, [0], [1]), ([0], [1]))

    def test_a_server_is_measured_alone_on_the_server_core(self):
        bench = run.Bench(run.selected_rows(["service hit"]), None, None,
                          None, None, ([1], [0]))
        measured, idle = mock.Mock(pid=10), mock.Mock(pid=20)
        bench.running = {("this", "service"): measured,
                         ("this", "bare Tornado"): idle}
        with mock.patch.object(procstat, "move_to") as move_to:
            bench.alone_on_server_cpus(measured)
        self.assertEqual(sorted(move_to.call_args_list),
                         [mock.call(10, [1]), mock.call(20, [0])])

    def test_the_table_names_each_targets_verdict(self):
        rows = run.selected_rows(["interests 10 ids"])
        measured = {("this", "service hit"): [_round(300), _round(320)],
                    ("this", "interests 10 ids"): [_round(500),
                                                   _round(520)]}
        lines, summaries, verdicts = run.report(rows, measured,
                                                "service hit")
        self.assertEqual(lines[-1], "FAIL interests 10 ids <= 1.60x service"
                         " hit: 1.65x (rounds 1.62..1.67)")
        self.assertEqual([each["passed"] for each in verdicts], [False])
        self.assertEqual([each["row"] for each in summaries],
                         ["service hit", "interests 10 ids"])
        self.assertIn("500..520", lines[2])
        self.assertNotIn("socket errors", lines[2])

    def test_a_row_that_lost_connections_says_so(self):
        rows = run.selected_rows(["service hit"])
        lines, _, _ = run.report(rows, {("this", "service hit"): [
            _round(300), _round(310, timeouts=2)]}, "service hit")
        self.assertTrue(lines[1].endswith("1.00x (socket errors)"))


class PeersTest(unittest.TestCase):
    def test_each_peer_is_served_as_pinned_in_the_requirements(self):
        commands = servers.read_peer_commands()
        self.assertEqual(sorted(commands), sorted(run.PEERS))
        for peer in ("FastAPI", "Starlette"):
            command = " ".join(commands[peer])
            self.assertTrue(command.startswith("python -m uvicorn "))
            for flag in ("--workers 1", "--loop uvloop", "--http httptools",
                         "--port {port}"):
                self.assertIn(flag, command)
        self.assertIn("--port {port}", " ".join(commands["aiohttp"]))

    def test_every_requirement_of_the_peers_is_pinned(self):
        with open(servers.PEERS_REQUIREMENTS) as requirements:
            lines = [line.strip() for line in requirements
                     if line.strip() and not line.startswith("#")]
        for name in ("fastapi", "pydantic", "starlette", "uvicorn", "uvloop",
                     "httptools", "aiohttp"):
            self.assertIn(name, [line.split("==")[0] for line in lines])
        self.assertEqual([line for line in lines if "==" not in line], [])

    def test_the_service_never_gets_the_peers_requirements(self):
        for path in glob.glob(os.path.join(ROOT, "requirements*.txt")):
            with open(path) as requirements:
                text = requirements.read()
            for name in ("fastapi", "starlette", "uvicorn"):
                self.assertNotIn(name, text.lower(), path)

    def test_a_peer_command_takes_the_venvs_python_and_the_port(self):
        commands = {"aiohttp": ["python", "-m", "x", "--port", "{port}"]}
        self.assertEqual(
            servers.command(servers.Server("aiohttp", "peer"), 8123,
                            "/venv/bin/python", commands),
            ["/venv/bin/python", "-m", "x", "--port", "8123"])


def _imports(path):
    with open(path) as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from ("%s.%s" % (node.module, alias.name)
                        for alias in node.names)


BENCH_FILES = sorted(glob.glob(os.path.join(ROOT, "bench", "**", "*.py"),
                               recursive=True))
ENTRY_POINTS = [("bench.run",), ("bench.run", "--instructions"),
                ("bench.instructions",), ("bench.bare",)]


class StandsOnItsOwnTest(unittest.TestCase):
    @cases([os.path.relpath(path, ROOT) for path in BENCH_FILES])
    def test_no_bench_module_imports_the_tests(self, path):
        found = [name for name in _imports(os.path.join(ROOT, path))
                 if name == "tests" or name.startswith("tests.")]
        self.assertEqual(found, [])

    @cases(ENTRY_POINTS)
    def test_an_entry_point_runs_its_module_once(self, entry_point):
        # -X importtime lists every module imported; `python -m` runs its
        # own as __main__, so the module itself among them would be a
        # second execution (an import circle).
        module, *options = entry_point
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", module, *options,
             "--help"],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        self.assertIn("usage:", done.stdout)
        imported = [line.rsplit("|", 1)[1].strip()
                    for line in done.stderr.splitlines()
                    if line.startswith("import time:") and "|" in line]
        self.assertIn("bench", imported)  # the listing is read
        self.assertNotIn(module, imported)
        self.assertLessEqual(imported.count("bench.run"), 1)


class DumpTest(unittest.TestCase):
    def test_the_count_is_the_summary_line(self):
        self.assertEqual(dump_instructions(DUMP), 288273707)

    def test_without_a_summary_the_totals_line(self):
        text = DUMP.replace("summary: 288273707\n", "")
        self.assertEqual(dump_instructions(text), 293540743)

    def test_ir_is_found_among_other_events(self):
        text = DUMP.replace("events: Ir", "events: Dr Ir Dw").replace(
            "summary: 288273707", "summary: 5 288273707 7")
        self.assertEqual(dump_instructions(text), 288273707)

    def test_a_missing_trailing_cost_is_zero(self):
        # callgrind leaves out the zero costs at the end of a cost line
        text = DUMP.replace("events: Ir", "events: Dr Ir").replace(
            "summary: 288273707", "summary: 5")
        self.assertEqual(dump_instructions(text), 0)

    @cases(["", "<html>", DUMP.replace("events: Ir", "events: Dr")])
    def test_other_text_is_an_error(self, text):
        with self.assertRaises(ValueError):
            dump_instructions(text)

    def test_the_latest_dump_has_the_highest_number(self):
        paths = ["/d/callgrind.x.12", "/d/callgrind.x.12.2",
                 "/d/callgrind.x.12.10", "/d/callgrind.x.12.9",
                 "/d/callgrind.x.123.11", "/d/callgrind.x.12.log"]
        self.assertEqual(latest_dump("/d/callgrind.x.12", paths),
                         "/d/callgrind.x.12.10")

    def test_no_dump_yet(self):
        self.assertIsNone(latest_dump("/d/callgrind.x.12",
                                      ["/d/callgrind.x.12"]))


class ConnectionOwnerTest(unittest.TestCase):
    def test_the_servers_end_of_a_connection(self):
        # 0x1F90 = 8080, 0xC350 = 50000; the client's end is another inode
        self.assertEqual(server_socket_inode(TCP_TABLE, 8080, 50000), 7001)
        self.assertEqual(server_socket_inode(TCP_TABLE, 50000, 8080), 7002)

    def test_no_such_connection(self):
        self.assertIsNone(server_socket_inode(TCP_TABLE, 8080, 50001))
        self.assertIsNone(server_socket_inode("", 8080, 50000))

    @unittest.skipUnless(os.path.exists("/proc/net/tcp"), "needs Linux")
    def test_this_process_holds_the_end_it_accepted(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            with socket.create_connection(listener.getsockname()) as client:
                accepted, _ = listener.accept()
                with accepted:
                    inode = server_socket_inode(
                        instructions._tcp_table(),
                        listener.getsockname()[1], client.getsockname()[1])
                    self.assertEqual(instructions._socket_owner(
                        inode, [os.getpid()]), os.getpid())


class InstructionFiguresTest(unittest.TestCase):
    def test_the_idle_servers_instructions_are_taken_off(self):
        cost, share = per_request(1_000_000, 2.0, 50_000.0, 300)
        self.assertAlmostEqual(cost, 900_000 / 300)
        self.assertAlmostEqual(share, 0.1)

    def test_idle_never_takes_off_more_than_was_counted(self):
        self.assertEqual(per_request(1000, 10.0, 1000.0, 10), (0.0, 1.0))

    def test_spread_is_max_minus_min_over_the_median(self):
        self.assertAlmostEqual(spread([990, 1000, 1010]), 0.02)
        self.assertEqual(spread([5]), 0.0)

    def test_the_bodies_of_the_hit_script_come_in_turn(self):
        bodies = instructions.Bodies()
        hits = bodies.scripts["hit"].bodies
        self.assertEqual(len(hits), instructions.HIT_BODIES)
        sent = [bodies.next("hit") for _ in range(len(hits) + 1)]
        self.assertEqual(sent[:-1], hits)
        self.assertEqual(sent[-1], hits[0])
        self.assertNotEqual(bodies.next("miss"), bodies.next("miss"))

    def test_against_counts_each_service_row_again(self):
        rows = instructions.selected_rows(["2 workers"], against=True)
        self.assertEqual([(row.name, row.server.checkout) for row in rows],
                         [("bare", "this"), ("2 workers", "this"),
                          ("2 workers", "before")])


if __name__ == "__main__":
    unittest.main()

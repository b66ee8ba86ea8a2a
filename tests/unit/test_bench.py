"""The instruction-count benchmark's own logic: reading callgrind's dumps,
finding which process holds a connection, and the table's verdicts."""
import os
import socket
import unittest

from bench import instructions
from bench.instructions import (AtLeast, EachWorkerWithin, NoDearerThan,
                                dump_instructions, latest_dump,
                                per_request, server_socket_inode, spread)

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

    def test_other_text_is_an_error(self):
        for text in ("", "<html>", DUMP.replace("events: Ir", "events: Dr")):
            with self.subTest(text=text[:20]):
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


class FiguresTest(unittest.TestCase):
    def test_the_idle_servers_instructions_are_taken_off(self):
        cost, share = per_request(1_000_000, 2.0, 50_000.0, 300)
        self.assertAlmostEqual(cost, 900_000 / 300)
        self.assertAlmostEqual(share, 0.1)

    def test_idle_never_takes_off_more_than_was_counted(self):
        self.assertEqual(per_request(1000, 10.0, 1000.0, 10), (0.0, 1.0))

    def test_spread_is_max_minus_min_over_the_median(self):
        self.assertAlmostEqual(spread([990, 1000, 1010]), 0.02)
        self.assertEqual(spread([5]), 0.0)


class TargetTest(unittest.TestCase):
    HIT = {"instructions": 1000, "bare_ratio": 0.8, "workers": [1000]}

    def test_at_least_a_share_of_bare(self):
        self.assertTrue(AtLeast(0.75).check(self.HIT, {}))
        self.assertFalse(AtLeast(0.85).check(self.HIT, {}))

    def test_no_dearer_than_another_row(self):
        results = {"hit": self.HIT}
        target = NoDearerThan("hit")
        self.assertTrue(target.check({"instructions": 1000}, results))
        self.assertFalse(target.check({"instructions": 1001}, results))

    def test_every_worker_within_a_factor(self):
        results = {"hit": self.HIT}
        target = EachWorkerWithin("hit", 1.05)
        self.assertTrue(target.check({"workers": [1040, 1050]}, results))
        self.assertFalse(target.check({"workers": [1000, 1051]}, results))

    def test_a_rows_target_needs_the_rows_it_names(self):
        rows = instructions.selected_rows(["2 workers"])
        self.assertEqual([row.name for row in rows],
                         ["bare", "score cache hit", "2 workers"])


if __name__ == "__main__":
    unittest.main()

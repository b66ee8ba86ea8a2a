"""Request ids: new ones, and which of a caller's are kept
(docs/api.md, "Request ids")."""
import logging
import os
import unittest

from tornado.httputil import HTTPHeaders

from scoring_api import requestids
from scoring_api.requestids import RequestIdFilter, RequestIds
from tests.support.cases import cases

NEW_ID = r"^[0-9a-f]{32}$"


class NewIdTest(unittest.TestCase):
    def test_ids_are_32_hex_digits_and_unique(self):
        ids = RequestIds()
        made = [ids.new() for _ in range(1000)]
        self.assertEqual(len(set(made)), 1000)
        for made_id in made:
            self.assertRegex(made_id, NEW_ID)

    def test_two_sources_do_not_share_a_prefix(self):
        self.assertNotEqual(RequestIds().new()[:20], RequestIds().new()[:20])

    def test_a_forked_worker_makes_ids_of_its_own(self):
        ids = RequestIds()
        parent_id = ids.new()
        child_id, = in_a_child(lambda: [ids.new()])
        self.assertRegex(child_id, NEW_ID)
        self.assertNotEqual(child_id[:20], parent_id[:20])
        self.assertEqual(ids.new()[:20], parent_id[:20])

    def test_a_fork_of_a_forked_worker_makes_ids_of_its_own(self):
        ids = RequestIds()
        ids.new()
        child_id, grandchild_id = in_a_child(
            lambda: [ids.new(), *in_a_child(lambda: [ids.new()])])
        self.assertRegex(grandchild_id, NEW_ID)
        self.assertNotEqual(grandchild_id[:20], child_id[:20])


def in_a_child(make_ids):
    """The ids `make_ids()` returns in a forked child process."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave at once
        try:
            os.write(writer, " ".join(make_ids()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    made = os.read(reader, 1024).decode().split()
    os.close(reader)
    os.waitpid(pid, 0)
    return made


class CallersIdTest(unittest.TestCase):
    def id_of(self, given):
        return RequestIds().of(HTTPHeaders({requestids.HEADER: given}))

    @cases([
        "abc-123", "req-1", "checkout/v2:7f", "a.b_c+d=e",
        "4bf92f3577b34da6a3ce929d0e0e4736",  # a W3C trace id
        "4BF92F3577B34DA6A3CE929D0E0E4736",
        "0af76519-16cd-43dd-8448-eb211c80319c",  # a UUID
        "79175002040375019283746501928374",  # 32 hex: kept, digits or not
        "1234567890",  # 10 digits: not a phone
        "z" * 128,
    ])
    def test_a_safe_id_is_kept(self, given):
        self.assertEqual(self.id_of(given), given)

    def test_the_services_own_ids_are_kept_when_sent_back(self):
        ids = RequestIds()
        for _ in range(200):
            own = ids.new()
            self.assertEqual(self.id_of(own), own)

    @cases([
        "stupnikov@otus.ru", "a@b", "mailto:x@y",  # e-mail
        "79175002040", "+79175002040", "7-917-500-20-40",
        "7.917.500.20.40", "8_917_500_20_40", "req-79175002040-1",
        "+7/917/500/2040",  # a phone, split or not
        "0" * 64, "f" * 128, "sess-" + "ab" * 32,  # a token, a hash
        "a b", "a\tb", "a\"b", "x" * 129, "", "\u0662" * 3,  # unsafe
        "1,2",  # two ids
    ])
    def test_an_id_that_looks_personal_or_unsafe_is_replaced(self, given):
        replaced = self.id_of(given)
        self.assertRegex(replaced, NEW_ID)
        self.assertNotEqual(replaced, given)

    def test_without_a_header_the_id_is_new(self):
        self.assertRegex(RequestIds().of(HTTPHeaders()), NEW_ID)


class RequestIdFilterTest(unittest.TestCase):
    def record(self):
        return logging.LogRecord("x", logging.INFO, "", 0, "m", None, None)

    def test_a_line_outside_any_request_has_no_id(self):
        record = self.record()
        self.assertTrue(RequestIdFilter().filter(record))  # still logged
        self.assertEqual(record.request_id, requestids.NO_REQUEST)

    def test_a_line_in_a_request_has_its_id(self):
        token = requestids.current.set("req-7")
        self.addCleanup(requestids.current.reset, token)
        record = self.record()
        self.assertTrue(RequestIdFilter().filter(record))
        self.assertEqual(record.request_id, "req-7")

    def test_an_id_given_with_the_record_is_kept(self):
        record = self.record()
        record.request_id = "req-8"
        RequestIdFilter().filter(record)
        self.assertEqual(record.request_id, "req-8")

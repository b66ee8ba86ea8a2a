import os
import unittest

from scoring_api.handlers import REQUEST_IDS, RequestIds


class RequestIdsTest(unittest.TestCase):
    def test_ids_are_32_hex_digits_and_unique(self):
        ids = RequestIds()
        made = [ids.next() for _ in range(1000)]
        self.assertEqual(len(set(made)), 1000)
        self.assertTrue(all(len(i) == 32 and int(i, 16) >= 0 for i in made))

    def test_two_sources_do_not_share_a_prefix(self):
        self.assertNotEqual(RequestIds().next()[:20],
                            RequestIds().next()[:20])

    def test_a_forked_worker_makes_ids_of_its_own(self):
        parent_id = REQUEST_IDS.next()
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its next id and leave at once
            os.write(writer, REQUEST_IDS.next().encode())
            os._exit(0)
        os.close(writer)
        child_id = os.read(reader, 64).decode()
        os.close(reader)
        os.waitpid(pid, 0)
        self.assertEqual(len(child_id), 32)
        self.assertNotEqual(child_id[:20], parent_id[:20])

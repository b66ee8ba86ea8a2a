"""The `cases` decorator itself: every case runs and a failure names it."""
import os
import subprocess
import sys
import tempfile
import unittest

from tornado.testing import AsyncTestCase, gen_test

from tests.support.cases import cases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def make_vectors(seen):
    """A fixture test class (built here so no runner collects it)."""

    class Vectors(unittest.TestCase):
        @cases([1, 2, 3, 4])
        def test_even(self, number):
            seen.append(number)
            self.assertEqual(number % 2, 0)

        def test_third_only(self):
            (third,) = Vectors.test_even.paramList[2]
            Vectors.test_even(self, third)

    return Vectors


class CasesDecoratorTest(unittest.TestCase):
    def run_fixture(self, name):
        seen = []
        result = unittest.TestResult()
        make_vectors(seen)(name).run(result)
        return result, seen

    def test_every_case_runs_after_one_fails(self):
        result, seen = self.run_fixture("test_even")
        self.assertEqual(seen, [1, 2, 3, 4])
        self.assertEqual(len(result.failures), 2)

    def test_a_failure_names_the_index_and_the_data(self):
        result, _ = self.run_fixture("test_even")
        names = [str(test) for test, _ in result.failures]
        self.assertIn("(i=0, case=1)", names[0])
        self.assertIn("(i=2, case=3)", names[1])

    def test_nose2_gets_one_parameter_set_per_case(self):
        params = make_vectors([]).test_even.paramList
        self.assertEqual([repr(param) for (param,) in params],
                         ["i=0 1", "i=1 2", "i=2 3", "i=3 4"])
        self.assertEqual([param.data for (param,) in params], [1, 2, 3, 4])

    def test_one_case_given_runs_only_that_case(self):
        result, seen = self.run_fixture("test_third_only")
        self.assertEqual(seen, [3])
        self.assertIn("(i=2, case=3)", str(result.failures[0][0]))

    def test_a_test_wrapped_in_gen_test_runs_every_case(self):
        seen = []

        class AsyncVectors(AsyncTestCase):
            @cases(["a", "b"])
            @gen_test
            async def test_letters(self, letter):
                seen.append(letter)

        result = unittest.TestResult()
        AsyncVectors("test_letters").run(result)
        self.assertTrue(result.wasSuccessful(), result.errors)
        self.assertEqual(seen, ["a", "b"])

    def test_a_bare_coroutine_function_is_refused(self):
        with self.assertRaises(TypeError) as raised:
            @cases([1])
            async def test_never_awaited(self, case):
                pass
        self.assertIn("gen_test", str(raised.exception))

    def test_an_empty_list_of_cases_is_an_error_at_import(self):
        with self.assertRaises(ValueError) as raised:
            cases([])
        self.assertEqual(str(raised.exception),
                         "cases() got no case: the test would run nothing")

    def test_an_exhausted_generator_of_cases_is_an_error_too(self):
        with self.assertRaises(ValueError):
            cases(case for case in ())


class EmptyCasesUnderEachRunnerTest(unittest.TestCase):
    """A module with `@cases([])` fails to load under both runners."""

    MODULE = (
        "import unittest\n"
        "from tests.support.cases import cases\n"
        "class T(unittest.TestCase):\n"
        "    @cases([])\n"
        "    def test_nothing(self, case):\n"
        "        pass\n")

    def run_runner(self, *command):
        # The fixture lives outside the work tree, where no other run's
        # discovery can find it.
        with tempfile.TemporaryDirectory() as scratch:
            package = os.path.join(scratch, "empty_cases_fixture")
            os.mkdir(package)
            for name, text in (("__init__.py", ""),
                               ("test_empty.py", self.MODULE)):
                with open(os.path.join(package, name), "w") as module:
                    module.write(text)
            return subprocess.run(
                [sys.executable, "-m", *command,
                 "empty_cases_fixture.test_empty"], cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=scratch),
                capture_output=True, text=True, timeout=60)

    def test_nose2_reports_an_error(self):
        ran = self.run_runner("nose2", "--config", "/dev/null")
        self.assertNotEqual(ran.returncode, 0, ran.stderr)
        self.assertIn("cases() got no case", ran.stderr)

    def test_unittest_reports_an_error(self):
        ran = self.run_runner("unittest")
        self.assertNotEqual(ran.returncode, 0, ran.stderr)
        self.assertIn("cases() got no case", ran.stderr)

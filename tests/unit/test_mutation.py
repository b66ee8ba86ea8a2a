"""The mutation runner's map of modules to tests (tests/mutation/run.py):
every module of scoring_api/ is mutated, each with tests that exist."""
import ast
import io
import pathlib
import pkgutil
import re
import tempfile
import unittest
import unittest.mock

import scoring_api
from tests.mutation import run
from tests.support.cases import cases

ROOT = run.ROOT


def imported_modules():
    """The modules of scoring_api, as Python's own import system lists
    them (dotted below scoring_api), packages left out."""
    return sorted(
        info.name[len("scoring_api."):]
        for info in pkgutil.walk_packages(scoring_api.__path__,
                                          "scoring_api.")
        if not info.ispkg)


class ModulesTest(unittest.TestCase):
    def test_every_module_of_the_package_is_mutated(self):
        self.assertEqual(run.MODULES, imported_modules())

    def test_a_package_stands_for_each_of_its_modules(self):
        store = [name for name in imported_modules()
                 if name.startswith("store.")]
        self.assertGreater(len(store), 1)
        self.assertEqual(run.expand(["store", "config"]), store + ["config"])

    def test_a_packages_init_only_re_exports(self):
        # run.discover leaves __init__.py out: code there would never be
        # mutated.
        for path in (ROOT / "scoring_api").rglob("__init__.py"):
            for node in ast.parse(path.read_text()).body:
                with self.subTest(path=str(path), line=node.lineno):
                    self.assertTrue(
                        isinstance(node, (ast.Import, ast.ImportFrom))
                        or (isinstance(node, ast.Expr)
                            and isinstance(node.value, ast.Constant))
                        or (isinstance(node, ast.Assign)
                            and [target.id for target in node.targets]
                            == ["__all__"]),
                        ast.dump(node)[:80])

    def test_a_module_without_a_session_is_named_not_run(self):
        empty = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        with unittest.mock.patch.object(run, "WORK", empty), \
                unittest.mock.patch("sys.stdout", new=io.StringIO()) as out:
            self.assertEqual(run.main(["--report", "store"]), 0)
        self.assertIn("not run yet: %s" % ", ".join(run.expand(["store"])),
                      out.getvalue())

    def test_unknown_modules_are_refused(self):
        with self.assertRaises(SystemExit) as raised, \
                unittest.mock.patch("sys.stderr"):
            run.main(["--report", "no_such_module"])
        self.assertEqual(raised.exception.code, 2)


class TestCommandsTest(unittest.TestCase):
    def test_every_module_has_a_test_command(self):
        for module in run.MODULES:
            with self.subTest(module=module):
                self.assertTrue(run.test_commands(module))

    def test_every_module_of_a_package_has_tests_of_its_own(self):
        # A module of a package skips the fast layers: without tests found
        # by name, only integration suites would judge its mutants.
        for module in run.MODULES:
            if "." in module:
                with self.subTest(module=module):
                    self.assertTrue(run.own_tests(module))

    def test_every_listed_test_file_exists(self):
        for module in run.MODULES:
            for path in run.own_tests(module) + run.extra_suites(module):
                with self.subTest(module=module, path=path):
                    self.assertTrue((ROOT / path).is_file())

    def test_every_extra_suite_names_a_module_or_a_package(self):
        known = set(run.MODULES) | set(run.packages(run.MODULES))
        self.assertEqual(set(run.EXTRA_SUITES) - known, set())
        self.assertEqual(set(run.OWN_SUITES) - set(run.MODULES), set())

    def test_handlers_mutants_meet_the_http_contract_first(self):
        self.assertEqual(run.test_commands("handlers")[0],
                         ["tests.unit.test_handlers",
                          "tests.functional.test_http"])

    def test_a_suite_of_a_modules_own_is_never_run_twice(self):
        self.assertEqual(run.test_commands("loader"), [
            ["tests.unit.test_loader", "tests.integration.test_loader"]])

    def test_a_module_alone_is_imported_only_by_its_own_tests(self):
        for module in run.ALONE:
            own = {ROOT / path for path in run.own_tests(module)} | {
                run.module_path(ROOT, module)}
            importers = [
                path.relative_to(ROOT).as_posix()
                for directory in ("scoring_api", *run.OWN_TEST_DIRS)
                for path in (ROOT / directory).rglob("*.py")
                if path not in own and re.search(
                    r"\bscoring_api(\.%s\b| import .*\b%s\b)"
                    % (module, module), path.read_text())]
            with self.subTest(module=module):
                self.assertEqual(importers, [])

    def test_the_fast_layers_are_packages_of_tests(self):
        for layer in run.FAST_LAYERS:
            with self.subTest(layer=layer):
                self.assertTrue(
                    (ROOT / layer.replace(".", "/") / "__init__.py")
                    .is_file())

    def test_a_modules_integration_suites_raise_its_timeout(self):
        with_suites = [module for module in run.MODULES
                       if run.extra_suites(module)]
        self.assertIn("store.facade", with_suites)
        for module in run.MODULES:
            with self.subTest(module=module):
                self.assertEqual(run.timeout_of(module),
                                 run.INTEGRATION_TIMEOUT_SECONDS
                                 if module in with_suites
                                 else run.DEFAULT_TIMEOUT_SECONDS)


class OwnTestsHangTest(unittest.TestCase):
    def test_own_tests_that_hang_are_a_timeout_kill(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        pathlib.Path(directory.name, "test_hang.py").write_text(
            "import time, unittest\n\n\nclass T(unittest.TestCase):\n"
            "    def test(self):\n        time.sleep(60)\n")
        output = io.StringIO()
        with unittest.mock.patch.object(
                run, "test_commands", lambda module, root: [["test_hang"]]), \
                unittest.mock.patch.object(
                    run, "OWN_TESTS_TIMEOUT_SECONDS", 0.5), \
                unittest.mock.patch("sys.stdout", output), \
                unittest.mock.patch("pathlib.Path.cwd",
                                    return_value=pathlib.Path(directory.name)):
            status = run.run_tests("accept")
        self.assertEqual((status, output.getvalue()),
                         (1, "timeout: its own tests hang"))


class TestsByNameTest(unittest.TestCase):
    FILES = ["test_config.py", "test_request_ids.py", "test_requests.py",
             "test_main.py", "test_local_cache.py", "test_store_modes.py",
             "test_localities.py", "test_modes_of_x.py", "test_storage.py"]

    def setUp(self):
        self.root = pathlib.Path(self.enterContext(
            tempfile.TemporaryDirectory()))
        (self.root / "tests" / "unit").mkdir(parents=True)
        for name in self.FILES:
            (self.root / "tests" / "unit" / name).write_text("")

    @cases([("config", ["test_config.py"]),
            ("requests", ["test_requests.py"]),
            ("requestids", ["test_request_ids.py"]),
            ("__main__", ["test_main.py"]),
            ("store.local", ["test_local_cache.py"]),
            ("store.modes", ["test_modes_of_x.py", "test_store_modes.py"]),
            ("store.counters", []),
            ("storage", ["test_storage.py"])])
    def test_a_modules_tests_are_found_by_name(self, case):
        module, names = case
        self.assertEqual(
            run.tests_by_name(module, "tests/unit", self.root),
            ["tests/unit/%s" % name for name in names])


class EquivalentListTest(unittest.TestCase):
    def test_every_entry_names_a_module_and_one_of_its_lines(self):
        sources = {}
        for key, reasons in run.load_equivalent().items():
            module, operator, column, line = key
            with self.subTest(entry=key):
                self.assertIn(module, run.MODULES)
                path = run.module_path(ROOT, module)
                lines = sources.setdefault(
                    module, [text.strip() for text
                             in path.read_text().splitlines()])
                self.assertTrue(line in lines, "no such line: the entry"
                                " is stale")
                self.assertTrue(all(reasons.values()))


class ExcludedTest(unittest.TestCase):
    def test_an_excluded_test_module_leaves_its_layer(self):
        suite = run.without(["tests.unit.test_throttle", "tests.unit"],
                            ["tests.unit.test_docs"])
        self.assertNotIn("tests.unit.test_docs", suite)
        self.assertNotIn("tests.unit", suite)
        self.assertIn("tests.unit.test_config", suite)
        self.assertEqual(suite[0], "tests.unit.test_throttle")

    def test_the_runners_own_tests_are_never_run_on_a_mutant(self):
        # They read the source: a mutated line would fail them.
        suite = run.without(run.FAST_LAYERS, [])
        self.assertNotIn("tests.unit.test_mutation", suite)
        self.assertIn("tests.unit.test_throttle", suite)
        self.assertIn("tests.functional.test_methods", suite)

    def test_suites_without_them_are_left_whole(self):
        suite = ["tests.unit.test_breaker", "tests.integration"]
        self.assertEqual(run.without(suite, []), suite)

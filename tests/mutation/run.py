"""Mutation testing: ./run.sh mutate [--jobs N] [--timeout S] [MODULE ...]

Each module is mutated by cosmic-ray (core operators) in a scratch copy of
the work tree under var/mutation/, never in the work tree itself, so that
modules can run side by side and an interrupted run leaves no mutant
behind. A mutant is killed when the test command fails or times out. The
mutants listed in tests/mutation/equivalent.txt (reviewed: no test can
tell them from the original) are left out of the score.

`python -m tests.mutation.run --test MODULE` is the test command cosmic-ray
runs in the copy: the module's own tests (found by name), the fast layers,
then its integration suites, each only while the mutant still survives.
The modules are found under scoring_api/, never listed by hand.
"""
import argparse
import concurrent.futures
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORK = ROOT / "var" / "mutation"
EQUIVALENT_FILE = ROOT / "tests" / "mutation" / "equivalent.txt"
PACKAGE = "scoring_api"
FAST_LAYERS = ["tests.unit", "tests.functional"]
# Where a module's own tests are found by name (own_tests): run first, so
# that most mutants die in a second. Only a mutant they miss costs more.
OWN_TEST_DIRS = ["tests/unit", "tests/functional"]
INTEGRATION_DIR = "tests/integration"
# Tests of a module's own that its name does not find: the HTTP contract
# is handlers' (test_handlers.py holds only declared_length), and most of
# the loader's tests need a real Redis; without these most of their mutants
# wait for the whole fast layers (35 s) first.
OWN_SUITES = {
    "handlers": ["tests/functional/test_http.py"],
    "loader": ["tests/integration/test_loader.py"],
}
# Modules nothing else in scoring_api/ imports, whose only test of the
# fast layers is their own: the layers cannot kill what their own tests
# miss, so they are skipped (35 s a survivor; test_mutation keeps it true).
ALONE = {"loader"}
# Never in a test command: the runner's own tests read the source of
# scoring_api/ (equivalent.txt's lines), so a mutant would fail them.
RUNNER_TESTS = ["tests.unit.test_mutation"]
# Integration suites of a module (or of every module of a package) beside
# tests/integration/test_<module>.py, which is found by name: the suites a
# module is only reachable through (a real Redis, the service's process).
EXTRA_SUITES = {
    "store": ["tests/integration/test_store_round_trips.py",
              "tests/integration/test_faults.py",
              "tests/integration/test_corrupt_data.py",
              "tests/integration/test_sentinel.py",
              "tests/integration/test_cluster.py",
              "tests/integration/test_latency.py",
              "tests/integration/test_cache_memory.py"],
    "__main__": ["tests/integration/test_process.py"],
    "server": ["tests/integration/test_process.py",
               "tests/integration/test_drain.py"],
    "httpserver": ["tests/integration/test_hostile_clients.py",
                   "tests/integration/test_drain.py"],
    "accept": ["tests/integration/test_hostile_clients.py",
               "tests/integration/test_drain.py"],
    "streams": ["tests/integration/test_hostile_clients.py"],
    "supervisor": ["tests/integration/test_process.py",
                   "tests/integration/test_drain.py"],
    "admission": ["tests/integration/test_service_quotas.py",
                  "tests/integration/test_overload.py"],
    "quotas": ["tests/integration/test_quotas.py",
               "tests/integration/test_service_quotas.py"],
}
DEFAULT_TIMEOUT_SECONDS = 60.0
# A module's own tests take seconds: past this a mutant made them hang (a
# loop that never ends burns a core until the session's whole timeout).
OWN_TESTS_TIMEOUT_SECONDS = 120.0
# What such a mutant's output says: a timeout, but one no busy machine
# causes, so that --survivors does not run it again.
OWN_TESTS_HANG = "timeout: its own tests hang"
# A survivor's integration suites take about a minute on an idle machine:
# a timeout must mean a hang, not a busy CPU.
INTEGRATION_TIMEOUT_SECONDS = 300.0


def discover(root=ROOT):
    """Every module of scoring_api/, dotted below it (`config`,
    `store.facade`): a package stands for its modules. A package's
    __init__.py is left out: it only re-exports (a unit test keeps it so)."""
    base = root / PACKAGE
    return sorted(
        ".".join(path.relative_to(base).with_suffix("").parts)
        for path in base.rglob("*.py") if path.name != "__init__.py")


def packages(modules):
    """{package: [its modules]} of the dotted `modules`."""
    found = {}
    for module in modules:
        package, dot, _ = module.rpartition(".")
        if dot:
            found.setdefault(package, []).append(module)
    return found


def simple(name):
    return name.replace("_", "")


def tests_by_name(module, directory, root=ROOT):
    """The test files in `directory` named for `module`: test_<name>.py,
    test_<name>_<what>.py, test_<package>_<name>.py, underscores aside
    (test_request_ids.py for requestids, test_main.py for __main__)."""
    package, _, name = module.rpartition(".")
    found = []
    for path in sorted((root / directory).glob("test_*.py")):
        stem = path.stem[len("test_"):]
        if (simple(stem) == simple(name) or stem.startswith(name + "_")
                or (package and stem == "%s_%s" % (package, name))):
            found.append(path.relative_to(root).as_posix())
    return found


def own_tests(module, root=ROOT):
    """The unit and functional test files of `module`, found by name,
    then those OWN_SUITES gives it."""
    return [path for directory in OWN_TEST_DIRS
            for path in tests_by_name(module, directory, root)
            ] + OWN_SUITES.get(module, [])


def extra_suites(module, root=ROOT):
    """The integration test files of `module`: its own by name, then those
    EXTRA_SUITES gives it or its package."""
    package = module.rpartition(".")[0]
    suites = tests_by_name(module, INTEGRATION_DIR, root)
    for path in EXTRA_SUITES.get(module, []) + EXTRA_SUITES.get(package, []):
        if path not in suites:
            suites.append(path)
    return suites


def test_commands(module, root=ROOT):
    """The nose2 runs of the test command of `module`, in order: its own
    tests, the fast layers (skipped for a module ALONE, and for a module
    of a package, whose other tests hardly touch it: a lower bound of the
    score, at a third of the time), its integration suites."""
    own = own_tests(module, root)
    extra = [path for path in extra_suites(module, root) if path not in own]
    own, extra = ([path[:-len(".py")].replace("/", ".") for path in paths]
                  for paths in (own, extra))
    fast = [] if "." in module or module in ALONE else FAST_LAYERS
    return [suite for suite in (own, fast, extra) if suite]


MODULES = discover()
CONFIG = """\
[cosmic-ray]
module-path = "{module_path}"
timeout = {timeout}
excluded-modules = []
test-command = "{python} -m tests.mutation.run --test {module}{exclude}"

[cosmic-ray.distributor]
name = "local"
"""


def module_path(root, module):
    """scoring_api/NAME.py, or scoring_api/PACKAGE/NAME.py of PACKAGE.NAME
    (each module of a package is a session, a row, of its own)."""
    return (root / "scoring_api" / module.replace(".", "/")).with_suffix(
        ".py")


def timeout_of(module):
    return (INTEGRATION_TIMEOUT_SECONDS if extra_suites(module)
            else DEFAULT_TIMEOUT_SECONDS)


def expand(modules):
    """The sessions of `modules`: a package stands for each of its
    modules."""
    found = packages(MODULES)
    return [session for module in modules
            for session in found.get(module, [module])]


def without(suite, excluded, root=ROOT):
    """`suite` without the test modules `excluded` nor RUNNER_TESTS (a
    layer is then named module by module)."""
    excluded = [*excluded, *RUNNER_TESTS]
    if not any(name.startswith(layer + ".") or name == layer
               for name in excluded for layer in suite):
        return suite
    names = []
    for name in suite:
        directory = root / name.replace(".", "/")
        names += (["%s.%s" % (name, path.stem)
                   for path in sorted(directory.glob("test_*.py"))]
                  if directory.is_dir() else [name])
    return [name for name in names if name not in excluded]


def run_tests(module, excluded=()):
    """Exit status of the test command for one mutant of `module` (run in
    the scratch copy): the first suite that fails decides. Its own tests
    running over OWN_TESTS_TIMEOUT_SECONDS are a hang: killed, and said
    as OWN_TESTS_HANG (the report counts it with cosmic-ray's timeouts)."""
    root = pathlib.Path.cwd()
    for stage, suite in enumerate(test_commands(module, root)):
        nose2 = subprocess.Popen(
            [sys.executable, "-m", "nose2", "--fail-fast",
             *without(suite, excluded, root)],
            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            status = nose2.wait(
                OWN_TESTS_TIMEOUT_SECONDS if stage == 0 else None)
        except subprocess.TimeoutExpired:
            os.killpg(nose2.pid, signal.SIGKILL)
            nose2.wait()
            print(OWN_TESTS_HANG, end="")
            return 1
        if status:
            return status
    return 0


def scratch_copy(module):
    """A copy of the work tree (tracked and new files) for `module`."""
    copy = WORK / module
    shutil.rmtree(copy, ignore_errors=True)
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard",
         "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def mutate(module, timeout, resume=False, excluded=()):
    """Run cosmic-ray on `module`; returns the path of its session.

    With `resume`, an existing session goes on with the mutants it has not
    tried yet (the work tree must not have changed since it began)."""
    copy = scratch_copy(module)
    session = WORK / ("%s.sqlite" % module)
    resume = resume and session.exists()
    if not resume:
        session.unlink(missing_ok=True)
    config = WORK / ("%s.toml" % module)
    config.write_text(CONFIG.format(
        module_path=module_path(copy, module).relative_to(copy),
        timeout=timeout, python=sys.executable, module=module,
        exclude="".join(" --exclude %s" % name for name in excluded)))
    # Without a mutant the tests must pass, or every mutant looks killed.
    if subprocess.call([sys.executable, "-m", "tests.mutation.run",
                        "--test", module,
                        *("--exclude=%s" % name for name in excluded)],
                       cwd=copy):
        raise SystemExit("mutate: the tests of %s fail without any mutant"
                         " (in %s): fix them first, or --exclude a test"
                         " module that fails for another reason" % (
                             module, copy))
    cosmic_ray = pathlib.Path(sys.executable).with_name("cosmic-ray")
    log = (WORK / ("%s.log" % module)).open("a" if resume else "w")
    with log:
        for command in ("exec",) if resume else ("init", "exec"):
            subprocess.run([str(cosmic_ray), command, str(config),
                            str(session)], cwd=copy, check=True,
                           stdout=log, stderr=subprocess.STDOUT)
    return session


def product_changed(module):
    """Whether the mutated file differs between the work tree and the
    scratch copy of `module` (a session's mutants are of that file)."""
    path = module_path(pathlib.Path(), module)
    copy = WORK / module / path
    return not copy.is_file() or (
        (ROOT / path).read_bytes() != copy.read_bytes())


def retest_survivors(module, timeout, excluded=()):
    """Run the survivors not listed as equivalent (and the mutants killed
    by a timeout, which a busy machine may cause) of the last session of
    `module` again against the tests of the work tree. New tests can only
    kill more mutants, so the killed ones stay killed; the mutated file
    must not have changed."""
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db
    from cosmic_ray.work_item import TestOutcome

    session = WORK / ("%s.sqlite" % module)
    changed = product_changed(module)
    if not session.exists() or changed:
        raise SystemExit("mutate: --survivors needs a session of %s on the"
                         " same code (%s): run it whole" % (
                             module, "changed" if changed else "none"))
    equivalent = load_equivalent()
    lines = module_path(ROOT, module).read_text().splitlines()
    with use_db(str(session), WorkDB.Mode.open) as db:
        survivors = [
            item.job_id for item, result in db.completed_work_items
            if result.output == "timeout"
            or (result.test_outcome == TestOutcome.SURVIVED and not listed(
                equivalent, mutant_key(module, item.mutations[0], lines),
                mutated_line(result.diff)))]
        with db._session_maker.begin() as transaction:
            transaction.query(WorkResultStorage).where(
                WorkResultStorage.job_id.in_(survivors)).delete()
    mutate(module, timeout, resume=True, excluded=excluded)
    return session


def load_equivalent():
    """{(module, operator, column, source line): {mutated line: reason}}
    of the list; the mutated line is None when the entry names none.

    A line: `module | operator | column | reason | source line`, the
    source line optionally followed by ` => mutated line` (needed where
    one place has several mutants, as NumberReplacer's 0 -> 1 and -1).
    """
    equivalent = {}
    for line in EQUIVALENT_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        module, operator, column, reason, source = line.split(" | ", 4)
        source, arrow, mutated = source.partition(" => ")
        equivalent.setdefault(
            (module, operator, int(column), source.strip()), {})[
                mutated.strip() if arrow else None] = reason
    return equivalent


def mutant_key(module, mutation, lines):
    line, column = mutation.start_pos
    return (module, mutation.operator_name, column, lines[line - 1].strip())


def mutated_line(diff):
    """The first line the mutant's diff adds."""
    for line in (diff or "").splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""


def listed(equivalent, key, mutated):
    reasons = equivalent.get(key, {})
    return mutated in reasons or None in reasons


def tally(module, session, equivalent):
    """Counts of one module, the survivors not listed as equivalent, and
    the listed ones a test kills."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    sources, rows = {}, {}
    survivors, stale = [], []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            (mutation,) = item.mutations
            # The work tree's copy: the scratch one may hold a mutant now.
            path = ROOT / mutation.module_path
            if path not in sources:
                sources[path] = path.read_text().splitlines()
            counts = rows.setdefault(module, dict(
                mutants=0, killed=0, timeout=0, survived=0, equivalent=0))
            key = mutant_key(module, mutation, sources[path])
            mutated = mutated_line(result.diff)
            counts["mutants"] += 1
            if result.test_outcome == TestOutcome.SURVIVED:
                if listed(equivalent, key, mutated):
                    counts["equivalent"] += 1
                else:
                    counts["survived"] += 1
                    survivors.append((mutation.module_path, mutation,
                                      key + (mutated,)))
            else:
                counts["killed"] += 1
                counts["timeout"] += result.output.startswith("timeout")
                if listed(equivalent, key, mutated):
                    stale.append(key + (mutated,))
    for counts in rows.values():
        scored = counts["mutants"] - counts["equivalent"]
        counts["score"] = (100.0 * counts["killed"] / scored if scored
                           else 100.0)
    return sorted(rows.items()), survivors, stale


def print_table(rows):
    header = ("module", "mutants", "killed", "timeout", "survived",
              "equivalent", "score")
    print("%-16s %8s %8s %8s %9s %11s %7s" % header)
    total = dict.fromkeys(header[1:-1], 0)
    for module, counts in rows:
        print("%-16s %8d %8d %8d %9d %11d %6.1f%%" % (
            module, *(counts[name] for name in header[1:])))
        for name in total:
            total[name] += counts[name]
    scored = total["mutants"] - total["equivalent"]
    print("%-16s %8d %8d %8d %9d %11d %6.1f%%" % (
        "all", *total.values(),
        100.0 * total["killed"] / scored if scored else 100.0))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="./run.sh mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="a module of scoring_api/, dotted (default:"
                             " all of them); a package stands for each of"
                             " its modules (store: store.breaker, ...)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="modules mutated side by side (default 2)")
    parser.add_argument("--timeout", type=float,
                        help="seconds before a mutant's tests count as"
                             " killed (default %.0f, %.0f for a module"
                             " with integration suites)" % (
                                 DEFAULT_TIMEOUT_SECONDS,
                                 INTEGRATION_TIMEOUT_SECONDS))
    parser.add_argument("--resume", action="store_true",
                        help="go on with the sessions an interrupted run"
                             " left")
    parser.add_argument("--survivors", action="store_true",
                        help="run only the last sessions' survivors not"
                             " listed as equivalent again, with the current"
                             " tests")
    parser.add_argument("--report", action="store_true",
                        help="only print the table of the last sessions")
    parser.add_argument("--exclude", action="append", default=[],
                        metavar="TEST_MODULE",
                        help="leave a test module (tests.unit.test_x) out of"
                             " the test command: one that fails without any"
                             " mutant, for a reason of its own, would kill"
                             " every mutant")
    parser.add_argument("--test", metavar="MODULE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.test:
        return run_tests(args.test, args.exclude)
    unknown = set(args.modules) - set(MODULES) - set(packages(MODULES))
    if unknown:
        parser.error("unknown module(s): %s" % ", ".join(sorted(unknown)))
    modules = expand(args.modules or MODULES)
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.monotonic()
    if not args.report:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            run = retest_survivors if args.survivors else (
                lambda module, timeout, excluded: mutate(
                    module, timeout, args.resume, excluded))
            for session in pool.map(
                    lambda module: run(module, args.timeout or timeout_of(
                        module), args.exclude), modules):
                print("done: %s (%.0fs)" % (session.stem,
                                            time.monotonic() - started),
                      file=sys.stderr)
    equivalent = load_equivalent()
    rows, all_survivors, all_stale = [], [], []
    not_run = []
    for module in modules:
        session = WORK / ("%s.sqlite" % module)
        if not session.exists():
            not_run.append(module)
            continue
        counts, survivors, stale = tally(module, session, equivalent)
        rows += counts
        all_survivors += survivors
        all_stale += stale
    print_table(rows)
    if not_run:
        print("not run yet: %s" % ", ".join(not_run))
    if all_survivors:
        print("\nsurvivors (module | operator | column | reason | source),"
              " line numbers after '#':")
        for path, mutation, (module, operator, column, line,
                             mutated) in sorted(
                all_survivors, key=lambda s: (str(s[0]), s[1].start_pos)):
            print("%s | %s | %d | ? | %s => %s  # %s:%d" % (
                module, operator, column, line, mutated, path,
                mutation.start_pos[0]))
    for key in all_stale:
        print("listed as equivalent but killed (remove it): %s"
              % " | ".join(map(str, key)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

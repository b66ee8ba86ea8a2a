"""Test vectors: every case runs, and a failure names the one that broke."""
import functools
import inspect


def cases(case_list):
    """Run the decorated test once per case: `test(self, case)`.

    Under nose2 (its params plugin reads `paramList`) each case is a test of
    its own, `test_x:N` with N = i + 1, which can be rerun alone. Under
    plain unittest the cases run as subtests. Either way every case runs
    even after one fails, and a failure reads `(i=5, case={...})`.
    """
    case_list = list(case_list)
    if not case_list:
        # nose2 would make no test of it and report OK; refuse it instead,
        # when the module is imported, whatever the runner.
        raise ValueError("cases() got no case: the test would run nothing")

    def decorator(test):
        if inspect.iscoroutinefunction(test):
            raise TypeError(
                "%s is a bare coroutine function, which nose2 would call and"
                " never await: wrap it in tornado.testing.gen_test"
                % test.__qualname__)

        @functools.wraps(test)
        def run_cases(self, *one_case):
            chosen = one_case or map(_Case, *zip(*enumerate(case_list)))
            for case in chosen:
                with self.subTest(i=case.i, case=case.data):
                    test(self, case.data)

        run_cases.paramList = [
            (_Case(i, data),) for i, data in enumerate(case_list)]
        return run_cases

    return decorator


class _Case:
    """One vector and its index; nose2 puts the repr in the test's name
    (cut at 79 characters)."""

    def __init__(self, i, data):
        self.i = i
        self.data = data

    def __repr__(self):
        return "i=%d %r" % (self.i, self.data)

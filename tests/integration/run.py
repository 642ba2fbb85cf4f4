#!/usr/bin/python3
"""run.py - run keyward's integration tests against the real binary.

    /usr/bin/python3 tests/integration/run.py [-v] [FILTER...]

Discovers test_*.py beside this file, prints "ok - NAME" or "not ok - NAME: REASON" for
each test and ends with "N passed, N failed"; exits 1 on any failure. A FILTER keeps the
tests whose name (module.Class.method) contains it. -v also prints tracebacks on stderr.
Binary: $KEYWARD_BIN (default build/keyward); KEYWARD_IT_KEEP=1 keeps the temp stores.
"""

import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
RELEASE_ONLY = "release-only"  # reason prefix of harness.release_only


def one_line(s, limit=3000):
    s = " | ".join(line.strip() for line in str(s).strip().splitlines() if line.strip())
    return s if len(s) <= limit else s[:limit] + "..."


class LineResult(unittest.TestResult):
    def __init__(self, verbose):
        super().__init__()
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.nskipped = 0
        self._skip = None
        self._problems = []

    @staticmethod
    def name(test):
        tid = test.id()
        return tid

    def _reason(self, test, err):
        exc_type, exc, tb = err
        if self.verbose:
            sys.stderr.write("=== %s\n%s\n" % (self.name(test),
                                               "".join(traceback.format_exception(*err))))
        if isinstance(exc, AssertionError):
            return one_line(exc)
        # An error, not an assertion: say where it happened.
        where = traceback.extract_tb(tb)[-1] if tb else None
        loc = " (%s:%s)" % (os.path.basename(where.filename), where.lineno) if where else ""
        return one_line("%s: %s%s" % (exc_type.__name__, exc, loc))

    def startTest(self, test):
        super().startTest(test)
        self._problems = []
        self._t0 = time.time()

    def addSuccess(self, test):
        super().addSuccess(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._note(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._note(test, err)
        else:
            # setUpClass / tearDownClass / module fixtures: a line of their own.
            self.failed += 1
            print("not ok - %s: %s" % (test.description if hasattr(test, "description")
                                        else str(test), self._reason(test, err)), flush=True)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._problems.append("[%s] %s" % (subtest._subDescription(),
                                               self._reason(subtest, err)))

    def _note(self, test, err):
        self._problems.append(self._reason(test, err))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        # A skip is a failure (a test that cannot run proves nothing), except the deliberate
        # one of harness.release_only: suites needing outside servers run once, in the
        # release pass, not again under the sanitizers.
        if reason.startswith(RELEASE_ONLY) and os.environ.get("KW_TEST_MODE") == "asan":
            self._skip = reason
        else:
            self._problems.append("skipped: " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._problems.append("unexpected success")

    def stopTest(self, test):
        super().stopTest(test)
        if self._skip and not self._problems:
            self.nskipped += 1
            print("ok - %s # skip %s" % (self.name(test), self._skip), flush=True)
        elif self._problems:
            self.failed += 1
            print("not ok - %s: %s" % (self.name(test), "; ".join(self._problems)), flush=True)
        else:
            self.passed += 1
            extra = ""
            if self.verbose:
                extra = " (%.1fs)" % (time.time() - self._t0)
            print("ok - %s%s" % (self.name(test), extra), flush=True)
        self._problems = []
        self._skip = None


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def main(argv):
    verbose = "-v" in argv
    filters = [a for a in argv if a != "-v"]
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(flatten(suite))
    if filters:
        tests = [t for t in tests if any(f in t.id() for f in filters)]
    result = LineResult(verbose)
    t0 = time.time()
    unittest.TestSuite(tests).run(result)
    if verbose:
        sys.stderr.write("ran %d tests in %.1fs\n" % (result.testsRun, time.time() - t0))
    print("%d passed, %d failed, %d skipped" % (result.passed, result.failed, result.nskipped),
          flush=True)
    return 1 if result.failed or result.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

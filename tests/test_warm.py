"""The suite's warm child runs (tests/warm.py) behave as a fresh `python -m pytest` does."""

from __future__ import annotations

import os

import pytest

from tests import warm

PROBE = """
import os, sys

def test_where(capsys):
    print("cwd", os.getcwd() == os.path.realpath(os.environ["EXPECTED_CWD"]))
    print("path0", os.path.realpath(sys.path[0]) == os.path.realpath(os.getcwd()))
    print("env", os.environ.get("WARM_PROBE"))
    print("argv0", os.path.basename(sys.argv[0]))
    print("stdin", sys.stdin.read() == "")

def test_rewritten():
    left, right = [1, 2], [1, 3]
    assert left == right
"""


@pytest.mark.parametrize("fresh", [False, True], ids=["warm", "fresh"])
def test_a_warm_run_is_a_fresh_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fresh: bool) -> None:
    pytester.makepyfile(test_probe=PROBE)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    monkeypatch.setenv("WARM_PROBE", "seen")
    monkeypatch.setenv("EXPECTED_CWD", str(pytester.path))
    result = warm.runpytest(pytester, "-s", "-p", "no:cacheprovider", fresh=fresh)
    result.assert_outcomes(passed=1, failed=1)  # and no warning turned error, such as an assert-rewrite one
    result.stdout.fnmatch_lines(
        ["*cwd True", "path0 True", "env seen", "argv0 __main__.py", "stdin True", "*At index 1 diff: 2 != 3*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_warm_run_has_the_libraries_imported_and_a_fresh_one_not(pytester: pytest.Pytester) -> None:
    if warm.needs_fresh(dict(os.environ)):
        pytest.skip("every run here is fresh (under coverage, or INTERLLM_TEST_FRESH=1)")
    pytester.makepyfile(test_mods="import sys\n\ndef test_mods():\n    print('mcp imported:', 'mcp' in sys.modules)\n")
    warm.runpytest(pytester, "-s").stdout.fnmatch_lines(["*mcp imported: True*"])
    warm.runpytest(pytester, "-s", fresh=True).stdout.fnmatch_lines(["*mcp imported: False*"])


def test_a_run_past_its_timeout_is_killed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_slow="import time\n\ndef test_slow():\n    time.sleep(60)\n")
    with pytest.raises(pytester.TimeoutExpired):
        warm.runpytest(pytester, timeout=2)
    # the warm process serves the next run
    pytester.makepyfile(test_slow="def test_quick():\n    pass\n")
    warm.runpytest(pytester).assert_outcomes(passed=1)


def test_what_needs_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_PROCESS", "COV_CORE"))}
    monkeypatch.setattr(warm, "FRESH", False)
    assert not warm.needs_fresh({**env, "PYTHONPATH": "/elsewhere"})  # taken per run
    assert warm.needs_fresh({**env, "PYTHONWARNINGS": "error::UserWarning:nowhere"})  # read as the interpreter starts
    assert warm.needs_fresh({**env, "COVERAGE_PROCESS_CONFIG": "{}"})  # coverage starts with the interpreter
    monkeypatch.setattr(warm, "FRESH", True)  # INTERLLM_TEST_FRESH=1 as the suite started
    assert warm.needs_fresh(env)

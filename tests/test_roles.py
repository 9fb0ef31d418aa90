"""Each process registers only the hooks of its roles, as pytest-xdist does: the controller's where the session is
owned, the worker's where items run; one process without xdist has both."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run, write

ROLES_SEEN = """\
import json

NAMES = ("interllm-run", "interllm-controller", "interllm-worker", "interllm-html", "interllm-xdist")

def pytest_sessionfinish(session):
    config = session.config
    who = getattr(config, "workerinput", {}).get("workerid", "main")
    names = [n for n in NAMES if config.pluginmanager.has_plugin(n)]
    with open(config.rootpath / "roles.jsonl", "a") as fh:
        fh.write(json.dumps([who, names]) + "\\n")
"""

CONTROLLER = ["interllm-run", "interllm-controller", "interllm-html", "interllm-xdist"]
WORKER = ["interllm-run", "interllm-worker"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"main": [*CONTROLLER[:2], "interllm-worker", *CONTROLLER[2:]]}),
        (["-n", "2"], {"main": CONTROLLER, "gw0": WORKER, "gw1": WORKER}),
        (["-n", "0"], {"main": [*CONTROLLER[:2], "interllm-worker", *CONTROLLER[2:]]}),
        (["-n", "2", "--collect-only"], {"main": [*CONTROLLER[:2], "interllm-worker", *CONTROLLER[2:]]}),
    ],
    ids=["single", "xdist", "xdist-off", "xdist-collect-only"],
)
def test_hooks_are_registered_by_role(
    project: pytest.Pytester, args: list[str], expected: dict[str, list[str]]
) -> None:
    write(project.path / "conftest.py", ROLES_SEEN)
    result = run(project, "--interllm", "input/list.md", "-k", "no-such-scenario", *args)
    assert result.ret in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.OK), result.stdout.str()
    lines = (project.path / "roles.jsonl").read_text().splitlines()
    assert dict(json.loads(line) for line in lines) == expected


def test_without_lists_only_the_fixtures(project: pytest.Pytester) -> None:
    write(project.path / "conftest.py", ROLES_SEEN)
    write(project.path / "test_plain.py", "def test_plain():\n    pass\n")
    run(project, "test_plain.py").assert_outcomes(passed=1)
    assert json.loads((project.path / "roles.jsonl").read_text()) == ["main", []]

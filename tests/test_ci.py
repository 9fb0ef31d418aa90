"""CI is green only with the browser check (`.ci/install-chromium` on machines with and without apt-get), and runs the
suite on the pinned, the newest and the lowest versions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "install-chromium"


def tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def install(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """The script with only `bin_dir` on PATH: no real browser, apt-get or id is seen."""
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    tool(tmp_path, "id", 'echo "${FAKE_UID:-0}"\n')
    return tmp_path


def test_a_failed_install_where_installs_are_allowed_fails_ci(bin_dir: Path) -> None:
    tool(bin_dir, "apt-get", 'echo "E: Unable to locate package chromium" >&2\nexit 100\n')
    result = install(bin_dir)
    assert result.returncode == 1
    assert "error: this machine allows installs (apt-get, root) but 'apt-get install chromium' failed" in result.stderr


def test_an_install_makes_the_browser_test_required(bin_dir: Path) -> None:
    # apt-get "installs" chromium into the same directory, as the real one puts it on PATH.
    tool(
        bin_dir,
        "apt-get",
        f'[ "$1" = install ] && printf "#!/bin/bash\\n" > {bin_dir}/chromium && chmod +x {bin_dir}/chromium\nexit 0\n',
    )
    result = install(bin_dir)
    assert (result.returncode, result.stdout) == (0, "required\n")


def test_a_browser_on_path_is_required(bin_dir: Path) -> None:
    tool(bin_dir, "chromium", "exit 0\n")
    assert install(bin_dir).stdout == "required\n"


@pytest.mark.parametrize("apt", [False, True], ids=["no-apt-get", "not-root"])
def test_without_a_way_to_install_the_check_stays_optional(
    bin_dir: Path, apt: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if apt:
        tool(bin_dir, "apt-get", "exit 100\n")
        tool(bin_dir, "id", "echo 1000\n")
    result = install(bin_dir)
    assert (result.returncode, result.stdout) == (0, "optional\n")
    assert "the report's browser test will be skipped" in result.stderr


def test_ci_runs_the_installer_and_requires_the_browser() -> None:
    text = (SCRIPT.parent / "run").read_text()
    assert "browser=$(.ci/install-chromium)" in text and "set -euo pipefail" in text
    assert "export PYTEST_INTERLLM_REQUIRE_BROWSER=1" in text
    # The README's test command on the pinned versions, the suite under coverage, then the README's command on the
    # newest and the lowest versions.
    assert text.rstrip().endswith("make lint\nmake test\nmake cov\n.ci/versions newest\n.ci/versions lowest")
    versions = (SCRIPT.parent / "versions").read_text()
    assert 'make test VENV="$venv" CONSTRAINTS="$constraints"' in versions and "set -euo pipefail" in versions


def lowest(tmp_path: Path, dependencies: list[str]) -> subprocess.CompletedProcess[str]:
    """`.ci/lowest-constraints` in a project with these dependencies and a constraints.txt pinning both and more."""
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'p'\ndependencies = {dependencies!r}\n")
    (tmp_path / "constraints.txt").write_text("mcp==2.3.0\npytest==9.2.0\npytest-cov==7.1.0\npytest-xdist==3.8.0\n")
    script = SCRIPT.parent / "lowest-constraints"
    return subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_ci_tests_the_lowest_pytest_and_xdist_that_pyproject_allows(tmp_path: Path) -> None:
    done = lowest(tmp_path, ["pytest>=8.4.1", "pytest-xdist >= 3.7", "pytest-html>=4.1", "mcp>=2.3,<3"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["mcp==2.3.0", "pytest-cov==7.1.0", "pytest==8.4.*", "pytest-xdist==3.7.*"]
    missing = lowest(tmp_path, ["pytest", "pytest-xdist>=3.7"])
    assert missing.returncode != 0 and "no `>=X.Y` lower bound for pytest" in missing.stderr

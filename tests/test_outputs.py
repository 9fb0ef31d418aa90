"""Nothing lost: the plugin removes only the files it wrote itself, moves a user's file aside rather than overwrite
it, and refuses output paths and dirs that hold inputs or lead outside the project."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_interllm.outputs import KEPT, MANIFEST, Manifest
from pytest_interllm.settings import Settings
from tests.conftest import jsonl, outputs, run, write


def log_text(project: pytest.Pytester) -> str:
    [path] = (project.path / "logs").glob("run-*.log")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("output_dir", "message"),
    [
        ("input", "--interllm-output-dir: 'input' holds the scenario list input/list.md"),
        (".", "--interllm-output-dir: '.' is the rootdir"),
        ("..", "--interllm-output-dir: '..' holds the rootdir"),
        ("scenarios", "--interllm-output-dir: 'scenarios' holds the expectations file scenarios/list.yaml"),
        ("templates", "--interllm-output-dir: 'templates' holds the prompt template templates/prompt.txt"),
    ],
)
def test_an_output_dir_holding_inputs_is_refused_and_nothing_is_deleted(
    project: pytest.Pytester, output_dir: str, message: str
) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  min_words: 5\n")
    template = "Scenario {index}: {title}\n\n{body}\n\nWrite it to the file `{output_path}`.\n"
    write(project.path / "templates" / "prompt.txt", template)
    before = {p: p.read_bytes() for p in project.path.rglob("*") if p.is_file()}
    assert len(before) >= 4
    args = ("--interllm-output-dir", output_dir, "--interllm-template", "templates/prompt.txt")
    result = project.runpytest("--interllm", "input/list.md", *args)  # in process: refused before codex would start
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*choose a directory of its own*"])
    for path, data in before.items():
        assert path.is_file() and path.read_bytes() == data, path


def test_output_dir_from_the_environment_is_named_in_the_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_OUTPUT_DIR", "input")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: INTERLLM_OUTPUT_DIR: 'input' holds the scenario list input/list.md*"])
    assert (project.path / "input" / "list.md").is_file()


def test_a_shared_directory_keeps_the_users_files(project: pytest.Pytester) -> None:
    design = write(project.path / "docs" / "design.md", "# Design\n\nThe user's own words.\n")
    write(project.path / "docs" / "scenario_009.md", "A user's file that only looks like an output.\n")
    first = run(project, "--interllm", "input/list.md", "--interllm-output-dir", "docs", "-k", "scenario_001 or 002")
    first.assert_outcomes(passed=2, deselected=1)
    assert sorted(p.name for p in (project.path / "docs").iterdir() if not p.name.startswith(".")) == [
        "design.md",
        "scenario_001.md",
        "scenario_002.md",
        "scenario_009.md",
    ]
    second = run(project, "--interllm", "input/list.md", "--interllm-output-dir", "docs", "-k", "scenario_003")
    second.assert_outcomes(passed=1, deselected=2)
    # The previous run's outputs are gone; the user's files are untouched.
    assert sorted(p.name for p in (project.path / "docs").iterdir() if not p.name.startswith(".")) == [
        "design.md",
        "scenario_003.md",
        "scenario_009.md",
    ]
    assert design.read_text() == "# Design\n\nThe user's own words.\n"
    second.stdout.fnmatch_lines(["interllm: outputs docs/ (2 earlier outputs of the plugin removed), timeout*"])


def test_earlier_outputs_are_removed_and_an_edited_one_is_kept(project: pytest.Pytester) -> None:
    run(project, "--interllm", "input/list.md").assert_outcomes(passed=3)
    assert outputs(project) == ["scenario_001.md", "scenario_002.md", "scenario_003.md"]
    edited = project.path / "outputs" / "scenario_002.md"
    edited.write_text(edited.read_text() + "\nReviewed by hand.\n")
    write(project.path / "outputs" / "notes.md", "mine\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_003", "--interllm-log-dir", "logs2")
    result.assert_outcomes(passed=1, deselected=2)
    assert outputs(project) == ["notes.md", "scenario_002.md", "scenario_003.md"]
    assert edited.read_text().endswith("Reviewed by hand.\n")
    [log] = (project.path / "logs2").glob("run-*.log")
    text = log.read_text()
    assert "earlier outputs of the plugin removed from outputs/: 2" in text
    assert "  removed outputs/scenario_001.md" in text and "  removed outputs/scenario_003.md" in text
    assert "  kept outputs/scenario_002.md: changed since the plugin wrote it" in text


@pytest.mark.parametrize(
    ("output_file", "what"),
    [
        ("input/list.md", "the scenario list (input/list.md)"),
        (".env", "a file that configures the run (.env)"),
        ("tox.ini", "the pytest configuration file (tox.ini)"),
        ("pytest.ini", "a file that configures the run (pytest.ini)"),
        ("conftest.py", "a file that configures the run (conftest.py)"),
    ],
)
def test_an_output_file_naming_an_input_is_a_collection_error(
    project: pytest.Pytester, output_file: str, what: str
) -> None:
    write(project.path / ".env", "SOME_SETTING=1\n")
    write(project.path / "conftest.py", "# the user's conftest\n")
    write(project.path / "scenarios" / "list.yaml", f"1: {{}}\n2:\n  output_file: {output_file}\n")
    before = {p: p.read_bytes() for p in project.path.rglob("*") if p.is_file()}
    result = run(project, "--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"*scenarios/list.yaml:3: scenario_002-*: output file {output_file} would overwrite {what}: an input*"]
    )
    for path, data in before.items():
        assert path.read_bytes() == data, path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kept_files(root: Path) -> dict[str, str]:
    """What the plugin moved aside: name → text, whatever run directory it went to."""
    kept = root / "outputs" / KEPT
    return {p.name: p.read_text() for p in sorted(kept.rglob("*")) if p.is_file()} if kept.is_dir() else {}


def test_a_users_file_at_the_output_path_is_moved_aside_even_when_the_agent_writes_nothing(
    project: pytest.Pytester,
) -> None:
    mine = write(project.path / "outputs" / "scenario_001.md", "MY OWN notes on scenario 1\n")
    write(project.path / "outputs" / "scenario_002.md", "MY OWN notes on scenario 2\n")
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n")
    result = run(project, "--interllm", "input/list.md")
    result.assert_outcomes(passed=2, failed=1)
    assert not mine.exists()  # the agent wrote nothing there, and the user's file is not counted as written
    assert kept_files(project.path) == {
        "scenario_001.md": "MY OWN notes on scenario 1\n",
        "scenario_002.md": "MY OWN notes on scenario 2\n",
    }
    result.stdout.fnmatch_lines(
        [f"interllm: output: outputs/scenario_001.md was not written by the plugin: moved aside to outputs/{KEPT}/*"]
    )
    [first, second, _] = jsonl(project)
    assert first["failure_class"] == "no-output-file"
    assert first["output_notes"][0].startswith("outputs/scenario_001.md was not written by the plugin: moved aside")
    assert second["output_exists"] and second["output_notes"]


def test_a_file_edited_since_the_plugin_wrote_it_is_moved_aside_before_the_next_attempt(
    project: pytest.Pytester,
) -> None:
    run(project, "--interllm", "input/list.md").assert_outcomes(passed=3)
    edited = project.path / "outputs" / "scenario_002.md"
    edited.write_text(edited.read_text() + "\nReviewed by hand.\n")
    text = edited.read_text()
    again = run(project, "--interllm", "input/list.md", "--interllm-log-dir", "logs2")
    again.assert_outcomes(passed=3)
    again.stdout.fnmatch_lines(["interllm: outputs outputs/ (2 earlier outputs of the plugin removed, 1 kept*"])
    assert kept_files(project.path) == {"scenario_002.md": text}  # the edit survives, beside the new output
    assert "Reviewed by hand." not in edited.read_text()


def test_a_link_at_the_output_path_is_moved_aside_never_written_through(project: pytest.Pytester) -> None:
    readme = write(project.path / "README.md", "The user's readme.\n")
    (project.path / "outputs").mkdir()
    (project.path / "outputs" / "scenario_001.md").symlink_to("../README.md")
    run(project, "--interllm", "input/list.md", "-k", "scenario_001").assert_outcomes(passed=1, deselected=2)
    assert readme.read_text() == "The user's readme.\n"
    written = project.path / "outputs" / "scenario_001.md"
    assert written.is_file() and not written.is_symlink()
    # The link itself was moved (its text unchanged: a relative one may dangle in its new place).
    [link] = [Path(d) / f for d, _, files in os.walk(project.path / "outputs" / KEPT) for f in files]
    assert link.name == "scenario_001.md" and link.is_symlink() and os.readlink(link) == "../README.md"


def test_an_output_file_through_a_symlinked_dir_outside_the_rootdir_is_refused(
    project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    important = write(outside / "important.txt", "important\n")
    (project.path / "linkdir").symlink_to(outside)
    write(project.path / "scenarios" / "list.yaml", "2:\n  output_file: linkdir/important.txt\n")
    result = run(project, "--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            f"*list.yaml:2: scenario_002-*: output file linkdir/important.txt resolves to {outside}/important.txt, "
            "outside the rootdir*"
        ]
    )
    assert important.read_text() == "important\n"


def test_a_forged_manifest_deletes_nothing(project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = write(tmp_path_factory.mktemp("outside") / "victim.txt", "victim\n")
    above = write(project.path.parent / f"{project.path.name}-victim.txt", "above\n")
    readme = write(project.path / "README.md", "readme\n")
    mine = write(project.path / "outputs" / "notes.md", "my notes\n")
    entries = [
        (str(outside), outside),
        (f"../{above.name}", above),
        ("README.md", readme),
        ("outputs/notes.md", mine),  # the right path and the right hash, but not the plugin's signature
    ]
    lines = [json.dumps({"path": name, "sha256": sha(path)}) for name, path in entries]
    write(project.path / "outputs" / MANIFEST, "\n".join(lines) + "\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_003")
    result.assert_outcomes(passed=1, deselected=2)
    for _, path in entries:
        assert path.is_file(), path
    assert outside.read_text() == "victim\n" and above.read_text() == "above\n" and mine.read_text() == "my notes\n"
    [log] = (project.path / "logs").glob("run-*.log")
    assert (
        f"  kept ../{above.name}: manifest entry ignored: not signed by the plugin on this machine" in log.read_text()
    )


def test_signed_manifest_entries_outside_the_output_dir_are_never_removed(
    project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Even entries this machine's plugin signed (an old manifest, a copied one) cannot lead outside the output
    dir at the start of a run: paths outside the project, `..`, inputs, links and rootdir files stay."""
    outside = write(tmp_path_factory.mktemp("outside") / "victim.txt", "victim\n")
    above = write(project.path.parent / f"{project.path.name}-above.txt", "above\n")
    readme = write(project.path / "README.md", "readme\n")
    env = write(project.path / ".env", "SOME_SETTING=1\n")
    (project.path / "outputs").mkdir()
    (project.path / "outputs" / "link.md").symlink_to("../README.md")
    settings = Settings(
        rootdir=project.path,
        lists=(),
        model="m",
        model_explicit=False,
        provider="offline",
        executor="codex",
        timeout=1.0,
        timeout_explicit=False,
        max_scenarios=None,
        codex=None,
        codex_home=None,
        sandbox="workspace-write",
        template=None,
        output_dir=project.path / "outputs",
    )
    manifest = Manifest(settings)
    for name, path in [
        (str(outside), outside),
        (f"../{above.name}", above),
        ("README.md", readme),
        (".env", env),
        ("outputs/link.md", readme),
    ]:
        assert manifest._append(name, sha(path)) is None
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_003")
    result.assert_outcomes(passed=1, deselected=2)
    for path, text in [(outside, "victim\n"), (above, "above\n"), (readme, "readme\n"), (env, "SOME_SETTING=1\n")]:
        assert path.read_text() == text, path
    assert (project.path / "outputs" / "link.md").is_symlink()
    log = next((project.path / "logs").glob("run-*.log")).read_text()
    assert f"  kept {outside}: manifest entry ignored: a place the plugin never writes" in log
    assert "  kept .env: manifest entry ignored: a place the plugin never writes" in log


def test_two_scenarios_with_one_output_file_is_a_collection_error(project: pytest.Pytester) -> None:
    write(
        project.path / "scenarios" / "list.yaml",
        "1:\n  output_file: outputs/plan.md\n3:\n  output_file: outputs/plan.md\n",
    )
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "4")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*list.yaml:4: input/list.md::scenario_003-* and input/list.md::scenario_001-* would both write "
            "outputs/plan.md: give each scenario its own output_file"
        ]
    )
    assert outputs(project) == []


def test_two_lists_write_their_outputs_apart(project: pytest.Pytester) -> None:
    write(project.path / "input" / "other.md", "- Rotate the SFTP keys\n- Archive the logs\n")
    result = run(project, "--interllm", "input/list.md", "--interllm", "input/other.md")
    result.assert_outcomes(passed=5)
    written = sorted(
        p.relative_to(project.path / "outputs").as_posix() for p in (project.path / "outputs").rglob("*.md")
    )
    assert written == [
        "list/scenario_001.md",
        "list/scenario_002.md",
        "list/scenario_003.md",
        "other/scenario_001.md",
        "other/scenario_002.md",
    ]
    assert "Rotate the SFTP keys" in (project.path / "outputs" / "other" / "scenario_001.md").read_text()


def test_a_users_file_in_a_chosen_output_dir_survives_two_runs(project: pytest.Pytester) -> None:
    write(project.path / "docs" / "scenario_002.md", "MY OWN doc\n")
    for n in (1, 2):
        result = run(
            project, "--interllm", "input/list.md", "--interllm-output-dir", "docs", "--interllm-log-dir", f"l{n}"
        )
        result.assert_outcomes(passed=3)
    kept = [p for p in (project.path / "docs" / KEPT).rglob("*") if p.is_file()]
    assert [p.read_text() for p in kept] == ["MY OWN doc\n"]
    second = (project.path / "l2").glob("run-*.log").__next__().read_text()
    assert "earlier outputs of the plugin removed from docs/: 3" in second


def test_an_output_dir_that_is_a_file_is_a_usage_error(project: pytest.Pytester) -> None:
    write(project.path / "outputs", "not a directory\n")
    result = project.runpytest("--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --interllm-output-dir: 'outputs' is a file, not a directory*"])
    assert (project.path / "outputs").read_text() == "not a directory\n"


@pytest.mark.parametrize("kind", ["binary", "directory", "symlink"])
def test_an_unreadable_manifest_is_set_aside_and_the_run_goes_on(project: pytest.Pytester, kind: str) -> None:
    manifest = project.path / "outputs" / MANIFEST
    manifest.parent.mkdir()
    victim = write(project.path / "victim.txt", "victim\n")
    if kind == "binary":
        manifest.write_bytes(b"\xff\xfe not utf-8 \x80\n")
    elif kind == "directory":
        manifest.mkdir()
    else:
        manifest.symlink_to("../victim.txt")
    for n in (1, 2):  # the second run finds a usable manifest again
        result = run(project, "--interllm", "input/list.md", "--interllm-log-dir", f"l{n}")
        result.assert_outcomes(passed=3)
    first = next((project.path / "l1").glob("run-*.log")).read_text()
    assert f"note: outputs/{MANIFEST} is not" in first and "set aside as outputs/" in first
    second = next((project.path / "l2").glob("run-*.log")).read_text()
    assert "earlier outputs of the plugin removed from outputs/: 3" in second
    assert victim.read_text() == "victim\n"
    assert [p.name for p in (project.path / "outputs").iterdir() if ".unreadable-" in p.name]


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[None]:
    """A small tmpfs mounted at `path` (needs root, as on the project's machines and CI)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_output_dir_is_a_usage_error(project: pytest.Pytester) -> None:
    with tmpfs(project.path / "outputs", "ro,size=64k"):
        result = project.runpytest("--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --interllm-output-dir: 'outputs' cannot be written (Read-only file system)*"])


def test_a_full_disk_under_the_outputs_fails_scenarios_not_the_run(project: pytest.Pytester) -> None:
    with tmpfs(project.path / "outputs", "size=12k"):
        write(project.path / "outputs" / "filler.bin", "x" * 8192)
        result = run(project, "--interllm", "input/list.md")
        assert (project.path / "outputs" / "filler.bin").stat().st_size == 8192
    # No INTERNALERROR: every scenario ran and got a verdict; the manifest it could not write is told, not fatal.
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    records = jsonl(project)
    assert [r["index"] for r in records] == [1, 2, 3]
    assert {r["failure_class"] for r in records} <= {None, "no-output-file"}
    assert any(
        "(No space left on device): the next run will leave it in place" in n for n in records[0]["output_notes"]
    )
    result.stdout.fnmatch_lines(["interllm: output: could not record outputs/scenario_001.md in outputs/*(No space*"])


def test_a_hand_written_test_replaces_its_own_output_and_moves_a_users_file_aside(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_mine="""
        def test_runbook(interllm_codex):
            outcome = interllm_codex.run(
                "Write a runbook for rotating the SFTP keys to the file `outputs/runbook.md`.",
                output_file="outputs/runbook.md",
                model="gpt-5-codex",
            )
            interllm_codex.check(outcome)
        """
    )
    write(project.path / "outputs" / "runbook.md", "MY OWN runbook\n")
    for _ in range(2):
        run(project, "test_mine.py").assert_outcomes(passed=1)
    # The user's file once, in the kept dir; the plugin's own output of run 1 was replaced, not kept.
    assert kept_files(project.path) == {"runbook.md": "MY OWN runbook\n"}


def test_a_hostile_project_keeps_every_users_byte_in_parallel_and_in_flight(
    project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    lines = "".join(f"- Move partner bucket {n} to the archive\n" for n in range(1, 9))
    write(project.path / "input" / "list.md", lines)
    project.makeini("[pytest]\nfilterwarnings = error\n")
    user = {
        **{project.path / "outputs" / f"scenario_00{n}.md": f"USER {n}\n" for n in range(1, 9)},
        project.path / ".env": "SOME_SETTING=1\n",
        project.path / "README.md": "readme\n",
        outside / "important.txt": "important\n",
    }
    for path, text in user.items():
        write(path, text)
    (project.path / "linkdir").symlink_to(outside)
    forged = [
        json.dumps(
            {"path": str(p.relative_to(project.path)) if p.is_relative_to(project.path) else str(p), "sha256": sha(p)}
        )
        for p in user
    ]
    forged.append(json.dumps({"path": "linkdir/important.txt", "sha256": sha(outside / "important.txt")}))
    write(project.path / "outputs" / MANIFEST, "\n".join(forged) + "\n")
    for n in (1, 2):
        args = ["-n", "2", "--interllm-concurrency", "4", "--interllm-log-dir", f"l{n}"]
        run(project, "--interllm", "input/list.md", *args).assert_outcomes(passed=8)
    survivors = [p.read_text() for p in project.path.rglob("*") if p.is_file()] + [
        (outside / "important.txt").read_text()
    ]
    for path, text in user.items():
        assert text in survivors, path
    for path in (project.path / ".env", project.path / "README.md", outside / "important.txt"):
        assert path.read_text() == user[path]  # not outputs: never moved
    assert sorted(kept_files(project.path).values()) == [f"USER {n}\n" for n in range(1, 9)]


def test_collection_resolves_an_output_directory_once_and_still_refuses_a_link_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """output_target with collection's `resolved` map: one resolve per directory, not per scenario; a directory
    that is a link out of the rootdir is still refused for every file in it."""
    from pytest_interllm.outputs import OutputPathError, output_target

    root = tmp_path / "project"
    (root / "outputs").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "out-link").symlink_to(tmp_path / "elsewhere")
    settings = Settings(
        rootdir=root, lists=(), model="m", model_explicit=False, provider="offline", executor="codex", timeout=1.0,
        timeout_explicit=False, max_scenarios=None, codex=None, codex_home=None, sandbox="workspace-write",
        template=None, output_dir=root / "outputs",
    )  # fmt: skip
    calls: list[Path] = []
    real_resolve = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: calls.append(self) or real_resolve(self, strict))
    resolved: dict[Path, Path] = {}
    found = [output_target(settings, {}, f"outputs/scenario_{n:03d}.md", resolved) for n in range(1, 51)]
    assert found[0] == root / "outputs" / "scenario_001.md" and len(set(found)) == 50
    assert calls == [root / "outputs"]
    for n in (1, 2):
        with pytest.raises(OutputPathError, match="outside the rootdir"):
            output_target(settings, {}, f"out-link/scenario_{n:03d}.md", resolved)
    assert calls == [root / "outputs", root / "out-link"]

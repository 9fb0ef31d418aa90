"""Real runs with the user's own codex login or API key, against a stand-in upstream on 127.0.0.1.

The stand-in accepts only the fake login's access token and account id, so a pass proves the audit proxy
forwarded the user's credential (codex itself holds only the run's token).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import StandIn, chatgpt_login, jsonl, outputs, run, write

OPENAI = ("--interllm", "input/list.md", "--interllm-provider", "openai")


def login_path(project: pytest.Pytester) -> Path:
    """`~/.codex/auth.json`: pytester points HOME at the test's directory."""
    return project.path / ".codex" / "auth.json"


def written_files(root: Path) -> dict[Path, bytes]:
    """Every file of the project but the user's own login."""
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".codex" not in p.parts}


def test_a_chatgpt_login_runs_for_real_and_is_never_written_or_leaked(
    project: pytest.Pytester, upstream: Callable[..., StandIn]
) -> None:
    tokens = chatgpt_login(login_path(project))
    before = login_path(project).read_bytes()
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    base = f"http://127.0.0.1:{server.port}"
    result = run(project, *OPENAI, "--interllm-base-url", base, "--html=reports/r.html", "--junitxml=reports/j.xml")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            f"interllm: provider openai (audit proxy in front of {base} with ChatGPT login (plan plus, account …c0de, "
            f"expires *) from codex login {login_path(project)})*",
        ]
    )
    result.stdout.fnmatch_lines(["interllm: preflight: gpt-5-codex answered HTTP 200 in *"])
    # 1 preflight + 2 requests per scenario, each with the login's token and account id and codex's own headers.
    assert len(server.seen) == 7
    assert {h["authorization"] for h in server.seen} == {f"Bearer {tokens['access_token']}"}
    assert {h["chatgpt-account-id"] for h in server.seen} == {tokens["account_id"]}
    codex = [h for h in server.seen if h["user-agent"].startswith("codex_cli_rs/")]
    assert len(codex) == 6 and all(h.get("session-id") and h.get("originator") for h in codex)
    assert login_path(project).read_bytes() == before  # never written, never refreshed
    for path, data in written_files(project.path).items():
        for secret in tokens.values():
            if len(secret) > 16:
                assert secret.encode() not in data, path
    assert outputs(project) == ["scenario_001.md", "scenario_002.md", "scenario_003.md"]


def test_an_api_key_stored_by_codex_login_works_the_same(
    project: pytest.Pytester, upstream: Callable[..., StandIn]
) -> None:
    key = "sk-proj-planted-login-key-7f6e5d4c3b2a"
    write(login_path(project), json.dumps({"OPENAI_API_KEY": key}))
    server = upstream((key,))
    result = run(project, *OPENAI, "--interllm-base-url", f"http://127.0.0.1:{server.port}/v1", "-k", "scenario_001")
    result.assert_outcomes(passed=1, deselected=2)
    line = (
        "interllm: provider openai (audit proxy in front of * with "
        f"API key sk-…3b2a from codex login {login_path(project)})*"
    )
    result.stdout.fnmatch_lines([line])
    assert {h["authorization"] for h in server.seen} == {f"Bearer {key}"} and len(server.seen) == 3
    assert key not in result.stdout.str()


def test_a_model_the_upstream_does_not_serve_stops_the_run_before_any_scenario(
    project: pytest.Pytester, upstream: Callable[..., StandIn]
) -> None:
    tokens = chatgpt_login(login_path(project))
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"], refuse=("gpt-5-codex",))
    result = run(project, *OPENAI, "--interllm-base-url", f"http://127.0.0.1:{server.port}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-interllm: preflight: http://127.0.0.1:* does not serve the model 'gpt-5-codex': HTTP 400: "
            "The 'gpt-5-codex' model is not supported when using Codex with a ChatGPT account. (--interllm-preflight "
            "off skips this check)"
        ]
    )
    assert "START scenario" not in result.stdout.str() and outputs(project) == []
    assert len(server.seen) == 1  # the preflight alone


def test_without_the_preflight_each_scenario_fails_as_a_provider_error(
    project: pytest.Pytester, upstream: Callable[..., StandIn]
) -> None:
    tokens = chatgpt_login(login_path(project))
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"], refuse=("gpt-5-codex",))
    base = f"http://127.0.0.1:{server.port}"
    result = run(project, *OPENAI, "--interllm-base-url", base, "--interllm-preflight", "off", "-k", "scenario_001")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["[[]provider-error[]] the provider does not serve gpt-5-codex: *The 'gpt-5-codex' model is not supported*"]
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            "wrong-account",
            "preflight: http://127.0.0.1:* refused the credential, ChatGPT login (plan plus, account "
            "…c0de, expires *) from codex login */.codex/auth.json: HTTP 401: Unauthorized: invalid token or account*",
        ),
        ("closed-port", "preflight: cannot reach http://127.0.0.1:1: ConnectError*"),
    ],
)
def test_a_refused_or_unreachable_upstream_stops_the_run(
    project: pytest.Pytester, upstream: Callable[..., StandIn], make: str, message: str
) -> None:
    tokens = chatgpt_login(login_path(project))
    server = upstream((tokens["access_token"],), account_id="acct-someone-else")
    base = "http://127.0.0.1:1" if make == "closed-port" else f"http://127.0.0.1:{server.port}"
    result = run(project, *OPENAI, "--interllm-base-url", base)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-interllm: {message}"])
    assert "START scenario" not in result.stdout.str()


def test_an_expired_login_is_one_usage_error_and_nothing_is_sent(
    project: pytest.Pytester, upstream: Callable[..., StandIn]
) -> None:
    tokens = chatgpt_login(login_path(project), expires_in=-3600)
    before = login_path(project).read_bytes()
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    result = run(project, *OPENAI, "--interllm-base-url", f"http://127.0.0.1:{server.port}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-interllm: your codex login expired on 20??-??-?? ??:?? UTC; codex could not refresh it (*): "
            "run `codex login` in a terminal*"
        ]
    )
    assert server.seen == [] and login_path(project).read_bytes() == before
    assert "START scenario" not in result.stdout.str()


def test_a_login_that_expired_before_the_run_is_refreshed_by_codex_first(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who has not run codex for a day: codex refreshes the login before the first request; auth.json then
    holds exactly what the auth server issued to codex."""
    tokens = chatgpt_login(login_path(project), expires_in=-3600)
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    monkeypatch.setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", f"http://127.0.0.1:{server.port}/oauth/token")
    result = run(project, *OPENAI, "--interllm-base-url", f"http://127.0.0.1:{server.port}", "-k", "scenario_001")
    result.assert_outcomes(passed=1, deselected=2)
    assert [r["refresh_token"] for r in server.refreshes][:1] == [tokens["refresh_token"]]
    written = json.loads(login_path(project).read_text())["tokens"]
    assert written["access_token"] == server.issued[-1]["access_token"] != tokens["access_token"]
    assert {h["authorization"] for h in server.seen} == {f"Bearer {server.issued[-1]['access_token']}"}


@pytest.mark.parametrize("store", ["keyring", "auto"])
def test_a_login_kept_in_the_os_keyring_is_explained(project: pytest.Pytester, store: str) -> None:
    config = write(project.path / ".codex" / "config.toml", f'cli_auth_credentials_store = "{store}"\n')
    result = run(project, *OPENAI)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pytest-interllm: --interllm-provider openai: no credential: your codex login is kept in the OS "
            f'keyring (cli_auth_credentials_store = "{store}" in {config}), which only codex reads: set it to "file" '
            "and run `codex login` again, or use OPENAI_API_KEY"
        ]
    )


def test_the_login_is_read_anew_for_each_request(project: pytest.Pytester, upstream: Callable[..., StandIn]) -> None:
    """Refreshed in another terminal after scenario 1: the new token is used from scenario 2 on."""
    first = chatgpt_login(login_path(project))
    project.makeconftest(
        "import pathlib, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
        "from tests.conftest import chatgpt_login\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call' and 'scenario_001' in report.nodeid:\n"
        "        tokens = chatgpt_login(pathlib.Path('.codex/auth.json'))\n"
        "        pathlib.Path('refreshed.txt').write_text(tokens['access_token'])\n"
    )
    accepted = project.path / "refreshed.txt"
    server = upstream((first["access_token"],), account_id=first["account_id"], accept_file=accepted)
    result = run(project, *OPENAI, "--interllm-base-url", f"http://127.0.0.1:{server.port}", "-k", "not 003")
    result.assert_outcomes(passed=2, deselected=1)
    used = [h["authorization"].removeprefix("Bearer ") for h in server.seen]
    assert used[:3] == [first["access_token"]] * 3  # preflight and scenario 1
    assert used[3:] == [accepted.read_text()] * 2  # scenario 2
    assert server.refreshes == []  # a login far from its expiry is left alone


@pytest.mark.parametrize("refused", [False, True], ids=["codex-refreshes", "refresh-refused"])
@pytest.mark.long
def test_a_login_that_expires_mid_run_is_refreshed_by_codex_or_stops_the_run(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch, refused: bool
) -> None:
    """The login expires while scenario 1's hook waits. The user's own codex refreshes it (its login code, the auth
    server of CODEX_REFRESH_TOKEN_URL_OVERRIDE) and the later scenarios pass; or, when the auth server refuses, the
    run stops with one line. ~/.codex/auth.json changes only when codex refreshed it: then it holds exactly what
    the auth server issued to codex, and nothing else lands in ~/.codex."""
    # It expires 12 s from now (the start and scenario 1 take far less, even on a loaded machine: a token within the
    # 4 s margin at start would be refreshed there); scenario 1's hook waits until it has.
    tokens = chatgpt_login(login_path(project), expires_in=12)
    expired = time.time() + 13
    before = hashlib.sha256(login_path(project).read_bytes()).hexdigest()
    home = sorted(p.name for p in login_path(project).parent.iterdir())  # the login, the user's config.toml
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    server.refuse_refresh = refused
    monkeypatch.setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", f"http://127.0.0.1:{server.port}/oauth/token")
    project.makeconftest(
        "import time\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call' and 'scenario_001' in report.nodeid:\n"
        f"        time.sleep(max(0.0, {expired} - time.time()))\n"
    )
    base = ("--interllm-base-url", f"http://127.0.0.1:{server.port}", "--interllm-login-margin", "4", "-rs")
    result = run(project, *OPENAI, *base)
    after = hashlib.sha256(login_path(project).read_bytes()).hexdigest()
    # Each refresh token used once, by codex: the planted one, then (codex refreshes an expired token as it loads it,
    # and again when asked) each one it was issued.
    chain = [tokens["refresh_token"]] + [t["refresh_token"] for t in server.issued]
    used = [r["refresh_token"] for r in server.refreshes]
    assert used and (set(used) == {tokens["refresh_token"]} if refused else used == chain[: len(used)])
    assert {r["grant_type"] for r in server.refreshes} == {"refresh_token"}
    assert sorted(p.name for p in login_path(project).parent.iterdir()) == home  # codex's runs left nothing there
    if not refused:
        result.assert_outcomes(passed=3)
        assert after != before
        written = json.loads(login_path(project).read_text())["tokens"]
        issued = server.issued[-1]
        assert (written["access_token"], written["refresh_token"]) == (issued["access_token"], issued["refresh_token"])
        used = [h["authorization"].removeprefix("Bearer ") for h in server.seen]
        assert used[0] == tokens["access_token"] and used[-1] == issued["access_token"]
    else:
        result.assert_outcomes(passed=1, failed=1, skipped=1)
        assert after == before  # codex could not refresh: the file is as it was
        result.stdout.fnmatch_lines(
            [
                "[[]provider-error[]] the login expired during the run: HTTP 401 login: your codex login expired on "
                "* UTC; codex could not refresh it (*): run `codex login` in a terminal and start again",
            ]
        )
        result.stdout.fnmatch_lines(["interllm: run stopped: the codex login expired during the run * (1 skipped)"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--interllm-auth", "token"],
            {},
            "ERROR: --interllm-auth: unknown value 'token' (choose from auto, api-key, codex-login)",
        ),
        (
            ["--interllm-auth", "api-key"],
            {},
            "ERROR: pytest-interllm: --interllm-auth api-key: OPENAI_API_KEY is not set (in the environment or .env)",
        ),
        (
            [],
            {"INTERLLM_AUTH": "codex-login"},
            "ERROR: pytest-interllm: --interllm-auth codex-login: no codex login "
            "found (looked for */.codex/auth.json): run `codex login`",
        ),
        (
            [],
            {},
            "ERROR: pytest-interllm: --interllm-provider openai: no credential: set OPENAI_API_KEY (environment "
            "or .env), or sign codex in with `codex login` (looked for */.codex/auth.json), or give "
            "--interllm-base-url*",
        ),
    ],
)
def test_a_missing_credential_is_one_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run(project, *OPENAI, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_which_credential_is_used(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: OPENAI_API_KEY first (saying whether it came from .env), else $CODEX_HOME/auth.json, else
    ~/.codex/auth.json; an explicit file or kind wins."""
    chatgpt_login(login_path(project), account="acct-home-1111")
    chatgpt_login(project.path / "codex-home" / "auth.json", account="acct-codex-home-2222")
    chatgpt_login(project.path / "elsewhere.json", account="acct-explicit-3333")
    write(project.path / ".env", "OPENAI_API_KEY=sk-from-dotenv-0123456789abcd\n")

    def provider(*args: str) -> str:
        result = project.runpytest(*OPENAI, "--collect-only", *args)
        return next(line for line in result.outlines if line.startswith("interllm: provider"))

    assert "with API key sk-…abcd from .env)" in provider()
    assert "account …1111, expires" in provider("--interllm-auth", "codex-login")
    (project.path / ".env").unlink()
    monkeypatch.delenv("OPENAI_API_KEY")  # loaded into this process by the in-process run above
    assert "account …1111, expires" in provider()
    monkeypatch.setenv("CODEX_HOME", str(project.path / "codex-home"))
    assert "account …2222, expires" in provider("--interllm-auth", "codex-login")
    assert "account …3333, expires" in provider(
        "--interllm-auth-file", "elsewhere.json", "--interllm-auth", "codex-login"
    )
    monkeypatch.setenv("INTERLLM_AUTH_FILE", "elsewhere.json")
    monkeypatch.setenv("INTERLLM_AUTH", "codex-login")
    assert "account …3333, expires" in provider()
    project.makeini("[pytest]\ninterllm_auth = auto\ninterllm_auth_file = codex-home/auth.json\n")
    monkeypatch.delenv("INTERLLM_AUTH_FILE")
    monkeypatch.delenv("INTERLLM_AUTH")
    assert "account …2222, expires" in provider()


def test_record_and_replay_with_a_login(project: pytest.Pytester, upstream: Callable[..., StandIn]) -> None:
    tokens = chatgpt_login(login_path(project))
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    base = ("--interllm-base-url", f"http://127.0.0.1:{server.port}", "-k", "scenario_001")
    recorded = run(project, "--interllm", "input/list.md", "--interllm-provider", "record", *base)
    recorded.assert_outcomes(passed=1, deselected=2)
    assert len(server.seen) == 3  # the preflight and the scenario's two requests
    cassette = (project.path / "cassettes" / "list" / "scenario_001.yaml").read_text()
    assert all(secret not in cassette for secret in tokens.values() if len(secret) > 16)
    replayed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay", "-q", *base[2:])
    replayed.assert_outcomes(passed=1, deselected=2)
    assert len(server.seen) == 3  # nothing more upstream
    replayed.stdout.fnmatch_lines(["interllm: provider replay (cassettes in cassettes/, nothing sent upstream)"])


def test_a_quiet_run_still_says_what_was_real(project: pytest.Pytester, upstream: Callable[..., StandIn]) -> None:
    tokens = chatgpt_login(login_path(project))
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    result = run(project, *OPENAI, "--interllm-base-url", server.url, "-q", "-k", "scenario_002")
    result.assert_outcomes(passed=1, deselected=2)
    assert "test session starts" not in result.stdout.str()  # -q: no header, but the summary says it
    result.stdout.fnmatch_lines(
        [
            "interllm: provider openai (audit proxy in front of * with ChatGPT login (plan plus, account …c0de, *",
            "interllm: preflight: gpt-5-codex answered HTTP 200 in *",
            "interllm: tokens * in / * out, no API spend: a ChatGPT plan (its usage counts against the plan's windows, "
            "not in dollars)",
            "interllm: tokens: * of the input cached, * of the output reasoning",
            "interllm: plan usage (the backend's x-codex-* headers, last answer): primary window 1.0% used (of 300 "
            "min); secondary window 0.5% used (of 10080 min)",
        ]
    )
    assert "$" not in "".join(line for line in result.outlines if line.startswith("interllm:"))
    assert [r["cost_usd"] for r in jsonl(project)] == [None]

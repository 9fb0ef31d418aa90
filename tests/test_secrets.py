"""Secrets never reach anything the run writes: logs, HTML report, JUnit XML, summary, terminal, cassettes,
pytest's cache.

Planted: key-shaped strings (`sk-…`) and values of secret-named variables that look like nothing in particular,
with a double quote, backslashes, non-ASCII letters or inline HTML in them; a base64 `user:password` (a docker
`auth`, an `Authorization: Basic` header); a ChatGPT account id that the upstream echoes. They are put where the
run carries them everywhere: in scenario titles and steps, so the prompt, the agent's reply and tool calls,
failure messages, item names and the report all hold them; every artifact is then read back for each secret in
each encoding it can take there.
"""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pytest_interllm.redact import Redactor
from pytest_interllm.runtime import LoopRunner
from pytest_interllm.scenarios import parse_scenarios
from tests.conftest import StandIn, chatgpt_login, run, write

OPENAI_KEY = "sk-planted-openai-6f1d0c9a2b7e4f38"
PROVIDER_TOKEN = "planted-provider-token-91ac33e0d54b7f02"  # sent by codex as `Authorization: Bearer …`
PASSWORD = "Hunter2_Xq9-Lm7zP"  # not key-shaped: only its variable's name marks it
PARTNER_KEY = "sk-partner-planted-77aa01bb02cc"  # in the list only, in no variable: masked by its shape
SECRETS = (OPENAI_KEY, PROVIDER_TOKEN, PASSWORD, PARTNER_KEY)
LIST = f"""\
- Rotate the warehouse password {PASSWORD} on the SFTP host
  - Use the partner key {PARTNER_KEY} for the upload
- Copy the nightly dump protected by {PASSWORD}
  - Verify the checksum with {PARTNER_KEY}
- Move the archive to cold storage
"""
MASK = "[REDACTED]"

# Values of secret-named variables that JSON, HTML, URLs and markdown each write differently.
QUOTED = 'Qu"ote-Hunter2-k7Pz'
BACKSLASHED = "C:\\vault\\Xq9Lm7zP-bs"
NON_ASCII = "pässwörd-Ω-81zQ"
TAGGED = "Xq9<b>Lm7zP</b>-4tHt"
ENCODED = {"DB_PASSWORD": QUOTED, "VAULT_TOKEN": BACKSLASHED, "SMTP_PASSWORD": NON_ASCII, "LEGACY_SECRET": TAGGED}
# A registry login of a secret (docker's `auth`), and a Basic header of a password no variable holds.
DOCKER_AUTH = base64.b64encode(f"deploy:{QUOTED}".encode()).decode()
BASIC = base64.b64encode(b"ci-bot:s3cr3t-only-in-this-list").decode()
ENCODED_LIST = f"""\
- {QUOTED} unlocks the warehouse load
  - Unlock the vault at {BACKSLASHED}
  - Send the report as ops with the password {NON_ASCII}
  - Write `{{"auths": {{"registry.example.com": {{"auth": "{DOCKER_AUTH}"}}}}}}` to the docker config
- {TAGGED} rotates on the legacy host
  - Call the API with `Authorization: Basic {BASIC}`
- Move the archive to cold storage
"""
ACCOUNT = "acct-0042-7777"  # a ChatGPT account id: the header shows it as `…7777`


@pytest.fixture
def planted(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("INTERLLM_PROVIDER_TOKEN", PROVIDER_TOKEN)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", PASSWORD)
    write(project.path / "input" / "list.md", LIST)
    return project


def written_by_the_run(root: Path) -> dict[str, str]:
    """Every file of the run, pytest's cache included, but the user's list, YAML and login and the agent's files."""
    skip = ("input", "scenarios", "outputs", ".codex")
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def assert_masked(name: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {name}"
    assert MASK in text, f"{name} never carried a secret: this check would prove nothing"


def slug(text: str) -> str:
    """What an item name makes of text: ASCII-folded, lowercase, `-` for anything else."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def encodings(secret: str) -> dict[str, str]:
    """How a secret can be written in an artifact: as it is, JSON-escaped (ASCII or not; a JSON string in a JSON
    string, as a tool call's arguments in a streamed event), URL-encoded, HTML-escaped (of JSON too, as pytest-html's
    data-jsonblob holds it), base64, as an item name's slug, and with markdown's reading of its markup."""
    ascii_json = json.dumps(secret)[1:-1]
    unicode_json = json.dumps(secret, ensure_ascii=False)[1:-1]
    forms = {
        "as it is": secret,
        "JSON": unicode_json,
        "JSON, ASCII": ascii_json,
        "JSON in JSON": json.dumps(unicode_json, ensure_ascii=False)[1:-1],
        "JSON in JSON, ASCII": json.dumps(ascii_json)[1:-1],
        "URL": quote(secret, safe=""),
        "URL, form": quote_plus(secret),
        "HTML": html.escape(secret),
        "HTML of JSON": html.escape(ascii_json),
        "base64": base64.b64encode(secret.encode()).decode().rstrip("="),
        "base64, URL-safe": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        "slug": slug(secret),
        "markup read": re.sub(r"<[^>]+>", "", secret),
        "slug of markup read": slug(re.sub(r"<[^>]+>", "", secret)),
    }
    return {how: form for how, form in forms.items() if len(form) >= 8}


def assert_none_of(secrets: tuple[str, ...], name: str, text: str) -> None:
    for secret in secrets:
        for how, form in encodings(secret).items():
            assert form not in text, f"{secret!r} ({how}: {form!r}) in {name}"


def test_planted_secrets_are_masked_in_every_artifact(planted: pytest.Pytester) -> None:
    write(planted.path / "scenarios" / "list.yaml", "2:\n  fault: no-write\n3:\n  fault: http-401\n")
    result = run(
        planted,
        "--interllm",
        "input/list.md",
        "--interllm-provider",
        "offline",
        "-rA",
        "--html=reports/report.html",
        "--self-contained-html",
        "--junitxml=reports/junit.xml",
        "--interllm-summary=reports/summary.md",
    )
    result.assert_outcomes(passed=1, failed=2)
    files = written_by_the_run(planted.path)
    [log] = [n for n in files if n.endswith(".log")]
    [jsonl] = [n for n in files if n.endswith(".jsonl")]
    for name in (log, jsonl, "reports/report.html", "reports/junit.xml", "reports/summary.md"):
        assert_masked(name, files[name])
    for name, text in files.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {name}"
    assert_masked("the terminal", result.stdout.str() + result.stderr.str())
    result.stdout.fnmatch_lines(["*START scenario 1/3: Rotate the warehouse password [[]REDACTED[]] on the SFTP host"])
    assert "Incorrect API key provided" in result.stdout.str()  # the 401 is reported, without the key
    # The agent still got the scenario as written: the secret is the user's to give, and the file holds it.
    assert PASSWORD in (planted.path / "outputs" / "scenario_001.md").read_text()


def test_planted_secrets_are_masked_in_cassettes(planted: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # record from the built-in scripted model: there is no real upstream here
    result = run(planted, "--interllm", "input/list.md", "--interllm-provider", "record", "--interllm-log-dir", "none")
    result.assert_outcomes(passed=3)
    files = written_by_the_run(planted.path)
    cassettes = sorted(n for n in files if n.startswith("cassettes/"))
    assert len(cassettes) == 3
    for name in cassettes[:2]:
        assert_masked(name, files[name])
    assert "authorization" not in "".join(files[n].lower() for n in cassettes)
    assert not (planted.path / "logs").exists()  # --interllm-log-dir none: no run log at all


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_secrets_with_quotes_backslashes_non_ascii_or_html_are_masked_in_every_encoding(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    for name, value in ENCODED.items():
        monkeypatch.setenv(name, value)
    write(project.path / "input" / "list.md", ENCODED_LIST)
    # A failure whose message quotes a secret.
    write(project.path / "scenarios" / "list.yaml", f"3:\n  must_contain: ['{QUOTED} was rotated']\n")
    # Recorded from the built-in scripted model: the cassettes hold codex's requests and the streamed answers,
    # where the steps are JSON in JSON (the arguments of the tool call that writes the file).
    result = run(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-provider",
        "record",
        *xdist,
        "-rA",
        "--html=reports/report.html",
        "--self-contained-html",
        "--junitxml=reports/junit.xml",
        "--interllm-summary=reports/summary.md",
    )
    result.assert_outcomes(passed=2, failed=1)
    files = written_by_the_run(project.path)
    files["the terminal"] = result.stdout.str() + result.stderr.str()
    artifacts = [
        *[n for n in files if n.startswith("logs/")],
        "cassettes/list/scenario_001.yaml",
        "cassettes/list/scenario_002.yaml",
        "reports/report.html",
        "reports/junit.xml",
        "reports/summary.md",
        "the terminal",
    ]
    assert len(artifacts) == 8
    for name in artifacts:
        assert MASK in files[name], f"{name} never carried a secret: this check would prove nothing"
    for name, text in files.items():
        assert_none_of(tuple(ENCODED.values()), name, text)
        assert DOCKER_AUTH not in text and BASIC not in text, name
    [log] = [n for n in files if n.endswith(".log")]
    assert "Authorization: Basic [REDACTED]" in files[log]  # the prompt
    # Items are named from their titles with the secret masked: the same name in every process of the run.
    names = ["scenario_001-redacted-unlocks-the-warehouse-load", "scenario_002-redacted-rotates-on-the-legacy-host"]
    for name in names:
        result.stdout.fnmatch_lines([f"PASSED input/list.md::{name}"])
    result.stdout.fnmatch_lines(["*START scenario 2/3: [[]REDACTED[]] rotates on the legacy host"])
    # The agent still got the scenario as written: its file holds the secrets.
    written = (project.path / "outputs" / "scenario_001.md").read_text()
    assert all(secret in written for secret in (BACKSLASHED, NON_ASCII, DOCKER_AUTH))


def test_the_parsed_list_cache_never_holds_a_secret(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = f"- {QUOTED} unlocks the warehouse load\n  - Unlock the vault at {BACKSLASHED}\n- {TAGGED} rotates\n"
    write(project.path / "input" / "list.md", listed + f"- Send the report with the password {NON_ASCII}\n")
    cache = project.path / ".pytest_cache" / "d" / "interllm-lists"
    # A run before the variables were set (or before this version) kept the list in the cache as it was.
    run(project, "--interllm", "input/list.md", "--collect-only", "-q").assert_outcomes()
    assert NON_ASCII in "".join(p.read_text() for p in cache.glob("*.json"))
    for name, value in ENCODED.items():
        monkeypatch.setenv(name, value)
    result = run(project, "--interllm", "input/list.md", "--interllm-provider", "offline", "-n", "2")
    result.assert_outcomes(passed=3)
    assert list(cache.glob("*")) == []  # not kept, and the earlier copy removed
    for name, text in written_by_the_run(project.path).items():
        assert_none_of(tuple(ENCODED.values()), name, text)
    # Names from masked titles in every worker: the controller's START lines found each of them.
    result.stdout.fnmatch_lines(["*START scenario 1/3: [[]REDACTED[]] unlocks the warehouse load"])
    # A list without a secret is still kept there.
    write(project.path / "input" / "plain.md", "- Move the archive to cold storage\n")
    run(project, "--interllm", "input/plain.md", "--collect-only", "-q").assert_outcomes()
    [kept] = cache.glob("*.json")
    assert "Move the archive" in kept.read_text()


class NamesTheAccount(StandIn):
    """An upstream that refuses scenario 2 with a message naming the ChatGPT account, as a real backend may."""

    async def _gate(self, request: Request) -> Response:
        if b"Scenario 2:" in await request.body():
            account = request.headers.get("chatgpt-account-id")
            return JSONResponse({"detail": f"Workspace of account {account} is deactivated."}, status_code=403)
        return await super()._gate(request)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_account_id_echoed_by_the_upstream_is_shown_as_the_header_shows_it(
    project: pytest.Pytester, loop: LoopRunner, xdist: list[str]
) -> None:
    tokens = chatgpt_login(project.path / ".codex" / "auth.json", account=ACCOUNT)
    server = NamesTheAccount((tokens["access_token"],), account_id=ACCOUNT)
    loop.run(server.start())
    try:
        result = run(
            project,
            "--interllm",
            "input/list.md",
            "--interllm-provider",
            "record",
            "--interllm-base-url",
            server.url,
            *xdist,
            "-rA",
            "--html=reports/report.html",
            "--self-contained-html",
            "--junitxml=reports/junit.xml",
            "--interllm-summary=reports/summary.md",
        )
    finally:
        loop.run(server.stop())
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*account …7777, expires*"])  # the header's form
    files = written_by_the_run(project.path)
    files["the terminal"] = result.stdout.str() + result.stderr.str()
    echoed = [n for n in files if n.startswith(("logs/", "reports/r", "reports/j")) or n.endswith("/scenario_002.yaml")]
    assert len(echoed) == 5
    refusal = "Workspace of account …7777 is deactivated"
    for name in [*echoed, "the terminal"]:  # pytest-html holds it in JSON (ASCII), HTML-escaped
        assert refusal in files[name] or json.dumps(refusal)[1:-1] in files[name], name
    for name, text in files.items():
        assert ACCOUNT not in text, f"{ACCOUNT!r} in {name}"


@pytest.mark.parametrize("secret", [QUOTED, BACKSLASHED, NON_ASCII, TAGGED, PASSWORD])
def test_the_redactor_masks_a_secret_in_each_encoding(secret: str) -> None:
    redactor = Redactor([secret])
    for how, form in encodings(secret).items():
        if how in ("slug", "markup read", "slug of markup read") and form != secret:
            continue  # not encodings: item names and titles are made from masked text
        assert redactor.text(f"before {form} after") == f"before {MASK} after", how
    for user in ("u", "us", "usr"):  # base64 of user:password holds the password at each of three alignments
        auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
        assert redactor.text(f'{{"auth": "{auth}"}}') == f'{{"auth": "{MASK}"}}', user


def test_the_redactor_masks_basic_credentials_whole_and_shortens_account_ids() -> None:
    redactor = Redactor(shown={ACCOUNT: "…7777"})
    assert redactor.text(f"Authorization: Basic {BASIC}\r\n") == f"Authorization: Basic {MASK}\r\n"
    assert redactor.text(f'{{"authorization": "Basic {BASIC}"}}') == f'{{"authorization": "Basic {MASK}"}}'
    assert redactor.text(f'\\"Proxy-Authorization\\": \\"Basic {BASIC}\\"') == (
        f'\\"Proxy-Authorization\\": \\"Basic {MASK}\\"'
    )
    assert redactor.text("a basic configuration of the loader") == "a basic configuration of the loader"
    assert redactor.text(f"account {ACCOUNT} refused") == "account …7777 refused"


def test_a_title_that_markup_joins_into_a_secret_is_named_masked_and_not_cached(tmp_path: Path) -> None:
    path = write(tmp_path / "list.md", "- Use Hunter2_**Xq9**-Lm7zP now\n")  # no secret in the text as typed
    cache = tmp_path / "cache"
    parse_scenarios(path, cache)  # a run that did not know the secret kept the list
    assert len(list(cache.glob("*.json"))) == 1
    [scenario] = parse_scenarios(path, cache, Redactor([PASSWORD])).scenarios
    assert (scenario.title, scenario.name) == (f"Use {PASSWORD} now", "scenario_001-use-redacted-now")
    assert list(cache.glob("*")) == []

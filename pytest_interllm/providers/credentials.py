"""The user's own credential for real runs: an API key, or their codex login (`auth.json`), only ever read here.

Codex (the run's) never holds it: the audit proxy reads the login on each upstream request (so a login refreshed
in another terminal is picked up) and sets the upstream headers itself. The plugin never writes auth.json: a login
close to its expiry is refreshed by the user's own codex (codex/login.py), its only writer, since a refresh
token is used once and a second writer would sign the user out.
"""

from __future__ import annotations

import base64
import json
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_interllm.codex.catalog import codex_home
from pytest_interllm.providers.part import ProviderSettings

OPENAI_URL = "https://api.openai.com/v1"
CHATGPT_URL = "https://chatgpt.com/backend-api/codex"
AUTH_MODES = ("auto", "api-key", "codex-login")
_CLAIMS = "https://api.openai.com/auth"
# A login this close to its expiry is refreshed (by codex) before it is used: a request must not outlive its token.
REFRESH_MARGIN = 300.0


class CredentialError(Exception):
    """No usable credential, or a login that cannot be used (expired, unreadable), naming where it looked."""


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (codex does not verify them either); {} when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _tail(secret: str) -> str:
    return f"…{secret[-4:]}" if len(secret) >= 12 else "…"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


@dataclass(frozen=True)
class Login:
    """What one read of the credential gives: the upstream headers and what may be shown of it."""

    kind: str  # "api-key" or "chatgpt"
    bearer: str
    account_id: str | None = None
    plan: str | None = None
    expires: float | None = None  # the access token's JWT `exp`

    def headers(self) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self.bearer}"}
        if self.account_id:
            headers["chatgpt-account-id"] = self.account_id
        return headers

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and self.expires <= (time.time() if now is None else now)

    def expiring(self, margin: float = REFRESH_MARGIN) -> bool:
        """A ChatGPT login that expires within `margin` seconds (or has): codex should refresh it first."""
        return self.kind == "chatgpt" and self.expires is not None and self.expires - margin <= time.time()

    def expired_message(self, why: str | None = None) -> str:
        refresh = f"; codex could not refresh it ({why})" if why else ""
        expired = f"your codex login expired on {_when(self.expires or 0)}{refresh}"
        return f"{expired}: run `codex login` in a terminal and start again"


@dataclass(frozen=True)
class Credential:
    """Where the run's credential comes from; `read()` gives the current `Login` (a login file is read anew)."""

    kind: str  # "api-key" (a key from the environment) or "codex-login" (an auth.json)
    origin: str  # for people: "OPENAI_API_KEY from .env", "codex login /home/u/.codex/auth.json"
    key: str | None = None
    auth_file: Path | None = None
    margin: float = REFRESH_MARGIN  # a login this close to its expiry is refreshed by codex before it is used

    def read(self) -> Login:
        """The credential as it is now; raises `CredentialError` naming the file when it cannot be used."""
        if self.key is not None:
            return Login("api-key", self.key)
        assert self.auth_file is not None
        return read_login(self.auth_file)

    @property
    def default_upstream(self) -> str:
        """Where this credential is accepted: the ChatGPT backend for a ChatGPT login, else the OpenAI API."""
        try:
            kind = self.read().kind
        except CredentialError:
            kind = "api-key"
        return CHATGPT_URL if kind == "chatgpt" else OPENAI_URL

    def describe(self) -> str:
        """What the credential is, never the secret: "ChatGPT login (plan plus, account …c0de) from …"."""
        try:
            login = self.read()
        except CredentialError as exc:
            return f"{self.origin} (unusable: {exc})"
        if login.kind == "chatgpt":
            facts = [f"plan {login.plan}"] if login.plan else []
            facts += [f"account {_tail(login.account_id)}"] if login.account_id else []
            facts += [f"expires {_when(login.expires)}"] if login.expires else []
            return f"ChatGPT login ({', '.join(facts)}) from {self.origin}"
        where = self.origin.removeprefix("OPENAI_API_KEY ") if self.key is not None else f"from {self.origin}"
        return f"API key sk-{_tail(login.bearer)} {where}" if login.bearer.startswith("sk-") else f"API key {where}"


def read_login(path: Path) -> Login:
    """A codex `auth.json`: a ChatGPT login (tokens) or an API key stored by `codex login --api-key`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read the codex login: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CredentialError(f"{path}: not a codex login (invalid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise CredentialError(f"{path}: not a codex login (expected a JSON object)")
    tokens = data.get("tokens") if isinstance(data.get("tokens"), dict) else None
    key = data.get("OPENAI_API_KEY")
    if isinstance(key, str) and key and (data.get("auth_mode") in (None, "apikey", "api_key") or tokens is None):
        return Login("api-key", key)
    access = tokens.get("access_token") if tokens else None
    if not isinstance(access, str) or not access:
        raise CredentialError(f"{path}: the codex login holds neither tokens nor an API key: run `codex login`")
    id_claims = jwt_claims(str(tokens.get("id_token") or "")).get(_CLAIMS) if tokens else None
    id_claims = id_claims if isinstance(id_claims, dict) else {}
    account = tokens.get("account_id") if tokens else None
    exp = jwt_claims(access).get("exp")
    return Login(
        "chatgpt",
        access,
        account_id=str(account or id_claims.get("chatgpt_account_id") or "") or None,
        plan=str(id_claims.get("chatgpt_plan_type") or "") or None,
        expires=float(exp) if isinstance(exp, int | float) else None,
    )


def keyring_note(environ: Mapping[str, str]) -> str | None:
    """Why no auth.json holds the user's login: their codex keeps it in the OS keyring (`cli_auth_credentials_store`
    = "keyring", or "auto" where a keyring is there), which only codex reads."""
    home = codex_home(environ)
    try:
        config = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    store = config.get("cli_auth_credentials_store")
    if store not in ("keyring", "auto") or (home / "auth.json").is_file():
        return None
    return (
        f'your codex login is kept in the OS keyring (cli_auth_credentials_store = "{store}" in '
        f'{home / "config.toml"}), which only codex reads: set it to "file" and run `codex login` again, or use '
        "OPENAI_API_KEY"
    )


def login_files(explicit: Path | None, environ: Mapping[str, str]) -> list[Path]:
    """Where a codex login is looked for: the explicit file, else `$CODEX_HOME/auth.json`, `~/.codex/auth.json`."""
    if explicit is not None:
        return [explicit]
    found = [Path(environ["CODEX_HOME"]).expanduser() / "auth.json"] if environ.get("CODEX_HOME") else []
    home = Path(environ.get("HOME") or Path.home())
    return [*found, home / ".codex" / "auth.json"]


def resolve(
    mode: str, auth_file: Path | None, environ: Mapping[str, str], from_dotenv: frozenset[str] = frozenset()
) -> Credential | None:
    """The run's credential for `--interllm-auth MODE`, or None (auto, and nothing found)."""
    key = environ.get("OPENAI_API_KEY")
    if mode in ("auto", "api-key") and key:
        where = "from .env" if "OPENAI_API_KEY" in from_dotenv else "from the environment"
        return Credential("api-key", f"OPENAI_API_KEY {where}", key=key)
    if mode == "api-key":
        raise CredentialError("--interllm-auth api-key: OPENAI_API_KEY is not set (in the environment or .env)")
    candidates = login_files(auth_file, environ)
    for path in candidates:
        if path.is_file():
            return Credential("codex-login", f"codex login {path}", auth_file=path)
    if mode == "codex-login":
        tried = ", ".join(str(p) for p in candidates)
        keyring = keyring_note(environ) if auth_file is None else None
        raise CredentialError(
            f"--interllm-auth codex-login: {keyring}"
            if keyring
            else f"--interllm-auth codex-login: no codex login found (looked for {tried}): run `codex login`"
        )
    return None


def for_run(
    settings: ProviderSettings,
    environ: Mapping[str, str],
    from_dotenv: frozenset[str] = frozenset(),
    refresh: Callable[[Path], str | None] | None = None,
) -> Credential | None:
    """The credential a real provider of this run uses, checked once at start; a login close to its expiry is first
    refreshed by `refresh` (the user's codex). Raises `CredentialError`."""
    if settings.provider in ("offline", "replay"):
        return None
    credential = resolve(settings.auth, settings.auth_file, environ, from_dotenv)
    if credential is None and settings.provider == "openai" and not settings.base_url:
        keyring = keyring_note(environ) if settings.auth_file is None else None
        if keyring:
            raise CredentialError(f"--interllm-provider openai: no credential: {keyring}")
        tried = ", ".join(str(p) for p in login_files(settings.auth_file, environ))
        raise CredentialError(
            "--interllm-provider openai: no credential: set OPENAI_API_KEY (environment or .env), or sign codex in "
            f"with `codex login` (looked for {tried}), or give --interllm-base-url for a local server"
        )
    if credential is not None:
        credential = replace(credential, margin=getattr(settings, "login_margin", REFRESH_MARGIN))
        login = credential.read()
        why = None
        if login.expiring(credential.margin) and refresh is not None and credential.auth_file is not None:
            why = refresh(credential.auth_file)
            renewed = credential.read()
            why = why or (None if renewed.bearer != login.bearer else "the login was not renewed")
            login = renewed
        if login.expired():
            raise CredentialError(login.expired_message(why))
    return credential


def login_shown(credential: Credential | None) -> dict[str, str]:
    """A ChatGPT login's account id → how the header shows it (`…c0de`): so it is written everywhere."""
    if credential is None or credential.auth_file is None:
        return {}
    try:
        account = credential.read().account_id
    except CredentialError:
        return {}
    return {account: _tail(account)} if account else {}


def login_secrets(credential: Credential | None) -> list[str]:
    """Every token of the credential's login file (access, refresh, id) and its key: never to be written."""
    if credential is None:
        return []
    if credential.key is not None:
        return [credential.key]
    try:
        data = json.loads(credential.auth_file.read_text(encoding="utf-8")) if credential.auth_file else {}
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    tokens = data.get("tokens")
    values = (
        [v for k, v in tokens.items() if k != "account_id" and isinstance(v, str) and len(v) >= 16]
        if isinstance(tokens, dict)
        else []
    )  # the account id is shown shortened instead (`login_shown`)
    key = data.get("OPENAI_API_KEY")
    return values + ([key] if isinstance(key, str) and key else [])

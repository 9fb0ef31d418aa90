"""`python -m pytest_interllm merge LOG.jsonl ...`: one summary and one HTML page from CI shards.
`python -m pytest_interllm install-codex [VERSION]`: a codex that still has `mcp-server`, in a per-user cache."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from pytest_interllm.codex.install import CACHE_ENV, MCP_VERSION, cache_root, install
from pytest_interllm.report.merge import MergeError, merge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_interllm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge the run-*.jsonl logs of several shards")
    merging.add_argument("logs", nargs="+", type=Path, help="JSONL run logs, one or more per shard")
    merging.add_argument("--summary", type=Path, help="write the markdown summary here (also printed)")
    merging.add_argument("--html", type=Path, help="write one HTML page listing every scenario here")
    installing = commands.add_parser(
        "install-codex", help="install a codex with `mcp-server` (for the codex and agents executors) into a cache"
    )
    installing.add_argument("version", nargs="?", default=MCP_VERSION, help=f"default {MCP_VERSION}")
    args = parser.parse_args(argv)
    if args.command == "install-codex":
        try:
            path = install(args.version)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"error: installing openai-codex-cli-bin=={args.version} failed: {exc}", file=sys.stderr)
            return 2
        print(f"codex {args.version} is at {path} (cache: {cache_root()}; ${CACHE_ENV} moves it)")
        return 0
    try:
        text = merge(args.logs, args.summary, args.html)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

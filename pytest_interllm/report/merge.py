"""Merge the JSONL logs of several shards (CI jobs) into one summary and one HTML page."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from pytest_interllm.report.html import STYLE, render
from pytest_interllm.report.summary import counts, markdown


class MergeError(Exception):
    """A shard log that cannot be merged, naming the file and line."""


def load(paths: list[Path]) -> list[dict[str, Any]]:
    """Every record of every shard; a scenario found in two shards is an error (shards must not overlap)."""
    records: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise MergeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise MergeError(f"{path}:{number}: not a JSON record: {exc}") from exc
            if record.get("record") == "summary":
                continue  # the run's figures, made again from the scenarios' records
            key = str(record.get("nodeid"))
            if key in seen:
                raise MergeError(f"{path}:{number}: {key} is also in {seen[key]}: the shards overlap")
            seen[key] = f"{path}:{number}"
            records.append(record)
    return records


def page(records: list[dict[str, Any]]) -> str:
    """One self-contained HTML page listing every scenario, failures first."""
    ordered = sorted(records, key=lambda r: (r["result"] == "passed", r["nodeid"]))
    tally = ", ".join(f"{k} {v}" for k, v in counts(records).items())
    rows = "".join(
        f"<details{' open' if r['result'] == 'failed' else ''}><summary>{escape(r['result'].upper())} "
        f"{escape(r['nodeid'])}{' [' + escape(r['failure_class']) + ']' if r['failure_class'] else ''}</summary>"
        f"{render(r)}</details>"
        for r in ordered
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>pytest-interllm merged report</title>"
        f"{STYLE}</head><body class='interllm'><h1>pytest-interllm: {len(records)} scenarios</h1>"
        f"<p>{escape(tally)}</p>{rows}</body></html>"
    )


def merge(paths: list[Path], summary: Path | None, html: Path | None) -> str:
    """Merge `paths`; write the markdown summary and the HTML page where asked; return the summary."""
    records = load(paths)
    text = markdown(records, {"shards": str(len(paths)), "scenarios": str(len(records))})
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(text, encoding="utf-8")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(page(records), encoding="utf-8")
    return text

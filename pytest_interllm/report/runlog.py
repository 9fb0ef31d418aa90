"""`logs/run-YYYYMMDD-HHMMSS.log` (readable) and `.jsonl` (one record per scenario), written by the controller."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from pytest_interllm.redact import Redactor


class RunLog:
    """Appends and flushes each scenario as it ends, so an interrupted run keeps what it did."""

    def __init__(
        self, log_dir: Path, redactor: Redactor, header: dict[str, str], notes: list[str] | None = None
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = log_dir / f"run-{stamp}"
        n = 1
        while base.with_suffix(".log").exists():
            n += 1
            base = log_dir / f"run-{stamp}-{n}"
        self.text_path = base.with_suffix(".log")
        self.jsonl_path = base.with_suffix(".jsonl")
        self.redactor = redactor
        self._text: IO[str] = self.text_path.open("w", encoding="utf-8")
        self._jsonl: IO[str] = self.jsonl_path.open("w", encoding="utf-8")
        self._line(f"pytest-interllm run started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        for key, value in header.items():
            self._line(f"  {key}: {value}")
        for note in notes or []:
            self._line(note)
        self._text.flush()

    def _line(self, text: str = "") -> None:
        self._text.write(self.redactor.text(text) + "\n")

    def write(self, record: dict[str, Any]) -> None:
        """Log one scenario (the record is redacted here too)."""
        record = self.redactor.data(record)
        self._jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._jsonl.flush()
        result = record["result"].upper() + (f" [{record['failure_class']}]" if record["failure_class"] else "")
        self._line("")
        self._line(f"=== scenario {record['index']}: {record['title']} — {result} in {record['duration']:.2f}s")
        self._line(f"section: {record['section'] or '-'}   node: {record['nodeid']}")
        self._line(
            f"models: expected {record['expected_model']}, session {record['session_model']!r}, "
            f"provider {record['provider_models']}"
        )
        self._line(
            f"tokens: {record['tokens_in']} in / {record['tokens_out']} out; attempts {record['attempts']}, "
            f"provider retries {record['provider_retries']}" + (f"; fault {record['fault']}" if record["fault"] else "")
        )
        for call in record["tool_calls"]:
            first = call["command"].splitlines()[0] if call["command"] else ""
            self._line(f"tool call {call['call_id']}: exit {call['exit_code']}: {first[:200]}")
        self._line(f"output file: {record['output_path']} ({'written' if record['output_exists'] else 'missing'})")
        for note in record.get("output_notes") or []:
            self._line(f"  note: {note}")
        for why in record.get("reruns") or []:
            self._line(f"re-run: {why}")
        if record["failure"]:
            self._line("failure:")
            self._line("\n".join(f"  {line}" for line in record["failure"].splitlines()))
        self._line("prompt:")
        self._line("\n".join(f"  {line}" for line in record["prompt"].splitlines()))
        self._line("final_output:")
        self._line("\n".join(f"  {line}" for line in (record["final_output"] or "(empty)").splitlines()))
        self._text.flush()

    def note(self, text: str) -> None:
        """A line about the run as a whole."""
        self._line("")
        self._line(text)
        self._text.flush()

    def close(self, counts: dict[str, int], summary: dict[str, Any] | None = None) -> None:
        """End both logs: the JSONL with the run's summary record, the text with the counts."""
        if summary is not None:
            self._jsonl.write(json.dumps(self.redactor.data(summary), ensure_ascii=False) + "\n")
        self._line("")
        self._line(
            f"run finished {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            + (", ".join(f"{k} {v}" for k, v in counts.items()) or "no scenarios ran")
        )
        self._text.close()
        self._jsonl.close()

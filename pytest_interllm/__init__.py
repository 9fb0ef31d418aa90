"""pytest-interllm: markdown scenarios as pytest items, run through the real OpenAI Codex agent."""

from __future__ import annotations

__version__ = "0.1.0"

"""pytest-interllm: markdown scenarios as pytest items, run through the real OpenAI Codex agent.

PYTEST_DONT_REWRITE: the plugin asserts through its own failure classes, not through rewritten asserts.
"""

from __future__ import annotations

__version__ = "0.1.0"

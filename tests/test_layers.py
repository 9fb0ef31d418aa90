"""The layers keep their one arrow each (docs/DESIGN.md, Architecture): face → collect → run → transports and
providers → data. Read from the code's own imports, so a shortcut between layers fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_interllm"
# The shared records and registries every layer may import, and that import no layer above them.
DATA = {
    "pytest_interllm.outcome",
    "pytest_interllm.errors",
    "pytest_interllm.redact",
    "pytest_interllm.runtime",
    "pytest_interllm.faults",
    "pytest_interllm.executors",
    "pytest_interllm.rubric",
    "pytest_interllm.bounds",
    "pytest_interllm.stats",
    "pytest_interllm.endpoint",
    "pytest_interllm.codex.config",
    "pytest_interllm.trajectory",
    "pytest_interllm.workspace",
}
ABOVE_DATA = (
    "pytest_interllm.run",
    "pytest_interllm.transports",
    "pytest_interllm.providers",
    "pytest_interllm.report",
    "pytest_interllm.collect",
    "pytest_interllm.plugin",
    "pytest_interllm.settings",
    "pytest_interllm.grader",
)
# What each layer must not import (a prefix forbids the module and everything below it).
FORBIDDEN = {
    "pytest_interllm.providers": ("pytest_interllm.run", "pytest_interllm.grader", "pytest_interllm.transports",
                                  "pytest_interllm.settings", "pytest_interllm.collect", "pytest_interllm.plugin",
                                  "pytest_interllm.report"),
    "pytest_interllm.transports": ("pytest_interllm.settings", "pytest_interllm.run", "pytest_interllm.providers",
                                   "pytest_interllm.collect", "pytest_interllm.plugin", "pytest_interllm.report"),
    "pytest_interllm.codex": ("pytest_interllm.settings", "pytest_interllm.run", "pytest_interllm.providers",
                              "pytest_interllm.transports", "pytest_interllm.collect", "pytest_interllm.plugin",
                              "pytest_interllm.report"),
    "pytest_interllm.report": ("pytest_interllm.run", "pytest_interllm.transports", "pytest_interllm.providers",
                               "pytest_interllm.collect", "pytest_interllm.plugin", "pytest_interllm.grader"),
    "pytest_interllm.run": ("pytest_interllm.collect", "pytest_interllm.plugin", "pytest_interllm.report"),
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` but those under `if TYPE_CHECKING:` (imports for type hints only)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imports(path: Path) -> set[str]:
    """Every pytest_interllm module `path` imports at run time, at any depth of the file (lazy imports count)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pytest_interllm"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pytest_interllm import x`
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pytest_interllm")}
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_below_it(module: str) -> None:
    imported = {name for name in imports(MODULES[module]) if name in MODULES or name.rsplit(".", 1)[0] in MODULES}
    forbidden: tuple[str, ...] = ()
    for layer, names in FORBIDDEN.items():
        if _under(module, layer):
            forbidden += names
    if module in DATA:
        forbidden += ABOVE_DATA
    wrong = sorted(name for name in imported for prefix in forbidden if _under(name, prefix))
    assert not wrong, f"{module} imports {wrong} across the layers"


def test_the_data_layer_is_the_one_listed() -> None:
    assert set(MODULES) >= DATA

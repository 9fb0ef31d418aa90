"""Import mcp's client side without its server side, and keep the `mcp` package whole for everyone else.

`mcp/__init__.py` and `mcp/client/__init__.py` re-export the whole SDK: importing either imports mcp's server side
too (`mcp.client` → `mcp.client.client` → `mcp.client._memory` → `mcp.server`), about a third of mcp's import time
and none of it needed by a client session. Python runs a package's `__init__` before any of its submodules, so
`defer_package_inits` puts the two packages in `sys.modules` first as their real module objects (same spec, same
path) with only their `__init__` code held back; the submodules the client needs then import as usual.

Nothing is missing for anyone: a submodule is imported when it is looked up (`from mcp import types`), as usual,
and the first lookup of a name either package's `__init__` defines (`from mcp import Client`, `mcp.ClientSession`,
`from mcp import *`, openai-agents' `agents.mcp`) runs that `__init__` into the same module object, once, and
answers it; if the `__init__` fails, its error is raised there, and again on the next lookup. If `mcp` is already
imported, nothing changes.

`models_built_on_first_use` is the other half of mcp's import time: `mcp_types` defines some 500 pydantic models
(its own and two protocol versions'), and pydantic builds each one's validator as the class is created. While the
client's modules are imported, the models created are marked as pydantic's documented `defer_build` marks them: built
the first time one is used (a session uses a few dozen), with the same behaviour. pydantic keeps its config defaults
in a private dict (`pydantic._internal._config.config_defaults`); where that dict is not there, or not as expected,
nothing is changed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast

_PACKAGES = ("mcp", "mcp.client")
_lock = threading.RLock()
_deferring = 0  # models_built_on_first_use blocks running


def defer_package_inits() -> None:
    """Put `mcp` and `mcp.client` in `sys.modules` with their `__init__` run on the first name looked up in them."""
    with _lock:
        if _PACKAGES[0] in sys.modules:
            return
        parent: ModuleType | None = None
        for name in _PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None or spec.submodule_search_locations is None:
                return  # not a package on disk: let the usual import say what is wrong
            module = importlib.util.module_from_spec(spec)
            module.__getattr__ = _init_on_first_lookup(module)  # type: ignore[method-assign]
            sys.modules[name] = module
            if parent is not None:
                # The import system binds a submodule on its parent only when it loads it; it did not load this one.
                setattr(parent, name.rpartition(".")[2], module)
            parent = module


def _init_on_first_lookup(module: ModuleType) -> Any:
    def __getattr__(attr: str) -> Any:  # a module's __getattr__ (PEP 562)
        if not attr.startswith("__") and importlib.util.find_spec(f"{module.__name__}.{attr}") is not None:
            return importlib.import_module(f"{module.__name__}.{attr}")  # a submodule (`from mcp import types`)
        with _lock:
            if "__getattr__" in module.__dict__:
                del module.__dict__["__getattr__"]
                assert module.__spec__ is not None and module.__spec__.loader is not None
                try:
                    module.__spec__.loader.exec_module(module)
                except BaseException:
                    module.__dict__["__getattr__"] = __getattr__  # not half a package: the next lookup tries again
                    raise
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}") from None

    return __getattr__


@contextlib.contextmanager
def models_built_on_first_use() -> Iterator[None]:
    """pydantic models created inside the block build their validators on first use (pydantic's `defer_build`)."""
    defaults: dict[str, Any] | None
    found: object
    try:
        from pydantic._internal._config import config_defaults as found
    except ImportError:
        found = None
    global _deferring
    with _lock:  # not held while the block runs: blocks in other threads nest
        if isinstance(found, dict) and (_deferring or found.get("defer_build") is False):
            defaults = cast(dict[str, Any], found)
            _deferring += 1
            defaults["defer_build"] = True
        else:
            defaults = None  # not the pydantic this was measured with: models are built as usual
    try:
        yield
    finally:
        if defaults is not None:
            with _lock:
                _deferring -= 1
                if not _deferring:
                    defaults["defer_build"] = False

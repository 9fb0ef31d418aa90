"""A codex session imports mcp's client side only, and the `mcp` package stays whole for everyone else."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fresh_python, run, write

# What the state of mcp's modules is when the run ends, written by the project's conftest.
REPORT_STATE = """\
import json, sys

def pytest_unconfigure(config):
    mcp = sys.modules.get("mcp")
    from pydantic._internal._config import config_defaults
    import mcp_types

    state = {
        "server_imported": "mcp.server" in sys.modules,
        "init_deferred": mcp is not None and "__getattr__" in vars(mcp),
        "unused_model_built": mcp_types.ElicitRequest.__pydantic_complete__,
        "used_model_built": mcp_types.CallToolResult.__pydantic_complete__,
        "defaults_restored": config_defaults["defer_build"] is False,
        "httpx_imported": "httpx2" in sys.modules,
    }
    with open("mcp-state.json", "w") as fh:
        json.dump(state, fh)
"""


def test_a_codex_session_does_not_import_mcps_server_side_nor_httpx(project: pytest.Pytester) -> None:
    """mcp's server side (a third of mcp's import time) is not on the way to the first scenario, and mcp's models are
    built when first used."""
    write(project.path / "conftest.py", REPORT_STATE)
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", fresh=True)
    result.assert_outcomes(passed=1, deselected=2)
    state = (project.path / "mcp-state.json").read_text()
    assert json.loads(state) == {
        "server_imported": False,
        "init_deferred": True,
        "unused_model_built": False,  # mcp's models are built when used ...
        "used_model_built": True,
        "defaults_restored": True,  # ... and only mcp's: pydantic's default is back for everyone else
        "httpx_imported": False,  # the audit proxy's client: not for a run without the proxy
    }


# After a session's imports, every way of reaching the `mcp` package finds what its __init__ defines.
WHOLE = """\
import sys
from pytest_interllm.codex import mcp_import

mcp_import.defer_package_inits()
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp import types
assert "mcp.server" not in sys.modules
assert types is sys.modules["mcp.types"] and "__getattr__" in vars(sys.modules["mcp"])  # a submodule: no __init__

import mcp
assert mcp.ClientSession is ClientSession  # the first name only __init__ defines runs it, into the same module
assert "__getattr__" not in vars(mcp) and "mcp.server" in sys.modules
from mcp import Client, ServerSession, stdio_client
from mcp.client import Client as ClientAgain, IncomingMessage
assert Client is ClientAgain and mcp.client.ClientSession is ClientSession
namespace = {}
exec("from mcp import *", namespace)
missing = [name for name in mcp.__all__ if name not in namespace]
assert not missing, missing
assert not hasattr(mcp, "no_such_name")
import agents.mcp  # openai-agents imports names from mcp's __init__
print("whole")
"""

# mcp imported before the plugin runs (a user's conftest): left exactly as it is.
ALREADY = """\
import sys
import mcp
before = dict(vars(mcp))
from pytest_interllm.codex import mcp_import
mcp_import.defer_package_inits()
assert sys.modules["mcp"] is mcp and vars(mcp) == before
print("untouched")
"""


@pytest.mark.parametrize(("script", "said"), [(WHOLE, "whole"), (ALREADY, "untouched")], ids=["deferred", "imported"])
def test_the_mcp_package_is_whole_for_every_other_importer(script: str, said: str) -> None:
    done = fresh_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [said]


# An __init__ that fails when it is finally run: its error where the name was asked for, every time.
BROKEN = """\
import sys
from pytest_interllm.codex import mcp_import

mcp_import.defer_package_inits()
import mcp.types
sys.modules["mcp.server"] = None  # the server side cannot be imported: mcp's __init__ fails
for _ in range(2):
    try:
        from mcp import ClientSession
    except ImportError as exc:
        print("ImportError", "mcp.server" in str(exc))
"""


def test_an_mcp_init_that_fails_raises_where_a_name_is_looked_up() -> None:
    done = fresh_python(BROKEN)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["ImportError True", "ImportError True"], done.stdout


def test_models_built_on_first_use_nests_and_leaves_pydantic_as_it_was() -> None:
    from pydantic import BaseModel
    from pydantic._internal._config import config_defaults

    from pytest_interllm.codex import mcp_import

    with pytest.raises(KeyError), mcp_import.models_built_on_first_use():
        with mcp_import.models_built_on_first_use():

            class Inner(BaseModel):
                x: int

        class Outer(BaseModel):  # the inner block's end is not the outer one's
            y: int

        raise KeyError("an error inside the block")

    class After(BaseModel):
        z: int

    assert (Inner.__pydantic_complete__, Outer.__pydantic_complete__, After.__pydantic_complete__) == (
        False,
        False,
        True,
    )
    assert config_defaults["defer_build"] is False
    assert Inner.model_validate({"x": "1"}).x == 1 and Inner.__pydantic_complete__  # built when used, as usual

"""How one attempt's turn reaches codex: `base` (the protocol), `mcp`, `appserver`, `agents`. The registry of
executors that names them is `pytest_interllm.executors`."""

"""How a scenario reaches codex."""

"""Model providers codex talks to: the built-in scripted model."""

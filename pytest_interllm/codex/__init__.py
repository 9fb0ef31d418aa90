"""Driving the real `codex mcp-server` over MCP stdio."""

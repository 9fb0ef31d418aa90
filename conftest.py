"""Project-wide pytest configuration: the test suite drives pytest itself through pytester."""

from __future__ import annotations

pytest_plugins = ["pytester"]

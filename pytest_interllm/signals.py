"""SIGTERM handled as Ctrl-C: a run that is asked to stop ends with its summary and leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt: the run stops the same way."""


class SigtermAsCtrlC:
    """While installed, SIGTERM stops the run as Ctrl-C does (in-flight scenarios cancelled, pytest's summary, codex
    ended, temporary dirs removed) and is passed on to `forward` (xdist workers, which do the same)."""

    def __init__(self) -> None:
        self.forward: set[int] = set()
        self.received = False
        self._installed = False

    def install(self) -> None:
        """Take over SIGTERM, unless another handler has it (the user's wins) or this is not the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, self._terminate)
        self._installed = True

    def uninstall(self) -> None:
        """Give SIGTERM back to its default."""
        if self._installed and signal.getsignal(signal.SIGTERM) == self._terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._installed = False

    def _terminate(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        self.received = True
        for pid in self.forward:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        raise Terminated("SIGTERM: stopped as on Ctrl-C")

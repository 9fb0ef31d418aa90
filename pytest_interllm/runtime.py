"""One asyncio event loop per worker, on a daemon thread, that owns the MCP client and the providers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a large library is imported: its module bodies build tens of
    thousands of objects, none of them garbage, and each collection pass over them is wasted (mcp's import, with
    the pydantic models it builds, takes a tenth less here). Left as it was found: a collector the user turned off
    stays off."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class LoopRunner:
    """Runs coroutines on a private event loop thread; pytest's synchronous hooks call `run`."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="interllm-loop", daemon=True)
        self._thread.start()
        self._waiting: set[concurrent.futures.Future[Any]] = set()  # what threads wait for in `run`
        self._guard = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (cancelling it if `timeout` passes)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._guard:
            self._waiting.add(future)
        try:
            return future.result(timeout)
        except (concurrent.futures.TimeoutError, KeyboardInterrupt):
            future.cancel()
            raise
        finally:
            with self._guard:
                self._waiting.discard(future)

    def close(self) -> None:
        """Cancel what still runs on the loop and give it a moment to end, stop the loop and join its thread; a
        thread still waiting in `run` (a scenario cut short by -x or Ctrl-C) wakes up with CancelledError rather
        than waiting for ever on a loop that is gone."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():

            async def drain() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks, timeout=2)

            with contextlib.suppress(concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                asyncio.run_coroutine_threadsafe(drain(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        with self._guard:
            waiting = list(self._waiting)
        for future in waiting:
            future.cancel()
        if not self._thread.is_alive():
            self._loop.close()

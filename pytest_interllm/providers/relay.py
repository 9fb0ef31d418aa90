"""One answer streaming through the audit proxy: read from the upstream to its end by a pump of its own (whether
codex is still there or not: codex may hang up once it has `response.completed`), handed on to codex chunk by chunk
as it arrives, and kept whole for the cassette and the audit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from starlette.requests import Request

from pytest_interllm.providers.stream import StreamReader

DRAIN_WAIT = 10.0  # seconds an answer codex stopped reading may take to end upstream (for its cassette and audit)


@dataclass
class Relay:
    """The upstream reply, what passed so far, and the proxy's clock."""

    request: Request
    start: float
    body: dict[str, Any]
    model: str | None
    key: tuple[str, str]
    index: int
    reply: httpx.Response
    reader: StreamReader
    throttled: int
    began: float
    chunks: list[bytes] = field(default_factory=list)
    # The pump's chunks for codex, each with whether a delta had come by its end (None: the answer ended).
    queue: asyncio.Queue[tuple[bytes, bool] | None] = field(default_factory=asyncio.Queue)
    pump: asyncio.Task[None] | None = None
    finishing: asyncio.Future[None] | None = None
    complete: bool = False  # the upstream's answer ended as it should
    upstream_done: float | None = None  # monotonic time the upstream's answer ended (or was cut off)
    first_sent: float | None = None  # monotonic time the chunk holding the first delta was handed on to codex

    def start_pump(self) -> asyncio.Task[None]:
        self.pump = asyncio.create_task(self._read())
        return self.pump

    async def _read(self) -> None:
        try:
            async for chunk in self.reply.aiter_bytes():
                self.reader.feed(chunk)
                self.chunks.append(chunk)
                self.queue.put_nowait((chunk, self.reader.facts.first_delta is not None))
            self.complete = True
        except httpx.HTTPError:
            pass  # cut off: audited as it came, not recorded
        finally:
            self.upstream_done = time.monotonic()
            self.queue.put_nowait(None)

    async def body_for_codex(self, then: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
        """What codex gets: the upstream's bytes as the pump reads them; `then` (the audit) before the answer ends,
        so that whoever reads the audit after the answer finds it there."""
        while (item := await self.queue.get()) is not None:
            chunk, delta = item
            yield chunk  # back here once the server has handed it to codex's connection
            if delta and self.first_sent is None:
                self.first_sent = time.monotonic()
        await then()

    async def once(self, finish: Callable[[], Awaitable[None]]) -> None:
        """`finish` once, whoever asks first (the end of codex's answer, or the proxy once codex went away)."""
        if self.finishing is None:
            self.finishing = asyncio.ensure_future(finish())
        await asyncio.shield(self.finishing)

    async def settle(self) -> None:
        """Codex's answer ended (or codex went away): the upstream's is read to its end, at most DRAIN_WAIT more
        seconds, then closed."""
        if self.pump is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.pump), DRAIN_WAIT)
            except TimeoutError:
                self.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.pump
        await self.reply.aclose()

"""A uvicorn server on 127.0.0.1 with a random port, run inside the worker's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from starlette.applications import Starlette


class _Server(uvicorn.Server):
    """uvicorn's server, woken by `stop` instead of noticing `should_exit` at its next 0.1 s tick (every run's
    teardown waited for it)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()  # set once it listens (or failed to): no polling of `started`

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """With no connection left (codex is stopped before its provider), stop listening and return: uvicorn's own
        shutdown first sleeps 0.1 s for connections to close. Else uvicorn's graceful shutdown."""
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()


class LocalServer:
    """Base for the local HTTP providers: subclasses give the Starlette app."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    def app(self) -> Starlette:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL codex is given (`…/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve until `stop`."""
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",  # plain HTTP: uvicorn's websockets protocol is not imported
            timeout_graceful_shutdown=1,  # a stalled stream (the `stall` fault) must not hold up the end of a run
        )
        server = _Server(config)
        logging.getLogger("uvicorn.error").propagate = False
        self._server = server
        self._task = asyncio.create_task(server.serve())
        ready = asyncio.ensure_future(server.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not server.started:
            if self._task.done():
                self._task.result()
            raise RuntimeError("the local model server stopped while starting")
        self.port = int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and wait for the server task."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.wake.set()
            await self._task
        self._server = None
        self._task = None

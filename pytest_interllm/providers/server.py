"""A uvicorn server on 127.0.0.1 with a random port, run inside the worker's event loop."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.applications import Starlette


class LocalServer:
    """Base for the local HTTP providers: subclasses give the Starlette app."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
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
            timeout_graceful_shutdown=1,  # a stalled stream (the `stall` fault) must not hold up the end of a run
        )
        server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").propagate = False
        self._server = server
        self._task = asyncio.create_task(server.serve())
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the local model server stopped while starting")
            await asyncio.sleep(0.01)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and wait for the server task."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None

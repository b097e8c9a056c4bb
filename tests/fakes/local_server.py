"""The start and stop of a fake HTTP service: an aiohttp app on 127.0.0.1, port chosen by the system."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from aiohttp import web


@dataclass
class LocalServer(ABC):
    """Serves the routes a subclass adds (``add_routes``) from ``start`` until ``stop``."""

    _runner: web.AppRunner | None = None
    port: int = 0

    @abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Add the fake service's routes to ``app``."""

    async def start(self) -> None:
        """Serve on 127.0.0.1; ``port`` is the one the system chose."""
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Shut the server down (nothing to do when it is not running)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""A background task that runs one step now, then again every ``interval`` seconds, until stopped.

The service's periodic work (subscriptions' pass, staff alerts, the daily purge) runs this way in every
worker; each step is safe to repeat, so several workers may run it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any


class Periodic:
    """``step`` now and every ``interval`` seconds; a failing step is logged and tried again at the
    next turn (a database hiccup must not end the work for good)."""

    def __init__(
        self, name: str, step: Callable[[], Awaitable[Any]], interval: float, log: logging.Logger
    ) -> None:
        self.name, self.step, self.interval, self.log = name, step, interval, log
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                self.log.exception("%s failed; trying again in %.0f s", self.name, self.interval)
            await asyncio.sleep(self.interval)

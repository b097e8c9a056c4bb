"""The background pass of subscriptions: notice knowledge changes, post overdue reviews, write digests.

Runs in every process that serves users (``policybot run``); several workers may run it at once, since
each step is safe to repeat (unique change keys, conditional updates). A pass every ``scan_seconds``, so a
change written by another process is noticed within a minute without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.broadcasts import BroadcastService

log = logging.getLogger("policybot.push")


class PushJobs:
    """Runs ``BroadcastService``'s periodic work until stopped."""

    def __init__(self, broadcasts: BroadcastService, interval: float) -> None:
        self.broadcasts = broadcasts
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="policybot-push")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """One pass; returns the number of broadcasts made."""
        made = await self.broadcasts.scanner.scan()
        if made and not self.broadcasts.settings.review:
            self.broadcasts.wake()
        await self.broadcasts.notice_overdue()
        await self.broadcasts.send_digests()
        return len(made)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end the pushes for good
                log.exception("push pass failed")
            await asyncio.sleep(self.interval)

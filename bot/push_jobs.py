"""The background pass of subscriptions: notice knowledge changes, post overdue reviews, write digests.

Runs in every process that serves users (``policybot run``); several workers may run it at once, since
each step is safe to repeat (unique change keys, conditional updates). A pass every ``scan_seconds``, so a
change written by another process is noticed within a minute without a restart.
"""

from __future__ import annotations

import logging

from bot.broadcasts import BroadcastService
from bot.periodic import Periodic

log = logging.getLogger("policybot.push")


class PushJobs:
    """Runs ``BroadcastService``'s periodic work until stopped."""

    def __init__(self, broadcasts: BroadcastService, interval: float) -> None:
        self.broadcasts = broadcasts
        self.interval = interval
        self._loop = Periodic("policybot-push", self.run_once, interval, log)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        """One pass; returns the number of broadcasts made."""
        made = await self.broadcasts.scanner.scan()
        if made and not self.broadcasts.settings.review:
            self.broadcasts.wake()
        await self.broadcasts.notice_overdue()
        await self.broadcasts.send_digests()
        return len(made)

"""The core object of one process: services, tickets, conversations, outbox and the channel registry.

It imports no channel adapter; ``policybot.run`` (the composition root) starts the channels with it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from bot.channels import ChannelRegistry
from bot.config import Settings
from bot.conversation import Conversations
from bot.messages import ChannelRef
from bot.outbox import OutboxWorker
from bot.services import Services
from bot.tickets import TicketService
from knowledge.segment import Lexicon

log = logging.getLogger("policybot.app")


def staff_targets(settings: Settings) -> list[ChannelRef]:
    """Where new tickets are posted: the Telegram staff chat when one is configured."""
    if settings.telegram.token and settings.staff.chat_id is not None:
        return [ChannelRef("telegram", str(settings.staff.chat_id))]
    return []


@dataclass
class App:
    """Everything a channel adapter needs, built once per process."""

    services: Services
    registry: ChannelRegistry
    outbox: OutboxWorker
    tickets: TicketService
    conversations: Conversations
    stoppers: list = field(default_factory=list)  # async callables that stop the started channels
    # aiohttp RouteDefs other channels ask the web server to serve (the Telegram webhook).
    extra_routes: list = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @classmethod
    async def create(
        cls, settings: Settings, *, lexicon: Lexicon | None = None, outbox_poll: float = 1.0
    ) -> App:
        """Start the services and wire the core together (channels are started separately)."""
        services = await Services.start(settings, lexicon=lexicon)
        registry = ChannelRegistry()
        outbox = OutboxWorker(services.sessions, registry, poll=outbox_poll)
        tickets = TicketService(
            services.sessions, services.kb, settings.staff, staff_targets(settings), outbox.wake
        )
        conversations = Conversations(services.sessions, services.qa, services.kb, tickets, outbox.wake)
        return cls(services, registry, outbox, tickets, conversations)

    async def close(self) -> None:
        """Stop channels, the outbox worker, and the database, in that order."""
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await stop()
        self.stoppers.clear()
        await self.outbox.stop()
        await self.services.close()

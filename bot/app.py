"""The core object of one process: services, tickets, conversations, outbox and the channel registry.

It imports no channel adapter; ``policybot.run`` (the composition root) starts the channels with it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.alerts import StaffAlerts
from bot.broadcasts import BroadcastService
from bot.channels import ChannelRegistry
from bot.config import Settings
from bot.conversation import Conversations
from bot.credentials import CredentialStore
from bot.hot_questions import HotQuestions
from bot.limits import Buckets, MemoryBuckets, buckets_for
from bot.messages import ChannelRef
from bot.outbox import OutboxWorker, Pace
from bot.push_jobs import PushJobs
from bot.retention import RetentionJob
from bot.services import Services
from bot.subscriptions import SubscriptionService
from bot.tickets import TicketService
from knowledge.segment import Lexicon

log = logging.getLogger("policybot.app")


def staff_targets(settings: Settings) -> list[ChannelRef]:
    """Where new tickets are posted: the Telegram staff chat when one is configured."""
    if settings.telegram.token and settings.staff.chat_id is not None:
        return [ChannelRef("telegram", str(settings.staff.chat_id))]
    return []


def alert_targets(settings: Settings) -> list[ChannelRef]:
    """Where staff alerts go (new and overdue tickets, the daily summary): the WeCom group robot."""
    return [ChannelRef("wecom", "staff")] if settings.wecom.webhook_url else []


@dataclass
class App:
    """Everything a channel adapter needs, built once per process."""

    services: Services
    registry: ChannelRegistry
    outbox: OutboxWorker
    tickets: TicketService
    conversations: Conversations
    credentials: CredentialStore  # channel API tokens shared by workers (WeChat's access token)
    alerts: StaffAlerts  # overdue tickets and the daily summary for alert targets (started by a channel)
    subscriptions: SubscriptionService
    broadcasts: BroadcastService
    push: PushJobs
    retention: RetentionJob  # the daily purge of what is past [privacy] retention_days (started by run)
    # Rate limits and flood guards: in the database on PostgreSQL (shared by the workers), else in memory.
    limits: Buckets = field(default_factory=MemoryBuckets)
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
        alerting = alert_targets(settings)
        tg = settings.telegram
        limits = buckets_for(services.engine)
        outbox.pace("telegram", Pace("telegram", tg.send_per_second, tg.per_chat_seconds, limits))
        tickets = TicketService(
            services.sessions, services.kb, settings.staff, staff_targets(settings), outbox.wake, alerting
        )
        conversations = Conversations(
            services.sessions,
            services.qa,
            services.kb,
            tickets,
            outbox.wake,
            auto_escalate=settings.handoff.auto_escalate,
        )
        alerts = StaffAlerts(tickets, alerting, settings.wecom.daily_summary_at)
        credentials = CredentialStore(services.sessions)
        sub = settings.subscriptions
        subscriptions = SubscriptionService(services.sessions, services.kb, sub, conversations.conversation)
        conversations.subscriptions = subscriptions
        conversations.hot = HotQuestions(services.sessions, services.kb, settings.desk)
        conversations.related_count = settings.desk.related_count
        broadcasts = BroadcastService(
            services.sessions,
            sub,
            settings.staff.timezone,
            staff_targets(settings),
            outbox.wake,
            windows={"wechat": settings.wechat.push_window_hours * 3600},
        )
        conversations.on_contact = broadcasts.on_contact
        push = PushJobs(broadcasts, sub.scan_seconds)
        retention = RetentionJob(
            services.engine,
            services.sessions,
            ZoneInfo(settings.staff.timezone),
            settings.privacy.retention_days,
        )
        return cls(
            services,
            registry,
            outbox,
            tickets,
            conversations,
            credentials,
            alerts,
            subscriptions,
            broadcasts,
            push,
            retention,
            limits,
        )

    async def close(self) -> None:
        """Stop channels, the outbox worker, and the database, in that order."""
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await stop()
        self.stoppers.clear()
        await self.alerts.stop()
        await self.push.stop()
        await self.retention.stop()
        await self.outbox.stop()
        await self.services.close()

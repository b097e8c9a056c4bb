"""Subscription and broadcast figures for the console: subscribers per category, broadcasts and their
deliveries, the time from a change to its delivery (and the share within the deadline), unsubscribes."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.subscriptions import CATEGORY, ENTRY
from knowledge.models import Broadcast, DailyStats, Delivery, OutboxItem, Subscription, SubscriptionEvent


@dataclass(frozen=True, slots=True)
class PushStats:
    """The numbers on the console's broadcast page."""

    subscribers: dict[str, int] = field(default_factory=dict)  # category -> conversations
    followers: int = 0  # conversations following at least one entry
    broadcasts: dict[str, int] = field(default_factory=dict)  # status -> count
    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    median_minutes: float | None = None
    max_minutes: float | None = None
    within_deadline: float | None = None  # share of delivered messages within deadline_hours of the change
    deadline_hours: int = 12
    unsubscribes: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def push_stats(sessions: async_sessionmaker[AsyncSession], deadline_hours: int) -> PushStats:
    """Compute the figures (all time)."""
    async with sessions() as session:
        subscribers = await _subscribers(session)
        followers = await session.scalar(
            select(func.count(func.distinct(Subscription.conversation_id))).where(
                Subscription.topic.like(ENTRY + "%")
            )
        )
        broadcasts = {
            status: int(n)
            for status, n in await session.execute(
                select(Broadcast.status, func.count()).group_by(Broadcast.status)
            )
        }
        by_status = {
            status: int(n)
            for status, n in await session.execute(
                select(OutboxItem.status, func.count(func.distinct(OutboxItem.id)))
                .join(Delivery, Delivery.outbox_id == OutboxItem.id)
                .group_by(OutboxItem.status)
            )
        }
        delays = await _delays(session)
        unsubscribes = await session.scalar(
            select(func.count())
            .select_from(SubscriptionEvent)
            .where(SubscriptionEvent.action == "unsubscribe")
        )
        # What ``policybot purge`` deleted was counted first (``bot.retention``): add it back.
        purged = await _purged(session)
    by_status["sent"] = by_status.get("sent", 0) + int(purged.get("delivered", 0))
    by_status["failed"] = by_status.get("failed", 0) + int(purged.get("failed", 0))
    delays += [
        timedelta(minutes=float(m)) for m, n in purged.get("delays", {}).items() for _ in range(int(n))
    ]
    unsubscribes = int(unsubscribes or 0) + int(purged.get("unsubscribes", 0))
    within = sum(1 for d in delays if d <= timedelta(hours=deadline_hours))
    minutes = [d.total_seconds() / 60 for d in delays]
    return PushStats(
        subscribers=subscribers,
        followers=int(followers or 0),
        broadcasts=broadcasts,
        delivered=by_status.get("sent", 0),
        failed=by_status.get("failed", 0),
        waiting=by_status.get("pending", 0) + by_status.get("sending", 0),
        median_minutes=round(statistics.median(minutes), 1) if minutes else None,
        max_minutes=round(max(minutes), 1) if minutes else None,
        within_deadline=round(within / len(delays), 4) if delays else None,
        deadline_hours=deadline_hours,
        unsubscribes=unsubscribes,
    )


async def _purged(session: AsyncSession) -> dict[str, Any]:
    """The push figures of what was purged: delivered and failed messages, the delays, unsubscribes."""
    out: dict[str, Any] = {"delivered": 0, "failed": 0, "delays": Counter(), "unsubscribes": 0}
    for data in await session.scalars(select(DailyStats.data)):
        push = data.get("push", {})
        out["delivered"] += int(push.get("delivered", 0))
        out["failed"] += int(push.get("failed", 0))
        out["delays"].update({k: int(v) for k, v in push.get("delays", {}).items()})
        out["unsubscribes"] += int(push.get("unsubscribes", 0))
    return out


async def _subscribers(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Subscription.topic, func.count())
        .where(Subscription.topic.like(CATEGORY + "%"))
        .group_by(Subscription.topic)
        .order_by(Subscription.topic)
    )
    return {topic[len(CATEGORY) :]: int(n) for topic, n in rows}


async def _delays(session: AsyncSession) -> list[timedelta]:
    """Change-to-delivery time of every delivered push (a digest counts when the digest was sent)."""
    rows = await session.execute(
        select(Broadcast.published_at, OutboxItem.sent_at)
        .join(Delivery, Delivery.broadcast_id == Broadcast.id)
        .join(OutboxItem, OutboxItem.id == Delivery.outbox_id)
        .where(OutboxItem.status == "sent", OutboxItem.sent_at.is_not(None))
    )
    return [_aware(sent) - _aware(published) for published, sent in rows if sent is not None]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

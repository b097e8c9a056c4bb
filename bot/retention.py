"""Retention: personal data is not kept for ever (``[privacy] retention_days``).

``purge`` deletes what is older than the retention: messages (except those of a ticket still open),
closed tickets (their notes, staff-chat posts and contact go with them), feedback, subscription events,
conversations left with nothing (and no subscription), processed update ids, outbox rows done with
(delivered, or given up on, unless their ticket is still open) with their push deliveries, and
knowledge proposals already decided (a question staff proposed as knowledge may quote a resident).
Before deleting, it counts each whole calendar day it is about to purge into ``daily_stats``
(``bot.stats.day_data``) and moves the purge mark (``job_state``) past it, in one transaction: the
console's statistics read the days before the mark from there, so their numbers stay the same. Days
are the staff time zone's; a row is purged on the first day its whole day is past the retention.

Deleting runs in batches, one transaction each: a batch of conversations loses all its old rows at
once or none of them. The whole purge holds a database lock (``knowledge.db_lock``), so two workers
running it at once take turns; the second finds the work done. A purge can be repeated at any time.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, Delete, and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.periodic import Periodic
from bot.stats import PURGE_MARK, PUSH_ROW, day_data, day_start, local_day, purge_mark
from knowledge.db_lock import database_lock
from knowledge.models import (
    Broadcast,
    Conversation,
    DailyStats,
    Delivery,
    Feedback,
    JobState,
    KnowledgeProposal,
    Message,
    OutboxItem,
    ProcessedUpdate,
    Rating,
    Subscription,
    SubscriptionEvent,
    Ticket,
    utcnow,
)

log = logging.getLogger("policybot.retention")

BATCH = 500  # conversations (or outbox rows, update ids) deleted per transaction
PURGE_EVERY = 24 * 3600.0  # seconds between the service's purges
OPEN = ("open", "claimed")


@dataclass(slots=True)
class PurgeCounts:
    """How many rows a purge deleted (or, dry, would delete), by kind."""

    conversations: int = 0
    messages: int = 0
    tickets: int = 0
    feedback: int = 0
    subscription_events: int = 0
    processed_updates: int = 0
    outbox: int = 0
    deliveries: int = 0
    proposals: int = 0

    def add(self, other: PurgeCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def lines(self) -> list[str]:
        return [f"{k}\t{v}" for k, v in asdict(self).items()]


def purge_before(now: datetime, tz: ZoneInfo, retention_days: int) -> str:
    """The purge mark for ``now``: the calendar day holding ``now - retention_days`` (earlier days go)."""
    return (now - timedelta(days=retention_days)).astimezone(tz).strftime("%Y-%m-%d")


async def purge(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    tz: ZoneInfo,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = BATCH,
) -> PurgeCounts:
    """Delete what is past the retention (keeping its statistics); ``dry_run``: only count it."""
    now = now or utcnow()
    mark = purge_before(now, tz, retention_days)
    cutoff = day_start(mark, tz)
    if dry_run:
        async with sessions() as session:
            return await _count(session, cutoff)
    async with database_lock(engine, "purge"):
        await _store_days(sessions, tz, now, mark)
        counts = await _purge_conversations(sessions, cutoff, batch)
        counts.add(await _purge_outbox(sessions, cutoff, batch))
        counts.add(await _purge_updates(sessions, cutoff, batch))
        counts.add(await _purge_proposals(sessions, cutoff, batch))
    log.info("purge done", extra={"before": mark, **asdict(counts)})
    return counts


# -- the statistics of the days to purge -----------------------------------------------------------


async def _store_days(
    sessions: async_sessionmaker[AsyncSession], tz: ZoneInfo, now: datetime, mark: str
) -> None:
    """Count every day before ``mark`` not yet counted into ``daily_stats``; move the mark, at once."""
    async with sessions() as session, session.begin():
        old = await purge_mark(session)
        if old is not None and old >= mark:
            return
        dialect = (await session.connection()).dialect.name
        day = old or await _first_day(session, tz, day_start(mark, tz), dialect, now)
        while day is not None and day < mark:
            following = (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")
            start, end = day_start(day, tz), day_start(following, tz)
            data = await day_data(session, dialect, tz, now, start, end)
            data["push"] = {"unsubscribes": await _unsubscribes(session, start, end)}
            if _has_numbers(data):
                await session.merge(DailyStats(day=day, data=data, created_at=now))
            day = following
        state = await session.get(JobState, PURGE_MARK)
        if state is None:
            session.add(JobState(name=PURGE_MARK, value=mark, updated_at=now))
        else:
            state.value, state.updated_at = mark, now


async def _first_day(
    session: AsyncSession, tz: ZoneInfo, cutoff: datetime, dialect: str, now: datetime
) -> str | None:
    """The earliest calendar day with a row before ``cutoff`` (None: nothing to count)."""
    firsts = []
    for column in (
        Message.created_at,
        Ticket.created_at,
        Feedback.created_at,
        Rating.updated_at,
        SubscriptionEvent.created_at,
    ):
        found = await session.scalar(
            select(func.min(local_day(column, dialect, tz, now))).where(column < cutoff)
        )
        if found:
            firsts.append(str(found))
    return min(firsts) if firsts else None


async def _unsubscribes(session: AsyncSession, start: datetime, end: datetime) -> int:
    n = await session.scalar(
        select(func.count())
        .select_from(SubscriptionEvent)
        .where(
            SubscriptionEvent.action == "unsubscribe",
            SubscriptionEvent.created_at >= start,
            SubscriptionEvent.created_at < end,
        )
    )
    return int(n or 0)


def _has_numbers(data: dict[str, Any]) -> bool:
    return any(v for k, v in data.items() if k != "push") or any(data["push"].values())


# -- conversations, their messages and tickets ----------------------------------------------------


def _kept_ticket(ticket_id: Any) -> ColumnElement[bool]:
    """The ticket ``ticket_id`` is still open: its messages stay whatever their age."""
    return exists().where(Ticket.id == ticket_id, Ticket.status.in_(OPEN))


def _old_messages(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [
        Message.created_at < cutoff,
        or_(Message.ticket_id.is_(None), ~_kept_ticket(Message.ticket_id)),
    ]


def _old_tickets(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [Ticket.created_at < cutoff, Ticket.status.not_in(OPEN)]


def _empty_conversation(cutoff: datetime) -> list[ColumnElement[bool]]:
    """A conversation idle since before ``cutoff`` with nothing left that is kept: no subscription, no
    newer (or open-ticket) message, no newer or open ticket, no newer subscription event."""
    conv = Conversation.id
    return [
        func.coalesce(Conversation.last_seen_at, Conversation.created_at) < cutoff,
        ~exists().where(Subscription.conversation_id == conv),
        ~exists().where(Message.conversation_id == conv, ~and_(*_old_messages(cutoff))),
        ~exists().where(Ticket.conversation_id == conv, ~and_(*_old_tickets(cutoff))),
        ~exists().where(SubscriptionEvent.conversation_id == conv, SubscriptionEvent.created_at >= cutoff),
    ]


def _has_old_rows(cutoff: datetime) -> ColumnElement[bool]:
    conv = Conversation.id
    return or_(
        exists().where(Message.conversation_id == conv, *_old_messages(cutoff)),
        exists().where(Ticket.conversation_id == conv, *_old_tickets(cutoff)),
        exists().where(Feedback.conversation_id == conv, Feedback.created_at < cutoff),
        exists().where(SubscriptionEvent.conversation_id == conv, SubscriptionEvent.created_at < cutoff),
        and_(*_empty_conversation(cutoff)),
    )


async def _purge_conversations(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, batch: int
) -> PurgeCounts:
    """Delete the old rows of every conversation, ``batch`` conversations a transaction."""
    total, last = PurgeCounts(), 0
    while True:
        async with sessions() as session, session.begin():
            ids = list(
                await session.scalars(
                    select(Conversation.id)
                    .where(Conversation.id > last, _has_old_rows(cutoff))
                    .order_by(Conversation.id)
                    .limit(batch)
                )
            )
            if not ids:
                break
            total.add(await _purge_batch(session, ids, cutoff))
            last = ids[-1]
    async with sessions() as session, session.begin():  # feedback of conversations gone before
        orphans = delete(Feedback).where(Feedback.conversation_id.is_(None), Feedback.created_at < cutoff)
        total.feedback += await _deleted(session, orphans)
    return total


async def _purge_batch(session: AsyncSession, ids: list[int], cutoff: datetime) -> PurgeCounts:
    done = PurgeCounts()
    done.feedback = await _deleted(
        session, delete(Feedback).where(Feedback.conversation_id.in_(ids), Feedback.created_at < cutoff)
    )
    # Tickets first: their messages' ticket_id is set NULL, so those messages go in the next statement.
    done.tickets = await _deleted(
        session, delete(Ticket).where(Ticket.conversation_id.in_(ids), *_old_tickets(cutoff))
    )
    done.messages = await _deleted(
        session, delete(Message).where(Message.conversation_id.in_(ids), *_old_messages(cutoff))
    )
    done.subscription_events = await _deleted(
        session,
        delete(SubscriptionEvent).where(
            SubscriptionEvent.conversation_id.in_(ids), SubscriptionEvent.created_at < cutoff
        ),
    )
    done.conversations = await _deleted(
        session, delete(Conversation).where(Conversation.id.in_(ids), *_empty_conversation(cutoff))
    )
    return done


# -- outbox rows done with, processed update ids, decided proposals ---------------------------------


def _done_outbox(cutoff: datetime) -> list[ColumnElement[bool]]:
    """Outbox rows older than ``cutoff`` that nothing will send again: delivered, or given up on
    (``failed``: the reply and its address are personal data too) unless their ticket is still open,
    whose page shows staff why its reply did not arrive."""
    return [
        OutboxItem.created_at < cutoff,
        or_(
            OutboxItem.status == "sent",
            and_(
                OutboxItem.status == "failed",
                or_(OutboxItem.ticket_id.is_(None), ~_kept_ticket(OutboxItem.ticket_id)),
            ),
        ),
    ]


def _decided_proposals(cutoff: datetime) -> list[ColumnElement[bool]]:
    """Knowledge proposals decided (approved or rejected) before ``cutoff``: what was approved lives on
    in the entry and its revisions; a pending one waits for its editor whatever its age."""
    return [KnowledgeProposal.status != "pending", KnowledgeProposal.created_at < cutoff]


async def _purge_outbox(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, batch: int
) -> PurgeCounts:
    """Delete the outbox rows done with (``_done_outbox``) with their push deliveries, adding their
    push figures to the totals.

    The deliveries go too: one whose outbox row were gone (``outbox_id`` set NULL) would look like a
    digest not yet written, and the next digest would send it again."""
    total = PurgeCounts()
    while True:
        async with sessions() as session, session.begin():
            ids = list(
                await session.scalars(
                    select(OutboxItem.id).where(*_done_outbox(cutoff)).order_by(OutboxItem.id).limit(batch)
                )
            )
            if not ids:
                break
            await _count_pushes(session, ids)
            total.deliveries += await _deleted(session, delete(Delivery).where(Delivery.outbox_id.in_(ids)))
            total.outbox += await _deleted(session, delete(OutboxItem).where(OutboxItem.id.in_(ids)))
    return total


async def _count_pushes(session: AsyncSession, outbox_ids: list[int]) -> None:
    """Add these outbox rows' push figures (as ``bot.push_stats`` counts them: delivered with their
    delays, and failed) to the purged totals."""
    rows = (
        await session.execute(
            select(OutboxItem.id, OutboxItem.status, Broadcast.published_at, OutboxItem.sent_at)
            .join(Delivery, Delivery.outbox_id == OutboxItem.id)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(OutboxItem.id.in_(outbox_ids))
        )
    ).all()
    if not rows:
        return
    row = await session.get(DailyStats, PUSH_ROW)
    if row is None:
        row = DailyStats(day=PUSH_ROW, data={})
        session.add(row)
    push = dict(row.data.get("push", {}))
    delays = Counter({k: int(v) for k, v in push.get("delays", {}).items()})
    for _, status, published, sent in rows:
        if status == "sent" and sent is not None:
            minutes = (_aware(sent) - _aware(published)).total_seconds() / 60
            delays[f"{minutes:.1f}"] += 1
    by_status = Counter({i: status for i, status, _, _ in rows}.values())  # (each row once)
    push["delivered"] = int(push.get("delivered", 0)) + by_status["sent"]
    push["failed"] = int(push.get("failed", 0)) + by_status["failed"]
    push["delays"] = dict(delays)
    row.data = {**row.data, "push": push}  # a new dict: the JSON column notices the change


async def _purge_updates(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, batch: int
) -> PurgeCounts:
    total = PurgeCounts()
    key = tuple_(ProcessedUpdate.channel, ProcessedUpdate.update_id)
    while True:
        async with sessions() as session, session.begin():
            some = select(ProcessedUpdate.channel, ProcessedUpdate.update_id).where(
                ProcessedUpdate.created_at < cutoff
            )
            n = await _deleted(session, delete(ProcessedUpdate).where(key.in_(some.limit(batch))))
        total.processed_updates += n
        if n < batch:
            return total


async def _purge_proposals(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, batch: int
) -> PurgeCounts:
    total = PurgeCounts()
    while True:
        async with sessions() as session, session.begin():
            some = select(KnowledgeProposal.id).where(*_decided_proposals(cutoff)).limit(batch)
            ids = list(await session.scalars(some))
            n = await _deleted(session, delete(KnowledgeProposal).where(KnowledgeProposal.id.in_(ids)))
        total.proposals += n
        if len(ids) < batch:
            return total


# -- dry run ---------------------------------------------------------------------------------------


async def _count(session: AsyncSession, cutoff: datetime) -> PurgeCounts:
    """What a purge at ``cutoff`` would delete (conversations: those left with nothing)."""

    async def n(table: Any, *where: ColumnElement[bool]) -> int:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    done_old = select(OutboxItem.id).where(*_done_outbox(cutoff))
    return PurgeCounts(
        conversations=await n(Conversation, *_empty_conversation(cutoff)),
        messages=await n(Message, *_old_messages(cutoff)),
        tickets=await n(Ticket, *_old_tickets(cutoff)),
        feedback=await n(Feedback, Feedback.created_at < cutoff),
        subscription_events=await n(SubscriptionEvent, SubscriptionEvent.created_at < cutoff),
        processed_updates=await n(ProcessedUpdate, ProcessedUpdate.created_at < cutoff),
        outbox=await n(OutboxItem, *_done_outbox(cutoff)),
        deliveries=await n(Delivery, Delivery.outbox_id.in_(done_old)),
        proposals=await n(KnowledgeProposal, *_decided_proposals(cutoff)),
    )


async def _deleted(session: AsyncSession, stmt: Delete) -> int:
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- the service's daily purge ---------------------------------------------------------------------


class RetentionJob:
    """Purges at start, then every ``every`` seconds, in a running service (every worker may: the
    purge's lock makes them take turns, and a repeated purge finds nothing to do)."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        tz: ZoneInfo,
        retention_days: int,
        every: float = PURGE_EVERY,
    ) -> None:
        self.engine, self.sessions, self.tz = engine, sessions, tz
        self.retention_days, self.every = retention_days, every
        self._loop = Periodic("policybot-retention", self.run_once, every, log)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> PurgeCounts:
        return await purge(self.engine, self.sessions, self.tz, self.retention_days)

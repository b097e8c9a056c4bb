"""Durable delivery: replies are rows in the ``outbox`` table until a channel has sent them.

Writers add a row in their own transaction (so a reply exists exactly when the state change that caused
it does) and then ``wake()`` the worker. The worker claims due rows with a conditional UPDATE (safe with a
second worker on PostgreSQL), sends them through the channel registry, and on failure reschedules them
with exponential backoff, or after the channel's ``retry_after`` (Telegram's 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels import ChannelRegistry, DeliveryError
from bot.messages import ChannelRef, Reply
from knowledge.models import OutboxItem, OutboxKind, TicketPost, utcnow

log = logging.getLogger("policybot.outbox")

LEASE = timedelta(seconds=60)  # a claimed row whose worker died is retried after this
MAX_BACKOFF = 600.0
MAX_ATTEMPTS = 12  # about an hour and a half of retries before a row is marked failed

SentHook = Callable[[AsyncSession, OutboxItem, str | None], Awaitable[None]]


def enqueue(
    session: AsyncSession,
    ref: ChannelRef,
    reply: Reply,
    *,
    kind: OutboxKind = "reply",
    ticket_id: int | None = None,
    reply_to: str | None = None,
) -> OutboxItem:
    """Add a reply to the outbox inside the caller's transaction."""
    payload = {"reply": reply.to_json(), "reply_to": reply_to}
    item = OutboxItem(
        channel=ref.channel, chat_ref=ref.chat_ref, kind=kind, payload=payload, ticket_id=ticket_id
    )
    session.add(item)
    return item


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: 1, 2, 4, ... up to ten minutes."""
    return min(MAX_BACKOFF, 2.0 ** max(0, attempts - 1))


class OutboxWorker:
    """Sends pending outbox rows through the registered channels."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], registry: ChannelRegistry, poll: float = 1.0
    ):
        self.sessions = sessions
        self.registry = registry
        self.poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Deliver without waiting for the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="policybot-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # keep delivering whatever one bad row or a DB hiccup does
                log.exception("outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Send every due row of a running channel once; return how many were sent."""
        now = now or utcnow()
        names = self.registry.names()
        if not names:
            return 0
        async with self.sessions() as session:
            ids = list(
                await session.scalars(
                    select(OutboxItem.id)
                    .where(
                        OutboxItem.channel.in_(names),
                        OutboxItem.next_attempt_at <= now,
                        OutboxItem.status.in_(["pending", "sending"]),
                    )
                    .order_by(OutboxItem.id)
                    .limit(100)
                )
            )
        sent = 0
        for item_id in ids:
            sent += await self._deliver_one(item_id, now)
        return sent

    async def _claim(self, item_id: int, now: datetime) -> OutboxItem | None:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.id == item_id,
                    OutboxItem.next_attempt_at <= now,
                    or_(OutboxItem.status == "pending", OutboxItem.status == "sending"),
                )
                .values(status="sending", next_attempt_at=now + LEASE, attempts=OutboxItem.attempts + 1)
            )
            if cast("CursorResult[Any]", result).rowcount != 1:  # an UPDATE's result has a rowcount
                return None  # another worker has it
            return await session.get(OutboxItem, item_id)

    async def _deliver_one(self, item_id: int, now: datetime) -> int:
        item = await self._claim(item_id, now)
        if item is None:
            return 0
        channel = self.registry.get(item.channel)
        if channel is None:
            await self._reschedule(item, "channel not running", backoff(item.attempts), permanent=False)
            return 0
        reply = Reply.from_json(item.payload.get("reply", {}))
        try:
            message_ref = await channel.send(item.chat_ref, reply, item.payload.get("reply_to"))
        except DeliveryError as exc:
            wait = exc.retry_after if exc.retry_after is not None else backoff(item.attempts)
            await self._reschedule(item, str(exc), wait, permanent=exc.permanent)
            return 0
        except Exception as exc:  # an adapter bug must not lose the reply either
            log.exception("channel send raised", extra={"outbox_id": item.id, "channel": item.channel})
            await self._reschedule(
                item, f"{type(exc).__name__}: {exc}", backoff(item.attempts), permanent=False
            )
            return 0
        async with self.sessions() as session, session.begin():
            row = await session.get(OutboxItem, item.id)
            assert row is not None
            row.status, row.sent_at, row.last_error = "sent", utcnow(), ""
            if row.kind in ("staff_post", "staff_followup") and row.ticket_id and message_ref:
                session.add(
                    TicketPost(
                        channel=row.channel,
                        chat_ref=row.chat_ref,
                        message_ref=str(message_ref),
                        ticket_id=row.ticket_id,
                    )
                )
        return 1

    async def _reschedule(self, item: OutboxItem, error: str, wait: float, permanent: bool) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(OutboxItem, item.id)
            assert row is not None
            row.last_error = error[:500]
            if permanent or row.attempts >= MAX_ATTEMPTS:
                row.status = "failed"
                log.warning(
                    "outbox gave up",
                    extra={"outbox_id": row.id, "channel": row.channel, "error": row.last_error},
                )
            else:
                row.status = "pending"
                row.next_attempt_at = utcnow() + timedelta(seconds=wait)
                log.info("outbox retry", extra={"outbox_id": row.id, "in_seconds": round(wait, 1)})

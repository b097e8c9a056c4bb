"""Durable delivery: replies are rows in the ``outbox`` table until a channel has sent them.

Writers add a row in their own transaction (so a reply exists exactly when the state change that caused
it does) and then ``wake()`` the worker. The worker claims due rows with a conditional UPDATE (safe with a
second worker on PostgreSQL), sends them through the channel registry, and on failure reschedules them
with exponential backoff, or after the channel's ``retry_after`` (Telegram's 429).

Rows are taken by ``priority`` (replies 0 before broadcasts 1), then in order. A channel may be given a
``Pace`` (Telegram: about 30 messages a second overall, one a second per chat; shared by the workers on
PostgreSQL): the worker spaces its sends so the channel's flood limits are never hit, and leaves a
broadcast row whose chat was just written to for the next pass (a reply is not held back: a short burst
in one chat is tolerated). ``stop()`` lets the row being sent finish, so a restart never sends one twice.

A worker killed outright (SIGKILL, power loss) between a send and its record leaves the row claimed: it
is sent again once the claim's ``LEASE`` expires, and marked ``IN_DOUBT``, for the first send may have
arrived. That is the one case where a reply can arrive twice (no channel offers an idempotent send);
the record is written in one statement right after the send to keep that moment short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels import ChannelRegistry, DeliveryError
from bot.limits import Buckets, MemoryBuckets, RateLimiter
from bot.messages import ChannelRef, Reply
from knowledge.models import OutboxItem, OutboxKind, TicketPost, utcnow

log = logging.getLogger("policybot.outbox")

LEASE = timedelta(seconds=60)  # a claimed row whose worker died is retried after this
# Kept in ``last_error`` of a row taken over from a worker that died holding it: its send may have
# reached the channel before the worker could record it (no channel's API can tell), so the retry
# may deliver it twice. Delivery is at least once; these rows are the only ones that can arrive twice.
IN_DOUBT = "lease expired: the previous send's outcome is unknown (it may arrive twice)"
MAX_BACKOFF = 600.0
MAX_ATTEMPTS = 12  # about an hour and a half of retries before a row is marked failed
BATCH = 100  # rows looked at per pass; a full pass is followed by the next at once
STOP_GRACE = 10.0  # seconds ``stop()`` waits for the row being sent
PRIORITY_REPLY = 0
PRIORITY_BROADCAST = 1
IN_FLIGHT = 4  # paced pushes sent at once (each to another chat)
MAX_PACE_TRIES = 1000  # slots a send waits for before it goes anyway (a wrong clock must not stall it)

SentHook = Callable[[AsyncSession, OutboxItem, str | None], Awaitable[None]]


def enqueue(
    session: AsyncSession,
    ref: ChannelRef,
    reply: Reply,
    *,
    kind: OutboxKind = "reply",
    ticket_id: int | None = None,
    reply_to: str | None = None,
    priority: int = PRIORITY_REPLY,
) -> OutboxItem:
    """Add a reply to the outbox inside the caller's transaction."""
    payload = {"reply": reply.to_json(), "reply_to": reply_to}
    item = OutboxItem(
        channel=ref.channel,
        chat_ref=ref.chat_ref,
        kind=kind,
        payload=payload,
        ticket_id=ticket_id,
        priority=priority,
    )
    session.add(item)
    return item


def _results(tasks: set[asyncio.Task[int]]) -> int:
    """Rows sent by finished delivery tasks; a task's database error is logged, the row retried later."""
    sent = 0
    for task in tasks:
        if task.exception() is not None:
            log.error("outbox delivery failed", exc_info=task.exception())
        else:
            sent += task.result()
    return sent


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: 1, 2, 4, ... up to ten minutes."""
    return min(MAX_BACKOFF, 2.0 ** max(0, attempts - 1))


class Pace:
    """A channel's flood limits: at most ``per_second`` sends overall, evenly spaced, and one send per
    chat every ``per_chat`` seconds. Kept in ``buckets`` (``bot.limits``): in the database on
    PostgreSQL, so that the workers together keep to them, not each on its own (two workers pacing
    themselves at 25 a second would send 50 together, past Telegram's 30)."""

    def __init__(
        self, channel: str, per_second: float, per_chat: float = 0.0, buckets: Buckets | None = None
    ) -> None:
        store = buckets if buckets is not None else MemoryBuckets()
        self.per_chat = per_chat
        # One token at a time, refilled at ``per_second``: the sends are spaced, never bunched.
        self.overall = RateLimiter(f"pace-{channel}", 1, 1.0 / per_second, store)
        self.chats = RateLimiter(f"pace-{channel}-chat", 1, per_chat, store) if per_chat > 0 else None

    async def chat_wait(self, chat_ref: str) -> float:
        """Seconds until ``chat_ref`` may be written to again (0: now)."""
        if self.chats is None:
            return 0.0
        return await self.chats.wait(chat_ref) or 0.0

    async def turn(self, chat_ref: str) -> None:
        """Wait for the next overall slot, and take it for ``chat_ref``."""
        # (Another worker may take the slot first: then wait for the next one it leaves.)
        for _ in range(MAX_PACE_TRIES):
            wait = await self.overall.hit("all")
            if wait is None:
                break
            await asyncio.sleep(wait)
        if self.chats is not None:
            await self.chats.check(chat_ref)  # (a reply is not held back by its chat's window)


class OutboxWorker:
    """Sends pending outbox rows through the registered channels."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], registry: ChannelRegistry, poll: float = 1.0
    ):
        self.sessions = sessions
        self.registry = registry
        self.poll = poll
        self.paces: dict[str, Pace] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def pace(self, channel: str, pace: Pace) -> None:
        """Honour ``channel``'s flood limits."""
        self.paces[channel] = pace

    def wake(self) -> None:
        """Deliver without waiting for the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="policybot-outbox")

    async def stop(self) -> None:
        """Finish the row being sent (up to ``STOP_GRACE`` seconds), then stop."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            full = False
            try:
                looked, sent = await self._pass(utcnow(), BATCH)
                full = looked >= BATCH and sent > 0
            except Exception:  # keep delivering whatever one bad row or a DB hiccup does
                log.exception("outbox pass failed")
            if full or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    async def deliver_due(self, now: datetime | None = None, limit: int = BATCH) -> int:
        """Send the due rows of the running channels (highest priority first) once; return how many
        were sent."""
        return (await self._pass(now or utcnow(), limit))[1]

    async def _pass(self, now: datetime, limit: int) -> tuple[int, int]:
        """One pass: (rows looked at, rows sent)."""
        names = self.registry.names()
        if not names:
            return 0, 0
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxItem.id, OutboxItem.channel, OutboxItem.chat_ref, OutboxItem.priority)
                    .where(
                        OutboxItem.channel.in_(names),
                        OutboxItem.next_attempt_at <= now,
                        OutboxItem.status.in_(["pending", "sending"]),
                    )
                    .order_by(OutboxItem.priority, OutboxItem.id)
                    .limit(limit)
                )
            ).all()
        sent = 0
        inflight: set[asyncio.Task[int]] = set()
        for item_id, channel, chat_ref, priority in rows:
            if self._stopping:
                break
            pace = self.paces.get(channel)
            if pace is None:
                sent += await self._deliver_one(item_id, now)
                continue
            if priority == PRIORITY_REPLY:
                await pace.turn(chat_ref)
                sent += await self._deliver_one(item_id, now)
                continue
            if await pace.chat_wait(chat_ref) > 0:
                continue  # this chat had a message a moment ago: the push waits for the next pass
            # Pushes go to different chats: a few in flight at once keep up with the pace's rate.
            await pace.turn(chat_ref)
            inflight.add(asyncio.create_task(self._deliver_one(item_id, now)))
            if len(inflight) >= IN_FLIGHT:
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                sent += _results(done)
        if inflight:
            sent += _results((await asyncio.wait(inflight))[0])
        return len(rows), sent

    async def _claim(self, item_id: int, now: datetime) -> OutboxItem | None:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.id == item_id,
                    OutboxItem.next_attempt_at <= now,
                    or_(OutboxItem.status == "pending", OutboxItem.status == "sending"),
                )
                .values(
                    status="sending",
                    next_attempt_at=now + LEASE,
                    attempts=OutboxItem.attempts + 1,
                    # Still "sending" when due again: its worker died holding it (``IN_DOUBT``).
                    last_error=case((OutboxItem.status == "sending", IN_DOUBT), else_=OutboxItem.last_error),
                )
            )
            if cast("CursorResult[Any]", result).rowcount != 1:  # an UPDATE's result has a rowcount
                return None  # another worker has it
            item = await session.get(OutboxItem, item_id)
            if item is not None and item.last_error == IN_DOUBT:
                log.warning("outbox row taken over after its lease", extra={"outbox_id": item_id})
            return item

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
            # One statement (no read first): the moment a kill would leave a sent row unrecorded.
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item.id)
                .values(
                    status="sent",
                    sent_at=utcnow(),
                    last_error=IN_DOUBT if item.last_error == IN_DOUBT else "",
                )
            )
            if item.kind in ("staff_post", "staff_followup") and item.ticket_id and message_ref:
                session.add(
                    TicketPost(
                        channel=item.channel,
                        chat_ref=item.chat_ref,
                        message_ref=str(message_ref),
                        ticket_id=item.ticket_id,
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

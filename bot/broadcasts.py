"""Broadcasts: new and changed knowledge pushed to its subscribers within the 12-hour rule.

``ChangeScanner`` notices changes whoever wrote them (``kb import`` in another process, the console, an
approved staff answer, another worker): it compares the top-level entries written since its last pass
with what it saw of them before (``entry_marks``). A newly published entry in a subscribed category makes
a ``new`` broadcast (many at once in one category: one ``batch``); a material change of a followed entry
(its answer, title, validity or status) makes ``changed``, ``expired`` or ``withdrawn``. ``change_key`` is
unique, so two workers noticing the same change make one broadcast.

A broadcast waits for review (``[subscriptions] review``) with a deadline ``deadline_hours`` after the
change, or is released at once. Releasing writes one ``Delivery`` per subscriber and, for instant
subscribers, an outbox row at broadcast priority in the same transaction: the outbox sends each once,
within the channel's flood limits. Digest subscribers get one message a day at ``digest_hour``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from bot.config import SubscriptionSettings
from bot.messages import Button, ChannelRef, Reply
from bot.outbox import PRIORITY_BROADCAST, enqueue
from bot.protocol import read_action, unsub_action
from bot.subscriptions import CATEGORY, category_topic, entry_topic
from knowledge.answers import citation, is_expired
from knowledge.models import (
    Broadcast,
    Conversation,
    Delivery,
    Entry,
    EntryMark,
    JobState,
    OutboxItem,
    Subscription,
    utcnow,
)

log = logging.getLogger("policybot.broadcasts")

PUSHED_KINDS = ("faq", "guide", "policy")
OVERLAP = timedelta(minutes=10)  # re-read this much before the watermark: a slow writer's rows still count
WATERMARK = "kb_scan_watermark"
DIGEST_DAY = "digest_day"
BASELINE_BATCH = 2000
SUMMARY_LINE = 60  # characters per summary line
BATCH_TITLES = 5
DIGEST_ITEMS = 20
SEEN_EVERY = timedelta(minutes=1)  # Conversation.last_seen_at is refreshed at most this often
HEADINGS = {
    "new": "新发布",
    "batch": "新发布",
    "changed": "内容更新",
    "expired": "已失效",
    "withdrawn": "已撤回",
}


class BroadcastError(ValueError):
    """A review action that cannot be done (unknown broadcast, already sent or dropped)."""


# -- what an entry says ---------------------------------------------------------------------------------
def material(entry: Entry) -> str:
    """A digest of what a reader relies on: title, answer, sections, validity and status (a new
    alternate phrasing or tag is not a change worth a push)."""
    data = [entry.title, entry.question, entry.answer, entry.sections, entry.valid_until, entry.status]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def summary_lines(entry: Entry, width: int = SUMMARY_LINE) -> str:
    """Two short lines: the entry's own summary (answer, 摘要, first section), cut at sentence ends."""
    sections = dict((name, text) for name, text in entry.sections)
    text = entry.answer or sections.get("摘要") or sections.get("要点") or next(iter(sections.values()), "")
    text = re.sub(r"\s+", " ", text).strip()
    sentences = [s for s in re.split(r"(?<=[。！？；])", text) if s.strip()]
    lines: list[str] = []
    for sentence in sentences or [text]:
        if len(lines) == 2:
            break
        lines.append(sentence.strip() if len(sentence) <= width else sentence.strip()[: width - 1] + "…")
    return "\n".join(lines)


def entry_name(entry: Entry) -> str:
    return (entry.title or entry.question or entry.id)[:120]


def local_today(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()


# -- the pushed message ---------------------------------------------------------------------------------
def push_reply(b: Broadcast, sub_id: int) -> Reply:
    """What one subscriber receives: heading, title, two lines, the source, 阅读全文 and 退订."""
    where = f"「{b.category}」" if b.topic.startswith(CATEGORY) else "您关注的内容"
    lines = [f"【{HEADINGS.get(b.kind, '更新')}】{where}", b.title]
    if b.summary:
        lines.append(b.summary)
    buttons: list[list[Button]] = []
    if b.kind == "batch":
        for i, title in enumerate(b.payload.get("titles", [])[:BATCH_TITLES]):
            buttons.append([Button(f"阅读：{title[:24]}", read_action(b.id, i))])
    elif b.kind not in ("withdrawn",) and b.entry_id:
        buttons.append([Button("阅读全文", read_action(b.id))])
    buttons.append([Button("退订", unsub_action(sub_id))])
    return Reply("\n".join(lines), source_line=b.source_line, buttons=buttons, kind="broadcast")


def digest_reply(items: Sequence[Broadcast], sub_ids: dict[str, int], day: date) -> Reply:
    """One day's pushes for a digest subscriber, each with its 阅读 button."""
    lines = [f"【政策更新日报 {day.isoformat()}】共 {len(items)} 条："]
    buttons: list[list[Button]] = []
    for i, b in enumerate(items[:DIGEST_ITEMS], 1):
        lines.append(f"{i}. [{HEADINGS.get(b.kind, '更新')}] {b.title}")
        if b.entry_id and b.kind != "withdrawn":
            buttons.append([Button(f"阅读 {i}. {b.title[:20]}", read_action(b.id))])
    if len(items) > DIGEST_ITEMS:
        lines.append(f"……另有 {len(items) - DIGEST_ITEMS} 条，发送 /subscriptions 管理订阅。")
    for topic, sub_id in list(sub_ids.items())[:3]:
        label = topic[len(CATEGORY) :] if topic.startswith(CATEGORY) else "关注的内容"
        buttons.append([Button(f"退订 {label[:20]}", unsub_action(sub_id))])
    return Reply("\n".join(lines), buttons=buttons, kind="broadcast")


def staff_overdue_reply(b: Broadcast, hours: int) -> Reply:
    """The staff-channel notice for a broadcast past its deadline and still unreviewed."""
    return Reply(
        f"【推送超时未审核 #{b.id}】{b.title}\n"
        f"变更于 {b.published_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC，已超过 {hours} 小时转载时限。"
        "请在控制台“推送审核”页确认或放弃。",
        kind="staff_notice",
    )


# -- the scanner ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Change:
    """A top-level entry as written now, and what the scanner saw of it before (None: never)."""

    entry: Entry
    mark: EntryMark | None


class ChangeScanner:
    """Turns knowledge changes into broadcasts (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: SubscriptionSettings,
        timezone: str,
        release: Callable[[AsyncSession, Broadcast], Awaitable[int]],
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.tz = ZoneInfo(timezone)
        self.release = release

    async def scan(self, now: datetime | None = None) -> list[Broadcast]:
        """One pass: the broadcasts made (already released when review is off)."""
        now = now or utcnow()
        try:
            async with self.sessions() as session, session.begin():
                state = await session.get(JobState, WATERMARK)
                if state is None:
                    await self._baseline(session, now)
                    return []
                since = datetime.fromisoformat(state.value) - OVERLAP
                changes = await self._changes(session, since)
                made = await self._broadcasts(session, changes, now)
                made += await self._date_expiries(session, now)
                state.value, state.updated_at = now.isoformat(), now
                for b in made:
                    if not self.settings.review:
                        await self.release(session, b)
            return made
        except IntegrityError:
            # Another worker recorded the same change (or the baseline) first: it made the broadcast.
            log.info("scan raced another worker; the next pass carries on")
            return []

    async def _baseline(self, session: AsyncSession, now: datetime) -> None:
        """First pass ever: remember every entry as it is, push nothing (existing knowledge is not news)."""
        ids = list(
            await session.scalars(
                select(Entry.id).where(Entry.parent_id.is_(None), Entry.kind.in_(PUSHED_KINDS))
            )
        )
        for i in range(0, len(ids), BASELINE_BATCH):
            rows = await session.scalars(select(Entry).where(Entry.id.in_(ids[i : i + BASELINE_BATCH])))
            session.add_all(self._mark(r, now) for r in rows)
            await session.flush()
            session.expunge_all()
        session.add(JobState(name=WATERMARK, value=now.isoformat(), updated_at=now))
        log.info("subscription scanner baseline", extra={"entries": len(ids)})

    async def _changes(self, session: AsyncSession, since: datetime) -> list[Change]:
        """Top-level entries written since ``since`` that differ from their mark (SQL does the diff)."""
        rows = await session.execute(
            select(Entry, EntryMark)
            .options(defer(Entry.tokens))
            .outerjoin(EntryMark, EntryMark.entry_id == Entry.id)
            .where(
                Entry.updated_at >= since,
                Entry.parent_id.is_(None),
                Entry.kind.in_(PUSHED_KINDS),
                or_(
                    EntryMark.entry_id.is_(None),
                    EntryMark.content_hash != Entry.content_hash,
                    EntryMark.status != Entry.status,
                ),
            )
            .order_by(Entry.updated_at, Entry.id)
        )
        return [Change(entry, mark) for entry, mark in rows]

    def _mark(self, entry: Entry, now: datetime) -> EntryMark:
        return EntryMark(
            entry_id=entry.id,
            content_hash=entry.content_hash,
            material=material(entry),
            status=entry.status,
            expired=is_expired(entry, local_today(self.tz, now)),
            seen_at=now,
        )

    async def _broadcasts(
        self, session: AsyncSession, changes: list[Change], now: datetime
    ) -> list[Broadcast]:
        news: dict[str, list[Entry]] = defaultdict(list)
        made: list[Broadcast] = []
        for change in changes:
            entry, mark = change.entry, change.mark
            kind = self._kind(entry, mark)
            fresh = self._mark(entry, now)
            if mark is None:
                session.add(fresh)
            else:
                mark.content_hash, mark.material, mark.status = (
                    fresh.content_hash,
                    fresh.material,
                    fresh.status,
                )
                mark.expired, mark.seen_at = fresh.expired, now
            if kind == "new" and entry.category:
                news[entry.category].append(entry)
            elif kind in ("changed", "expired", "withdrawn"):
                b = await self._make(
                    session, kind, entry, entry_topic(entry.id), f"{kind}:{entry.id}:{fresh.material}"
                )
                if b is not None:
                    made.append(b)
        for category, entries in news.items():
            made += await self._news(session, category, entries)
        return made

    @staticmethod
    def _kind(entry: Entry, mark: EntryMark | None) -> str | None:
        was_published = mark is not None and mark.status == "published"
        if entry.status == "published":
            if not was_published:
                return "new"
            return "changed" if mark is not None and mark.material != material(entry) else None
        if not was_published:
            return None
        return "expired" if entry.status == "expired" else "withdrawn"

    async def _news(self, session: AsyncSession, category: str, entries: list[Entry]) -> list[Broadcast]:
        topic = category_topic(category)
        if len(entries) <= self.settings.max_new_per_scan:
            made = [await self._make(session, "new", e, topic, f"new:{e.id}") for e in entries]
            return [b for b in made if b is not None]
        # A bulk import: one broadcast naming a few, not hundreds of pushes.
        ids = sorted(e.id for e in entries)
        key = "batch:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()
        first = entries[0]
        b = await self._make(session, "batch", first, topic, key)
        if b is None:
            return []
        b.entry_id = None
        b.title = f"「{category}」新增 {len(entries)} 条内容"
        b.summary = "、".join(entry_name(e)[:30] for e in entries[:3]) + ("等" if len(entries) > 3 else "")
        b.source_line = "来源：本局知识库"
        b.payload = {
            "entry_ids": [e.id for e in entries[:BATCH_TITLES]],
            "titles": [entry_name(e) for e in entries[:BATCH_TITLES]],
            "count": len(entries),
        }
        return [b]

    async def _make(
        self, session: AsyncSession, kind: str, entry: Entry, topic: str, key: str
    ) -> Broadcast | None:
        """A broadcast for ``topic`` when someone subscribes to it (nobody asked: nothing to review)."""
        if not await session.scalar(select(Subscription.id).where(Subscription.topic == topic).limit(1)):
            return None
        published = _aware(entry.updated_at)
        b = Broadcast(
            change_key=key[:300],
            kind=kind,
            topic=topic,
            entry_id=entry.id,
            category=entry.category,
            title=entry_name(entry),
            summary=self._summary(kind, entry),
            source_line=citation(entry),
            payload={},
            status="pending",
            published_at=published,
            deadline_at=published + timedelta(hours=self.settings.deadline_hours),
            created_at=utcnow(),
        )
        session.add(b)
        await session.flush()
        log.info("broadcast created", extra={"broadcast": b.id, "kind": kind})
        return b

    @staticmethod
    def _summary(kind: str, entry: Entry) -> str:
        if kind == "expired":
            until = f"有效期至 {entry.valid_until}，" if entry.valid_until else ""
            return f"该内容{until}已失效，仅供参考，请以现行规定为准。"
        if kind == "withdrawn":
            return "该内容已撤回，不再作为现行依据。"
        return summary_lines(entry)

    async def _date_expiries(self, session: AsyncSession, now: datetime) -> list[Broadcast]:
        """Followed entries whose valid-until date has just passed (no one edited them)."""
        today = local_today(self.tz, now).isoformat()
        rows = await session.execute(
            select(Entry, EntryMark)
            .join(EntryMark, EntryMark.entry_id == Entry.id)
            .where(
                EntryMark.expired.is_(False),
                Entry.status == "published",
                Entry.valid_until != "",
                Entry.valid_until < today,
                Entry.id.in_(
                    select(func.substr(Subscription.topic, 3)).where(Subscription.topic.like("e:%"))
                ),
            )
        )
        made = []
        for entry, mark in rows:
            if not is_expired(entry, date.fromisoformat(today)):
                continue
            mark.expired = True
            b = await self._make(
                session, "expired", entry, entry_topic(entry.id), f"expired:{entry.id}:{entry.valid_until}"
            )
            if b is not None:
                b.published_at = now  # the clock starts when the date passed, not when it was written
                b.deadline_at = now + timedelta(hours=self.settings.deadline_hours)
                made.append(b)
        return made


# -- review, release, digest, overdue --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingView:
    """A broadcast awaiting review, as the console shows it."""

    broadcast: Broadcast
    subscribers: int
    left: timedelta

    @property
    def overdue(self) -> bool:
        return self.left <= timedelta(0)


class BroadcastService:
    """Releases broadcasts to their subscribers, and lets staff review them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: SubscriptionSettings,
        timezone: str,
        staff_targets: Sequence[ChannelRef] = (),
        wake: Callable[[], None] = lambda: None,
        windows: Mapping[str, float] | None = None,
    ) -> None:
        """``windows``: channels that let the bot write first only for so many seconds after the
        visitor's last contact (WeChat: 48 hours); a push outside it is held for the next contact."""
        self.sessions = sessions
        self.settings = settings
        self.tz = ZoneInfo(timezone)
        self.staff_targets = list(staff_targets)
        self.wake = wake
        self.windows = dict(windows or {})
        self.scanner = ChangeScanner(sessions, settings, timezone, self.release)

    async def release(self, session: AsyncSession, b: Broadcast, staff: str = "") -> int:
        """Deliveries (and outbox rows) for every current subscriber of ``b``, once: the status changes
        from pending to sent only in the transaction that writes them."""
        now = utcnow()
        done = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == b.id, Broadcast.status == "pending")
            .values(status="sent", released_at=now, reviewed_by=staff[:100])
            .execution_options(synchronize_session=False)
        )
        if cast("CursorResult[Any]", done).rowcount != 1:
            return 0
        subs = (
            await session.execute(
                select(
                    Subscription.id,
                    Subscription.conversation_id,
                    Subscription.mode,
                    Conversation.channel,
                    Conversation.chat_ref,
                    Conversation.last_seen_at,
                )
                .join(Conversation, Conversation.id == Subscription.conversation_id)
                .where(Subscription.topic == b.topic)
                .order_by(Subscription.id)
            )
        ).all()
        items: list[OutboxItem | None] = []
        modes: list[str] = []
        for sub_id, _, mode, channel, chat_ref, seen in subs:
            if mode == "instant" and self.closed(channel, seen, now):
                mode = "held"  # sent with the visitor's next contact (``on_contact``)
            modes.append(mode)
            if mode == "instant":
                items.append(
                    enqueue(
                        session,
                        ChannelRef(channel, chat_ref),
                        push_reply(b, sub_id),
                        kind="broadcast",
                        priority=PRIORITY_BROADCAST,
                    )
                )
            else:
                items.append(None)
        await session.flush()
        session.add_all(
            Delivery(
                broadcast_id=b.id,
                conversation_id=conv_id,
                mode=mode,
                outbox_id=item.id if item is not None else None,
                created_at=now,
            )
            for (_, conv_id, *_), mode, item in zip(subs, modes, items, strict=True)
        )
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == b.id)
            .values(recipients=len(subs))
            .execution_options(synchronize_session=False)
        )
        log.info("broadcast released", extra={"broadcast": b.id, "recipients": len(subs)})
        return len(subs)

    def closed(self, channel: str, last_seen: datetime | None, now: datetime) -> bool:
        """The channel does not let the bot write first to a visitor last seen at ``last_seen``."""
        window = self.windows.get(channel)
        if window is None:
            return False
        return last_seen is None or (now - _aware(last_seen)).total_seconds() > window

    async def on_contact(self, session: AsyncSession, conv: Conversation) -> None:
        """The visitor wrote or pressed something (``Conversations.conversation``): note when, and on
        a channel with a window send what was held for them, in one message."""
        now = utcnow()
        seen = conv.last_seen_at
        if seen is None or now - _aware(seen) >= SEEN_EVERY:
            conv.last_seen_at = now
        if conv.channel not in self.windows:
            return
        rows = (
            await session.execute(
                select(Delivery, Broadcast)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .where(Delivery.conversation_id == conv.id, Delivery.mode == "held", _still_subscribed())
                .order_by(Broadcast.id)
                .limit(DIGEST_ITEMS)
            )
        ).all()
        if not rows:
            return
        subs = await self._topics(session, conv.id)
        held = [b for _, b in rows]
        reply = (
            push_reply(held[0], subs[held[0].topic])
            if len(held) == 1
            else digest_reply(held, subs, local_today(self.tz, now))
        )
        item = enqueue(
            session,
            ChannelRef(conv.channel, conv.chat_ref),
            reply,
            kind="broadcast",
            priority=PRIORITY_BROADCAST,
        )
        await session.flush()
        for delivery, _ in rows:
            delivery.outbox_id, delivery.mode = item.id, "released"
        log.info("held pushes released", extra={"conversation": conv.id, "pushes": len(rows)})

    async def _topics(self, session: AsyncSession, conv_id: int) -> dict[str, int]:
        """The conversation's subscriptions: topic -> subscription id."""
        rows = await session.execute(
            select(Subscription.topic, Subscription.id).where(Subscription.conversation_id == conv_id)
        )
        return {topic: sub_id for topic, sub_id in rows}

    async def approve(self, broadcast_id: int, staff: str) -> int:
        """Staff confirmed: send it now; returns the number of recipients."""
        async with self.sessions() as session, session.begin():
            b = await self._pending(session, broadcast_id)
            count = await self.release(session, b, staff)
        self.wake()
        return count

    async def drop(self, broadcast_id: int, staff: str) -> None:
        """Staff dropped it: nobody receives it."""
        async with self.sessions() as session, session.begin():
            b = await self._pending(session, broadcast_id)
            b.status, b.reviewed_by, b.released_at = "dropped", staff[:100], utcnow()

    async def _pending(self, session: AsyncSession, broadcast_id: int) -> Broadcast:
        b = await session.get(Broadcast, broadcast_id)
        if b is None:
            raise BroadcastError(f"没有推送 #{broadcast_id}")
        if b.status != "pending":
            raise BroadcastError(f"推送 #{broadcast_id} 已处理（{b.status}）")
        return b

    async def pending(self, now: datetime | None = None) -> list[PendingView]:
        """Broadcasts awaiting review, the most urgent first, with their subscribers and time left."""
        now = now or utcnow()
        async with self.sessions() as session:
            rows = list(
                await session.scalars(
                    select(Broadcast)
                    .where(Broadcast.status == "pending")
                    .order_by(Broadcast.deadline_at, Broadcast.id)
                )
            )
            counts = dict(
                (topic, int(n))
                for topic, n in await session.execute(
                    select(Subscription.topic, func.count())
                    .where(Subscription.topic.in_({b.topic for b in rows}))
                    .group_by(Subscription.topic)
                )
            )
        return [PendingView(b, counts.get(b.topic, 0), _aware(b.deadline_at) - now) for b in rows]

    async def recent(self, limit: int = 50) -> list[Broadcast]:
        """The latest reviewed or released broadcasts."""
        async with self.sessions() as session:
            return list(
                await session.scalars(
                    select(Broadcast)
                    .where(Broadcast.status != "pending")
                    .order_by(Broadcast.id.desc())
                    .limit(limit)
                )
            )

    async def notice_overdue(self, now: datetime | None = None) -> int:
        """Post each broadcast past its deadline and still pending to the staff channel, once."""
        now = now or utcnow()
        if not self.settings.review:
            return 0
        posted = 0
        async with self.sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(Broadcast).where(
                        Broadcast.status == "pending",
                        Broadcast.deadline_at <= now,
                        Broadcast.overdue_noticed_at.is_(None),
                    )
                )
            )
            for b in rows:
                b.overdue_noticed_at = now
                for ref in self.staff_targets:
                    enqueue(
                        session,
                        ref,
                        staff_overdue_reply(b, self.settings.deadline_hours),
                        kind="staff_notice",
                    )
                posted += 1
        if posted and self.staff_targets:
            self.wake()
        return posted

    async def send_digests(self, now: datetime | None = None) -> int:
        """At ``digest_hour`` (staff time zone), once a day: each digest subscriber's pushes of the day
        in one message. Returns the number of messages written."""
        now = now or utcnow()
        local = now.astimezone(self.tz)
        if local.hour < self.settings.digest_hour:
            return 0
        day = local.date()
        try:
            async with self.sessions() as session, session.begin():
                if not await self._claim_day(session, day, now):
                    return 0
                written = await self._write_digests(session, day)
        except IntegrityError:
            return 0  # another worker claimed the day at the same moment
        if written:
            self.wake()
        return written

    async def _claim_day(self, session: AsyncSession, day: date, now: datetime) -> bool:
        state = await session.get(JobState, DIGEST_DAY)
        if state is None:
            session.add(JobState(name=DIGEST_DAY, value=day.isoformat(), updated_at=now))
            await session.flush()
            return True
        done = await session.execute(
            update(JobState)
            .where(JobState.name == DIGEST_DAY, JobState.value < day.isoformat())
            .values(value=day.isoformat(), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return cast("CursorResult[Any]", done).rowcount == 1

    async def _write_digests(self, session: AsyncSession, day: date) -> int:
        rows = (
            await session.execute(
                select(Delivery, Broadcast, Conversation)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .join(Conversation, Conversation.id == Delivery.conversation_id)
                .where(Delivery.mode == "digest", Delivery.outbox_id.is_(None), _still_subscribed())
                .order_by(Delivery.conversation_id, Broadcast.id)
            )
        ).all()
        per_conv: dict[int, list[tuple[Delivery, Broadcast, Conversation]]] = defaultdict(list)
        for row in rows:
            per_conv[row[0].conversation_id].append(tuple(row))  # type: ignore[arg-type]
        now = utcnow()
        written = 0
        for conv_id, items in per_conv.items():
            conv = items[0][2]
            if self.closed(conv.channel, conv.last_seen_at, now):
                for delivery, _, _ in items:
                    delivery.mode = "held"  # the day's digest goes with the visitor's next contact
                continue
            subs = await self._topics(session, conv_id)
            reply = digest_reply([b for _, b, _ in items], subs, day)
            item = enqueue(
                session,
                ChannelRef(conv.channel, conv.chat_ref),
                reply,
                kind="broadcast",
                priority=PRIORITY_BROADCAST,
            )
            await session.flush()
            for delivery, _, _ in items:
                delivery.outbox_id = item.id
            written += 1
        return written


def _still_subscribed() -> Any:
    """A delivery's visitor still subscribes to its broadcast's topic: an unsubscribe stops what was
    not yet sent (for a query joining ``Delivery`` and ``Broadcast``)."""
    return (
        select(Subscription.id)
        .where(
            Subscription.conversation_id == Delivery.conversation_id,
            Subscription.topic == Broadcast.topic,
        )
        .exists()
    )


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

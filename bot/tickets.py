"""Human handoff: open, claim, reply, close, save as knowledge. Each step is one transaction, and every
message it causes (a staff-chat post, the reply to the user) is an outbox row in that transaction."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import StaffSettings
from bot.hours import WorkingHours
from bot.messages import Button, ChannelRef, Reply
from bot.outbox import enqueue
from bot.privacy import mask
from bot.ratings import rating_buttons
from bot.routing import route
from knowledge.answers import answer_text, citation
from knowledge.models import (
    Conversation,
    Entry,
    Message,
    OutboxItem,
    Ticket,
    TicketNote,
    TicketPost,
    TicketReason,
    utcnow,
)
from knowledge.store import KnowledgeBase
from knowledge.text import storable

OPEN_STATES = ("open", "claimed")
QUESTION_CHARS = 120  # of a question in an alert
REASON_WORDS = {
    "no_match": "机器人无法回答",
    "user_request": "用户要求人工",
    "not_helpful": "用户反馈答案没解决",
}

DONE_STATES = ("answered", "closed", "cancelled")
SEARCH_LIMIT = 500
MAX_NOTE_CHARS = 4000


class TicketError(ValueError):
    """A ticket action that cannot be done (unknown ticket, already closed, no answer yet...)."""


@dataclass(frozen=True, slots=True)
class QueueItem:
    """An open ticket as the staff queue shows it."""

    ticket: Ticket
    conversation: Conversation
    waiting_minutes: float
    working_minutes: float
    overdue: bool = False


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What the console's ticket list shows: ``status`` is a status, ``open`` (open or claimed), ``done``
    (answered, closed or cancelled) or ``all``; ``q`` searches ticket numbers, questions and transcripts."""

    status: str = "open"
    office: str = ""
    assignee: str = ""
    channel: str = ""
    overdue: bool = False
    q: str = ""


def staff_post(ticket: Ticket, conv: Conversation, header: str = "新工单") -> Reply:
    """The staff-chat message for a ticket: number, question, who asked, candidates, actions."""
    lines = [
        f"【{header} #{ticket.id}】",
        f"提问：{mask(ticket.question)}",  # in full only on the console's ticket page
        f"来自：{conv.display_name or '访客'}（{conv.channel}）",
    ]
    if ticket.office:
        lines.append(f"科室：{ticket.office}（{ticket.route_reason}）")
    if ticket.candidates:
        lines.append("机器人候选：")
        lines += [
            f"  {i}. {c['title']}（{c['score']:.2f}，{c['entry_id']}）"
            for i, c in enumerate(ticket.candidates, 1)
        ]
    lines.append("回复本消息即答复用户。")
    buttons = [
        [
            Button("认领", f"claim:{ticket.id}"),
            Button("关闭", f"close:{ticket.id}"),
            Button("存为知识", f"save:{ticket.id}"),
        ]
    ]
    for i, c in enumerate(ticket.candidates[:3]):
        buttons.append([Button(f"存为「{c['title'][:16]}」的问法", f"save:{ticket.id}:{i}")])
    return Reply("\n".join(lines), buttons=buttons, kind="staff_post", ticket_id=ticket.id)


def new_ticket_alert(ticket: Ticket, channel: str) -> Reply:
    """The alert for a ticket just opened (alert targets): no name, the question masked of personal data."""
    lines = [
        f"新工单 #{ticket.id}",
        f"问题：{mask(ticket.question)[:QUESTION_CHARS]}",
        f"来源：{channel}；原因：{REASON_WORDS.get(ticket.reason, ticket.reason)}",
    ]
    return Reply("\n".join(lines), kind="alert", ticket_id=ticket.id)


class TicketService:
    """Ticket lifecycle over the database; staff notifications go to ``staff_targets``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        kb: KnowledgeBase,
        staff: StaffSettings,
        staff_targets: Sequence[ChannelRef] = (),
        wake: Callable[[], None] = lambda: None,
        alert_targets: Sequence[ChannelRef] = (),
    ) -> None:
        self.sessions = sessions
        self.kb = kb
        self.staff = staff
        self.hours = WorkingHours.parse(staff.working_hours, staff.timezone)
        self.staff_targets = list(staff_targets)
        self.alert_targets = list(alert_targets)  # channels that only inform staff (WeCom): bot.alerts
        self.wake = wake

    # -- user side ------------------------------------------------------------------------------------
    async def open(
        self,
        session: AsyncSession,
        conv: Conversation,
        question: str,
        reason: TicketReason,
        candidates: list[dict],
    ) -> Ticket:
        """Open a ticket in the caller's transaction and queue its staff-chat posts."""
        where = await route(session, candidates, self.staff)
        ticket = Ticket(
            conversation_id=conv.id,
            question=question[:2000],
            reason=reason,
            candidates=candidates,
            office=where.office,
            route_reason=where.reason,
        )
        session.add(ticket)
        await session.flush()
        for ref in self.staff_targets:
            enqueue(session, ref, staff_post(ticket, conv), kind="staff_post", ticket_id=ticket.id)
        for ref in self.alert_targets:
            enqueue(session, ref, new_ticket_alert(ticket, conv.channel), kind="alert", ticket_id=ticket.id)
        return ticket

    async def open_for(self, session: AsyncSession, conv: Conversation) -> Ticket | None:
        """The conversation's open ticket, if any (newest)."""
        return await session.scalar(
            select(Ticket)
            .where(Ticket.conversation_id == conv.id, Ticket.status.in_(OPEN_STATES))
            .order_by(Ticket.id.desc())
            .limit(1)
        )

    async def add_user_message(
        self, session: AsyncSession, ticket: Ticket, conv: Conversation, text: str
    ) -> Message:
        """A further message from the user joins the ticket and is passed on to the staff thread."""
        added = Message(
            conversation_id=conv.id, direction="in", author="user", text=text, ticket_id=ticket.id
        )
        session.add(added)
        posts = list(await session.scalars(select(TicketPost).where(TicketPost.ticket_id == ticket.id)))
        note = Reply(
            f"【工单 #{ticket.id} 用户补充】\n{mask(text)}", kind="staff_followup", ticket_id=ticket.id
        )
        targets = {(p.channel, p.chat_ref): p.message_ref for p in posts}
        for ref in self.staff_targets:
            reply_to = targets.get((ref.channel, ref.chat_ref))
            enqueue(session, ref, note, kind="staff_followup", ticket_id=ticket.id, reply_to=reply_to)
        return added

    async def cancel(self, conv: Conversation, ticket_id: int | None = None) -> Ticket | None:
        """Withdraw the user's open ticket (the newest, or the one named)."""
        async with self.sessions() as session, session.begin():
            stmt = select(Ticket).where(Ticket.conversation_id == conv.id, Ticket.status.in_(OPEN_STATES))
            if ticket_id is not None:
                stmt = stmt.where(Ticket.id == ticket_id)
            ticket = await session.scalar(stmt.order_by(Ticket.id.desc()).limit(1))
            if ticket is None:
                return None
            ticket.status, ticket.closed_at = "cancelled", utcnow()
            for ref in self.staff_targets:
                enqueue(
                    session, ref, Reply(f"工单 #{ticket.id} 已由用户撤回。", kind="info"), ticket_id=ticket.id
                )
        self.wake()
        return ticket

    async def of_conversation(self, conv: Conversation, only_open: bool = True) -> list[Ticket]:
        """The conversation's tickets, newest first."""
        async with self.sessions() as session:
            stmt = select(Ticket).where(Ticket.conversation_id == conv.id)
            if only_open:
                stmt = stmt.where(Ticket.status.in_(OPEN_STATES))
            return list(await session.scalars(stmt.order_by(Ticket.id.desc()).limit(20)))

    def expected_reply(self, at: datetime | None = None) -> str:
        """When the user can expect an answer, in words, inside or outside working hours."""
        at = at or utcnow()
        if self.hours.is_open(at):
            return f"现在是工作时间，工作人员一般会在 {self.staff.sla_minutes} 分钟内答复。"
        nxt = self.hours.next_open(at)
        return f"现在是非工作时间，工作人员将在下一个工作时段（{nxt:%m月%d日 %H:%M} 起）尽快答复。"

    # -- staff side -----------------------------------------------------------------------------------
    async def get(self, ticket_id: int) -> tuple[Ticket, Conversation]:
        async with self.sessions() as session:
            return await self._load(session, ticket_id)

    async def _load(self, session: AsyncSession, ticket_id: int) -> tuple[Ticket, Conversation]:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketError(f"没有工单 #{ticket_id}")
        conv = await session.get(Conversation, ticket.conversation_id)
        assert conv is not None
        return ticket, conv

    async def by_post(self, channel: str, chat_ref: str, message_ref: str) -> int | None:
        """The ticket a staff-chat message belongs to (replying to it answers the ticket)."""
        async with self.sessions() as session:
            post = await session.get(TicketPost, (channel, chat_ref, message_ref))
            return post.ticket_id if post else None

    async def add_post(self, channel: str, chat_ref: str, message_ref: str, ticket_id: int) -> None:
        """Remember a staff-chat message as belonging to a ticket."""
        async with self.sessions() as session, session.begin():
            if await session.get(TicketPost, (channel, chat_ref, message_ref)) is None:
                session.add(
                    TicketPost(
                        channel=channel, chat_ref=chat_ref, message_ref=message_ref, ticket_id=ticket_id
                    )
                )

    async def undelivered(self, ticket_id: int) -> list[str]:
        """Why replies to the user of this ticket could not be delivered (the outbox gave up on them),
        e.g. WeChat's 48-hour window; oldest first."""
        conv_channel = select(Conversation.channel).join(Ticket, Ticket.conversation_id == Conversation.id)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(OutboxItem.last_error)
                .where(
                    OutboxItem.ticket_id == ticket_id,
                    OutboxItem.kind == "reply",
                    OutboxItem.status == "failed",
                    OutboxItem.channel == conv_channel.where(Ticket.id == ticket_id).scalar_subquery(),
                )
                .order_by(OutboxItem.id)
            )
            return [r or "发送失败" for r in rows]

    async def claim(self, ticket_id: int, staff_name: str) -> Ticket:
        async with self.sessions() as session, session.begin():
            ticket, _ = await self._load(session, ticket_id)
            if ticket.status not in OPEN_STATES:
                raise TicketError(f"工单 #{ticket_id} 已{_STATUS_WORDS.get(ticket.status, ticket.status)}")
            ticket.status, ticket.claimed_by = "claimed", staff_name
        return ticket

    async def reply(self, ticket_id: int, staff_name: str, text: str) -> Ticket:
        """The staff answer: stored, sent to the user on their channel, ticket answered. Tickets merged
        into this one get the same answer, each on its own user's channel."""
        text = storable(text).strip()
        if not text:
            raise TicketError("答复内容不能为空")
        async with self.sessions() as session, session.begin():
            ticket, conv = await self._load(session, ticket_id)
            if ticket.status in ("closed", "cancelled"):
                raise TicketError(f"工单 #{ticket_id} 已{_STATUS_WORDS[ticket.status]}，不能再答复")
            for t, c in [(ticket, conv), *await self._merged(session, ticket)]:
                await self._deliver(session, t, c, staff_name, text)
        self.wake()
        return ticket

    async def _merged(self, session: AsyncSession, ticket: Ticket) -> list[tuple[Ticket, Conversation]]:
        """The still-open tickets merged into ``ticket``, with their conversations."""
        rows = await session.execute(
            select(Ticket, Conversation)
            .join(Conversation, Conversation.id == Ticket.conversation_id)
            .where(Ticket.merged_into == ticket.id, Ticket.status.in_(OPEN_STATES))
            .order_by(Ticket.id)
        )
        return [(t, c) for t, c in rows.all()]

    async def _deliver(
        self,
        session: AsyncSession,
        ticket: Ticket,
        conv: Conversation,
        staff_name: str,
        text: str,
        source_line: str = "",
        entry_id: str | None = None,
    ) -> None:
        """Store a staff answer on one ticket and queue it to the ticket's user."""
        now = utcnow()
        ticket.status, ticket.answer, ticket.answered_by, ticket.answered_at = (
            "answered",
            text,
            staff_name,
            now,
        )
        ticket.claimed_by = ticket.claimed_by or staff_name
        msg = Message(
            conversation_id=conv.id,
            direction="out",
            author="staff",
            text=text + (f"\n{source_line}" if source_line else ""),
            status="staff",
            entry_id=entry_id,
            ticket_id=ticket.id,
        )
        session.add(msg)
        await session.flush()
        reply = Reply(
            f"工作人员答复（工单 #{ticket.id}）：\n{text}",
            source_line=source_line,
            kind="staff_reply",
            ticket_id=ticket.id,
            message_id=msg.id,
            buttons=rating_buttons(msg.id),  # 满意 / 一般 / 不满意
        )
        msg.payload = {"reply": reply.to_json()}
        enqueue(session, ChannelRef(conv.channel, conv.chat_ref), reply, ticket_id=ticket.id)

    async def answer_with_entry(self, ticket_id: int, staff_name: str, entry_id: str) -> Ticket:
        """Send a published entry's answer with its citation (to merged tickets too) and close."""
        async with self.sessions() as session, session.begin():
            ticket, conv = await self._load(session, ticket_id)
            if ticket.status in ("closed", "cancelled"):
                raise TicketError(f"工单 #{ticket_id} 已{_STATUS_WORDS[ticket.status]}，不能再答复")
            entry = await session.get(Entry, entry_id)
            if entry is None or entry.status != "published":
                raise TicketError(f"没有已发布的知识条目 {entry_id}")
            text = answer_text(entry, None).strip()
            if not text:
                raise TicketError(f"知识条目 {entry_id} 没有可发送的答案")
            now = utcnow()
            for t, c in [(ticket, conv), *await self._merged(session, ticket)]:
                await self._deliver(session, t, c, staff_name, text, citation(entry), entry.id)
                t.status, t.closed_at = "closed", now
        self.wake()
        return ticket

    async def close(self, ticket_id: int, staff_name: str) -> Ticket:
        async with self.sessions() as session, session.begin():
            ticket, conv = await self._load(session, ticket_id)
            if ticket.status in ("closed", "cancelled"):
                raise TicketError(f"工单 #{ticket_id} 已{_STATUS_WORDS[ticket.status]}")
            merged = await self._merged(session, ticket) if ticket.merged_into is None else []
            for t, c in [(ticket, conv), *merged]:
                was_answered = t.status == "answered"
                t.status, t.closed_at = "closed", utcnow()
                t.claimed_by = t.claimed_by or staff_name
                if not was_answered:
                    note = Reply(
                        f"您的问题（工单 #{t.id}）已由工作人员关闭。如仍需帮助，请重新提问。", kind="info"
                    )
                    enqueue(session, ChannelRef(c.channel, c.chat_ref), note, ticket_id=t.id)
        self.wake()
        return ticket

    async def queue(self, now: datetime | None = None, office_first: str = "") -> list[QueueItem]:
        """Open tickets from every channel (duplicates merged into another left out), oldest first;
        with ``office_first``, that office's tickets before the others."""
        items = await self.search(TicketFilter(status="open"), now)
        if office_first:
            items.sort(key=lambda q: q.ticket.office != office_first)
        return items

    async def search(self, f: TicketFilter, now: datetime | None = None) -> list[QueueItem]:
        """Tickets matching the filter: open ones oldest first, others newest first."""
        now = now or utcnow()
        stmt = select(Ticket, Conversation).join(Conversation, Conversation.id == Ticket.conversation_id)
        if f.status == "open":
            stmt = stmt.where(Ticket.status.in_(OPEN_STATES), Ticket.merged_into.is_(None))
        elif f.status == "done":
            stmt = stmt.where(Ticket.status.in_(DONE_STATES))
        elif f.status != "all":
            stmt = stmt.where(Ticket.status == f.status)
        if f.office:
            stmt = stmt.where(Ticket.office == f.office)
        if f.assignee:
            stmt = stmt.where(Ticket.claimed_by == ("" if f.assignee == "-" else f.assignee))
        if f.channel:
            stmt = stmt.where(Conversation.channel == f.channel)
        if f.q.strip():
            stmt = stmt.where(_matches(f.q.strip()))
        newest_first = f.status not in ("open", "claimed")
        order = (
            (Ticket.created_at.desc(), Ticket.id.desc()) if newest_first else (Ticket.created_at, Ticket.id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(stmt.order_by(*order).limit(SEARCH_LIMIT))).all()
        items = [self.item(t, c, now) for t, c in rows]
        return [q for q in items if q.overdue] if f.overdue else items

    def item(self, t: Ticket, c: Conversation, now: datetime) -> QueueItem:
        """A ticket with its waiting times and overdue flag at ``now``."""
        working = self.hours.working_minutes(_aware(t.created_at), now)
        return QueueItem(
            t,
            c,
            (now - _aware(t.created_at)).total_seconds() / 60,
            working,
            t.status in OPEN_STATES and working > self.staff.sla_minutes,
        )

    # -- assignment, notes, merging ---------------------------------------------------------------------
    async def unclaim(self, ticket_id: int, staff_name: str) -> Ticket:
        """Put a claimed ticket back in the queue, unassigned."""
        async with self.sessions() as session, session.begin():
            ticket, _ = await self._load(session, ticket_id)
            if ticket.status != "claimed":
                raise TicketError(f"工单 #{ticket_id} 没有被认领")
            previous = ticket.claimed_by
            ticket.status, ticket.claimed_by = "open", ""
            self._note(session, ticket, staff_name, f"取消认领（原认领人：{previous}）")
        return ticket

    async def assign(
        self,
        ticket_id: int,
        staff_name: str,
        *,
        office: str = "",
        colleague: str = "",
        colleague_office: str = "",
    ) -> Ticket:
        """Reassign to an office (back in its queue, unclaimed) or to a colleague (claimed for them, in
        their office). The change is noted on the ticket."""
        async with self.sessions() as session, session.begin():
            ticket, _ = await self._load(session, ticket_id)
            if ticket.status not in OPEN_STATES:
                raise TicketError(
                    f"工单 #{ticket_id} 已{_STATUS_WORDS.get(ticket.status, ticket.status)}，不能转交"
                )
            if colleague:
                ticket.status, ticket.claimed_by = "claimed", colleague
                if colleague_office:
                    ticket.office = colleague_office
                ticket.route_reason = f"{staff_name} 转交给 {colleague}"
                self._note(session, ticket, staff_name, f"转交给同事 {colleague}")
            elif office:
                if office not in self.staff.offices:
                    raise TicketError(f"没有科室「{office}」")
                previous = ticket.office
                ticket.status, ticket.claimed_by, ticket.office = "open", "", office
                ticket.route_reason = f"{staff_name} 从 {previous or '未分配'} 转交给 {office}"
                self._note(session, ticket, staff_name, f"转交给科室 {office}（原：{previous or '未分配'}）")
            else:
                raise TicketError("请选择要转交的科室或同事")
        return ticket

    def _note(self, session: AsyncSession, ticket: Ticket, author: str, text: str) -> None:
        session.add(TicketNote(ticket_id=ticket.id, author=author, text=text))

    async def add_note(self, ticket_id: int, author: str, text: str) -> TicketNote:
        """An internal note (staff only, never sent to the user)."""
        text = storable(text).strip()
        if not text or len(text) > MAX_NOTE_CHARS:
            raise TicketError(f"备注需要 1-{MAX_NOTE_CHARS} 字")
        async with self.sessions() as session, session.begin():
            ticket, _ = await self._load(session, ticket_id)
            note = TicketNote(ticket_id=ticket.id, author=author, text=text)
            session.add(note)
        return note

    async def notes(self, ticket_id: int) -> list[TicketNote]:
        """A ticket's internal notes, oldest first."""
        async with self.sessions() as session:
            return list(
                await session.scalars(
                    select(TicketNote).where(TicketNote.ticket_id == ticket_id).order_by(TicketNote.id)
                )
            )

    async def merge(self, target_id: int, duplicate_ids: Sequence[int], staff_name: str) -> list[int]:
        """Merge open duplicates into ``target_id``: they leave the queue, and the answer to the target
        goes to each of their users on their own channel. Returns the ids merged."""
        ids = sorted({i for i in duplicate_ids if i != target_id})
        if not ids:
            raise TicketError("请选择要合并的重复工单")
        async with self.sessions() as session, session.begin():
            target, _ = await self._load(session, target_id)
            if target.status not in OPEN_STATES or target.merged_into is not None:
                raise TicketError(f"工单 #{target_id} 不是待处理的工单，不能合并到它")
            for tid in ids:
                dup, _ = await self._load(session, tid)
                if dup.status not in OPEN_STATES or dup.merged_into is not None:
                    raise TicketError(f"工单 #{tid} 不是待处理的工单，不能合并")
                # Tickets already merged into the duplicate follow it to the target.
                for t, _c in await self._merged(session, dup):
                    t.merged_into = target.id
                dup.merged_into = target.id
                self._note(session, dup, staff_name, f"作为重复工单合并到 #{target.id}")
            self._note(session, target, staff_name, "合并了重复工单 " + "、".join(f"#{i}" for i in ids))
        return ids

    async def merged_into(self, ticket_id: int) -> list[tuple[Ticket, Conversation]]:
        """The tickets merged into this one (any state), with their conversations."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Ticket, Conversation)
                .join(Conversation, Conversation.id == Ticket.conversation_id)
                .where(Ticket.merged_into == ticket_id)
                .order_by(Ticket.id)
            )
            return [(t, c) for t, c in rows.all()]

    async def overdue(self, now: datetime | None = None) -> list[QueueItem]:
        """Open tickets past the SLA in working minutes and not reminded since they became overdue."""
        now = now or utcnow()
        return [
            q
            for q in await self.queue(now)
            if q.working_minutes > self.staff.sla_minutes and q.ticket.reminded_at is None
        ]

    async def mark_reminded(self, ticket_ids: Sequence[int]) -> None:
        async with self.sessions() as session, session.begin():
            for tid in ticket_ids:
                row = await session.get(Ticket, tid)
                if row is not None:
                    row.reminded_at = utcnow()


_STATUS_WORDS = {"closed": "关闭", "cancelled": "撤回", "answered": "答复"}


def _matches(q: str) -> ColumnElement[bool]:
    """Tickets whose number, question or conversation transcript contains ``q`` (``#12`` or ``12``: that
    ticket too)."""
    pattern = f"%{_escape_like(q)}%"
    in_transcript = exists().where(
        Message.conversation_id == Ticket.conversation_id, Message.text.ilike(pattern, escape="\\")
    )
    clauses = [Ticket.question.ilike(pattern, escape="\\"), in_transcript]
    digits = q.lstrip("#")
    if digits.isdigit() and len(digits) <= 9:
        clauses.append(Ticket.id == int(digits))
    return or_(*clauses)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _aware(dt: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were stored in UTC.
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def esc(text: str) -> str:
    """HTML-escape user or knowledge text (for channels that render HTML)."""
    return html.escape(text, quote=False)

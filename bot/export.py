"""CSV export of tickets and conversations for a date range (the annual disclosure report needs the
figures and the record). Personal data is masked (``bot.privacy``) and names left out unless the
export is asked unmasked (admins only, checked by the caller); the contact left with 留言 is masked
always (bot/contact.py). Days are calendar days in the staff
time zone; the file starts with a UTF-8 byte order mark so that spreadsheet programs read Chinese."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import privacy
from bot.contact import masked as masked_contact
from knowledge.models import Conversation, Message, Ticket, TicketAccess

Exported = TypeVar("Exported", Ticket, Message)
MAX_DAYS = 366
BATCH = 1000
TICKET_HEADERS = [
    "工单号", "创建时间", "渠道", "提问人", "科室", "状态", "转人工原因", "问题", "认领人", "答复人", "答复时间",
    "答复", "关闭时间", "合并到", "联系方式",
]  # fmt: skip
MESSAGE_HEADERS = [
    "消息号",
    "时间",
    "会话号",
    "渠道",
    "提问人",
    "方向",
    "作者",
    "结果",
    "条目",
    "工单号",
    "内容",
]


class ExportError(ValueError):
    """A date range that cannot be exported."""


def day_range(start: str, end: str, tz: str, today: date) -> tuple[datetime, datetime]:
    """``[start, end]`` (YYYY-MM-DD, inclusive, staff time zone) as UTC datetimes ``[from, to)``."""
    try:
        first = date.fromisoformat(start) if start else today - timedelta(days=29)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise ExportError("日期格式应为 YYYY-MM-DD") from None
    if last < first:
        raise ExportError("结束日期早于开始日期")
    if (last - first).days >= MAX_DAYS:
        raise ExportError(f"一次最多导出 {MAX_DAYS} 天")
    zone = ZoneInfo(tz)
    lo = datetime.combine(first, time(), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return lo, hi


def _row(values: list[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _local(dt: datetime | None, tz: str) -> str:
    if dt is None:
        return ""
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def _cleaner(masked: bool) -> Callable[[str], str]:
    """What a text column goes through: ``privacy.mask`` when the export is masked."""
    return privacy.mask if masked else (lambda s: s)


async def _with_conversations(
    sessions: async_sessionmaker[AsyncSession],
    model: type[Exported],
    lo: datetime,
    hi: datetime,
) -> AsyncIterator[Sequence[Row[Exported, Conversation]]]:
    """The ``model`` rows created in ``[lo, hi)`` with their conversation, ``BATCH`` at a time in id
    order (a session a batch, so a long export holds no transaction open)."""
    last = 0
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(model, Conversation)
                    .join(Conversation, Conversation.id == model.conversation_id)
                    .where(model.created_at >= lo, model.created_at < hi, model.id > last)
                    .order_by(model.id)
                    .limit(BATCH)
                )
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0].id


async def _contacts(sessions: async_sessionmaker[AsyncSession], ticket_ids: list[int]) -> dict[int, str]:
    """The contacts left with these tickets (留言), always masked."""
    async with sessions() as session:
        rows = await session.scalars(
            select(TicketAccess).where(TicketAccess.ticket_id.in_(ticket_ids), TicketAccess.contact != "")
        )
        return {a.ticket_id: masked_contact(a.contact_kind, a.contact) for a in rows}


async def ticket_rows(
    sessions: async_sessionmaker[AsyncSession], lo: datetime, hi: datetime, tz: str, masked: bool
) -> AsyncIterator[str]:
    """The tickets created in ``[lo, hi)`` as CSV lines (header first)."""
    yield "\ufeff" + _row(list(TICKET_HEADERS))
    clean = _cleaner(masked)
    async for rows in _with_conversations(sessions, Ticket, lo, hi):
        contacts = await _contacts(sessions, [t.id for t, _ in rows])
        for t, c in rows:
            yield _row(
                [
                    t.id, _local(t.created_at, tz), c.channel, "" if masked else c.display_name, t.office, t.status,
                    t.reason, clean(t.question), t.claimed_by, t.answered_by, _local(t.answered_at, tz),
                    clean(t.answer), _local(t.closed_at, tz), t.merged_into,
                    contacts.get(t.id, ""),
                ]
            )  # fmt: skip


async def message_rows(
    sessions: async_sessionmaker[AsyncSession], lo: datetime, hi: datetime, tz: str, masked: bool
) -> AsyncIterator[str]:
    """Every message of every conversation in ``[lo, hi)`` as CSV lines (header first)."""
    yield "\ufeff" + _row(list(MESSAGE_HEADERS))
    clean = _cleaner(masked)
    async for rows in _with_conversations(sessions, Message, lo, hi):
        for m, c in rows:
            yield _row(
                [
                    m.id, _local(m.created_at, tz), c.id, c.channel, "" if masked else c.display_name, m.direction,
                    m.author, m.status, m.entry_id, m.ticket_id, clean(m.text),
                ]
            )  # fmt: skip

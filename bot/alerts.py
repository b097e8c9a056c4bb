"""Staff alerts: a new ticket, an overdue ticket and the day's summary, queued for alert targets.

An alert target is a channel that only informs staff (the WeCom group robot): it gets short texts with
the ticket number, never the asker's name, and the question masked of personal data (``bot.privacy``).
Each alert is queued in the outbox (retried there) and recorded in ``sent_alerts``, so an overdue ticket
or a day's summary is posted once per target even with several workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from bot.messages import ChannelRef, Reply
from bot.outbox import enqueue
from bot.periodic import Periodic
from bot.privacy import mask
from bot.stats import Overview, overview
from bot.tickets import QUESTION_CHARS, QueueItem, TicketService
from knowledge.models import SentAlert, utcnow

log = logging.getLogger("policybot.alerts")

CHECK_SECONDS = 60.0


def overdue_alert(item: QueueItem, sla_minutes: int) -> Reply:
    """The alert for a ticket past the SLA."""
    t, conv = item.ticket, item.conversation
    lines = [
        f"超时工单 #{t.id}",
        f"已等待 {int(item.working_minutes)} 分钟（工作时间，时限 {sla_minutes} 分钟）",
        f"问题：{mask(t.question)[:QUESTION_CHARS]}",
        f"来源：{conv.channel}；状态：{'处理中，' + t.claimed_by if t.claimed_by else '无人认领'}",
    ]
    return Reply("\n".join(lines), kind="alert", ticket_id=t.id)


class StaffAlerts:
    """Queues alerts for ``targets``; ``run()`` checks for overdue tickets and the daily summary."""

    def __init__(self, tickets: TicketService, targets: Sequence[ChannelRef], summary_at: str) -> None:
        self.tickets = tickets
        self.sessions = tickets.sessions
        self.targets = list(targets)
        self.tz = ZoneInfo(tickets.staff.timezone)
        hour, minute = (int(p) for p in summary_at.split(":"))
        self.summary_at = time(hour, minute)
        self._loop = Periodic("policybot-alerts", self.check, CHECK_SECONDS, log)

    async def overdue(self, now: datetime | None = None) -> list[int]:
        """Queue one alert per target for each ticket past the SLA; return the tickets alerted now."""
        now = now or utcnow()
        sla = self.tickets.staff.sla_minutes
        items = [q for q in await self.tickets.queue(now) if q.working_minutes > sla]
        alerted = []
        for item in items:
            replies = {ref: overdue_alert(item, sla) for ref in self.targets}
            if await self._queue_once(f"overdue:{item.ticket.id}", replies):
                alerted.append(item.ticket.id)
        return alerted

    async def daily_summary(self, now: datetime | None = None) -> bool:
        """After ``summary_at`` on a working day, queue the day's summary once; True when queued now."""
        now = now or utcnow()
        local = now.astimezone(self.tz)
        if local.time() < self.summary_at or local.weekday() not in self.tickets.hours.days:
            return False
        text = summary_text(await overview(self.tickets, now, days=1), local)
        replies = {ref: Reply(text, kind="alert") for ref in self.targets}
        return await self._queue_once(f"summary:{local.date().isoformat()}", replies)

    async def _queue_once(self, key: str, replies: dict[ChannelRef, Reply]) -> bool:
        """Queue ``replies`` and record ``key`` per target in one transaction; False when done before."""
        queued = False
        for ref, reply in replies.items():
            full = f"{key}:{ref.channel}:{ref.chat_ref}"[:200]
            try:
                async with self.sessions() as session, session.begin():
                    if await session.get(SentAlert, full) is not None:
                        continue
                    session.add(SentAlert(key=full))
                    await session.flush()
                    enqueue(session, ref, reply, kind="alert", ticket_id=reply.ticket_id)
                queued = True
            except IntegrityError:
                continue  # another worker queued it at the same moment
        if queued:
            self.tickets.wake()
        return queued

    def start(self) -> None:
        if self.targets:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def check(self) -> None:
        """One check: overdue tickets, then the daily summary."""
        await self.overdue()
        await self.daily_summary()


def summary_text(o: Overview, local: datetime) -> str:
    """The day's numbers in a few lines."""
    lines = [
        f"今日咨询小结（{local:%m月%d日}）",
        f"提问 {o.questions} 个：直接回答 {o.answered}，给出候选 {o.suggested}，转人工 {o.escalated}",
        f"新工单 {o.tickets_opened} 张，工作人员已答复 {o.staff_answered} 张",
        f"待处理 {o.open_tickets} 张，其中超时 {o.past_sla} 张",
        f"答案反馈：有用 {o.helpful}，没解决 {o.not_helpful}",
    ]
    return "\n".join(lines)

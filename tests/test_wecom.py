"""WeCom staff alerts against a local fake group robot: new ticket, overdue ticket, daily summary, as
markdown with the question masked and a link to the console; failures retried through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import Settings
from bot.messages import IncomingMessage, Reply
from handlers.wecom import render_markdown, start_wecom
from knowledge.models import OutboxItem, utcnow
from knowledge.segment import Lexicon
from tests.conftest import seed_path
from tests.fakes.wechat import FakeWecomRobot

PHONE = "13812345678"
QUESTION = f"我叫张三，电话 {PHONE}，明天会下雨吗"
SH = ZoneInfo("Asia/Shanghai")


@dataclass
class Desk:
    app: App
    robot: FakeWecomRobot

    async def ask(self, text: str = QUESTION, user: str = "u1") -> int:
        msg = IncomingMessage("web", f"chat-{user}", user, text, display_name="访客")
        (reply,) = await self.app.conversations.handle(msg)
        assert reply.kind == "escalated" and reply.ticket_id is not None
        return reply.ticket_id

    async def deliver(self, later: timedelta = timedelta(0)) -> int:
        return await self.app.outbox.deliver_due(utcnow() + later)


@pytest.fixture
async def desk(settings: Settings, lexicon: Lexicon) -> AsyncIterator[Desk]:
    robot = FakeWecomRobot()
    await robot.start()
    # Tickets open on every unanswered question ([handoff] auto_escalate), as before issue 15.
    settings = (
        settings.replace("wecom", webhook_url=robot.url)
        .replace("web", public_url="https://zx.example.gov.cn/")
        .replace("handoff", auto_escalate=True)
    )
    app = await App.create(settings, lexicon=lexicon)
    await app.services.kb.import_paths([seed_path()])
    await start_wecom(app)
    # The tests drive the overdue and summary checks with their own clock; the background check would
    # post today's real summary whenever the suite runs after daily_summary_at on a working day.
    await app.alerts.stop()
    try:
        yield Desk(app, robot)
    finally:
        await app.close()
        await robot.stop()


async def test_a_new_ticket_is_posted_masked_with_a_console_link(desk: Desk) -> None:
    ticket = await desk.ask()
    assert await desk.deliver() == 1
    (text,) = desk.robot.texts
    assert text.startswith(f"**新工单 #{ticket}**")
    assert PHONE not in text and "张三" not in text and "138＊＊＊＊5678" in text and "明天会下雨吗" in text
    assert f"(https://zx.example.gov.cn/console/tickets/{ticket})" in text


async def test_failures_are_retried_through_the_outbox(desk: Desk) -> None:
    desk.robot.fail(45009)
    desk.robot.fail(http=503)
    await desk.ask()
    for _ in range(3):
        await desk.deliver(timedelta(hours=1))
    assert len(desk.robot.texts) == 1
    async with desk.app.services.sessions() as s:
        row = await s.scalar(select(OutboxItem).where(OutboxItem.channel == "wecom"))
    assert row is not None and row.status == "sent" and row.attempts == 3


async def test_a_refused_alert_is_not_retried(desk: Desk) -> None:
    desk.robot.fail(93000)
    await desk.ask()
    await desk.deliver()
    await desk.deliver(timedelta(hours=1))
    assert desk.robot.texts == []
    async with desk.app.services.sessions() as s:
        row = await s.scalar(select(OutboxItem).where(OutboxItem.channel == "wecom"))
    assert row is not None and row.status == "failed" and "93000" in row.last_error


async def test_overdue_tickets_are_posted_once(desk: Desk) -> None:
    ticket = await desk.ask()
    await desk.deliver()
    assert await desk.app.alerts.overdue() == []  # just opened
    # look from far enough ahead for the ticket to be past the SLA in working time
    later = utcnow() + timedelta(days=10)
    assert await desk.app.alerts.overdue(later) == [ticket]
    assert await desk.app.alerts.overdue(later) == []  # once
    await desk.deliver()
    text = desk.robot.texts[-1]
    assert text.startswith(f"**超时工单 #{ticket}**") and PHONE not in text and "无人认领" in text
    assert f"/console/tickets/{ticket})" in text


async def test_the_daily_summary_is_posted_once_after_its_time_on_working_days(desk: Desk) -> None:
    await desk.ask()
    await desk.deliver()
    friday_morning = datetime(2030, 1, 4, 9, 0, tzinfo=SH)
    friday_evening = datetime(2030, 1, 4, 18, 0, tzinfo=SH)
    saturday_evening = datetime(2030, 1, 5, 18, 0, tzinfo=SH)
    assert not await desk.app.alerts.daily_summary(friday_morning)
    assert await desk.app.alerts.daily_summary(friday_evening)
    assert not await desk.app.alerts.daily_summary(friday_evening + timedelta(minutes=5))
    assert not await desk.app.alerts.daily_summary(saturday_evening)  # not a working day
    await desk.deliver()
    text = desk.robot.texts[-1]
    assert text.startswith("**今日咨询小结（01月04日）**") and "> 提问" in text and "console" not in text


def test_markdown_keeps_user_text_from_forming_links() -> None:
    reply = Reply("新工单 #3\n问题：[点我](http://evil.example) **急**", kind="alert", ticket_id=3)
    text = render_markdown(reply, "https://zx.example.gov.cn")
    assert "](http://evil" not in text and "**急**" not in text
    assert text.endswith("[在控制台查看工单 #3](https://zx.example.gov.cn/console/tickets/3)")
    assert len(render_markdown(Reply("长" * 5000, kind="alert"), "").encode()) <= 4096

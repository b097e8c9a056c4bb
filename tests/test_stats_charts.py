"""Analytics: questions per day by outcome, rates, first response and SLA per office, satisfaction and
top categories, as numbers (JSON API) and as server-rendered SVG charts with the tables behind them."""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp.test_utils import TestClient

from bot.app import App
from bot.messages import IncomingMessage
from bot.stats import overview
from knowledge.models import utcnow
from tests import test_staff_inbox
from tests.staff_fixtures import hand_over, login
from tests.test_staff_inbox import HEALTH_Q, NOWHERE_Q

client = test_staff_inbox.client  # the fixture: the console with an admin, an editor and two agents


async def test_the_numbers_per_office_category_and_satisfaction(app: App, client: TestClient) -> None:
    replies = await app.conversations.handle(
        IncomingMessage("web", "stats-v-0001", "stats-v-0001", "鼓楼区商务局的电话是多少？")
    )
    answer = next(r for r in replies if r.kind == "answer")
    await app.conversations.feedback(
        IncomingMessage("web", "stats-v-0001", "stats-v-0001", ""), answer.message_id, True
    )
    replies = await app.conversations.handle(
        IncomingMessage("web", "stats-v-0002", "stats-v-0002", "鼓楼区商务局的电话是多少？")
    )
    answer = next(r for r in replies if r.kind == "answer")
    await app.conversations.feedback(
        IncomingMessage("web", "stats-v-0002", "stats-v-0002", ""), answer.message_id, False
    )
    health = await hand_over(app, HEALTH_Q, "stats-v-0003-abcdefgh")
    await hand_over(app, NOWHERE_Q, "stats-v-0004-abcdefgh")
    await app.tickets.reply(health, "agent-sc", "请关注市场监管部门的科普。")
    await login(client, "agent-sc")
    data = await (await client.get("/console/api/stats")).json()
    offices = {o["office"]: o for o in data["offices"]}
    assert set(offices) >= {"办公室", "外资与外经科", "市场秩序科"}
    assert offices["市场秩序科"]["opened"] == 1 and offices["市场秩序科"]["answered"] == 1
    assert offices["市场秩序科"]["within_sla"] == 1 and offices["市场秩序科"]["sla_share"] == 1.0
    assert offices["市场秩序科"]["median_first_response_minutes"] is not None
    office = offices["办公室"]  # the not_helpful ticket and the unrouted question
    assert office["opened"] == 2 and office["answered"] == 0 and office["past_sla"] == 0
    assert data["helpful"] == 1 and data["not_helpful"] == 1 and data["satisfaction"] == 0.5
    assert data["categories"][0] == {"category": "机构信息", "count": 2}
    later = await overview(app.tickets, now=utcnow() + timedelta(days=7))
    late = {o.office: o for o in later.offices}["办公室"]
    assert late.past_sla == 2 and late.sla_share == 0.0  # still open a week later: past the SLA


async def test_the_page_draws_each_chart_with_its_numbers(app: App, client: TestClient) -> None:
    await app.conversations.handle(
        IncomingMessage("web", "stats-v-0005", "stats-v-0005", "鼓楼区商务局的电话是多少？")
    )
    tid = await hand_over(app, HEALTH_Q, "stats-v-0006-abcdefgh")
    await app.tickets.reply(tid, "agent-sc", "答复")
    await login(client, "agent-wj")
    page = await (await client.get("/console/overview")).text()
    charts = re.findall(r'<svg class="chart"[^>]*aria-label="([^"]+)"', page)
    assert charts == [
        "每日提问（按结果）",
        "回答率与转人工率",
        "各科室首次答复用时中位数",
        "各科室按时答复率（时限 120 个工作分钟）",
        "用户满意度",
        "提问最多的分类",
    ]
    assert "<script" not in page.split("</head>")[1]  # drawn on the server
    assert "直接回答 1" in page  # an element's title names its value
    assert "市场秩序科" in page and "机构信息" in page
    assert page.count("查看数字") == 5  # each chart section has its table

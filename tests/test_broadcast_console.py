"""The console's 推送审核 page (handlers/staff_broadcasts.py): pending pushes with the time left to the
deadline, overdue ones flagged, confirm and drop behind login and CSRF, and the JSON view with the stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.app import App
from bot.staff_accounts import create_account
from knowledge.models import Broadcast, utcnow
from tests.fakes.channel import FakeChannel
from tests.staff_fixtures import CHEAP, NAME, PASSWORD, console, login
from tests.test_staff_console import post
from tests.test_subscriptions import TRADE, faq, visitor


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    await create_account(app.services.sessions, NAME, PASSWORD, hasher=CHEAP)
    app.registry.add(FakeChannel("web"))
    await app.push.run_once()
    async with console(app) as c:
        yield c


async def pending_broadcast(app: App, entry_id: str) -> int:
    await app.conversations.act(visitor(1), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq(entry_id)])
    await app.push.run_once()
    (view,) = [v for v in await app.broadcasts.pending() if v.broadcast.entry_id == entry_id]
    return view.broadcast.id


async def test_review_page_confirm_and_drop(client: TestClient, app: App) -> None:
    assert (await client.get("/console/broadcasts", allow_redirects=False)).status == 403  # login first
    csrf = await login(client)
    first = await pending_broadcast(app, "faq-review-1")
    second = await pending_broadcast(app, "faq-review-2")
    page = await (await client.get("/console/broadcasts")).text()
    assert "推送审核" in page and "faq-review-1 新规定是什么？" in page and "剩余 11 小时" in page
    assert (await post(client, f"/console/broadcasts/{first}/approve", "forged")).status == 403
    assert [v.broadcast.id for v in await app.broadcasts.pending()] == [first, second]
    resp = await post(client, f"/console/broadcasts/{first}/approve", csrf)
    assert resp.status == 303 and "approved" in resp.headers["Location"]
    resp = await post(client, f"/console/broadcasts/{second}/drop", csrf)
    assert resp.status == 303
    again = await post(client, f"/console/broadcasts/{second}/approve", csrf)
    assert again.status == 409 and "已处理" in await again.text()
    await app.outbox.deliver_due()
    page = await (await client.get("/console/broadcasts")).text()
    assert "没有待审核的推送" in page and "已推送" in page and "已放弃" in page and NAME in page


async def test_overdue_is_flagged_and_the_json_view(client: TestClient, app: App) -> None:
    await login(client)
    bid = await pending_broadcast(app, "faq-review-3")
    async with app.services.sessions() as s, s.begin():
        await s.execute(
            update(Broadcast).where(Broadcast.id == bid).values(deadline_at=utcnow() - timedelta(minutes=30))
        )
    page = await (await client.get("/console/broadcasts")).text()
    assert "已超时 30 分钟" in page or "已超时 29 分钟" in page
    assert "1 条推送已超过 12 小时时限" in page
    data = await (await client.get("/console/api/broadcasts")).json()
    assert data["review"] is True
    assert data["pending"][0]["overdue"] is True and data["pending"][0]["seconds_left"] < 0
    assert data["stats"]["subscribers"] == {TRADE: 1}

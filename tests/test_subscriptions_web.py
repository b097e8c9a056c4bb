"""Subscriptions through the web API (``POST /api/action``): subscribe and confirm, a new entry imported by
``policybot kb import`` in another process reaching the subscriber's conversation and nobody else's, a
followed entry's expiry, unsubscribing from a pushed message, review on and off, and bad input refused
with nothing changed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import App
from handlers.web_channel import WebChannel
from knowledge.importers.base import ParsedEntry
from knowledge.models import Subscription, SubscriptionEvent
from tests.test_web_api import expect_error, history, make_client

ALICE = "alice-token-0001-abcdefgh"
BOB = "bob-token-0002-abcdefghij"
TRADE = "外贸外资"


def use(app: App, **values: object) -> None:
    new = dataclasses.replace(app.settings.subscriptions, **values)
    app.subscriptions.settings = app.broadcasts.settings = app.broadcasts.scanner.settings = new


@pytest.fixture
async def web(app: App) -> AsyncIterator[TestClient]:
    app.registry.add(WebChannel(app.conversations))
    await app.push.run_once()  # baseline
    client = await make_client(app)
    try:
        yield client
    finally:
        await client.close()


async def action(client: TestClient, token: str, name: str, status: int = 200) -> dict:
    resp = await client.post("/api/action", json={"token": token, "action": name})
    assert resp.status == status, await resp.text()
    return await resp.json()


async def pushes(client: TestClient, token: str) -> list[dict]:
    resp = await client.get(f"/api/conversations/{token}")
    if resp.status == 404:
        return []
    return [m for m in (await resp.json())["messages"] if m["kind"] == "broadcast"]


def record(entry_id: str, **kw: object) -> dict:
    entry = ParsedEntry(
        id=entry_id,
        kind="policy",
        title=f"关于{entry_id}的通知",
        answer="外贸企业出口退税可全程网上办理。申报材料减为三项。",
        category=TRADE,
        source={"title": "关于优化出口退税办理的通知", "number": "榕商务〔2027〕2号"},
        **kw,  # type: ignore[arg-type]
    )
    data = dataclasses.asdict(entry)
    data.pop("origin")
    return data


async def kb_import(app: App, tmp: Path, *records: dict) -> None:
    """``policybot kb import`` in another process, as an operator would run it."""
    path = tmp / f"import-{records[0]['id']}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policybot", "--db", app.settings.database.url, "kb", "import", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def deliver(app: App) -> None:
    """One scan (as the running service's background pass does), then the outbox."""
    await app.push.run_once()
    await app.outbox.deliver_due()


async def test_subscribe_confirm_list_and_refusals(web: TestClient, app: App) -> None:
    reply = (await action(web, ALICE, f"subscribe:{TRADE}"))["reply"]
    assert f"已订阅「{TRADE}」" in reply["text"]
    unsub = reply["buttons"][0][0]["action"]
    assert unsub.startswith("unsub:")
    listing = (await action(web, ALICE, "subscriptions"))["reply"]
    assert TRADE in listing["text"]
    menu = (await action(web, BOB, "subscribe"))["reply"]
    assert any(b["action"] == f"subscribe:{TRADE}" for row in menu["buttons"] for b in row)
    data = await expect_error(
        await web.post("/api/action", json={"token": BOB, "action": "subscribe:不存在"}),
        400,
        "unknown_category",
    )
    assert TRADE in data["message"]
    await expect_error(await web.post("/api/action", json={"token": BOB, "action": unsub}), 403, "not_yours")
    await expect_error(
        await web.post("/api/action", json={"token": BOB, "action": f"unsubscribe:{TRADE}"}),
        400,
        "not_subscribed",
    )
    await expect_error(
        await web.post("/api/action", json={"token": BOB, "action": "unsub:x"}), 400, "unknown_action"
    )
    async with app.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Subscription)) == 1
        assert await s.scalar(select(func.count()).select_from(SubscriptionEvent)) == 1


async def test_a_subscription_flood_from_one_visitor_is_refused(web: TestClient, app: App) -> None:
    use(app, max_changes_per_hour=5)
    categories = [name for name, _ in await app.services.kb.categories(topics_only=True)]
    for name in categories[:5]:
        await action(web, ALICE, f"subscribe:{name}")
    await expect_error(
        await web.post("/api/action", json={"token": ALICE, "action": f"subscribe:{categories[5]}"}),
        429,
        "subscription_flood",
    )
    async with app.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Subscription)) == 5


async def test_imported_entry_reaches_the_subscriber_only_and_unsubscribe_stops_the_next(
    web: TestClient, app: App, tmp_path: Path
) -> None:
    use(app, review=False)
    await action(web, ALICE, f"subscribe:{TRADE}")
    await action(web, BOB, "subscribe:消费促进")
    await kb_import(app, tmp_path, record("policy-new-1"))
    await deliver(app)
    (push,) = await pushes(web, ALICE)
    assert push["text"].startswith(f"【新发布】「{TRADE}」\n关于policy-new-1的通知")
    assert "全程网上办理" in push["text"] and "榕商务〔2027〕2号" in push["source_line"]
    assert await pushes(web, BOB) == []
    actions = [b["action"] for row in push["buttons"] for b in row]
    read = (await action(web, ALICE, actions[0]))["reply"]
    assert read["entry_id"] == "policy-new-1" and "三项" in read["text"]
    assert "已退订" in (await action(web, ALICE, actions[-1]))["reply"]["text"]
    await kb_import(app, tmp_path, record("policy-new-2"))
    await deliver(app)
    assert len(await pushes(web, ALICE)) == 1


async def test_review_on_waits_for_staff_then_a_followed_entry_expiry(
    web: TestClient, app: App, tmp_path: Path
) -> None:
    await action(web, ALICE, f"subscribe:{TRADE}")
    await kb_import(app, tmp_path, record("policy-new-3"))
    await deliver(app)
    assert await pushes(web, ALICE) == []  # waits for review
    (pending,) = await app.broadcasts.pending()
    await app.broadcasts.approve(pending.broadcast.id, "审核员")
    await app.outbox.deliver_due()
    assert len(await pushes(web, ALICE)) == 1
    follow = (await action(web, BOB, "follow:policy-new-3"))["reply"]
    assert "已关注" in follow["text"]
    await kb_import(app, tmp_path, record("policy-new-3", status="expired"))
    await deliver(app)
    (pending,) = await app.broadcasts.pending()
    assert pending.broadcast.kind == "expired" and pending.subscribers == 1
    await app.broadcasts.approve(pending.broadcast.id, "审核员")
    await app.outbox.deliver_due()
    (expired,) = await pushes(web, BOB)
    assert expired["text"].startswith("【已失效】您关注的内容")
    assert len(await pushes(web, ALICE)) == 1  # the category's subscriber is not told of the expiry
    assert (await history(web, BOB))[-1]["kind"] == "broadcast"


async def test_typed_commands_in_the_question_box(web: TestClient) -> None:
    resp = await web.post("/api/ask", json={"token": ALICE, "question": f"/subscribe {TRADE}"})
    (reply,) = (await resp.json())["replies"]
    assert f"已订阅「{TRADE}」" in reply["text"]
    resp = await web.post("/api/ask", json={"token": ALICE, "question": "/subscribe 不存在"})
    (refusal,) = (await resp.json())["replies"]
    assert refusal["kind"] == "error" and TRADE in refusal["text"]
    resp = await web.post("/api/ask", json={"token": ALICE, "question": "/subscriptions"})
    assert TRADE in (await resp.json())["replies"][0]["text"]

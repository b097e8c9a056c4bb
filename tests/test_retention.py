"""Retention (issue 16, point 5): ``policybot purge`` deletes what is past ``[privacy] retention_days``
and keeps the statistics of the purged days; ``--dry-run`` changes nothing; a purged digest delivery is
never sent again; the service purges by itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot import retention
from bot.app import App
from bot.config import Settings, settings_from_dict
from bot.messages import IncomingMessage
from bot.push_stats import push_stats
from bot.retention import PurgeCounts, purge
from bot.services import Services
from bot.stats import overview
from knowledge.models import (
    Broadcast,
    Conversation,
    Delivery,
    Feedback,
    KnowledgeProposal,
    Message,
    OutboxItem,
    ProcessedUpdate,
    Rating,
    Subscription,
    SubscriptionEvent,
    Ticket,
    utcnow,
)
from knowledge.segment import Lexicon
from tests.staff_fixtures import hand_over
from tests.test_cli import ok, policybot

AGE = timedelta(days=200)  # older than the default 180 days
ANSWERED_Q = "鼓楼区商务局的电话是多少？"


def web(chat: str) -> IncomingMessage:
    return IncomingMessage("web", chat, chat, "")


async def _conv_id(app: App, chat: str) -> int:
    async with app.services.sessions() as session:
        found = await session.scalar(select(Conversation.id).where(Conversation.chat_ref == chat))
    assert found is not None
    return found


async def _age(app: App, conv_id: int, by: timedelta = AGE) -> None:
    """Move everything of one conversation ``by`` into the past."""
    async with app.services.sessions() as session, session.begin():
        for model, columns in (
            (Message, ("created_at",)),
            (Ticket, ("created_at", "answered_at", "closed_at")),
            (Feedback, ("created_at",)),
            (Rating, ("created_at", "updated_at")),
            (SubscriptionEvent, ("created_at",)),
            (Conversation, ("created_at", "last_seen_at")),
        ):
            key = model.id if model is Conversation else model.conversation_id  # type: ignore[attr-defined]
            for row in await session.scalars(select(model).where(key == conv_id)):
                for c in columns:
                    if getattr(row, c) is not None:
                        setattr(row, c, getattr(row, c) - by)


async def _counts(app: App) -> dict[str, int]:
    out = {}
    async with app.services.sessions() as session:
        for model in (Conversation, Message, Ticket, Feedback, ProcessedUpdate, OutboxItem, Delivery):
            out[model.__tablename__] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return out


async def _history(app: App) -> dict[str, Any]:
    """Old conversations (one answered with feedback, one answered by staff, one still open, one
    subscribed to a digest that was sent and to one that failed), a new one, old and new update ids,
    outbox rows (sent, pending, failed: one for the open ticket) and knowledge proposals."""
    old_answer = await app.conversations.handle(
        IncomingMessage("web", "old-answered-0001", "old-answered-0001", ANSWERED_Q)
    )
    answer = next(r for r in old_answer if r.kind == "answer")
    await app.conversations.feedback(web("old-answered-0001"), answer.message_id, True)
    done = await hand_over(app, "公共卫生知识普及怎么做，我的电话13812345678", "old-ticket-0001")
    await app.tickets.reply(done, "agent", "请关注市场监管部门的科普。")
    still_open = await hand_over(app, "今天天气怎么样", "old-open-0001")
    new = await app.conversations.handle(
        IncomingMessage("web", "new-visitor-0001", "new-visitor-0001", ANSWERED_Q)
    )
    assert any(r.kind == "answer" for r in new)
    ids = {c: await _conv_id(app, c) for c in ("old-answered-0001", "old-ticket-0001", "old-open-0001")}
    now = utcnow()
    async with app.services.sessions() as session, session.begin():
        digest_conv = Conversation(channel="web", chat_ref="old-digest-0001", user_ref="old-digest-0001")
        session.add(digest_conv)
        await session.flush()
        session.add(Subscription(conversation_id=digest_conv.id, topic="c:外贸外资", mode="digest"))
        bc = Broadcast(change_key="k1", kind="new", topic="c:外贸外资", status="sent", published_at=now - AGE)
        sent = OutboxItem(
            channel="web", chat_ref="old-digest-0001", kind="broadcast", status="sent",
            created_at=now - AGE + timedelta(hours=1), sent_at=now - AGE + timedelta(hours=2),
        )  # fmt: skip
        session.add_all([bc, sent])
        await session.flush()
        failed = OutboxItem(
            channel="web", chat_ref="old-digest-0001", kind="broadcast", status="failed",
            created_at=now - AGE + timedelta(hours=1), last_error="gave up",
        )  # fmt: skip
        session.add(failed)
        await session.flush()
        session.add(
            Delivery(broadcast_id=bc.id, conversation_id=digest_conv.id, mode="digest", outbox_id=sent.id)
        )
        bc2 = Broadcast(
            change_key="k2", kind="new", topic="c:外贸外资", status="sent", published_at=now - AGE
        )
        session.add(bc2)
        await session.flush()
        session.add(
            Delivery(broadcast_id=bc2.id, conversation_id=digest_conv.id, mode="digest", outbox_id=failed.id)
        )
        for status, age in (
            ("approved", AGE),
            ("rejected", AGE),
            ("pending", AGE),
            ("approved", timedelta(0)),
        ):
            session.add(
                KnowledgeProposal(
                    kind="new", question=f"{status} 我的电话13812345678", proposed_by="agent",
                    status=status, created_at=now - age,
                )
            )  # fmt: skip
        session.add(ProcessedUpdate(channel="telegram", update_id="1", created_at=now - AGE))
        session.add(ProcessedUpdate(channel="telegram", update_id="2", created_at=now))
        session.add(OutboxItem(channel="web", chat_ref="x", status="sent", created_at=now, sent_at=now))
        session.add(OutboxItem(channel="web", chat_ref="x", status="pending", created_at=now - AGE))
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.chat_ref != "x", OutboxItem.kind != "broadcast")
            .values(status="sent")
        )
        # A reply that could not be delivered: gone with age, unless its ticket is still open.
        for ticket_id in (None, still_open):
            session.add(
                OutboxItem(
                    channel="wechat", chat_ref="old-wechat-0001", status="failed", ticket_id=ticket_id,
                    created_at=now - AGE, last_error="48 小时窗口已过",
                )
            )  # fmt: skip
    for conv_id in ids.values():
        await _age(app, conv_id)
    return {"ids": ids, "open": still_open, "done": done, "digest_conv": digest_conv.id}


async def test_purge_deletes_what_is_past_retention_and_keeps_the_statistics(app: App) -> None:
    h = await _history(app)
    tz = ZoneInfo(app.settings.staff.timezone)
    then = utcnow() - AGE + timedelta(hours=1)
    before = (await overview(app.tickets, now=then, days=3)).to_json()
    today_before = (await overview(app.tickets)).to_json()
    pushes_before = (await push_stats(app.services.sessions, 12)).to_json()
    assert before["questions"] >= 1 and before["tickets_opened"] == 2 and before["helpful"] == 1
    assert (pushes_before["delivered"], pushes_before["failed"]) == (1, 1)

    dry = await purge(app.services.engine, app.services.sessions, tz, 180, dry_run=True)
    counts_dry = await _counts(app)
    done = await purge(app.services.engine, app.services.sessions, tz, 180)
    assert done == dry  # the dry run counted exactly what the purge deleted

    async with app.services.sessions() as session:
        convs = set(await session.scalars(select(Conversation.chat_ref)))
        tickets = set(await session.scalars(select(Ticket.id)))
        texts = list(await session.scalars(select(Message.text)))
        updates = set(await session.scalars(select(ProcessedUpdate.update_id)))
        old_sent = await session.scalar(
            select(func.count()).where(
                OutboxItem.status == "sent", OutboxItem.created_at < utcnow() - AGE / 2
            )
        )
        old_pending = await session.scalar(
            select(func.count()).where(
                OutboxItem.status == "pending", OutboxItem.created_at < utcnow() - AGE / 2
            )
        )
        deliveries = int(await session.scalar(select(func.count()).select_from(Delivery)) or 0)
        feedback = int(await session.scalar(select(func.count()).select_from(Feedback)) or 0)
        failed_left = list(
            await session.scalars(select(OutboxItem.ticket_id).where(OutboxItem.status == "failed"))
        )
        proposals = set(
            await session.execute(
                select(KnowledgeProposal.status, KnowledgeProposal.created_at < utcnow() - AGE / 2)
            )
        )
    assert "old-answered-0001" not in convs and "old-ticket-0001" not in convs
    assert {"new-visitor-0001", "old-open-0001", "old-digest-0001"} <= convs  # new, open ticket, subscribed
    assert tickets == {h["open"]}
    assert not any("13812345678" in t for t in texts)
    assert updates == {"2"}
    assert old_sent == 0 and old_pending == 1  # delivered rows go, pending ones wait to be sent
    assert failed_left == [h["open"]]  # given up on: gone, but for the reply of the open ticket
    assert proposals == {("pending", True), ("approved", False)}  # decided long ago: gone
    assert deliveries == 0 and feedback == 0
    assert (
        done.conversations == 2 and done.tickets == 1 and done.processed_updates == 1 and done.deliveries == 2
    )
    assert (done.outbox, done.proposals) == (3, 2)  # the digest sent, the digest and the reply failed

    assert (await overview(app.tickets, now=then, days=3)).to_json() == before
    assert (await overview(app.tickets)).to_json() == today_before
    assert (await push_stats(app.services.sessions, 12)).to_json() == pushes_before
    # A purged digest delivery is not taken for one still to write (it would be sent again).
    async with app.services.sessions() as session, session.begin():
        assert await app.broadcasts._write_digests(session, utcnow().date()) == 0

    again = await purge(app.services.engine, app.services.sessions, tz, 180)
    assert again == PurgeCounts()  # a second purge (another worker) finds nothing to do
    assert (await overview(app.tickets, now=then, days=3)).to_json() == before
    assert counts_dry["messages"] > (await _counts(app))["messages"]


async def test_dry_run_changes_nothing(app: App, tmp_path: Path) -> None:
    await _history(app)
    counts = await _counts(app)
    url = app.settings.database.url
    out = ok(await asyncio.to_thread(policybot, "--db", url, "purge", "--dry-run", cwd=tmp_path))
    assert "would delete" in out and "conversations\t2" in out and "processed_updates\t1" in out
    assert await _counts(app) == counts
    async with app.services.sessions() as session:
        assert int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0) == 2
    assert "deleted" in ok(await asyncio.to_thread(policybot, "--db", url, "purge", cwd=tmp_path))
    assert (await _counts(app))["processed_updates"] == 1


async def test_the_service_purges_by_itself(app: App) -> None:
    await _history(app)
    await app.retention.run_once()  # what `policybot run` starts (at start, then daily)
    assert (await _counts(app))["tickets"] == 1


def test_retention_days_is_validated() -> None:
    assert Settings().privacy.retention_days == 180
    assert settings_from_dict({"privacy": {"retention_days": 30}}).privacy.retention_days == 30
    with pytest.raises(ValueError, match=r"\[privacy\] retention_days"):
        settings_from_dict({"privacy": {"retention_days": 0}})


async def test_two_workers_purging_at_once_take_turns(app: App, lexicon: Lexicon) -> None:
    await _history(app)
    tz = ZoneInfo(app.settings.staff.timezone)
    then = utcnow() - AGE + timedelta(hours=1)
    before = (await overview(app.tickets, now=then, days=3)).to_json()
    other = await Services.start(app.settings, lexicon=lexicon, build_index=False)  # a second worker
    try:
        one, two = await asyncio.gather(
            purge(app.services.engine, app.services.sessions, tz, 180),
            purge(other.engine, other.sessions, tz, 180),
        )
    finally:
        await other.close()
    assert PurgeCounts() in (one, two)  # the second found the work done
    assert (one.tickets + two.tickets, one.conversations + two.conversations) == (1, 2)
    assert (await overview(app.tickets, now=then, days=3)).to_json() == before


async def test_a_failing_batch_deletes_nothing_of_its_conversations(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _history(app)
    tz = ZoneInfo(app.settings.staff.timezone)
    counts = await _counts(app)
    real = retention._deleted

    async def failing(session: Any, stmt: Any) -> int:
        if stmt.table.name == "conversations":  # the batch's last statement: the rest ran already
            raise RuntimeError("database went away")
        return await real(session, stmt)

    monkeypatch.setattr(retention, "_deleted", failing)
    with pytest.raises(RuntimeError):
        await purge(app.services.engine, app.services.sessions, tz, 180)
    after = await _counts(app)
    assert (after["messages"], after["tickets"], after["feedback"]) == (
        counts["messages"],
        counts["tickets"],
        counts["feedback"],
    )
    monkeypatch.setattr(retention, "_deleted", real)
    assert (await purge(app.services.engine, app.services.sessions, tz, 180)).conversations == 2

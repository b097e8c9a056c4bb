"""The durable outbox (bot/outbox.py): delivery, retries with backoff and retry_after, permanent failure,
leases, and two workers on one database never sending a row twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.channels import ChannelRegistry, DeliveryError
from bot.config import Settings
from bot.messages import Button, ChannelRef, Reply
from bot.outbox import IN_DOUBT, LEASE, MAX_ATTEMPTS, OutboxWorker, backoff, enqueue
from bot.services import Services
from knowledge.models import OutboxItem, utcnow
from knowledge.segment import Lexicon
from tests.fakes.channel import FakeChannel


@pytest.fixture
async def outbox(services: Services) -> AsyncIterator[tuple[Services, OutboxWorker, FakeChannel]]:
    registry = ChannelRegistry()
    channel = FakeChannel("web")
    registry.add(channel)
    worker = OutboxWorker(services.sessions, registry, poll=0.05)
    try:
        yield services, worker, channel
    finally:
        await worker.stop()


async def put(services: Services, *texts: str, channel: str = "web", chat: str = "c1") -> list[int]:
    async with services.sessions() as s, s.begin():
        items = [
            enqueue(s, ChannelRef(channel, chat), Reply(t, buttons=[[Button("有用", "feedback:up:1")]]))
            for t in texts
        ]
        await s.flush()
        return [i.id for i in items]


async def row(services: Services, item_id: int) -> OutboxItem:
    async with services.sessions() as s:
        item = await s.get(OutboxItem, item_id)
        assert item is not None
        return item


def aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def test_backoff_doubles_up_to_ten_minutes() -> None:
    assert [backoff(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert backoff(0) == 1
    assert backoff(40) == 600


async def test_delivers_in_order_with_the_reply_intact(outbox) -> None:
    services, worker, channel = outbox
    ids = await put(services, "一", "二", "三")
    assert await worker.deliver_due() == 3
    assert [r.text for r in channel.to("c1")] == ["一", "二", "三"]
    assert channel.sent[0][1].buttons == [[Button("有用", "feedback:up:1")]]
    for i in ids:
        r = await row(services, i)
        assert (r.status, r.attempts, r.last_error) == ("sent", 1, "")
        assert r.sent_at is not None
    assert await worker.deliver_due() == 0  # nothing twice


async def test_retry_with_backoff(outbox) -> None:
    services, worker, channel = outbox
    (item,) = await put(services, "稍后再试")
    channel.fail_next(DeliveryError("network down"), DeliveryError("still down"))
    now = utcnow()
    assert await worker.deliver_due(now) == 0
    r = await row(services, item)
    assert (r.status, r.attempts, r.last_error) == ("pending", 1, "network down")
    assert aware(r.next_attempt_at) - now == pytest.approx(timedelta(seconds=1), abs=timedelta(seconds=1))
    # not due yet: not even attempted
    assert await worker.deliver_due(now) == 0
    assert channel.attempts == 1
    assert await worker.deliver_due(now + timedelta(seconds=3)) == 0
    r = await row(services, item)
    assert r.attempts == 2 and r.last_error == "still down"
    assert aware(r.next_attempt_at) - utcnow() == pytest.approx(
        timedelta(seconds=2), abs=timedelta(seconds=1)
    )
    assert await worker.deliver_due(utcnow() + timedelta(seconds=5)) == 1
    assert [x.text for x in channel.to("c1")] == ["稍后再试"]
    assert (await row(services, item)).status == "sent"


async def test_retry_after_is_honoured(outbox) -> None:
    services, worker, channel = outbox
    (item,) = await put(services, "限流")
    channel.fail_with_retry_after(30)
    await worker.deliver_due()
    r = await row(services, item)
    assert r.status == "pending"
    assert aware(r.next_attempt_at) - utcnow() == pytest.approx(
        timedelta(seconds=30), abs=timedelta(seconds=2)
    )
    assert await worker.deliver_due(utcnow() + timedelta(seconds=20)) == 0
    assert channel.attempts == 1
    assert await worker.deliver_due(utcnow() + timedelta(seconds=31)) == 1


async def test_permanent_failure_is_marked_failed(outbox) -> None:
    services, worker, channel = outbox
    (gone, fine) = await put(services, "用户已拉黑", "另一条")
    channel.fail_next(DeliveryError("Forbidden: bot was blocked by the user", permanent=True))
    assert await worker.deliver_due() == 1
    r = await row(services, gone)
    assert (r.status, r.attempts) == ("failed", 1)
    assert "blocked" in r.last_error
    assert (await row(services, fine)).status == "sent"  # one bad row does not hold up the others
    assert await worker.deliver_due(utcnow() + timedelta(hours=2)) == 0
    assert channel.attempts == 2


async def test_gives_up_after_max_attempts(outbox) -> None:
    services, worker, channel = outbox
    (item,) = await put(services, "一直失败")
    channel.fail_next(*[DeliveryError("down")] * MAX_ATTEMPTS)
    when = utcnow()
    for _ in range(MAX_ATTEMPTS):
        when += timedelta(seconds=700)
        await worker.deliver_due(when)
    r = await row(services, item)
    assert (r.status, r.attempts) == ("failed", MAX_ATTEMPTS)
    assert await worker.deliver_due(when + timedelta(hours=1)) == 0
    assert channel.attempts == MAX_ATTEMPTS and channel.sent == []


async def test_an_adapter_bug_does_not_lose_the_reply(outbox, caplog: pytest.LogCaptureFixture) -> None:
    services, worker, channel = outbox
    (item,) = await put(services, "适配器出错")
    channel.fail_next(RuntimeError("boom"))
    assert await worker.deliver_due() == 0
    r = await row(services, item)
    assert r.status == "pending" and r.last_error == "RuntimeError: boom"
    assert await worker.deliver_due(utcnow() + timedelta(seconds=5)) == 1


async def test_rows_of_a_channel_not_running_wait(outbox) -> None:
    services, worker, _ = outbox
    (item,) = await put(services, "给 Telegram 的", channel="telegram")
    assert await worker.deliver_due() == 0
    r = await row(services, item)
    assert (r.status, r.attempts) == ("pending", 0)  # not claimed, no attempt used up
    tg = FakeChannel("telegram")
    worker.registry.add(tg)
    assert await worker.deliver_due() == 1
    assert [x.text for x in tg.to("c1")] == ["给 Telegram 的"]


async def test_a_row_left_sending_by_a_dead_worker_is_retried_after_the_lease(outbox) -> None:
    services, worker, _ = outbox
    (item,) = await put(services, "worker 崩溃")
    now = utcnow()
    claimed = await worker._claim(item, now)  # claimed, then the worker "dies" before sending
    assert claimed is not None and claimed.status == "sending"
    assert await worker.deliver_due(now + timedelta(seconds=10)) == 0  # the lease still holds
    assert await worker.deliver_due(now + LEASE + timedelta(seconds=1)) == 1
    r = await row(services, item)
    assert (r.status, r.attempts) == ("sent", 2)
    # Its first send may have arrived before the worker died: the row says so once sent again.
    assert r.last_error == IN_DOUBT


async def test_only_a_row_taken_over_after_its_lease_is_in_doubt(outbox) -> None:
    """A row sent at its first try, and one sent after a failed try, are recorded without doubt:
    only a claim that expired in the "sending" state leaves an unknown outcome behind."""
    services, worker, channel = outbox
    retried, once = await put(services, "失败后重发", "一次发出")
    channel.fail_next(DeliveryError("网络错误"))  # (the first row's first send)
    now = utcnow()
    assert await worker.deliver_due(now) == 1
    assert await worker.deliver_due(now + timedelta(seconds=5)) == 1
    rows = [await row(services, retried), await row(services, once)]
    assert [(r.status, r.attempts, r.last_error) for r in rows] == [("sent", 2, ""), ("sent", 1, "")]


async def test_the_worker_loop_keeps_going(outbox) -> None:
    services, worker, channel = outbox
    worker.start()
    await put(services, "轮询")
    worker.wake()
    for _ in range(100):
        if channel.sent:
            break
        await asyncio.sleep(0.02)
    assert [x.text for x in channel.to("c1")] == ["轮询"]
    await worker.stop()
    await worker.stop()  # idempotent


async def test_two_workers_never_send_a_row_twice(settings: Settings, lexicon: Lexicon) -> None:
    """Two processes' workers (separate engines) on one database, racing over the same rows."""
    a = await Services.start(settings, lexicon=lexicon, build_index=False)
    b = await Services.start(settings, lexicon=lexicon, build_index=False)
    try:
        ids = await put(a, *[f"消息{i}" for i in range(40)])
        shared: list[tuple[str, Reply, str | None]] = []
        workers = []
        for s in (a, b):
            ch = FakeChannel("web", delay=0.001)
            ch.sent = shared
            reg = ChannelRegistry()
            reg.add(ch)
            workers.append(OutboxWorker(s.sessions, reg))
        counts = await asyncio.gather(*(w.deliver_due() for w in workers for _ in range(2)))
        assert sum(counts) == 40
        texts = [r.text for _, r, _ in shared]
        assert sorted(texts) == sorted(f"消息{i}" for i in range(40))  # each exactly once
        async with a.sessions() as s:
            rows = list(await s.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))))
        assert all(r.status == "sent" and r.attempts == 1 for r in rows)
    finally:
        await a.close()
        await b.close()

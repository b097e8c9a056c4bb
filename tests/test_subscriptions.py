"""Subscriptions and broadcasts in the core (bot/subscriptions.py, bot/broadcasts.py): subscribe and
refusals, change detection from any writer, review on and off, the deadline, digests, unsubscribing from a
push, stats, and each push delivered once across a restart of the outbox worker."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.config import SubscriptionSettings
from bot.messages import ChannelRef, IncomingMessage, Reply
from bot.outbox import OutboxWorker
from bot.push_stats import push_stats
from bot.subscriptions import Refusal
from knowledge.importers.base import ParsedEntry
from knowledge.models import (
    Broadcast,
    Conversation,
    Delivery,
    OutboxItem,
    Subscription,
    SubscriptionEvent,
    utcnow,
)
from tests.fakes.channel import FakeChannel

TRADE = "外贸外资"
OTHER = "消费促进"


def visitor(n: int) -> IncomingMessage:
    token = f"visitor-{n:04d}-abcdefghijkl"
    return IncomingMessage("web", token, token, display_name="网页访客")


def faq(
    entry_id: str,
    category: str = TRADE,
    answer: str = "自2027年1月1日起，外贸企业可以线上申报。其余不变。",
    **kw,
) -> ParsedEntry:
    return ParsedEntry(
        id=entry_id,
        kind="faq",
        question=f"{entry_id} 新规定是什么？",
        answer=answer,
        category=category,
        source={"title": "某某通知", "number": "榕商务〔2027〕1号"},
        **kw,
    )


def use(app: App, **values: object) -> None:
    """Change [subscriptions] settings of a running core (review on/off, limits)."""
    new = dataclasses.replace(app.settings.subscriptions, **values)
    app.subscriptions.settings = new
    app.broadcasts.settings = new
    app.broadcasts.scanner.settings = new


@pytest.fixture
async def core(app: App) -> tuple[App, FakeChannel]:
    channel = FakeChannel("web")
    app.registry.add(channel)
    await app.push.run_once()  # the baseline: the shipped knowledge is not news
    return app, channel


async def act(app: App, msg: IncomingMessage, action: str) -> Reply:
    (reply,) = await app.conversations.act(msg, action)
    return reply


async def count(app: App, model: type) -> int:
    async with app.services.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_subscribe_confirms_in_one_reply_and_lists(core) -> None:
    app, _ = core
    reply = await act(app, visitor(1), f"subscribe:{TRADE}")
    assert f"已订阅「{TRADE}」" in reply.text
    assert any(b.action.startswith("unsub:") for row in reply.buttons for b in row)
    again = await act(app, visitor(1), f"subscribe:{TRADE}")  # the same subscription, not a second one
    assert again.buttons == reply.buttons
    assert await count(app, Subscription) == 1
    listing = await act(app, visitor(1), "subscriptions")
    assert TRADE in listing.text and "有更新即推送" in listing.text
    choose = await act(app, visitor(1), "subscribe")
    labels = [b.label for row in choose.buttons for b in row]
    assert f"✓ {TRADE}" in labels and OTHER in labels


async def say(app: App, msg: IncomingMessage, text: str) -> Reply:
    (reply,) = await app.conversations.handle(dataclasses.replace(msg, text=text))
    return reply


async def test_subscribing_asked_in_words_shows_the_categories(core) -> None:
    """怎么订阅政策更新 found no entry and was escalated: the words do what /subscribe does."""
    app, _ = core
    menu = await say(app, visitor(1), "怎么订阅政策更新？")
    labels = [b.label for row in menu.buttons for b in row]
    assert menu.kind == "info" and TRADE in labels and OTHER in labels
    assert "还没有订阅" in (await say(app, visitor(1), "退订")).text
    await act(app, visitor(1), f"subscribe:{TRADE}")
    assert TRADE in (await say(app, visitor(1), "我的订阅")).text
    assert "请选择要退订" in (await say(app, visitor(1), "取消订阅")).text
    assert f"已退订「{TRADE}」" in (await say(app, visitor(1), f"退订{TRADE}")).text  # a category named
    assert f"已订阅「{OTHER}」" in (await say(app, visitor(1), f"订阅 {OTHER}")).text
    assert await count(app, Subscription) == 1
    async with app.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 1
    for text in ("订阅号怎么关注", "订阅了政策会收费吗", "退订预付卡要什么手续", f"订阅{TRADE}的政策在哪看"):
        assert (await say(app, visitor(2), text)).kind != "info", text  # questions, not commands


async def test_bad_input_is_refused_and_changes_nothing(core) -> None:
    app, _ = core
    with pytest.raises(Refusal) as unknown:
        await act(app, visitor(1), "subscribe:不存在的分类")
    assert unknown.value.code == "unknown_category" and TRADE in unknown.value.message
    mine = await act(app, visitor(1), f"subscribe:{TRADE}")
    sub_id = int(next(b.action for row in mine.buttons for b in row if b.action.startswith("unsub:"))[6:])
    with pytest.raises(Refusal) as other:
        await act(app, visitor(2), f"unsub:{sub_id}")
    assert other.value.code == "not_yours" and other.value.status == 403
    with pytest.raises(Refusal):
        await act(app, visitor(2), f"unsubscribe:{TRADE}")
    with pytest.raises(Refusal):
        await act(app, visitor(1), "follow:no-such-entry")
    with pytest.raises(Refusal):
        await act(app, visitor(1), "read:999")
    assert await count(app, Subscription) == 1
    assert await count(app, SubscriptionEvent) == 1


async def test_a_subscription_flood_is_refused(core) -> None:
    app, _ = core
    use(app, max_changes_per_hour=4, max_per_visitor=3)
    categories = await app.subscriptions.categories()
    for c in categories[:3]:
        await act(app, visitor(1), f"subscribe:{c}")
    with pytest.raises(Refusal) as full:
        await act(app, visitor(1), f"subscribe:{categories[3]}")
    assert full.value.code == "too_many_subscriptions"
    await act(app, visitor(1), f"unsubscribe:{categories[0]}")  # the 4th change this hour
    with pytest.raises(Refusal) as flood:
        await act(app, visitor(1), f"subscribe:{categories[0]}")
    assert flood.value.code == "subscription_flood" and flood.value.status == 429
    await act(app, visitor(1), f"unsubscribe:{categories[1]}")  # ending one is never refused
    assert await count(app, Subscription) == 1


async def test_review_on_new_entry_waits_then_reaches_only_its_subscribers(core) -> None:
    app, channel = core
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await act(app, visitor(2), f"subscribe:{OTHER}")
    await app.conversations.handle(dataclasses.replace(visitor(3), text="你好"))  # no subscription
    await app.services.kb.write_entries([faq("faq-new-1")])
    assert await app.push.run_once() == 1
    pending = await app.broadcasts.pending()
    assert len(pending) == 1 and pending[0].subscribers == 1
    assert timedelta(hours=11, minutes=59) < pending[0].left <= timedelta(hours=12)
    await app.outbox.deliver_due()
    assert channel.sent == []  # nothing before review
    assert await app.broadcasts.approve(pending[0].broadcast.id, "审核员") == 1
    await app.outbox.deliver_due()
    assert [c for c, _, _ in channel.sent] == [visitor(1).chat_ref]
    push = channel.sent[0][1]
    assert push.kind == "broadcast" and "faq-new-1 新规定是什么？" in push.text
    assert "外贸企业可以线上申报" in push.text and "榕商务〔2027〕1号" in push.source_line
    actions = [b.action for row in push.buttons for b in row]
    assert actions[0].startswith("read:") and actions[-1].startswith("unsub:")
    full = await act(app, visitor(1), actions[0])
    assert full.kind == "answer" and "线上申报" in full.text
    assert await app.push.run_once() == 0  # noticed once
    stats = await push_stats(app.services.sessions, 12)
    assert stats.subscribers == {OTHER: 1, TRADE: 1}
    assert stats.delivered == 1 and stats.within_deadline == 1.0 and stats.broadcasts == {"sent": 1}


async def test_dropped_broadcast_reaches_nobody(core) -> None:
    app, channel = core
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq("faq-new-2")])
    await app.push.run_once()
    (view,) = await app.broadcasts.pending()
    await app.broadcasts.drop(view.broadcast.id, "审核员")
    with pytest.raises(ValueError):
        await app.broadcasts.approve(view.broadcast.id, "审核员")
    await app.outbox.deliver_due()
    assert channel.sent == []


async def test_review_off_sends_at_once_and_unsubscribe_from_a_push_stops_the_next(core) -> None:
    app, channel = core
    use(app, review=False)
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await act(app, visitor(2), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq("faq-new-3")])
    assert await app.push.run_once() == 1
    await app.outbox.deliver_due()
    assert sorted(c for c, _, _ in channel.sent) == sorted([visitor(1).chat_ref, visitor(2).chat_ref])
    push = channel.to(visitor(1).chat_ref)[0]
    unsub = next(b.action for row in push.buttons for b in row if b.action.startswith("unsub:"))
    assert "已退订" in (await act(app, visitor(1), unsub)).text
    await app.services.kb.write_entries([faq("faq-new-4")])
    await app.push.run_once()
    await app.outbox.deliver_due()
    assert len(channel.to(visitor(1).chat_ref)) == 1
    assert len(channel.to(visitor(2).chat_ref)) == 2
    assert (await push_stats(app.services.sessions, 12)).unsubscribes == 1


async def test_followed_entry_expiry_and_revision_are_pushed(core) -> None:
    app, channel = core
    use(app, review=False)
    await app.services.kb.write_entries([faq("faq-follow", category="")])
    await app.push.run_once()
    reply = await act(app, visitor(1), "follow:faq-follow")
    assert "已关注" in reply.text
    await app.services.kb.add_alternate("faq-follow", "另一种问法")  # not material
    await app.push.run_once()
    await app.services.kb.write_entries(
        [faq("faq-follow", category="", answer="改为2027年3月1日起线上申报。")]
    )
    await app.push.run_once()
    await app.services.kb.set_status("faq-follow", "expired")
    await app.push.run_once()
    await app.outbox.deliver_due()
    texts = [r.text for r in channel.to(visitor(1).chat_ref)]
    assert len(texts) == 2
    assert texts[0].startswith("【内容更新】") and "3月1日" in texts[0]
    assert texts[1].startswith("【已失效】")
    assert channel.to(visitor(2).chat_ref) == []


async def test_a_valid_until_date_passing_is_pushed_to_followers(core) -> None:
    app, channel = core
    use(app, review=False)
    tz = ZoneInfo(app.settings.staff.timezone)  # dates are the bureau's calendar days
    tomorrow = (utcnow().astimezone(tz) + timedelta(days=1)).date().isoformat()
    await app.services.kb.write_entries([faq("faq-dated", valid_until=tomorrow)])
    await app.push.run_once()
    await act(app, visitor(1), "follow:faq-dated")
    early = await app.broadcasts.scanner.scan(utcnow() + timedelta(days=1))
    assert early == [], [(b.kind, b.change_key) for b in early]
    made = await app.broadcasts.scanner.scan(utcnow() + timedelta(days=3))
    assert [b.kind for b in made] == ["expired"]
    assert await app.broadcasts.scanner.scan(utcnow() + timedelta(days=4)) == []
    await app.outbox.deliver_due()
    (push,) = channel.to(visitor(1).chat_ref)
    assert "已失效" in push.text and tomorrow in push.text


async def test_overdue_review_is_flagged_and_posted_to_staff_once(core) -> None:
    app, _ = core
    staff = FakeChannel("telegram")
    app.registry.add(staff)
    app.broadcasts.staff_targets = [ChannelRef("telegram", "-100")]
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq("faq-late")])
    await app.push.run_once()
    later = utcnow() + timedelta(hours=12, minutes=1)
    (view,) = await app.broadcasts.pending(later)
    assert view.overdue
    assert await app.broadcasts.notice_overdue(later) == 1
    assert await app.broadcasts.notice_overdue(later + timedelta(hours=1)) == 0
    await app.outbox.deliver_due()
    (notice,) = staff.to("-100")
    assert "超时未审核" in notice.text and "faq-late" in notice.text


async def test_bulk_import_makes_one_batch_broadcast(core) -> None:
    app, channel = core
    use(app, review=False, max_new_per_scan=3)
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq(f"faq-bulk-{i}") for i in range(8)])
    assert await app.push.run_once() == 1
    await app.outbox.deliver_due()
    (push,) = channel.to(visitor(1).chat_ref)
    assert "新增 8 条" in push.text
    reads = [b.action for row in push.buttons for b in row if b.action.startswith("read:")]
    assert len(reads) == 5
    assert (await act(app, visitor(1), reads[1])).entry_id == "faq-bulk-1"


async def test_digest_subscribers_get_one_message_a_day(core) -> None:
    app, channel = core
    use(app, review=False, digest_hour=9)
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await act(app, visitor(1), "digest:on")
    await act(app, visitor(2), f"subscribe:{TRADE}")
    for entry_id in ("faq-d1", "faq-d2"):
        await app.services.kb.write_entries([faq(entry_id)])
        await app.broadcasts.scanner.scan()
    await app.outbox.deliver_due()
    assert len(channel.to(visitor(2).chat_ref)) == 2  # instant
    assert channel.to(visitor(1).chat_ref) == []  # waits for the digest hour
    tz = ZoneInfo(app.settings.staff.timezone)
    tomorrow = utcnow().astimezone(tz) + timedelta(days=1)
    early = tomorrow.replace(hour=8, minute=59)
    assert await app.broadcasts.send_digests(early) == 0
    at_nine = tomorrow.replace(hour=9, minute=0)
    assert await app.broadcasts.send_digests(at_nine) == 1
    assert await app.broadcasts.send_digests(at_nine + timedelta(minutes=5)) == 0  # once a day
    await app.outbox.deliver_due()
    (digest,) = channel.to(visitor(1).chat_ref)
    assert "日报" in digest.text and "共 2 条" in digest.text
    reads = [b.action for row in digest.buttons for b in row if b.action.startswith("read:")]
    assert len(reads) == 2
    stats = await push_stats(app.services.sessions, 12)
    assert stats.delivered == 3  # two instant pushes and one digest


async def test_each_push_is_delivered_once_across_a_restart(app: App) -> None:
    slow = FakeChannel("web", delay=0.01)
    app.registry.add(slow)
    await app.push.run_once()
    use(app, review=False, max_changes_per_hour=100)
    for n in range(40):
        await act(app, visitor(n), f"subscribe:{TRADE}")
    await app.services.kb.write_entries([faq("faq-restart")])
    await app.push.run_once()
    app.outbox.start()
    for _ in range(500):
        if len(slow.sent) >= 10:
            break
        await asyncio.sleep(0.01)
    await app.outbox.stop()  # a restart in the middle of the broadcast
    assert 10 <= len(slow.sent) < 40
    second = OutboxWorker(app.services.sessions, app.registry, poll=0.05)
    while await second.deliver_due() > 0:
        pass
    chats = [c for c, _, _ in slow.sent]
    assert len(chats) == 40 and len(set(chats)) == 40
    async with app.services.sessions() as s:
        statuses = set(await s.scalars(select(OutboxItem.status).where(OutboxItem.kind == "broadcast")))
        assert statuses == {"sent"}
        assert await s.scalar(select(func.count()).select_from(Delivery)) == 40
        assert await s.scalar(select(Broadcast.recipients)) == 40


async def test_settings_section_is_validated() -> None:
    from bot.config import ConfigError, settings_from_dict

    assert settings_from_dict({}).subscriptions == SubscriptionSettings()
    with pytest.raises(ConfigError, match=r"\[subscriptions\] digest_hour"):
        settings_from_dict({"subscriptions": {"digest_hour": 24}})
    with pytest.raises(ConfigError, match=r"\[telegram\] send_per_second"):
        settings_from_dict({"telegram": {"send_per_second": 31}})


async def test_an_entry_imported_by_another_process_reaches_the_subscriber(app: App, tmp_path) -> None:
    import json
    import sys

    channel = FakeChannel("web")
    app.registry.add(channel)
    use(app, review=False)
    app.push.interval = 0.2
    app.push.start()
    app.outbox.start()
    await act(app, visitor(1), f"subscribe:{TRADE}")
    await act(app, visitor(2), f"subscribe:{OTHER}")
    record = dataclasses.asdict(faq("faq-from-cli"))
    record.pop("origin")
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policybot", "--db", app.settings.database.url, "kb", "import", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "added 1" in out.decode()
    for _ in range(300):
        if channel.sent:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # and nothing else follows
    assert [c for c, _, _ in channel.sent] == [visitor(1).chat_ref]
    assert "faq-from-cli" in channel.sent[0][1].text


async def test_two_workers_make_one_broadcast_and_send_each_push_once(app: App, lexicon) -> None:
    first, second = FakeChannel("web", delay=0.002), FakeChannel("web", delay=0.002)
    app.registry.add(first)
    await app.push.run_once()
    use(app, review=False, max_changes_per_hour=100)
    other = await App.create(app.settings.replace("subscriptions", review=False), lexicon=lexicon)
    try:
        other.registry.add(second)
        for n in range(30):
            await act(app, visitor(n), f"subscribe:{TRADE}")
        await app.services.kb.write_entries([faq("faq-two-workers")])
        made = await asyncio.gather(app.push.run_once(), other.push.run_once())
        assert sorted(made) == [0, 1]  # the same change noticed by both: one broadcast
        await asyncio.gather(app.outbox.deliver_due(), other.outbox.deliver_due())
        await app.outbox.deliver_due()
        chats = [c for c, _, _ in first.sent + second.sent]
        assert len(chats) == 30 and len(set(chats)) == 30
        assert await count(app, Broadcast) == 1 and await count(app, Delivery) == 30
    finally:
        await other.close()


# -- a channel that lets the bot write first only for a while (WeChat's 48 hours) -----------------------------
def wechat_visitor(n: int) -> IncomingMessage:
    openid = f"oWechat-{n:04d}"
    return IncomingMessage("wechat", openid, openid)


async def last_seen_ago(app: App, msg: IncomingMessage, hours: float) -> None:
    """Pretend the visitor's last contact was ``hours`` ago."""
    async with app.services.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.chat_ref == msg.chat_ref)
            .values(last_seen_at=utcnow() - timedelta(hours=hours))
        )


async def deliveries(app: App, mode: str) -> int:
    async with app.services.sessions() as s:
        return int(
            await s.scalar(select(func.count()).select_from(Delivery).where(Delivery.mode == mode)) or 0
        )


async def test_a_push_outside_the_channel_window_waits_for_the_next_contact(core) -> None:
    app, web = core
    wechat = FakeChannel("wechat")
    app.registry.add(wechat)
    use(app, review=False)
    fresh, away, quiet = wechat_visitor(1), wechat_visitor(2), wechat_visitor(3)
    for who in (fresh, away, quiet, visitor(1)):
        await act(app, who, f"subscribe:{TRADE}")
    for who in (away, quiet, visitor(1)):  # the web has no window: its visitor hears anyway
        await last_seen_ago(app, who, 49)
    await app.services.kb.write_entries([faq("faq-win-1")])
    assert await app.push.run_once() == 1
    await app.outbox.deliver_due()
    assert [c for c, _, _ in wechat.sent] == [fresh.chat_ref]
    assert len(web.to(visitor(1).chat_ref)) == 1
    assert await deliveries(app, "held") == 2

    replies = await app.conversations.handle(dataclasses.replace(away, text="你好"))
    assert replies  # the visitor is answered as ever; the held push follows through the outbox
    await app.outbox.deliver_due()
    (push,) = wechat.to(away.chat_ref)
    assert "faq-win-1" in push.text and any(
        b.action.startswith("unsub:") for row in push.buttons for b in row
    )
    await app.conversations.handle(dataclasses.replace(away, text="谢谢"))
    await app.outbox.deliver_due()
    assert len(wechat.to(away.chat_ref)) == 1  # released once
    assert wechat.to(quiet.chat_ref) == []  # still away: still held
    assert await deliveries(app, "held") == 1 and await deliveries(app, "released") == 1
    assert (await push_stats(app.services.sessions, 12)).delivered == 3


async def test_a_digest_outside_the_window_goes_with_the_next_contact_in_one_message(core) -> None:
    app, _ = core
    wechat = FakeChannel("wechat")
    app.registry.add(wechat)
    use(app, review=False, digest_hour=9)
    who = wechat_visitor(7)
    await act(app, who, f"subscribe:{TRADE}")
    await act(app, who, "digest:on")
    for entry_id in ("faq-wd1", "faq-wd2"):
        await app.services.kb.write_entries([faq(entry_id)])
        await app.broadcasts.scanner.scan()
    await last_seen_ago(app, who, 49)
    tomorrow = utcnow().astimezone(ZoneInfo(app.settings.staff.timezone)) + timedelta(days=1)
    assert await app.broadcasts.send_digests(tomorrow.replace(hour=9, minute=0)) == 0  # held
    await app.outbox.deliver_due()
    assert wechat.sent == []
    await app.conversations.act(who, "subscriptions")  # a menu press is a contact too
    await app.outbox.deliver_due()
    (digest,) = [r for r in wechat.to(who.chat_ref) if r.kind == "broadcast"]
    assert "共 2 条" in digest.text


async def test_push_window_is_validated() -> None:
    from bot.config import ConfigError, settings_from_dict

    with pytest.raises(ConfigError, match=r"\[wechat\] push_window_hours"):
        settings_from_dict({"wechat": {"push_window_hours": 72}})

"""Subscriptions on Telegram, end to end: the real python-telegram-bot Application against the fake Bot API.

/subscribe with the categories as buttons and the confirmation, a new entry imported by ``policybot kb
import`` in another process reaching the subscriber and nobody else, 退订 under a push stopping the next
one, 关注此条 under an answer and that entry's expiry pushed, review on and off, a restart in the middle
of a broadcast delivering each message once, and the fake enforcing Telegram's flood limits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot.config import Settings
from knowledge.importers.base import ParsedEntry
from knowledge.models import Conversation, OutboxItem, Subscription
from knowledge.segment import Lexicon
from tests.fakes.bot_api import FakeBotAPI, FloodLimits, callback_update, text_update, user
from tests.test_telegram_e2e import ALICE, BOB, Bot, barrier, buttons, telegram_settings

Json = dict[str, Any]
TRADE = "外贸外资"
CAROL = user(1003, "林经理")
ANSWERED = "政府信息公开申请表要填哪些内容"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotAPI]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI(limits=FloodLimits(per_second=30, per_chat_seconds=0.0))
    await api.start()
    yield api
    await api.stop()


def settings_for(settings: Settings, fake: FakeBotAPI, **subscriptions: Any) -> Settings:
    s = telegram_settings(settings, fake)
    return s.replace("subscriptions", scan_seconds=1, **subscriptions)


@pytest.fixture
async def bot(settings: Settings, lexicon: Lexicon, fake: FakeBotAPI) -> AsyncIterator[Bot]:
    b = Bot(settings_for(settings, fake, review=False), lexicon)
    await b.start()
    b.core.push.interval = 0.2
    b.core.push.start()
    yield b
    await b.stop()


def say(fake: FakeBotAPI, who: Json, text: str) -> None:
    fake.push(text_update(fake, who, text))


def press(fake: FakeBotAPI, who: Json, message: Json, data: str) -> None:
    fake.push(callback_update(fake, who, message, data))


def record(entry_id: str, **kw: Any) -> dict[str, Any]:
    data = dataclasses.asdict(
        ParsedEntry(
            id=entry_id,
            kind="policy",
            title=f"关于{entry_id}的通知",
            answer="外贸企业出口退税可全程网上办理。申报材料减为三项。",
            category=TRADE,
            source={"title": "关于优化出口退税办理的通知", "number": "榕商务〔2027〕2号"},
            **kw,
        )
    )
    data.pop("origin")
    return data


async def kb_import(db_url: str, tmp: Path, *records: dict[str, Any]) -> None:
    """``policybot kb import`` in another process."""
    path = tmp / f"import-{records[0]['id']}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policybot", "--db", db_url, "kb", "import", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def subscribe(fake: FakeBotAPI, who: Json) -> str:
    """/subscribe, then press 外贸外资; returns the confirmation's 退订 action."""
    say(fake, who, "/subscribe")
    menu = (await fake.wait_sent(who["id"], "请选择要订阅的政策分类"))[-1]
    assert f"subscribe:{TRADE}" in buttons(menu)
    press(fake, who, menu, f"subscribe:{TRADE}")
    confirmation = (await fake.wait_sent(who["id"], f"已订阅「{TRADE}」"))[-1]
    return next(b for b in buttons(confirmation) if b.startswith("unsub:"))


async def test_subscribe_push_read_and_unsubscribe(bot: Bot, fake: FakeBotAPI, tmp_path: Path) -> None:
    await subscribe(fake, ALICE)
    say(fake, BOB, "/subscriptions")
    await fake.wait_sent(BOB["id"], "您还没有订阅")
    await kb_import(bot.settings.database.url, tmp_path, record("policy-tg-1"))
    (push,) = await fake.wait_sent(ALICE["id"], "【新发布】", within=15)
    assert "关于policy-tg-1的通知" in push["text"] and "榕商务〔2027〕2号" in push["text"]
    read, unsub = buttons(push)[0], buttons(push)[-1]
    press(fake, ALICE, push, read)
    await fake.wait_sent(ALICE["id"], "申报材料减为三项", count=2)
    press(fake, ALICE, push, unsub)
    await fake.wait_sent(ALICE["id"], "已退订")
    await kb_import(bot.settings.database.url, tmp_path, record("policy-tg-2"))
    await asyncio.sleep(1.5)  # several scans
    await barrier(fake, ALICE)
    assert len([m for m in fake.sent(ALICE["id"]) if "【新发布】" in m["text"]]) == 1
    assert not [m for m in fake.sent(BOB["id"]) if "【新发布】" in m["text"]]
    assert fake.flood_rejections == 0


async def test_refusals_on_telegram(bot: Bot, fake: FakeBotAPI) -> None:
    unsub = await subscribe(fake, ALICE)
    say(fake, BOB, "/subscribe 不存在的分类")
    refusal = (await fake.wait_sent(BOB["id"], "没有“不存在的分类”这个分类"))[-1]
    assert TRADE in refusal["text"]
    confirmation = (await fake.wait_sent(ALICE["id"], "已订阅"))[-1]
    press(fake, BOB, confirmation, unsub)  # someone else's 退订 (a forwarded message)
    await fake.wait_for(
        lambda c: c.method == "answerCallbackQuery" and "不是您的订阅" in str(c.params.get("text"))
    )
    async with bot.core.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Subscription)) == 1


async def test_follow_from_an_answer_and_its_expiry(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, CAROL, ANSWERED)
    answer = (await fake.wait_sent(CAROL["id"], "来源", count=1))[-1]
    follow = next(b for b in buttons(answer) if b.startswith("follow:"))
    assert any(b.startswith("subscribe:") for b in buttons(answer))
    entry_id = follow.split(":", 1)[1]
    press(fake, CAROL, answer, follow)
    await fake.wait_sent(CAROL["id"], "已关注")
    await bot.core.services.kb.set_status(entry_id, "expired")  # retired in the console
    expired = (await fake.wait_sent(CAROL["id"], "【已失效】", within=15))[-1]
    assert "您关注的内容" in expired["text"]


async def test_review_on_waits_for_the_console(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, tmp_path: Path
) -> None:
    b = Bot(settings_for(settings, fake, review=True), lexicon)
    await b.start()
    try:
        b.core.push.interval = 0.2
        b.core.push.start()
        await subscribe(fake, ALICE)
        await kb_import(settings.database.url, tmp_path, record("policy-tg-4"))
        for _ in range(100):
            if await b.core.broadcasts.pending():
                break
            await asyncio.sleep(0.1)
        (view,) = await b.core.broadcasts.pending()
        assert not [m for m in fake.sent(ALICE["id"]) if "【新发布】" in m["text"]]
        await b.core.broadcasts.approve(view.broadcast.id, "审核员")
        await fake.wait_sent(ALICE["id"], "【新发布】")
    finally:
        await b.stop()


async def test_a_restart_in_the_middle_of_a_broadcast_delivers_each_message_once(
    settings: Settings, lexicon: Lexicon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI(limits=FloodLimits())  # Telegram's limits: 30 a second, one a second per chat
    await api.start()
    s = settings_for(settings, api, review=False).replace("telegram", send_per_second=20.0)
    b = Bot(s, lexicon)
    try:
        await b.start()
        await b.core.push.run_once()
        chats = list(range(50_000, 50_120))
        async with b.core.services.sessions() as session, session.begin():
            await session.execute(
                insert(Conversation),
                [
                    {"channel": "telegram", "chat_ref": str(c), "user_ref": str(c), "display_name": ""}
                    for c in chats
                ],
            )
            ids = list(
                await session.scalars(
                    select(Conversation.id).where(Conversation.chat_ref.in_([str(c) for c in chats]))
                )
            )
            await session.execute(
                insert(Subscription),
                [{"conversation_id": i, "topic": f"c:{TRADE}", "mode": "instant"} for i in ids],
            )
        await b.core.services.kb.write_entries([ParsedEntry(**record("policy-tg-5"))])
        assert await b.core.push.run_once() == 1
        await api.wait_for(lambda c: len(api.sent()) >= 40, within=20)
        await b.restart()  # policybot stopped and started again mid-broadcast
        for _ in range(300):
            if await b.count(OutboxItem, OutboxItem.status != "sent") == 0:
                break
            await asyncio.sleep(0.1)
        got = [int(m["chat"]["id"]) for m in api.sent() if "【新发布】" in m["text"]]
        assert sorted(got) == chats  # every subscriber once, nobody twice
        assert api.flood_rejections == 0
    finally:
        await b.stop()
        await api.stop()


async def test_the_fake_enforces_telegrams_flood_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from telegram import Bot as PTBBot
    from telegram.error import RetryAfter

    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI(limits=FloodLimits())
    await api.start()
    try:
        async with PTBBot(api.token, base_url=api.base_url) as tg:
            await tg.send_message(chat_id=1, text="一")
            with pytest.raises(RetryAfter):
                await tg.send_message(chat_id=1, text="二")  # the same chat within a second
            for chat in range(2, 31):
                await tg.send_message(chat_id=chat, text="群发")
            with pytest.raises(RetryAfter):
                await tg.send_message(chat_id=99, text="第 31 条")  # 31 in one second
        assert api.flood_rejections == 2
    finally:
        await api.stop()

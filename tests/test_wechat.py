"""The WeChat Official Account channel end to end: the real web application with the WeChat route, signed
(and in safe mode encrypted) requests as WeChat's server sends them, and a local fake WeChat API for
access tokens and customer-service messages. Every test runs in plaintext and in safe mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from bot.conversation import GREETING, NOT_TEXT
from bot.credentials import Credential
from bot.messages import IncomingMessage, Reply
from handlers.web import build_web_app
from handlers.wechat import UNKNOWN_KEY, start_wechat
from handlers.wechat_api import WechatApi
from handlers.wechat_render import CHOOSE_HINT, RATE_HINT, split_bytes
from knowledge.models import (
    ChannelToken,
    Conversation,
    Feedback,
    Message,
    OutboxItem,
    ProcessedUpdate,
    Rating,
    Ticket,
    utcnow,
)
from knowledge.segment import Lexicon
from tests.conftest import seed_path
from tests.fakes.wechat import (
    APP_ID,
    APP_SECRET,
    FakeWechatAPI,
    WechatSender,
    event_xml,
    media_xml,
    reply_content,
    text_xml,
)

TOKEN = "policybotToken1"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
USER = "oUser-0001_openid"
NUMBER_Q = "这个方案的文号是多少？"
VAGUE_Q = "信息公开"
OFF_Q = "明天会下雨吗"


@dataclass
class Wechat:
    app: App
    api: FakeWechatAPI
    client: TestClient
    wx: WechatSender
    path: str = "/wechat"

    async def post(self, xml: str, timestamp: int | None = None) -> tuple[int, str]:
        query, body = self.wx.post(xml, timestamp)
        resp = await self.client.post(self.path, params=query, data=body.encode())
        return resp.status, await resp.text()

    async def say(self, text: str, msg_id: int | None = None, user: str = USER) -> str:
        """Send a text; the passive reply's text ('' for ``success``)."""
        status, body = await self.post(text_xml(user, text, msg_id or self.wx.next_msg_id()))
        assert status == 200, body
        return self.content(body)

    def content(self, body: str) -> str:
        plain = self.wx.read(body)
        return "" if plain == "success" else reply_content(plain)

    async def count(self, model: type) -> int:
        async with self.app.services.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)

    async def state(self) -> list[int]:
        return [await self.count(m) for m in (Conversation, Message, Ticket, ProcessedUpdate, OutboxItem)]

    async def deliver(self) -> int:
        return await self.app.outbox.deliver_due()


@asynccontextmanager
async def open_wechat(
    settings: Settings, lexicon: Lexicon, safe: bool, **values: object
) -> AsyncIterator[Wechat]:
    """The web application with the WeChat route, against a fresh fake WeChat API."""
    api = FakeWechatAPI()
    await api.start()
    aes = AES_KEY if safe else ""
    settings = settings.replace(
        "wechat", token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET, encoding_aes_key=aes,
        api_base_url=api.base_url, **values,
    ).replace("handoff", auto_escalate=True)  # fmt: skip
    app = await App.create(settings, lexicon=lexicon)
    await app.services.kb.import_paths([seed_path()])
    await start_wechat(app)
    client = TestClient(TestServer(build_web_app(app)))
    await client.start_server()
    try:
        yield Wechat(app, api, client, WechatSender(TOKEN, aes))
    finally:
        await client.close()
        await app.close()
        await api.stop()


@pytest.fixture(params=["plaintext", "safe"])
async def wechat(
    request: pytest.FixtureRequest, settings: Settings, lexicon: Lexicon
) -> AsyncIterator[Wechat]:
    async with open_wechat(settings, lexicon, request.param == "safe") as w:
        yield w


# -- server verification and signatures -------------------------------------------------------------------
async def test_server_verification(wechat: Wechat) -> None:
    query = wechat.wx.query(echostr="echo-1234")
    resp = await wechat.client.get("/wechat", params=query)
    assert resp.status == 200 and await resp.text() == "echo-1234"
    query["signature"] = "0" * 40
    resp = await wechat.client.get("/wechat", params=query)
    assert resp.status == 403 and "echo" not in await resp.text()


# -- questions ----------------------------------------------------------------------------------------------
async def test_answer_with_its_source(wechat: Wechat) -> None:
    text = await wechat.say(NUMBER_Q)
    assert "鼓商务〔2020〕123号" in text
    assert "来源：《鼓楼区商务局2020年政务公开工作实施方案》" in text


async def test_candidates_are_numbered_and_a_number_picks_one(wechat: Wechat) -> None:
    text = await wechat.say(VAGUE_Q)
    assert text.startswith("您是不是想问") and CHOOSE_HINT in text
    lines = [line for line in text.splitlines() if line[:1].isdigit()]
    assert len(lines) >= 3 and lines[-1].endswith("都不是，转人工")
    first_title = lines[0].split(". ", 1)[1]
    picked = await wechat.say("1")
    assert "来源：" in picked and first_title[:6] in picked
    rating = [line for line in picked.splitlines() if line[:1].isdigit()][-2:]
    assert [line.split(". ", 1)[1] for line in rating] == ["有用", "没解决"]  # numbered last
    await wechat.say(rating[0].split(".")[0])  # rated 有用: nothing is pending now
    # a number with no choices pending is a question like any other
    again = await wechat.say("1")
    assert CHOOSE_HINT not in again or again.startswith("您是不是想问")
    # the last choice hands the question to staff
    await wechat.say(VAGUE_Q)
    escalated = await wechat.say(str(len(lines)))
    assert "工单号 #" in escalated


async def test_an_answer_and_a_staff_reply_are_rated_by_number(wechat: Wechat) -> None:
    """WeChat has no buttons: 有用 / 没解决 under an answer and 满意 / 一般 / 不满意 under a staff reply are
    numbered lines, and the number is the rating (as the buttons are on Telegram and the web)."""
    answer = await wechat.say(NUMBER_Q)
    lines = [line for line in answer.splitlines() if line[:1].isdigit()]
    assert lines == ["1. 有用", "2. 没解决"] and RATE_HINT in answer
    # 订阅此类政策更新 under it: the words to send name the answer's category, not the button
    assert "订阅 订阅此类政策更新" not in answer and "例如：订阅 政策文件" in answer
    thanks = await wechat.say("1")
    async with wechat.app.services.sessions() as s:
        assert [f.helpful for f in await s.scalars(select(Feedback))] == [True]
    assert "1. 有用" not in thanks  # nothing left to rate: a number is a question again
    text = await wechat.say(OFF_Q)
    ticket_id = int(text.split("工单号 #")[1].split("。")[0])
    await wechat.app.tickets.reply(ticket_id, "王老师", "明天多云，20 到 25 度。")
    assert await wechat.deliver() == 1
    await wechat.say("2")
    async with wechat.app.services.sessions() as s:
        assert [(r.score, r.ticket_id) for r in await s.scalars(select(Rating))] == [("fair", ticket_id)]


async def test_escalation_ticket_and_the_staff_reply_by_customer_service_message(wechat: Wechat) -> None:
    text = await wechat.say(OFF_Q)
    assert "工单号 #" in text and "/status" in text
    ticket_id = int(text.split("工单号 #")[1].split("。")[0])
    await wechat.app.tickets.reply(ticket_id, "王老师", "明天多云，20 到 25 度。")
    assert await wechat.deliver() == 1
    assert wechat.api.sent == [
        (
            USER,
            f"工作人员答复（工单 #{ticket_id}）：\n明天多云，20 到 25 度。\n\n1. 满意\n2. 一般\n3. 不满意\n{RATE_HINT}",
        )
    ]
    assert wechat.api.token_calls == 1
    async with wechat.app.services.sessions() as s:
        stored = await s.get(ChannelToken, f"wechat:{APP_ID}")
    assert stored is not None and stored.value.startswith("ACCESS_TOKEN_")


async def test_a_retried_message_is_answered_once(wechat: Wechat) -> None:
    msg_id = wechat.wx.next_msg_id()
    first = await wechat.say(OFF_Q, msg_id)
    before = await wechat.state()
    second = await wechat.say(OFF_Q, msg_id)
    assert second == first and "工单号 #" in first
    assert await wechat.state() == before  # one question, one ticket


async def test_subscribe_gets_the_welcome(wechat: Wechat) -> None:
    status, body = await wechat.post(event_xml(USER, "subscribe"))
    text = wechat.content(body)
    assert status == 200 and text.startswith(GREETING.split("\n")[0])
    numbered = [line for line in text.splitlines() if line[:1].isdigit()]
    assert numbered and CHOOSE_HINT in text  # the categories (and hot questions), numbered
    assert await wechat.count(Message) == 1  # stored: the number typed next chooses among them
    category = numbered[-1].split(". ", 1)[1].split("（")[0]
    assert f"「{category}」共" in await wechat.say(str(len(numbered)))
    status, body = await wechat.post(event_xml(USER, "unsubscribe"))
    assert status == 200 and body == "success"


async def test_a_category_from_the_menu_is_chosen_from_by_number(wechat: Wechat) -> None:
    """A menu's category list numbers its entries: the number typed next opens that entry (the list was
    not stored, so the number chose from an earlier reply, or was asked as a question)."""
    (category,) = await wechat.app.subscriptions.categories()
    status, body = await wechat.post(event_xml(USER, "CLICK", f"cat:{category}"))
    listing = wechat.content(body)
    lines = [line for line in listing.splitlines() if line[:1].isdigit()]
    assert status == 200 and lines and CHOOSE_HINT in listing
    title = lines[0].split(". ", 1)[1]
    opened = await wechat.say("1")
    assert title[:8] in opened and "来源：" in opened


async def test_menu_clicks(wechat: Wechat) -> None:
    status, body = await wechat.post(event_xml(USER, "CLICK", f"q:{NUMBER_Q}"))
    assert status == 200 and "鼓商务〔2020〕123号" in wechat.content(body)
    await wechat.say(OFF_Q)
    status, body = await wechat.post(event_xml(USER, "CLICK", "status"))
    assert "您的问题：" in wechat.content(body) and "等待处理" in wechat.content(body)
    status, body = await wechat.post(event_xml(USER, "CLICK", "help"))
    assert "/human" in wechat.content(body)
    status, body = await wechat.post(event_xml(USER, "CLICK", "no-such-key"))
    assert wechat.content(body) == UNKNOWN_KEY
    # a menu key subscribing to a category that does not exist: refused in words (it was a 500)
    status, body = await wechat.post(event_xml(USER, "CLICK", "subscribe:没有这个分类"))
    assert status == 200 and "没有“没有这个分类”这个分类" in wechat.content(body)


async def test_media_get_a_polite_text_or_join_the_open_ticket(wechat: Wechat) -> None:
    for kind in ("image", "voice", "location", "shortvideo"):
        status, body = await wechat.post(media_xml(USER, kind, wechat.wx.next_msg_id()))
        assert status == 200 and wechat.content(body) == NOT_TEXT
    ticket_id = await _ticket(wechat)
    status, body = await wechat.post(media_xml(USER, "image", wechat.wx.next_msg_id()))
    assert f"#{ticket_id}" in wechat.content(body) and "图片" in wechat.content(body)


async def test_long_answers_are_cut_into_messages() -> None:
    text = "\n".join(f"第{i}行：" + "政策" * 100 for i in range(20))
    parts = split_bytes(text, 2000)
    assert all(len(p.encode()) <= 2000 for p in parts) and "\n".join(parts) == text
    assert split_bytes("字" * 1000, 2000) == ["字" * 666, "字" * 334]


# -- delivery: token, retries, the 48-hour window -------------------------------------------------------------
async def _ticket(wechat: Wechat) -> int:
    text = await wechat.say(OFF_Q)
    return int(text.split("工单号 #")[1].split("。")[0])


async def test_out_of_the_48_hour_window_shows_in_the_console(wechat: Wechat) -> None:
    ticket_id = await _ticket(wechat)
    wechat.api.fail("send", 45015)
    await wechat.app.tickets.reply(ticket_id, "王老师", "答复内容")
    await wechat.deliver()
    assert wechat.api.sent == []
    reasons = await wechat.app.tickets.undelivered(ticket_id)
    assert len(reasons) == 1 and "48 小时" in reasons[0]


async def test_limits_and_server_errors_are_retried_without_sending_twice(wechat: Wechat) -> None:
    ticket_id = await _ticket(wechat)
    wechat.api.fail("send", 45009)
    wechat.api.fail("send", http=502)
    await wechat.app.tickets.reply(ticket_id, "王老师", "答复内容")
    for _ in range(3):  # each pass as if the retry were due
        await wechat.app.outbox.deliver_due(utcnow() + timedelta(hours=1))
    assert [text.split("\n\n")[0] for _, text in wechat.api.sent] == [
        "工作人员答复（工单 #" + str(ticket_id) + "）：\n答复内容"
    ]  # (sent once; its rating lines follow the text)
    async with wechat.app.services.sessions() as s:
        row = await s.scalar(select(OutboxItem).where(OutboxItem.channel == "wechat"))
    assert row is not None and row.status == "sent" and row.attempts == 3


async def test_the_access_token_is_cached_and_refreshed(wechat: Wechat) -> None:
    api = WechatApi(wechat.app.settings.wechat, wechat.app.credentials)
    try:
        first = await api.access_token()
        assert await api.access_token() == first and wechat.api.token_calls == 1
        # a second worker reads the token from the database instead of fetching another
        other = WechatApi(wechat.app.settings.wechat, wechat.app.credentials)
        assert await other.access_token() == first and wechat.api.token_calls == 1
        await other.close()
        # five minutes before expiry it is fetched again
        await wechat.app.credentials.put(api.name, Credential(first, utcnow() + timedelta(minutes=4)))
        api._token = None
        assert await api.access_token() != first and wechat.api.token_calls == 2
        # a token WeChat no longer accepts (40001) is replaced and the message sent once
        wechat.api.expire_tokens()
        await api.send_text(USER, "你好")
        assert wechat.api.sent == [(USER, "你好")] and wechat.api.token_calls == 3
    finally:
        await api.close()


@pytest.mark.parametrize("safe", [False, True])
async def test_a_slow_answer_goes_out_as_a_customer_service_message(
    settings: Settings, lexicon: Lexicon, monkeypatch: pytest.MonkeyPatch, safe: bool
) -> None:
    async with open_wechat(settings, lexicon, safe, reply_seconds=0.5) as wechat:
        handle = wechat.app.conversations.handle

        async def slow(msg: IncomingMessage, **kw: bool) -> list[Reply]:
            await asyncio.sleep(0.8)  # longer than reply_seconds
            return await handle(msg, **kw)

        monkeypatch.setattr(wechat.app.conversations, "handle", slow)
        msg_id = wechat.wx.next_msg_id()
        assert await wechat.say(NUMBER_Q, msg_id) == ""  # "success": no passive reply
        assert await wechat.say(NUMBER_Q, msg_id) == ""  # WeChat's retry: no second answer either
        for _ in range(60):
            await asyncio.sleep(0.05)
            await wechat.deliver()
            if wechat.api.sent:
                break
        await asyncio.sleep(0.3)
        await wechat.deliver()
        assert len(wechat.api.sent) == 1 and "鼓商务〔2020〕123号" in wechat.api.sent[0][1]


# -- bad input: a clear refusal, nothing changed ------------------------------------------------------------
async def test_bad_requests_are_refused_and_change_nothing(wechat: Wechat) -> None:
    before = await wechat.state()
    good = text_xml(USER, OFF_Q, wechat.wx.next_msg_id())
    # a wrong signature
    query, body = wechat.wx.post(good)
    query["signature"] = "f" * 40
    resp = await wechat.client.post("/wechat", params=query, data=body.encode())
    assert resp.status == 403 and "signature" in await resp.text()
    # a replayed request: signed long ago
    status, text = await wechat.post(good, timestamp=int(time.time()) - 3600)
    assert status == 403 and "timestamp" in text
    # malformed XML, an entity declaration, not a WeChat message
    for xml in ("<xml><ToUserName>", "<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>", "<xml><a>1</a></xml>"):
        status, text = await wechat.post(xml)
        assert status in (400, 403) and text, xml
    # an oversized body
    status, text = await wechat.post(text_xml(USER, "长" * 20_000, wechat.wx.next_msg_id()))
    assert status == 413 and "too large" in text
    # a message type WeChat might add one day: a polite text, and nothing stored
    status, body = await wechat.post(media_xml(USER, "hologram", wechat.wx.next_msg_id()))
    assert status == 200 and wechat.content(body) == NOT_TEXT
    assert await wechat.state() == before
    assert wechat.api.sent == [] and wechat.api.token_calls == 0


def test_invalid_wechat_settings_fail_at_start_naming_the_key() -> None:
    from bot.config import ConfigError, settings_from_dict

    cases = {
        "token": {"wechat": {"token": "bad token!", "app_id": APP_ID}},
        "app_id": {"wechat": {"token": TOKEN}},
        "encoding_aes_key": {"wechat": {"token": TOKEN, "app_id": APP_ID, "encoding_aes_key": "short"}},
        "path": {"wechat": {"path": "/api/wechat"}},
        "api_base_url": {"wechat": {"api_base_url": "ftp://x"}},
        "enabled": {"wechat": {"token": TOKEN, "app_id": APP_ID}, "web": {"enabled": False}},
        "webhook_url": {"wecom": {"webhook_url": "qyapi.weixin.qq.com"}},
        "daily_summary_at": {"wecom": {"daily_summary_at": "25:00"}},
    }
    for key, raw in cases.items():
        with pytest.raises(ConfigError, match=key):
            settings_from_dict(raw, env={})


# -- subscriptions by words, and the 48-hour window for pushes ------------------------------------------------
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_subscriptions_by_words_and_a_push_held_until_the_next_message(
    settings: Settings, lexicon: Lexicon, safe: bool
) -> None:
    # Every reply is read from the passive answer: give a loaded machine time to make it.
    async with open_wechat(settings, lexicon, safe, reply_seconds=60.0) as wechat:
        await _subscriptions_by_words(wechat)


async def _subscriptions_by_words(wechat: Wechat) -> None:
    import dataclasses

    from sqlalchemy import update

    from knowledge.importers.base import ParsedEntry

    app = wechat.app
    new = dataclasses.replace(app.settings.subscriptions, review=False)
    app.subscriptions.settings = app.broadcasts.settings = app.broadcasts.scanner.settings = new
    await app.push.run_once()  # the baseline: the imported seed is not news
    (category,) = await app.subscriptions.categories()

    offer = await wechat.say("订阅")
    assert f"· {category}" in offer and f"订阅 {category}" in offer  # the words to send, with an example
    assert "已订阅" in await wechat.say(f"订阅 {category}")
    assert category in await wechat.say("我的订阅")
    question = await wechat.say("订阅的政策在哪里看")  # a word followed by no category: a question
    assert "已订阅" not in question and "没有“" not in question

    def entry(n: int) -> ParsedEntry:
        return ParsedEntry(
            id=f"faq-wx-{n}", kind="faq", question=f"第{n}号新规定是什么？", answer="自2027年起线上申报。",
            category=category, source={"title": "某某通知"},
        )  # fmt: skip

    await app.services.kb.write_entries([entry(1)])
    assert await app.push.run_once() == 1
    await wechat.deliver()
    ((to, text),) = wechat.api.sent
    assert to == USER and "第1号新规定" in text and "退订 分类名" in text  # how to stop, in words
    assert "1. 阅读全文" in text  # numbered: the push is recorded in the conversation once sent
    assert "自2027年起线上申报" in await wechat.say("1")

    async with app.services.sessions() as s, s.begin():  # the visitor last wrote 49 hours ago
        await s.execute(update(Conversation).values(last_seen_at=utcnow() - timedelta(hours=49)))
    await app.services.kb.write_entries([entry(2)])
    assert await app.push.run_once() == 1
    await wechat.deliver()
    assert len(wechat.api.sent) == 1  # WeChat would refuse it (45015): held
    await wechat.say("你好")
    await wechat.deliver()
    assert len(wechat.api.sent) == 2 and "第2号新规定" in wechat.api.sent[1][1]

    assert "已退订" in await wechat.say(f"退订{category}")
    await app.services.kb.write_entries([entry(3)])
    await app.push.run_once()
    await wechat.deliver()
    assert len(wechat.api.sent) == 2

"""Issue 15 through each channel: the web API (aiohttp test client), Telegram (the real PTB Application
against the fake Bot API) and the terminal. Greeting, referral, no answer then 转人工, an answerable
question while a ticket is open, 没解决, and bad input on the new actions."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from handlers.terminal import run_terminal_chat
from knowledge.models import Message, Ticket
from knowledge.segment import Lexicon
from tests.fakes.bot_api import FakeBotAPI, user
from tests.test_telegram_e2e import STAFF_CHAT, Bot, buttons, press, say, telegram_settings, ticket_no

ANSWERED = "外资企业年报什么时候报？"
UNKNOWN = "会议室周末能借用吗"
OTHER_UNKNOWN = "火星上养骆驼需要什么许可"
REFERRAL = "个人社保断缴了怎么补缴？"
TOKEN = "front-desk-visitor-01"
OTHER = "front-desk-visitor-02"


async def ticket_count(app: App) -> int:
    async with app.services.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Ticket)) or 0)


# -- web ------------------------------------------------------------------------------------------------
async def ask(client: TestClient, question: str, token: str = TOKEN) -> dict:
    resp = await client.post("/api/ask", json={"token": token, "question": question})
    assert resp.status == 200, await resp.text()
    (reply,) = (await resp.json())["replies"]
    return reply


async def act(client: TestClient, action: str, token: str = TOKEN) -> dict:
    resp = await client.post("/api/action", json={"token": token, "action": action})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["reply"]


async def test_web_front_desk(client: TestClient, app: App) -> None:
    hello = await ask(client, "你好")
    assert hello["kind"] == "answer" and hello["entry_id"] == "smalltalk-hello"
    referral = await ask(client, REFERRAL)
    assert referral["kind"] == "answer" and referral["entry_id"] == "ref-hrss" and "12333" in referral["text"]
    no_answer = await ask(client, UNKNOWN)
    assert no_answer["kind"] == "no_answer" and no_answer["ticket_id"] is None
    assert "/human" not in no_answer["text"] and "/status" not in no_answer["text"]  # buttons on the web
    human = no_answer["buttons"][-1][0]
    assert human["label"] == "转人工" and await ticket_count(app) == 0
    escalated = await act(client, human["action"])
    assert escalated["kind"] == "escalated" and escalated["text"].startswith("好的，已为您转人工")
    assert "/status" not in escalated["text"]
    assert [[b["action"] for b in row] for row in escalated["buttons"]] == [
        ["status", f"cancel:{escalated['ticket_id']}"]
    ]
    tid = escalated["ticket_id"]
    # with the ticket open: an answerable question is answered (and in the ticket), the rest added to it
    answer = await ask(client, ANSWERED)
    assert answer["kind"] == "answer" and answer["entry_id"] == "faq-trade-004" and answer["ticket_id"] == tid
    added = await ask(client, OTHER_UNKNOWN)
    assert added["kind"] == "info" and added["text"].startswith(f"已补充到工单 #{tid}")
    # 没解决 on the answer: added to the same ticket, worded apart from 转人工
    resp = await client.post(
        "/api/feedback", json={"token": TOKEN, "message_id": answer["message_id"], "helpful": False}
    )
    unsolved = (await resp.json())["reply"]
    assert unsolved["kind"] == "info" and unsolved["ticket_id"] == tid and "没有解决" in unsolved["text"]
    status = await act(client, "status")
    assert f"#{tid}" in status["text"]
    assert await ticket_count(app) == 1
    history = (await (await client.get(f"/api/conversations/{TOKEN}")).json())["messages"]
    assert [m["kind"] for m in history if m["author"] == "bot"][2] == "no_answer"


async def test_web_not_helpful_opens_a_ticket_worded_for_it(client: TestClient, app: App) -> None:
    answer = await ask(client, ANSWERED)
    resp = await client.post(
        "/api/feedback", json={"token": TOKEN, "message_id": answer["message_id"], "helpful": False}
    )
    reply = (await resp.json())["reply"]
    assert reply["kind"] == "escalated" and reply["text"].startswith("抱歉这条回答没有解决您的问题")
    (item,) = await app.tickets.queue()
    assert (item.ticket.reason, item.ticket.question) == ("not_helpful", ANSWERED)


@pytest.mark.parametrize("action", ["escalate:x", "escalate:1:2", "human:1", "escalate:-1", "人工"])
async def test_web_bad_handoff_actions_are_refused(client: TestClient, app: App, action: str) -> None:
    await ask(client, UNKNOWN)
    resp = await client.post("/api/action", json={"token": TOKEN, "action": action})
    assert resp.status == 400 and (await resp.json())["error"] == "unknown_action"
    assert await ticket_count(app) == 0


async def test_web_handoff_of_another_visitors_question_does_not_leak_it(
    client: TestClient, app: App
) -> None:
    secret = "我叫张三，会议室周末能借用吗"
    no_answer = await ask(client, secret)
    other = await act(client, no_answer["buttons"][-1][0]["action"], OTHER)
    assert other["kind"] == "escalated"
    (item,) = await app.tickets.queue()
    assert item.conversation.chat_ref == OTHER and "张三" not in item.ticket.question
    bad = await client.post("/api/action", json={"token": "short", "action": "human"})
    assert bad.status == 400 and (await bad.json())["error"] == "bad_token"
    assert await ticket_count(app) == 1


# -- Telegram -------------------------------------------------------------------------------------------
ALICE = user(2001, "林女士")


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotAPI]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def tg(settings: Settings, lexicon: Lexicon, fake: FakeBotAPI) -> AsyncIterator[Bot]:
    """policybot on Telegram with the default handoff: staff only when asked."""
    b = Bot(telegram_settings(settings, fake, auto_escalate=False), lexicon)
    await b.start()
    yield b
    await b.stop()


async def test_telegram_front_desk(tg: Bot, fake: FakeBotAPI) -> None:
    me = ALICE["id"]
    say(fake, ALICE, "你好")
    await fake.wait_sent(me, "您好")
    say(fake, ALICE, REFERRAL)
    await fake.wait_sent(me, "12333")
    say(fake, ALICE, UNKNOWN)
    (no_answer,) = await fake.wait_sent(me, "这个问题我暂时还没有准确的答案")
    assert "发送 /human 转人工" in no_answer["text"]  # commands on Telegram, beside the buttons
    assert await tg.count(Ticket) == 0
    human = [d for d in buttons(no_answer) if d.startswith("escalate:")]
    assert len(human) == 1
    press(fake, ALICE, no_answer, human[0])
    (escalated,) = await fake.wait_sent(me, "已为您转人工，工单号 #")
    number = ticket_no(escalated["text"])
    assert "/status 查看进度，/cancel 撤回" in escalated["text"]
    assert buttons(escalated) == ["status", f"cancel:{number}"]
    (post,) = await fake.wait_sent(STAFF_CHAT, f"新工单 #{number}")
    assert UNKNOWN in post["text"]
    # an answerable question while the ticket is open is answered
    say(fake, ALICE, ANSWERED)
    (answer,) = await fake.wait_sent(me, "来源")
    assert "feedback:down:" in " ".join(buttons(answer))
    say(fake, ALICE, OTHER_UNKNOWN)
    await fake.wait_sent(me, f"已补充到工单 #{number}")
    await fake.wait_sent(STAFF_CHAT, OTHER_UNKNOWN)
    # 没解决 on that answer: added to the open ticket, no second one
    down = next(d for d in buttons(answer) if d.startswith("feedback:down:"))
    press(fake, ALICE, answer, down)
    await fake.wait_sent(me, "抱歉这条回答没有解决您的问题。已把它补充到")
    assert await tg.count(Ticket) == 1


async def test_telegram_typed_human_and_not_helpful(tg: Bot, fake: FakeBotAPI) -> None:
    me = ALICE["id"]
    say(fake, ALICE, UNKNOWN)
    await fake.wait_sent(me, "这个问题我暂时还没有准确的答案")
    say(fake, ALICE, "转人工")
    (escalated,) = await fake.wait_sent(me, "已为您转人工")
    number = ticket_no(escalated["text"])
    assert (await tg.ticket(number)).question == UNKNOWN
    say(fake, ALICE, "/cancel")
    await fake.wait_sent(me, f"已撤回工单 #{number}")
    say(fake, ALICE, ANSWERED)
    (answer,) = await fake.wait_sent(me, "来源")
    down = next(d for d in buttons(answer) if d.startswith("feedback:down:"))
    press(fake, ALICE, answer, down)
    (unsolved,) = await fake.wait_sent(me, "抱歉这条回答没有解决您的问题，已请工作人员跟进")
    assert (await tg.ticket(ticket_no(unsolved["text"]))).reason == "not_helpful"


# -- terminal -------------------------------------------------------------------------------------------
async def test_terminal_front_desk(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["你好", REFERRAL, UNKNOWN, "转人工", ANSWERED, OTHER_UNKNOWN, "/status"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert await run_terminal_chat(settings) == 0
    out = capsys.readouterr().out
    assert "12333" in out
    no_answer = out.split("这个问题我暂时还没有准确的答案。", 1)[1].split("您> ", 1)[0]  # that reply only
    numbered = [line.strip() for line in no_answer.splitlines() if line.strip().startswith("[")]
    assert numbered[-1].endswith("] 转人工")
    escalated = out.split("好的，已为您转人工，工单号 #", 1)[1]
    number = int(escalated.split("。", 1)[0])
    assert "\n发送 /status 查看进度，/cancel 撤回\n" in escalated
    assert "来源：" in escalated.split(f"已补充到工单 #{number}")[0]  # answered while the ticket is open
    assert f"已补充到工单 #{number}" in out and f"#{number} 等待处理" in out


async def test_terminal_records_a_push_so_its_reading_is_chosen_by_number(app: App, capsys) -> None:
    """A push reaches the terminal through the outbox; it is recorded in the conversation (as on
    WeChat), so the number of its 阅读全文 is what ``choose`` reads next."""
    from bot.messages import Button, IncomingMessage, Reply
    from handlers.terminal import TerminalChannel

    msg = IncomingMessage("terminal", "local", "me", display_name="me")
    await app.conversations.welcome(msg)  # the conversation exists
    push = Reply("【新发布】某某通知", buttons=[[Button("阅读全文", "read:1")]], kind="broadcast")
    await TerminalChannel(app.conversations.record_reply).send("local", push)
    assert "[1] 阅读全文" in capsys.readouterr().out
    async with app.services.sessions() as s:
        latest = await s.scalar(select(func.max(Message.id)))
        assert (await s.get(Message, latest)).status == "broadcast"
    # read:1 is no broadcast here: refused in words, never an error nor a question
    (refused,) = await app.conversations.choose(msg, 1) or []
    assert refused.kind == "error" and refused.text == "这条推送已不存在。"

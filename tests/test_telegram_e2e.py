"""End to end: the real PTB Application, the real core and database, and a fake Bot API on 127.0.0.1.

Each test plays users and a staff member by pushing Telegram updates into the fake server (or POSTing them
to the webhook) and reads what the bot sent from the fake's call log. Nothing of PTB is mocked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from bot.app import App
from bot.config import Settings
from bot.knowledge_review import KnowledgeReview
from handlers.telegram_bot import TelegramRuntime, launch_telegram
from knowledge.models import Message, OutboxItem, ProcessedUpdate, Ticket, utcnow
from knowledge.segment import Lexicon
from tests.fakes.bot_api import (
    BOT_ID,
    FakeBotAPI,
    callback_update,
    media_update,
    mention_update,
    post_webhook,
    text_update,
    user,
)

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parent
STAFF_CHAT = -1001000000001
GROUP_CHAT = -1001000000002
ALICE = user(1001, "王小明")
BOB = user(1002, "陈女士")
STAFF = user(777, "李科员")
STRANGER = user(888, "路人甲")
ANSWERED = "政府信息公开申请表要填哪些内容"  # answered by the default knowledge base
SUGGESTED = "特许经营备案"  # 您是不是想问 (three franchise entries)
UNKNOWN = "新开的奶茶店能领消费券补贴吗"  # escalated to staff
SECRET = "s3cret_-Token"


# -- the harness ----------------------------------------------------------------------------------------
class Bot:
    """A running policybot process: App (core, outbox worker) plus the Telegram runtime."""

    def __init__(self, settings: Settings, lexicon: Lexicon) -> None:
        self.settings = settings
        self.lexicon = lexicon
        self.app: App | None = None
        self.runtime: TelegramRuntime | None = None

    async def start(self) -> Bot:
        """Start like ``policybot run`` does (default knowledge base, Telegram, outbox)."""
        self.app = await App.create(self.settings, lexicon=self.lexicon, outbox_poll=0.05)
        await self.app.services.load_default_if_empty()
        self.runtime = await launch_telegram(self.app)
        self.app.outbox.start()
        return self

    async def stop(self) -> None:
        """Stop like the end of ``policybot run`` (channels, outbox, database)."""
        if self.app is not None:
            await self.app.close()
        self.app = self.runtime = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def core(self) -> App:
        assert self.app is not None
        return self.app

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.core.services.sessions() as session:
            row = await session.get(Ticket, ticket_id)
            assert row is not None
            return row

    async def count(self, model: type, *where: Any) -> int:
        async with self.core.services.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def deliver_due_later(self, seconds: float) -> int:
        """Run the outbox as if ``seconds`` had passed (retries without waiting for the backoff)."""
        return await self.core.outbox.deliver_due(now=utcnow() + timedelta(seconds=seconds))


async def retry_until_sent(bot: Bot, attempts: int = 6) -> None:
    """Let the outbox retry (as if the backoff had passed) until nothing is pending."""
    for _ in range(attempts):
        await bot.deliver_due_later(3600)
        if await bot.count(OutboxItem, OutboxItem.status != "sent") == 0:
            return
    raise AssertionError("outbox still has undelivered rows")


def telegram_settings(
    base: Settings, fake: FakeBotAPI, auto_escalate: bool = True, **telegram: Any
) -> Settings:
    """Settings pointing at the fake Bot API, with a staff chat and one staff member; the handoff tests
    open a ticket on every unanswered question ([handoff] auto_escalate) unless told otherwise."""
    s = base.replace("telegram", token=fake.token, base_url=fake.base_url, **telegram)
    s = s.replace(
        "staff",
        chat_id=STAFF_CHAT,
        user_ids=[STAFF["id"]],
        sla_minutes=30,
        working_hours="Mon-Sun 00:00-24:00",
    )
    return s.replace("web", enabled=False).replace("handoff", auto_escalate=auto_escalate)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotAPI]:
    # PTB's forward-compatible time periods (RetryAfter.retry_after as timedelta): no deprecation warning.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def no_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail a test when a handler raised (PTB passes it to our error handler, which logs it)."""
    caplog.set_level(logging.INFO, logger="policybot")
    yield
    failures = [r for r in caplog.records if r.name.startswith("policybot") and r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]


@pytest.fixture
async def bot(settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, no_errors: None) -> AsyncIterator[Bot]:
    b = Bot(telegram_settings(settings, fake), lexicon)
    await b.start()
    yield b
    await b.stop()


# -- playing users ----------------------------------------------------------------------------------------
def say(fake: FakeBotAPI, who: Json, text: str, **kw: Any) -> Json:
    """``who`` sends ``text`` (privately unless ``chat_id`` is given); returns the Message dict."""
    return fake.push(text_update(fake, who, text, **kw))["message"]


def press(fake: FakeBotAPI, who: Json, bot_message: Json, data: str) -> Json:
    """``who`` presses the button ``data`` under ``bot_message``."""
    return fake.push(callback_update(fake, who, bot_message, data))


def buttons(message: Json) -> list[str]:
    """The callback data of a sent message's inline keyboard."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row]


def with_button(fake: FakeBotAPI, chat_id: int, prefix: str) -> tuple[Json, str]:
    """The newest message to ``chat_id`` with a button whose data starts with ``prefix``."""
    for message in reversed(fake.sent(chat_id)):
        for data in buttons(message):
            if data.startswith(prefix):
                return message, data
    raise AssertionError(f"no button {prefix!r} in chat {chat_id}")


async def threaded(bot: Bot, post: Json) -> int:
    """Wait until the outbox has recorded a staff-chat message as belonging to its ticket (it does so
    right after the send returns); return the ticket number."""
    for _ in range(100):
        ticket_id = await bot.core.tickets.by_post("telegram", str(STAFF_CHAT), str(post["message_id"]))
        if ticket_id is not None:
            return ticket_id
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {post['message_id']} was never mapped to a ticket")


def ticket_no(text: str) -> int:
    """The ticket number in a bot text (``#12``)."""
    digits = text.split("#", 1)[1]
    return int("".join(ch for ch in digits[:8] if ch.isdigit()))


async def answer_callbacks(fake: FakeBotAPI, n: int) -> None:
    await fake.wait_for(lambda c: len(fake.of("answerCallbackQuery")) >= n)


async def barrier(fake: FakeBotAPI, who: Json = BOB) -> None:
    """Everything pushed before has been handled and delivered (updates run in order, outbox in order)."""
    helps = sum("使用方法" in m["text"] for m in fake.sent(who["id"]))
    say(fake, who, "/help")
    await fake.wait_sent(who["id"], "使用方法", count=helps + 1)


# -- users ------------------------------------------------------------------------------------------------
async def test_question_answered_with_source_and_feedback(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, ANSWERED)
    (answer,) = await fake.wait_sent(ALICE["id"], "来源")
    call = fake.of("sendMessage", ALICE["id"])[-1]
    assert call.params["parse_mode"] == "HTML"
    assert "<i>来源：" in call.params["text"]
    up, down, subscribe, follow, *related = buttons(answer)
    assert all(r.startswith("rel:") for r in related)  # 相关问题
    assert subscribe.startswith("subscribe:") and follow.startswith("follow:")
    assert up.startswith("feedback:up:") and down.startswith("feedback:down:")

    press(fake, ALICE, answer, up)
    ack = await fake.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert "感谢" in ack.params["text"]
    edit = await fake.wait_for(lambda c: c.method == "editMessageReplyMarkup")  # the used buttons disappear
    kept = [b["callback_data"] for row in edit.params["reply_markup"]["inline_keyboard"] for b in row]
    assert kept == [subscribe, follow, *related]  # ... and only they: 订阅, 关注 and 相关问题 stay

    say(fake, ALICE, "商务局周六上班吗")
    await fake.wait_sent(ALICE["id"], "来源", count=2)
    second, down = with_button(fake, ALICE["id"], "feedback:down:")
    press(fake, ALICE, second, down)  # 没解决 hands the question to staff
    escalated = (await fake.wait_sent(ALICE["id"], "工单号"))[0]
    post = (await fake.wait_sent(STAFF_CHAT, f"#{ticket_no(escalated['text'])}"))[0]
    assert "商务局周六上班吗" in post["text"]
    assert (await bot.ticket(ticket_no(escalated["text"]))).reason == "not_helpful"


async def test_suggestion_picked_and_none_of_these(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, SUGGESTED)
    (offer,) = await fake.wait_sent(ALICE["id"], "您是不是想问")
    picks = [d for d in buttons(offer) if d.startswith("pick:")]
    assert picks and buttons(offer)[-1].startswith("escalate:")
    press(fake, ALICE, offer, picks[0])
    (shown,) = await fake.wait_sent(ALICE["id"], "来源")
    assert "特许经营" in shown["text"]
    assert buttons(shown)[0].startswith("feedback:up:")

    press(fake, ALICE, offer, buttons(offer)[-1])  # 都不是，转人工
    (escalated,) = await fake.wait_sent(ALICE["id"], "工单号")
    ticket = await bot.ticket(ticket_no(escalated["text"]))
    assert ticket.question == SUGGESTED and ticket.status == "open"
    await answer_callbacks(fake, 2)


async def test_start_categories_and_entry(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, "/start")
    (hello,) = await fake.wait_sent(ALICE["id"], "政策咨询机器人")
    cats = [d for d in buttons(hello) if d.startswith("cat:")]
    assert "cat:政府信息公开" in cats
    press(fake, ALICE, hello, "cat:政府信息公开")
    (listing,) = await fake.wait_sent(ALICE["id"], "「政府信息公开」共")
    entries = buttons(listing)
    assert 1 <= len(entries) <= 8 and all(d.startswith("entry:") for d in entries)
    press(fake, ALICE, listing, entries[0])
    await fake.wait_sent(ALICE["id"], "来源")
    say(fake, ALICE, "/help")
    await fake.wait_sent(ALICE["id"], "/human")
    await answer_callbacks(fake, 2)


async def test_human_status_cancel(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, "/human 我想找工作人员问问展会审批")
    (escalated,) = await fake.wait_sent(ALICE["id"], "工单号")
    number = ticket_no(escalated["text"])
    await fake.wait_sent(STAFF_CHAT, "我想找工作人员问问展会审批")
    say(fake, ALICE, "/status")
    (status,) = await fake.wait_sent(ALICE["id"], "您的问题")
    assert f"cancel:{number}" in buttons(status)
    press(fake, ALICE, status, f"cancel:{number}")
    await fake.wait_sent(ALICE["id"], f"已撤回工单 #{number}")
    await fake.wait_sent(STAFF_CHAT, f"工单 #{number} 已由用户撤回")
    assert (await bot.ticket(number)).status == "cancelled"
    say(fake, ALICE, "/cancel")
    await fake.wait_sent(ALICE["id"], "没有待处理的问题")


# -- the handoff ------------------------------------------------------------------------------------------
async def test_full_handoff_and_save_as_knowledge(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (escalated,) = await fake.wait_sent(ALICE["id"], "工单号")
    number = ticket_no(escalated["text"])
    assert "工作人员" in escalated["text"] and "分钟" in escalated["text"]  # what happens, and when
    (post,) = await fake.wait_sent(STAFF_CHAT, f"新工单 #{number}")
    assert UNKNOWN in post["text"] and "王小明" in post["text"] and "1001" not in post["text"]
    assert {f"claim:{number}", f"close:{number}", f"save:{number}"} <= set(buttons(post))
    assert await threaded(bot, post) == number

    press(fake, STAFF, post, f"claim:{number}")
    await fake.wait_sent(STAFF_CHAT, "认领")
    assert (await bot.ticket(number)).claimed_by == "李科员"

    say(fake, ALICE, "店在东街口，上个月刚开业")  # joins the ticket, posted into its thread
    await fake.wait_sent(ALICE["id"], f"已补充到工单 #{number}")
    (followup,) = await fake.wait_sent(STAFF_CHAT, "用户补充")
    thread = str(followup["reply_to_message"]["message_id"])  # the post, or a later message of its thread
    assert await bot.core.tickets.by_post("telegram", str(STAFF_CHAT), thread) == number

    answer = "新开业门店可以参加“惠聚榕城消费季”活动，具体以当期活动通知为准。详情可拨打 0591-12345 咨询。"
    say(fake, STAFF, answer, chat_id=STAFF_CHAT, reply_to=followup)  # reply to any message of the thread
    (delivered,) = await fake.wait_sent(ALICE["id"], "工作人员答复")
    assert answer in delivered["text"] and f"#{number}" in delivered["text"]
    await fake.wait_sent(STAFF_CHAT, "已发送给用户")
    ticket = await bot.ticket(number)
    assert ticket.status == "answered" and ticket.answered_by == "李科员" and ticket.answered_at is not None

    press(fake, STAFF, post, f"save:{number}")
    (proposed,) = await fake.wait_sent(STAFF_CHAT, "已提交审核")
    assert "新增为常见问题" in proposed["text"]
    assert await bot.core.services.kb.get(f"staff-{number}") is None  # not published from the chat
    await approve_all(bot, "编辑")  # an editor approves it in the console's review queue
    say(fake, BOB, UNKNOWN)  # the same question, now answered by the bot
    (auto,) = await fake.wait_sent(BOB["id"], "惠聚榕城")
    assert "来源：《工作人员答复》" in auto["text"]
    assert await bot.count(Ticket) == 1
    _write_transcript(fake)


def _write_transcript(fake: FakeBotAPI) -> None:
    out = ROOT / "artifacts" / "telegram_handoff.txt"
    out.parent.mkdir(exist_ok=True)
    header = f"# Telegram handoff as the fake Bot API recorded it (staff chat {STAFF_CHAT})\n"
    out.write_text(header + fake.transcript() + "\n", encoding="utf-8")


async def test_save_as_alternate_phrasing(bot: Bot, fake: FakeBotAPI) -> None:
    question = "商务局的办公地址和上班时间"
    say(fake, ALICE, f"/human {question}")
    (post,) = await fake.wait_sent(STAFF_CHAT, question)
    number = ticket_no(post["text"])
    save_alt = [d for d in buttons(post) if d.startswith(f"save:{number}:")]
    assert save_alt
    press(fake, STAFF, post, save_alt[0])
    await fake.wait_sent(STAFF_CHAT, "的问法")
    entry_id = (await bot.ticket(number)).candidates[0]["entry_id"]
    entry = await bot.core.services.kb.get(entry_id)
    assert entry is not None and question not in entry.alternates  # waits for an editor
    await approve_all(bot, "编辑")
    entry = await bot.core.services.kb.get(entry_id)
    assert entry is not None and question in entry.alternates


async def approve_all(bot: Bot, editor: str) -> None:
    """An editor approves every pending proposal (as the console's review page does)."""
    review = KnowledgeReview(bot.core.services.sessions, bot.core.services.kb)
    for p in await review.proposals():
        await review.decide(p.id, editor, True)


async def test_personal_data_is_masked_in_the_staff_chat_and_never_saved_unreviewed(
    bot: Bot, fake: FakeBotAPI
) -> None:
    question = "我叫张伟，手机13812345678，身份证350102199001011234，新开的奶茶店能领消费券补贴吗"
    say(fake, ALICE, question)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    number = ticket_no(post["text"])
    assert "13812345678" not in post["text"] and "350102199001011234" not in post["text"]
    assert "138****5678" in post["text"] and "张*" in post["text"]
    assert (await bot.ticket(number)).question == question  # kept in full for the ticket page
    await threaded(bot, post)
    say(fake, ALICE, "我的邮箱是 zhangwei@example.com")  # a follow-up, posted into the thread masked
    (followup,) = await fake.wait_sent(STAFF_CHAT, "用户补充")
    assert "zhangwei@example.com" not in followup["text"] and "z***@example.com" in followup["text"]
    say(fake, STAFF, "/queue", chat_id=STAFF_CHAT)
    (listed,) = await fake.wait_sent(STAFF_CHAT, "待处理工单")
    assert "13812345678" not in listed["text"] and "138****5678" in listed["text"]
    say(fake, STAFF, "可以，请带营业执照到商务局。", chat_id=STAFF_CHAT, reply_to=post)
    await fake.wait_sent(STAFF_CHAT, "已发送给用户")
    press(fake, STAFF, post, f"save:{number}")  # 存为知识
    await fake.wait_sent(STAFF_CHAT, "已提交审核")
    assert await bot.core.services.kb.get(f"staff-{number}") is None
    review = KnowledgeReview(bot.core.services.sessions, bot.core.services.kb)
    (proposal,) = await review.proposals()
    assert proposal.ticket_id == number and proposal.proposed_by == "李科员"
    assert "13812345678" not in proposal.question and "350102199001011234" not in proposal.question
    assert "138****5678" in proposal.question


async def test_restart_between_escalation_and_staff_reply(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    number = await threaded(bot, post)
    await fake.wait_sent(ALICE["id"], "工单号")

    await bot.restart()  # a new Application and App on the same database

    say(fake, STAFF, "可以的，请到区商务局消费促进科登记。", chat_id=STAFF_CHAT, reply_to=post)
    (delivered,) = await fake.wait_sent(ALICE["id"], "消费促进科")
    assert f"#{number}" in delivered["text"]
    assert (await bot.ticket(number)).status == "answered"


async def test_reply_queued_while_telegram_is_down_survives_restart(bot: Bot, fake: FakeBotAPI) -> None:
    fake.fail_next("sendMessage", times=3, status=502, description="Bad Gateway")
    say(fake, ALICE, ANSWERED)
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 502)
    await bot.restart()
    await retry_until_sent(bot)
    await fake.wait_sent(ALICE["id"], "来源")
    assert len(fake.sent(ALICE["id"])) == 1


# -- staff chat -------------------------------------------------------------------------------------------
async def test_non_staff_cannot_act_in_staff_chat(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    number = await threaded(bot, post)

    say(fake, STRANGER, "我来替你们回答：可以领。", chat_id=STAFF_CHAT, reply_to=post)
    (notice,) = await fake.wait_sent(STAFF_CHAT, "只有登记在")
    assert notice["reply_to_message"]["from"]["id"] == STRANGER["id"]
    for action in (f"claim:{number}", f"close:{number}", f"save:{number}"):
        press(fake, STRANGER, post, action)
    await answer_callbacks(fake, 3)
    alerts = fake.of("answerCallbackQuery")
    assert all(c.params.get("show_alert") is True and "只有登记在" in c.params["text"] for c in alerts)

    ticket = await bot.ticket(number)
    assert (ticket.status, ticket.claimed_by, ticket.answer, ticket.saved_entry_id) == ("open", "", "", None)
    await barrier(fake)
    assert not [m for m in fake.sent(ALICE["id"]) if "工作人员答复" in m["text"]]

    say(fake, STAFF, "/queue", chat_id=STAFF_CHAT)
    (queue,) = await fake.wait_sent(STAFF_CHAT, "待处理工单")
    assert f"#{number}" in queue["text"] and "王小明" in queue["text"]
    say(fake, STRANGER, "/queue", chat_id=STAFF_CHAT)
    await fake.wait_sent(STAFF_CHAT, "只有登记在", count=2)


async def test_sla_reminder_posts_overdue_tickets_once(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    number = ticket_no(post["text"])
    async with bot.core.services.sessions() as session, session.begin():
        await session.execute(
            update(Ticket).where(Ticket.id == number).values(created_at=utcnow() - timedelta(hours=3))
        )
    assert bot.runtime is not None and bot.runtime.staff is not None
    assert await bot.runtime.staff.remind_overdue() == [number]
    (reminder,) = await fake.wait_sent(STAFF_CHAT, "超时提醒")
    assert f"#{number}" in reminder["text"] and "3 小时" in reminder["text"]
    assert await bot.runtime.staff.remind_overdue() == []  # reminded once, not every minute
    jobs = bot.runtime.application.job_queue.jobs()  # type: ignore[union-attr]
    assert [j.name for j in jobs] == ["policybot-sla-reminder"]


# -- robustness -------------------------------------------------------------------------------------------
async def test_api_failures_are_retried_until_delivered(bot: Bot, fake: FakeBotAPI) -> None:
    fake.fail_next("sendMessage", times=2, status=500)
    say(fake, ALICE, ANSWERED)
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 500)
    await retry_until_sent(bot)
    assert len(fake.of("sendMessage", ALICE["id"], ok=False)) == 2
    assert len(fake.of("sendMessage", ALICE["id"], ok=None)) == 3
    (answer,) = await fake.wait_sent(ALICE["id"], "来源")
    assert buttons(answer)
    assert await bot.count(OutboxItem, OutboxItem.status != "sent") == 0


async def test_429_waits_for_retry_after(bot: Bot, fake: FakeBotAPI) -> None:
    fake.fail_next("sendMessage", retry_after=30, status=429)
    say(fake, ALICE, ANSWERED)
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 429)
    await asyncio.sleep(0.2)
    async with bot.core.services.sessions() as session:
        row = await session.scalar(select(OutboxItem).where(OutboxItem.chat_ref == str(ALICE["id"])))
    assert row is not None and row.status == "pending" and "rate limited" in row.last_error
    assert await bot.deliver_due_later(5) == 0  # not before retry_after
    assert await bot.deliver_due_later(31) == 1
    await fake.wait_sent(ALICE["id"], "来源")


async def test_same_update_twice_is_answered_once(bot: Bot, fake: FakeBotAPI) -> None:
    update = text_update(fake, ALICE, ANSWERED)
    fake.push(update)
    (answer,) = await fake.wait_sent(ALICE["id"], "来源")
    fake.push(dict(update))  # Telegram delivers it again (e.g. the offset was not confirmed)
    click = callback_update(fake, ALICE, answer, buttons(answer)[0])
    fake.push(click)
    fake.push(dict(click))
    await barrier(fake, ALICE)
    assert len([m for m in fake.sent(ALICE["id"]) if "来源" in m["text"]]) == 1
    await answer_callbacks(fake, 2)  # both presses answered, one acted on
    assert await bot.count(ProcessedUpdate, ProcessedUpdate.update_id == str(update["update_id"])) == 1
    handed_out = [
        c for c in fake.of("getUpdates") if any(u["update_id"] == update["update_id"] for u in c.result)
    ]
    assert len(handed_out) == 2  # PTB really received it twice; the core answered once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("   ", "请输入您想咨询的问题"),
        ("问" * 2001, "问题太长了"),
        ("😀😀🎉", "没有看到文字内容"),
        ("\x00\x07政府信息公开\u200b\x1b[31m", ""),  # cleaned to a question: suggested or escalated
        ("How to apply for 政府信息公开?", ""),
        ("'; DROP TABLE tickets; --", "工单号"),
        ("<script>alert('x')</script>&amp; 信息公开 <b>", ""),
    ],
)
async def test_bad_input(bot: Bot, fake: FakeBotAPI, text: str, expected: str) -> None:
    say(fake, ALICE, text)
    (reply,) = await fake.wait_sent(ALICE["id"], expected)
    assert reply["text"].strip()
    await barrier(fake, ALICE)
    assert len(fake.sent(ALICE["id"])) == 2  # one reply, plus the barrier's
    for post in fake.sent(STAFF_CHAT):  # user text reaches staff escaped, and intact
        if "<script>" in text:
            assert "<script>alert('x')</script>&amp;" in post["text"]
            sent = fake.of("sendMessage", STAFF_CHAT)[0].params["text"]
            assert "&lt;script&gt;" in sent and "&amp;amp;" in sent


async def test_group_chat_needs_mention_or_reply(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, ANSWERED, chat_id=GROUP_CHAT)  # not addressed to the bot: ignored
    fake.push(mention_update(fake, BOB, GROUP_CHAT, ANSWERED))
    (answer,) = await fake.wait_sent(GROUP_CHAT, "来源")
    await asyncio.sleep(0.1)
    assert len(fake.sent(GROUP_CHAT)) == 1
    say(fake, ALICE, "商务局周六上班吗", chat_id=GROUP_CHAT, reply_to=answer)  # a reply to the bot
    await fake.wait_sent(GROUP_CHAT, "来源", count=2)
    fake.push(mention_update(fake, BOB, GROUP_CHAT, ""))  # only the mention: nothing to answer
    await fake.wait_sent(GROUP_CHAT, "请输入您想咨询的问题")


async def test_photo_and_sticker(bot: Bot, fake: FakeBotAPI) -> None:
    fake.push(media_update(fake, ALICE, "photo"))
    await fake.wait_sent(ALICE["id"], "只能阅读文字")
    say(fake, ALICE, UNKNOWN)
    await fake.wait_sent(STAFF_CHAT, "新工单")
    for kind in ("sticker", "voice", "document", "location"):
        fake.push(media_update(fake, ALICE, kind))
    await fake.wait_sent(ALICE["id"], "已转给正在处理工单", count=4)
    await fake.wait_sent(STAFF_CHAT, "[用户发送了贴纸]")
    await fake.wait_sent(STAFF_CHAT, "[用户发送了位置]")


async def test_flooding_gets_one_notice(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, no_errors: None
) -> None:
    b = Bot(telegram_settings(settings, fake, rate_limit_messages=3, rate_limit_seconds=60), lexicon)
    await b.start()
    try:
        for i in range(7):
            say(fake, ALICE, f"{ANSWERED}{'？' * i}")
        await fake.wait_sent(ALICE["id"], "太快了")
        await barrier(fake)
        texts = [m["text"] for m in fake.sent(ALICE["id"])]
        assert sum("太快了" in t for t in texts) == 1
        assert len(texts) == 4
    finally:
        await b.stop()


async def test_long_staff_answer_is_split(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    await threaded(bot, post)
    paragraph = "根据有关规定<需要>逐项核对&办理。" * 20
    long_answer = "\n\n".join(f"第{i}段：{paragraph}" for i in range(12))[:4000]
    say(fake, STAFF, long_answer, chat_id=STAFF_CHAT, reply_to=post)
    await fake.wait_sent(ALICE["id"], "", count=3)
    parts = [m["text"] for m in fake.sent(ALICE["id"]) if "工单号" not in m["text"]]
    assert len(parts) >= 2 and all(len(t) <= 4096 for t in parts)
    assert parts[0].startswith(f"工作人员答复（工单 #{ticket_no(post['text'])}）")
    assert "\n".join(parts).replace("\n", "").endswith(long_answer.replace("\n", "")[-200:])


# -- webhook ----------------------------------------------------------------------------------------------
def webhook_settings(settings: Settings, fake: FakeBotAPI, web_enabled: bool = False) -> Settings:
    s = telegram_settings(
        settings,
        fake,
        mode="webhook",
        webhook_url="https://bot.example.gov.cn/telegram/webhook",
        webhook_secret=SECRET,
        listen="127.0.0.1",
        port=0,
    )
    return s.replace("web", enabled=web_enabled)


async def test_webhook_secret(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, no_errors: None
) -> None:
    b = Bot(webhook_settings(settings, fake), lexicon)
    await b.start()
    try:
        assert fake.webhook["url"] == "https://bot.example.gov.cn/telegram/webhook"
        assert fake.webhook["secret_token"] == SECRET
        assert b.runtime is not None and b.runtime.webhook is not None
        url = b.runtime.webhook.url
        update = text_update(fake, ALICE, ANSWERED)
        update["update_id"] = 424242
        assert await post_webhook(url, update, None) == 403
        assert await post_webhook(url, update, "wrong-secret") == 403
        assert await post_webhook(url, update, SECRET[:-1]) == 403
        await asyncio.sleep(0.2)
        assert fake.sent(ALICE["id"]) == []
        assert await b.count(ProcessedUpdate) == 0  # refused updates change nothing

        assert await post_webhook(url, update, SECRET, body=b"{not json") == 400
        assert await post_webhook(url, update, SECRET, body=b"[1, 2]") == 400
        assert await post_webhook(url, update, SECRET) == 200
        assert await post_webhook(url, update, SECRET) == 200  # Telegram retried: answered once
        await fake.wait_sent(ALICE["id"], "来源")
        await asyncio.sleep(0.2)
        assert len(fake.sent(ALICE["id"])) == 1
        assert not fake.of("getUpdates")
    finally:
        await b.stop()


async def test_webhook_served_by_the_web_server(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, no_errors: None
) -> None:
    b = Bot(webhook_settings(settings, fake, web_enabled=True), lexicon)
    await b.start()
    runner = None
    try:
        assert b.runtime is not None and b.runtime.webhook is None
        (route,) = b.core.extra_routes
        web_app = web.Application()
        web_app.add_routes(b.core.extra_routes)  # what the web server does with extra_routes
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}{route.path}"
        assert await post_webhook(url, text_update(fake, ALICE, ANSWERED), "nope") == 403
        assert await post_webhook(url, text_update(fake, ALICE, ANSWERED), SECRET) == 200
        await fake.wait_sent(ALICE["id"], "来源")
    finally:
        if runner is not None:
            await runner.cleanup()
        await b.stop()


async def test_a_webhook_update_is_stored_with_its_reply_queued_before_the_200(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, no_errors: None
) -> None:
    """Telegram never delivers an update again once it got 200: a worker killed right after answering
    must not lose the question, so the 200 comes only once it is stored with its reply queued."""
    b = Bot(webhook_settings(settings, fake), lexicon)
    await b.start()
    try:
        assert b.runtime is not None and b.runtime.webhook is not None
        url = b.runtime.webhook.url
        for n in range(1, 4):
            assert await post_webhook(url, text_update(fake, ALICE, ANSWERED), SECRET) == 200
            # nothing awaited in between: the database has it all already
            assert await b.count(Message, Message.direction == "in") == n
            assert await b.count(OutboxItem, OutboxItem.chat_ref == str(ALICE["id"])) == n
        await fake.wait_sent(ALICE["id"], "来源", count=3)
    finally:
        await b.stop()


async def test_a_webhook_update_that_failed_is_answered_500_and_handled_when_delivered_again(
    settings: Settings, lexicon: Lexicon, fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Bot(webhook_settings(settings, fake), lexicon)
    await b.start()
    try:
        assert b.runtime is not None and b.runtime.webhook is not None
        url = b.runtime.webhook.url
        conversations = b.core.conversations
        handle = conversations.handle

        async def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionRefusedError("database unreachable")

        monkeypatch.setattr(conversations, "handle", unreachable)
        update = text_update(fake, ALICE, ANSWERED)
        assert await post_webhook(url, update, SECRET) == 500  # Telegram will deliver it again
        monkeypatch.setattr(conversations, "handle", handle)
        assert await post_webhook(url, update, SECRET) == 200
        assert await post_webhook(url, update, SECRET) == 200  # delivered a third time: answered once
        await fake.wait_sent(ALICE["id"], "来源")
        await asyncio.sleep(0.2)
        assert len(fake.sent(ALICE["id"])) == 1
    finally:
        await b.stop()


async def test_bot_identity_from_get_me(bot: Bot, fake: FakeBotAPI) -> None:
    assert bot.runtime is not None
    assert bot.runtime.application.bot.id == BOT_ID
    assert fake.of("getMe") and fake.of("setMyCommands")

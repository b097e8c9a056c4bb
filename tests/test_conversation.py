"""The conversation core and the human handoff without Telegram: bot/conversation.py, bot/tickets.py,
bot/outbox.py and bot/app.py, with the in-memory channel of tests/fakes/channel.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.config import Settings
from bot.conversation import NO_TICKET, NOT_TEXT
from bot.knowledge_review import KnowledgeReview
from bot.messages import IncomingMessage, Reply
from bot.qa import EMPTY_NOTICE
from bot.tickets import TicketError
from knowledge.models import Entry, Feedback, Message, OutboxItem, Ticket
from knowledge.segment import Lexicon
from tests.conftest import seed_path
from tests.fakes.channel import FakeChannel

DOC = "doc-7a78d0a404"
STAFF_CHAT = "-1001"
NUMBER_Q = "这个方案的文号是多少？"
VAGUE_Q = "信息公开"  # several clauses fit: suggested
OFF_Q = "会议室周末能借用吗"  # nothing fits: escalated
SH = ZoneInfo("Asia/Shanghai")


@dataclass
class Desk:
    """An App with a staff chat (on the fake "telegram" channel) and users on the fake "web" channel."""

    app: App
    staff: FakeChannel
    users: FakeChannel

    async def say(self, text: str, user: str = "u1", update_id: str | None = None) -> list[Reply]:
        return await self.app.conversations.handle(msg(text, user, update_id))

    async def deliver(self) -> int:
        return await self.app.outbox.deliver_due()

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.app.services.sessions() as s:
            t = await s.get(Ticket, ticket_id)
            assert t is not None
            return t

    async def count(self, model) -> int:
        async with self.app.services.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def msg(text: str = "", user: str = "u1", update_id: str | None = None, **kw) -> IncomingMessage:
    return IncomingMessage(
        "web", f"chat-{user}", user, text, display_name=f"访客{user}", update_id=update_id, **kw
    )


def staffed_settings(settings: Settings) -> Settings:
    return settings.replace("telegram", token="123:fake").replace("staff", chat_id=int(STAFF_CHAT))


async def open_desk(settings: Settings, lexicon: Lexicon, seed: bool = True) -> Desk:
    app = await App.create(staffed_settings(settings), lexicon=lexicon, outbox_poll=0.05)
    if seed:
        await app.services.kb.import_paths([seed_path()])
    staff, users = FakeChannel("telegram"), FakeChannel("web")
    app.registry.add(staff)
    app.registry.add(users)
    return Desk(app, staff, users)


@pytest.fixture
async def desk(settings: Settings, lexicon: Lexicon) -> AsyncIterator[Desk]:
    d = await open_desk(settings, lexicon)
    try:
        yield d
    finally:
        await d.app.close()


async def escalate(desk: Desk, user: str = "u1", text: str = OFF_Q) -> int:
    """``text`` gets no reliable answer (no ticket), then the user asks for a person (转人工)."""
    (reply,) = await desk.say(text, user)
    assert reply.kind == "no_answer" and reply.ticket_id is None
    (reply,) = await desk.say("转人工", user)
    assert reply.kind == "escalated"
    assert reply.ticket_id is not None
    return reply.ticket_id


# -- answered, suggested, escalated --------------------------------------------------------------------


async def test_answered(desk: Desk) -> None:
    (reply,) = await desk.say(NUMBER_Q)
    assert reply.kind == "answer"
    assert "鼓商务〔2020〕123号" in reply.text
    assert reply.source_line.startswith("来源：《鼓楼区商务局2020年政务公开工作实施方案》")
    assert reply.entry_id == DOC and reply.message_id
    assert [b.action for b in reply.buttons[0]] == [
        f"feedback:up:{reply.message_id}",
        f"feedback:down:{reply.message_id}",
    ]
    history = await desk.app.conversations.history("web", "chat-u1", "u1")
    assert [(m.direction, m.author, m.status) for m in history] == [
        ("in", "user", "answered"),
        ("out", "bot", "answer"),
    ]
    assert history[0].entry_id == DOC and history[0].text == NUMBER_Q
    assert await desk.count(Ticket) == 0


async def test_suggested_then_pick(desk: Desk) -> None:
    (reply,) = await desk.say(VAGUE_Q)
    assert reply.kind == "suggestions" and reply.text == "您是不是想问："
    actions = [b.action for row in reply.buttons for b in row]
    history = await desk.app.conversations.history("web", "chat-u1", "u1")
    question = history[0]
    assert question.status == "suggested"
    stored = question.payload["suggestions"]
    assert len(stored) >= 2
    assert actions == [f"pick:{question.id}:{i}" for i in range(len(stored))] + [f"escalate:{question.id}"]
    # picking the second candidate (pick:<question>:1) shows that entry's answer with its source
    chosen = stored[1]["entry_id"]
    picked = await desk.app.conversations.pick(msg(), question.id, 1)
    entry = await desk.app.services.kb.get(chosen)
    assert entry is not None
    assert picked.kind == "answer" and picked.entry_id == chosen
    assert entry.answer in picked.text
    assert picked.source_line.startswith("来源：")
    assert picked.buttons  # feedback under it
    # a channel resolves a button (the terminal's numbered choices) through the core's act()
    [via_terminal] = await desk.app.conversations.act(msg(), actions[1])
    assert via_terminal.kind == "answer" and via_terminal.entry_id == chosen
    # 都不是 hands the question to staff
    [escalated] = await desk.app.conversations.act(msg(), actions[-1])
    assert escalated.kind == "escalated"
    ticket = await desk.ticket(escalated.ticket_id or 0)
    assert ticket.question == VAGUE_Q and ticket.reason == "user_request"


async def test_pick_of_something_gone(desk: Desk) -> None:
    await desk.say(VAGUE_Q)
    question = (await desk.app.conversations.history("web", "chat-u1", "u1"))[0]
    first = question.payload["suggestions"][0]["entry_id"]
    assert (await desk.app.conversations.pick(msg(), question.id, 99)).kind == "error"
    assert (await desk.app.conversations.pick(msg(), 999_999, 0)).kind == "error"
    await desk.app.services.kb.set_status(first, "expired")
    assert (await desk.app.conversations.pick(msg(), question.id, 0)).kind == "error"
    assert (await desk.app.conversations.show(msg(), first)).kind == "error"


async def test_escalated_opens_a_ticket_and_tells_staff(desk: Desk) -> None:
    (no_answer,) = await desk.say(OFF_Q)
    assert no_answer.kind == "no_answer" and await desk.count(Ticket) == 0
    assert no_answer.buttons[-1][0].label == "转人工"
    [reply] = await desk.app.conversations.act(msg(), no_answer.buttons[-1][0].action)
    assert reply.kind == "escalated" and reply.ticket_id is not None
    assert f"工单号 #{reply.ticket_id}" in reply.text
    ticket = await desk.ticket(reply.ticket_id)
    assert (ticket.status, ticket.reason, ticket.question) == ("open", "user_request", OFF_Q)
    assert await desk.deliver() == 1
    ((chat, post, reply_to),) = desk.staff.sent
    assert chat == STAFF_CHAT and reply_to is None
    assert post.kind == "staff_post" and post.ticket_id == ticket.id
    assert f"#{ticket.id}" in post.text and f"提问：{OFF_Q}" in post.text and "访客u1（web）" in post.text
    assert [b.action for b in post.buttons[0]] == [
        f"claim:{ticket.id}",
        f"close:{ticket.id}",
        f"save:{ticket.id}",
    ]
    assert desk.users.sent == []  # the user got the reply directly, not through the outbox
    # the staff post is remembered: replying to it answers this ticket
    message_ref = await _last_post_ref(desk)
    assert await desk.app.tickets.by_post("telegram", STAFF_CHAT, message_ref) == ticket.id


async def _last_post_ref(desk: Desk) -> str:
    from knowledge.models import TicketPost

    async with desk.app.services.sessions() as s:
        post = await s.scalar(select(TicketPost).order_by(TicketPost.created_at.desc()).limit(1))
        assert post is not None
        return post.message_ref


async def test_no_staff_chat_configured(app: App) -> None:
    # without a Telegram staff chat the ticket waits in the queue (console) and nothing is posted
    (reply,) = await app.conversations.handle(msg("火星上的外资企业怎么登记营业执照和养骆驼"))
    assert reply.kind == "no_answer"
    (reply,) = await app.conversations.handle(msg("/human"))
    assert reply.kind == "escalated"
    assert [q.ticket.id for q in await app.tickets.queue()] == [reply.ticket_id]
    async with app.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 0


async def test_answered_from_the_default_knowledge_base(app: App) -> None:
    (reply,) = await app.conversations.handle(msg("外商投资信息报告要什么材料"))
    assert reply.kind == "answer" and reply.entry_id == "guide-fdi-information-report"
    assert "申请材料" in reply.text and "本指南还包括" in reply.text


# -- feedback ----------------------------------------------------------------------------------------


async def test_feedback(desk: Desk) -> None:
    (answer,) = await desk.say(NUMBER_Q)
    assert answer.message_id is not None
    thanks = await desk.app.conversations.feedback(msg(), answer.message_id, True)
    assert thanks.kind == "info" and "感谢" in thanks.text
    assert await desk.count(Ticket) == 0
    # 没解决: the question goes to staff
    unsolved = await desk.app.conversations.feedback(msg(), answer.message_id, False)
    assert unsolved.kind == "escalated"
    ticket = await desk.ticket(unsolved.ticket_id or 0)
    assert (ticket.reason, ticket.question) == ("not_helpful", NUMBER_Q)
    assert ticket.candidates and ticket.candidates[0]["entry_id"] == DOC
    async with desk.app.services.sessions() as s:
        rows = list(await s.scalars(select(Feedback).order_by(Feedback.id)))
    assert [(f.helpful, f.entry_id) for f in rows] == [(True, DOC), (False, DOC)]
    # someone else's answer cannot be rated
    other = await desk.app.conversations.feedback(msg(user="u2"), answer.message_id, False)
    assert other.kind == "error"
    await desk.deliver()
    assert [r.kind for r in desk.staff.to(STAFF_CHAT)] == ["staff_post"]


# -- the open ticket collects further messages ----------------------------------------------------------


async def test_further_messages_join_the_open_ticket(desk: Desk) -> None:
    tid = await escalate(desk)
    await desk.deliver()
    post_ref = await _last_post_ref(desk)
    (reply,) = await desk.say("补充一下：我们是外资企业")
    assert reply.kind == "info" and f"工单 #{tid}" in reply.text and reply.ticket_id == tid
    (reply2,) = await desk.say(NUMBER_Q)  # an answerable question is answered, in the ticket's transcript
    assert reply2.kind == "answer" and reply2.ticket_id == tid and "鼓商务〔2020〕123号" in reply2.text
    assert await desk.count(Ticket) == 1
    assert await desk.deliver() == 1
    followups = [(r, to) for c, r, to in desk.staff.sent if r.kind == "staff_followup"]
    assert [r.text for r, _ in followups] == [f"【工单 #{tid} 用户补充】\n补充一下：我们是外资企业"]
    assert all(to == post_ref for _, to in followups)  # threaded under the ticket's post
    async with desk.app.services.sessions() as s:
        joined = list(
            await s.scalars(select(Message.text).where(Message.ticket_id == tid, Message.direction == "in"))
        )
    assert "补充一下：我们是外资企业" in joined and NUMBER_Q in joined
    # an empty message is not forwarded
    (empty,) = await desk.say("   ")
    assert empty.kind == "error" and empty.text == EMPTY_NOTICE
    assert await desk.deliver() == 0


async def test_non_text_messages(desk: Desk) -> None:
    (reply,) = await desk.app.conversations.handle(msg(content_type="photo"))
    assert reply.kind == "error" and reply.text == NOT_TEXT
    tid = await escalate(desk)
    (reply,) = await desk.app.conversations.handle(msg(content_type="voice"))
    assert reply.kind == "info" and "语音" in reply.text and f"#{tid}" in reply.text
    await desk.deliver()
    assert desk.staff.sent[-1][1].text == f"【工单 #{tid} 用户补充】\n[用户发送了语音]"


# -- staff answers reach the user on their channel -------------------------------------------------------


async def test_staff_reply_is_delivered_to_the_user(desk: Desk) -> None:
    tid = await escalate(desk)
    await desk.app.tickets.claim(tid, "李四")
    assert (await desk.ticket(tid)).status == "claimed"
    await desk.app.tickets.reply(tid, "李四", "  明天的天气请看气象台，本局只答商务问题。  ")
    await desk.deliver()
    ((chat, reply, _),) = desk.users.sent
    assert chat == "chat-u1"
    assert reply.kind == "staff_reply" and reply.ticket_id == tid
    assert reply.text == f"工作人员答复（工单 #{tid}）：\n明天的天气请看气象台，本局只答商务问题。"
    t = await desk.ticket(tid)
    assert (t.status, t.answered_by, t.claimed_by) == ("answered", "李四", "李四")
    history = await desk.app.conversations.history("web", "chat-u1", "u1")
    assert history[-1].author == "staff"
    # the ticket is answered: the next question is answered by the bot again
    (next_reply,) = await desk.say(NUMBER_Q)
    assert next_reply.kind == "answer"


async def test_ticket_errors(desk: Desk) -> None:
    tid = await escalate(desk)
    with pytest.raises(TicketError):
        await desk.app.tickets.reply(tid, "李四", "   ")
    with pytest.raises(TicketError):
        await desk.app.tickets.reply(999_999, "李四", "答复")
    with pytest.raises(TicketError, match="还没有工作人员答复"):
        await publish(desk.app, tid)
    await desk.app.tickets.close(tid, "李四")
    with pytest.raises(TicketError):
        await desk.app.tickets.reply(tid, "李四", "答复")
    with pytest.raises(TicketError):
        await desk.app.tickets.claim(tid, "李四")
    with pytest.raises(TicketError):
        await desk.app.tickets.close(tid, "李四")
    await desk.deliver()
    # closing an unanswered ticket tells the user
    assert [r.kind for r in desk.users.to("chat-u1")] == ["info"]
    assert "已由工作人员关闭" in desk.users.to("chat-u1")[0].text


async def test_closing_an_answered_ticket_sends_nothing_more(desk: Desk) -> None:
    tid = await escalate(desk)
    await desk.app.tickets.reply(tid, "李四", "答复内容。")
    await desk.app.tickets.close(tid, "李四")
    await desk.deliver()
    assert [r.kind for r in desk.users.to("chat-u1")] == ["staff_reply"]
    assert (await desk.ticket(tid)).status == "closed"


async def test_outbox_worker_delivers_on_wake(desk: Desk) -> None:
    desk.app.outbox.poll = 30  # only a wake() can make it deliver within the test
    desk.app.outbox.start()
    await asyncio.sleep(0.05)
    tid = await escalate(desk)
    for _ in range(100):
        if desk.staff.sent:
            break
        await asyncio.sleep(0.02)
    assert [r.ticket_id for _, r, _ in desk.staff.sent] == [tid]
    await desk.app.tickets.reply(tid, "李四", "答复。")
    for _ in range(100):
        if desk.users.sent:
            break
        await asyncio.sleep(0.02)
    assert [r.kind for r in desk.users.to("chat-u1")] == ["staff_reply"]


# -- duplicates, restarts --------------------------------------------------------------------------------


async def test_duplicate_update_is_answered_once(desk: Desk) -> None:
    first = await desk.say(OFF_Q, update_id="777")
    assert [r.kind for r in first] == ["no_answer"]
    assert await desk.say(OFF_Q, update_id="777") == []
    assert [r.kind for r in await desk.say("转人工", update_id="778")] == ["escalated"]
    assert await desk.say("转人工", update_id="778") == []
    assert await desk.count(Ticket) == 1
    async with desk.app.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 1
    # the same number from another channel is another update
    other = await desk.app.conversations.handle(
        IncomingMessage("telegram", "42", "42", NUMBER_Q, update_id="777")
    )
    assert [r.kind for r in other] == ["answer"]


async def test_concurrent_duplicates_are_answered_once(desk: Desk) -> None:
    results = await asyncio.gather(*(desk.say(NUMBER_Q, update_id="888") for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]


async def test_restart_loses_nothing(settings: Settings, lexicon: Lexicon) -> None:
    first = await open_desk(settings, lexicon)
    try:
        tid = await escalate(first)
        await first.say("补充：很急", update_id="u-5")
    finally:
        await first.app.close()  # stopped before the outbox delivered anything

    second = await open_desk(settings, lexicon, seed=False)
    try:
        assert await second.app.services.kb.count() == 18  # the knowledge is in the database
        assert (await second.say(NUMBER_Q))[0].kind == "answer"  # answered, the ticket still open
        assert (await second.say("再补充：会议室要能坐五十人"))[0].kind == "info"  # joins the open ticket
        assert await second.say("补充：很急", update_id="u-5") == []  # and still knows that update
        assert await second.deliver() == 3  # staff post + two follow-ups, queued before and after
        assert [r.kind for r in second.staff.to(STAFF_CHAT)] == [
            "staff_post",
            "staff_followup",
            "staff_followup",
        ]
        assert (await second.ticket(tid)).status == "open"
        assert [q.ticket.id for q in await second.app.tickets.queue()] == [tid]
        await second.app.tickets.reply(tid, "王五", "已为您处理。")
    finally:
        await second.app.close()  # the reply is queued, not yet sent

    third = await open_desk(settings, lexicon, seed=False)
    try:
        assert await third.deliver() == 1
        ((chat, reply, _),) = third.users.sent
        assert chat == "chat-u1" and reply.text.endswith("已为您处理。")
        assert (await third.ticket(tid)).status == "answered"
    finally:
        await third.app.close()


# -- staff answers become knowledge -------------------------------------------------------------------


async def publish(app: App, tid: int, **kw: object) -> str | None:
    """An editor saves ticket ``tid`` as knowledge (published at once, through the review service)."""
    review = KnowledgeReview(app.services.sessions, app.services.kb)
    return (await review.save_from_ticket(tid, "李四", publish=True, **kw)).entry_id  # type: ignore[arg-type]


async def test_save_as_knowledge_then_the_bot_answers(desk: Desk) -> None:
    question = "跨境电商企业出口退税找哪个部门办理？"
    tid = await escalate(desk, text=question)
    await desk.app.tickets.reply(tid, "李四", "出口退税向主管税务机关申报，商务局不受理。")
    saved = await publish(desk.app, tid)
    assert saved == f"staff-{tid}"
    entry = await desk.app.services.kb.get(saved)
    assert entry is not None and entry.kind == "faq" and entry.question == question
    assert (await desk.ticket(tid)).saved_entry_id == saved
    # another user asks the same: the bot answers at once, no restart
    (reply,) = await desk.say(question, user="u2")
    assert reply.kind == "answer" and reply.entry_id == saved
    assert "商务局不受理" in reply.text
    assert reply.source_line.startswith("来源：《工作人员答复》")


async def test_save_as_an_alternate_of_a_candidate(desk: Desk) -> None:
    question = "政府网站那块儿新媒体的事谁管"
    tid = await escalate(desk, text=question)
    ticket = await desk.ticket(tid)
    assert ticket.candidates, "the staff post lists the bot's candidates"
    target = ticket.candidates[0]["entry_id"]
    assert await publish(desk.app, tid, candidate=0) == target
    entry = await desk.app.services.kb.get(target)
    assert entry is not None and question in entry.alternates
    # asked again, word for word, it is that entry's question now: answered by it
    (reply,) = await desk.say(question, user="u2")
    assert reply.kind == "answer" and reply.entry_id == target
    with pytest.raises(TicketError):
        await publish(desk.app, tid, candidate=9)
    with pytest.raises(TicketError):
        await publish(desk.app, tid, entry_id="no-such-entry")


# -- the staff queue -------------------------------------------------------------------------------------


async def _set_created(desk: Desk, tid: int, when: datetime) -> None:
    async with desk.app.services.sessions() as s, s.begin():
        await s.execute(update(Ticket).where(Ticket.id == tid).values(created_at=when.astimezone(UTC)))


async def test_queue_order_and_waiting_time(desk: Desk) -> None:
    now = datetime(2024, 3, 6, 11, 0, tzinfo=SH)  # a Wednesday
    ids = [await escalate(desk, user=u, text=f"{OFF_Q}{u}") for u in ("a", "b", "c")]
    await _set_created(desk, ids[0], now - timedelta(minutes=30))
    await _set_created(desk, ids[1], now - timedelta(minutes=90))
    await _set_created(desk, ids[2], now - timedelta(minutes=10))
    queue = await desk.app.tickets.queue(now)
    assert [q.ticket.id for q in queue] == [ids[1], ids[0], ids[2]]  # oldest first
    assert [round(q.waiting_minutes) for q in queue] == [90, 30, 10]
    assert [q.conversation.user_ref for q in queue] == ["b", "a", "c"]
    await desk.app.conversations.cancel(msg(user="a"))
    await desk.app.tickets.reply(ids[2], "李四", "答复。")
    assert [q.ticket.id for q in await desk.app.tickets.queue(now)] == [ids[1]]


async def test_overdue_counts_working_hours_only(desk: Desk) -> None:
    monday_9 = datetime(2024, 3, 11, 9, 0, tzinfo=SH)
    weekend = await escalate(desk, user="a")
    morning = await escalate(desk, user="b")
    await _set_created(desk, weekend, datetime(2024, 3, 8, 17, 0, tzinfo=SH))  # Friday 17:00
    await _set_created(desk, morning, datetime(2024, 3, 11, 8, 30, tzinfo=SH))  # Monday 08:30
    queue = {q.ticket.id: q for q in await desk.app.tickets.queue(monday_9)}
    assert queue[weekend].waiting_minutes == pytest.approx(64 * 60)  # 2 days 16 hours of waiting
    assert queue[weekend].working_minutes == pytest.approx(60)  # but one working hour
    assert await desk.app.tickets.overdue(monday_9) == []  # SLA is 120 working minutes
    later = datetime(2024, 3, 11, 11, 0, tzinfo=SH)  # weekend ticket: 30 + 150; morning: 150
    overdue = await desk.app.tickets.overdue(later)
    assert sorted(q.ticket.id for q in overdue) == sorted([weekend, morning])
    await desk.app.tickets.mark_reminded([weekend])
    assert [q.ticket.id for q in await desk.app.tickets.overdue(later)] == [morning]
    # lunch does not count: 11:50 -> 14:40 is 10 + 10 working minutes
    lunch = await escalate(desk, user="c")
    await _set_created(desk, lunch, datetime(2024, 3, 11, 11, 50, tzinfo=SH))
    q = next(
        q
        for q in await desk.app.tickets.queue(datetime(2024, 3, 11, 14, 40, tzinfo=SH))
        if q.ticket.id == lunch
    )
    assert q.working_minutes == pytest.approx(20)


def test_expected_reply_inside_and_outside_hours(desk: Desk) -> None:
    t = desk.app.tickets
    assert "120 分钟内" in t.expected_reply(datetime(2024, 3, 11, 10, 0, tzinfo=SH))
    evening = t.expected_reply(datetime(2024, 3, 8, 18, 0, tzinfo=SH))  # Friday evening
    assert "非工作时间" in evening and "03月11日 08:30" in evening


# -- cancel, status, /human -------------------------------------------------------------------------------


async def test_cancel(desk: Desk) -> None:
    assert (await desk.app.conversations.cancel(msg())).text == NO_TICKET
    tid = await escalate(desk)
    status = await desk.app.conversations.status(msg())
    assert f"#{tid} 等待处理" in status.text
    assert [b.action for row in status.buttons for b in row] == [f"cancel:{tid}"]
    reply = await desk.app.conversations.cancel(msg())
    assert f"已撤回工单 #{tid}" in reply.text and reply.ticket_id == tid
    assert (await desk.ticket(tid)).status == "cancelled"
    await desk.deliver()
    assert [r.text for r in desk.staff.to(STAFF_CHAT)][-1] == f"工单 #{tid} 已由用户撤回。"
    # nothing open any more: the next question is answered, not joined
    assert (await desk.say(NUMBER_Q))[0].kind == "answer"
    assert (await desk.app.conversations.cancel(msg())).text == NO_TICKET
    assert "已撤回" in (await desk.app.conversations.status(msg())).text
    with pytest.raises(TicketError):
        await desk.app.tickets.reply(tid, "李四", "太晚了")


async def test_cancel_only_ones_own_ticket(desk: Desk) -> None:
    tid = await escalate(desk, user="a")
    reply = await desk.app.conversations.cancel(msg(user="b"), tid)
    assert reply.text == NO_TICKET
    assert (await desk.ticket(tid)).status == "open"


async def test_human_request(desk: Desk) -> None:
    await desk.say(NUMBER_Q)
    reply = await desk.app.conversations.escalate(msg())
    assert reply.kind == "escalated"
    ticket = await desk.ticket(reply.ticket_id or 0)
    assert (ticket.question, ticket.reason) == (NUMBER_Q, "user_request")  # the last question
    again = await desk.app.conversations.escalate(msg(), text="再补充一句")
    assert again.kind == "info" and again.ticket_id == ticket.id
    assert await desk.count(Ticket) == 1


# -- bad input -------------------------------------------------------------------------------------------

BAD = [
    "",
    "   ",
    "问" * 2500,
    "😀🎉",
    "\x00\x01\x02",
    "a\x00b这个方案的文号是多少",
    "\ud800文号",
    "Hello, how do I apply for the 外资 备案?",
    "'; DROP TABLE entries; --",
    "<script>alert('x')</script>",
]


@pytest.mark.parametrize("text", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
async def test_bad_input_never_breaks_the_conversation(desk: Desk, text: str) -> None:
    entries = await desk.count(Entry)
    replies = await desk.say(text, update_id="bad-1")
    assert len(replies) == 1
    (reply,) = replies
    assert reply.kind in ("answer", "suggestions", "no_answer", "error")
    assert reply.text.strip()
    assert await desk.count(Ticket) == 0  # a ticket opens only when asked for
    assert await desk.count(Entry) == entries  # the database is intact
    assert (await desk.say(NUMBER_Q))[0].kind in ("answer", "info")
    await desk.deliver()

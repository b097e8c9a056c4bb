"""Issue 15, points 3 and 4 through the core: staff only when asked (no exact answer -> 转人工), an open
ticket that does not swallow questions, one open ticket per visitor (also under concurrency), and
[handoff] auto_escalate. The channels' own tests: tests/test_handoff_channels.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.config import ConfigError, Settings, settings_from_dict
from bot.gaps import find_gaps
from bot.messages import IncomingMessage, Reply, Suggestion
from bot.protocol import command_hint, command_in_words, escalate_action, feedback_action
from bot.qa import closest, not_chinese
from bot.stats import overview
from knowledge.importers.base import ParsedEntry
from knowledge.models import Message, Ticket
from knowledge.segment import Lexicon

ANSWERED = "外资企业年报什么时候报？"  # a stored FAQ, answered outright
UNKNOWN = "会议室周末能借用吗"  # nothing in the knowledge base fits
OTHER_UNKNOWN = "火星上养骆驼需要什么许可"
REFERRAL = "个人社保断缴了怎么补缴？"  # another body's matter: 人社, 12333


def visitor(user: str = "v1", update_id: str | None = None) -> IncomingMessage:
    return IncomingMessage("web", f"chat-{user}", user, "", display_name="访客", update_id=update_id)


async def say(app: App, text: str, user: str = "v1") -> Reply:
    m = visitor(user)
    m.text = text
    (reply,) = await app.conversations.handle(m)
    return reply


async def tickets(app: App, status: tuple[str, ...] = ("open", "claimed")) -> list[Ticket]:
    async with app.services.sessions() as s:
        return list(await s.scalars(select(Ticket).where(Ticket.status.in_(status)).order_by(Ticket.id)))


async def test_greeting_and_referral_never_open_a_ticket(app: App) -> None:
    hello = await say(app, "你好")
    assert hello.kind == "answer" and hello.entry_id == "smalltalk-hello"
    referral = await say(app, REFERRAL)
    assert referral.kind == "answer" and referral.entry_id == "ref-hrss" and "12333" in referral.text
    assert await tickets(app, ("open", "claimed", "answered", "closed", "cancelled")) == []


async def test_small_talk_is_not_the_question_handed_over(app: App) -> None:
    # 你好 then 转人工: no question asked yet; a question, 谢谢, then 转人工: that question.
    await say(app, "你好")
    first = await say(app, "转人工")
    await say(app, ANSWERED, "v2")
    thanks = await say(app, "谢谢", "v2")
    assert thanks.entry_id is not None and thanks.entry_id.startswith("smalltalk-")
    second = await say(app, "转人工", "v2")
    by_id = {t.id: t for t in await tickets(app)}
    assert by_id[first.ticket_id or 0].question == "（用户请求人工服务）"
    assert by_id[second.ticket_id or 0].question == ANSWERED


async def test_a_question_without_chinese_is_asked_in_chinese(app: App) -> None:
    reply = await say(app, "How do I apply for prepaid card filing?")
    assert reply.kind == "no_answer" and reply.ticket_id is None
    assert "只能回答中文问题" in reply.text and "only answer questions asked in Chinese" in reply.text
    assert reply.buttons[-1][0].label == "转人工"  # staff may well answer it
    chinese = await say(app, UNKNOWN, "v2")
    assert chinese.kind == "no_answer" and "中文" not in chinese.text
    assert (await say(app, "Hello!", "v3")).entry_id == "smalltalk-hello"  # small talk stays small talk
    assert not_chinese("What is MOFCOM?")
    assert not any(map(not_chinese, ("OK", "A4", "MOFCOM是什么", "12345")))  # too short, or Chinese


async def test_no_answer_offers_human_and_opens_no_ticket(app: App) -> None:
    reply = await say(app, UNKNOWN)
    assert reply.kind == "no_answer" and reply.ticket_id is None
    assert reply.text.startswith("这个问题我暂时还没有准确的答案。") and "转人工" in reply.text
    async with app.services.sessions() as s:
        question = await s.scalar(select(Message).where(Message.direction == "in"))
    assert question is not None and question.status == "escalated" and question.ticket_id is None
    labels = [b.label for row in reply.buttons for b in row]
    assert labels[-1] == "转人工" and reply.buttons[-1][0].action == escalate_action(question.id)
    assert len(labels) == len(set(labels))  # never one label twice
    assert await tickets(app) == []
    # the unanswered question is still what staff see in the gaps and the overview
    gaps = await find_gaps(app.services.sessions, app.services.kb.lex)
    assert any(UNKNOWN in g.questions for g in gaps)
    numbers = await overview(app.tickets)
    assert numbers.escalated == 1 and numbers.questions == 1


@pytest.mark.parametrize("how", ["text", "command", "button", "action"])
async def test_human_opens_the_ticket_for_the_unanswered_question(app: App, how: str) -> None:
    no_answer = await say(app, UNKNOWN)
    if how == "text":
        reply = await say(app, "我要转人工！")
    elif how == "command":
        reply = await say(app, "/human")
    elif how == "button":
        (reply,) = await app.conversations.act(visitor(), no_answer.buttons[-1][0].action)
    else:
        (reply,) = await app.conversations.act(visitor(), "human")
    assert reply.kind == "escalated" and reply.ticket_id is not None
    assert reply.text.startswith(f"好的，已为您转人工，工单号 #{reply.ticket_id}。")
    assert "/status" not in reply.text  # the ways on are buttons; channels without them hint commands
    assert [b.action for b in reply.buttons[0]] == ["status", f"cancel:{reply.ticket_id}"]
    (ticket,) = await tickets(app)
    assert (ticket.id, ticket.question, ticket.reason) == (reply.ticket_id, UNKNOWN, "user_request")
    async with app.services.sessions() as s:
        question = await s.scalar(select(Message).where(Message.direction == "in", Message.text == UNKNOWN))
    assert question is not None and question.ticket_id == ticket.id


async def test_not_helpful_and_human_are_worded_apart(app: App) -> None:
    answer = await say(app, ANSWERED)
    assert answer.kind == "answer" and answer.message_id is not None
    (unsolved,) = await app.conversations.act(visitor(), feedback_action(answer.message_id, False))
    assert unsolved.kind == "escalated" and unsolved.text.startswith("抱歉这条回答没有解决您的问题")
    (ticket,) = await tickets(app)
    assert (ticket.reason, ticket.question) == ("not_helpful", ANSWERED)
    # 没解决 again with the ticket open: added to it, no second ticket
    (again,) = await app.conversations.act(visitor(), feedback_action(answer.message_id, False))
    assert again.kind == "info" and again.ticket_id == ticket.id and f"工单 #{ticket.id}" in again.text
    # 转人工 with the ticket open: told it is in hand
    human = await say(app, "转人工")
    assert human.kind == "info" and human.ticket_id == ticket.id and "处理中" in human.text
    assert len({unsolved.text.split("，")[0], human.text.split("，")[0]}) == 2
    assert len(await tickets(app)) == 1


async def test_an_open_ticket_does_not_swallow_questions(app: App) -> None:
    await say(app, UNKNOWN)
    escalated = await say(app, "转人工")
    tid = escalated.ticket_id
    # an answerable question is answered, and joins the ticket's transcript
    answer = await say(app, ANSWERED)
    assert answer.kind == "answer" and answer.entry_id == "faq-trade-004" and answer.ticket_id == tid
    # small talk and another body's matter are answered too
    assert (await say(app, "谢谢")).kind == "answer"
    referral = await say(app, REFERRAL)
    assert referral.kind == "answer" and referral.entry_id == "ref-hrss"
    # what the bot cannot answer is added to the open ticket
    added = await say(app, OTHER_UNKNOWN)
    assert added.kind == "info" and added.ticket_id == tid
    assert added.text.startswith(f"已补充到工单 #{tid}")
    # ... with the closest entries it would have offered without a ticket, to read while waiting
    closest = (await app.services.qa.ask(OTHER_UNKNOWN)).suggestions
    assert closest and [row[0].label for row in added.buttons] == [c.title[:60] for c in closest]
    assert len(await tickets(app)) == 1
    async with app.services.sessions() as s:
        in_ticket = list(
            await s.scalars(select(Message.text).where(Message.ticket_id == tid).order_by(Message.id))
        )
    assert UNKNOWN in in_ticket and ANSWERED in in_ticket and OTHER_UNKNOWN in in_ticket
    assert answer.text in in_ticket  # the bot's answer is in the transcript as well
    # once staff answered, the next unknown question is "no exact answer yet" again
    await app.tickets.reply(tid or 0, "李四", "周末不对外借用。")
    assert (await say(app, OTHER_UNKNOWN)).kind == "no_answer"


async def test_auto_escalate_opens_at_once(settings: Settings, lexicon: Lexicon) -> None:
    core = await App.create(settings.replace("handoff", auto_escalate=True), lexicon=lexicon)
    try:
        await core.services.load_default_if_empty()
        reply = await say(core, UNKNOWN)
        assert reply.kind == "escalated" and reply.text.startswith(
            "这个问题我暂时无法准确回答，已转给工作人员"
        )
        (ticket,) = await tickets(core)
        assert (ticket.id, ticket.reason, ticket.question) == (reply.ticket_id, "no_match", UNKNOWN)
        # with it open, the next unknown question is added to it, not a second ticket
        assert (await say(core, OTHER_UNKNOWN)).kind == "info"
        assert len(await tickets(core)) == 1
    finally:
        await core.close()


@pytest.fixture
async def two_workers(settings: Settings, lexicon: Lexicon) -> AsyncIterator[tuple[App, App]]:
    """Two cores on one database (two worker processes), each with its own connection pool."""
    first = await App.create(settings, lexicon=lexicon)
    await first.services.load_default_if_empty()
    second = await App.create(settings, lexicon=lexicon)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_one_open_ticket_per_visitor_under_concurrency(two_workers: tuple[App, App]) -> None:
    first, second = two_workers
    answer = await say(first, ANSWERED)
    await say(first, UNKNOWN)
    down = feedback_action(answer.message_id or 0, False)
    m = visitor()
    m.text = "转人工"
    calls = []
    for core in (first, second):
        calls += [
            core.conversations.escalate(visitor()),
            core.conversations.handle(m),
            core.conversations.act(visitor(), "human"),
            core.conversations.act(visitor(), down),
        ]
    results = await asyncio.gather(*calls)
    (ticket,) = await tickets(first)
    flat = [r for res in results for r in (res if isinstance(res, list) else [res])]
    assert {r.ticket_id for r in flat} == {ticket.id}
    assert sum(r.kind == "escalated" for r in flat) == 1  # one opened it, the others were told it is open
    async with first.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Ticket)) == 1


def test_handoff_settings_are_validated() -> None:
    assert Settings().handoff.auto_escalate is False
    assert settings_from_dict({"handoff": {"auto_escalate": True}}).handoff.auto_escalate is True
    with pytest.raises(ConfigError, match=r"\[handoff\] auto_escalate: must be true or false"):
        settings_from_dict({"handoff": {"auto_escalate": "yes"}})
    with pytest.raises(ConfigError, match=r"\[handoff\] auto: unknown key"):
        settings_from_dict({"handoff": {"auto": True}})


def test_asking_for_a_person_in_words() -> None:
    for text in (
        "转人工",
        "转人工！",
        "我要人工呀",
        "人工客服",
        " 找工作人员 ",
        "客服",
        "有人工吗？",
        "转真人",
        "能不能转人工",
        "请帮我转接人工客服",
        "可以转人工吗",
        "我想找人工",
        "人工客服在吗",
    ):
        assert command_in_words(text) == "human", text
    for text in (
        "人工智能产业有什么扶持政策",
        "转人工以后多久答复",
        "",
        "人",
        "客服电话多少",
        "客服几点上班",
        "转人工要多久",
        "找工作人员办备案",
        "联系工作人员的电话",
    ):
        assert command_in_words(text) is None, text


def test_status_and_cancel_in_words() -> None:
    assert [
        command_in_words(t) for t in ("查看进度", "我的工单？", "有回复了吗", "撤回工单", "撤回", "客服")
    ] == [
        "status",
        "status",
        "status",
        "cancel",
        "cancel",
        "human",
    ]
    for text in ("外贸备案取消了吗", "备案办理进度怎么查", "撤回信息公开申请要什么手续", "进度款"):
        assert command_in_words(text) is None, text


def test_status_and_cancel_said_in_other_words() -> None:
    """How a user asks after their question or takes it back, beyond the fixed words: only words of
    asking, of "my question", of progress or a reply; a message naming a matter stays a question."""
    for text in (
        "帮我查一下进度",
        "我的工单怎么样了",
        "我提交的问题处理到哪了",
        "有人回复了吗？",
        "工作人员回复了没有",
        "我的问题有人处理吗",
        "查看处理进度",
        "客服回我了吗",
        "进度查一下",
        "查询一下我的工单",
        "还没人回复吗",
        "等了好久了还没回复",
    ):
        assert command_in_words(text) == "status", text
    for text in (
        "撤回我的工单",
        "我想撤回问题",
        "取消我的问题",
        "不用了撤回吧",
        "我不要人工了",
        "不用转人工了",
    ):
        assert command_in_words(text) == "cancel", text
    for text in (
        "信息公开申请进度怎么查",
        "我申请的备案进度",
        "项目进展如何",
        "你们回复要多久",
        "12345回复了吗",
        "我的问题",
        "可以取消吗",
        "取消备案",
        "撤回申请",
        "不要人工审核的备案有哪些",
    ):
        assert command_in_words(text) is None, text


async def test_a_ticket_followed_and_withdrawn_in_words(app: App) -> None:
    await say(app, UNKNOWN)
    opened = await say(app, "转人工")
    status = await say(app, "查看进度")
    assert status.kind == "info" and f"#{opened.ticket_id}" in status.text and UNKNOWN[:10] in status.text
    withdrawn = await say(app, "撤回工单")
    assert withdrawn.text.startswith(f"已撤回工单 #{opened.ticket_id}")
    assert await tickets(app) == []  # none open
    async with app.services.sessions() as s:
        asked = await s.scalars(select(Message.text).where(Message.direction == "in"))
        assert list(asked) == [UNKNOWN]  # the words were commands, not questions


async def test_a_ticket_followed_and_withdrawn_in_other_words(app: App) -> None:
    await say(app, UNKNOWN)
    opened = await say(app, "能不能转人工")
    assert opened.ticket_id is not None
    for words in ("有人回复了吗？", "我的问题处理到哪了"):
        status = await say(app, words)
        assert status.kind == "info" and f"#{opened.ticket_id}" in status.text, words
    withdrawn = await say(app, "撤回我的工单")
    assert withdrawn.text.startswith(f"已撤回工单 #{opened.ticket_id}")
    assert await tickets(app) == []
    async with app.services.sessions() as s:
        asked = await s.scalars(select(Message.text).where(Message.direction == "in"))
        assert list(asked) == [UNKNOWN]  # the words were commands, not questions


async def test_a_goodbye_with_a_ticket_open_says_it_is_still_open(app: App) -> None:
    """算了不用了 while a ticket is open is a goodbye, not a question for the ticket: answered as small
    talk, with the ticket's number and the buttons to follow or withdraw it; without a ticket, a
    plain goodbye."""
    assert "撤回" not in (await say(app, "算了不用了")).text
    await say(app, UNKNOWN)
    opened = await say(app, "转人工")
    for words in ("算了不用了", "再见"):
        bye = await say(app, words)
        assert bye.kind == "answer" and f"工单 #{opened.ticket_id} 还在处理中" in bye.text, bye.text
        assert ["查看进度", "撤回工单"] in [[b.label for b in row] for row in bye.buttons]
    async with app.services.sessions() as s:
        in_ticket = await s.scalars(
            select(Message.text).where(Message.ticket_id == opened.ticket_id, Message.direction == "in")
        )
        assert list(in_ticket) == [UNKNOWN, "算了不用了", "再见"]  # (in the transcript, as answered ones are)
    assert len(await tickets(app)) == 1  # still open: withdrawing is the user's choice


def test_command_hints_and_closest() -> None:
    from bot.messages import Button

    buttons = [
        [Button("查看进度", "status"), Button("撤回工单", "cancel:3")],
        [Button("转人工", "escalate:9")],
    ]
    assert command_hint(buttons) == "发送 /human 转人工，/status 查看进度，/cancel 撤回"
    assert command_hint(buttons, numbered=True) == "发送 /status 查看进度，/cancel 撤回"
    assert command_hint([[Button("有用", "feedback:up:1")]]) == ""
    same = [
        Suggestion("a", "外资企业年报", 3.0),
        Suggestion("b", "外资企业年报 ", 2.0),
        Suggestion("c", "备案", 1.0),
    ]
    assert [s.entry_id for s in closest(same)] == ["a", "c"]


def test_suggestions_never_repeat_a_label() -> None:
    from bot.conversation import suggestion_reply
    from bot.messages import Decision

    d = Decision("备案", "suggested")
    d.suggestions = [
        Suggestion("a", "预付卡备案", 3.0),
        Suggestion("b", "预付卡备案", 2.5),
        Suggestion("c", "洗染业备案", 2.0),
    ]
    reply = suggestion_reply(d, 7)
    assert [(b.label, b.action) for row in reply.buttons for b in row] == [
        ("预付卡备案", "pick:7:0"),
        ("洗染业备案", "pick:7:2"),
        ("都不是，转人工", "escalate:7"),
    ]


async def test_not_helpful_on_a_browsed_entry_hands_over_that_entry(app: App) -> None:
    """没解决 on an entry chosen from a category list hands over that entry: the ticket said nothing
    (no question before it) or, after an earlier question, that unrelated question."""
    await say(app, UNKNOWN)  # an earlier, unrelated question
    (listing,) = await app.conversations.act(visitor(), "cat:外贸外资")
    first = listing.buttons[0][0]
    (shown,) = await app.conversations.act(visitor(), first.action)
    assert shown.kind == "answer" and shown.message_id is not None
    (reply,) = await app.conversations.act(visitor(), feedback_action(shown.message_id, False))
    (ticket,) = await tickets(app)
    assert reply.ticket_id == ticket.id and ticket.reason == "not_helpful"
    assert ticket.question == f"（用户查看「{first.label}」后反馈没解决）", ticket.question
    # ... while 没解决 on an answer to a question hands over that question, as before
    answered = await say(app, ANSWERED, user="v2")
    await app.conversations.act(visitor("v2"), feedback_action(answered.message_id, False))
    assert [t.question for t in await tickets(app)][-1] == ANSWERED


async def test_a_category_named_in_a_message_lists_its_entries(app: App) -> None:
    """流通行业管理, as the greeting lists it, typed instead of pressed (a text channel numbers the
    categories, but people type the name): its entries, as the button gives them, stored so that a
    number chooses among them. It was a question, answered with one guide of the category."""
    listed = await app.conversations.act(visitor(), "cat:流通行业管理")
    for typed in ("流通行业管理", " 流通行业管理？", "流通行業管理"):
        reply = await say(app, typed, user="v2")
        assert reply.text == listed[0].text and reply.buttons == listed[0].buttons, typed
    (chosen,) = await app.conversations.choose(visitor("v2"), 1)
    assert chosen.kind == "answer" and chosen.entry_id == listed[0].buttons[0][0].action.partition(":")[2]
    async with app.services.sessions() as s:
        asked = list(await s.scalars(select(Message.text).where(Message.direction == "in")))
    assert asked == []  # no question recorded
    for question in ("流通行业管理有哪些规定", "问候"):  # more than the name; a desk category
        assert (await say(app, question, user="v3")).text != listed[0].text
    # a category added since is known at once (the names are read again for each knowledge version)
    await app.services.kb.save_entry(
        ParsedEntry(
            id="t-cat", kind="faq", question="展会补贴怎么申请？", answer="见通知。", category="会展服务"
        )
    )
    shown = await say(app, "会展服务", user="v4")
    assert shown.text.startswith("「会展服务」共 1 条") and shown.buttons[0][0].action == "entry:t-cat"


async def test_a_short_follow_up_asks_about_the_matter_just_answered(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """要多久 / 收费吗 right after a guide's answer ask for that guide's sections (alone, they had no
    answer: which matter's?); after a policy's Q&A, 湖北呢 is answered by its sibling on 湖北. The
    question stored is the user's own words. After small talk, or half an hour later, a follow-up is a
    question of its own."""
    caplog.set_level(logging.INFO, logger="policybot.conversation")
    first = await say(app, "再生资源回收经营者备案要什么材料")
    assert first.kind == "answer" and first.entry_id == "guide-recycling-filing"
    for asked, section in (("要多久", "办理时限"), ("收费吗？", "收费标准"), ("在哪办", "办理地点与时间")):
        assert (await say(app, asked, user="v2")).kind != "answer", asked  # alone: no answer
        follow = await say(app, asked)
        assert follow.kind == "answer" and follow.entry_id == "guide-recycling-filing", asked
        assert follow.text.startswith(f"【再生资源回收经营者备案｜{section}】"), follow.text[:40]
    async with app.services.sessions() as s:
        latest = select(Message.text).where(Message.direction == "in").order_by(Message.id.desc())
        assert await s.scalar(latest.limit(1)) == "在哪办"  # the user's words, as asked
    logged = [r for r in caplog.records if r.getMessage() == "follow-up answered"]
    assert len(logged) == 3 and logged[0].after == "guide-recycling-filing"
    vat = await say(app, "小规模纳税人增值税减按1%的政策什么时候开始", user="v3")
    assert vat.kind == "answer" and vat.entry_id == "policy-small-scale-vat-relief-2020#qa1"
    assert (await say(app, "湖北呢", user="v5")).kind != "answer"  # alone: 湖北 what?
    hubei = await say(app, "湖北呢", user="v3")
    assert hubei.kind == "answer" and hubei.entry_id == "policy-small-scale-vat-relief-2020#qa3"
    # another body's matter the guide names in passing (a licence among its materials): its referral
    licence = await say(app, "营业执照在哪办")
    regulator = await app.services.kb.get("ref-samr")
    assert regulator is not None and licence.kind == "suggestions"
    assert licence.buttons[0][0].label == regulator.title, licence.buttons
    for aside in ("好麻烦", "怎么投诉", "为什么"):  # nothing of the guide asked: no answer repeated
        await say(app, "再生资源回收经营者备案要什么材料", user="v6")
        assert (await say(app, aside, user="v6")).kind != "answer", aside
    await say(app, "谢谢")
    assert (await say(app, "要多久")).kind != "answer"  # after small talk: whose?
    document = await say(app, "鼓楼区商务局2020年政务公开工作要点的文号是多少", user="v7")
    assert document.kind == "answer" and document.entry_id and document.entry_id.startswith("doc-")
    # a document's clauses are matters of their own, not the document's family: a short question
    # whose best entry is one of its clauses is no follow-up of the document's number (it is decided
    # as it would be asked alone: answered by the clause, which says 纾困政策的资金流向公开透明)
    alone = await app.services.qa.ask("纾困政策的公开力度")
    assert alone.candidates[0].entry_id.startswith(document.entry_id + "/")
    after = await say(app, "纾困政策的公开力度", user="v7")
    assert after.entry_id != document.entry_id
    assert (after.kind == "answer") == (alone.status == "answered")
    assert after.kind != "answer" or after.entry_id == alone.entry_id
    await say(app, "再生资源回收经营者备案要什么材料", user="v4")
    async with app.services.sessions() as s, s.begin():
        for m in await s.scalars(select(Message)):
            m.created_at = m.created_at - timedelta(minutes=31)
    assert (await say(app, "要多久", user="v4")).kind != "answer"  # half an hour later


async def test_a_question_that_only_asks_follows_the_guide_just_answered(app: App) -> None:
    """电话多少 / 符合条件吗 name no matter: alone they are offered, not answered (the model alone gave
    the bureau's phone and a policy that says 符合条件); right after a guide's answer they ask for
    that guide's phone and conditions."""
    for asked in ("电话多少", "符合条件吗"):
        assert (await say(app, asked, user="v2")).kind != "answer", asked  # alone: whose?
    first = await say(app, "拍卖企业设立要什么材料")
    assert first.kind == "answer" and first.entry_id == "guide-auction-permit", first.entry_id
    for asked, section in (("电话多少", "咨询电话"), ("符合条件吗", "办理条件")):
        follow = await say(app, asked)
        assert follow.kind == "answer" and follow.entry_id == "guide-auction-permit", asked
        assert f"｜{section}】" in follow.text[:40], follow.text[:40]


async def test_a_question_that_only_asks_after_an_faq_asks_the_guide_offered_under_it(app: App) -> None:
    """After an FAQ's answer (预付卡备案's deadline), 要带什么材料 asks for the materials of the guide
    offered under that answer, and then 电话多少 for that guide's phone. A short question naming a
    matter of its own (典当行要什么材料) is not taken for it, nor is one asked with no answer before."""
    first = await say(app, "预付卡备案要在多少天内办")
    assert first.kind == "answer" and first.entry_id == "faq-circ-001", first.entry_id
    materials = await say(app, "要带什么材料")
    assert materials.kind == "answer" and materials.entry_id == "guide-prepaid-card-filing"
    assert "｜申请材料】" in materials.text[:60], materials.text[:60]
    phone = await say(app, "电话多少")
    assert phone.entry_id == "guide-prepaid-card-filing" and "｜咨询电话】" in phone.text[:60]
    await say(app, "预付卡备案要在多少天内办", user="v2")
    other = await say(app, "典当行要什么材料", user="v2")
    assert other.entry_id != "guide-prepaid-card-filing", other.entry_id
    assert (await say(app, "要带什么材料", user="v3")).kind != "answer"


async def test_a_question_that_only_asks_after_entries_offered_asks_it_of_them(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """After 您是不是想问 (the two auction guides tie on 拍卖要带什么材料), 要多久 asks the
    time limit of the guides offered: they are offered again for that section, and the one chosen
    shows it (it had been offered information-disclosure FAQs). Where one entry offered has the
    section it answers; where none has, the question is its own, as it is after half an hour."""
    caplog.set_level(logging.INFO, logger="policybot.conversation")
    offered = await say(app, "拍卖要带什么材料")
    assert offered.kind == "suggestions", offered.kind
    first = [b.label for row in offered.buttons for b in row]
    again = await say(app, "要多久")
    assert again.kind == "suggestions"
    labels = [b.label for row in again.buttons for b in row][:-1]  # (the last: 都不是，转人工)
    assert labels and all(label.endswith("：办理时限") for label in labels), labels
    assert all(any(label.startswith(t) for t in first) for label in labels), (labels, first)
    assert [r.getMessage() for r in caplog.records].count("follow-up offered") == 1
    (chosen,) = await app.conversations.choose(visitor("v1"), 1)
    assert chosen.kind == "answer" and chosen.entry_id and chosen.entry_id.startswith("guide-auction")
    assert "｜办理时限】" in chosen.text[:60], chosen.text[:60]
    # one of those offered has the section asked: it answers
    offered = await say(app, "外资年报", user="v2")  # (two FAQs and the guide)
    assert offered.kind == "suggestions", offered.kind
    materials = await say(app, "要带什么材料", user="v2")
    assert materials.kind == "answer" and materials.entry_id == "guide-fdi-annual-report", materials.kind
    assert "｜申请材料】" in materials.text[:60], materials.text[:60]
    await say(app, "拍卖要带什么材料", user="v3")
    async with app.services.sessions() as s, s.begin():
        for m in await s.scalars(select(Message)):
            m.created_at = m.created_at - timedelta(minutes=31)
    late = await say(app, "要多久", user="v3")
    assert not any(b.label.endswith("：办理时限") for row in late.buttons for b in row)


async def test_a_choice_typed_by_its_label_is_that_choice(app: App) -> None:
    """On a text channel a user may type 有用 or 没解决 instead of its number: it is the rating (it was
    a question with no answer, and 转人工 then handed over 有用)."""
    from knowledge.models import Feedback

    answered = await say(app, ANSWERED)
    thanks = await say(app, " 有用！")
    assert thanks.kind == "ack" or thanks.text.startswith("感谢")
    async with app.services.sessions() as s:
        assert [f.helpful for f in await s.scalars(select(Feedback))] == [True]
        asked = list(await s.scalars(select(Message.text).where(Message.direction == "in")))
    assert asked == [ANSWERED]  # the label was no question
    await say(app, ANSWERED, user="v2")
    handed = await say(app, "没解决", user="v2")
    (ticket,) = await tickets(app)
    assert handed.ticket_id == ticket.id and ticket.question == ANSWERED
    assert answered.message_id is not None
    # a label of no choice on offer is a question as ever
    assert (await say(app, "有用", user="v3")).kind != "ack"
    # 都不是 (the first clause of 都不是，转人工) under suggestions hands that question over
    offered = await say(app, "备案", user="v4")
    assert offered.kind == "suggestions", offered.kind
    handed = await say(app, "都不是", user="v4")
    assert handed.kind == "escalated" and [t.question for t in await tickets(app)][-1] == "备案"

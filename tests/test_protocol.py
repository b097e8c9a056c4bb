"""The core channel API: actions made and parsed in one place (bot/protocol.py), ``Conversations.act``
and ``Conversations.command`` as every adapter calls them, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.messages import Decision, Suggestion
from bot.protocol import (
    MAX_ID,
    Action,
    ActionError,
    cancel_action,
    category_action,
    choices,
    entry_action,
    escalate_action,
    feedback_action,
    parse_action,
    parse_command,
    parse_id,
    pick_action,
    ticket_arg,
)
from bot.render import NO_ANSWER_CLOSEST, decision_text
from knowledge.models import Message, OutboxItem, ProcessedUpdate, Ticket
from knowledge.segment import Lexicon
from tests.test_conversation import NUMBER_Q, OFF_Q, VAGUE_Q, Desk, msg, open_desk

BAD = ["", "pick", "pick:1", "pick:x:y", "pick:1:2:3", "pick:-1:0", "feedback:sideways:1", "feedback:up",
       "feedback:up:x", "escalate:a", "escalate:1:2", "cancel:abc", "status:1", "human:2", "cat:", "entry:",
       "explode", "x" * 300, "pick:1234567890123:0",
       # ids beyond the database's 32-bit id columns (issue 16, R1): nobody's row, refused up front
       "pick:2147483648:0", "pick:1:2147483648", "cancel:2147483648", "escalate:999999999999",
       "feedback:up:2147483648", "rate:good:2147483648", "rel:2147483648:0", "unsub:2147483648",
       "read:2147483648", "pick:1\n:0"]  # fmt: skip


@pytest.fixture
async def desk(settings: Settings, lexicon: Lexicon) -> AsyncIterator[Desk]:
    d = await open_desk(settings, lexicon)
    try:
        yield d
    finally:
        await d.app.close()


def test_every_builder_parses_back() -> None:
    assert parse_action(pick_action(3, 2)) == Action("pick", (3, 2))
    assert parse_action(feedback_action(7, True)) == Action("feedback", (7,), helpful=True)
    assert parse_action(feedback_action(7, False)) == Action("feedback", (7,), helpful=False)
    assert parse_action(escalate_action(4)) == Action("escalate", (4,))
    assert parse_action(escalate_action()) == Action("escalate")
    assert parse_action(cancel_action(9)).id == 9 and parse_action(cancel_action()).id is None
    assert parse_action(category_action("机构信息")) == Action("cat", arg="机构信息")
    assert parse_action(entry_action("faq:a-1")) == Action("entry", arg="faq:a-1")
    assert parse_action("human") == Action("human") and parse_action("status") == Action("status")
    assert parse_action(pick_action(MAX_ID, 0)) == Action("pick", (MAX_ID, 0))  # the largest id still is one


def test_ids_from_outside() -> None:
    assert parse_id("1") == 1 and parse_id(str(MAX_ID)) == MAX_ID
    for bad in ("0", str(MAX_ID + 1), "99999999999", "-1", "1\n", "١", "", "x"):
        with pytest.raises(ValueError):
            parse_id(bad)
    assert ticket_arg("#12") == 12 and ticket_arg("99999999999") == 0  # a number no ticket has


@pytest.mark.parametrize("action", BAD)
def test_bad_actions_raise_one_error(action: str) -> None:
    with pytest.raises(ActionError, match="未知操作"):
        parse_action(action)


def test_commands() -> None:
    assert parse_command("/status") == ("status", "")
    assert parse_command("  /HUMAN 我想咨询 外资 ") == ("human", "我想咨询 外资")
    assert parse_command("/cancel@gulou_bot #12") == ("cancel", "#12")
    assert parse_command("/weather") is None and parse_command("status") is None
    assert ticket_arg("#12") == 12 and ticket_arg("12 x") == 12
    assert ticket_arg("") is None and ticket_arg("abc") is None


async def count(desk: Desk, model) -> int:
    async with desk.app.services.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_bad_action_changes_nothing(desk: Desk) -> None:
    before = [await count(desk, m) for m in (Message, Ticket, OutboxItem, ProcessedUpdate)]
    for action in BAD:
        with pytest.raises(ActionError):
            await desk.app.conversations.act(msg(update_id=f"u-{len(action)}"), action)
    assert [await count(desk, m) for m in (Message, Ticket, OutboxItem, ProcessedUpdate)] == before


async def test_a_foreign_action_gets_an_error_reply(desk: Desk) -> None:
    (suggested,) = await desk.say(VAGUE_Q, user="u1")
    pick = suggested.buttons[0][0].action
    (answer,) = await desk.say(NUMBER_Q, user="u1")
    await desk.say(OFF_Q, user="u1")
    ticket = (await desk.say("转人工", user="u1"))[0].ticket_id
    other = msg(user="u2")
    for action in (pick, feedback_action(answer.message_id or 0, False), cancel_action(ticket)):
        (reply,) = await desk.app.conversations.act(other, action)
        assert reply.kind in ("error", "info") and reply.entry_id is None
    assert (await desk.ticket(ticket or 0)).status == "open"  # u2 could not withdraw u1's ticket
    (mine,) = await desk.app.conversations.act(msg(user="u1"), pick)
    assert mine.kind == "answer"


async def test_act_and_command_deduplicate_and_queue(desk: Desk) -> None:
    (answer,) = await desk.say(NUMBER_Q)
    up = feedback_action(answer.message_id or 0, True)
    (thanks,) = await desk.app.conversations.act(msg(update_id="b1"), up, via_outbox=True)
    assert thanks.kind == "ack"
    assert await desk.app.conversations.act(msg(update_id="b1"), up, via_outbox=True) == []
    (status,) = await desk.app.conversations.command(msg(update_id="c1"), "status", via_outbox=True)
    assert await desk.app.conversations.command(msg(update_id="c1"), "status", via_outbox=True) == []
    assert await count(desk, OutboxItem) == 2  # one each, the repeats queued nothing
    assert await desk.deliver() == 2
    assert [r.text for _, r, _ in desk.users.sent] == [thanks.text, status.text]


async def test_help_names_every_command_of_the_menu(desk: Desk) -> None:
    from handlers.telegram_bot import COMMANDS

    (help_reply,) = await desk.say("/help")
    missing = [name for name, _ in COMMANDS if name != "help" and f"/{name}" not in help_reply.text]
    assert missing == []


async def test_commands_through_handle_and_command(desk: Desk) -> None:
    (help_reply,) = await desk.say("/help")
    assert "/human" in help_reply.text
    (unknown,) = await desk.app.conversations.command(msg(), "weather")
    assert unknown.text.startswith("没有这个命令")
    (start,) = await desk.say("/start")
    actions = [b.action for row in start.buttons for b in row]
    assert actions and all(a.startswith("cat:") for a in actions)
    (listing,) = await desk.app.conversations.act(msg(), actions[0])
    entry = listing.buttons[0][0].action
    (shown,) = await desk.app.conversations.act(msg(), entry)
    assert shown.kind == "answer" and shown.source_line
    (ticket,) = await desk.say("/human 我想咨询外资企业登记")
    assert ticket.kind == "escalated"
    assert (await desk.ticket(ticket.ticket_id or 0)).question == "我想咨询外资企业登记"
    (cancelled,) = await desk.say(f"/cancel #{ticket.ticket_id}")
    assert (await desk.ticket(ticket.ticket_id or 0)).status == "cancelled" and "撤回" in cancelled.text


async def test_a_number_chooses_among_the_latest_replys_choices(desk: Desk) -> None:
    """Text-only channels (terminal, WeChat) number the choices; ``choose`` resolves the number."""
    assert await desk.app.conversations.choose(msg(), 1) is None  # no conversation yet
    (suggested,) = await desk.say(VAGUE_Q)
    offered = choices(suggested.buttons)
    assert [b.action.split(":")[0] for b in offered][-1] == "escalate"
    assert await desk.app.conversations.choose(msg(), len(offered) + 1) is None  # no such choice
    assert await desk.app.conversations.choose(msg(user="u2"), 1) is None  # not u2's reply
    (picked,) = await desk.app.conversations.choose(msg(), 1) or []
    assert picked.kind == "answer"
    now = choices(picked.buttons)  # the answer's 相关问题 are the choices now, then 有用 / 没解决
    kinds = [b.action.split(":")[0] for b in now]
    assert kinds[-2:] == ["feedback", "feedback"] and kinds[:-2] and set(kinds[:-2]) == {"rel"}
    assert await desk.app.conversations.choose(msg(), len(now) + 1) is None  # no such choice now
    (rated,) = await desk.app.conversations.choose(msg(), len(now) - 1) or []  # 有用, by its number
    assert rated.kind == "ack"


def test_a_question_without_an_answer_is_rendered_with_its_closest_entries() -> None:
    """``policybot ask`` (text) shows an escalated question's closest entries as the chat does."""
    offered = [Suggestion("a", "外资企业年报什么时候报？", 0.4), Suggestion("b", "单用途预付卡备案", 0.3)]
    text = decision_text(Decision("问", "escalated", notice="没有答案。", suggestions=offered))
    assert text.splitlines() == [
        "没有答案。",
        NO_ANSWER_CLOSEST,
        "  1. 外资企业年报什么时候报？",
        "  2. 单用途预付卡备案",
    ]
    assert decision_text(Decision("问", "escalated", notice="没有答案。")) == "没有答案。"


def test_a_reply_as_text_numbers_choices_once_and_says_the_subscription_words() -> None:
    """WeChat and the terminal (no buttons): hot questions and categories are numbered (a number opens
    them), never listed again by name, and the categories to subscribe to are listed with the words to
    send (the terminal showed neither)."""
    from bot.messages import Button, Reply
    from bot.render import CHOOSE_HINT, reply_text

    welcome = Reply(
        "您好",
        buttons=[[Button("商务局电话是多少？", "entry:faq-1")], [Button("外贸外资（3）", "cat:外贸外资")]],
    )
    text = reply_text(welcome, numbered="  [{i}] {label}")
    assert text.count("商务局电话是多少？") == 1 and "  [1] 商务局电话是多少？" in text
    assert "  [2] 外贸外资（3）" in text and "· " not in text and CHOOSE_HINT in text
    menu = Reply(
        "请选择：",
        buttons=[[Button("✓ 外贸外资", "subscribe:外贸外资"), Button("消费促进", "subscribe:消费促进")]],
    )
    text = reply_text(menu)
    assert "· ✓ 外贸外资" in text and "· 消费促进" in text and "例如：订阅 消费促进" in text
    assert CHOOSE_HINT not in text  # nothing numbered
    under_answer = reply_text(Reply("答复", buttons=[[Button("订阅此类政策更新", "subscribe:机构信息")]]))
    assert "· 机构信息" in under_answer and "订阅此类政策更新" not in under_answer

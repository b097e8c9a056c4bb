"""Issue 15 points 6 and 7 on Telegram, with the real python-telegram-bot Application against the fake
Bot API (tests/fakes/bot_api.py): /start with the hot questions, 相关问题 under an answer, and rating a
staff reply with its buttons and /comment."""

from __future__ import annotations

from sqlalchemy import select

from bot.config import DEFAULT_HOT
from knowledge.models import Rating, Ticket
from tests import test_telegram_e2e as e2e
from tests.fakes.bot_api import FakeBotAPI
from tests.test_telegram_e2e import ALICE, BOB, Bot, buttons, press, say, ticket_no, with_button

# The end-to-end harness's fixtures: a running policybot (core, outbox, PTB) against the fake Bot API.
fake = e2e.fake
no_errors = e2e.no_errors
bot = e2e.bot

FDI_Q = "外商投资法什么时候开始施行？"


async def test_start_offers_the_hot_questions_and_answers_have_related_buttons(
    bot: Bot, fake: FakeBotAPI
) -> None:
    say(fake, ALICE, "/start")
    (welcome,) = await fake.wait_sent(ALICE["id"], "大家常问的问题")
    assert buttons(welcome)[: len(DEFAULT_HOT)] == [f"entry:{e}" for e in DEFAULT_HOT]
    press(fake, ALICE, welcome, f"entry:{DEFAULT_HOT[0]}")
    (phone,) = await fake.wait_sent(ALICE["id"], "0591-87538464")
    assert any(b.startswith("feedback:up:") for b in buttons(phone))

    say(fake, ALICE, FDI_Q)
    (answer,) = await fake.wait_sent(ALICE["id"], "2020年1月1日起施行")
    rows = answer["reply_markup"]["inline_keyboard"]
    related = [row[0] for row in rows if row[0]["callback_data"].startswith("rel:")]
    labels = [b["text"] for b in related]
    assert "外商投资信息报告制度是怎么运作的？" in labels and FDI_Q not in labels
    chosen = related[labels.index("外商投资信息报告制度是怎么运作的？")]["callback_data"]
    press(fake, ALICE, answer, chosen)
    await fake.wait_sent(ALICE["id"], "通过市场监管部门的企业登记系统")


async def test_a_staff_reply_is_rated_with_buttons_and_commented(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, BOB, "/human 会议室周末能借用吗")
    (opened,) = await fake.wait_sent(BOB["id"], "工单")
    ticket_id = ticket_no(opened["text"])
    await bot.core.tickets.reply(ticket_id, "李科员", "可以借用，请提前一天登记。")
    (reply,) = await fake.wait_sent(BOB["id"], "工作人员答复")
    assert [b["text"] for b in reply["reply_markup"]["inline_keyboard"][0]] == ["满意", "一般", "不满意"]

    _, good = with_button(fake, BOB["id"], "rate:good:")
    press(fake, BOB, reply, good)
    (thanks,) = await fake.wait_sent(BOB["id"], "感谢您的评价（满意）")
    assert "/comment" in thanks["text"]  # on Telegram the comment is a command
    _, bad = with_button(fake, BOB["id"], "rate:bad:")
    press(fake, BOB, reply, bad)  # rating again replaces the rating
    await fake.wait_sent(BOB["id"], "感谢您的评价（不满意）")

    say(fake, BOB, "/comment 希望说明登记的方式")
    await fake.wait_sent(BOB["id"], "感谢您的评价（不满意）和意见")
    async with bot.core.services.sessions() as session:
        ratings = (await session.scalars(select(Rating))).all()
        ticket = await session.get(Ticket, ticket_id)
    assert [(r.score, r.comment, r.ticket_id) for r in ratings] == [("bad", "希望说明登记的方式", ticket_id)]
    assert ticket is not None and ticket.status == "answered"

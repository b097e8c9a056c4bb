"""Telegram buttons with ids beyond the database's integer range (issue 16): staff buttons answer
这个按钮已失效, a resident's button the core's refusal; never an exception. Through the real Application
against the fake Bot API (tests/fakes/bot_api.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.protocol import MAX_ID
from tests import test_telegram_e2e as e2e
from tests.fakes.bot_api import FakeBotAPI
from tests.test_telegram_e2e import (
    ALICE,
    STAFF,
    STAFF_CHAT,
    SUGGESTED,
    UNKNOWN,
    Bot,
    answer_callbacks,
    press,
    say,
    ticket_no,
)

bot, fake, no_errors = e2e.bot, e2e.fake, e2e.no_errors  # the end-to-end tests' fixtures
BEYOND = (MAX_ID + 1, 99999999999, 10**30)


async def test_staff_buttons_with_ids_beyond_the_range(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, UNKNOWN)
    (post,) = await fake.wait_sent(STAFF_CHAT, "新工单")
    number = ticket_no(post["text"])
    for big in BEYOND:
        for kind in ("claim", "close", "save"):
            press(fake, STAFF, post, f"{kind}:{big}")
    await answer_callbacks(fake, 3 * len(BEYOND))
    alerts = fake.of("answerCallbackQuery")
    assert all(c.params.get("text") == "这个按钮已失效。" for c in alerts), [c.params for c in alerts]
    ticket = await bot.ticket(number)
    assert (ticket.status, ticket.claimed_by) == ("open", "")


async def test_resident_buttons_with_ids_beyond_the_range(bot: Bot, fake: FakeBotAPI) -> None:
    say(fake, ALICE, SUGGESTED)
    (suggestions,) = await fake.wait_sent(ALICE["id"], "您是不是想问")
    for data in (f"pick:{MAX_ID + 1}:0", f"cancel:{MAX_ID + 1}", f"feedback:up:{99999999999}"):
        press(fake, ALICE, suggestions, data)
    await answer_callbacks(fake, 3)
    say(fake, ALICE, f"/cancel {99999999999}")
    await fake.wait_sent(ALICE["id"], "没有待处理的问题")

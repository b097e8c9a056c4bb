"""TelegramChannel against the fake Bot API: rendering, splitting, error mapping, outbox integration; and
the small pure pieces of the Telegram adapter (mentions, webhook secret; the flood guard: test_limits.py)."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from telegram import Bot, Message
from telegram.error import RetryAfter
from telegram.request import HTTPXRequest

from bot.app import App
from bot.channels import DeliveryError
from bot.messages import Button, ChannelRef, IncomingMessage, Reply
from bot.outbox import enqueue
from handlers.telegram_bot import file_url
from handlers.telegram_channel import TelegramChannel, retry_seconds
from handlers.telegram_input import addressed_text, content_kind, strip_mention
from handlers.telegram_render import keyboard, render_parts, split_text
from handlers.telegram_webhook import secret_ok, webhook_path
from knowledge.models import OutboxItem, TicketPost
from tests.fakes.bot_api import (
    BOT_ID,
    BOT_USERNAME,
    FakeBotAPI,
    media_update,
    mention_update,
    text_update,
    user,
)

CHAT = 4242
STAFF_CHAT = -1009


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotAPI]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    """A real PTB Bot on the fake API, with a short read timeout (for the timeout test)."""
    b = Bot(fake.token, base_url=fake.base_url, request=HTTPXRequest(read_timeout=0.3))
    async with b:
        yield b


# -- rendering ------------------------------------------------------------------------------------------
def test_everything_is_escaped_and_the_source_is_italic() -> None:
    reply = Reply("用户问 <script>alert(1)</script> & 1<2", source_line="来源：《条例》<第5条>")
    (text,) = render_parts(reply)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 1&lt;2" in text
    assert text.endswith("<i>来源：《条例》&lt;第5条&gt;</i>")
    assert "<script>" not in text


def test_split_prefers_paragraphs_then_lines_then_characters() -> None:
    paragraphs = [f"第{i}段" + "政" * 900 for i in range(6)]
    parts = split_text("\n\n".join(paragraphs), 4000)
    assert all(len(p) <= 4000 for p in parts) and len(parts) == 2
    assert parts[0].startswith("第0段") and parts[1].startswith("第4段")  # whole paragraphs kept
    lines = split_text("\n".join("行" * 300 for _ in range(30)), 1000)
    assert all(len(p) <= 1000 for p in lines) and all(
        len(line) == 300 for p in lines for line in p.split("\n")
    )
    assert "".join(split_text("字" * 9000, 4000)) == "字" * 9000


def test_split_counts_escaping_and_utf16() -> None:
    parts = render_parts(Reply("<" * 5000))  # each becomes &lt; (4 characters)
    assert len(parts) == 5 and all(len(p) <= 4000 for p in parts)
    emoji = render_parts(Reply("😀" * 3000))  # 2 UTF-16 units each
    assert all(len(p.encode("utf-16-le")) // 2 <= 4000 for p in emoji) and len(emoji) == 2


def test_keyboard_uses_actions_as_callback_data_and_drops_overlong_ones() -> None:
    markup = keyboard(
        [[Button("有用", "feedback:up:1"), Button("长", "x" * 65)], [Button("都不是", "escalate:9")]]
    )
    assert markup is not None
    assert [[b.callback_data for b in row] for row in markup.inline_keyboard] == [
        ["feedback:up:1"],
        ["escalate:9"],
    ]
    assert keyboard([]) is None


# -- sending ---------------------------------------------------------------------------------------------
async def test_send_renders_html_with_buttons_on_the_last_part(bot: Bot, fake: FakeBotAPI) -> None:
    channel = TelegramChannel(bot)
    long_text = "\n\n".join(f"第{i}条：" + "依法办理。" * 200 for i in range(6))
    reply = Reply(long_text, source_line="来源：测试", buttons=[[Button("有用", "feedback:up:7")]])
    message_id = await channel.send(str(CHAT), reply, reply_to=None)
    calls = fake.of("sendMessage", CHAT)
    assert len(calls) >= 2 and message_id == str(calls[-1].result["message_id"])
    assert all(c.params["parse_mode"] == "HTML" for c in calls)
    assert [bool(c.params.get("reply_markup")) for c in calls] == [False] * (len(calls) - 1) + [True]
    assert calls[-1].result["text"].endswith("来源：测试")
    assert "".join(c.result["text"] for c in calls).count("依法办理。") == 1200


async def test_send_as_reply(bot: Bot, fake: FakeBotAPI) -> None:
    channel = TelegramChannel(bot)
    first = await channel.send(str(STAFF_CHAT), Reply("帖子"))
    assert first is not None
    await channel.send(str(STAFF_CHAT), Reply("跟帖"), reply_to=first)
    last = fake.sent(STAFF_CHAT)[-1]
    assert last["reply_to_message"]["message_id"] == int(first)
    assert fake.of("sendMessage")[-1].params["reply_parameters"]["allow_sending_without_reply"] is True


@pytest.mark.parametrize(
    ("failure", "permanent", "retry_after"),
    [
        ({"status": 500}, False, None),
        ({"status": 502, "description": "Bad Gateway"}, False, None),
        ({"status": 429, "retry_after": 7}, False, 7.0),
        ({"status": 403, "description": "Forbidden: bot was blocked by the user"}, True, None),
        ({"status": 400, "description": "Bad Request: chat not found"}, True, None),
        ({"status": 400, "description": "Bad Request: something odd"}, False, None),
        ({"delay": 2.0}, False, None),  # longer than the 0.3 s read timeout: TimedOut
    ],
)
async def test_api_errors_become_delivery_errors(
    bot: Bot, fake: FakeBotAPI, failure: dict, permanent: bool, retry_after: float | None
) -> None:
    fake.fail_next("sendMessage", **failure)
    with pytest.raises(DeliveryError) as info:
        await TelegramChannel(bot).send(str(CHAT), Reply("您好"))
    assert info.value.permanent is permanent
    assert info.value.retry_after == retry_after
    assert await TelegramChannel(bot).send(str(CHAT), Reply("您好")) is not None  # next call goes through


async def test_outbox_maps_every_part_of_a_staff_post_to_its_ticket(
    app: App, bot: Bot, fake: FakeBotAPI
) -> None:
    """Through the real outbox: a split staff post is mapped to the ticket part by part."""
    app.registry.add(TelegramChannel(bot, app.tickets))
    msg = IncomingMessage("telegram", str(CHAT), str(CHAT), "测试问题", display_name="访客")
    reply = await app.conversations.escalate(msg, text="测" * 100)
    assert reply.ticket_id is not None
    post = Reply(
        "【新工单】\n" + "\n".join("问" * 1000 for _ in range(5)),
        kind="staff_post",
        ticket_id=reply.ticket_id,
    )
    async with app.services.sessions() as session, session.begin():
        enqueue(
            session,
            ChannelRef("telegram", str(STAFF_CHAT)),
            post,
            kind="staff_post",
            ticket_id=reply.ticket_id,
        )
    await app.outbox.deliver_due()
    parts = fake.sent(STAFF_CHAT)
    assert len(parts) >= 2
    for part in parts:
        assert (
            await app.tickets.by_post("telegram", str(STAFF_CHAT), str(part["message_id"])) == reply.ticket_id
        )
    async with app.services.sessions() as session:
        statuses = set(await session.scalars(select(OutboxItem.status)))
        posts = len(list(await session.scalars(select(TicketPost))))
    assert statuses == {"sent"} and posts == len(parts)


async def test_outbox_keeps_a_reply_after_a_permanent_error(app: App, bot: Bot, fake: FakeBotAPI) -> None:
    app.registry.add(TelegramChannel(bot, app.tickets))
    fake.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    async with app.services.sessions() as session, session.begin():
        enqueue(session, ChannelRef("telegram", str(CHAT)), Reply("答复"))
    assert await app.outbox.deliver_due() == 0
    async with app.services.sessions() as session:
        row = await session.scalar(select(OutboxItem))
    assert row is not None and row.status == "failed" and "blocked" in row.last_error


# -- pure pieces -------------------------------------------------------------------------------------------
def _message(update: dict, bot: Bot) -> Message:
    message = Message.de_json(update["message"], bot)
    assert message is not None
    return message


async def test_group_messages_need_a_mention_or_a_reply(bot: Bot, fake: FakeBotAPI) -> None:
    alice = user(11, "王")
    mention = _message(mention_update(fake, alice, -55, "申请表怎么填"), bot)
    assert addressed_text(mention, BOT_ID, BOT_USERNAME) == "申请表怎么填"
    other = _message(mention_update(fake, alice, -55, "你好", username="someone_else_bot"), bot)
    assert addressed_text(other, BOT_ID, BOT_USERNAME) is None
    plain = _message(text_update(fake, alice, "申请表怎么填", chat_id=-55), bot)
    assert addressed_text(plain, BOT_ID, BOT_USERNAME) is None
    bot_msg = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": -55, "type": "supergroup"},
        "from": fake.bot_user,
        "text": "答",
    }
    reply = _message(text_update(fake, alice, "那材料呢", chat_id=-55, reply_to=bot_msg), bot)
    assert addressed_text(reply, BOT_ID, BOT_USERNAME) == "那材料呢"
    private = _message(text_update(fake, alice, "私聊问题"), bot)
    assert addressed_text(private, BOT_ID, BOT_USERNAME) == "私聊问题"
    assert strip_mention(f"请问 @{BOT_USERNAME.upper()} 多久答复", BOT_USERNAME) == "请问   多久答复"
    assert strip_mention(f"@{BOT_USERNAME}2 你好", BOT_USERNAME) == f"@{BOT_USERNAME}2 你好"


async def test_content_kinds(bot: Bot, fake: FakeBotAPI) -> None:
    alice = user(11)
    for kind in ("photo", "sticker", "voice", "document", "location"):
        assert content_kind(_message(media_update(fake, alice, kind), bot)) == kind


def test_webhook_secret_and_path() -> None:
    assert secret_ok("abc_-1", "abc_-1")
    assert not secret_ok("abc_-2", "abc_-1") and not secret_ok(None, "abc") and not secret_ok("", "")
    assert not secret_ok("密钥", "abc")
    assert webhook_path("https://bot.example.gov.cn/tg/hook") == "/tg/hook"
    assert webhook_path("https://bot.example.gov.cn") == "/"


def test_file_url() -> None:
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"


def test_retry_after_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    assert retry_seconds(RetryAfter(dtm.timedelta(seconds=3))) == 3.0

"""A conversation's turn holds one database connection at a time, never a second while it has one.

With several turns at once, a turn that asked the pool for a second connection while holding its first
could wait for ever: twenty visitors on one PostgreSQL worker (a pool of 5 + 10) each held one and
waited for another, and every request timed out after the pool's 30 s (bench/load.py, 2026-12-04).
Here the pool has one connection and a short timeout: a turn that nests a second fails at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import App
from bot.config import Settings
from bot.messages import IncomingMessage
from knowledge.segment import Lexicon

TOKEN = "connections-visitor-0001"


def web(text: str = "") -> IncomingMessage:
    return IncomingMessage("web", TOKEN, TOKEN, text, display_name="网页访客")


async def prepared(settings: Settings, lexicon: Lexicon) -> None:
    """Migrate the database and load the default knowledge first: on an empty database a start holds
    the migration lock on one connection while migrating on another (the config asks for 2 at least)."""
    app = await App.create(settings, lexicon=lexicon)
    try:
        await app.services.load_default_if_empty()
    finally:
        await app.close()


@pytest.fixture
async def one_connection(settings: Settings, lexicon: Lexicon) -> AsyncIterator[App]:
    """The core on a pool of one connection that waits 3 s at most (the outbox worker not started);
    below the config's floor of 2, set here directly: the database is ready, so a start needs one."""
    await prepared(settings, lexicon)
    narrow = settings.replace("database", pool_size=1, max_overflow=0, pool_timeout=3.0, index_poll_seconds=0)
    core = await App.create(narrow, lexicon=lexicon, outbox_poll=0.05)
    try:
        yield core
    finally:
        await core.close()


async def test_each_kind_of_turn_needs_one_connection_at_a_time(one_connection: App) -> None:
    app = one_connection
    (hello,) = await app.conversations.handle(web("你好"))  # small talk, the hot questions under it
    assert hello.buttons
    (answer,) = await app.conversations.handle(web("申请政府信息公开多久答复"))  # with its 相关问题
    assert answer.kind == "answer"
    related = [b.action for row in answer.buttons for b in row if b.action.startswith("rel:")]
    assert related
    (shown,) = await app.conversations.act(web(), related[0])  # a related answer, with its own
    assert shown.kind == "answer"
    (offered,) = await app.conversations.handle(web("备案"))  # candidates
    picks = [b.action for row in offered.buttons for b in row if b.action.startswith("pick:")]
    if picks:
        await app.conversations.act(web(), picks[0])
    (ticket,) = await app.conversations.handle(web("/human 我想问问别的"))  # a ticket
    assert ticket.kind == "escalated"
    replies = await app.conversations.handle(web("申请政府信息公开要钱吗"))  # answered, the ticket open
    assert replies[0].kind == "answer"
    await app.conversations.handle(web("/status"))


async def test_twenty_simultaneous_visitors_share_a_small_pool(settings: Settings, lexicon: Lexicon) -> None:
    """Twenty first questions at once on a pool of 2 + 1: each turn waits its turn, none times out."""
    await prepared(settings, lexicon)
    narrow = settings.replace(
        "database", pool_size=2, max_overflow=1, pool_timeout=20.0, index_poll_seconds=0
    )
    app = await App.create(narrow, lexicon=lexicon, outbox_poll=0.05)
    try:

        async def visitor(i: int) -> str:
            token = f"connections-crowd-{i:04d}"
            msg = IncomingMessage("web", token, token, "申请政府信息公开多久答复", display_name="访客")
            (reply,) = await app.conversations.handle(msg)
            return reply.kind

        kinds = await asyncio.gather(*(visitor(i) for i in range(20)))
        assert kinds == ["answer"] * 20
    finally:
        await app.close()

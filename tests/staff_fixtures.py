"""What the staff console's tests share: a cheap password hasher, a recording channel, the console
served on a test server, logging in through the form, and handing a question over to staff."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from bot.app import App
from bot.messages import IncomingMessage, Reply
from handlers.web import build_web_app

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NAME, PASSWORD = "li.ming", "s3cret-passw0rd"


class RecordingChannel:
    """A channel that records what the outbox sends (stands in for Telegram or the web)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[str, Reply]] = []

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        self.sent.append((chat_ref, reply))
        return str(len(self.sent))


@asynccontextmanager
async def console(app: App) -> AsyncIterator[TestClient]:
    """A client of ``app``'s web app (chat and console) on a test server, closed on leaving."""
    c = TestClient(TestServer(build_web_app(app)))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def login_token(client: TestClient) -> str:
    """The login form's double-submit token (a new one, with its cookie, for every form shown)."""
    page = await (await client.get("/console/login")).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def login(client: TestClient, name: str = NAME, password: str = PASSWORD) -> str:
    """Log in through the form (a fresh cookie jar); return the session's CSRF token."""
    client.session.cookie_jar.clear()
    resp = await client.post(
        "/console/login",
        data={"csrf": await login_token(client), "name": name, "password": password},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return (await (await client.get("/console/api/me")).json())["csrf_token"]


async def hand_over(app: App, text: str, chat: str = "visitor-token-0001") -> int:
    """A web visitor asks for a person about ``text`` (a ticket whatever the bot could answer); return
    the ticket number."""
    reply = await app.conversations.escalate(IncomingMessage("web", chat, chat, ""), text=text)
    assert reply.ticket_id is not None
    return reply.ticket_id

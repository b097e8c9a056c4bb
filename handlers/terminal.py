"""``policybot chat``: a terminal conversation with the bot (stdin/stdout), to try it by hand."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from bot.app import App
from bot.config import Settings
from bot.messages import ChannelRef, IncomingMessage, Reply
from bot.render import reply_text

PROMPT = "您> "
HELP = "输入问题后回车；输入数字选择候选；/human 转人工，/status 查看工单，/quit 退出。"


class TerminalChannel:
    """Prints replies that arrive later (a staff answer, a push) to the terminal; a push is recorded
    in the conversation, as on WeChat, so that its numbered 阅读全文 can be chosen."""

    name = "terminal"

    def __init__(self, record: Callable[[ChannelRef, Reply], Awaitable[object]] | None = None) -> None:
        self.record = record  # ``Conversations.record_reply``

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        print(f"\n{render(reply)}\n{PROMPT}", end="", flush=True)
        if reply.kind == "broadcast" and self.record is not None:
            await self.record(ChannelRef(self.name, chat_ref), reply)
        return None


def render(reply: Reply) -> str:
    """A reply as terminal text, as WeChat shows it (``bot.render.reply_text``: numbered choices, the
    subscription categories with the words to send)."""
    return reply_text(reply, numbered="  [{i}] {label}")


async def run_terminal_chat(settings: Settings) -> int:
    """Load the default knowledge base into an empty database, then talk until EOF or /quit."""
    settings = settings.replace("web", enabled=False)
    app = await App.create(settings)
    try:
        if await app.services.load_default_if_empty():
            await app.services.kb.load_index()
        app.registry.add(TerminalChannel(app.conversations.record_reply))
        app.outbox.start()
        user = getpass.getuser()
        print(f"policybot 政策咨询（{await app.services.kb.count()} 条知识）。{HELP}")
        # The welcome with the hot questions, numbered: typing a number shows that answer.
        print(
            render(
                await app.conversations.welcome(IncomingMessage("terminal", "local", user, display_name=user))
            )
        )
        loop = asyncio.get_running_loop()
        while True:
            print(PROMPT, end="", flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                print()
                return 0
            text = line.strip()
            if text in ("/quit", "/exit"):
                return 0
            msg = IncomingMessage("terminal", "local", user, text, display_name=user)
            chosen = await app.conversations.choose(msg, int(text)) if text.isdigit() else None
            # questions and /commands
            replies = chosen if chosen is not None else await app.conversations.handle(msg)
            for reply in replies:
                print(render(reply))
    finally:
        await app.close()

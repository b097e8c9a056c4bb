"""The Telegram user handlers: turn user updates into core calls, and the core's replies into deliveries.

The handlers are thin: every answer comes from the core (``app.conversations``: ``handle``, ``command``,
``act``); replies reach the user through the outbox, so a failed send is retried, not lost. In groups the
bot answers only when mentioned (``@username``) or replied to. Users who flood get one polite notice, then
silence until they may send again. Logs carry pseudonyms, never ids or texts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import App
from bot.limits import RateLimiter
from bot.logs import pseudonym
from bot.messages import IncomingMessage, Reply
from bot.protocol import COMMAND_NAMES, ActionError, parse_action
from bot.subscriptions import Refusal
from handlers.telegram_input import addressed_text, content_kind, incoming

log = logging.getLogger("policybot.telegram")

FLOOD_NOTICE = "您发送得太快了，请稍等 {seconds} 秒再继续。之前的问题我会依次答复。"
STALE_BUTTON = "这个按钮已失效，请重新提问。"
TOASTS = {"escalate": "已转人工"}  # the popup a button press shows besides its replies

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class UserHandlers:
    """Questions, commands and buttons of users (private chats and groups; never the staff chat)."""

    def __init__(self, app: App) -> None:
        self.core = app.conversations
        tg = app.settings.telegram
        # Shared by the workers on PostgreSQL (``bot.limits``): two workers allow one user's rate once.
        self.flood = RateLimiter("flood", tg.rate_limit_messages, tg.rate_limit_seconds, app.limits)
        self.staff_chat = app.settings.staff.chat_id

    def register(self, application: Application) -> None:
        """Add the handlers (after the staff handlers)."""
        users = ~filters.Chat(chat_id=self.staff_chat) if self.staff_chat is not None else filters.ALL
        for name in COMMAND_NAMES:
            application.add_handler(CommandHandler(name, self._command(name), filters=users))
        application.add_handler(MessageHandler(users & filters.COMMAND, self.unknown_command))
        application.add_handler(MessageHandler(users & filters.TEXT & ~filters.COMMAND, self.on_text))
        other = users & filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL
        application.add_handler(MessageHandler(other, self.on_media))
        application.add_handler(CallbackQueryHandler(self.on_button))

    # -- messages ---------------------------------------------------------------------------------------
    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A question: the core answers, suggests or escalates; the outbox delivers."""
        message = update.effective_message
        if message is None:
            return
        text = addressed_text(message, context.bot.id, context.bot.username)
        msg = incoming(update, text or "")
        if text is None or msg is None or not await self._admit(update, msg):
            return
        await self.core.handle(msg, via_outbox=True)
        log.info("question", extra={"user": pseudonym(msg.user_ref), "update_id": msg.update_id})

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, sticker, voice, file, location...: the core says it reads text and tells staff."""
        message = update.effective_message
        if message is None:
            return
        text = addressed_text(message, context.bot.id, context.bot.username)
        msg = incoming(update, text or "", content_kind(message))
        if text is None or msg is None or not await self._admit(update, msg):
            return
        await self.core.handle(msg, via_outbox=True)

    # -- commands ---------------------------------------------------------------------------------------
    def _command(self, name: str) -> Callback:
        """The handler of ``/name [args]``: the core answers; the outbox delivers."""

        async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            msg = incoming(update)
            if msg is not None and await self._admit(update, msg):
                await self.core.command(msg, name, " ".join(context.args or []), via_outbox=True)

        return on_command

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other /command (in a group only when it names this bot): the core's help text."""
        message = update.effective_message
        if message is None or message.text is None:
            return
        command = message.text.split()[0]
        if message.chat.type != ChatType.PRIVATE and "@" not in command:
            return
        msg = incoming(update)
        if msg is not None and await self._admit(update, msg):
            await self.core.command(msg, command.lstrip("/"), via_outbox=True)

    # -- buttons ----------------------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button under a bot message; the callback query is always answered. Acknowledgements (``ack``)
        show as the query's popup; the other replies are sent as messages."""
        query = update.callback_query
        if query is None:
            return
        toast = ""
        try:
            msg = incoming(update)
            if msg is None:
                return
            verdict = await self.flood.check(str(query.from_user.id))
            if not verdict.allowed:
                toast = FLOOD_NOTICE.format(seconds=_seconds(verdict.wait))
                return
            action = parse_action(query.data or "")
            replies = await self.core.act(msg, action)
            if not replies:
                return  # seen before
            toast = "".join(r.text for r in replies if r.kind == "ack") or TOASTS.get(action.kind, "")
            await self.core.send(msg.ref, [r for r in replies if r.kind != "ack"])
            if action.kind == "feedback":
                await _drop_feedback_buttons(query)
        except ActionError:
            toast = STALE_BUTTON
        except Refusal as exc:  # a subscription action refused (someone else's 退订...): nothing changed
            toast = exc.message
        finally:
            await _answer(query, toast)

    async def _admit(self, update: Update, msg: IncomingMessage) -> bool:
        """Apply the per-user flood limit; the first message over it gets a polite notice."""
        user = update.effective_user
        if user is None:
            return False
        verdict = await self.flood.check(str(user.id))
        if verdict.first_refusal:  # told once; further messages while refused are dropped silently
            log.info("flood limit", extra={"user": pseudonym(user.id)})
            notice = Reply(FLOOD_NOTICE.format(seconds=_seconds(verdict.wait)), kind="info")
            await self.core.send(msg.ref, [notice])
        return verdict.allowed


def _seconds(wait: float) -> int:
    """Whole seconds to tell the user (at least 1)."""
    return max(1, math.ceil(wait))


async def _answer(query: CallbackQuery, text: str) -> None:
    """Answer a callback query (stops the button's spinner); failures are only logged."""
    try:
        await query.answer(text[:200] or None)
    except TelegramError as exc:
        log.info("answerCallbackQuery failed", extra={"error": str(exc)})


async def _drop_feedback_buttons(query: CallbackQuery) -> None:
    """Remove the feedback buttons once used, keeping the others (订阅此类政策更新, 关注此条); best effort."""
    markup = getattr(query.message, "reply_markup", None)  # an inaccessible message has none
    if markup is None:
        return
    rows = [[b for b in row if not _is_feedback(b.callback_data)] for row in markup.inline_keyboard]
    kept = tuple(tuple(row) for row in rows if row)
    try:
        await query.edit_message_reply_markup(reply_markup=InlineKeyboardMarkup(kept) if kept else None)
    except TelegramError as exc:
        log.info("could not remove the buttons", extra={"error": str(exc)})


def _is_feedback(data: object) -> bool:
    try:
        return isinstance(data, str) and parse_action(data).kind == "feedback"
    except ActionError:
        return False

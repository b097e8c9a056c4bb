"""The Telegram channel: build the PTB Application from the settings, and turn user updates into core calls.

``start_telegram(app)`` (called by ``policybot run`` when a token is set) builds the Application, registers
the staff handlers (``telegram_staff``) before the user handlers here, registers the ``TelegramChannel``
with the outbox, and starts long polling or the webhook. The handlers are thin: every answer comes from
``app.conversations``; replies reach the user through the outbox, so a failed send is retried, not lost.
In groups the bot answers only when mentioned (``@username``) or replied to. Users who flood get one polite
notice per window. Logs carry pseudonyms, never ids or texts.
"""

from __future__ import annotations

import datetime as dtm
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import BotCommand, CallbackQuery, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import App
from bot.config import TelegramSettings
from bot.logs import pseudonym
from bot.messages import Button, IncomingMessage, Reply
from bot.outbox import enqueue
from handlers.telegram_channel import CHANNEL, TelegramChannel
from handlers.telegram_staff import StaffHandlers
from handlers.telegram_webhook import WebhookSite, webhook_route

log = logging.getLogger("policybot.telegram")

POLL_TIMEOUT = dtm.timedelta(seconds=30)
ALLOWED_UPDATES = ["message", "callback_query"]
CATEGORY_LIMIT = 8
CONTENT_KINDS = ("photo", "sticker", "voice", "audio", "video", "video_note", "animation", "document",
                 "location", "contact", "poll", "dice")  # fmt: skip
GREETING = (
    "您好！我是鼓楼区商务局的政策咨询机器人。\n"
    "我可以回答这些方面的问题（共 {count} 条）：{names}。\n\n"
    "请直接用一句话描述您的问题，例如：“申请政府信息公开多久答复？”\n"
    "我答不上来的问题会转给工作人员。点下面的分类可以看看常见问题。"
)
HELP = (
    "使用方法：直接发送您的问题（文字）。\n"
    "/human 转人工（可跟上问题，例如 /human 我想咨询……）\n"
    "/status 查看您的问题处理进度\n"
    "/cancel 撤回正在等待的人工问题\n"
    "/start 查看我能回答哪些方面的问题\n"
    "在群里提问时，请 @我 或回复我的消息。"
)
FLOOD_NOTICE = "您发送得太快了，请稍等 {seconds} 秒再继续。之前的问题我会依次答复。"
STALE_BUTTON = "这个按钮已失效，请重新提问。"
UNKNOWN_COMMAND = "没有这个命令。" + HELP
COMMANDS = [("start", "我能回答哪些问题"), ("help", "使用帮助"), ("human", "转人工"),
            ("status", "查看处理进度"), ("cancel", "撤回人工问题")]  # fmt: skip

Action = Callable[[IncomingMessage, str], Awaitable[tuple[list[Reply], str]]]


# -- start and stop ---------------------------------------------------------------------------------------
@dataclass
class TelegramRuntime:
    """What ``launch_telegram`` started, and how to stop it."""

    application: Application
    channel: TelegramChannel
    users: UserHandlers
    staff: StaffHandlers | None
    webhook: WebhookSite | None = None
    app: App | None = None

    async def stop(self) -> None:
        """Stop receiving updates, the job queue and the bot, and leave the outbox registry."""
        if self.app is not None:
            self.app.registry.remove(CHANNEL)
        if self.webhook is not None:
            await self.webhook.stop()
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()


async def start_telegram(app: App) -> None:
    """Start the Telegram channel of ``policybot run``; ``app.stoppers`` gets its stop callable."""
    await launch_telegram(app)


async def launch_telegram(app: App) -> TelegramRuntime:
    """Build, wire and start the Telegram channel; return the running pieces (tests use them)."""
    settings = app.settings
    application = build_application(settings.telegram)
    channel = TelegramChannel(application.bot, app.tickets)
    users = UserHandlers(app, channel)
    staff = StaffHandlers(app, channel) if settings.staff.chat_id is not None else None
    if staff is not None:
        staff.register(application)  # first: the staff chat never reaches the user handlers
    else:
        log.warning("no [staff] chat_id: escalated questions are not posted to Telegram")
    users.register(application)
    application.add_error_handler(on_error)
    runtime = TelegramRuntime(application, channel, users, staff)
    await application.initialize()
    try:
        await application.start()
        await _set_commands(application)
        if staff is not None and application.job_queue is not None:
            staff.schedule(application.job_queue)
        if settings.telegram.mode == "webhook":
            runtime.webhook = await _start_webhook(app, application)
        else:
            assert application.updater is not None
            await application.updater.start_polling(timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
    except BaseException:
        await runtime.stop()
        raise
    runtime.app = app
    app.registry.add(channel)
    app.stoppers.append(runtime.stop)
    log.info("telegram started", extra={"mode": settings.telegram.mode, "bot": application.bot.username})
    return runtime


def build_application(tg: TelegramSettings) -> Application:
    """The PTB Application: token, API base URLs, flood-safe rate limiter; no Updater in webhook mode."""
    builder = (
        ApplicationBuilder()
        .token(tg.token)
        .base_url(tg.base_url)
        .base_file_url(file_url(tg.base_url))
        .rate_limiter(AIORateLimiter(max_retries=0))  # a 429 goes back to the outbox with its retry_after
    )
    if tg.mode == "webhook":
        builder = builder.updater(None)
    return builder.build()


def file_url(base_url: str) -> str:
    """The file download base derived from the API base (``…/bot`` -> ``…/file/bot``)."""
    head, _, last = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{last}"


async def _start_webhook(app: App, application: Application) -> WebhookSite | None:
    """Register the webhook with Telegram and serve it (through the web server, or a site of its own)."""
    tg = app.settings.telegram
    route = webhook_route(application, tg.webhook_url, tg.webhook_secret)
    site = None
    if app.settings.web.enabled:
        app.extra_routes.append(route)
    else:
        site = WebhookSite(route, tg.listen, tg.port)
        await site.start()
    await application.bot.set_webhook(
        url=tg.webhook_url, secret_token=tg.webhook_secret, allowed_updates=ALLOWED_UPDATES
    )
    return site


async def _set_commands(application: Application) -> None:
    """Show the user commands in Telegram's menu (best effort)."""
    try:
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except TelegramError as exc:
        log.warning("could not set the command menu", extra={"error": str(exc)})


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log a handler failure without personal data (the update id only)."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("telegram update failed", exc_info=context.error, extra={"update_id": update_id})


# -- flooding -----------------------------------------------------------------------------------------
class FloodGuard:
    """At most ``limit`` messages per user per ``window`` seconds; one notice per window, then silence."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, limit)
        self.window = max(0.001, float(window))
        self.clock = clock
        self._hits: dict[int, deque[float]] = {}
        self._noticed: set[int] = set()

    def check(self, user_id: int) -> str:
        """``"ok"`` (counted), ``"notice"`` (over the limit: tell the user once) or ``"drop"``."""
        now = self.clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            self._noticed.discard(user_id)
            self._prune(now)
            return "ok"
        if user_id in self._noticed:
            return "drop"
        self._noticed.add(user_id)
        return "notice"

    def wait_seconds(self, user_id: int) -> int:
        """Seconds until ``user_id`` may send again."""
        hits = self._hits.get(user_id)
        if not hits:
            return 0
        return max(1, int(hits[0] + self.window - self.clock() + 0.999))

    def _prune(self, now: float) -> None:
        if len(self._hits) > 10_000:
            for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
                self._hits.pop(key, None)
                self._noticed.discard(key)


# -- turning updates into IncomingMessages ----------------------------------------------------------------
def incoming(update: Update, text: str = "", content_type: str = "text") -> IncomingMessage | None:
    """The neutral message for an update from a user (None for updates without a user or chat)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot:
        return None
    chat_id = chat.id if chat is not None else user.id
    return IncomingMessage(
        channel=CHANNEL,
        chat_ref=str(chat_id),
        user_ref=str(user.id),
        text=text,
        display_name=user.full_name,
        update_id=str(update.update_id),
        content_type=content_type,
    )


def addressed_text(message: Message, bot_id: int, username: str | None) -> str | None:
    """The text meant for the bot: all of it in a private chat; in a group only when the bot is
    mentioned (the mention removed) or replied to; None when the message is not for the bot."""
    text = message.text or message.caption or ""
    if message.chat.type == ChatType.PRIVATE:
        return text
    replied = message.reply_to_message is not None and (
        message.reply_to_message.from_user is not None and message.reply_to_message.from_user.id == bot_id
    )
    if not (replied or (username and mentions(message, username))):
        return None
    return strip_mention(text, username) if username else text


def mentions(message: Message, username: str) -> bool:
    """True when a ``mention`` entity in the text or caption names the bot."""
    wanted = f"@{username}".lower()
    found = {**message.parse_entities([MessageEntity.MENTION]),
             **message.parse_caption_entities([MessageEntity.MENTION])}  # fmt: skip
    return any(value.lower() == wanted for value in found.values())


def strip_mention(text: str, username: str) -> str:
    """Remove ``@username`` from the text."""
    return re.sub(rf"@{re.escape(username)}(?![A-Za-z0-9_])", " ", text, flags=re.IGNORECASE).strip()


def content_kind(message: Message) -> str:
    """What a non-text message carries (``photo``, ``sticker``, ``voice``, ...)."""
    for kind in CONTENT_KINDS:
        if getattr(message, kind, None):
            return kind
    return "other"


# -- the user handlers ------------------------------------------------------------------------------------
class UserHandlers:
    """Questions, commands and buttons of users (private chats and groups; never the staff chat)."""

    def __init__(self, app: App, channel: TelegramChannel) -> None:
        self.app = app
        self.conv = app.conversations
        self.channel = channel
        tg = app.settings.telegram
        self.flood = FloodGuard(tg.rate_limit_messages, tg.rate_limit_seconds)
        self.staff_chat = app.settings.staff.chat_id
        self.actions: dict[str, Action] = {
            "feedback": self._feedback,
            "pick": self._pick,
            "escalate": self._escalate,
            "cancel": self._cancel,
            "cat": self._category,
            "entry": self._entry,
        }

    def register(self, application: Application) -> None:
        """Add the handlers (after the staff handlers)."""
        users = ~filters.Chat(chat_id=self.staff_chat) if self.staff_chat is not None else filters.ALL
        commands = {"start": self.start, "help": self.help, "human": self.human,
                    "status": self.status, "cancel": self.cancel}  # fmt: skip
        for name, callback in commands.items():
            application.add_handler(CommandHandler(name, callback, filters=users))
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
        await self.conv.handle(msg, via_outbox=True)
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
        await self.conv.handle(msg, via_outbox=True)

    # -- commands ---------------------------------------------------------------------------------------
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: greet, and show the knowledge categories as buttons."""
        msg = await self._command(update)
        if msg is not None:
            await self.deliver(msg, [await self.greeting()])

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: how to use the bot."""
        msg = await self._command(update)
        if msg is not None:
            await self.deliver(msg, [Reply(HELP)])

    async def human(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/human [question]: hand the question (or the last one) to staff now."""
        msg = await self._command(update)
        if msg is not None:
            text = " ".join(context.args or [])[:2000]
            await self.deliver(msg, [await self.conv.escalate(msg, text=text)])

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/status: the user's questions with staff."""
        msg = await self._command(update)
        if msg is not None:
            await self.deliver(msg, [await self.conv.status(msg)])

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel [ticket]: withdraw the open question."""
        msg = await self._command(update)
        if msg is not None:
            args = context.args or []
            ticket_id = int(args[0].lstrip("#")) if args and args[0].lstrip("#").isdigit() else None
            await self.deliver(msg, [await self.conv.cancel(msg, ticket_id)])

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other /command (in a group only when it names this bot)."""
        message = update.effective_message
        if message is None or message.text is None:
            return
        command = message.text.split()[0]
        if message.chat.type != ChatType.PRIVATE and "@" not in command:
            return
        msg = await self._command(update)
        if msg is not None:
            await self.deliver(msg, [Reply(UNKNOWN_COMMAND)])

    async def _command(self, update: Update) -> IncomingMessage | None:
        """The message of a command, or None when flooded or already handled."""
        msg = incoming(update)
        if msg is None or not await self._admit(update, msg):
            return None
        return msg if await self.conv.first_time(msg) else None

    # -- buttons ----------------------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button under a bot message; the callback query is always answered."""
        query = update.callback_query
        if query is None:
            return
        toast = ""
        try:
            msg = incoming(update)
            if msg is None or not await self.conv.first_time(msg):
                return
            if self.flood.check(query.from_user.id) != "ok":
                toast = FLOOD_NOTICE.format(seconds=self.flood.wait_seconds(query.from_user.id))
                return
            kind, _, rest = (query.data or "").partition(":")
            action = self.actions.get(kind)
            replies, toast = await action(msg, rest) if action else ([], STALE_BUTTON)
            await self.deliver(msg, replies)
            if kind == "feedback" and replies is not None:
                await _drop_keyboard(query)
        except ValueError:
            toast = STALE_BUTTON
        finally:
            await _answer(query, toast)

    async def _feedback(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        verdict, _, message_id = rest.partition(":")
        reply = await self.conv.feedback(msg, int(message_id), verdict == "up")
        if verdict == "up" and reply.kind != "error":
            return [], reply.text  # thanks as a toast, not a message
        return [reply], ""

    async def _pick(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        question_id, _, index = rest.partition(":")
        return [await self.conv.pick(msg, int(question_id), int(index))], ""

    async def _escalate(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        return [await self.conv.escalate(msg, question_id=int(rest))], "已转人工"

    async def _cancel(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        return [await self.conv.cancel(msg, int(rest))], ""

    async def _category(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        return [await self.category(rest)], ""

    async def _entry(self, msg: IncomingMessage, rest: str) -> tuple[list[Reply], str]:
        return [await self.conv.show(msg, rest)], ""

    # -- content ----------------------------------------------------------------------------------------
    async def greeting(self) -> Reply:
        """The /start text with one button per knowledge category."""
        cats = await self.app.services.kb.categories()
        names = "、".join(name for name, _ in cats) or "（知识库暂时为空）"
        buttons = [Button(f"{name}（{n}）", f"cat:{name}") for name, n in cats]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        return Reply(GREETING.format(count=sum(n for _, n in cats), names=names), buttons=rows)

    async def category(self, name: str) -> Reply:
        """A few entries of one category as buttons (pressing one shows its answer)."""
        entries = [
            e
            for e in await self.app.services.kb.list(category=name, status="published")
            if e.parent_id is None
        ]
        if not entries:
            return Reply(f"「{name}」下暂时没有内容，请直接输入您的问题。")
        shown = entries[:CATEGORY_LIMIT]
        buttons = [[Button((e.title or e.question)[:40], f"entry:{e.id}")] for e in shown]
        more = f"，这里列出 {len(shown)} 条" if len(entries) > len(shown) else ""
        return Reply(
            f"「{name}」共 {len(entries)} 条{more}。点按查看答案，或直接输入您的问题。", buttons=buttons
        )

    # -- delivery -----------------------------------------------------------------------------------------
    async def deliver(self, msg: IncomingMessage, replies: list[Reply]) -> None:
        """Queue replies in the outbox (so a failed send is retried) and wake the worker."""
        if not replies:
            return
        async with self.app.services.sessions() as session, session.begin():
            for reply in replies:
                enqueue(session, msg.ref, reply, ticket_id=reply.ticket_id)
        self.app.outbox.wake()

    async def _admit(self, update: Update, msg: IncomingMessage) -> bool:
        """Apply the per-user flood limit; the first message over it gets a polite notice."""
        user = update.effective_user
        if user is None:
            return False
        verdict = self.flood.check(user.id)
        if verdict == "notice":
            log.info("flood limit", extra={"user": pseudonym(user.id)})
            notice = Reply(FLOOD_NOTICE.format(seconds=self.flood.wait_seconds(user.id)), kind="info")
            await self.deliver(msg, [notice])
        return verdict == "ok"


async def _answer(query: CallbackQuery, text: str) -> None:
    """Answer a callback query (stops the button's spinner); failures are only logged."""
    try:
        await query.answer(text[:200] or None)
    except TelegramError as exc:
        log.info("answerCallbackQuery failed", extra={"error": str(exc)})


async def _drop_keyboard(query: CallbackQuery) -> None:
    """Remove the feedback buttons once used (best effort)."""
    if query.message is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as exc:
        log.info("could not remove the buttons", extra={"error": str(exc)})

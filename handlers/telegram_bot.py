"""The Telegram channel's startup: build the PTB Application from the settings, wire it, start it.

``start_telegram(app)`` (called by ``policybot run`` when a token is set) builds the Application, registers
the staff handlers (``telegram_staff``) before the user handlers (``telegram_user``), registers the
``TelegramChannel`` with the outbox, and starts long polling or the webhook (``telegram_webhook``).
"""

from __future__ import annotations

import datetime as dtm
import logging
from dataclasses import dataclass

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes

from bot.app import App
from bot.config import TelegramSettings
from handlers.telegram_channel import CHANNEL, TelegramChannel
from handlers.telegram_staff import StaffHandlers
from handlers.telegram_user import UserHandlers
from handlers.telegram_webhook import WebhookSite, mark_failed, webhook_route

log = logging.getLogger("policybot.telegram")

POLL_TIMEOUT = dtm.timedelta(seconds=30)
ALLOWED_UPDATES = ["message", "callback_query"]
COMMANDS = [("start", "我能回答哪些问题"), ("help", "使用帮助"), ("human", "转人工"),
            ("status", "查看处理进度"), ("cancel", "撤回人工问题"), ("subscribe", "订阅政策更新"),
            ("subscriptions", "我的订阅"), ("unsubscribe", "退订"), ("comment", "对工作人员答复补充意见")]  # fmt: skip


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
    users = UserHandlers(app)
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
    """Log a handler failure without personal data (the update id only); in webhook mode the update is
    then answered 500, so Telegram delivers it again."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("telegram update failed", exc_info=context.error, extra={"update_id": update_id})
    if update_id is not None:
        mark_failed(context.application, update_id)

"""``policybot run``: build the core, start every configured channel, and serve until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot.app import App
from bot.config import Settings
from handlers.telegram_bot import start_telegram
from handlers.web import start_web
from handlers.wechat import start_wechat
from handlers.wecom import start_wecom
from knowledge.collector import settle

log = logging.getLogger("policybot.run")


async def run_forever(settings: Settings) -> int:
    """Web chat and console always; Telegram, WeChat and WeCom alerts when configured; until a signal."""
    app = await App.create(settings)
    try:
        if await app.services.load_default_if_empty():
            log.info("loaded the default knowledge base", extra={"entries": await app.services.kb.count()})
        await app.services.kb.load_index()
        # What start built lives as long as the process: out of the collector's sight from now on
        # (before the channels listen: the one collection this takes stalls no request).
        settle()
        app.services.kb.settle_after_build = True
        await start_channels(app)
        app.outbox.start()
        if settings.subscriptions.enabled:
            app.push.start()  # notices knowledge changes and pushes them to subscribers
        app.retention.start()  # purges what is past [privacy] retention_days, now and daily
        await _wait_for_signal()
    finally:
        await app.close()
    return 0


async def start_channels(app: App) -> None:
    """Start the configured channels; print where they listen."""
    settings = app.settings
    # Telegram first: in webhook mode it adds its route to app.extra_routes for the web server.
    if settings.telegram.token:
        await start_telegram(app)
        print(f"policybot: Telegram channel running ({settings.telegram.mode})", flush=True)
    if settings.wecom.webhook_url:
        await start_wecom(app)
        print("policybot: WeCom staff alerts on", flush=True)
    if settings.wechat.token:  # served by the web server, at [wechat] path
        await start_wechat(app)
    if settings.web.enabled:
        url = await start_web(app)
        print(f"policybot: web chat at {url}  (staff console: {url}console)", flush=True)
        if settings.wechat.token:
            print(f"policybot: WeChat at {url.rstrip('/')}{settings.wechat.path}", flush=True)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()

"""The Telegram webhook as an aiohttp route: check the secret, process the update, then answer.

Telegram POSTs each update as JSON with the header ``X-Telegram-Bot-Api-Secret-Token`` set to the secret
given to ``setWebhook``. A missing or wrong secret gets 403 and changes nothing; a body that is not a JSON
object gets 400. A good update is processed by the PTB Application before the answer: 200 means the
question is stored and its reply queued in the outbox (Telegram never delivers an update again once it
got 200). A worker killed in the middle answers nothing, and an update whose handler failed (the database
unreachable) gets 500: Telegram then delivers it again, to this or another worker, and the core
de-duplicates by update id. Updates are processed concurrently, as web requests are.

The route is served by the web server when ``[web] enabled`` (via ``App.extra_routes``), otherwise by a
small aiohttp site of its own on ``[telegram] listen``:``port``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger("policybot.telegram.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024
FAILED = "policybot_failed_updates"  # bot_data key: ids of updates whose handler raised (``mark_failed``)


def mark_failed(application: Application, update_id: int) -> None:
    """Note that processing ``update_id`` failed (the error handler calls this), so that the webhook
    answers 500 and Telegram delivers the update again."""
    failed = application.bot_data.setdefault(FAILED, set())
    if len(failed) > 10_000:  # only ever read right after processing: old ids are of no use
        failed.clear()
    failed.add(update_id)


def _failed(application: Application, update_id: int) -> bool:
    failed = application.bot_data.get(FAILED)
    if not failed or update_id not in failed:
        return False
    failed.discard(update_id)
    return True


def webhook_path(webhook_url: str) -> str:
    """The local path of the public webhook URL (``https://host/tg/hook`` -> ``/tg/hook``)."""
    return urlsplit(webhook_url).path or "/"


def secret_ok(given: str | None, secret: str) -> bool:
    """Constant-time comparison of the secret header with the configured secret."""
    if not given or not secret:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8"))


def webhook_handler(
    application: Application, secret: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for Telegram's POSTs."""

    async def receive(request: web.Request) -> web.Response:
        if not secret_ok(request.headers.get(SECRET_HEADER), secret):
            log.warning("webhook call with a missing or wrong secret refused")
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="body is not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not a Telegram update")
        try:
            update = Update.de_json(data, application.bot)
        except (KeyError, TypeError, ValueError):
            return web.Response(status=400, text="not a Telegram update")
        await application.process_update(update)
        if _failed(application, update.update_id):
            return web.Response(status=500, text="update not processed; deliver it again")
        return web.Response(status=200)

    return receive


def webhook_route(application: Application, webhook_url: str, secret: str) -> web.RouteDef:
    """The POST route for ``App.extra_routes`` (the web server serves it)."""
    return web.post(webhook_path(webhook_url), webhook_handler(application, secret))


class WebhookSite:
    """A minimal aiohttp server for the webhook when the web chat server is not running."""

    def __init__(self, route: web.RouteDef, host: str, port: int) -> None:
        self.route = route
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; ``port`` is updated when 0 was asked for."""
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes([self.route])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """The local URL of the webhook route."""
        return f"http://{self.host}:{self.port}{self.route.path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

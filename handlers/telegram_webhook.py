"""The Telegram webhook as an aiohttp route: check the secret, queue the update, answer at once.

Telegram POSTs each update as JSON with the header ``X-Telegram-Bot-Api-Secret-Token`` set to the secret
given to ``setWebhook``. A missing or wrong secret gets 403 and changes nothing; a body that is not a JSON
object gets 400; a good update is put on the PTB Application's ``update_queue`` and answered 200 without
waiting for it to be processed (Telegram retries slow or failed deliveries; the core de-duplicates).

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
        await application.update_queue.put(update)
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

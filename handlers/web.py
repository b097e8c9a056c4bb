"""The web server: the residents' chat page and widget, the JSON API, the staff console, the routes
other channels ask for (the Telegram webhook) and /healthz, in one aiohttp application.

``start_web(app)`` is what ``policybot run`` calls; tests build the application with
``build_web_app(app)`` and serve it with aiohttp's TestServer. See docs/web.md.
"""

from __future__ import annotations

import html
import string
from pathlib import Path

from aiohttp import web

from bot.app import App
from bot.config import WebSettings
from bot.limits import LoginLimits, per_minute
from handlers import (
    staff_admin,
    staff_api,
    staff_auth,
    staff_broadcasts,
    staff_canned,
    staff_console,
    staff_gaps,
    staff_hot,
    staff_knowledge,
    staff_live,
    staff_review,
    staff_stats,
    staff_ticket_work,
    staff_tickets,
    web_api,
    web_desk_api,
    web_openapi,
    web_ticket_page,
)
from handlers.web_channel import WebChannel
from handlers.web_security import json_errors, ok, security_headers
from handlers.web_state import ADDRESS_LIMITER, ASK_LIMITER, CORE, LOGIN_LIMITER, WEB_SETTINGS, core

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
CONSOLE_MAX_BODY = 1024 * 1024  # staff edits of long guides; the public API keeps [web] max_body_bytes
ADDRESS_FACTOR = 10  # one address may carry many visitors (an office behind one NAT)
SHUTDOWN_SECONDS = 5.0

routes = web.RouteTableDef()


def template(name: str) -> string.Template:
    """A page template from handlers/templates (``$name`` placeholders)."""
    return string.Template((TEMPLATES / name).read_text(encoding="utf-8"))


def html_response(text: str) -> web.Response:
    """An HTML page."""
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def chat_page(request: web.Request, mode: str) -> web.Response:
    """The chat page: full page (``page``) or the compact widget (``widget``)."""
    app = core(request)
    values = {
        "mode": mode,
        "poll_seconds": str(request.app[WEB_SETTINGS].poll_seconds),
        "max_chars": str(app.settings.matching.max_question_chars),
    }
    return html_response(template("chat.html").substitute({k: html.escape(v) for k, v in values.items()}))


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The residents' chat page."""
    return chat_page(request, "page")


@routes.get("/widget")
async def widget(request: web.Request) -> web.Response:
    """The compact chat for an iframe on another site (the only page other sites may frame)."""
    return chat_page(request, "widget")


def base_url(request: web.Request) -> str:
    """This site's address as visitors see it: ``[web] public_url``, else the request's origin."""
    public = request.app[WEB_SETTINGS].public_url
    return public.rstrip("/") if public else str(request.url.origin())


def embed_snippets(base: str) -> tuple[str, str]:
    """The two ways to embed the chat on another site: a script tag and an iframe."""
    script = f'<script src="{base}/static/widget.js" defer></script>'
    iframe = (
        f'<iframe src="{base}/widget" title="政策咨询" '
        'style="width:380px;max-width:100%;height:600px;border:1px solid #d5dbe3"></iframe>'
    )
    return script, iframe


@routes.get("/embed")
async def embed(request: web.Request) -> web.Response:
    """How to embed the widget, with the snippets for this site and a live preview."""
    script, iframe = embed_snippets(base_url(request))
    page = template("embed.html").substitute(
        script_snippet=html.escape(script), iframe_snippet=html.escape(iframe)
    )
    return html_response(page)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness and a little state: indexed entries and running channels."""
    app = core(request)
    return ok({"status": "ok", "indexed": len(app.services.kb.index), "channels": app.registry.names()})


def build_web_app(app: App, settings: WebSettings | None = None) -> web.Application:
    """The aiohttp application serving everything web for ``app``."""
    ws = settings or app.settings.web
    application = web.Application(
        middlewares=[json_errors, staff_auth.console_guard],
        client_max_size=max(ws.max_body_bytes, CONSOLE_MAX_BODY),
    )
    application[CORE] = app
    application[WEB_SETTINGS] = ws
    application[ASK_LIMITER] = per_minute("ask", ws.rate_limit_per_minute, app.limits)
    application[ADDRESS_LIMITER] = per_minute(
        "address", ws.rate_limit_per_minute * ADDRESS_FACTOR, app.limits
    )
    application[LOGIN_LIMITER] = LoginLimits.over(app.limits)
    application.on_response_prepare.append(security_headers)
    staff_live.setup(application)
    web_ticket_page.setup(application, app)
    for table in (
        routes,
        web_api.routes,
        web_desk_api.routes,
        web_openapi.routes,
        web_ticket_page.routes,
        staff_auth.routes,
        staff_console.routes,
        staff_knowledge.routes,
        staff_ticket_work.routes,
        staff_tickets.routes,
        staff_admin.routes,
        staff_review.routes,
        staff_gaps.routes,
        staff_stats.routes,
        staff_canned.routes,
        staff_hot.routes,
        staff_api.routes,
        staff_broadcasts.routes,
    ):
        application.router.add_routes(table)
    application.router.add_routes(app.extra_routes)
    application.router.add_static("/static/", STATIC)
    return application


def listen_url(ws: WebSettings, runner: web.AppRunner) -> str:
    """The base URL to print: ``public_url`` if set, else the bound address (with the real port)."""
    if ws.public_url:
        return ws.public_url.rstrip("/") + "/"
    port = ws.port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    host = "127.0.0.1" if ws.host in ("", "0.0.0.0") else ws.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


async def start_web(app: App) -> str:
    """Serve the web chat, API, console and extra routes on ``[web] host:port``; return the base URL.

    Registers the ``web`` channel, starts the outbox worker if needed, and adds the stop callable to
    ``app.stoppers``.
    """
    ws = app.settings.web
    runner = web.AppRunner(build_web_app(app), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, ws.host, ws.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    app.registry.add(WebChannel(app.conversations))

    async def stop() -> None:
        app.registry.remove("web")
        await runner.cleanup()

    app.stoppers.append(stop)
    app.outbox.start()
    return listen_url(ws, runner)

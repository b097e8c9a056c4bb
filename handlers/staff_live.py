"""The live console: server-sent events (``GET /console/events``) for the queue and ticket pages.

Each connection looks at the database every ``[staff] live_seconds`` and sends an event when what its
page shows has changed, so a ticket opened by another worker (or another process) appears without a
reload, and the waiting times and overdue marks stay current. Events carry data, not HTML: the page's
script (``/static/console.js``) builds the rows with ``textContent``.

- ``?page=queue``: event ``queue`` ``{"tickets": [row...], "summary": str, "count": int}``;
- ``?ticket=N``: event ``ticket`` ``{"facts": [[label, value]...], "routing": str, "notes": [...],
  "messages": [...]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import privacy
from bot.tickets import QueueItem, TicketError
from handlers.staff_auth import staff
from handlers.staff_console import (
    AUTHOR_WORDS,
    CHANNEL_WORDS,
    STATUS_WORDS,
    local_time,
    queue_summary,
    ticket_fact_pairs,
)
from handlers.staff_html import minutes_text
from handlers.web_state import core

HEARTBEAT_SECONDS = 15.0
CLOSING = web.AppKey("policybot_live_closing", asyncio.Event)

routes = web.RouteTableDef()


def queue_row(q: QueueItem) -> dict[str, Any]:
    """One queue row as the page's script draws it."""
    t = q.ticket
    return {
        "id": t.id,
        "office": t.office or "—",
        "channel": CHANNEL_WORDS.get(q.conversation.channel, q.conversation.channel),
        "question": privacy.mask(t.question)[:120],
        "status": STATUS_WORDS.get(t.status, t.status) + (f"（{t.claimed_by}）" if t.claimed_by else ""),
        "waiting": minutes_text(q.waiting_minutes),
        "working": minutes_text(q.working_minutes) + ("，已超时" if q.overdue else ""),
        "overdue": q.overdue,
    }


async def queue_state(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The queue event for this member."""
    login = staff(request)
    items = await core(request).tickets.queue(office_first=login.office)
    return "queue", {
        "tickets": [queue_row(q) for q in items],
        "summary": queue_summary(items, login.office),
        "count": len(items),
    }


async def ticket_state(request: web.Request, ticket_id: int) -> tuple[str, dict[str, Any]]:
    """The ticket event: its facts, routing, notes and conversation."""
    app = core(request)
    tz = app.settings.staff.timezone
    ticket, conv = await app.tickets.get(ticket_id)
    history = await app.conversations.history(conv.channel, conv.chat_ref, conv.user_ref, 0)
    notes = await app.tickets.notes(ticket_id)
    return "ticket", {
        "facts": ticket_fact_pairs(ticket, conv, tz),
        "routing": [f"科室：{ticket.office or '未分配'}", f"（{ticket.route_reason}）"],
        "notes": [{"meta": f"{n.author} · {local_time(n.created_at, tz)}", "text": n.text} for n in notes],
        "messages": [
            {
                "author": m.author,
                "meta": f"{AUTHOR_WORDS.get(m.author, m.author)} · {local_time(m.created_at, tz)}",
                "text": m.text,
            }
            for m in history[-100:]
        ],
    }


@routes.get("/console/events")
async def events(request: web.Request) -> web.StreamResponse:
    """The event stream of a queue page (``?page=queue``) or a ticket page (``?ticket=N``)."""
    raw = request.query.get("ticket", "")
    if raw:
        if not raw.isdigit() or len(raw) > 9:
            raise web.HTTPBadRequest(text="ticket must be a ticket number")
        ticket_id = int(raw)
        try:
            await core(request).tickets.get(ticket_id)
        except TicketError:
            raise web.HTTPNotFound(text=f"no ticket {ticket_id}") from None

        async def state() -> tuple[str, dict[str, Any]]:
            return await ticket_state(request, ticket_id)

    elif request.query.get("page") == "queue":

        async def state() -> tuple[str, dict[str, Any]]:
            return await queue_state(request)

    else:
        raise web.HTTPBadRequest(text="use ?page=queue or ?ticket=N")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await _stream(request, response, state)
    return response


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    state: Callable[[], Awaitable[tuple[str, dict[str, Any]]]],
) -> None:
    """Send the state when it changes, a comment now and then, until the client or the server leaves."""
    closing = request.app[CLOSING]
    every = core(request).settings.staff.live_seconds
    last, quiet = "", 0.0
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await response.write(b"retry: 3000\n\n")
        while not closing.is_set():
            name, data = await state()
            body = json.dumps(data, ensure_ascii=False, sort_keys=True)
            if body != last:
                await response.write(f"event: {name}\ndata: {body}\n\n".encode())
                last, quiet = body, 0.0
            elif quiet >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                quiet = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), timeout=every)
            quiet += every


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()


def setup(app: web.Application) -> None:
    """Register the event route and the shutdown signal that ends open streams."""
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(_on_shutdown)
    app.router.add_routes(routes)

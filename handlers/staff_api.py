"""The staff console's JSON API (``/console/api/...``), for scripts and other front ends.

Same session cookie as the console pages (403 without it); POST requests need the session's CSRF token
in the ``X-CSRF-Token`` header (``GET /console/api/me`` returns it).
"""

from __future__ import annotations

from aiohttp import web

from bot.stats import overview
from bot.tickets import TicketError
from handlers.staff_auth import staff
from handlers.staff_console import MAX_REPLY_CHARS, core
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS

routes = web.RouteTableDef()


@routes.get("/console/api/me")
async def me(request: web.Request) -> web.Response:
    """Who is logged in, and the CSRF token for POST requests."""
    login = staff(request)
    return ok(
        {"name": login.name, "csrf_token": login.csrf_token, "expires_at": login.expires_at.isoformat()}
    )


@routes.get("/console/api/queue")
async def queue(request: web.Request) -> web.Response:
    """Open tickets, oldest first."""
    app = core(request)
    sla = app.settings.staff.sla_minutes
    items = [
        {
            "ticket_id": q.ticket.id,
            "channel": q.conversation.channel,
            "question": q.ticket.question,
            "status": q.ticket.status,
            "claimed_by": q.ticket.claimed_by,
            "waiting_minutes": round(q.waiting_minutes, 1),
            "working_minutes": round(q.working_minutes, 1),
            "overdue": q.working_minutes > sla,
        }
        for q in await app.tickets.queue()
    ]
    return ok({"tickets": items, "sla_minutes": sla})


@routes.get("/console/api/stats")
async def stats(request: web.Request) -> web.Response:
    """The overview numbers (last 14 days)."""
    return ok((await overview(core(request).tickets)).to_json())


@routes.get("/console/api/try")
async def try_question(request: web.Request) -> web.Response:
    """``?q=``: the bot's decision and the candidates with their features."""
    app = core(request)
    q = request.query.get("q", "").strip()
    if not q:
        raise ApiError(400, "missing_q", "缺少参数 q（missing ?q=）")
    if len(q) > app.settings.matching.max_question_chars:
        raise ApiError(400, "question_too_long", "问题太长了")
    decision = await app.services.qa.ask(q)
    return ok({"decision": decision.to_json(), "candidates": await app.services.qa.explain(q, limit=8)})


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/reply")
async def reply(request: web.Request) -> web.Response:
    """``{"text"}``: answer a ticket; the user gets it on their channel."""
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    text = field(data, "text", str)
    if not text.strip() or len(text) > MAX_REPLY_CHARS:
        raise ApiError(400, "bad_text", f"答复需要 1-{MAX_REPLY_CHARS} 字")
    tickets = core(request).tickets
    ticket_id = int(request.match_info["ticket_id"])
    try:
        await tickets.get(ticket_id)
    except TicketError as exc:
        raise ApiError(404, "unknown_ticket", str(exc)) from None
    try:
        ticket = await tickets.reply(ticket_id, staff(request).name, text)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": ticket.id, "status": ticket.status})

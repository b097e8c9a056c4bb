"""The staff console's JSON API (``/console/api/...``), for scripts and other front ends.

Same session cookie as the console pages (403 without it); POST requests need the session's CSRF token
in the ``X-CSRF-Token`` header (``GET /console/api/me`` returns it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import privacy
from bot.stats import overview
from bot.tickets import QueueItem, TicketError
from handlers.staff_auth import staff
from handlers.staff_console import MAX_REPLY_CHARS, core
from handlers.staff_ticket_work import assign
from handlers.staff_tickets import ticket_filter
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS
from handlers.web_ticket_page import access
from knowledge.models import utcnow

routes = web.RouteTableDef()


@routes.get("/console/api/me")
async def me(request: web.Request) -> web.Response:
    """Who is logged in, and the CSRF token for POST requests."""
    login = staff(request)
    return ok(
        {
            "name": login.name,
            "office": login.office,
            "role": login.role,
            "csrf_token": login.csrf_token,
            "expires_at": login.expires_at.isoformat(),
        }
    )


@routes.get("/console/api/offices")
async def offices(request: web.Request) -> web.Response:
    """The configured offices and the default one."""
    s = core(request).settings.staff
    return ok(
        {"offices": s.offices, "default_office": s.default_office, "category_offices": s.category_offices}
    )


def item_json(q: QueueItem) -> dict[str, Any]:
    """A ticket as the lists show it."""
    t = q.ticket
    return {
        "ticket_id": t.id,
        "channel": q.conversation.channel,
        "question": privacy.mask(t.question),  # in full only on one ticket's page (``ticket`` below)
        "status": t.status,
        "office": t.office,
        "route_reason": t.route_reason,
        "claimed_by": t.claimed_by,
        "merged_into": t.merged_into,
        "created_at": t.created_at.isoformat(),
        "waiting_minutes": round(q.waiting_minutes, 1),
        "working_minutes": round(q.working_minutes, 1),
        "overdue": q.overdue,
    }


@routes.get("/console/api/queue")
async def queue(request: web.Request) -> web.Response:
    """Open tickets, the member's office first, oldest first."""
    app = core(request)
    items = await app.tickets.queue(office_first=staff(request).office)
    return ok({"tickets": [item_json(q) for q in items], "sla_minutes": app.settings.staff.sla_minutes})


@routes.get("/console/api/tickets")
async def tickets(request: web.Request) -> web.Response:
    """Search: ``?q=&status=open|done|all|<status>&office=&assignee=&channel=&overdue=1``."""
    items = await core(request).tickets.search(ticket_filter(request))
    return ok({"tickets": [item_json(q) for q in items]})


@routes.get(r"/console/api/tickets/{ticket_id:\d+}")
async def ticket(request: web.Request) -> web.Response:
    """One ticket with its routing, candidates, notes, merged tickets and conversation."""
    app = core(request)
    t, conv = await app.tickets.get(await _ticket_exists(request))
    history = await app.conversations.history(conv.channel, conv.chat_ref, conv.user_ref, 0)
    notes = await app.tickets.notes(t.id)
    merged = await app.tickets.merged_into(t.id)
    contact = (await access(request).contacts([t.id], full=True)).get(t.id, "")  # the ticket page's view
    return ok(
        {
            **item_json(app.tickets.item(t, conv, utcnow())),
            "question": t.question,
            "reason": t.reason,
            "answer": t.answer,
            "answered_by": t.answered_by,
            "candidates": t.candidates,
            "saved_entry_id": t.saved_entry_id,
            "contact": contact,
            "notes": [
                {"author": n.author, "text": n.text, "created_at": n.created_at.isoformat()} for n in notes
            ],
            "merged": [{"ticket_id": m.id, "channel": c.channel, "status": m.status} for m, c in merged],
            "messages": [
                {
                    "author": m.author,
                    "text": m.text,
                    "status": m.status,
                    "created_at": m.created_at.isoformat(),
                }
                for m in history[-200:]
            ],
        }
    )


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
    ticket_id = await _ticket_exists(request)
    try:
        ticket = await tickets.reply(ticket_id, staff(request).name, text)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": ticket.id, "status": ticket.status})


async def _ticket_exists(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    if len(raw) > 9:
        raise ApiError(404, "unknown_ticket", f"没有工单 #{raw}")
    ticket_id = int(raw)
    try:
        await core(request).tickets.get(ticket_id)
    except TicketError as exc:
        raise ApiError(404, "unknown_ticket", str(exc)) from None
    return ticket_id


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/{action:claim|unclaim|close}")
async def ticket_state(request: web.Request) -> web.Response:
    """Claim, unclaim or close a ticket (no body needed)."""
    tickets, name = core(request).tickets, staff(request).name
    ticket_id = await _ticket_exists(request)
    action = request.match_info["action"]
    try:
        if action == "claim":
            t = await tickets.claim(ticket_id, name)
        elif action == "unclaim":
            t = await tickets.unclaim(ticket_id, name)
        else:
            t = await tickets.close(ticket_id, name)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": t.id, "status": t.status, "claimed_by": t.claimed_by})


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/assign")
async def ticket_assign(request: web.Request) -> web.Response:
    """``{"office"}`` or ``{"colleague"}``: reassign."""
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    office = field(data, "office", str, required=False) or ""
    colleague = field(data, "colleague", str, required=False) or ""
    ticket_id = await _ticket_exists(request)
    try:
        t = await assign(request, ticket_id, staff(request).name, office, colleague)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": t.id, "status": t.status, "office": t.office, "claimed_by": t.claimed_by})


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/notes")
async def ticket_note(request: web.Request) -> web.Response:
    """``{"text"}``: an internal note."""
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    text = field(data, "text", str)
    ticket_id = await _ticket_exists(request)
    try:
        note = await core(request).tickets.add_note(ticket_id, staff(request).name, text)
    except TicketError as exc:
        raise ApiError(400, "bad_text", str(exc)) from None
    return ok({"ticket_id": ticket_id, "author": note.author, "text": note.text}, status=201)


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/answer-with-entry")
async def ticket_answer_with_entry(request: web.Request) -> web.Response:
    """``{"entry_id"}``: send that entry's answer and citation, close the ticket."""
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    entry_id = field(data, "entry_id", str)
    ticket_id = await _ticket_exists(request)
    try:
        t = await core(request).tickets.answer_with_entry(ticket_id, staff(request).name, entry_id)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": t.id, "status": t.status, "entry_id": entry_id})


@routes.post(r"/console/api/tickets/{ticket_id:\d+}/merge")
async def ticket_merge(request: web.Request) -> web.Response:
    """``{"ticket_ids": [..]}``: merge these duplicates into this ticket."""
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    ids = field(data, "ticket_ids", list)
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids):
        raise ApiError(400, "bad_ticket_ids", "ticket_ids 应为工单号（正整数）的数组")
    ticket_id = await _ticket_exists(request)
    try:
        merged = await core(request).tickets.merge(ticket_id, ids, staff(request).name)
    except TicketError as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"ticket_id": ticket_id, "merged": merged})

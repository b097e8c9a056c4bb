"""The front desk's JSON API: the welcome's hot questions, the ratings of staff replies, and 留言.

``GET /api/hot`` -> ``{"questions": [{"entry_id", "label", "action", "source"}]}`` (``source``:
``pinned``, ``asked`` or ``default``); pressing one is the ``entry:<id>`` action on ``/api/action``.
``POST /api/rating`` ``{"token", "message_id", "rating": "good"|"fair"|"bad"[, "comment"]}`` rates a
staff reply of the visitor's conversation (again: replaces the rating).
``POST /api/message`` ``{"token", "message"[, "contact"]}`` leaves a message for staff (留言) with an
optional mobile number or e-mail, and returns the ticket's reply page once. Examples in docs/web.md.
"""

from __future__ import annotations

from aiohttp import web

from bot.contact import ContactError, page_notice
from bot.messages import ChannelRef
from bot.protocol import is_id
from bot.ratings import RATING_SCORES, RatingError, check
from handlers.web_api import body, check_token, limit, visitor
from handlers.web_security import ApiError, field, ok
from handlers.web_state import core
from handlers.web_ticket_page import access, site_url

routes = web.RouteTableDef()


@routes.get("/api/hot")
async def hot(request: web.Request) -> web.Response:
    """The hot questions the welcome offers (pinned, most asked in the last 30 days, defaults)."""
    hot_questions = core(request).conversations.hot
    found = await hot_questions.top() if hot_questions is not None else []
    items = [
        {"entry_id": h.entry_id, "label": h.label, "action": h.action, "source": h.source} for h in found
    ]
    return ok({"questions": items})


@routes.post("/api/rating")
async def rating(request: web.Request) -> web.Response:
    """Rate a staff reply: 400 for a bad rating or comment, 404 for a message that is not a staff reply
    of this visitor's conversation; nothing is stored then."""
    data = await body(request)
    token = check_token(field(data, "token", str))
    message_id = field(data, "message_id", int)
    score = field(data, "rating", str)
    comment = field(data, "comment", str, required=False) or ""
    try:
        check(score, comment)
    except RatingError as exc:
        code = "bad_rating" if score not in RATING_SCORES else "comment_too_long"
        raise ApiError(400, code, str(exc)) from None
    if not is_id(message_id):
        raise ApiError(404, "unknown_message", "找不到这条工作人员答复。")
    await limit(request, token)
    reply = await core(request).conversations.ratings.rate(visitor(token), message_id, score, comment)
    if reply.kind == "error":
        raise ApiError(404, "unknown_message", reply.text)
    return ok({"reply": reply.to_json()})


@routes.post("/api/message")
async def leave_message(request: web.Request) -> web.Response:
    """留言: 400 for an empty or long message or a contact that is neither a mainland mobile number nor
    an e-mail address (nothing stored); else the stored reply, the ticket number and, the first time
    for that ticket, its reply page (``page``: ``{"url"}``; also as a notice in ``notices``)."""
    data = await body(request)
    token = check_token(field(data, "token", str))
    text = field(data, "message", str)
    contact = field(data, "contact", str, required=False) or ""
    await limit(request, token)
    try:
        reply, code = await access(request).leave_message(visitor(token), text, contact)
    except ContactError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    assert reply.ticket_id is not None
    reply.message_id = await core(request).conversations.record_reply(ChannelRef("web", token), reply)
    notices = [] if code is None else [page_notice(reply.ticket_id, code, site_url(request))]
    page = {"url": site_url(request) + f"/t/{reply.ticket_id}-{code}"} if code else None
    return ok(
        {
            "reply": reply.to_json(),
            "ticket_id": reply.ticket_id,
            "page": page,
            "notices": [n.to_json() for n in notices],
        }
    )

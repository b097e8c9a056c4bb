"""The residents' JSON API (``/api/...``): ask, read the conversation, feedback, buttons, browse.

A visitor is a random token (16-128 of ``A-Za-z0-9_-``) that the chat page keeps in localStorage; the
conversation is ``IncomingMessage(channel="web", chat_ref=token, user_ref=token)``. Request and response
examples are in docs/web.md.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.messages import IncomingMessage
from bot.protocol import MAX_ID, ActionError, feedback_action, is_id
from bot.subscriptions import Refusal
from handlers.web_security import ApiError, check_rates, client_address, field, ok, read_json
from handlers.web_state import ADDRESS_LIMITER, ASK_LIMITER, WEB_SETTINGS, core
from handlers.web_ticket_page import offer_page
from knowledge.answers import citation, is_expired
from knowledge.models import Entry, Message

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # fullmatch: "$" would let a trailing newline through
NUMBER = re.compile(r"[0-9]{1,12}")
DISPLAY_NAME = "网页访客"

routes = web.RouteTableDef()


def check_token(value: Any) -> str:
    """A well-formed visitor token, or 400."""
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise ApiError(
            400,
            "bad_token",
            "访客标识无效：需要 16-128 位字母、数字、_ 或 -（token must be 16-128 of A-Z a-z 0-9 _ -）",
        )
    return value


def visitor(token: str, text: str = "", update_id: str | None = None) -> IncomingMessage:
    """The web visitor's message as the core sees it."""
    return IncomingMessage("web", token, token, text, display_name=DISPLAY_NAME, update_id=update_id)


async def limit(request: web.Request, token: str) -> None:
    """Rate-limit a state-changing request by visitor token and by client address."""
    await check_rates(
        [
            (request.app[ASK_LIMITER], f"t:{token}", "questions"),
            (request.app[ADDRESS_LIMITER], f"a:{client_address(request)}", "requests from this address"),
        ]
    )


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON body, within ``[web] max_body_bytes``."""
    return await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)


@routes.post("/api/ask")
async def ask(request: web.Request) -> web.Response:
    """``{"token", "question"[, "request_id"]}`` -> ``{"replies": [Reply...]}``."""
    data = await body(request)
    token = check_token(field(data, "token", str))
    question = field(data, "question", str)
    request_id = field(data, "request_id", str, required=False)
    max_chars = core(request).settings.matching.max_question_chars
    if len(question) > max_chars:
        raise ApiError(400, "question_too_long", f"问题太长了（超过 {max_chars} 字），请精简后再问。")
    if request_id is not None and not 1 <= len(request_id) <= 64:
        raise ApiError(400, "bad_request_id", "request_id 应为 1-64 个字符")
    await limit(request, token)
    # Typed commands (the bot's replies mention /status and /cancel) are the core's to recognize.
    update_id = request_key(token, request_id) if request_id else None
    replies = await core(request).conversations.handle(visitor(token, question, update_id))
    notices = await offer_page(request, visitor(token), replies)  # a ticket opened: its reply page, once
    return ok({"replies": [r.to_json() for r in replies], "notices": [n.to_json() for n in notices]})


def request_key(token: str, request_id: str) -> str:
    """The key a retried ``/api/ask`` is recognised by (``processed_updates.update_id``, 100 characters):
    a digest of the token and the request id, which fits however long both are (up to 128 + 64) and
    keeps the token out of the table."""
    return "r:" + hashlib.sha256(f"{token}\n{request_id}".encode()).hexdigest()


@routes.get("/api/conversations/{token}")
async def conversation(request: web.Request) -> web.Response:
    """The stored messages after ``?after=<id>``; 404 for a token that has never asked anything."""
    token = check_token(request.match_info["token"])
    after_raw = request.query.get("after", "0")
    if not NUMBER.fullmatch(after_raw) or int(after_raw) > MAX_ID:
        raise ApiError(400, "bad_after", f"after 应为 0-{MAX_ID} 的整数（after must be a message id）")
    after = int(after_raw)
    rows = await core(request).conversations.history("web", token, token, after)
    if not rows and after == 0:
        raise ApiError(404, "unknown_token", "没有这个会话（no conversation for this token）")
    messages = await with_ratings(request, [message_json(m) for m in rows])
    return ok({"messages": messages, "last_id": messages[-1]["id"] if messages else after})


def message_json(m: Message) -> dict[str, Any]:
    """One stored message for the chat page and API clients."""
    reply = (m.payload or {}).get("reply") or {}
    if m.author == "user":
        kind = "question"
    elif m.author == "staff":
        kind = "staff_reply"
    else:
        kind = reply.get("kind") or m.status or "info"
    return {
        "id": m.id,
        "author": m.author,
        "direction": m.direction,
        "text": m.text,
        "source_line": reply.get("source_line", ""),
        "buttons": reply.get("buttons", []),
        "kind": kind,
        "ticket_id": m.ticket_id,
        "entry_id": m.entry_id,
        "created_at": _iso(m.created_at),
    }


async def with_ratings(request: web.Request, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``rating`` (``{"rating", "comment"}``, or null before one is given) to the staff replies."""
    staff_ids = [m["id"] for m in messages if m["author"] == "staff"]
    found = await core(request).conversations.ratings.of_messages(staff_ids)
    for m in messages:
        if m["author"] == "staff":
            r = found.get(m["id"])
            m["rating"] = None if r is None else {"rating": r.score, "comment": r.comment}
    return messages


def _iso(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="seconds")


@routes.post("/api/feedback")
async def feedback(request: web.Request) -> web.Response:
    """``{"token", "message_id", "helpful"}`` -> ``{"reply"}``; 没解决 opens a ticket."""
    data = await body(request)
    token = check_token(field(data, "token", str))
    message_id = field(data, "message_id", int)
    helpful = field(data, "helpful", bool)
    if not is_id(message_id):  # beyond the id columns: nobody's message
        raise ApiError(404, "unknown_message", "找不到这条回答。")
    await limit(request, token)
    try:
        [reply] = await core(request).conversations.act(visitor(token), feedback_action(message_id, helpful))
    except ActionError:  # not a message id at all (negative, too long)
        raise ApiError(404, "unknown_message", "找不到这条回答。") from None
    if reply.kind == "error":
        raise ApiError(404, "unknown_message", reply.text)
    notices = await offer_page(request, visitor(token), [reply])
    return ok({"reply": reply.to_json(), "notices": [n.to_json() for n in notices]})


@routes.post("/api/action")
async def action(request: web.Request) -> web.Response:
    """``{"token", "action"}`` for a reply's button (pick, escalate, cancel, feedback...) or ``status``."""
    data = await body(request)
    token = check_token(field(data, "token", str))
    name = field(data, "action", str)
    await limit(request, token)
    try:
        replies = await core(request).conversations.act(visitor(token), name)
    except ActionError as exc:
        raise ApiError(400, "unknown_action", str(exc)) from None
    except Refusal as exc:  # a subscription action refused: nothing changed
        raise ApiError(exc.status, exc.code, exc.message) from None
    notices = await offer_page(request, visitor(token), replies)
    return ok({"reply": replies[0].to_json(), "notices": [n.to_json() for n in notices]})


@routes.get("/api/categories")
async def categories(request: web.Request) -> web.Response:
    """Published categories of the bureau's knowledge with their entry counts (the front desk's small
    talk and referrals are no topic)."""
    cats = await core(request).services.kb.categories(topics_only=True)
    return ok({"categories": [{"name": name, "count": n} for name, n in cats]})


@routes.get("/api/entries")
async def entries(request: web.Request) -> web.Response:
    """``?category=`` -> the published top-level entries of a category (FAQ, guides, policies)."""
    category = request.query.get("category", "").strip()
    if not category:
        raise ApiError(400, "missing_category", "缺少参数 category（missing ?category=）")
    rows = await core(request).services.kb.entries(category=category[:100], status="published")
    items = [
        {"id": e.id, "kind": e.kind, "title": e.title or e.question} for e in rows if e.parent_id is None
    ]
    return ok({"category": category, "entries": items})


@routes.get("/api/entries/{entry_id:.+}")
async def entry(request: web.Request) -> web.Response:
    """One published entry in full: FAQ answer, or a guide's / policy's sections, and its source."""
    row = await core(request).services.kb.get(request.match_info["entry_id"])
    if row is None or row.status != "published":
        raise ApiError(404, "unknown_entry", "没有这条知识（no such published entry）")
    return ok(entry_json(row))


def entry_json(e: Entry) -> dict[str, Any]:
    """A knowledge entry for reading (the chat page's knowledge browser)."""
    return {
        "id": e.id,
        "kind": e.kind,
        "title": e.title or e.question,
        "question": e.question,
        "answer": e.answer,
        "sections": [{"name": name, "text": text} for name, text in e.sections],
        "heading_path": list(e.heading_path),
        "category": e.category,
        "source": {k: v for k, v in (e.source or {}).items() if v},
        "source_line": citation(e),
        "valid_until": e.valid_until,
        "expired": is_expired(e),
        "illustrative": e.illustrative,
    }

"""The residents' JSON API described as OpenAPI 3.1, served at ``GET /api/openapi.json``.

Written by hand from the handlers in ``web_api.py`` and ``web_desk_api.py``; tests/test_web_openapi.py
checks that every ``/api/`` route the app registers is described here (so a new endpoint cannot be
forgotten) and fuzzes every operation with hostile input (never a 5xx, always JSON).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.protocol import MAX_ACTION, MAX_ID
from handlers.web_security import ok

routes = web.RouteTableDef()

Schema = dict[str, Any]

TOKEN: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]{16,128}$",
    "description": "the visitor: 16-128 of A-Z a-z 0-9 _ - made up and kept by the client (no login)",
}
ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TEXT: Schema = {"type": "string", "description": "no NUL byte and no lone surrogate (400 bad_text)"}
ERROR: Schema = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
REPLY: Schema = {
    "type": "object",
    "description": "a Reply: text, source_line, buttons, kind, ticket_id, message_id, entry_id",
}
OBJECT: Schema = {"type": "object"}


def body(required: list[str], **properties: Schema) -> Schema:
    """A JSON object body with these properties."""
    return {"type": "object", "required": required, "properties": properties}


def operation(
    summary: str,
    answer: Schema = OBJECT,
    request: Schema | None = None,
    path: dict[str, Schema] | None = None,
    query: dict[str, Schema] | None = None,
    errors: tuple[int, ...] = (400,),
) -> dict[str, Any]:
    """One operation: its parameters, request body and responses (errors are ``{error, message}``)."""
    op: dict[str, Any] = {"summary": summary, "responses": {"200": _json("OK", answer)}}
    params = [{"name": n, "in": "path", "required": True, "schema": s} for n, s in (path or {}).items()]
    params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (query or {}).items()]
    if params:
        op["parameters"] = params
    if request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
        errors = (*errors, 413, 429)
    for status in sorted(set(errors)):
        op["responses"][str(status)] = _json("error", {"$ref": "#/components/schemas/Error"})
    return op


def _json(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def replies(*names: str) -> Schema:
    return {"type": "object", "properties": {n: {"type": "array", "items": REPLY} for n in names}}


PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/api/ask": {
        "post": operation(
            "Ask a question (or type a command such as /status)",
            replies("replies", "notices"),
            body(
                ["token", "question"],
                token=TOKEN,
                question={**TEXT, "maxLength": 2000},
                request_id={**TEXT, "minLength": 1, "maxLength": 64},
            ),
        )
    },
    "/api/conversations/{token}": {
        "get": operation(
            "The conversation's stored messages after ?after=",
            {"type": "object", "properties": {"messages": {"type": "array"}, "last_id": {"type": "integer"}}},
            path={"token": TOKEN},
            query={"after": {"type": "integer", "minimum": 0, "maximum": MAX_ID}},
            errors=(400, 404),
        )
    },
    "/api/feedback": {
        "post": operation(
            "有用 / 没解决 on an answer",
            {"type": "object", "properties": {"reply": REPLY}},
            body(["token", "message_id", "helpful"], token=TOKEN, message_id=ID, helpful={"type": "boolean"}),
            errors=(400, 404),
        )
    },
    "/api/action": {
        "post": operation(
            "Run a button's action (pick:, escalate:, cancel:, subscribe:, ...)",
            {"type": "object", "properties": {"reply": REPLY}},
            body(["token", "action"], token=TOKEN, action={**TEXT, "minLength": 1, "maxLength": MAX_ACTION}),
            errors=(400, 403, 404),
        )
    },
    "/api/hot": {"get": operation("The welcome's hot questions", errors=())},
    "/api/rating": {
        "post": operation(
            "满意 / 一般 / 不满意 on a staff reply",
            {"type": "object", "properties": {"reply": REPLY}},
            body(
                ["token", "message_id", "rating"],
                token=TOKEN,
                message_id=ID,
                rating={"type": "string", "enum": ["good", "fair", "bad"]},
                comment={**TEXT, "maxLength": 500},
            ),
            errors=(400, 404),
        )
    },
    "/api/message": {
        "post": operation(
            "留言 with an optional mobile number or e-mail: a ticket, and its reply page once",
            OBJECT,
            body(
                ["token", "message"],
                token=TOKEN,
                message={**TEXT, "minLength": 1, "maxLength": 2000},
                contact={**TEXT, "maxLength": 254},
            ),
        )
    },
    "/api/categories": {"get": operation("Published categories with their entry counts", errors=())},
    "/api/entries": {
        "get": operation(
            "A category's published entries", query={"category": {**TEXT, "maxLength": 100}}, errors=(400,)
        )
    },
    "/api/entries/{entry_id}": {
        "get": operation(
            "One published entry in full",
            path={"entry_id": {**TEXT, "minLength": 1, "maxLength": 200}},
            errors=(400, 404),
        )
    },
    "/api/openapi.json": {"get": operation("This description", errors=())},
}


def document() -> dict[str, Any]:
    """The OpenAPI document of the residents' JSON API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "policybot web API",
            "version": "1",
            "description": "The residents' chat API (docs/web.md). Every error is JSON {error, message} "
            "with a 4xx status; bad input never gets a 5xx.",
        },
        "paths": PATHS,
        "components": {"schemas": {"Error": ERROR}},
    }


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 description."""
    return ok(document())

"""Hostile input to the web app (issue 16, R1-R7): every request gets JSON, a 4xx for bad input and
nothing stored; never a 500. Runs on SQLite and, with POLICYBOT_TEST_DATABASE_URL, on PostgreSQL
(where ids are 32-bit and NUL bytes are refused by the database)."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.staff_accounts import create_account
from handlers.web import build_web_app
from handlers.web_api import check_token
from handlers.web_security import ApiError
from knowledge.models import Message, ProcessedUpdate, Ticket
from tests.staff_fixtures import CHEAP, NAME, PASSWORD, console, login
from tests.test_web_api import SUGGESTED, TOKEN, ask

OTHER = "visitor-token-0002"
BEYOND = 2**31  # the first id PostgreSQL's INTEGER columns cannot hold
HUGE = 2**63  # the first id SQLite's INTEGER cannot hold


async def stored(app: App) -> tuple[int, int, int]:
    """How many messages, processed updates and tickets the database holds."""
    async with app.services.sessions() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(t))
            for t in (Message, ProcessedUpdate, Ticket)
        ]
    return counts[0] or 0, counts[1] or 0, counts[2] or 0


async def refused(resp: aiohttp.ClientResponse, status: int | tuple[int, ...] = 400) -> dict:
    """A 4xx JSON error with ``error`` and ``message``."""
    statuses = status if isinstance(status, tuple) else (status,)
    text = await resp.text()
    assert resp.status in statuses, text
    assert resp.content_type == "application/json", text
    data = await resp.json()
    assert isinstance(data["error"], str) and isinstance(data["message"], str) and data["message"]
    return data


# -- R1: ids beyond the database's integer range ----------------------------------------------------------
@pytest.mark.parametrize("big", [BEYOND, HUGE, 10**12 - 1])
async def test_ids_beyond_the_integer_range_are_refused(client: TestClient, app: App, big: int) -> None:
    before = await stored(app)
    for path in ("/api/feedback", "/api/rating"):
        body = {"token": TOKEN, "message_id": big, "helpful": True, "rating": "good"}
        await refused(await client.post(path, json=body), (400, 404))
    for action in (f"pick:{big}:0", f"pick:1:{big}", f"cancel:{big}", f"escalate:{big}", f"rel:{big}:0",
                   f"feedback:up:{big}", f"unsub:{big}", f"read:{big}", f"rate:good:{big}"):  # fmt: skip
        if len(str(big)) <= 12:  # the action grammar's own limit; longer ones were refused before
            resp = await client.post("/api/action", json={"token": TOKEN, "action": action})
            await refused(resp, (400, 404))
    await refused(await client.get(f"/api/conversations/{TOKEN}", params={"after": str(big)}), (400, 404))
    assert await stored(app) == before


async def test_after_at_the_integer_limit_still_works(client: TestClient) -> None:
    await ask(client, "商务局电话")
    resp = await client.get(f"/api/conversations/{TOKEN}", params={"after": str(BEYOND - 1)})
    assert resp.status == 200 and (await resp.json())["messages"] == []


# -- R2-R4: bodies too deep, numbers too long, a false Content-Encoding ----------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 16000,
        b'{"token": "' + TOKEN.encode() + b'", "question": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"token": "' + TOKEN.encode() + b'", "message_id": ' + b"9" * 5000 + b', "helpful": true}',
        b'{"token": "' + TOKEN.encode() + b'", "question": "x", "n": 1' + b"0" * 5000 + b"}",
    ],
    ids=["deep-array", "deep-field", "long-number", "long-number-unused"],
)
async def test_bodies_too_deep_or_with_huge_numbers_are_400(client: TestClient, app: App, raw: bytes) -> None:
    for path in ("/api/ask", "/api/feedback", "/api/action"):
        data = await refused(await client.post(path, data=raw, headers={"Content-Type": "application/json"}))
        assert data["error"] == "bad_json"
    assert await stored(app) == (0, 0, 0)


async def test_a_body_that_claims_gzip_but_is_not_is_400(client: TestClient, app: App) -> None:
    raw = b'{"token": "' + TOKEN.encode() + b'", "question": "x"}'
    resp = await client.post(
        "/api/ask", data=raw, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    await refused(resp)
    assert await stored(app) == (0, 0, 0)


# -- R5, R6: strings the database cannot store ----------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"token": TOKEN, "question": "ok", "request_id": "\ud800"},
        {"token": TOKEN, "question": "问\ud800题"},
        {"token": TOKEN, "question": "ok", "request_id": "a\x00b"},
        {"token": TOKEN, "question": "问\x00题"},
        {"token": "t" * 40, "question": "ok", "request_id": "r" * 64},
        {"token": "t" * 128, "question": "ok", "request_id": "r" * 64},
    ],
    ids=[
        "surrogate-request-id",
        "surrogate-question",
        "nul-request-id",
        "nul-question",
        "key-105",
        "key-193",
    ],
)
async def test_strings_the_database_cannot_hold(client: TestClient, app: App, body: dict) -> None:
    raw = aiohttp.JsonPayload(body, dumps=json.dumps)  # \ud800 escaped, as a client may
    resp = await client.post("/api/ask", data=raw)
    if "r" * 64 in body.values():  # a long but valid key: answered once, then recognised as a retry
        assert resp.status == 200, await resp.text()
        again = await client.post("/api/ask", json=body)
        assert (await again.json())["replies"] == []
        return
    await refused(resp)
    assert await stored(app) == (0, 0, 0)


async def test_surrogates_and_nul_elsewhere(client: TestClient, app: App) -> None:
    for body in (
        {"token": TOKEN, "message": "留言\ud83d", "contact": ""},
        {"token": TOKEN, "message": "留言", "contact": "a\x00@example.com"},
        {"token": TOKEN, "message_id": 1, "rating": "good", "comment": "\udfff"},
        {"token": TOKEN, "action": "entry:\x00"},
        {"token": TOKEN, "action": "cat:\ud800"},
        {"token": TOKEN, "action": "subscribe:\x00"},
    ):
        path = "/api/message" if "message" in body else "/api/rating" if "rating" in body else "/api/action"
        await refused(await client.post(path, data=aiohttp.JsonPayload(body, dumps=json.dumps)))
    for url in (
        "/api/entries/%00",
        "/api/entries/a%00b",
        "/api/entries?category=%00",
        "/api/entries/%ED%A0%80",
    ):
        await refused(await client.get(url), (400, 404))
    await refused(await client.get(f"/api/conversations/{TOKEN}%00"), (400, 404))
    assert await stored(app) == (0, 0, 0)


# -- R7: a cookie that is not UTF-8 ---------------------------------------------------------------------
async def raw_get(client: TestClient, path: str, header: bytes) -> tuple[int, bytes]:
    """GET ``path`` with one raw header line (bytes the client library would refuse to send)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET "
        + path.encode()
        + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        + header
        + b"\r\n\r\n"
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_console_cookie_with_bytes_that_are_not_utf8(app: App) -> None:
    async with console(app) as c:
        for path in ("/console/api/me", "/console/api/queue"):
            status, body = await raw_get(c, path, b"Cookie: policybot_staff=\xff\xfe\xed\xa0\x80")
            assert status == 403, body
            assert json.loads(body)["error"] == "forbidden"
        status, body = await raw_get(c, "/console", b"Cookie: policybot_staff=\xff\xfe")
        assert status == 403 and b"<form" in body


# -- console ids ----------------------------------------------------------------------------------------
async def test_console_ticket_ids_beyond_the_range(app: App) -> None:
    await create_account(app.services.sessions, NAME, PASSWORD, hasher=CHEAP)
    async with console(app) as c:
        csrf = await login(c)
        for raw in (str(BEYOND), str(HUGE), "9" * 30):
            await refused(await c.get(f"/console/api/tickets/{raw}"), 404)
            for action in ("claim", "close", "reply", "notes"):
                resp = await c.post(
                    f"/console/api/tickets/{raw}/{action}", json={"text": "x"}, headers={"X-CSRF-Token": csrf}
                )
                await refused(resp, 404)
        resp = await c.post(
            "/console/api/tickets/1/merge", json={"ticket_ids": [BEYOND]}, headers={"X-CSRF-Token": csrf}
        )
        await refused(resp, (400, 404))


# -- smaller findings -----------------------------------------------------------------------------------
def test_token_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ApiError):
        check_token(TOKEN + "\n")
    assert check_token(TOKEN) == TOKEN


async def test_a_token_with_a_newline_in_the_path_is_refused(client: TestClient) -> None:
    await ask(client, "商务局电话")
    await refused(await client.get(f"/api/conversations/{TOKEN}%0A"), 400)
    resp = await client.post("/api/ask", json={"token": TOKEN + "\n", "question": "商务局电话"})
    assert (await refused(resp))["error"] == "bad_token"


async def test_pick_on_another_visitors_question_reveals_nothing(client: TestClient) -> None:
    (suggestions,) = (await ask(client, SUGGESTED))["replies"]
    assert suggestions["kind"] == "suggestions"
    action = suggestions["buttons"][0][0]["action"]
    assert action.startswith("pick:")
    resp = await client.post("/api/action", json={"token": OTHER, "action": action})
    assert resp.status == 200
    reply = (await resp.json())["reply"]
    assert reply["kind"] == "error" and reply["entry_id"] is None
    assert suggestions["buttons"][0][0]["label"] not in reply["text"]
    mine = await client.post("/api/action", json={"token": TOKEN, "action": action})
    assert (await mine.json())["reply"]["kind"] == "answer"


# -- the console's JSON API: every route, hostile input ------------------------------------------------
CONSOLE_FIELDS = ("text", "office", "colleague", "entry_id", "ticket_ids", "title", "name", "password",
                  "question", "answer", "category", "alternates", "questions", "mode", "candidate", "mask",
                  "role", "q", "id", "entry", "label", "ticket", "ticket_id", "revision_id", "status", "done",
                  "section_name", "section_text", "valid_until", "from", "to", "what", "days", "page")  # fmt: skip
FORM = "application/x-www-form-urlencoded"
HOSTILE_VALUES = (
    "y" * 120,
    "z" * 220,
    "\x00",
    "a\ud800",
    2**31,
    2**63,
    [2**31],
    [[["deep"]]],
    {"x": "\udfff"},
    True,
    None,
    "x" * 3000,
)


def console_urls(path: str) -> list[str]:
    """``path`` with its placeholders filled: a small id, ids beyond the range, hostile text."""
    if "{" not in path:
        return [path]
    urls = []
    for filler in ("1", str(BEYOND), str(HUGE), "%00", "%ED%A0%80", "a%0Ab"):
        urls.append(re.sub(r"\{[^}]+\}", filler, path))
    return urls


async def test_every_console_route_refuses_hostile_input(app: App) -> None:
    """Every console route, logged in as an admin, with hostile path parts, queries, JSON bodies and
    form fields: never a 5xx; under /console/api/ always JSON."""
    await create_account(app.services.sessions, NAME, PASSWORD, role="admin", hasher=CHEAP)
    await hand_over_question(app)
    statuses: set[int] = set()
    async with console(app) as c:
        csrf = await login(c)
        paths = set()
        for route in c.server.app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter") or ""
            if path.startswith("/console") and path != "/console/logout" and route.method in ("GET", "POST"):
                paths.add((route.method, path))
        assert len(paths) > 40
        for method, path in sorted(paths):
            for url in console_urls(path):
                if method == "GET":
                    query = "&".join(f"{f}=%00%ED%A0%80" for f in ("q", "status", "days", "from"))
                    sent = [c.get(url), c.get(f"{url}?{query}")]
                else:
                    bodies = [json.dumps({f: v for f in CONSOLE_FIELDS}) for v in HOSTILE_VALUES]
                    bodies += ["[" * 16000, "{", '{"text": ' + "9" * 5000 + "}"]
                    sent = [c.post(url, data=b, headers={"X-CSRF-Token": csrf}) for b in bodies]
                    for v in ("a\x00b", "\ud800", str(BEYOND), "y" * 120, "z" * 220):
                        form = {"csrf": csrf, **{f: v for f in CONSOLE_FIELDS}}
                        raw = urlencode({k: x.encode("utf-8", "surrogatepass") for k, x in form.items()})
                        sent.append(c.post(url, data=raw, headers={"Content-Type": FORM}))
                for pending in sent:
                    resp = await pending
                    text = await resp.text()
                    statuses.add(resp.status)
                    assert resp.status < 500, (method, url, text[:300])
                    if path.startswith("/console/api/"):
                        assert resp.content_type == "application/json", (method, url, resp.status, text)
    assert {200, 400, 404} <= statuses


async def hand_over_question(app: App) -> int:
    """A ticket to act on (ticket 1)."""
    from bot.messages import IncomingMessage

    await app.conversations.handle(IncomingMessage("web", TOKEN, TOKEN, "会议室周末能借用吗"))
    (reply,) = await app.conversations.command(IncomingMessage("web", TOKEN, TOKEN, "转人工"), "human", "")
    assert reply.ticket_id is not None
    return reply.ticket_id


def test_other_patterns_refuse_a_trailing_newline() -> None:
    """The same "$" slip elsewhere: staff names, reply-page addresses, numbers in actions."""
    from bot.contact import PAGE_PATH
    from bot.protocol import ActionError, parse_action
    from bot.staff_accounts import StaffAccountError, check_name

    with pytest.raises(StaffAccountError):
        check_name(NAME + "\n")
    assert PAGE_PATH.match("12-abcdefghjk") and not PAGE_PATH.match("12-abcdefghjk\n")
    with pytest.raises(ActionError):
        parse_action("pick:1\n:0")


async def test_an_unexpected_exception_is_a_logged_json_500(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault of the server under the API prefixes: JSON 500 without internals, logged with the route
    (never the path, which may carry a visitor token)."""
    application = build_web_app(app)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    application.router.add_get("/api/boom/{token}", boom)
    c = TestClient(TestServer(application))
    await c.start_server()
    try:
        resp = await c.get(f"/api/boom/{TOKEN}")
        assert resp.status == 500 and resp.content_type == "application/json"
        data = await resp.json()
        assert data["error"] == "internal_error" and "secret" not in json.dumps(data)
    finally:
        await c.close()
    [record] = [r for r in caplog.records if r.getMessage() == "web request failed"]
    assert record.exc_info is not None and getattr(record, "route", "") == "/api/boom/{token}"
    assert TOKEN not in record.getMessage() + str(getattr(record, "route", ""))

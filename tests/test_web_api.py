"""The residents' web chat: pages, the JSON API and its bad input, safety headers, the web channel."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.config import WebSettings
from bot.messages import IncomingMessage
from handlers.web import build_web_app, embed_snippets, start_web
from handlers.web_channel import WebChannel
from knowledge.importers.base import DESK_KINDS

STATIC = Path(__file__).resolve().parent.parent / "handlers" / "static"
TOKEN = "visitor-token-0001"
OTHER = "visitor-token-0002"
ANSWERED = "商务局电话"
SUGGESTED = "备案"
ESCALATED = "会议室周末能借用吗"


async def make_client(app: App, **web_values: object) -> TestClient:
    """A test client for the web application of ``app`` (web settings overridable)."""
    ws = WebSettings(**{**vars_of(app.settings.web), **web_values})
    client = TestClient(TestServer(build_web_app(app, ws)))
    await client.start_server()
    return client


def vars_of(ws: WebSettings) -> dict[str, object]:
    return {name: getattr(ws, name) for name in ws.__dataclass_fields__}


async def ask(client: TestClient, question: str, token: str = TOKEN) -> dict:
    resp = await client.post("/api/ask", json={"token": token, "question": question})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def hand_over(client: TestClient, question: str = ESCALATED, token: str = TOKEN) -> dict:
    """``question`` gets no reliable answer (no ticket); then the visitor types 转人工: the ticket."""
    (no_answer,) = (await ask(client, question, token))["replies"]
    assert no_answer["kind"] == "no_answer" and no_answer["ticket_id"] is None
    (escalated,) = (await ask(client, "转人工", token))["replies"]
    assert escalated["kind"] == "escalated" and isinstance(escalated["ticket_id"], int)
    return escalated


async def history(client: TestClient, token: str = TOKEN, after: int = 0) -> list[dict]:
    resp = await client.get(f"/api/conversations/{token}", params={"after": str(after)})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["messages"]


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    data = await resp.json()
    assert data["error"] == code
    assert data["message"]
    return data


# -- pages and headers ----------------------------------------------------------------------------------
async def test_chat_page_has_strict_headers_and_no_inline_script(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    page = await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert '<script src="/static/chat.js" defer></script>' in page
    assert page.count("<script") == 1  # no inline script
    assert 'data-poll-seconds="3"' in page and 'lang="zh-CN"' in page
    assert "initial-scale=1" in page  # phone-sized screens


async def test_widget_page_may_be_framed_by_other_sites(client: TestClient) -> None:
    resp = await client.get("/widget")
    assert resp.status == 200
    assert "frame-ancestors http: https:" in resp.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in resp.headers
    assert 'class="mode-widget"' in await resp.text()


async def test_embed_page_shows_escaped_snippets(client: TestClient) -> None:
    resp = await client.get("/embed")
    page = await resp.text()
    base = str(client.make_url("")).rstrip("/")
    script, iframe = embed_snippets(base)
    assert f"&lt;script src=&quot;{base}/static/widget.js&quot; defer&gt;&lt;/script&gt;" in page
    assert html.escape(iframe) in page and script not in page
    assert '<iframe src="/widget"' in page  # the live preview


async def test_embed_uses_public_url(app: App) -> None:
    c = await make_client(app, public_url="https://zx.example.gov.cn/")
    try:
        page = await (await c.get("/embed")).text()
    finally:
        await c.close()
    assert "https://zx.example.gov.cn/static/widget.js" in page


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/static/chat.js", "javascript"),
        ("/static/widget.js", "javascript"),
        ("/static/chat.css", "text/css"),
    ],
)
async def test_static_files(client: TestClient, path: str, ctype: str) -> None:
    resp = await client.get(path)
    assert resp.status == 200
    assert ctype in resp.headers["Content-Type"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_scripts_never_insert_html() -> None:
    for name in ("chat.js", "widget.js", "console.js"):
        source = (STATIC / name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"


async def test_healthz(client: TestClient) -> None:
    resp = await client.get("/healthz")
    data = await resp.json()
    assert resp.status == 200 and data["status"] == "ok" and data["indexed"] > 50


# -- asking ---------------------------------------------------------------------------------------------
async def test_ask_answered_with_source_and_feedback_buttons(client: TestClient) -> None:
    (reply,) = (await ask(client, ANSWERED))["replies"]
    assert reply["kind"] == "answer" and "0591" in reply["text"]
    assert reply["source_line"].startswith("来源：")
    feedback, push, *related = ([b["action"] for b in row] for row in reply["buttons"])
    assert feedback == [f"feedback:up:{reply['message_id']}", f"feedback:down:{reply['message_id']}"]
    assert push == ["subscribe:机构信息", f"follow:{reply['entry_id']}"]  # 订阅此类政策更新, 关注此条
    assert all(row[0].startswith(f"rel:{reply['message_id']}:") for row in related)  # 相关问题


async def test_ask_suggested_then_pick_a_candidate(client: TestClient) -> None:
    (reply,) = (await ask(client, SUGGESTED))["replies"]
    assert reply["kind"] == "suggestions"
    actions = [b["action"] for row in reply["buttons"] for b in row]
    assert actions[0].startswith("pick:") and actions[-1].startswith("escalate:")
    resp = await client.post("/api/action", json={"token": TOKEN, "action": actions[0]})
    assert resp.status == 200
    picked = (await resp.json())["reply"]
    assert picked["kind"] == "answer" and picked["entry_id"] and picked["source_line"]


async def test_ask_escalated_opens_a_ticket(client: TestClient, app: App) -> None:
    (no_answer,) = (await ask(client, ESCALATED))["replies"]
    assert no_answer["kind"] == "no_answer" and await app.tickets.queue() == []
    human = no_answer["buttons"][-1][0]
    assert human["label"] == "转人工"
    resp = await client.post("/api/action", json={"token": TOKEN, "action": human["action"]})
    assert resp.status == 200, await resp.text()
    reply = (await resp.json())["reply"]
    assert reply["kind"] == "escalated" and isinstance(reply["ticket_id"], int)
    assert f"#{reply['ticket_id']}" in reply["text"]
    queue = await app.tickets.queue()
    assert [q.ticket.id for q in queue] == [reply["ticket_id"]]
    assert queue[0].conversation.channel == "web" and queue[0].conversation.chat_ref == TOKEN


async def test_ask_with_request_id_is_answered_once(client: TestClient) -> None:
    body = {"token": TOKEN, "question": ANSWERED, "request_id": "r1"}
    first = await (await client.post("/api/ask", json=body)).json()
    second = await (await client.post("/api/ask", json=body)).json()
    assert len(first["replies"]) == 1 and second["replies"] == []


async def test_ask_bad_input(client: TestClient) -> None:
    post = client.post
    await expect_error(
        await post("/api/ask", data=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "bad_json",
    )
    await expect_error(await post("/api/ask", data="\xff".encode("latin-1")), 400, "bad_json")
    await expect_error(await post("/api/ask", json=["token", "question"]), 400, "bad_json")
    await expect_error(await post("/api/ask", json={"question": "你好"}), 400, "missing_field")
    await expect_error(await post("/api/ask", json={"token": TOKEN}), 400, "missing_field")
    await expect_error(await post("/api/ask", json={"token": TOKEN, "question": 42}), 400, "wrong_type")
    await expect_error(
        await post("/api/ask", json={"token": 12345678901234567, "question": "x"}), 400, "wrong_type"
    )
    await expect_error(await post("/api/ask", json={"token": "short", "question": "x"}), 400, "bad_token")
    await expect_error(
        await post("/api/ask", json={"token": "a b<c>" * 5, "question": "x"}), 400, "bad_token"
    )
    await expect_error(
        await post("/api/ask", json={"token": TOKEN, "question": "x", "request_id": ""}),
        400,
        "bad_request_id",
    )


async def test_ask_question_too_long(client: TestClient, app: App) -> None:
    limit = app.settings.matching.max_question_chars
    resp = await client.post("/api/ask", json={"token": TOKEN, "question": "问" * (limit + 1)})
    data = await expect_error(resp, 400, "question_too_long")
    assert str(limit) in data["message"]


async def test_empty_question_gets_a_hint_not_a_ticket(client: TestClient, app: App) -> None:
    (reply,) = (await ask(client, "   "))["replies"]
    assert reply["kind"] == "error" and "请输入" in reply["text"]
    assert await app.tickets.queue() == []


async def test_oversize_body_is_413_json(app: App) -> None:
    c = await make_client(app, max_body_bytes=1024)
    try:
        big = json.dumps({"token": TOKEN, "question": "x" * 2000})
        data = await expect_error(await c.post("/api/ask", data=big), 413, "body_too_large")
        assert "1024" in data["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
            for _ in range(4):
                yield b" " * 600

        await expect_error(await c.post("/api/ask", data=chunks()), 413, "body_too_large")
    finally:
        await c.close()


async def test_wrong_method_and_unknown_path_are_json(client: TestClient) -> None:
    data = await expect_error(await client.get("/api/ask"), 405, "method_not_allowed")
    assert "GET" in data["message"]
    await expect_error(await client.put("/api/feedback", json={}), 405, "method_not_allowed")
    await expect_error(await client.delete(f"/api/conversations/{TOKEN}"), 405, "method_not_allowed")
    await expect_error(await client.get("/api/nothing-here"), 404, "not_found")


# -- the conversation -----------------------------------------------------------------------------------
async def test_conversation_history_and_after(client: TestClient) -> None:
    await ask(client, ANSWERED)
    messages = await history(client)
    assert [m["author"] for m in messages] == ["user", "bot"]
    question, answer = messages
    assert question["text"] == ANSWERED and question["kind"] == "question"
    assert answer["kind"] == "answer" and answer["source_line"] and answer["buttons"]
    assert answer["created_at"].endswith("+00:00")
    resp = await client.get(f"/api/conversations/{TOKEN}", params={"after": str(answer["id"])})
    data = await resp.json()
    assert data == {"messages": [], "last_id": answer["id"]}


async def test_conversation_bad_input(client: TestClient) -> None:
    await expect_error(await client.get(f"/api/conversations/{OTHER}"), 404, "unknown_token")
    await expect_error(await client.get("/api/conversations/short"), 400, "bad_token")
    await ask(client, ANSWERED)
    for after in ("abc", "-1", "1.5"):
        await expect_error(
            await client.get(f"/api/conversations/{TOKEN}", params={"after": after}), 400, "bad_after"
        )
    assert await history(client, OTHER, after=5) == []  # polling a known position: no error


async def test_conversations_are_per_token(client: TestClient) -> None:
    await ask(client, ANSWERED, TOKEN)
    await ask(client, SUGGESTED, OTHER)
    assert [m["text"] for m in await history(client, TOKEN) if m["author"] == "user"] == [ANSWERED]
    assert [m["text"] for m in await history(client, OTHER) if m["author"] == "user"] == [SUGGESTED]


async def test_staff_reply_appears_in_the_conversation(client: TestClient, app: App) -> None:
    reply = await hand_over(client)
    last = (await history(client))[-1]["id"]
    await app.tickets.reply(reply["ticket_id"], "alice", "您好，<b>请致电</b>咨询。")
    (staff,) = await history(client, after=last)
    assert staff["author"] == "staff" and staff["kind"] == "staff_reply"
    assert staff["text"] == "您好，<b>请致电</b>咨询。" and staff["ticket_id"] == reply["ticket_id"]


# -- feedback and actions -------------------------------------------------------------------------------
async def test_feedback_helpful_and_not_helpful(client: TestClient, app: App) -> None:
    (answer,) = (await ask(client, ANSWERED))["replies"]
    resp = await client.post(
        "/api/feedback", json={"token": TOKEN, "message_id": answer["message_id"], "helpful": True}
    )
    assert resp.status == 200 and "感谢" in (await resp.json())["reply"]["text"]
    resp = await client.post(
        "/api/feedback", json={"token": TOKEN, "message_id": answer["message_id"], "helpful": False}
    )
    escalated = (await resp.json())["reply"]
    assert escalated["kind"] == "escalated" and escalated["ticket_id"]
    (item,) = await app.tickets.queue()
    assert item.ticket.reason == "not_helpful" and item.ticket.question == ANSWERED


async def test_feedback_bad_input(client: TestClient) -> None:
    (answer,) = (await ask(client, ANSWERED))["replies"]
    mid = answer["message_id"]
    post = client.post
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "message_id": mid}), 400, "missing_field"
    )
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "helpful": True}), 400, "missing_field"
    )
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "message_id": mid, "helpful": "yes"}),
        400,
        "wrong_type",
    )
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "message_id": "1", "helpful": True}),
        400,
        "wrong_type",
    )
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "message_id": True, "helpful": True}),
        400,
        "wrong_type",
    )
    # Someone else's answer, or no such message: not found.
    await expect_error(
        await post("/api/feedback", json={"token": OTHER, "message_id": mid, "helpful": True}),
        404,
        "unknown_message",
    )
    await expect_error(
        await post("/api/feedback", json={"token": TOKEN, "message_id": 999999, "helpful": True}),
        404,
        "unknown_message",
    )


async def test_actions_escalate_status_cancel(client: TestClient, app: App) -> None:
    (sugg,) = (await ask(client, SUGGESTED))["replies"]
    escalate = [b["action"] for row in sugg["buttons"] for b in row][-1]
    resp = await client.post("/api/action", json={"token": TOKEN, "action": escalate})
    ticket = (await resp.json())["reply"]
    assert ticket["kind"] == "escalated"
    status = (await (await client.post("/api/action", json={"token": TOKEN, "action": "status"})).json())[
        "reply"
    ]
    assert f"#{ticket['ticket_id']}" in status["text"]
    assert [b["action"] for row in status["buttons"] for b in row] == [f"cancel:{ticket['ticket_id']}"]
    cancel = (
        await (
            await client.post("/api/action", json={"token": TOKEN, "action": f"cancel:{ticket['ticket_id']}"})
        ).json()
    )["reply"]
    assert "撤回" in cancel["text"] and await app.tickets.queue() == []
    human = (await (await client.post("/api/action", json={"token": TOKEN, "action": "human"})).json())[
        "reply"
    ]
    assert human["kind"] == "escalated"
    again = (await (await client.post("/api/action", json={"token": TOKEN, "action": "escalate"})).json())[
        "reply"
    ]
    assert again["kind"] == "info" and again["ticket_id"] == human["ticket_id"]  # already with staff
    done = (await (await client.post("/api/action", json={"token": TOKEN, "action": "cancel"})).json())[
        "reply"
    ]
    assert done["ticket_id"] == human["ticket_id"]


async def test_action_bad_input(client: TestClient) -> None:
    for action in ("pick:x:y", "pick:1", "explode", "cancel:abc", "feedback:sideways:1", "", "pick:1:2:3"):
        await expect_error(
            await client.post("/api/action", json={"token": TOKEN, "action": action}), 400, "unknown_action"
        )
    await expect_error(
        await client.post("/api/action", json={"token": TOKEN, "action": 5}), 400, "wrong_type"
    )
    await expect_error(await client.post("/api/action", json={"action": "status"}), 400, "missing_field")
    resp = await client.post("/api/action", json={"token": TOKEN, "action": "pick:999999:0"})
    assert (await resp.json())["reply"]["kind"] == "error"


# -- rate limits ----------------------------------------------------------------------------------------
async def test_rate_limit_per_token_and_per_address(app: App) -> None:
    c = await make_client(app, rate_limit_per_minute=2)
    try:
        for _ in range(2):
            assert (await c.post("/api/ask", json={"token": TOKEN, "question": ANSWERED})).status == 200
        resp = await c.post("/api/ask", json={"token": TOKEN, "question": ANSWERED})
        data = await expect_error(resp, 429, "rate_limited")
        assert int(resp.headers["Retry-After"]) >= 1 and "秒" in data["message"]
        await expect_error(
            await c.post("/api/action", json={"token": TOKEN, "action": "status"}), 429, "rate_limited"
        )
        # Other visitors are not affected, until the address as a whole (10x) is over its limit.
        statuses = []
        for i in range(20):
            r = await c.post("/api/action", json={"token": f"visitor-token-{i:04d}-x", "action": "status"})
            statuses.append(r.status)
        assert statuses[:10].count(200) >= 9 and statuses[-1] == 429
    finally:
        await c.close()


# -- browsing the knowledge -----------------------------------------------------------------------------
async def test_categories_and_entries(client: TestClient, app: App) -> None:
    cats = (await (await client.get("/api/categories")).json())["categories"]
    names = {c["name"]: c["count"] for c in cats}
    assert names["机构信息"] > 0 and "政府信息公开" in names
    # The front desk's small talk and referrals are in the knowledge base but are no topic to browse.
    desk = {e.category for e in await app.services.kb.entries(status="published") if e.kind in DESK_KINDS}
    assert {"问候", "闲聊", "其他部门事项"} <= desk and not desk & set(names)
    data = await (await client.get("/api/entries", params={"category": "机构信息"})).json()
    ids = [e["id"] for e in data["entries"]]
    assert "faq-bureau-002" in ids
    await expect_error(await client.get("/api/entries"), 400, "missing_category")
    empty = await (await client.get("/api/entries", params={"category": "没有这个分类"})).json()
    assert empty["entries"] == []


async def test_entry_detail(client: TestClient, app: App) -> None:
    faq = await (await client.get("/api/entries/faq-bureau-002")).json()
    assert faq["kind"] == "faq" and "0591" in faq["answer"] and faq["source_line"].startswith("来源：")
    guide = await (await client.get("/api/entries/guide-laundry-filing")).json()
    assert guide["kind"] == "guide" and guide["sections"][0]["name"] == "事项名称"
    clause_id = next(e.id for e in await app.services.kb.entries(kind="clause", limit=1))
    resp = await client.get("/api/entries/" + clause_id.replace("/", "%2F").replace("#", "%23"))
    assert resp.status == 200 and (await resp.json())["id"] == clause_id
    await expect_error(await client.get("/api/entries/no-such-entry"), 404, "unknown_entry")
    await app.services.kb.set_status("faq-bureau-002", "expired")
    await expect_error(await client.get("/api/entries/faq-bureau-002"), 404, "unknown_entry")


# -- the web channel and start_web ----------------------------------------------------------------------
async def test_web_channel_stores_notices_and_skips_staff_replies(client: TestClient, app: App) -> None:
    app.registry.add(WebChannel(app.conversations))
    reply = await hand_over(client)
    last = (await history(client))[-1]["id"]
    await app.tickets.close(reply["ticket_id"], "alice")
    assert await app.outbox.deliver_due() == 1
    (note,) = await history(client, after=last)
    assert note["author"] == "bot" and "关闭" in note["text"]
    other = await hand_over(client, ESCALATED, OTHER)
    await app.tickets.reply(other["ticket_id"], "alice", "已答复")
    assert await app.outbox.deliver_due() == 1
    assert [m["author"] for m in await history(client, OTHER)].count("staff") == 1  # stored once


async def test_start_web_serves_everything_and_stops(app: App) -> None:
    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.extra_routes.append(web.post("/telegram/webhook", webhook))
    app.services.settings = app.settings.replace("web", port=0)
    url = await start_web(app)
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
    assert "web" in app.registry.names() and app.outbox._task is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "healthz") as resp:
            assert resp.status == 200 and "web" in (await resp.json())["channels"]
        async with http.post(url + "telegram/webhook", json={}) as resp:
            assert resp.status == 200
        async with http.post(url + "api/ask", json={"token": TOKEN, "question": ANSWERED}) as resp:
            assert resp.status == 200
    await app.close()
    assert "web" not in app.registry.names()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url + "healthz")


async def test_visitor_message_shape_matches_core(app: App) -> None:
    """The web visitor is IncomingMessage(channel="web", chat_ref=token, user_ref=token)."""
    c = await make_client(app)
    try:
        await ask(c, ANSWERED)
    finally:
        await c.close()
    rows = await app.conversations.history("web", TOKEN, TOKEN)
    assert len(rows) == 2
    direct = await app.conversations.handle(IncomingMessage("web", TOKEN, TOKEN, SUGGESTED))
    assert direct[0].kind == "suggestions"


async def test_typed_commands_work_like_buttons(client: TestClient, app: App) -> None:
    escalated = await hand_over(client)
    (status,) = (await ask(client, "/status"))["replies"]
    assert f"#{escalated['ticket_id']}" in status["text"]
    (cancel,) = (await ask(client, " /cancel "))["replies"]
    assert "撤回" in cancel["text"] and await app.tickets.queue() == []
    (human,) = (await ask(client, "/HUMAN"))["replies"]
    assert human["kind"] == "escalated"

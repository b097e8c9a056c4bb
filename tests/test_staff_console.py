"""The staff console: login, sessions and CSRF, the queue and tickets, knowledge editing, try, overview."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import App
from bot.messages import IncomingMessage
from bot.staff_accounts import (
    StaffAccountError,
    authenticate,
    check_name,
    create_account,
    hash_token,
    read_password,
    session_for,
)
from bot.stats import overview
from knowledge.models import StaffAccount, StaffSession, utcnow
from tests.staff_fixtures import (
    CHEAP,
    NAME,
    PASSWORD,
    RecordingChannel,
    console,
    hand_over,
    login,
    login_token,
)

ESCALATED = "会议室周末能借用吗"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    await create_account(app.services.sessions, NAME, PASSWORD, hasher=CHEAP)
    async with console(app) as c:
        yield c


async def escalate(
    app: App, channel: str = "web", chat: str = "visitor-token-0001", text: str = ESCALATED
) -> int:
    """A user on ``channel`` asks something the bot cannot answer, then asks for a person (转人工);
    return the ticket number."""
    replies = await app.conversations.handle(
        IncomingMessage(channel, chat, chat, text, display_name=f"{channel}用户")
    )
    assert replies[-1].kind == "no_answer", replies
    replies = await app.conversations.handle(
        IncomingMessage(channel, chat, chat, "转人工", display_name=f"{channel}用户")
    )
    assert replies[-1].kind == "escalated", replies
    assert replies[-1].ticket_id is not None
    return replies[-1].ticket_id


async def post(client: TestClient, path: str, csrf: str, **data: str):
    return await client.post(path, data={"csrf": csrf, **data}, allow_redirects=False)


# -- access control -------------------------------------------------------------------------------------
PAGES = [
    "/console",
    "/console/overview",
    "/console/knowledge",
    "/console/knowledge/new",
    "/console/knowledge/e/faq-bureau-001",
    "/console/try?q=备案",
    "/console/tickets/1",
]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_need_a_session(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 403
    page = await resp.text()
    assert 'action="/console/login"' in page and "请先登录" in page


@pytest.mark.parametrize(
    "path", ["/console/api/me", "/console/api/queue", "/console/api/stats", "/console/api/try?q=x"]
)
async def test_api_needs_a_session(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"


async def test_posts_need_a_session(client: TestClient, app: App) -> None:
    ticket = await escalate(app)
    for path in (
        f"/console/tickets/{ticket}/reply",
        f"/console/tickets/{ticket}/close",
        "/console/knowledge/new",
        "/console/logout",
    ):
        resp = await client.post(path, data={"text": "hi", "csrf": "x"})
        assert resp.status == 403, path
    resp = await client.post(f"/console/api/tickets/{ticket}/reply", json={"text": "hi"})
    assert resp.status == 403
    assert (await app.tickets.get(ticket))[0].status == "open"


async def test_forged_or_expired_cookie_is_refused(client: TestClient, app: App) -> None:
    client.session.cookie_jar.update_cookies({"policybot_staff": "forged"})
    assert (await client.get("/console")).status == 403
    await login(client)
    async with app.services.sessions() as session, session.begin():
        for row in await session.scalars(select(StaffSession)):
            row.expires_at = utcnow() - timedelta(minutes=1)
    assert (await client.get("/console")).status == 403


# -- login and logout -----------------------------------------------------------------------------------
async def test_login_cookie_and_stored_session(client: TestClient, app: App) -> None:
    page = await (await client.get("/console/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = await client.post(
        "/console/login", data={"csrf": token, "name": NAME, "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    cookie = resp.cookies["policybot_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
    async with app.services.sessions() as session:
        (stored,) = list(await session.scalars(select(StaffSession)))
    assert stored.token_hash == hashlib.sha256(cookie.value.encode()).hexdigest() != cookie.value
    queue = await client.get("/console")
    assert queue.status == 200 and f"已登录：{NAME}" in await queue.text()


async def test_login_failures(client: TestClient) -> None:
    wrong = await client.post(
        "/console/login", data={"csrf": await login_token(client), "name": NAME, "password": "nope-nope"}
    )
    assert wrong.status == 401 and "账号或密码不正确" in await wrong.text()
    assert f'value="{NAME}"' in await wrong.text()  # the name is kept in the form
    unknown = await client.post(
        "/console/login", data={"csrf": await login_token(client), "name": "nobody", "password": PASSWORD}
    )
    assert unknown.status == 401
    empty = await client.post(
        "/console/login", data={"csrf": await login_token(client), "name": "", "password": ""}
    )
    assert empty.status == 401
    await login_token(client)
    forged = await client.post("/console/login", data={"csrf": "forged", "name": NAME, "password": PASSWORD})
    assert forged.status == 403 and "policybot_staff" not in forged.cookies
    assert (await client.get("/console")).status == 403


async def test_login_is_rate_limited(client: TestClient) -> None:
    statuses = []
    for _ in range(12):
        token = await login_token(client)
        resp = await client.post(
            "/console/login", data={"csrf": token, "name": NAME, "password": "wrong-password"}
        )
        statuses.append(resp.status)
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429


async def test_logout_ends_the_session(client: TestClient, app: App) -> None:
    csrf = await login(client)
    assert (await post(client, "/console/logout", "wrong")).status == 403
    resp = await post(client, "/console/logout", csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    async with app.services.sessions() as session:
        assert list(await session.scalars(select(StaffSession))) == []
    assert (await client.get("/console")).status == 403


async def test_csrf_is_checked_on_every_post(client: TestClient, app: App) -> None:
    ticket = await escalate(app)
    csrf = await login(client)
    assert (await client.post(f"/console/tickets/{ticket}/claim", data={})).status == 403
    assert (await post(client, f"/console/tickets/{ticket}/claim", "not-the-token")).status == 403
    cross = await client.post(
        f"/console/tickets/{ticket}/claim",
        data={"csrf": csrf},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert cross.status == 403
    api = await client.post(f"/console/api/tickets/{ticket}/reply", json={"text": "hi"})
    assert api.status == 403 and (await api.json())["error"] == "forbidden"
    assert (await app.tickets.get(ticket))[0].status == "open"
    ok = await post(client, f"/console/tickets/{ticket}/claim", csrf)
    assert ok.status == 303
    assert (await app.tickets.get(ticket))[0].claimed_by == NAME


async def test_console_security_headers(client: TestClient) -> None:
    await login(client)
    resp = await client.get("/console")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    # One script, from this site (live updates); nothing inline.
    assert re.findall(r"<script[^>]*>", await resp.text()) == ['<script src="/static/console.js" defer>']


# -- the queue and tickets ------------------------------------------------------------------------------
async def test_queue_has_every_channel_oldest_first(client: TestClient, app: App) -> None:
    ids = [
        await escalate(app, "web", "visitor-token-0001", "网页上的问题：会议室能借吗"),
        await escalate(app, "telegram", "12345", "电报上的问题：会议室能借吗"),
        await escalate(app, "terminal", "local", "终端里的问题：会议室能借吗"),
    ]
    await login(client)
    page = await (await client.get("/console")).text()
    positions = [page.index(f'href="/console/tickets/{i}"') for i in ids]
    assert positions == sorted(positions)
    for word in ("网页", "Telegram", "终端", "分钟"):
        assert word in page
    data = await (await client.get("/console/api/queue")).json()
    assert [t["ticket_id"] for t in data["tickets"]] == ids
    assert [t["channel"] for t in data["tickets"]] == ["web", "telegram", "terminal"]


async def test_claim_reply_close_and_the_user_gets_the_reply(client: TestClient, app: App) -> None:
    telegram = RecordingChannel("telegram")
    app.registry.add(telegram)
    ticket = await escalate(app, "telegram", "777", "我想借会议室开年会")
    csrf = await login(client)
    assert (
        (await post(client, f"/console/tickets/{ticket}/claim", csrf))
        .headers["Location"]
        .endswith("done=claimed")
    )
    resp = await post(client, f"/console/tickets/{ticket}/reply", csrf, text="明天晴，<i>注意防晒</i>。")
    assert resp.status == 303
    page = await (await client.get(resp.headers["Location"])).text()
    assert "答复已发送" in page and "&lt;i&gt;注意防晒&lt;/i&gt;" in page and "<i>注意防晒" not in page
    await app.outbox.deliver_due()
    ((chat, reply),) = [s for s in telegram.sent if s[1].kind == "staff_reply"]
    assert chat == "777" and "明天晴" in reply.text and reply.ticket_id == ticket
    assert (await post(client, f"/console/tickets/{ticket}/close", csrf)).status == 303
    assert (await app.tickets.get(ticket))[0].status == "closed"
    again = await post(client, f"/console/tickets/{ticket}/reply", csrf, text="再补充一句")
    assert again.status == 409 and "已关闭" in await again.text()
    assert (await post(client, f"/console/tickets/{ticket}/claim", csrf)).status == 409


async def test_web_visitor_sees_the_console_reply(client: TestClient, app: App) -> None:
    ticket = await escalate(app, "web", "visitor-token-0009")
    csrf = await login(client)
    await post(client, f"/console/tickets/{ticket}/reply", csrf, text="您好，已为您查询。")
    resp = await client.get("/api/conversations/visitor-token-0009")
    messages = (await resp.json())["messages"]
    assert messages[-1]["author"] == "staff" and messages[-1]["text"] == "您好，已为您查询。"


async def test_ticket_bad_input(client: TestClient, app: App) -> None:
    ticket = await escalate(app)
    csrf = await login(client)
    assert (await client.get("/console/tickets/999")).status == 404
    assert (await client.get("/console/tickets/abc")).status == 404
    empty = await post(client, f"/console/tickets/{ticket}/reply", csrf, text="   ")
    assert empty.status == 409 and "不能为空" in await empty.text()
    long = await post(client, f"/console/tickets/{ticket}/reply", csrf, text="长" * 4001)
    assert long.status == 409
    assert (await post(client, "/console/tickets/999/reply", csrf, text="hi")).status == 404
    assert (await client.get(f"/console/tickets/{ticket}/reply")).status == 405


async def test_save_as_new_faq_answers_the_next_user(client: TestClient, app: App) -> None:
    question = "商务局食堂对外开放吗"
    ticket = await hand_over(app, question)
    csrf = await login(client)
    early = await post(client, f"/console/tickets/{ticket}/save", csrf, mode="new")
    assert early.status == 409 and "请先回复" in await early.text()
    await post(client, f"/console/tickets/{ticket}/reply", csrf, text="机关食堂不对外开放。")
    resp = await post(client, f"/console/tickets/{ticket}/save", csrf, mode="new")
    assert resp.status == 303
    entry = await app.services.kb.get(f"staff-{ticket}")
    assert entry is not None and entry.answer == "机关食堂不对外开放。"
    decision = await app.services.qa.ask(question)
    assert decision.status == "answered" and decision.entry_id == f"staff-{ticket}"
    page = await (await client.get(f"/console/tickets/{ticket}")).text()
    assert f"staff-{ticket}" in page


async def test_save_as_alternate_of_a_candidate(client: TestClient, app: App) -> None:
    ticket = await hand_over(app, "备案的事情找谁问")
    candidates = (await app.tickets.get(ticket))[0].candidates
    assert candidates, "the escalated question should have candidates"
    csrf = await login(client)
    page = await (await client.get(f"/console/tickets/{ticket}")).text()
    assert "存为它的另一种问法" in page
    resp = await post(client, f"/console/tickets/{ticket}/save", csrf, mode="alternate", candidate="0")
    assert resp.status == 303
    entry = await app.services.kb.get(candidates[0]["entry_id"])
    assert entry is not None and "备案的事情找谁问" in entry.alternates
    bad = await post(client, f"/console/tickets/{ticket}/save", csrf, mode="alternate", candidate="99")
    assert bad.status == 409
    assert (await post(client, f"/console/tickets/{ticket}/save", csrf, mode="whatever")).status == 409


# -- knowledge ------------------------------------------------------------------------------------------
async def test_knowledge_list_and_search(client: TestClient) -> None:
    await login(client)
    listing = await (await client.get("/console/knowledge", params={"kind": "guide"})).text()
    assert "/console/knowledge/e/guide-laundry-filing" in listing and "faq-bureau-001" not in listing
    found = await (await client.get("/console/knowledge", params={"q": "商务局电话"})).text()
    assert "/console/knowledge/e/faq-bureau-002" in found and "与机器人相同的匹配器" in found
    clause = await client.get("/console/knowledge/e/" + quote("doc-7a78d0a404/2.5.1", safe=""))
    assert clause.status in (200, 404)
    assert (await client.get("/console/knowledge/e/no-such-entry")).status == 404


async def test_edit_faq_reaches_the_bot_at_once(client: TestClient, app: App) -> None:
    csrf = await login(client)
    entry = await app.services.kb.get("faq-bureau-002")
    assert entry is not None
    resp = await post(
        client,
        "/console/knowledge/e/faq-bureau-002",
        csrf,
        question=entry.question,
        alternates="\n".join([*entry.alternates, "局里座机号码是啥"]),
        answer="新的电话：0591-00000000（测试）。",
        category=entry.category,
    )
    assert resp.status == 303 and resp.headers["Location"].endswith("done=saved")
    decision = await app.services.qa.ask("局里座机号码是啥")
    assert decision.entry_id == "faq-bureau-002" and decision.answer == "新的电话：0591-00000000（测试）。"
    bad = await post(
        client, "/console/knowledge/e/faq-bureau-002", csrf, question="", answer="", category="x"
    )
    assert bad.status == 400 and "non-empty question and answer" in await bad.text()


async def test_edit_guide_sections_keeps_children(client: TestClient, app: App) -> None:
    kb = app.services.kb
    everything = await kb.entries(limit=10_000)
    parent = next(
        e for e in everything if e.kind == "policy" and any(c.parent_id == e.id for c in everything)
    )
    children = [c.id for c in everything if c.parent_id == parent.id]
    csrf = await login(client)
    form = {"title": parent.title + "（修订）", "category": parent.category, "answer": parent.answer}
    names = [n for n, _ in parent.sections] + ["补充说明"]
    texts = [t for _, t in parent.sections] + ["工作人员补充的说明。"]
    data = [
        ("csrf", csrf),
        *form.items(),
        *[("section_name", n) for n in names],
        *[("section_text", t) for t in texts],
    ]
    resp = await client.post(
        "/console/knowledge/e/" + quote(parent.id, safe=""), data=data, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    updated = await kb.get(parent.id)
    assert updated is not None and updated.title.endswith("（修订）")
    assert updated.sections[-1] == ["补充说明", "工作人员补充的说明。"]
    assert set(await kb.get_many(children)) == set(children)
    half = [("csrf", csrf), ("title", "x"), ("section_name", "只有名字"), ("section_text", "")]
    bad = await client.post("/console/knowledge/e/" + quote(parent.id, safe=""), data=half)
    assert bad.status == 400 and "名称和内容" in await bad.text()


async def test_add_faq(client: TestClient, app: App) -> None:
    csrf = await login(client)
    page = await (await client.get("/console/knowledge/new")).text()
    assert 'name="question"' in page
    resp = await post(
        client,
        "/console/knowledge/new",
        csrf,
        id="faq-test-parking",
        question="商务局有访客停车位吗",
        alternates="去商务局能停车吗",
        answer="大院内有少量访客车位。",
        category="机构信息",
    )
    assert resp.status == 303
    decision = await app.services.qa.ask("去商务局能停车吗")
    assert decision.status == "answered" and decision.entry_id == "faq-test-parking"
    dup = await post(client, "/console/knowledge/new", csrf, id="faq-test-parking", question="q", answer="a")
    assert dup.status == 409 and "已存在" in await dup.text()
    bad = await post(client, "/console/knowledge/new", csrf, question="只有问题", answer="")
    assert bad.status == 400
    auto = await post(client, "/console/knowledge/new", csrf, question="商务局几点下班", answer="17:30。")
    assert auto.status == 303 and "faq-staff-" in auto.headers["Location"]


async def test_retire_and_republish(client: TestClient, app: App) -> None:
    csrf = await login(client)
    assert (await app.services.qa.ask("商务局电话")).entry_id == "faq-bureau-002"
    resp = await post(client, "/console/knowledge/status", csrf, id="faq-bureau-002", status="expired")
    assert resp.status == 303
    assert (await app.services.qa.ask("商务局电话")).entry_id != "faq-bureau-002"
    page = await (await client.get("/console/knowledge/e/faq-bureau-002")).text()
    assert "已停用" in page and "重新发布" in page
    await post(client, "/console/knowledge/status", csrf, id="faq-bureau-002", status="published")
    assert (await app.services.qa.ask("商务局电话")).entry_id == "faq-bureau-002"
    assert (
        await post(client, "/console/knowledge/status", csrf, id="faq-bureau-002", status="deleted")
    ).status == 400
    assert (await post(client, "/console/knowledge/status", csrf, id="nope", status="expired")).status == 404


# -- try and overview -----------------------------------------------------------------------------------
async def test_try_a_question(client: TestClient) -> None:
    await login(client)
    page = await (await client.get("/console/try", params={"q": "鼓楼区商务局的电话是多少？"})).text()
    assert "直接回答" in page and "faq-bureau-002" in page and "关键词覆盖" in page and "BM25" in page
    data = await (await client.get("/console/api/try", params={"q": "备案"})).json()
    assert data["decision"]["status"] == "suggested"
    assert {"coverage", "key_coverage", "phrase", "question_sim", "bm25", "score"} <= set(
        data["candidates"][0]
    )
    assert (await client.get("/console/api/try")).status == 400
    assert (await client.get("/console/try")).status == 200


async def test_overview_numbers(client: TestClient, app: App) -> None:
    # Asked in full: 商务局电话 sits near the calibrated decision's line (answered or only offered).
    user = IncomingMessage("web", "visitor-token-0001", "visitor-token-0001", "鼓楼区商务局的电话是多少？")
    await app.conversations.handle(user)
    await app.conversations.handle(IncomingMessage("web", "visitor-token-0002", "visitor-token-0002", "备案"))
    first = await escalate(app, chat="visitor-token-0003")
    await escalate(app, chat="visitor-token-0004")
    await app.tickets.reply(first, "someone", "答复")
    csrf = await login(client)
    assert csrf
    data = await (await client.get("/console/api/stats")).json()
    assert (
        data["questions"] == 4 and data["answered"] == 1 and data["suggested"] == 1 and data["escalated"] == 2
    )
    assert data["tickets_opened"] == 2 and data["staff_answered"] == 1 and data["open_tickets"] == 1
    assert data["median_response_minutes"] is not None and data["past_sla"] == 0
    assert data["unanswered"][0] == {"question": ESCALATED, "count": 2}
    assert len(data["days"]) == 14 and data["days"][-1]["questions"] == 4
    assert data["shares"]["answered"] == 0.25
    page = await (await client.get("/console/overview")).text()
    assert "近 14 天提问" in page and "25%" in page and ESCALATED in page
    later = await overview(app.tickets, now=utcnow() + timedelta(days=7))
    assert later.past_sla == 1


async def test_console_api_reply(client: TestClient, app: App) -> None:
    ticket = await escalate(app)
    csrf = await login(client)
    headers = {"X-CSRF-Token": csrf}
    resp = await client.post(
        f"/console/api/tickets/{ticket}/reply", json={"text": "API 答复"}, headers=headers
    )
    assert resp.status == 200 and (await resp.json())["status"] == "answered"
    bad = await client.post(f"/console/api/tickets/{ticket}/reply", data=b"{", headers=headers)
    assert bad.status == 400 and (await bad.json())["error"] == "bad_json"
    missing = await client.post(f"/console/api/tickets/{ticket}/reply", json={}, headers=headers)
    assert (await missing.json())["error"] == "missing_field"
    unknown = await client.post("/console/api/tickets/999/reply", json={"text": "x"}, headers=headers)
    assert unknown.status == 404
    await app.tickets.close(ticket, NAME)
    closed = await client.post(f"/console/api/tickets/{ticket}/reply", json={"text": "x"}, headers=headers)
    assert closed.status == 409
    assert (await client.get(f"/console/api/tickets/{ticket}/reply")).status == 405


# -- XSS ------------------------------------------------------------------------------------------------
async def test_xss_is_escaped_everywhere_in_the_console(client: TestClient, app: App) -> None:
    resp = await client.post("/api/ask", json={"token": "visitor-token-xss1", "question": XSS})
    assert resp.status == 200
    resp = await client.post("/api/ask", json={"token": "visitor-token-xss1", "question": "转人工"})
    assert resp.status == 200
    ticket = (await app.tickets.queue())[0].ticket.id
    csrf = await login(client)
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    for path in (
        "/console",
        f"/console/tickets/{ticket}",
        "/console/overview",
        f"/console/try?q={quote(XSS)}",
    ):
        page = await (await client.get(path)).text()
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert escaped in page or "&lt;script&gt;" in page, path
    await post(
        client,
        "/console/knowledge/new",
        csrf,
        id="faq-xss",
        question=XSS,
        answer=XSS + "答案",
        category="<b>分类</b>",
    )
    page = await (await client.get("/console/knowledge/e/faq-xss")).text()
    assert "<script>alert" not in page and "&lt;b&gt;分类&lt;/b&gt;" in page
    listing = await (await client.get("/console/knowledge", params={"category": "<b>分类</b>"})).text()
    assert "<b>分类</b>" not in listing


# -- accounts (bot.staff_accounts) ----------------------------------------------------------------------
def test_read_password_states_the_rule_before_asking(capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(capsys.readouterr().err + text)
        return "same-password"

    assert read_password({}, prompt=prompt) == "same-password"
    assert asked[0].startswith("Choose a password of 8 to 1024 characters") and asked[0].endswith(
        "Password: "
    )
    assert asked[1] == "Repeat password: "  # one language throughout


def test_read_password() -> None:
    assert read_password({"POLICYBOT_STAFF_PASSWORD": "long-enough"}) == "long-enough"
    with pytest.raises(StaffAccountError, match="too short"):
        read_password({"POLICYBOT_STAFF_PASSWORD": "short"})
    answers = iter(["first-password", "other-password"])
    with pytest.raises(StaffAccountError, match="do not match"):
        read_password({}, prompt=lambda _: next(answers))
    with pytest.raises(StaffAccountError, match="empty"):
        read_password({}, prompt=lambda _: "")

    def no_terminal(_: str) -> str:
        raise EOFError

    with pytest.raises(StaffAccountError, match="POLICYBOT_STAFF_PASSWORD"):
        read_password({}, prompt=no_terminal)
    same = iter(["same-password", "same-password"])
    assert read_password({}, prompt=lambda _: next(same)) == "same-password"


async def test_accounts(app: App) -> None:
    sessions = app.services.sessions
    account = await create_account(sessions, "zhang_san", "password-1", 42, hasher=CHEAP)
    assert account.password_hash.startswith("$argon2id$") and account.telegram_user_id == 42
    with pytest.raises(StaffAccountError, match="already exists"):
        await create_account(sessions, "zhang_san", "password-2", hasher=CHEAP)
    for bad in ("", "has space", "x" * 101, "semi;colon"):
        with pytest.raises(StaffAccountError, match="invalid account name"):
            check_name(bad)
    assert check_name("张三") == "张三"
    assert (await authenticate(sessions, "zhang_san", "password-1")) is not None
    assert await authenticate(sessions, "zhang_san", "password-2") is None
    assert await authenticate(sessions, "nobody", "password-1") is None
    async with sessions() as session, session.begin():
        row = await session.scalar(select(StaffAccount).where(StaffAccount.name == "zhang_san"))
        assert row is not None
        row.active = False
    assert await authenticate(sessions, "zhang_san", "password-1") is None
    assert await session_for(sessions, "") is None
    assert hash_token("t", "secret") != hash_token("t")


def test_cli_staff_add(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policybot.cli import main

    monkeypatch.setenv("POLICYBOT_STAFF_PASSWORD", "cli-password")
    assert main(["--db", db_url, "staff", "add", "cli_user"]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["--db", db_url, "staff", "add", "cli_user"]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setenv("POLICYBOT_STAFF_PASSWORD", "short")
    assert main(["--db", db_url, "staff", "add", "other"]) == 2

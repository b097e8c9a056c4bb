"""Issue 15 point 5: 留言 with a contact on the web, and the ticket reply page ``/t/{ticket}-{code}``:
contact validation, the code (secrets-based, stored hashed), the page for the right code only (a wrong
code, another ticket's code and an unknown ticket look the same), its rate limit, and the contact shown
masked everywhere (lists, export, staff chat, logs) but the staff's ticket page."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from bot.contact import CODE_LENGTH, ContactError, TicketAccessService, parse_contact
from bot.limits import per_minute
from bot.messages import IncomingMessage
from bot.staff_accounts import create_account
from handlers.web import build_web_app
from handlers.web_ticket_page import PAGE_LIMITER
from knowledge.models import Message, OutboxItem, Ticket, TicketAccess
from knowledge.segment import Lexicon
from tests.test_staff_console import CHEAP, NAME, PASSWORD, login

TOKEN = "ticket-page-visitor-1"
OTHER = "ticket-page-visitor-2"
PHONE = "13812345678"
MASKED_PHONE = "138****5678"
PAGE = re.compile(r"/t/([0-9]+)-([a-z0-9]+)")


@pytest.fixture
async def staffed(settings: Settings, lexicon: Lexicon) -> AsyncIterator[App]:
    """The core with a Telegram staff chat configured (its posts wait in the outbox)."""
    s = settings.replace("telegram", token="123:fake").replace("staff", chat_id=-1001)
    app = await App.create(s, lexicon=lexicon, outbox_poll=0.05)
    try:
        await app.services.load_default_if_empty()
        await create_account(app.services.sessions, NAME, PASSWORD, hasher=CHEAP)
        yield app
    finally:
        await app.close()


@pytest.fixture
async def client(staffed: App) -> AsyncIterator[TestClient]:
    c = TestClient(TestServer(build_web_app(staffed)))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


def web(token: str = TOKEN) -> IncomingMessage:
    return IncomingMessage("web", token, token, display_name="网页访客")


async def count(app: App, model: type) -> int:
    async with app.services.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def leave(client: TestClient, token: str = TOKEN, **body: object) -> dict:
    resp = await client.post("/api/message", json={"token": token, **body})
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- contact validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13812345678", ("phone", "13812345678")),
        ("+86 138-1234-5678", ("phone", "13812345678")),
        ("008613812345678", ("phone", "13812345678")),
        ("１３８１２３４５６７８", ("phone", "13812345678")),  # full-width digits
        ("Li.Ming@Example.GOV.cn", ("email", "Li.Ming@example.gov.cn")),
        ("  ", ("", "")),
    ],
)
def test_contacts_that_are_accepted(given: str, stored: tuple[str, str]) -> None:
    assert parse_contact(given) == stored


@pytest.mark.parametrize(
    "bad",
    ["12345678901", "1381234567", "138123456789", "0591-87538464", "abc", "a@b", "@example.com", "a@@b.cn",
     "li ming@example.com", "x" * 250 + "@example.com", "13812345678 或 a@b.cn"],
)  # fmt: skip
def test_contacts_that_are_refused(bad: str) -> None:
    with pytest.raises(ContactError):
        parse_contact(bad)


# -- 留言 and the code, in the core -----------------------------------------------------------------------
async def test_a_message_opens_a_ticket_with_the_contact_and_a_hashed_code(
    staffed: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="policybot")
    service = TicketAccessService(staffed.services.sessions, staffed.tickets)
    reply, code = await service.leave_message(web(), "我想预约周末借用会议室", f"+86 {PHONE}")
    assert code is not None and re.fullmatch(f"[a-z2-9]{{{CODE_LENGTH}}}", code)
    assert reply.kind == "escalated" and reply.ticket_id is not None
    assert MASKED_PHONE in reply.text and PHONE not in reply.text and code not in reply.text
    async with staffed.services.sessions() as s:
        ticket = await s.get(Ticket, reply.ticket_id)
        access = await s.get(TicketAccess, reply.ticket_id)
        texts = [m.text for m in await s.scalars(select(Message))]
        outbox = [str(o.payload) for o in await s.scalars(select(OutboxItem))]
    assert ticket is not None and (ticket.status, ticket.reason) == ("open", "user_request")
    assert access is not None and (access.contact_kind, access.contact) == ("phone", PHONE)
    assert access.code_hash == hashlib.sha256(code.encode()).hexdigest() and code not in access.code_hash
    assert not any(code in t for t in texts)  # the code is shown once and never stored
    assert any(MASKED_PHONE in o for o in outbox)  # the staff chat hears of it, masked
    assert not any(PHONE in o for o in outbox)
    assert not any(PHONE in r.getMessage() or PHONE in str(r.__dict__) for r in caplog.records)

    again, second = await service.leave_message(web(), "补充：大约二十人", "")  # joins the open ticket
    assert second is None and again.ticket_id == reply.ticket_id and "补充到工单" in again.text
    assert await count(staffed, Ticket) == 1


async def test_bad_input_stores_nothing(staffed: App) -> None:
    service = TicketAccessService(staffed.services.sessions, staffed.tickets)
    for text, contact, code in [("留言", "12345", "bad_contact"), ("  ", PHONE, "empty_message"),
                                ("长" * 2001, PHONE, "message_too_long")]:  # fmt: skip
        with pytest.raises(ContactError) as caught:
            await service.leave_message(web(), text, contact)
        assert caught.value.code == code
    assert await count(staffed, Ticket) == await count(staffed, TicketAccess) == 0
    assert await count(staffed, Message) == 0


async def test_the_page_opens_for_its_own_code_only(staffed: App) -> None:
    service = TicketAccessService(staffed.services.sessions, staffed.tickets)
    first, code1 = await service.leave_message(web(), "第一个留言", PHONE)
    second, code2 = await service.leave_message(web(OTHER), "第二个留言", "")
    assert first.ticket_id and second.ticket_id and code1 and code2
    await staffed.tickets.reply(first.ticket_id, "李科员", "可以借用，请提前一天登记。")
    page = await service.page(first.ticket_id, code1)
    assert page is not None and page.ticket.id == first.ticket_id and page.contact == MASKED_PHONE
    assert [m.author for m in page.messages] == ["user", "staff"]
    assert "可以借用" in page.messages[1].text
    assert await service.page(first.ticket_id, code2) is None  # another ticket's code
    assert await service.page(second.ticket_id, code1) is None
    assert await service.page(first.ticket_id, code1[:-1] + ("a" if code1[-1] != "a" else "b")) is None
    assert await service.page(999, code1) is None  # no such ticket: the same answer


# -- through the web --------------------------------------------------------------------------------------
async def test_message_endpoint_bad_input(staffed: App, client: TestClient) -> None:
    cases = [
        ({"token": TOKEN, "message": "留言", "contact": "12345"}, 400, "bad_contact"),
        ({"token": TOKEN, "message": "留言", "contact": "a@b"}, 400, "bad_contact"),
        ({"token": TOKEN, "message": ""}, 400, "empty_message"),
        ({"token": TOKEN, "message": "长" * 2001}, 400, "message_too_long"),
        ({"token": TOKEN, "message": 5}, 400, "wrong_type"),
        ({"token": TOKEN, "message": "留言", "contact": 13812345678}, 400, "wrong_type"),
        ({"token": TOKEN}, 400, "missing_field"),
        ({"token": "bad", "message": "留言"}, 400, "bad_token"),
    ]
    for body, status, code in cases:
        resp = await client.post("/api/message", json=body)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"] == code, body
    assert await count(staffed, Ticket) == await count(staffed, Message) == 0


async def test_leave_a_message_then_read_the_reply_from_another_browser(
    staffed: App, client: TestClient
) -> None:
    data = await leave(client, message="请问周末可以借用会议室吗？", contact=PHONE)
    ticket_id, url = data["ticket_id"], data["page"]["url"]
    assert data["reply"]["message_id"] is not None and MASKED_PHONE in data["reply"]["text"]
    (notice,) = data["notices"]
    assert url in notice["text"] and notice["message_id"] is None  # shown once, not stored
    path = url[url.index("/t/") :]
    history = await (await client.get(f"/api/conversations/{TOKEN}")).json()
    assert not any(path in m["text"] for m in history["messages"])

    second = await leave(client, message="补充：大约二十人")  # joins the open ticket: no new page
    assert second["ticket_id"] == ticket_id and second["page"] is None and second["notices"] == []
    await staffed.tickets.reply(ticket_id, "李科员", "可以借用，请提前一天到三楼登记。")
    async with TestClient(TestServer(build_web_app(staffed))) as other_browser:  # no token, no cookie
        resp = await other_browser.get(path)
        page = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert f"工单 #{ticket_id}" in page and "已答复" in page
    assert "补充：大约二十人" in page
    assert "请问周末可以借用会议室吗？" in page and "可以借用，请提前一天到三楼登记。" in page
    assert MASKED_PHONE in page and PHONE not in page


async def test_wrong_codes_get_the_same_404(staffed: App, client: TestClient) -> None:
    mine = PAGE.search((await leave(client, message="我的留言"))["page"]["url"])
    theirs = PAGE.search((await leave(client, OTHER, message="别人的留言"))["page"]["url"])
    assert mine and theirs
    ok = await client.get(f"/t/{mine.group(1)}-{mine.group(2)}")
    assert ok.status == 200
    bodies = []
    for path in [
        f"/t/{mine.group(1)}-{theirs.group(2)}",  # another ticket's code
        f"/t/{mine.group(1)}-{'a' * CODE_LENGTH}",  # a wrong code
        f"/t/99999-{mine.group(2)}",  # no such ticket
        "/t/not-a-code",
        f"/t/{mine.group(1)}",
    ]:
        resp = await client.get(path)
        assert resp.status == 404, path
        bodies.append(await resp.text())
    assert len(set(bodies)) == 1  # nothing tells whether the ticket exists
    assert "我的留言" not in bodies[0]


async def test_the_page_is_rate_limited(staffed: App) -> None:
    """Right or wrong, requests for ticket pages count against the client address's limit."""
    assert staffed.settings.desk.reply_page_per_minute == 10
    app = build_web_app(staffed)
    app[PAGE_LIMITER] = per_minute("ticket-page", 3, staffed.limits)
    async with TestClient(TestServer(app)) as c:
        statuses = [(await c.get(f"/t/1-{'a' * CODE_LENGTH}")).status for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]


async def test_human_on_the_web_shows_the_page_once(staffed: App, client: TestClient) -> None:
    resp = await client.post("/api/action", json={"token": TOKEN, "action": "human"})
    data = await resp.json()
    assert data["reply"]["kind"] == "escalated"
    (notice,) = data["notices"]
    found = PAGE.search(notice["text"])
    assert found and int(found.group(1)) == data["reply"]["ticket_id"]
    assert (await client.get(found.group(0))).status == 200
    again = await (await client.post("/api/action", json={"token": TOKEN, "action": "human"})).json()
    assert again["notices"] == []  # the ticket is open: no new page


async def test_the_contact_is_masked_everywhere_but_the_ticket_page(staffed: App, client: TestClient) -> None:
    data = await leave(client, message="请联系我：会议室借用", contact=PHONE)
    ticket_id = data["ticket_id"]
    await login(client)
    listing = await (await client.get("/console/tickets?status=all")).text()
    assert MASKED_PHONE in listing and PHONE not in listing
    export = (await (await client.get("/console/export.csv")).read()).decode("utf-8")
    assert MASKED_PHONE in export and PHONE not in export
    ticket_page = await (await client.get(f"/console/tickets/{ticket_id}")).text()
    assert PHONE in ticket_page
    detail = await (await client.get(f"/console/api/tickets/{ticket_id}")).json()
    assert detail["contact"] == PHONE

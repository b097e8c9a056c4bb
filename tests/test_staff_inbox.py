"""The staff inbox through the console's JSON API: offices and roles, accounts, routing, the queue with
its office first, reassigning, unclaiming, notes, answering with an entry, merging, search and filters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bot.app import App
from bot.messages import IncomingMessage
from bot.staff_accounts import create_account, list_accounts
from policybot.cli import main
from tests.staff_fixtures import CHEAP, PASSWORD, RecordingChannel, console, hand_over, login

# Questions handed to staff, and the office each goes to (and why).
CLAUSE_Q = "及时更新并公开办事方式、办事条件等信息"  # a clause whose 责任科室 is 外资与外经科（行政审批科）
HEALTH_Q = "公共卫生知识普及怎么做"  # a clause of 市场秩序科
CATEGORY_Q = "外商投资企业年报怎么报"  # an FAQ of category 外贸外资
NOWHERE_Q = "今天天气怎么样"  # no candidate: the default office


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    sessions = app.services.sessions
    await create_account(sessions, "admin1", PASSWORD, office="办公室", role="admin", hasher=CHEAP)
    await create_account(sessions, "editor1", PASSWORD, office="办公室", role="editor", hasher=CHEAP)
    await create_account(sessions, "agent-wj", PASSWORD, office="外资与外经科", role="agent", hasher=CHEAP)
    await create_account(sessions, "agent-sc", PASSWORD, office="市场秩序科", role="agent", hasher=CHEAP)
    async with console(app) as c:
        yield c


async def api(client: TestClient, csrf: str, path: str, body: dict | None = None, status: int = 200) -> dict:
    resp = await client.post(path, json=body or {}, headers={"X-CSRF-Token": csrf})
    data = await resp.json()
    assert resp.status == status, data
    return data


# -- routing --------------------------------------------------------------------------------------------
async def test_a_new_ticket_goes_to_the_office_of_its_best_candidate(app: App, client: TestClient) -> None:
    ids = {
        q: await hand_over(app, q, f"visitor-{i:04d}-abcdefgh")
        for i, q in enumerate([CLAUSE_Q, HEALTH_Q, CATEGORY_Q, NOWHERE_Q])
    }
    await login(client, "admin1")
    got = {}
    for q, tid in ids.items():
        data = await (await client.get(f"/console/api/tickets/{tid}")).json()
        got[q] = (data["office"], data["route_reason"])
    assert got[CLAUSE_Q][0] == "外资与外经科" and "责任科室：外资与外经科（行政审批科）" in got[CLAUSE_Q][1]
    assert got[HEALTH_Q][0] == "市场秩序科" and "条款的责任科室：市场秩序科" in got[HEALTH_Q][1]
    assert got[CATEGORY_Q][0] == "外资与外经科" and "「外贸外资」类" in got[CATEGORY_Q][1]
    assert got[NOWHERE_Q][0] == "办公室" and "默认科室" in got[NOWHERE_Q][1]
    # The ticket page shows the office and why.
    page = await (await client.get(f"/console/tickets/{ids[CLAUSE_Q]}")).text()
    assert "科室：外资与外经科" in page and "外资与外经科（行政审批科）" in page


async def test_the_config_map_and_default_office_route_too(app: App, client: TestClient) -> None:
    app.tickets.staff = app.settings.staff.__class__(
        offices=["办公室", "外资与外经科", "市场秩序科"],
        default_office="市场秩序科",
        category_offices={"外贸外资": "办公室"},
    )
    a = await hand_over(app, CATEGORY_Q, "visitor-map-0001-abcdefgh")
    b = await hand_over(app, NOWHERE_Q, "visitor-map-0002-abcdefgh")
    assert (await app.tickets.get(a))[0].office == "办公室"
    assert (await app.tickets.get(b))[0].office == "市场秩序科"


async def test_agents_see_their_office_first(app: App, client: TestClient) -> None:
    first = await hand_over(app, NOWHERE_Q, "visitor-q-0001-abcdefgh")  # 办公室, oldest
    mine = await hand_over(app, HEALTH_Q, "visitor-q-0002-abcdefgh")  # 市场秩序科
    await login(client, "agent-sc")
    queue = (await (await client.get("/console/api/queue")).json())["tickets"]
    assert [t["ticket_id"] for t in queue] == [mine, first]
    await login(client, "admin1")  # 办公室
    queue = (await (await client.get("/console/api/queue")).json())["tickets"]
    assert [t["ticket_id"] for t in queue] == [first, mine]
    page = await (await client.get("/console")).text()
    assert "本科室（办公室）1 张" in page


# -- reassign, unclaim, notes ---------------------------------------------------------------------------
async def test_reassign_to_an_office_or_a_colleague_and_unclaim(app: App, client: TestClient) -> None:
    tid = await hand_over(app, NOWHERE_Q, "visitor-r-0001-abcdefgh")
    csrf = await login(client, "admin1")
    data = await api(client, csrf, f"/console/api/tickets/{tid}/assign", {"office": "市场秩序科"})
    assert data["office"] == "市场秩序科" and data["status"] == "open"
    data = await api(client, csrf, f"/console/api/tickets/{tid}/assign", {"colleague": "agent-wj"})
    assert (data["office"], data["claimed_by"], data["status"]) == ("外资与外经科", "agent-wj", "claimed")
    await api(client, csrf, f"/console/api/tickets/{tid}/assign", {"office": "火星科"}, status=409)
    await api(client, csrf, f"/console/api/tickets/{tid}/assign", {"colleague": "nobody"}, status=409)
    data = await api(client, csrf, f"/console/api/tickets/{tid}/unclaim")
    assert (data["status"], data["claimed_by"]) == ("open", "")
    await api(client, csrf, f"/console/api/tickets/{tid}/unclaim", status=409)  # not claimed any more
    await api(
        client,
        csrf,
        f"/console/api/tickets/{tid}/notes",
        {"text": "已电话联系企业，待其补充材料"},
        status=201,
    )
    await api(client, csrf, f"/console/api/tickets/{tid}/notes", {"text": "  "}, status=400)
    detail = await (await client.get(f"/console/api/tickets/{tid}")).json()
    notes = [n["text"] for n in detail["notes"]]
    assert "已电话联系企业，待其补充材料" in notes
    assert any("转交给科室 市场秩序科" in n for n in notes) and any("转交给同事 agent-wj" in n for n in notes)
    # Notes are internal: nothing of them reached the visitor's conversation.
    assert all("补充材料" not in m["text"] for m in detail["messages"])


async def test_every_state_change_needs_the_csrf_token(app: App, client: TestClient) -> None:
    tid = await hand_over(app, NOWHERE_Q, "visitor-c-0001-abcdefgh")
    other = await hand_over(app, NOWHERE_Q, "visitor-c-0002-abcdefgh")
    await login(client, "admin1")
    for path, body in [
        (f"/console/api/tickets/{tid}/claim", {}),
        (f"/console/api/tickets/{tid}/assign", {"office": "市场秩序科"}),
        (f"/console/api/tickets/{tid}/notes", {"text": "x"}),
        (f"/console/api/tickets/{tid}/merge", {"ticket_ids": [other]}),
        (f"/console/api/tickets/{tid}/answer-with-entry", {"entry_id": "faq-bureau-001"}),
        ("/console/api/accounts", {"name": "x1", "password": PASSWORD}),
        ("/console/api/accounts/agent-wj/disable", {}),
    ]:
        resp = await client.post(path, json=body, headers={"X-CSRF-Token": "wrong"})
        assert resp.status == 403, path
        resp = await client.post(path, json=body)
        assert resp.status == 403, path
    for form_path in (f"/console/tickets/{tid}/assign", f"/console/tickets/{tid}/note", "/console/admin"):
        resp = await client.post(form_path, data={"office": "市场秩序科", "text": "x"}, allow_redirects=False)
        assert resp.status == 403, form_path
    t, _ = await app.tickets.get(tid)
    assert (t.status, t.office, t.merged_into) == ("open", "办公室", None)
    assert await app.tickets.notes(tid) == []
    assert len(await list_accounts(app.services.sessions)) == 4


# -- answer with an entry, merge ------------------------------------------------------------------------
async def test_answer_with_an_entry_sends_its_answer_and_closes(app: App, client: TestClient) -> None:
    web = RecordingChannel("web")
    app.registry.add(web)
    tid = await hand_over(app, "商务局的电话号码", "visitor-a-0001-abcdefgh")
    csrf = await login(client, "agent-wj")
    await api(
        client, csrf, f"/console/api/tickets/{tid}/answer-with-entry", {"entry_id": "no-such"}, status=409
    )
    data = await api(
        client, csrf, f"/console/api/tickets/{tid}/answer-with-entry", {"entry_id": "faq-bureau-002"}
    )
    assert data["status"] == "closed"
    await app.outbox.deliver_due()
    sent = [r for _, r in web.sent if r.kind == "staff_reply"]
    entry = await app.services.kb.get("faq-bureau-002")
    assert len(sent) == 1 and entry.answer in sent[0].text and sent[0].source_line.startswith("来源：")
    ticket, _ = await app.tickets.get(tid)
    assert (ticket.status, ticket.answered_by) == ("closed", "agent-wj")
    # The page offers to keep the question as the entry's alternate phrasing.
    page = await (await client.get(f"/console/tickets/{tid}?done=answered_entry&entry=faq-bureau-002")).text()
    assert "的另一种问法" in page and 'name="entry_id" value="faq-bureau-002"' in page
    await api(
        client,
        csrf,
        f"/console/api/tickets/{tid}/answer-with-entry",
        {"entry_id": "faq-bureau-002"},
        status=409,
    )


async def test_merged_duplicates_each_get_the_one_reply_on_their_own_channel(
    app: App, client: TestClient
) -> None:
    web, tg = RecordingChannel("web"), RecordingChannel("telegram")
    app.registry.add(web)
    app.registry.add(tg)
    first = await hand_over(app, "进口汽车平行进口怎么办理", "visitor-m-0001-abcdefgh")
    reply = await app.conversations.escalate(
        IncomingMessage("telegram", "5551", "5551", ""), text="平行进口车怎么申请"
    )
    second = reply.ticket_id
    third = await hand_over(app, "平行进口汽车试点办理流程", "visitor-m-0003-abcdefgh")
    csrf = await login(client, "admin1")
    data = await api(client, csrf, f"/console/api/tickets/{first}/merge", {"ticket_ids": [second, third]})
    assert data["merged"] == [second, third]
    queue = [t["ticket_id"] for t in (await (await client.get("/console/api/queue")).json())["tickets"]]
    assert queue == [first]
    await api(client, csrf, f"/console/api/tickets/{second}/merge", {"ticket_ids": [first]}, status=409)
    await api(client, csrf, f"/console/api/tickets/{first}/merge", {"ticket_ids": ["x"]}, status=400)
    resp = await client.post(
        f"/console/api/tickets/{first}/reply",
        json={"text": "平行进口汽车请咨询市商务局。"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200
    await app.outbox.deliver_due()
    web_replies = [(c, r.ticket_id) for c, r in web.sent if r.kind == "staff_reply"]
    tg_replies = [(c, r.ticket_id) for c, r in tg.sent if r.kind == "staff_reply"]
    assert sorted(web_replies) == [("visitor-m-0001-abcdefgh", first), ("visitor-m-0003-abcdefgh", third)]
    assert tg_replies == [("5551", second)]
    for tid in (first, second, third):
        assert (await app.tickets.get(tid))[0].status == "answered"
    detail = await (await client.get(f"/console/api/tickets/{first}")).json()
    assert [m["ticket_id"] for m in detail["merged"]] == [second, third]


# -- search and filters ---------------------------------------------------------------------------------
async def test_search_and_filters(app: App, client: TestClient) -> None:
    a = await hand_over(app, HEALTH_Q, "visitor-s-0001-abcdefgh")
    b = await hand_over(app, NOWHERE_Q, "visitor-s-0002-abcdefgh")
    await app.conversations.handle(
        IncomingMessage(
            "web", "visitor-s-0002-abcdefgh", "visitor-s-0002-abcdefgh", "我们公司在鼓楼区温泉街道"
        )
    )
    tg = await app.conversations.escalate(IncomingMessage("telegram", "777", "777", ""), text="报关单怎么填")
    csrf = await login(client, "admin1")

    async def ids(**query: str) -> list[int]:
        data = await (await client.get("/console/api/tickets", params=query)).json()
        return sorted(t["ticket_id"] for t in data["tickets"])

    assert await ids() == sorted([a, b, tg.ticket_id])
    assert await ids(q=f"#{a}") == [a]
    assert await ids(q="温泉街道") == [b]  # found in the transcript
    assert await ids(q="公共卫生") == [a]
    assert await ids(office="市场秩序科") == [a]
    assert await ids(channel="telegram") == [tg.ticket_id]
    await api(client, csrf, f"/console/api/tickets/{a}/claim")
    assert await ids(assignee="admin1") == [a]
    assert await ids(assignee="-") == sorted([b, tg.ticket_id])
    assert await ids(overdue="1") == []
    await api(client, csrf, f"/console/api/tickets/{a}/close")
    assert await ids(status="done") == [a]
    assert await ids(status="closed") == [a]
    assert await ids() == sorted([b, tg.ticket_id])
    assert await ids(q="100%_") == []
    page = await (await client.get("/console/tickets", params={"status": "done"})).text()
    assert f"#{a}" in page and "已关闭" in page


# -- accounts and roles ---------------------------------------------------------------------------------
async def test_only_admins_manage_accounts(app: App, client: TestClient) -> None:
    for name in ("agent-wj", "editor1"):
        csrf = await login(client, name)
        assert (await client.get("/console/api/accounts")).status == 403
        resp = await client.post(
            "/console/api/accounts",
            json={"name": "mallory", "password": PASSWORD, "role": "admin"},
            headers={"X-CSRF-Token": csrf},
        )
        assert resp.status == 403 and (await resp.json())["error"] == "role_required"
        assert (await client.get("/console/admin")).status == 403
        assert 'href="/console/admin"' not in await (await client.get("/console")).text()
    csrf = await login(client, "admin1")
    created = await api(
        client,
        csrf,
        "/console/api/accounts",
        {"name": "zhao", "password": PASSWORD, "office": "市场秩序科", "role": "editor"},
        status=201,
    )
    assert created["account"] == {"name": "zhao", "office": "市场秩序科", "role": "editor", "active": True}
    await api(
        client,
        csrf,
        "/console/api/accounts",
        {"name": "zhao2", "password": PASSWORD, "office": "火星科"},
        status=400,
    )
    await api(client, csrf, "/console/api/accounts", {"name": "zhao3", "password": "short"}, status=400)
    await api(client, csrf, "/console/api/accounts/zhao/update", {"role": "boss"}, status=400)
    await api(client, csrf, "/console/api/accounts/nobody/disable", status=404)
    await api(client, csrf, "/console/api/accounts/admin1/disable", status=400)  # not yourself
    data = await api(client, csrf, "/console/api/accounts/zhao/update", {"office": "办公室", "role": "agent"})
    assert data["account"]["role"] == "agent"
    listing = (await (await client.get("/console/api/accounts")).json())["accounts"]
    assert {a["name"] for a in listing} == {"admin1", "editor1", "agent-wj", "agent-sc", "zhao"}
    assert all("password" not in str(a) for a in listing)
    page = await (await client.get("/console/admin")).text()
    assert "zhao" in page and "停用" in page


async def test_a_disabled_account_cannot_log_in_and_loses_its_session(app: App, client: TestClient) -> None:
    await login(client, "agent-sc")
    agent_cookies = {c.key: c.value for c in client.session.cookie_jar}
    csrf = await login(client, "admin1")
    await api(client, csrf, "/console/api/accounts/agent-sc/disable")
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(agent_cookies)
    assert (await client.get("/console/api/me")).status == 403  # the old session is gone
    client.session.cookie_jar.clear()
    page = await (await client.get("/console/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    resp = await client.post(
        "/console/login",
        data={"csrf": token, "name": "agent-sc", "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 401
    csrf = await login(client, "admin1")
    await api(client, csrf, "/console/api/accounts/agent-sc/enable")
    await api(client, csrf, "/console/api/accounts/agent-sc/password", {"password": "a-new-passw0rd"})
    client.session.cookie_jar.clear()
    await login(client, "agent-sc", "a-new-passw0rd")


def test_staff_cli_add_list_disable_reset(tmp_path, capsys, monkeypatch) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("first-passw0rd\n"))
    assert main(["--db", db, "staff", "add", "chen", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("second-passw0rd\n"))
    assert main(["--db", db, "staff", "add", "lin", "--office", "市场秩序科", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("third-passw0rd\n"))
    assert main(["--db", db, "staff", "add", "wu", "--office", "火星科", "--password-stdin"]) == 2
    assert "unknown office '火星科'" in capsys.readouterr().err
    assert main(["--db", db, "staff", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["chen\t办公室\tadmin\tactive", "lin\t市场秩序科\tagent\tactive"]
    assert main(["--db", db, "staff", "disable", "lin"]) == 0
    assert main(["--db", db, "staff", "disable", "nobody"]) == 1
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    assert main(["--db", db, "staff", "reset-password", "lin", "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("fresh-passw0rd\n"))
    assert main(["--db", db, "staff", "reset-password", "lin", "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "staff", "list"]) == 0
    assert "lin\t市场秩序科\tagent\tdisabled" in capsys.readouterr().out


# -- live queue (server-sent events) --------------------------------------------------------------------
async def _next_event(resp, name: str) -> dict:
    """Read the stream until an event called ``name``; return its data."""
    import asyncio
    import json

    event = ""
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), timeout=10)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == name:
            return json.loads(line[6:])


async def test_the_queue_stream_sends_a_new_ticket_opened_elsewhere(app: App, client: TestClient) -> None:
    app.services.settings = app.settings.replace("staff", live_seconds=1)
    await login(client, "agent-sc")
    assert (await client.get("/console/events")).status == 400
    assert (await client.get("/console/events?ticket=999999")).status == 404
    resp = await client.get("/console/events?page=queue")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    first = await _next_event(resp, "queue")
    assert first["count"] == 0 and first["tickets"] == []
    # Another worker opens a ticket: it writes only to the database, which the stream reads.
    tid = await hand_over(app, HEALTH_Q, "visitor-live-0001-abcdefgh")
    data = await _next_event(resp, "queue")
    assert [t["id"] for t in data["tickets"]] == [tid]
    assert data["tickets"][0]["office"] == "市场秩序科" and data["tickets"][0]["overdue"] is False
    assert "本科室（市场秩序科）1 张" in data["summary"]
    resp.close()


async def test_the_ticket_stream_sends_new_messages_and_notes(app: App, client: TestClient) -> None:
    app.services.settings = app.settings.replace("staff", live_seconds=1)
    tid = await hand_over(app, HEALTH_Q, "visitor-live-0002-abcdefgh")
    await login(client, "agent-sc")
    resp = await client.get(f"/console/events?ticket={tid}")
    first = await _next_event(resp, "ticket")
    assert first["routing"][0] == "科室：市场秩序科" and first["notes"] == []
    await app.tickets.add_note(tid, "agent-wj", "我来跟进")
    await app.conversations.handle(
        IncomingMessage(
            "web", "visitor-live-0002-abcdefgh", "visitor-live-0002-abcdefgh", "补充：我们是零售企业"
        )
    )
    data = await _next_event(resp, "ticket")
    while not (data["notes"] and any("零售企业" in m["text"] for m in data["messages"])):
        data = await _next_event(resp, "ticket")
    assert data["notes"][0]["text"] == "我来跟进"
    resp.close()


async def test_the_streams_need_a_session(client: TestClient) -> None:
    resp = await client.get("/console/events?page=queue")
    assert resp.status == 403


# -- canned replies and export --------------------------------------------------------------------------
async def test_editors_manage_canned_replies_and_agents_use_them(app: App, client: TestClient) -> None:
    csrf = await login(client, "agent-wj")
    resp = await client.post(
        "/console/api/canned", json={"title": "转市场监管", "text": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 403
    csrf = await login(client, "editor1")
    text = "您好，该事项由市场监管部门负责，请拨打 12315 咨询。"
    made = await api(client, csrf, "/console/api/canned", {"title": "转市场监管", "text": text}, status=201)
    await api(client, csrf, "/console/api/canned", {"title": "转市场监管", "text": "重复"}, status=400)
    await api(client, csrf, "/console/api/canned", {"title": "", "text": "x"}, status=400)
    rid = made["canned"]["id"]
    await api(client, csrf, f"/console/api/canned/{rid}", {"title": "转市场监管部门", "text": text})
    await api(client, csrf, "/console/api/canned", {"title": "临时", "text": "删掉我"}, status=201)
    listing = (await (await client.get("/console/api/canned")).json())["canned"]
    assert [c["title"] for c in listing] == ["临时", "转市场监管部门"]
    tmp = next(c for c in listing if c["title"] == "临时")
    await api(client, csrf, f"/console/api/canned/{tmp['id']}/delete")
    await api(client, csrf, "/console/api/canned/999999/delete", status=404)
    tid = await hand_over(app, NOWHERE_Q, "visitor-cn-0001-abcdefgh")
    await login(client, "agent-wj")
    page = await (await client.get(f"/console/tickets/{tid}")).text()
    assert 'id="canned-select"' in page and f'value="{text}"' in page
    assert "删掉我" not in page


async def test_csv_export_masks_personal_data_unless_an_admin_asks(app: App, client: TestClient) -> None:
    import csv
    import io

    secret = "我叫张伟，电话13812345678，想问外资企业年报怎么报"
    tid = await hand_over(app, secret, "visitor-ex-0001-abcdefgh")
    await app.tickets.reply(tid, "agent-wj", "请致电13912345678联系我们")
    await login(client, "agent-wj")
    resp = await client.get("/console/export.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    body = (await resp.read()).decode("utf-8")
    assert body.startswith("\ufeff工单号")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    (row,) = [r for r in rows if r["工单号"] == str(tid)]
    assert "13812345678" not in body and "张伟" not in body and "13912345678" not in body
    assert row["科室"] == "外资与外经科" and "138****5678" in row["问题"]
    conv = (await (await client.get("/console/export.csv?what=conversations")).read()).decode("utf-8")
    assert "13912345678" not in conv and "139****5678" in conv  # the staff reply, masked
    assert (await client.get("/console/export.csv?unmasked=1")).status == 403  # agents never unmasked
    assert (await client.get("/console/export.csv?from=2026-13-01")).status == 400
    assert (await client.get("/console/export.csv?from=2020-01-01&to=2026-01-01")).status == 400
    assert (await client.get("/console/export.csv?what=passwords")).status == 400
    await login(client, "admin1")
    raw = (await (await client.get("/console/export.csv?unmasked=1")).read()).decode("utf-8")
    assert "13812345678" in raw and "张伟" in raw
    # A range that holds nothing: the header only.
    empty = (await (await client.get("/console/export.csv?from=2020-01-01&to=2020-01-31")).read()).decode(
        "utf-8"
    )
    assert empty.count("\n") == 1


async def test_every_console_post_route_needs_the_csrf_token(app: App, client: TestClient) -> None:
    tid = await hand_over(app, NOWHERE_Q, "visitor-csrf-all-abcdefgh")
    await login(client, "admin1")
    samples = {"ticket_id": str(tid), "name": "agent-wj", "entry_id": "faq-bureau-001", "proposal_id": "1"}
    checked = []
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method != "POST" or not path.startswith("/console") or path == "/console/login":
            continue
        url = re.sub(
            r"\{(\w+)(:[^}]*)?\}",
            lambda m: samples.get(
                m.group(1), m.group(2).split("|")[0].lstrip(":") if m.group(2) and "|" in m.group(2) else "1"
            ),
            path,
        )
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            resp = await client.post(url, json={}, headers=headers, allow_redirects=False)
            assert resp.status == 403, (url, headers, resp.status)
        checked.append(url)
    assert len(checked) >= 30, checked
    t, _ = await app.tickets.get(tid)
    assert (t.status, t.office, t.claimed_by) == ("open", "办公室", "")

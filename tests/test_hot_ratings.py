"""Issue 15 points 6 and 7 through the core, the web API and the terminal: the welcome's hot questions
(defaults, history, pins), 相关问题 after an answer, and the rating of staff replies (满意 / 一般 /
不满意, optional comment) with its count on the console's overview."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from bot.app import App
from bot.config import DEFAULT_HOT, ConfigError, Settings, load_settings
from bot.hot_questions import PinError
from bot.messages import IncomingMessage, Reply
from bot.protocol import ActionError, parse_action
from bot.staff_accounts import create_account
from bot.stats import overview
from handlers.staff_stats import rating_text
from knowledge.models import Message, PinnedQuestion, Rating, utcnow
from knowledge.segment import Lexicon
from tests.test_staff_console import login

ROOT = Path(__file__).resolve().parent.parent
PHONE_Q = "鼓楼区商务局的电话是多少？"  # faq-bureau-002, the entry's own question
FDI_Q = "外商投资法什么时候开始施行？"  # policy-foreign-investment-law#qa1, a policy's own Q&A
RECYCLING_Q = "再生资源回收经营者备案需要哪些材料？"  # guide-recycling-filing, section 申请材料
FDI_LAW = "policy-foreign-investment-law"
TOKEN = "front-desk-visitor-01"
OTHER = "front-desk-visitor-02"


def web(token: str = TOKEN, text: str = "") -> IncomingMessage:
    return IncomingMessage("web", token, token, text, display_name="网页访客")


async def answered(app: App, text: str, token: str = TOKEN) -> Reply:
    (reply,) = await app.conversations.handle(web(token, text))
    assert reply.kind == "answer", (text, reply)
    return reply


async def staff_reply(app: App, token: str = TOKEN) -> int:
    """Open a ticket for ``token`` (/human) and answer it as staff; the staff message's id."""
    [opened] = await app.conversations.command(web(token), "human", "会议室周末能借用吗")
    assert opened.ticket_id is not None
    await app.tickets.reply(opened.ticket_id, "李科员", "可以借用，请提前一天登记。")
    async with app.services.sessions() as s:
        msg_id = await s.scalar(
            select(Message.id).where(Message.author == "staff", Message.ticket_id == opened.ticket_id)
        )
    assert msg_id is not None
    return int(msg_id)


async def count(app: App, model: type) -> int:
    async with app.services.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


# -- 7. satisfaction --------------------------------------------------------------------------------------
async def test_a_staff_reply_carries_the_rating_buttons_and_one_rating_per_reply(app: App) -> None:
    message_id = await staff_reply(app)
    async with app.services.sessions() as s:
        stored = await s.get(Message, message_id)
        assert stored is not None
    rows = stored.payload["reply"]["buttons"]
    assert [b["label"] for b in rows[0]] == ["满意", "一般", "不满意"]
    assert [b["action"] for b in rows[0]] == [f"rate:{s}:{message_id}" for s in ("good", "fair", "bad")]

    [thanks] = await app.conversations.act(web(), f"rate:good:{message_id}")
    assert thanks.kind == "info" and "满意" in thanks.text
    [again] = await app.conversations.act(web(), f"rate:bad:{message_id}")  # re-rating replaces
    assert "不满意" in again.text
    [commented] = await app.conversations.act(web(), f"rate:fair:{message_id}")
    assert await count(app, Rating) == 1
    await app.conversations.ratings.rate(web(), message_id, "fair", "答复很及时")
    async with app.services.sessions() as s:
        (rating,) = (await s.scalars(select(Rating))).all()
    assert (rating.score, rating.comment, rating.message_id) == ("fair", "答复很及时", message_id)
    assert commented.ticket_id == rating.ticket_id

    stats = await overview(app.tickets)
    assert stats.ratings == {"good": 0, "fair": 1, "bad": 0}
    assert stats.to_json()["ratings"] == {"good": 0, "fair": 1, "bad": 0}
    assert rating_text(stats.ratings) == "满意 0 · 一般 1 · 不满意 0（满意率 0%）"  # the overview's card


async def test_only_the_visitors_own_staff_reply_can_be_rated(app: App) -> None:
    message_id = await staff_reply(app)
    [foreign] = await app.conversations.act(web(OTHER), f"rate:good:{message_id}")
    assert foreign.kind == "error"
    answer = await answered(app, PHONE_Q)
    assert answer.message_id is not None
    [not_staff] = await app.conversations.act(web(), f"rate:good:{answer.message_id}")  # a bot answer
    assert not_staff.kind == "error"
    [missing] = await app.conversations.act(web(), "rate:good:999999")
    assert missing.kind == "error"
    assert await count(app, Rating) == 0


@pytest.mark.parametrize("action", ["rate:great:1", "rate:good:x", "rate:good", "rate::1", "rate:good:1:2"])
def test_malformed_rating_actions_are_refused(action: str) -> None:
    with pytest.raises(ActionError):
        parse_action(action)


async def test_comment_command_adds_to_the_latest_rating(app: App) -> None:
    [nothing] = await app.conversations.handle(web(text="/comment 很好"))
    assert nothing.kind == "error" and "评价" in nothing.text
    message_id = await staff_reply(app)
    [thanks] = await app.conversations.act(IncomingMessage("web", TOKEN, TOKEN), f"rate:bad:{message_id}")
    assert "/comment" not in thanks.text  # the web page offers a comment box instead of the command
    [empty] = await app.conversations.handle(web(text="/comment"))
    assert empty.kind == "error"
    [too_long] = await app.conversations.handle(web(text="/comment " + "长" * 501))
    assert too_long.kind == "error"
    [done] = await app.conversations.handle(web(text="/comment 答复没有说清楚借用流程"))
    assert done.kind == "info" and "意见" in done.text
    async with app.services.sessions() as s:
        rating = await s.scalar(select(Rating))
    assert rating is not None and (rating.score, rating.comment) == ("bad", "答复没有说清楚借用流程")


async def test_rating_through_the_web_api(app: App, client: TestClient) -> None:
    message_id = await staff_reply(app)
    bad = [
        ({"token": TOKEN, "message_id": message_id, "rating": "great"}, 400, "bad_rating"),
        ({"token": TOKEN, "message_id": message_id}, 400, "missing_field"),
        ({"token": TOKEN, "message_id": str(message_id), "rating": "good"}, 400, "wrong_type"),
        ({"token": TOKEN, "message_id": message_id, "rating": "good", "comment": 5}, 400, "wrong_type"),
        (
            {"token": TOKEN, "message_id": message_id, "rating": "good", "comment": "长" * 501},
            400,
            "comment_too_long",
        ),
        ({"token": "short", "message_id": message_id, "rating": "good"}, 400, "bad_token"),
        ({"token": TOKEN, "message_id": -1, "rating": "good"}, 404, "unknown_message"),
        ({"token": TOKEN, "message_id": 999999, "rating": "good"}, 404, "unknown_message"),
        ({"token": OTHER, "message_id": message_id, "rating": "good"}, 404, "unknown_message"),
    ]
    for body, status, code in bad:
        resp = await client.post("/api/rating", json=body)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"] == code, body
    assert await count(app, Rating) == 0  # nothing stored half-way

    resp = await client.post(
        "/api/rating", json={"token": TOKEN, "message_id": message_id, "rating": "good", "comment": "很清楚"}
    )
    assert resp.status == 200, await resp.text()
    assert "满意" in (await resp.json())["reply"]["text"]
    messages = (await (await client.get(f"/api/conversations/{TOKEN}")).json())["messages"]
    (staff,) = [m for m in messages if m["author"] == "staff"]
    assert staff["rating"] == {"rating": "good", "comment": "很清楚"}
    assert next(b["action"] for b in staff["buttons"][0]) == f"rate:good:{message_id}"
    resp = await client.post("/api/action", json={"token": TOKEN, "action": f"rate:fair:{message_id}"})
    assert resp.status == 200
    messages = (await (await client.get(f"/api/conversations/{TOKEN}")).json())["messages"]
    assert [m["rating"] for m in messages if m["author"] == "staff"] == [
        {"rating": "fair", "comment": "很清楚"}
    ]


# -- 6. hot questions -------------------------------------------------------------------------------------
async def test_hot_questions_without_history_are_the_shipped_defaults(app: App, client: TestClient) -> None:
    hot = await app.conversations.hot.top() if app.conversations.hot else []
    assert [h.entry_id for h in hot] == list(DEFAULT_HOT)
    assert {h.source for h in hot} == {"default"}
    data = await (await client.get("/api/hot")).json()
    assert [q["entry_id"] for q in data["questions"]] == list(DEFAULT_HOT)
    assert data["questions"][0] == {
        "entry_id": "faq-bureau-002",
        "label": PHONE_Q,
        "action": "entry:faq-bureau-002",
        "source": "default",
    }
    greeting = await app.conversations.greeting()
    actions = [b.action for row in greeting.buttons for b in row]
    assert actions[: len(DEFAULT_HOT)] == [f"entry:{e}" for e in DEFAULT_HOT]
    assert any(a.startswith("cat:") for a in actions)  # the categories follow
    # ... the bureau's topics, not the front desk's small talk (问候, 闲聊, 不文明用语) or referrals
    assert not {"cat:问候", "cat:闲聊", "cat:不文明用语", "cat:其他部门事项"} & set(actions)
    assert "问候" not in greeting.text and "闲聊" not in greeting.text
    [hello] = await app.conversations.handle(web(text="你好"))  # small talk tagged 热点问题
    assert f"entry:{DEFAULT_HOT[0]}" in [b.action for row in hello.buttons for b in row]
    [thanks] = await app.conversations.handle(web(text="谢谢"))
    assert not [b for row in thanks.buttons for b in row if b.action.startswith("entry:")]


async def test_hot_questions_are_the_most_asked_answered_of_the_last_30_days(app: App) -> None:
    for i in range(3):
        await answered(app, FDI_Q, token=f"{TOKEN}-{i}")
    await answered(app, PHONE_Q)
    for i in range(4):  # asked often, but 40 days ago
        await answered(app, RECYCLING_Q, token=f"{OTHER}-{i}")
    await app.conversations.handle(web(text="你好"))  # small talk is never a hot question
    async with app.services.sessions() as s, s.begin():
        await s.execute(
            update(Message)
            .where(Message.entry_id == "guide-recycling-filing")
            .values(created_at=utcnow() - timedelta(days=40))
        )
    hot = await app.conversations.hot.top() if app.conversations.hot else []
    assert [(h.entry_id, h.source, h.asked) for h in hot[:2]] == [
        (f"{FDI_LAW}#qa1", "asked", 3),
        ("faq-bureau-002", "asked", 1),
    ]
    rest = [h.entry_id for h in hot[2:]]
    assert rest == [e for e in DEFAULT_HOT if e != "faq-bureau-002"][: len(rest)]  # defaults fill up
    assert all(h.source == "default" for h in hot[2:])
    assert len({h.entry_id for h in hot}) == len(hot) == app.settings.desk.hot_count


async def test_pinned_questions_come_first_and_bad_pins_are_refused(app: App) -> None:
    hot = app.conversations.hot
    assert hot is not None
    await answered(app, FDI_Q)
    await hot.pin("guide-laundry-filing", "编辑甲")
    await hot.pin("guide-laundry-filing", "编辑甲")  # pinned once
    for bad in ("smalltalk-hello", "no-such-entry", "", "x" * 300):
        with pytest.raises(PinError):
            await hot.pin(bad, "编辑甲")
    assert await count(app, PinnedQuestion) == 1
    top = await hot.top()
    assert [(h.entry_id, h.source) for h in top[:2]] == [
        ("guide-laundry-filing", "pinned"),
        (f"{FDI_LAW}#qa1", "asked"),
    ]
    assert await hot.unpin("guide-laundry-filing") and not await hot.unpin("guide-laundry-filing")
    assert (await hot.top())[0].entry_id == f"{FDI_LAW}#qa1"


async def test_pressing_a_hot_question_shows_its_answer(app: App) -> None:
    [shown] = await app.conversations.act(web(), f"entry:{DEFAULT_HOT[0]}")
    assert shown.kind == "answer" and "0591-87538464" in shown.text


# -- 6. related questions ---------------------------------------------------------------------------------
def related_of(reply: Reply) -> list[tuple[str, str]]:
    return [(b.label, b.action) for row in reply.buttons for b in row if b.action.startswith("rel:")]


async def test_related_questions_after_a_policy_qa_are_its_other_qas(app: App) -> None:
    reply = await answered(app, FDI_Q)
    related = related_of(reply)
    assert related and all(a.startswith(f"rel:{reply.message_id}:") for _, a in related)
    labels = [label for label, _ in related]
    assert "外商投资信息报告制度是怎么运作的？" in labels
    assert FDI_Q not in labels  # never the entry just answered
    assert len(labels) == len(set(labels)) <= app.settings.desk.related_count
    index = labels.index("外商投资信息报告制度是怎么运作的？")
    [shown] = await app.conversations.act(web(), related[index][1])
    assert shown.kind == "answer" and shown.entry_id == f"{FDI_LAW}#qa2"
    assert FDI_Q in [label for label, _ in related_of(shown)]  # and back
    async with app.services.sessions() as s:
        stored = await s.get(Message, reply.message_id)
    assert stored is not None and stored.payload["related"][index]["entry_id"] == f"{FDI_LAW}#qa2"


async def test_related_questions_after_a_guide_section_are_its_other_sections(app: App) -> None:
    [shown] = await app.conversations.act(web(), "entry:guide-recycling-filing")  # the whole guide
    labels = [label for label, _ in related_of(shown)]
    assert labels and all(label.startswith("再生资源回收经营者备案：") for label in labels)
    assert not any(label.endswith(("申请材料", "办理条件", "事项名称")) for label in labels)  # shown already
    [section] = await app.conversations.act(web(), related_of(shown)[0][1])
    assert section.kind == "answer" and section.text.startswith("【再生资源回收经营者备案｜")
    aspect = labels[0].split("：", 1)[1]
    assert aspect in section.text.splitlines()[0]
    again = [label for label, _ in related_of(section)]
    assert labels[0] not in again and "再生资源回收经营者备案：申请材料" in again


async def test_related_questions_leave_out_candidates_that_share_an_incidental_word(app: App) -> None:
    # 福州 draws the Fuzhou consumption-voucher Q&As far below the weather referral that answers.
    reply = await answered(app, "明天福州会下雨吗")
    assert reply.entry_id == "ref-weather"
    assert not [label for label, _ in related_of(reply) if "消费券" in label]
    # Close candidates are still offered (the guide and FAQs next to an OGI answer).
    close = await answered(app, "申请政府信息公开多久答复")
    assert related_of(close)


async def test_small_talk_is_not_rated(app: App) -> None:
    # 没解决 under a greeting would hand 你好 to staff; an answer keeps its 有用 / 没解决.
    (hello,) = await app.conversations.handle(web(text="你好"))
    assert hello.kind == "answer"
    assert not [b for row in hello.buttons for b in row if b.action.startswith("feedback:")]
    answer = await answered(app, "申请政府信息公开多久答复")
    assert [b.label for b in answer.buttons[0]] == ["有用", "没解决"]


async def test_related_actions_of_others_or_out_of_range_are_refused(app: App) -> None:
    reply = await answered(app, FDI_Q)
    [gone] = await app.conversations.act(web(), f"rel:{reply.message_id}:99")
    assert gone.kind == "error"
    [foreign] = await app.conversations.act(web(OTHER), f"rel:{reply.message_id}:0")
    assert foreign.kind == "error"


async def test_small_talk_has_no_related_questions(app: App) -> None:
    [hello] = await app.conversations.handle(web(text="你好"))
    assert not related_of(hello)


# -- the terminal -----------------------------------------------------------------------------------------
def test_terminal_numbers_the_hot_questions_and_related_questions(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    db = f"sqlite:///{tmp_path}/chat.db"
    run = subprocess.run(
        [sys.executable, "-m", "policybot", "--db", db, "chat"],
        input=f"1\n{FDI_Q}\n1\n/quit\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert f"[1] {PHONE_Q}" in out  # the welcome's first hot question, numbered
    assert "0591-87538464" in out  # 1 chose it
    after = out.split("2020年1月1日起施行", 1)[1]
    assert "[1] 外商投资信息报告制度是怎么运作的？" in after  # 相关问题, numbered
    assert "通过市场监管部门的企业登记系统" in after  # 1 chose the related question


# -- [desk] configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("hot_count = 13", "[desk] hot_count"),
        ("hot_count = -1", "[desk] hot_count"),
        ("hot_days = 0", "[desk] hot_days"),
        ('hot_days = "thirty"', "[desk] hot_days"),
        ('hot_defaults = "faq-bureau-002"', "[desk] hot_defaults"),
        ('hot_defaults = [""]', "[desk] hot_defaults[0]"),
        ("related_count = 9", "[desk] related_count"),
        ("reply_page_per_minute = 0", "[desk] reply_page_per_minute"),
        ("hot = 3", "[desk] hot"),
    ],
)
def test_invalid_desk_settings_fail_at_start_with_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "policybot.toml"
    path.write_text(f"[desk]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(key)


def test_desk_settings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "policybot.toml"
    path.write_text('[desk]\nhot_count = 2\nhot_defaults = ["guide-laundry-filing"]\nrelated_count = 0\n')
    desk = load_settings(path, env={}).desk
    assert (desk.hot_count, desk.hot_defaults, desk.related_count, desk.hot_days) == (
        2,
        ["guide-laundry-filing"],
        0,
        30,
    )


# -- pins in the console ----------------------------------------------------------------------------------
async def test_editors_pin_hot_questions_in_the_console(app: App, client: TestClient) -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    await create_account(app.services.sessions, "bian.ji", "s3cret-passw0rd", role="editor", hasher=cheap)
    await create_account(app.services.sessions, "zuo.xi", "s3cret-passw0rd", hasher=cheap)
    csrf = await login(client, "zuo.xi", "s3cret-passw0rd")  # an agent sees, but may not pin
    page = await (await client.get("/console/hot")).text()
    assert PHONE_Q in page and "默认" in page and "置顶一条知识" not in page
    refused = await client.post("/console/api/hot/pin", json={"entry_id": "guide-laundry-filing"},
                                headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert refused.status == 403
    await client.post("/console/logout", data={"csrf": csrf})

    csrf = await login(client, "bian.ji", "s3cret-passw0rd")
    headers = {"X-CSRF-Token": csrf}
    for bad, status, code in [({"entry_id": "smalltalk-hello"}, 400, "bad_pin"), ({"entry_id": "nope"}, 400, "bad_pin"),
                              ({"entry_id": 5}, 400, "wrong_type"), ({}, 400, "missing_field")]:  # fmt: skip
        resp = await client.post("/console/api/hot/pin", json=bad, headers=headers)
        assert resp.status == status and (await resp.json())["error"] == code, bad
    assert await count(app, PinnedQuestion) == 0
    resp = await client.post(
        "/console/hot/pin", data={"csrf": csrf, "entry": "guide-laundry-filing"}, allow_redirects=False
    )
    assert resp.status == 303 and "done=pinned" in resp.headers["Location"]
    data = await (await client.get("/console/api/hot")).json()
    assert data["questions"][0] == {
        "entry_id": "guide-laundry-filing",
        "label": "洗染业经营者备案（现行状态待确认）",
        "source": "pinned",
        "asked": 0,
    }
    assert (await (await client.get("/api/hot")).json())["questions"][0]["entry_id"] == "guide-laundry-filing"
    resp = await client.post(
        "/console/api/hot/unpin", json={"entry_id": "guide-laundry-filing"}, headers=headers
    )
    assert resp.status == 200
    resp = await client.post(
        "/console/api/hot/unpin", json={"entry_id": "guide-laundry-filing"}, headers=headers
    )
    assert resp.status == 404
    assert await count(app, PinnedQuestion) == 0


async def test_zero_turns_hot_and_related_questions_off(settings: Settings, lexicon: Lexicon) -> None:
    quiet = settings.replace("desk", hot_count=0, related_count=0)
    app = await App.create(quiet, lexicon=lexicon)
    try:
        await app.services.load_default_if_empty()
        greeting = await app.conversations.greeting()
        assert not [b for row in greeting.buttons for b in row if b.action.startswith("entry:")]
        assert "大家常问的问题" not in greeting.text
        assert not related_of(await answered(app, FDI_Q))
    finally:
        await app.close()

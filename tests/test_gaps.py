"""Knowledge gaps: questions asked through the web API that the bot did not answer outright are grouped
by need (several needs, each asked several ways, plus noise); the console shows them and an editor turns
a cluster into knowledge in one step; ``policybot gaps`` prints the same clusters."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient

from bot.app import App
from bot.config import Settings
from bot.messages import IncomingMessage
from policybot.cli import main
from tests import test_staff_inbox
from tests.staff_fixtures import login
from tests.test_staff_inbox import api

client = test_staff_inbox.client  # the fixture: the console with an admin, an editor and two agents

# Needs the shipped knowledge base does not answer, each asked in different words.
NEEDS = {
    "跨境电商补贴": [
        "跨境电商企业有没有补贴",
        "做跨境电商能申请什么扶持资金",
        "跨境电商补助怎么申请",
        "跨境电商平台企业奖励政策",
    ],
    "夜市摆摊": [
        "夜市摆摊要办什么手续",
        "想在夜市摆个摊位需要申请吗",
        "夜市摆摊怎么报名",
        "夜市摊位怎么申请",
    ],
    "老字号": [
        "中华老字号怎么申请",
        "老字号认定需要什么条件",
        "福州老字号怎么评",
        "申报老字号要准备什么材料",
    ],
}
NOISE = ["股票明天会涨吗", "帮我写一首诗", "附近有什么好吃的", "火车票怎么改签"]


async def ask_all(client: TestClient) -> None:
    """Every question from its own visitor, through the residents' web API; the first need twice."""
    questions = [q for qs in NEEDS.values() for q in qs] + NOISE + [NEEDS["跨境电商补贴"][0]]
    for i, q in enumerate(questions):
        token = f"gap-visitor-{i:04d}-abcdefghijkl"
        resp = await client.post("/api/ask", json={"token": token, "question": q})
        assert resp.status == 200, await resp.text()
        kinds = [r["kind"] for r in (await resp.json())["replies"]]
        assert "answer" not in kinds, (q, kinds)  # each is a gap


async def test_the_same_need_lands_in_one_cluster_and_different_needs_apart(
    app: App, client: TestClient
) -> None:
    await ask_all(client)
    await login(client, "agent-wj")
    gaps = (await (await client.get("/console/api/gaps?days=7")).json())["gaps"]
    where = {q: i for i, g in enumerate(gaps) for q in g["questions"]}
    for need, questions in NEEDS.items():
        assert len({where[q] for q in questions}) == 1, (need, [g["questions"] for g in gaps])
    assert len({where[qs[0]] for qs in NEEDS.values()}) == len(NEEDS)
    for q in NOISE:  # noise joins no need
        assert where[q] not in {where[qs[0]] for qs in NEEDS.values()}
    top = gaps[0]
    assert top["label"] == NEEDS["跨境电商补贴"][0] and top["count"] == 5  # asked twice, largest first
    assert top["channels"] == {"web": 5}
    assert all(g["nearest_entry_id"] for g in gaps[:3])
    assert (await client.get("/console/api/gaps?days=0")).status == 400
    page = await (await client.get("/console/gaps")).text()
    assert "跨境电商补助怎么申请" in page and "新建条目" not in page  # agents see, editors act


async def test_an_editor_turns_a_cluster_into_an_entry_or_phrasings(app: App, client: TestClient) -> None:
    await ask_all(client)
    csrf = await login(client, "agent-wj")
    resp = await client.post(
        "/console/api/gaps/entry", json={"question": "x", "answer": "y"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 403
    csrf = await login(client, "editor1")
    gaps = (await (await client.get("/console/api/gaps")).json())["gaps"]
    night = next(g for g in gaps if "夜市摆摊怎么报名" in g["questions"])
    created = await api(
        client,
        csrf,
        "/console/api/gaps/entry",
        {
            "question": night["label"],
            "answer": "夜间经济摊位由所在街道和市场监管部门统一安排，请咨询所在街道办事处。",
            "alternates": night["questions"],
            "category": "消费促进",
        },
        status=201,
    )
    entry = await app.services.kb.get(created["entry_id"])
    assert entry.status == "published" and set(night["questions"]) - {night["label"]} <= set(entry.alternates)
    for q in NEEDS["夜市摆摊"]:
        assert (await app.services.qa.ask(q)).entry_id == created["entry_id"]
    revisions = (await (await client.get(f"/console/api/entries/{created['entry_id']}/revisions")).json())[
        "revisions"
    ]
    assert [(r["actor"], r["action"]) for r in revisions] == [("editor1", "create")]
    # Another cluster becomes phrasings of an existing entry, in one change.
    brand = next(g for g in gaps if "老字号认定需要什么条件" in g["questions"])
    data = await api(
        client,
        csrf,
        "/console/api/gaps/alternates",
        {"entry_id": "faq-bureau-001", "questions": brand["questions"]},
    )
    assert data["added"] == len(brand["questions"])
    assert set(brand["questions"]) <= set((await app.services.kb.get("faq-bureau-001")).alternates)
    # Personal data never becomes knowledge.
    resp = await client.post(
        "/console/api/gaps/entry",
        json={"question": "预付卡", "answer": "请联系王科长13812345678"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 409 and (await resp.json())["error"] == "personal_data"


def test_gaps_cli_prints_the_clusters(tmp_path, capsys, lexicon) -> None:
    db = f"sqlite:///{tmp_path}/gaps.db"

    async def ask() -> None:
        core = await App.create(Settings().replace("database", url=db), lexicon=lexicon)
        try:
            await core.services.load_default_if_empty()
            for i, q in enumerate([*NEEDS["老字号"], *NOISE]):
                chat = f"cli-visitor-{i:03d}"
                await core.conversations.handle(IncomingMessage("web", chat, chat, q))
        finally:
            await core.close()

    asyncio.run(ask())
    assert main(["--db", db, "gaps", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(lines[0]) == {"label", "count", "questions", "nearest_entry_id"}
    assert lines[0]["count"] == 4 and set(lines[0]["questions"]) == set(NEEDS["老字号"])
    assert isinstance(lines[0]["nearest_entry_id"], str)
    assert [line["count"] for line in lines] == sorted((line["count"] for line in lines), reverse=True)
    assert sum(line["count"] for line in lines) == 4 + len(NOISE)
    assert main(["--db", db, "gaps", "--days", "0"]) == 2
    assert main(["--db", db, "gaps"]) == 0
    assert capsys.readouterr().out.startswith("4\t")

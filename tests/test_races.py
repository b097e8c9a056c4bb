"""Races between requests and between workers on one database (issue 16, R8-R10).

Two workers are two ``App`` cores (each with its own engine, index and aiohttp application) on the same
database, as two ``policybot run`` processes would be; the migration race uses two processes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Select, func, select

from bot.app import App
from bot.config import Settings
from bot.messages import IncomingMessage
from handlers.web import build_web_app
from knowledge.models import Conversation, Entry, Message, Ticket
from knowledge.segment import Lexicon

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 8
ANSWERED = "商务局电话"
OTHER_ANSWERED = "商务局地址在哪里"


@pytest.fixture
async def second(app: App, settings: Settings, lexicon: Lexicon) -> AsyncIterator[App]:
    """A second worker on the same database as ``app``."""
    core = await App.create(settings, lexicon=lexicon, outbox_poll=0.05)
    try:
        await core.services.kb.load_index()
        yield core
    finally:
        await core.close()


@pytest.fixture
async def clients(app: App, second: App) -> AsyncIterator[tuple[TestClient, TestClient]]:
    """One web client for each worker."""
    pair = (TestClient(TestServer(build_web_app(app))), TestClient(TestServer(build_web_app(second))))
    for c in pair:
        await c.start_server()
    try:
        yield pair
    finally:
        for c in pair:
            await c.close()


async def count(app: App, stmt: Select[tuple[int]]) -> int:
    async with app.services.sessions() as session:
        return int(await session.scalar(stmt) or 0)


def token(i: int, tag: str) -> str:
    return f"race-{tag}-visitor-{i:04d}"


# -- R8: a new visitor's simultaneous first questions ----------------------------------------------------
@pytest.mark.parametrize("with_ids", [False, True], ids=["no-request-id", "request-id"])
async def test_simultaneous_first_questions_in_one_worker_are_both_answered_and_stored(
    app: App, with_ids: bool
) -> None:
    for i in range(PAIRS):
        t = token(i, "one")
        questions = (ANSWERED, OTHER_ANSWERED)
        msgs = [
            IncomingMessage("web", t, t, q, update_id=f"{t}:{n}" if with_ids else None)
            for n, q in enumerate(questions)
        ]
        first, other = await asyncio.gather(*(app.conversations.handle(m) for m in msgs))
        assert first and other, f"pair {i}: one question got no reply"
    stored = select(func.count()).select_from(Message).where(Message.direction == "in")
    assert await count(app, stored) == 2 * PAIRS
    assert await count(app, select(func.count()).select_from(Conversation)) == PAIRS


@pytest.mark.parametrize("with_ids", [False, True], ids=["no-request-id", "request-id"])
async def test_simultaneous_first_questions_on_two_workers_are_both_answered_and_stored(
    app: App, clients: tuple[TestClient, TestClient], with_ids: bool
) -> None:
    for i in range(PAIRS):
        t = token(i, "two")
        bodies: list[dict[str, str]] = [{"token": t, "question": q} for q in (ANSWERED, OTHER_ANSWERED)]
        if with_ids:
            for n, b in enumerate(bodies):
                b["request_id"] = f"r{n}"
        responses = await asyncio.gather(
            *(c.post("/api/ask", json=b) for c, b in zip(clients, bodies, strict=True))
        )
        for resp in responses:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["replies"], f"pair {i}: a question got {{'replies': []}}"
    stored = select(func.count()).select_from(Message).where(Message.direction == "in")
    assert await count(app, stored) == 2 * PAIRS
    assert await count(app, select(func.count()).select_from(Conversation)) == PAIRS


async def test_a_redelivered_update_is_still_answered_once(app: App, second: App) -> None:
    """The dedup key is what an IntegrityError may mean "handled already": the same update on two
    workers at once is answered by exactly one."""
    for i in range(PAIRS):
        t = token(i, "dup")
        msg = IncomingMessage("web", t, t, ANSWERED, update_id=f"{t}:same")
        a, b = await asyncio.gather(app.conversations.handle(msg), second.conversations.handle(msg))
        assert sorted([bool(a), bool(b)]) == [False, True], f"pair {i}: {a!r} / {b!r}"
    stored = select(func.count()).select_from(Message).where(Message.direction == "in")
    assert await count(app, stored) == PAIRS


# -- R9: simultaneous actions on two workers ---------------------------------------------------------------
async def test_human_and_status_at_once_on_two_workers_succeed(
    app: App, clients: tuple[TestClient, TestClient]
) -> None:
    for i in range(PAIRS):
        t = token(i, "act")
        human = clients[0].post("/api/ask", json={"token": t, "question": "/human 我想咨询展会补贴"})
        status = clients[1].post("/api/action", json={"token": t, "action": "status"})
        for resp in await asyncio.gather(human, status):
            assert resp.status == 200, await resp.text()
    assert await count(app, select(func.count()).select_from(Conversation)) == PAIRS
    assert await count(app, select(func.count()).select_from(Ticket)) == PAIRS


async def test_two_human_requests_at_once_open_one_ticket(app: App, second: App) -> None:
    for i in range(PAIRS):
        t = token(i, "hum")
        a = IncomingMessage("web", t, t, "/human 问题一")
        b = IncomingMessage("web", t, t, "/human 问题二")
        replies = await asyncio.gather(app.conversations.handle(a), second.conversations.handle(b))
        assert all(r for r in replies)
    assert await count(app, select(func.count()).select_from(Ticket)) == PAIRS


# -- R10: workers started together on an empty database migrate once --------------------------------------
START = """
import asyncio, sys
from bot.config import Settings
from bot.services import Services

async def main(url: str, index_dir: str) -> None:
    settings = Settings().replace("database", url=url, index_dir=index_dir, index_poll_seconds=0)
    services = await Services.start(settings, build_index=False)  # migrates
    try:
        await services.load_default_if_empty()
        print(await services.kb.count())
    finally:
        await services.close()

print("ready", flush=True)
sys.stdin.readline()  # all processes start at the same moment
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_workers_started_together_on_an_empty_database_migrate_once(
    db_url: str, tmp_path: Path
) -> None:
    """Three workers start on the same empty database at once: all succeed, the schema is current and
    the default knowledge base is loaded once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            START,
            db_url,
            str(tmp_path / f"index{n}"),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(3)
    ]
    for p in procs:  # every process has imported everything: now release them together
        assert p.stdout is not None
        assert (await p.stdout.readline()).decode().strip() == "ready"
    outs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
    counts = set()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
        counts.add(int(out.decode().strip()))
    from knowledge.db import SCHEMA_REVISION, create_engine
    from knowledge.schema import current_revision
    from knowledge.store import default_paths

    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == SCHEMA_REVISION
        async with engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(Entry))).scalar_one()
    finally:
        await engine.dispose()
    assert counts == {stored} and stored > len(default_paths())

"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when configured) and services.

Set POLICYBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test to run the suite against
PostgreSQL (.ci/run does this for its second pass); each test then starts from an empty schema.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import App
from bot.config import Settings
from bot.services import Services
from knowledge.segment import Lexicon

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_4e919aa08e42b693.txt"
SEED_COPY = ROOT / "knowledge" / "data" / "documents" / "gulou-commerce-2020-123.txt"
PG_URL = os.environ.get("POLICYBOT_TEST_DATABASE_URL", "")


def seed_path() -> Path:
    """The seed document (the shared copy if present, else the one shipped in the knowledge base)."""
    return SEED if SEED.exists() else SEED_COPY


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Tests that run the command line in-process let it install its stderr handler (bound to that
    test's captured stream): put the root logger back, so later tests never log to a closed file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """An event loop for a synchronous test that drives async code between hypothesis examples."""
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    """One lexicon for the whole run (loading jieba per test would cost 0.2 s each)."""
    return Lexicon.load()


async def _reset_postgres(url: str) -> None:
    from sqlalchemy import text

    from knowledge.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    """A database URL for one test: an empty PostgreSQL schema, or a new SQLite file."""
    if PG_URL:
        await _reset_postgres(PG_URL)
        return PG_URL
    return f"sqlite:///{tmp_path}/policybot.db"


@pytest.fixture
async def pg_url() -> str:
    """PostgreSQL for tests that need it specifically; skipped with the reason otherwise."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set POLICYBOT_TEST_DATABASE_URL (see .ci/run)")
    await _reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Default settings on the test database (the index files in the test's own folder)."""
    return Settings().replace("database", url=db_url, index_dir=str(tmp_path / "index"))


@pytest.fixture
async def services(settings: Settings, lexicon: Lexicon) -> AsyncIterator[Services]:
    """Started services on an empty database."""
    s = await Services.start(settings, lexicon=lexicon)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def seeded(services: Services) -> Services:
    """Services whose knowledge base holds the seed document only, built as ``policybot ask`` finds
    it after ``kb import`` (one full build: a small import stays in the delta segment, scored
    without the knowledge base's own word statistics)."""
    await services.kb.import_paths([seed_path()])
    await services.kb.load_index()
    return services


@pytest.fixture
async def default_kb(services: Services) -> Services:
    """Services whose knowledge base holds the shipped default knowledge base (one full build, as
    ``seeded``)."""
    await services.load_default_if_empty()
    await services.kb.wait_for_rebuild()
    await services.kb.load_index()
    return services


@pytest.fixture
async def app(settings: Settings, lexicon: Lexicon) -> AsyncIterator[App]:
    """The whole core (tickets, conversations, outbox worker not started) with the default knowledge
    base loaded. Tests register fake or real channels on ``app.registry`` and call ``app.outbox``."""
    core = await App.create(settings, lexicon=lexicon, outbox_poll=0.05)
    try:
        await core.services.load_default_if_empty()
        yield core
    finally:
        await core.close()


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    """A test client for the residents' web app of ``app`` (modules that need another kind of client,
    the console's, define their own ``client``)."""
    from tests.test_web_api import make_client

    c = await make_client(app)
    try:
        yield c
    finally:
        await c.close()

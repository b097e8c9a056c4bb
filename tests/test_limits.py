"""Rate limits and flood guards (``bot.limits``): the token bucket in memory and in the database, shared
by two workers on PostgreSQL (issue 16)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App
from bot.config import Settings, WebSettings
from bot.limits import DatabaseBuckets, MemoryBuckets, RateLimiter, buckets_for, check_all
from bot.outbox import Pace
from handlers.web import build_web_app
from knowledge.db import create_engine, session_factory
from knowledge.models import RateBucket
from knowledge.schema import ensure_schema
from knowledge.segment import Lexicon


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# -- the bucket, in memory -------------------------------------------------------------------------------
async def test_a_limit_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter("ask", 6, 60.0, MemoryBuckets(clock))
    assert [await limiter.hit("k") for _ in range(6)] == [None] * 6
    wait = await limiter.hit("k")
    assert wait is not None and 9.0 < wait <= 10.0
    clock.now += 10.0
    assert await limiter.hit("k") is None
    assert await limiter.hit("other") is None


async def test_memory_buckets_forget_keys_when_full() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock, max_keys=4)
    limiter = RateLimiter("ask", 1, 60.0, buckets)
    for i in range(10):
        await limiter.hit(f"k{i}")
        clock.now += 1
    assert len(buckets) <= 4


async def test_a_flood_guard_notices_once_per_refusal_run() -> None:
    clock = Clock()
    guard = RateLimiter("flood", 3, 10.0, MemoryBuckets(clock))
    verdicts = [await guard.check("1") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.first_refusal for v in verdicts] == [False, False, False, True, False, False]
    assert 3.0 < verdicts[3].wait <= 10 / 3  # one message's worth of the window
    assert (await guard.check("2")).allowed  # per user
    clock.now += 10.5
    assert [(await guard.check("1")).allowed for _ in range(4)] == [True, True, True, False]


# -- the bucket, in the database (both databases; what PostgreSQL workers share) -------------------------
@pytest.fixture
async def two_workers(db_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two workers' engines on one migrated database."""
    engines = (create_engine(db_url), create_engine(db_url))
    await ensure_schema(engines[0])
    try:
        yield engines
    finally:
        for e in engines:
            await e.dispose()


async def test_two_workers_share_one_limit(two_workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    clock = Clock()
    a, b = (RateLimiter("ask", 5, 60.0, DatabaseBuckets(e, clock)) for e in two_workers)
    assert [await a.hit("t:visitor") for _ in range(3)] == [None] * 3
    assert [await b.hit("t:visitor") for _ in range(2)] == [None] * 2
    refused = [(await w.check("t:visitor")) for w in (a, b, a)]
    assert [v.allowed for v in refused] == [False, False, False]
    assert [v.first_refusal for v in refused] == [True, False, False]
    assert 11.0 < refused[0].wait <= 12.0
    clock.now += 12.0  # one token back, seen by both
    assert await b.hit("t:visitor") is None
    assert await a.hit("t:visitor") is not None
    assert await a.hit("t:someone-else") is None


@pytest.mark.parametrize("store", ["memory", "database"])
async def test_limits_checked_at_once_take_as_each_would(
    two_workers: tuple[AsyncEngine, AsyncEngine], store: str
) -> None:
    """A web request's visitor and address limits are taken together (one statement on PostgreSQL):
    each refuses as it would alone, in the order given, and a refused one still takes its token."""
    clock = Clock()
    buckets = MemoryBuckets(clock) if store == "memory" else DatabaseBuckets(two_workers[0], clock)
    visitor, address = RateLimiter("ask", 3, 60.0, buckets), RateLimiter("addr", 5, 60.0, buckets)
    results = [await check_all([(visitor, "t:v"), (address, "a:1")]) for _ in range(4)]
    assert [[v.allowed for v in r] for r in results] == [[True, True]] * 3 + [[False, True]]
    assert 19.0 < results[3][0].wait <= 20.0 and results[3][0].first_refusal
    assert await address.level("a:1") == 1.0  # four taken of five
    again = await check_all([(address, "a:1"), (visitor, "t:v")])  # either order
    assert [v.allowed for v in again] == [True, False] and not again[1].first_refusal
    assert await address.level("a:1") == 0.0
    same = await check_all([(address, "a:2"), (address, "a:2")])  # one key twice: two tokens
    assert [v.allowed for v in same] == [True, True] and await address.level("a:2") == 3.0
    with pytest.raises(ValueError, match="share one store"):
        await check_all([(visitor, "t:v"), (RateLimiter("x", 1, 1.0, MemoryBuckets(clock)), "k")])


async def test_the_buckets_table_is_unlogged_on_postgresql(pg_url: str) -> None:
    """A rate limit's counts are not worth a WAL flush per take: PostgreSQL keeps them unlogged (a
    server crash empties them: every bucket full again)."""
    engine = create_engine(pg_url)
    try:
        await ensure_schema(engine)
        async with engine.connect() as conn:
            persistence = await conn.scalar(
                text("SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_buckets'")
            )
        assert persistence == "u"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("store", ["memory", "database"])
async def test_a_token_given_back_is_there_again_never_past_capacity(
    two_workers: tuple[AsyncEngine, AsyncEngine], store: str
) -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock) if store == "memory" else DatabaseBuckets(two_workers[0], clock)
    limiter = RateLimiter("login-fail", 3, 900.0, buckets)
    assert [(await limiter.check("pair")).allowed for _ in range(4)] == [True, True, True, False]
    await limiter.give_back("pair")
    assert await limiter.level("pair") == 1.0
    assert (await limiter.check("pair")).allowed and not (await limiter.check("pair")).allowed
    for _ in range(5):
        await limiter.give_back("pair")
    assert await limiter.level("pair") == 3.0  # a full bucket stays full
    await limiter.give_back("untouched")  # nothing taken: nothing to give back
    assert await limiter.level("untouched") == 3.0


async def test_two_workers_keep_one_send_pace_together(two_workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    """The outbox's pace (Telegram: 30 a second overall) is kept by the workers together: 40 sends at
    20 a second take two seconds whether one worker or two make them (each pacing itself, two workers
    took one second: 40 a second)."""
    paces = [Pace("telegram", 20.0, 1.0, DatabaseBuckets(e)) for e in two_workers]

    async def sends(pace: Pace, first_chat: int) -> None:
        for chat in range(first_chat, first_chat + 20):
            await pace.turn(str(chat))

    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(sends(paces[0], 1000), sends(paces[1], 2000))
    assert loop.time() - start >= 1.8  # 39 intervals of 50 ms after the first slot
    # A chat just written to waits its second, whichever worker asks.
    await paces[0].turn("3000")
    assert await paces[1].chat_wait("3000") > 0
    assert await paces[1].chat_wait("3001") == 0


async def test_simultaneous_takes_on_two_workers_allow_exactly_the_limit(
    two_workers: tuple[AsyncEngine, AsyncEngine],
) -> None:
    limiters = [RateLimiter("ask", 10, 60.0, DatabaseBuckets(e)) for e in two_workers]
    verdicts = await asyncio.gather(*(limiters[i % 2].check("a:10.0.0.1") for i in range(30)))
    assert sum(v.allowed for v in verdicts) == 10


async def test_simultaneous_paired_takes_on_two_workers_count_exactly(
    two_workers: tuple[AsyncEngine, AsyncEngine],
) -> None:
    """Web requests take their visitor's and their address's buckets in one statement: forty at once
    over two workers, visitors sharing addresses, the keys given in either order, and each bucket
    counts every take. (That two such statements never wait on each other is by construction, the
    rows taken in key order: a deadlock needs a timing this test cannot force.)"""
    buckets = [DatabaseBuckets(e) for e in two_workers]
    visitor = [RateLimiter("ask", 3, 60.0, b) for b in buckets]
    address = [RateLimiter("addr", 25, 60.0, b) for b in buckets]

    async def request(i: int) -> list[bool]:
        w = i % 2
        pair = [(visitor[w], f"t:{i % 8}"), (address[w], f"a:{i % 2}")]
        verdicts = await check_all(pair if i % 3 else pair[::-1])
        return [v.allowed for v in verdicts]

    results = await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(40))), timeout=30)
    by_visitor = [sum(r[0 if i % 3 else 1] for i, r in enumerate(results) if i % 8 == v) for v in range(8)]
    assert by_visitor == [3] * 8  # five asks each, three allowed
    by_address = [sum(r[1 if i % 3 else 0] for i, r in enumerate(results) if i % 2 == a) for a in range(2)]
    assert by_address == [20, 20]  # twenty each, all within 25


async def test_keys_are_stored_as_digests(two_workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    sessions = session_factory(two_workers[0])
    limiter = RateLimiter("ask", 5, 60.0, DatabaseBuckets(two_workers[0]))
    await limiter.hit("t:secret-visitor-token-123")
    async with sessions() as session:
        keys = list(await session.scalars(select(RateBucket.key)))
    assert len(keys) == 1 and keys[0].startswith("ask:") and "secret" not in keys[0]


async def test_refilled_buckets_are_swept(two_workers: tuple[AsyncEngine, AsyncEngine]) -> None:
    clock = Clock()
    sessions = session_factory(two_workers[0])
    buckets = DatabaseBuckets(two_workers[0], clock)
    limiter = RateLimiter("ask", 5, 60.0, buckets)
    await limiter.hit("old")
    clock.now += 7200.0
    await limiter.hit("new")
    async with sessions() as session:
        assert len(list(await session.scalars(select(RateBucket.key)))) == 1


def test_postgresql_shares_the_buckets_and_sqlite_keeps_them_in_memory() -> None:
    assert isinstance(buckets_for(create_engine("sqlite:///:memory:")), MemoryBuckets)
    assert isinstance(
        buckets_for(create_engine("postgresql://postgres@127.0.0.1:5432/none")), DatabaseBuckets
    )


# -- the web API's limit across two PostgreSQL workers ---------------------------------------------------
async def test_the_ask_limit_holds_across_two_postgresql_workers(
    pg_url: str, settings: Settings, lexicon: Lexicon
) -> None:
    cores = [await App.create(settings, lexicon=lexicon) for _ in range(2)]
    await cores[0].services.load_default_if_empty()
    ws = WebSettings(rate_limit_per_minute=4)
    clients = [TestClient(TestServer(build_web_app(c, ws))) for c in cores]
    try:
        for c in clients:
            await c.start_server()
        statuses = []
        for i in range(6):
            resp = await clients[i % 2].post(
                "/api/ask", json={"token": "limited-visitor-0001", "question": "你好"}
            )
            statuses.append(resp.status)
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        for c in clients:
            await c.close()
        for core in cores:
            await core.close()

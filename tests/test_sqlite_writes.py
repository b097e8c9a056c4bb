"""SQLite under concurrent writers (issue 16): the transactions of one process take turns through the
engine's write gate (``knowledge.write_gate``) instead of sleeping in ``busy_timeout`` until SQLite
gives up with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from knowledge import db
from knowledge.db import create_engine, session_factory
from knowledge.models import ProcessedUpdate
from knowledge.schema import ensure_schema
from knowledge.write_gate import WriteGate

WRITERS = 20


async def test_twenty_concurrent_write_transactions_all_commit(tmp_path: Path) -> None:
    """Each writer holds its transaction across event-loop turns (as a request does while the loop
    serves the others); with a short busy timeout, writers fighting over SQLite's lock would fail."""
    engine = create_engine(f"sqlite:///{tmp_path}/writes.db")

    def short_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=200")
        cur.close()

    event.listen(engine.sync_engine, "connect", short_busy_timeout)  # after the default pragmas
    try:
        await ensure_schema(engine)
        sessions = session_factory(engine)

        async def writer(i: int) -> None:
            async with sessions() as session, session.begin():
                session.add(ProcessedUpdate(channel="web", update_id=f"a{i}"))
                await session.flush()  # SQLite's write lock is taken here...
                await asyncio.sleep(0.03)  # ...and held while the loop serves other requests
                session.add(ProcessedUpdate(channel="web", update_id=f"b{i}"))

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 2 * WRITERS
    finally:
        await engine.dispose()


async def test_the_gate_is_first_come_first_served_and_reentrant_within_a_task() -> None:
    gate = WriteGate()
    order: list[str] = []

    async def turn(name: str) -> None:
        await gate.enter()
        try:
            await gate.enter()  # a nested transaction of the same task passes
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")
            gate.leave()
        finally:
            gate.leave()

    await asyncio.gather(turn("a"), turn("b"), turn("c"))
    assert order == ["a+", "a-", "b+", "b-", "c+", "c-"]


class _Cursor:
    """Answers PRAGMAs, failing the WAL switch with ``errors`` first (another process opening the file)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.tries = 0

    def execute(self, sql: str) -> None:
        if sql == "PRAGMA journal_mode=WAL":
            self.tries += 1
            if self.errors:
                raise sqlite3.OperationalError(self.errors.pop(0))


def test_the_switch_to_wal_is_tried_again_while_the_new_file_is_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers started together on a new file: SQLite can refuse the switch at once (tests/test_races.py
    # R10 met it one run in fifteen); it succeeds once the other process is through.
    monkeypatch.setattr(db, "WAL_PAUSE", 0.0)
    locked = _Cursor(["database is locked", "database is locked"])
    db._wal(locked)
    assert locked.tries == 3
    broken = _Cursor(["disk I/O error"])  # any other error is not waited out
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        db._wal(broken)
    assert broken.tries == 1
    always = _Cursor(["database is locked"] * db.WAL_ATTEMPTS)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db._wal(always)
    assert always.tries == db.WAL_ATTEMPTS

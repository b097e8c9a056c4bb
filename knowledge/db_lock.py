"""A lock over the whole database for start-up work that must run once (migrations, the first import).

PostgreSQL: a session-level advisory lock (released by the server if the holder dies). SQLite: an
exclusive ``flock`` on a lock file beside the database (``<file>.<name>.lock``, created private),
released by the kernel if the holder dies. Workers started together take turns: the first does the
work, the others wait and then find it done. An in-memory SQLite database needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

POLL = 0.05  # seconds between attempts at a SQLite lock file that another process holds


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (the same in every process)."""
    digest = hashlib.sha256(f"policybot:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def database_lock(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Hold the database-wide lock ``name`` while the block runs (waiting for another holder)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        async with _advisory_lock(engine, lock_key(name)):
            yield
    elif url.database and url.database != ":memory:":
        async with _file_lock(f"{url.database}.{name}.lock"):
            yield
    else:
        yield


@contextlib.asynccontextmanager
async def _advisory_lock(engine: AsyncEngine, key: int) -> AsyncIterator[None]:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        await conn.commit()
        try:
            yield
        finally:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                await conn.commit()
            except BaseException:
                # Never hand a connection that may still hold the lock back to the pool.
                await conn.invalidate()
                raise


@contextlib.asynccontextmanager
async def _file_lock(path: str) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

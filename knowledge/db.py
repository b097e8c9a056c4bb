"""Database engine and sessions: plain URLs as users write them, async drivers underneath."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from knowledge.write_gate import GatedSession, gate_for

# The migration the code expects; tests check it equals Alembic's head. Comparing against it lets
# `policybot ask` skip loading Alembic when the schema is already current (cold start).
SCHEMA_REVISION = "i16u_rate_buckets_unlogged"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}


class DatabaseURLError(ValueError):
    """A database URL that cannot be used, with the reason."""


def async_url(url: str) -> str:
    """Turn ``sqlite:///x.db`` or ``postgresql://u@h/db`` into the async-driver form."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"not a database URL: {url!r}") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise DatabaseURLError(f"unsupported database {parsed.drivername!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: str, echo: bool = False, pool: dict[str, float] | None = None) -> AsyncEngine:
    """Create the async engine; make the SQLite file's folder and set pragmas for concurrency.
    ``pool``: the connection pool's ``pool_size``, ``max_overflow`` and ``pool_timeout`` (a file or
    server database; an in-memory SQLite database has one connection)."""
    url = async_url(url)
    parsed = make_url(url)
    in_memory = parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:")
    if parsed.drivername.startswith("sqlite") and not in_memory:
        create_private(Path(parsed.database or ""))
    options = dict(pool or {}) if not in_memory else {}
    # JSON columns (an entry's cached tokens, revisions' records) keep Chinese as UTF-8: the default
    # \uXXXX escapes made them 1.7 times as large (a 100k knowledge base: hundreds of MB more to write
    # and read back at every start).
    # hide_parameters: an error's message names the statement but not its values, which carry visitor
    # tokens and what residents typed (they would reach the logs with every database error).
    engine = create_async_engine(url, echo=echo, json_serializer=_json_dumps, hide_parameters=True, **options)
    if parsed.drivername.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_private(path: Path) -> None:
    """Create the SQLite file's folder (0700) and the file itself (0600) when they do not exist yet, so
    other local users cannot read the conversations; existing ones are left as their owner set them.
    (SQLite gives its -wal and -shm files the database file's permissions.)"""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it a moment ago
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class EncodedJSON(str):
    """JSON text encoded already (an import's tokenizer processes encode each entry's tokens, in
    parallel): a JSON column given one stores it as it is instead of encoding a string."""

    __slots__ = ()


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # (one encoder, not one a value: most values are small)


def _json_dumps(value: object) -> str:
    if type(value) is EncodedJSON:
        return str(value)
    return _ENCODER.encode(value)


WAL_ATTEMPTS = 20  # tries at switching a new database file to WAL while other processes open it too
WAL_PAUSE = 0.05  # seconds before the next try (times the attempt number): about 10 s in all


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    _wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _wal(cur) -> None:
    """Switch the file to WAL (kept in the file: later connections find it done). On a new file that
    other processes open at the same moment (workers started together), the switch can fail at once
    with "database is locked": SQLite does not wait in its busy handler where waiting could deadlock.
    Then it is tried again after a pause. SQLAlchemy's connect event is synchronous, so the pause holds
    up the event loop: only for a new file that several processes open at once, at their start."""
    for attempt in range(1, WAL_ATTEMPTS + 1):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS:
                raise
            time.sleep(WAL_PAUSE * attempt)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit; on SQLite their transactions take turns
    through the file's ``WriteGate`` (``knowledge.write_gate``)."""
    if engine.dialect.name == "sqlite":
        gate = gate_for(engine.url.database or ":memory:")
        return async_sessionmaker(engine, expire_on_commit=False, class_=GatedSession, gate=gate)
    return async_sessionmaker(engine, expire_on_commit=False)

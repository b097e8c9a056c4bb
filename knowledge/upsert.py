"""Statements that survive concurrent writers: insert a row unless its unique key is already taken."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


async def insert_or_ignore(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any], keys: Sequence[str]
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` in the caller's transaction.

    When another transaction inserts the same key at the same moment, this one waits for it (the
    database's own row or file lock) and then does nothing, instead of failing with an IntegrityError
    that would roll back the caller's whole transaction. Read the row afterwards to get it.
    """
    build = dialect_insert(_dialect(session))
    await session.execute(build(model).values(**values).on_conflict_do_nothing(index_elements=list(keys)))


async def insert_if_new(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any], keys: Sequence[str]
) -> bool:
    """``insert_or_ignore`` that tells whether this call inserted the row (True) or found its key taken
    (False), in one statement (``RETURNING``): a check-and-record without a read before the write."""
    stmt = _insert_if_new(_dialect(session), model, tuple(values), tuple(keys))
    return (await session.execute(stmt, values)).first() is not None


@functools.cache
def _insert_if_new(
    dialect: str, model: type[DeclarativeBase], columns: tuple[str, ...], keys: tuple[str, ...]
) -> Any:
    """``insert_if_new``'s statement, built once per table and columns (it runs on every message of a
    channel that numbers its updates: building it cost more than running it)."""
    return (
        dialect_insert(dialect)(model)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(getattr(model, keys[0]))
    )


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else "sqlite"


def dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` construct (``ON CONFLICT`` is dialect-specific): PostgreSQL's or
    SQLite's."""
    return pg_insert if dialect == "postgresql" else sqlite_insert

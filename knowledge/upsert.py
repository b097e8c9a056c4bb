"""Statements that survive concurrent writers: insert a row unless its unique key is already taken."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    build = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(build(model).values(**values).on_conflict_do_nothing(index_elements=list(keys)))

"""Bring a database to the current schema with Alembic (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from knowledge.db import SCHEMA_REVISION
from knowledge.db_lock import database_lock

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaError(RuntimeError):
    """The database cannot be brought to the schema this code needs."""


async def current_revision(engine: AsyncEngine) -> str | None:
    """The Alembic revision stamped in the database, or None for an empty one."""
    async with engine.connect() as conn:
        has_table = await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))
        if not has_table:
            return None
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


async def ensure_schema(engine: AsyncEngine) -> None:
    """Run pending migrations; skip Alembic entirely when the database is already current.

    Workers started together on an empty database migrate once: the first takes the database lock
    (``knowledge.db_lock``) and migrates, the others wait for it and then find the schema current."""
    try:
        if await current_revision(engine) == SCHEMA_REVISION:
            return
        async with database_lock(engine, "migrate"):
            if await current_revision(engine) == SCHEMA_REVISION:
                return
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
    except (DBAPIError, OSError) as exc:
        raise SchemaError(f"cannot prepare the database: {exc.__class__.__name__}: {exc}") from exc


def _upgrade(connection: Connection) -> None:
    from alembic import command  # imported only when a migration is due (start-up time)
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")

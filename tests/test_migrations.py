"""Alembic migrations (migrations/) produce exactly the tables of knowledge/models.py, on SQLite and
PostgreSQL, and knowledge/db.py's SCHEMA_REVISION is the head."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from knowledge.db import SCHEMA_REVISION, DatabaseURLError, async_url, create_engine
from knowledge.models import Base
from knowledge.schema import MIGRATIONS, current_revision, ensure_schema


def _script() -> ScriptDirectory:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def test_schema_revision_is_the_single_head() -> None:
    heads = _script().get_heads()
    assert heads == [SCHEMA_REVISION]


def test_every_revision_chains_back_to_the_base() -> None:
    revisions = list(_script().walk_revisions())
    assert revisions[-1].down_revision is None
    assert {r.revision for r in revisions} >= {SCHEMA_REVISION}


def _describe(conn) -> dict[str, object]:
    insp = inspect(conn)
    out: dict[str, object] = {}
    for table in insp.get_table_names():
        out[table] = {
            "columns": {c["name"]: (c["nullable"], c.get("primary_key", 0)) for c in insp.get_columns(table)},
            "indexes": sorted(tuple(i["column_names"]) for i in insp.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(table)
            ),
        }
    return out


def _diff(conn) -> list:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(ctx, Base.metadata)


async def _check_upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        assert await current_revision(engine) is None  # empty database
        await ensure_schema(engine)
        assert await current_revision(engine) == SCHEMA_REVISION
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert tables == set(Base.metadata.tables) | {"alembic_version"}
            described = await conn.run_sync(_describe)
            # every model column exists, with its nullability
            for name, table in Base.metadata.tables.items():
                cols = described[name]["columns"]  # type: ignore[index]
                assert set(cols) == {c.name for c in table.columns}, name
                for c in table.columns:
                    assert cols[c.name][0] == c.nullable, (name, c.name)
                fks = {((f.parent.name,), f.column.table.name) for f in table.foreign_keys}
                assert {(cols_, ref) for cols_, ref in described[name]["fks"]} == fks, name  # type: ignore[index]
            # and nothing differs from the models (types, indexes, constraints) as Alembic sees it
            assert await conn.run_sync(_diff) == []
        await ensure_schema(engine)  # a second start is a no-op
        assert await current_revision(engine) == SCHEMA_REVISION
    finally:
        await engine.dispose()


async def test_upgrade_empty_sqlite(tmp_path: Path) -> None:
    await _check_upgrade(f"sqlite:///{tmp_path}/fresh.db")


async def test_upgrade_empty_postgresql(pg_url: str) -> None:
    await _check_upgrade(pg_url)


async def test_upgrade_on_the_test_database(db_url: str) -> None:
    # the database the rest of the suite runs on (SQLite, or PostgreSQL when configured)
    await _check_upgrade(db_url)


def test_plain_urls_get_async_drivers() -> None:
    assert async_url("sqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"
    assert async_url("sqlite+aiosqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"
    assert async_url("postgresql://u:p@h:5432/db") == "postgresql+asyncpg://u:p@h:5432/db"
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgresql+psycopg2://u@h/db") == "postgresql+asyncpg://u@h/db"
    for bad in ("mysql://u@h/db", "not a url"):
        try:
            async_url(bad)
        except DatabaseURLError as exc:
            assert bad in str(exc) or "mysql" in str(exc)
        else:  # pragma: no cover - the assertion below reports it
            raise AssertionError(f"{bad!r} accepted")

"""The knowledge version: how every worker, and the saved index files, know whether an index is current.

Every change to the entries raises ``knowledge_state.version`` in the writer's own transaction and
logs the entries it touched in ``knowledge_changes`` under that version. Raising the version takes
the row's lock, so writers commit one after the other in version order: a reader that sees version
N has every change up to N. A worker whose index holds version V replays the entries logged after V
(``changes_since``); a change of more than ``FULL_CHANGE`` entries (a large import) is not logged
entry by entry but marks ``full_version``, and a worker behind it reloads its whole index.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.models import KnowledgeChange, KnowledgeState

FULL_CHANGE = 2000  # entries a change may log one by one; more: a full reload for workers behind it
KEEP_VERSIONS = 10_000  # versions the log keeps; a worker further behind reloads everything
_PRUNE_EVERY = 500


@dataclass(frozen=True, slots=True)
class State:
    """The knowledge version, the last one that must be loaded whole, and the knowledge's id."""

    version: int
    full_version: int
    kb_id: str


async def read_state(sessions: async_sessionmaker[AsyncSession]) -> State:
    """The current state (created at version 1 if its row is missing)."""
    async with sessions() as session:
        row = (
            await session.execute(select(KnowledgeState).where(KnowledgeState.id == 1))
        ).scalar_one_or_none()
        if row is not None:
            return State(row.version, row.full_version, row.kb_id)
    try:
        async with sessions() as session, session.begin():
            session.add(KnowledgeState(id=1, version=1, full_version=1, kb_id=secrets.token_hex(8)))
    except IntegrityError:  # another worker created it first
        pass
    return await read_state(sessions)


async def current_version(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The knowledge version alone (what the workers poll)."""
    async with sessions() as session:
        return int(await session.scalar(select(KnowledgeState.version).where(KnowledgeState.id == 1)) or 0)


async def version_in(session: AsyncSession) -> int | None:
    """The knowledge version as the caller's transaction sees it (None: no state row yet)."""
    return await session.scalar(select(KnowledgeState.version).where(KnowledgeState.id == 1))


async def record_change(session: AsyncSession, entry_ids: Collection[str]) -> int:
    """In the writer's transaction, as its last statement: raise the version (the row stays locked
    until the commit) and log the changed entries; returns the new version."""
    stmt = (
        update(KnowledgeState)
        .where(KnowledgeState.id == 1)
        .values(version=KnowledgeState.version + 1)
        .returning(KnowledgeState.version)
    )
    version = (await session.execute(stmt)).scalar_one_or_none()
    if version is None:
        raise RuntimeError("knowledge_state has no row: run the migrations")
    ids = sorted(set(entry_ids))
    if len(ids) > FULL_CHANGE:
        await _mark_full(session, version, version)
    elif ids:
        await session.execute(insert(KnowledgeChange), [{"version": version, "entry_id": i} for i in ids])
    if version % _PRUNE_EVERY == 0 and version > KEEP_VERSIONS:
        await _mark_full(session, version, version - KEEP_VERSIONS)
    return int(version)


async def _mark_full(session: AsyncSession, version: int, full: int) -> None:
    """Workers behind ``full`` reload everything: the log before it is no longer needed."""
    state = update(KnowledgeState).where(KnowledgeState.id == 1, KnowledgeState.full_version < full)
    await session.execute(state.values(full_version=full))
    await session.execute(delete(KnowledgeChange).where(KnowledgeChange.version <= full))


async def changes_since(
    sessions: async_sessionmaker[AsyncSession], version: int
) -> tuple[State, list[str] | None]:
    """The state, and the entries changed after ``version`` up to it (None: too many, or no longer
    logged: reload everything)."""
    state = await read_state(sessions)
    if state.version <= version:
        return state, []
    if state.full_version > version:
        return state, None
    async with sessions() as session:
        stmt = select(KnowledgeChange.entry_id).where(
            KnowledgeChange.version > version, KnowledgeChange.version <= state.version
        )
        ids = sorted(set(await session.scalars(stmt)))
    return state, ids

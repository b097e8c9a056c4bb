"""Canned replies: texts staff insert when answering a ticket; editors add, change and delete them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.models import CannedReply, utcnow
from knowledge.text import storable

MAX_TITLE = 100
MAX_TEXT = 4000


class CannedError(ValueError):
    """A canned reply that cannot be saved or found."""


class CannedReplies:
    """The canned replies in the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def all(self) -> Sequence[CannedReply]:
        """Every canned reply, by title."""
        async with self.sessions() as session:
            return list(await session.scalars(select(CannedReply).order_by(CannedReply.title)))

    async def save(self, title: str, text: str, by: str, reply_id: int | None = None) -> CannedReply:
        """Add a canned reply, or change the one with ``reply_id``; titles are unique."""
        title, text = storable(title).strip(), storable(text).strip()
        if not 1 <= len(title) <= MAX_TITLE or not 1 <= len(text) <= MAX_TEXT:
            raise CannedError(f"标题需要 1-{MAX_TITLE} 字，内容需要 1-{MAX_TEXT} 字")
        async with self.sessions() as session, session.begin():
            same = await session.scalar(select(CannedReply).where(CannedReply.title == title))
            if same is not None and same.id != reply_id:
                raise CannedError(f"已有标题为「{title}」的常用答复")
            if reply_id is None:
                row = CannedReply(title=title, text=text, updated_by=by)
                session.add(row)
            else:
                found = await session.get(CannedReply, reply_id)
                if found is None:
                    raise CannedError(f"没有常用答复 #{reply_id}")
                row = found
                row.title, row.text, row.updated_by, row.updated_at = title, text, by, utcnow()
        return row

    async def delete(self, reply_id: int) -> None:
        """Delete one canned reply."""
        async with self.sessions() as session, session.begin():
            row = await session.get(CannedReply, reply_id)
            if row is None:
                raise CannedError(f"没有常用答复 #{reply_id}")
            await session.delete(row)

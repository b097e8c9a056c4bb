"""The services every channel shares, built once from the settings (the composition root's half)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.qa import QAService
from knowledge.db import create_engine, session_factory
from knowledge.db_lock import database_lock
from knowledge.index_files import index_dir_for
from knowledge.schema import ensure_schema
from knowledge.segment import Lexicon
from knowledge.store import KnowledgeBase, default_paths


@dataclass
class Services:
    """Settings, database, knowledge base and the question-answering service."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    kb: KnowledgeBase
    qa: QAService
    watcher: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, settings: Settings, *, build_index: bool = True, lexicon: Lexicon | None = None
    ) -> Services:
        """Open the database (migrating it), load the lexicon (unless given) and build the index."""
        db = settings.database
        pool = {"pool_size": db.pool_size, "max_overflow": db.max_overflow, "pool_timeout": db.pool_timeout}
        engine = create_engine(db.url, echo=db.echo, pool=pool)
        m = settings.matching
        try:
            if lexicon is None:
                # The schema check and the jieba dictionary load are independent: overlap them.
                lex_task = asyncio.create_task(
                    asyncio.to_thread(Lexicon.load, m.synonyms_file or None, m.user_dict_file or None)
                )
                await ensure_schema(engine)
                lexicon = await lex_task
            else:
                await ensure_schema(engine)
        except BaseException:
            await engine.dispose()
            raise
        sessions = session_factory(engine)
        index_dir = index_dir_for(db.url, db.index_dir)
        kb = KnowledgeBase(sessions, lexicon, index_dir)
        watcher = None
        if build_index:
            try:
                # Answering first: a first build's files are written behind it (1.5-3 s of a 100k build).
                await kb.load_index(save_behind=True)
            except BaseException:
                await engine.dispose()
                raise
            if db.index_poll_seconds > 0:
                watcher = asyncio.create_task(kb.watch(db.index_poll_seconds))
        return cls(settings, engine, sessions, kb, QAService(kb, settings.matching), watcher)

    async def load_default_if_empty(self) -> bool:
        """Load the shipped knowledge base into an empty database (``run`` and ``chat`` only); workers
        started together load it once (the others wait on the database lock, then find it loaded)."""
        if await self.kb.count() > 0:
            return False
        async with database_lock(self.engine, "default-knowledge"):
            if await self.kb.count() > 0:
                return False
            await self.kb.import_paths(default_paths())
        return True

    async def close(self) -> None:
        """Stop watching the knowledge version, finish a background index rebuild, then release the
        database."""
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        await self.kb.wait_for_rebuild()
        await self.engine.dispose()

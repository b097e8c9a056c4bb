"""The knowledge base: entries in the database and the in-memory index kept in step with them.

Every change (import, staff edit, save-as-knowledge, retire) goes through here, so the index is
updated in place the moment the transaction commits, without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge import index_files, versions
from knowledge.bulk import bulk_import
from knowledge.collector import collector_paused, settle
from knowledge.importers import ImportCounts, apply_entries, entry_to_parsed
from knowledge.importers.base import DESK_KINDS, ParsedEntry, check_entry
from knowledge.index import Index, IndexBuilder, Parts, token_signature, tokenize_entry
from knowledge.index_files import index_signature
from knowledge.models import Entry, EntryRevision, utcnow
from knowledge.retrieve import Matcher
from knowledge.segment import Lexicon
from knowledge.text import compact

DEFAULT_KB = Path(__file__).parent / "data"
DEFAULT_KB_DIRS = ("documents", "guides", "policies", "faq", "desk")
log = logging.getLogger("policybot.knowledge")

LOAD_BATCH = 2000  # rows read (and tokenized) at a time while building the index
ANSWER_CACHE = 1024  # entries kept in memory for answering (``answer_entry``)
# What a build reads of an entry (``make_doc`` and ``IndexBuilder.add``).
INDEX_COLUMNS = (
    Entry.id, Entry.kind, Entry.title, Entry.question, Entry.parent_id, Entry.answer, Entry.sections,
    Entry.status, Entry.tokens,
)  # fmt: skip


def default_paths() -> list[Path]:
    """The shipped default knowledge base: the seed document, guides, policies, FAQ, and the front
    desk's small talk and referrals to other bodies."""
    return [DEFAULT_KB / d for d in DEFAULT_KB_DIRS if (DEFAULT_KB / d).exists()]


class KnowledgeBase:
    """Entries (database) + index (memory, saved as files) + matcher.

    The index holds a knowledge version (``knowledge.versions``): a change made here is applied to
    it at once; a change made by another worker or process reaches it through ``sync`` (which
    ``watch`` calls when the database's version moves)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], lexicon: Lexicon, index_dir: Path | None = None
    ) -> None:
        self.sessions = sessions
        self.lex = lexicon
        self.token_sig = token_signature(lexicon)
        self.index_sig = index_signature(self.token_sig)
        self.index_dir = index_dir
        self.index = Index(lexicon)
        self.matcher = Matcher(self.index)
        self.version = 0  # the knowledge version the index holds (0: none yet)
        self.kb_id = ""
        self._lock = asyncio.Lock()  # one change of the index at a time, in version order
        self._rebuild_task: asyncio.Task[None] | None = None
        self._saving: asyncio.Task[None] | None = None  # the index files being written (``_save``)
        self._importing = 0
        # Entries read to answer, until the index changes them (``answer_entry``); the generation
        # counts those changes, so that a read overtaken by one is not kept.
        self._answers: OrderedDict[str, Entry] = OrderedDict()
        self._generation = 0
        self._category_names: tuple[int, dict[str, str]] | None = None  # (version, compact -> name)
        # A serving process settles the collector after each full build (``collector.settle``).
        self.settle_after_build = False

    # -- index --------------------------------------------------------------------------------------
    async def load_index(self, *, save_behind: bool = False) -> int:
        """Load the index from its saved files when they are usable (then replay the changes made
        since), else build it from the entries and save it (``save_behind``: return once it answers,
        the files written behind it, as a start does). Returns the number of indexed entries."""
        state = await versions.read_state(self.sessions)
        loaded: int | None = None
        full = True
        if self.index_dir is not None:
            async with self._lock:
                bounds = (state.full_version, state.version)
                loaded = await asyncio.to_thread(
                    index_files.load, self.index_dir, self.index, state.kb_id, self.index_sig, bounds
                )
                if loaded is not None:
                    self._forget_answers()
                    self.version, self.kb_id = loaded, state.kb_id
                    log.info("index loaded from files", extra={"version": loaded, "entries": len(self.index)})
                    full = await self._catch_up()
            if loaded is not None and not full:
                return len(self.index)
        return await self.rebuild(save_behind=save_behind)

    async def rebuild(self, *, save_behind: bool = False) -> int:
        """Build the index from every published entry, a batch of rows at a time (first caching the
        tokens of entries that lack them), then save it as files (``save_behind``: see ``_install``)."""
        await self._refresh_stale_tokens()
        # Read before the rows: a change committed while they are read is replayed after.
        state = await versions.read_state(self.sessions)
        builder = IndexBuilder(self.index)
        with collector_paused():
            async with self.sessions() as session:
                # Only the columns the index reads, as plain rows (no ORM objects, and two JSON
                # columns decoded instead of six): a batch is freed once the builder has it.
                published = select(*INDEX_COLUMNS).where(Entry.status == "published").order_by(Entry.id)
                rows = await session.stream(published.execution_options(yield_per=LOAD_BATCH))
                async for batch in rows.partitions():
                    await asyncio.to_thread(builder.add, [(r, r.tokens) for r in batch])  # type: ignore[misc]
            return await self._install(builder, state.version, state.kb_id, save_behind)

    async def _install(
        self, builder: IndexBuilder, version: int, kb_id: str, save_behind: bool = False
    ) -> int:
        """Make a full build (of the knowledge at ``version``) the index, replay what changed since,
        and save it as files; with ``save_behind``, return once it answers and write the files in
        the background (``saved`` waits for them). Returns the number of indexed entries."""
        parts = await asyncio.to_thread(self.index.prepare, builder)
        async with self._lock:
            self.index.install_parts(*parts)
            self._forget_answers()
            parts = self.index.parts()
            self.version, self.kb_id = version, kb_id
            await self._catch_up()
        if self.settle_after_build:
            settle()
        if self.index_dir is not None:
            self._saving = asyncio.get_running_loop().create_task(
                self._save(parts, version, kb_id, self._saving)
            )
            if not save_behind:
                await self.saved()
        return len(builder.docs)

    async def _save(
        self, parts: Parts, version: int, kb_id: str, previous: asyncio.Task[None] | None
    ) -> None:
        """Write a built index's files, after those of the build before it (a snapshot prunes the
        older ones: out of order, an older one would prune a newer). The index answers meanwhile:
        the files only spare the next start a build (1.5-3 s of a 100k build, BENCHMARKS.md)."""
        if previous is not None:
            await asyncio.wait([previous])  # (its failure is its own, logged there)
        assert self.index_dir is not None
        try:
            await asyncio.to_thread(index_files.save, parts, self.index_dir, kb_id, self.index_sig, version)
        except Exception:  # (the files are a cache: failing to write them fails no build)
            log.exception("could not save the index files (the index in memory still answers)")

    async def saved(self) -> None:
        """Wait until the index files of the last build are written (or failed to be)."""
        while self._saving is not None and not self._saving.done():
            await asyncio.wait([self._saving])

    async def sync(self) -> None:
        """Bring the index to the database's knowledge version (changes by other workers)."""
        async with self._lock:
            full = await self._catch_up()
        if full:
            await self.load_index()

    async def _catch_up(self) -> bool:
        """Replay the entries changed after the index's version (the lock held); True when the log
        no longer has them all (a large import, or far behind): the caller reloads everything."""
        state, ids = await versions.changes_since(self.sessions, self.version)
        if ids is None:
            return True
        rows: list[Entry] = []
        for i in range(0, len(ids), 500):
            async with self.sessions() as session:
                rows += await session.scalars(select(Entry).where(Entry.id.in_(ids[i : i + 500])))
        for row in rows:
            if row.token_sig != self.token_sig:  # tokenized with another lexicon: in memory only
                self._tokenize(row)
        present = {r.id for r in rows}
        self._apply_to_index(rows, [i for i in ids if i not in present])
        self.version = max(self.version, state.version)
        return False

    async def watch(self, interval: float) -> None:
        """Poll the knowledge version every ``interval`` seconds and catch up when another worker or
        process changed the knowledge (run as a task; cancel it to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                if not self._importing and await versions.current_version(self.sessions) != self.version:
                    await self.sync()
            except Exception:
                log.exception("knowledge version check failed (retried)")

    async def _refresh_stale_tokens(self) -> None:
        """Tokenize (and store) the published entries whose cached tokens are missing or stale."""
        stale_rows = select(Entry.id).where(Entry.status == "published", Entry.token_sig != self.token_sig)
        async with self.sessions() as session:
            stale = list(await session.scalars(stale_rows))
        for i in range(0, len(stale), LOAD_BATCH):
            async with self.sessions() as session, session.begin():
                rows = await session.scalars(select(Entry).where(Entry.id.in_(stale[i : i + LOAD_BATCH])))
                for r in rows:
                    self._tokenize(r)

    def _apply_to_index(self, rows: Iterable[Entry], removed: Iterable[str] = ()) -> None:
        removed = list(removed)
        for entry_id in removed:
            self.index.remove(entry_id)
        rows = list(rows)
        self._forget_answers([*removed, *(r.id for r in rows)])
        needs_rebuild = False
        for row in rows:
            needs_rebuild |= self.index.upsert(row, row.tokens)
        if needs_rebuild and (self._rebuild_task is None or self._rebuild_task.done()):
            self._rebuild_task = asyncio.get_running_loop().create_task(self.load_index_quietly())

    async def _applied(self, version: int, rows: Sequence[Entry], removed: Sequence[str]) -> None:
        """Apply this worker's own committed change at once; the index's version follows only when
        no other worker's change came between (else ``sync`` replays them all, this one too)."""
        async with self._lock:
            self._apply_to_index(rows, removed)
            if version == self.version + 1:
                self.version = version

    def _tokenize(self, row: Entry) -> None:
        """Cache the index tokens of a row (written with the row)."""
        row.tokens, row.token_sig = tokenize_entry(row, self.lex), self.token_sig

    async def wait_for_rebuild(self) -> None:
        """Wait for a background rebuild that is under way, and for the index files to be written
        (before the database is closed)."""
        if self._rebuild_task is not None and not self._rebuild_task.done():
            await self._rebuild_task
        await self.saved()

    async def load_index_quietly(self) -> None:
        """A full rebuild in the background (folds the delta segment in, saves the files). A failure
        is logged: the index in place, delta included, still answers, and the next change tries again."""
        try:
            await self.rebuild()
        except Exception:
            log.exception("background index rebuild failed")

    # -- writing ------------------------------------------------------------------------------------
    async def import_paths(self, paths: Sequence[str | Path], actor: str = "") -> ImportCounts:
        """Import files in one transaction, a batch at a time (``knowledge.bulk``): a bad line
        anywhere raises ImportFailure and nothing is written. A few changes reach the index entry by
        entry; many (or an index not loaded yet) are followed by one full load, which saves it. With
        an ``actor``, each added, changed or dropped entry's change is kept as a revision. Into an
        empty knowledge base the index is built during the import instead (``knowledge.bulk``)."""
        self._importing += 1  # (``watch`` leaves this worker's own import to it)
        try:
            with collector_paused():
                return await self._import(paths, actor)
        finally:
            self._importing -= 1

    async def _import(self, paths: Sequence[str | Path], actor: str) -> ImportCounts:
        """``import_paths``' work: the import, then the index brought up to it."""
        async with self.sessions() as session, session.begin():
            along = IndexBuilder(self.index)
            result = await bulk_import(session, paths, self.lex, self.token_sig, actor, along)
        if not result.version:
            return result.counts
        if result.built is not None:
            state = await versions.read_state(self.sessions)
            await self._install(result.built, result.version, state.kb_id)
        elif result.rows is not None and self.version:
            await self._applied(result.version, result.rows, result.counts.removed_ids)
        elif self.version and result.rows is None:
            await self.rebuild()
        else:  # not loaded: the saved files and the change log, or a build
            await self.load_index()
        return result.counts

    async def write_entries(
        self, entries: Sequence[ParsedEntry], actor: str = "", action: str = "edit"
    ) -> ImportCounts:
        """Upsert entries in one transaction and update the index in place. With an ``actor`` (a staff
        member), each changed entry's record before and after is kept as a revision."""
        async with self.sessions() as session, session.begin():
            before = await _records(session, [e.id for e in entries]) if actor else {}
            counts = await apply_entries(session, entries)
            changed = []
            if counts.changed_ids:
                changed = list(await session.scalars(select(Entry).where(Entry.id.in_(counts.changed_ids))))
                for row in changed:
                    self._tokenize(row)
            if actor:
                for row in changed:
                    old = before.get(row.id)
                    _revision(session, row.id, actor, action if old else "create", old, _record(row))
                for gone in counts.removed_ids:
                    _revision(session, gone, actor, "remove", before.get(gone), None)
            touched = [*counts.changed_ids, *counts.removed_ids]
            version = await versions.record_change(session, touched) if touched else 0
        if version:
            await self._applied(version, changed, counts.removed_ids)
        return counts

    async def save_entry(self, entry: ParsedEntry, actor: str = "") -> ImportCounts:
        """Validate and upsert one entry (staff edits, save-as-knowledge)."""
        check_entry(entry, "entry", None)
        return await self.write_entries([entry], actor=actor)

    async def add_alternate(self, entry_id: str, question: str, actor: str = "") -> bool:
        """Add a phrasing to an existing entry's alternates; False if no such entry."""
        async with self.sessions() as session, session.begin():
            row = await session.get(Entry, entry_id)
            if row is None:
                return False
            if question not in row.alternates and question != row.question:
                old = _record(row)
                row.alternates = [*row.alternates, question]
                row.content_hash = entry_to_parsed(row).content_hash()
                row.updated_at = utcnow()
                self._tokenize(row)
                if actor:
                    _revision(session, row.id, actor, "alternate", old, _record(row))
                version = await versions.record_change(session, [row.id])
            else:
                return True
        await self._applied(version, [row], [])
        return True

    async def set_status(self, entry_id: str, status: str, actor: str = "", action: str = "status") -> bool:
        """Publish, draft or retire (expire) an entry; the index follows at once."""
        async with self.sessions() as session, session.begin():
            row = await session.get(Entry, entry_id)
            if row is None:
                return False
            old = _record(row)
            row.status = status
            row.updated_at = utcnow()
            row.content_hash = entry_to_parsed(row).content_hash()
            if row.token_sig != self.token_sig:
                self._tokenize(row)
            if actor and old["status"] != status:
                _revision(session, row.id, actor, action, old, _record(row))
            version = await versions.record_change(session, [row.id])
        await self._applied(version, [row], [])
        return True

    async def revisions(self, entry_id: str, limit: int = 100) -> list[EntryRevision]:
        """The kept changes of an entry, newest first."""
        async with self.sessions() as session:
            return list(
                await session.scalars(
                    select(EntryRevision)
                    .where(EntryRevision.entry_id == entry_id)
                    .order_by(EntryRevision.id.desc())
                    .limit(limit)
                )
            )

    # -- reading ------------------------------------------------------------------------------------
    async def get(self, entry_id: str) -> Entry | None:
        """One entry by id."""
        async with self.sessions() as session:
            return await session.get(Entry, entry_id)

    async def answer_entry(self, entry_id: str) -> Entry | None:
        """An entry to answer with: read once, then kept in memory (up to ``ANSWER_CACHE``) until a
        change reaches the index (this worker's, or another's through ``sync``), so an answer is
        never older than the index that chose it. Callers only read it."""
        kept = self._answers.get(entry_id)
        if kept is not None:
            self._answers.move_to_end(entry_id)
            return kept
        generation = self._generation
        entry = await self.get(entry_id)
        if entry is not None and generation == self._generation:
            self._answers[entry_id] = entry
            if len(self._answers) > ANSWER_CACHE:
                self._answers.popitem(last=False)
        return entry

    def _forget_answers(self, ids: Iterable[str] | None = None) -> None:
        """Drop the kept entries the index just changed (``None``: all of them)."""
        self._generation += 1
        if ids is None:
            self._answers.clear()
        else:
            for entry_id in ids:
                self._answers.pop(entry_id, None)

    async def get_many(self, ids: Sequence[str]) -> dict[str, Entry]:
        """Entries by id."""
        if not ids:
            return {}
        async with self.sessions() as session:
            rows = await session.scalars(select(Entry).where(Entry.id.in_(list(ids))))
            return {r.id: r for r in rows}

    async def entries(
        self,
        kind: str | None = None,
        category: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Entry]:
        """Entries ordered by kind, parent, position and id."""
        stmt = select(Entry).order_by(Entry.kind, Entry.parent_id, Entry.position, Entry.id).limit(limit)
        if kind:
            stmt = stmt.where(Entry.kind == kind)
        if category:
            stmt = stmt.where(Entry.category == category)
        if status:
            stmt = stmt.where(Entry.status == status)
        async with self.sessions() as session:
            return list(await session.scalars(stmt))

    async def count(self) -> int:
        """Number of stored entries, any status."""
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Entry)) or 0)

    async def stats(self) -> dict[str, Any]:
        """Counts by kind, status and category, and what the loaded index holds (the entries the bot
        can answer with: published ones), by kind."""
        async with self.sessions() as session:
            rows = (await session.execute(select(Entry.kind, Entry.status, Entry.category))).all()
        with self.index.reading():
            alive = self.index.alive
            indexed = Counter(self.index.docs[i].kind for i in range(len(alive)) if alive[i])
        return {
            "total": len(rows),
            "by_kind": dict(Counter(r[0] for r in rows)),
            "by_status": dict(Counter(r[1] for r in rows)),
            "by_category": dict(Counter(r[2] or "(none)" for r in rows)),
            "indexed": sum(indexed.values()),
            "indexed_by_kind": dict(indexed),
        }

    async def categories(self, topics_only: bool = False) -> list[tuple[str, int]]:
        """Published categories with their entry counts (clauses and Q&A children not counted).
        ``topics_only``: the bureau's own knowledge, as residents are offered it (the welcome,
        subscriptions): not the front desk's small talk and referrals (``DESK_KINDS``), whose
        categories (问候, 闲聊, 其他部门事项...) are no topic to ask about or subscribe to."""
        where = [Entry.status == "published", Entry.parent_id.is_(None), Entry.category != ""]
        if topics_only:
            where.append(Entry.kind.not_in(DESK_KINDS))
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Entry.category, func.count())
                    .where(*where)
                    .group_by(Entry.category)
                    .order_by(Entry.category)
                )
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    async def category_named(self, said: str) -> str | None:
        """The topic category (``categories(topics_only=True)``) whose name, compacted, is ``said``
        (a resident typing a category the greeting lists), or None. The names are read once a
        knowledge version, not once a message."""
        if self._category_names is None or self._category_names[0] != self.version:
            names = {compact(name): name for name, _ in await self.categories(topics_only=True)}
            self._category_names = (self.version, names)
        return self._category_names[1].get(said)

    async def export_lines(self) -> list[str]:
        """Every entry as one JSON line, in a form ``kb import`` reads back unchanged."""
        rows = await self.entries(limit=10_000_000)
        return [json.dumps(entry_to_parsed(r).as_record(), ensure_ascii=False, sort_keys=True) for r in rows]


def _record(row: Entry) -> dict[str, Any]:
    """What a revision keeps of an entry: its export record."""
    return entry_to_parsed(row).as_record()


async def _records(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The current records of these entries and of their children (a write may remove children)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        rows = await session.scalars(select(Entry).where(Entry.id.in_(chunk) | Entry.parent_id.in_(chunk)))
        out.update({r.id: _record(r) for r in rows})
    return out


def _revision(
    session: AsyncSession,
    entry_id: str,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        EntryRevision(entry_id=entry_id, actor=actor[:100], action=action, before=before, after=after)
    )

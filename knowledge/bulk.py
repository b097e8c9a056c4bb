"""Bulk import: a batch of entries at a time, tokenized in parallel processes and written with bulk
statements, all in one transaction.

Files are read a line at a time (``iter_paths``); each batch of ``BATCH`` entries is compared with the
stored rows (content hash), the new and changed ones are tokenized (in ``TOKENIZERS`` worker
processes for a large import: jieba is pure Python, and tokenizing is most of an import) while the
previous batch is written with one INSERT and one UPDATE statement. A bad line anywhere raises
``ImportFailure`` and the transaction writes nothing. Memory follows the batch, not the file: only
the ids seen are kept (to reject duplicates and to find the children a new version dropped).

Imported into an empty knowledge base (the first load of a large FAQ), the index is built along the
way from the rows and tokens at hand (``IndexBuilder``, in a thread while the batch is written), so
the caller need not read 100k rows back; it is only handed over when no other writer changed the
knowledge during the import (the version moved by exactly this import's one step).

With an ``actor`` (``policybot kb import``), each added, changed or dropped entry gets a revision in
the same transaction (``EntryRevision``, as the console's edits do: the record before and after), so
the entry's history shows the import and it can be reverted. They are written with the batch's own
bulk INSERT; a changed entry's old record is read with one query a batch.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge import versions
from knowledge.db import EncodedJSON
from knowledge.importers import ImportCounts, ParsedEntry, entry_columns, entry_to_parsed, iter_paths
from knowledge.index import IndexBuilder, tokenize_entry
from knowledge.models import Entry, EntryRevision, utcnow
from knowledge.segment import Lexicon

BATCH = 2000  # entries read, compared, tokenized and written at a time
PARALLEL_FROM = 1000  # a batch this large is tokenized by worker processes (smaller: not worth it)
TOKENIZERS = min(2, os.cpu_count() or 1)
APPLY_IN_PLACE = 1000  # changes up to this many are applied to the index entry by entry; more: rebuild
IMPORT_ACTION = "import"  # the action of the revisions an import keeps
IMPORT_ACTOR = "kb import"  # their actor when ``policybot kb import`` runs the import

Row = dict[str, Any]
_Batch = tuple[
    list[Row], list[Row], list[Row], "asyncio.Task[list[dict[str, Any]] | list[EncodedJSON]]"
]  # new, changed, revisions, tokens
ENTRIES, REVISIONS = cast(Table, Entry.__table__), cast(Table, EntryRevision.__table__)
_LEXICON: Lexicon | None = None  # the worker processes' (inherited when they are forked)


@dataclass
class BulkResult:
    """What an import did, its version, and the changed rows when few (else the index is rebuilt)."""

    counts: ImportCounts
    version: int = 0
    rows: list[Entry] | None = field(default_factory=list)
    built: IndexBuilder | None = None  # the whole index, built along (see the module docstring)


def _tokenize_rows(rows: list[Row]) -> list[EncodedJSON]:
    """In a worker process: the index tokens of each row (``tokenize_entry``), as the JSON text the
    tokens column stores (encoding them here, in parallel, spares the importing process both
    unpickling the tokens and encoding them: it is the busiest of the processes)."""
    assert _LEXICON is not None
    encode = json.JSONEncoder(ensure_ascii=False).encode
    return [EncodedJSON(encode(tokenize_entry(Entry(**r), _LEXICON))) for r in rows]


def _decoded(tokens: dict[str, Any] | EncodedJSON) -> dict[str, Any]:
    """Tokens as the index reads them, from a worker process's JSON text or as they are."""
    return cast(dict[str, Any], json.loads(tokens)) if isinstance(tokens, EncodedJSON) else tokens


class Tokenizers:
    """Tokenizing a batch: in this process for a small one, else split over worker processes."""

    def __init__(self, lex: Lexicon) -> None:
        self.lex = lex
        self._pool: Executor | None = None
        self._in_process = asyncio.Lock()

    async def tokenize(self, rows: list[Row]) -> list[dict[str, Any]] | list[EncodedJSON]:
        """The tokens of each row, in order (from the worker processes: as JSON text)."""
        if len(rows) < PARALLEL_FROM or TOKENIZERS < 2:
            async with self._in_process:  # one thread at a time on the lexicon's caches
                return await asyncio.to_thread(lambda: [tokenize_entry(Entry(**r), self.lex) for r in rows])
        loop = asyncio.get_running_loop()
        pool = self._start()
        step = -(-len(rows) // TOKENIZERS)
        parts = [rows[i : i + step] for i in range(0, len(rows), step)]
        done = await asyncio.gather(*(loop.run_in_executor(pool, _tokenize_rows, p) for p in parts))
        return [t for part in done for t in part]

    def _start(self) -> Executor:
        """The worker processes, forked on first use so that they share the loaded lexicon."""
        global _LEXICON
        if self._pool is None:
            _LEXICON = self.lex
            # (forked during an import, with the parent's collector paused: theirs runs again)
            self._pool = ProcessPoolExecutor(
                TOKENIZERS, mp_context=get_context("fork"), initializer=gc.enable
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


async def bulk_import(
    session: AsyncSession,
    paths: Iterable[str | Path],
    lex: Lexicon,
    token_sig: str,
    actor: str = "",
    builder: IndexBuilder | None = None,
) -> BulkResult:
    """Import the files in the caller's transaction (see the module docstring); with an ``actor``, keep
    a revision of each entry the import adds, changes or drops; with a ``builder``, build the index
    along when the knowledge base is empty (``BulkResult.built``)."""
    result = BulkResult(ImportCounts())
    start_version = await versions.version_in(session) if builder is not None else None
    if start_version is None or await session.scalar(select(Entry.id).limit(1)) is not None:
        builder = None
    seen: set[str] = set()
    parents: set[str] = set()
    entries = iter_paths(paths)
    tokenizers = Tokenizers(lex)
    pending: list[asyncio.Task[Any]] = []

    def later(job: Any) -> asyncio.Task[Any]:
        """A task cancelled on failure; finished ones are let go (each holds a batch)."""
        pending[:] = [t for t in pending if not t.done()]
        pending.append(task := asyncio.ensure_future(job))
        return task

    async def finish(previous: _Batch) -> None:
        """Wait for a batch's tokens, then write it."""
        new, changed, revisions, tokenizing = previous
        for row, toks in zip(new + changed, await tokenizing, strict=True):
            row["tokens"], row["token_sig"] = toks, token_sig
        _keep(result, new + changed)
        adding = None
        if builder is not None:  # (an empty knowledge base: every row is new)
            adding = later(asyncio.to_thread(_add_to, builder, new))
        await _write(session, new, changed, revisions)
        if adding is not None:
            await adding

    try:
        reading = later(asyncio.to_thread(_take, entries, BATCH))
        previous: _Batch | None = None
        while batch := await reading:
            seen.update(e.id for e in batch)
            parents.update(e.id for e in batch if e.kind in ("policy", "guide"))
            new, changed = await _compare(session, batch, result.counts)
            revisions = await _revisions(session, batch, new, changed, actor) if actor else []
            # Queued behind the previous batch's tokenizing, so the worker processes never wait for
            # this process: while they work, it reads the next batch and writes the previous one.
            tokenizing = later(tokenizers.tokenize(new + changed))
            reading = later(asyncio.to_thread(_take, entries, BATCH))
            if previous is not None:
                await finish(previous)
            previous = new, changed, revisions, tokenizing
        if previous is not None:
            await finish(previous)
        await _remove_dropped_children(session, parents, seen, result.counts, actor)
        touched = [*result.counts.changed_ids, *result.counts.removed_ids]
        if touched:
            result.version = await versions.record_change(session, touched)
        if builder is not None and start_version is not None and result.version == start_version + 1:
            result.built = builder
    finally:
        for task in pending:
            if not task.done():
                task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(tokenizers.close)
    return result


def _add_to(builder: IndexBuilder, rows: list[Row]) -> None:
    """Index a batch of new rows (in a thread, while the batch is written)."""
    builder.add([(SimpleNamespace(**r), _decoded(r["tokens"])) for r in rows])  # type: ignore[misc]


def _take(entries: Iterator[ParsedEntry], n: int) -> list[ParsedEntry]:
    return list(islice(entries, n))


async def _compare(
    session: AsyncSession, batch: list[ParsedEntry], counts: ImportCounts
) -> tuple[list[Row], list[Row]]:
    """The rows of a batch to insert and to update (unchanged entries are counted and skipped)."""
    ids = [e.id for e in batch]
    result = await session.execute(select(Entry.id, Entry.content_hash).where(Entry.id.in_(ids)))
    stored = {entry_id: digest for entry_id, digest in result}
    now = utcnow()
    new: list[Row] = []
    changed: list[Row] = []
    for e in batch:
        digest = e.content_hash()
        old = stored.get(e.id)
        if old == digest:
            counts.unchanged += 1
            continue
        row = {**entry_columns(e), "content_hash": digest, "updated_at": now}
        if old is None:
            new.append(row | {"created_at": now})
            counts.added += 1
        else:
            changed.append(row)
            counts.updated += 1
        counts.changed_ids.append(e.id)
    return new, changed


async def _revisions(
    session: AsyncSession, batch: list[ParsedEntry], new: list[Row], changed: list[Row], actor: str
) -> list[Row]:
    """The revision rows of a batch's new and changed entries (the old records read in one query)."""
    if not new and not changed:
        return []
    touched = {r["id"] for r in new} | {r["id"] for r in changed}
    before: dict[str, dict[str, Any]] = {}
    if changed:
        ids = [r["id"] for r in changed]
        before = {
            row.id: _record(row) for row in await session.scalars(select(Entry).where(Entry.id.in_(ids)))
        }
    now = utcnow()
    return [
        _revision_row(e.id, actor, IMPORT_ACTION, before.get(e.id), e.as_record(), now)
        for e in batch
        if e.id in touched
    ]


def _record(row: Entry) -> dict[str, Any]:
    """What a revision keeps of a stored entry: its export record (as ``KnowledgeBase`` keeps it)."""
    return entry_to_parsed(row).as_record()


def _revision_row(
    entry_id: str, actor: str, action: str, before: Row | None, after: Row | None, at: datetime
) -> Row:
    """An ``EntryRevision`` row for a bulk INSERT."""
    return {
        "entry_id": entry_id, "actor": actor[:100], "action": action, "before": before, "after": after,
        "created_at": at,
    }  # fmt: skip


async def _write(session: AsyncSession, new: list[Row], changed: list[Row], revisions: list[Row]) -> None:
    """One bulk INSERT for the new rows, one bulk UPDATE (by primary key) for the changed ones, one
    bulk INSERT for their revisions."""
    # Core statements on the tables: the ORM's bulk INSERT would sort every row's keys into
    # per-mapper parameter sets first, a tenth of a large import's time, for the same statement.
    if new:
        await session.execute(insert(ENTRIES), new)
    if changed:
        await session.execute(update(Entry), changed)
    if revisions:
        await session.execute(insert(REVISIONS), revisions)


def _keep(result: BulkResult, rows: list[Row]) -> None:
    """Keep the changed rows as entries while they are few enough to apply one by one."""
    if result.rows is None:
        return
    if len(result.rows) + len(rows) > APPLY_IN_PLACE:
        result.rows = None
        return
    result.rows += [Entry(**(r | {"tokens": _decoded(r["tokens"])})) for r in rows]


async def _remove_dropped_children(
    session: AsyncSession, parents: set[str], seen: set[str], counts: ImportCounts, actor: str = ""
) -> None:
    """Delete the clauses and Q&A pairs of imported documents that their new version no longer has
    (with an ``actor``, each kept as a ``remove`` revision)."""
    ordered = sorted(parents)
    for i in range(0, len(ordered), 500):
        stale = await session.scalars(select(Entry.id).where(Entry.parent_id.in_(ordered[i : i + 500])))
        gone = [s for s in stale if s not in seen]
        if gone and actor:
            now = utcnow()
            rows = await session.scalars(select(Entry).where(Entry.id.in_(gone)))
            removed = [_revision_row(row.id, actor, "remove", _record(row), None, now) for row in rows]
            await session.execute(insert(EntryRevision), removed)
        if gone:
            await session.execute(delete(Entry).where(Entry.id.in_(gone)))
            counts.removed += len(gone)
            counts.removed_ids.extend(gone)

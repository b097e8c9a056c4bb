"""Import knowledge files: parse and validate every file first, then write all in one transaction.

A malformed file raises ``ImportFailure`` (``file:line: reason``) before anything is written.
Re-importing a file updates its entries in place (matched by id) and removes the clauses or Q&A pairs
that the new version no longer has.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.importers.base import ImportFailure, ParsedEntry
from knowledge.importers.faq import iter_csv, iter_jsonl, parse_csv, parse_jsonl
from knowledge.importers.markdown import parse_markdown
from knowledge.importers.policy_text import parse_policy_text, read_docx
from knowledge.models import Entry, utcnow

SUFFIXES = (".jsonl", ".csv", ".md", ".txt", ".docx")
MAX_FILE_BYTES = 100 * 1024 * 1024  # a large FAQ corpus is tens of MB (60k pairs: 64 MB, 3.7 GB to import)

__all__ = ["ImportCounts", "ImportFailure", "ParsedEntry", "apply_entries", "parse_file", "parse_paths"]


@dataclass
class ImportCounts:
    """What an import did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    changed_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, removed {self.removed}"
        )


def _read_text(data: bytes, path: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise ImportFailure(path, None, "not a text file in UTF-8 or GB18030")


def parse_file(path: str | Path) -> list[ParsedEntry]:
    """Parse one file by its suffix; raise ImportFailure on any problem."""
    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportFailure(
            name, None, f"unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}"
        )
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ImportFailure(name, None, f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImportFailure(name, None, "no such file") from None
    except IsADirectoryError:
        raise ImportFailure(name, None, "is a directory") from None
    except OSError as exc:
        raise ImportFailure(name, None, f"cannot read: {exc.strerror}") from None
    if suffix == ".docx":
        return parse_policy_text(read_docx(data, name), name)
    text = _read_text(data, name)
    if suffix == ".jsonl":
        return parse_jsonl(text, name)
    if suffix == ".csv":
        return parse_csv(text, name)
    if suffix == ".md":
        return parse_markdown(text, name)
    return parse_policy_text(text, name)


def iter_file(path: str | Path) -> Iterator[ParsedEntry]:
    """The entries of one file, as ``parse_file`` gives them, but a FAQ file (``.jsonl``, ``.csv``)
    is read a line at a time, so that memory follows the caller's batch, not the file; a bad line
    raises ``ImportFailure`` when it is reached (the caller's transaction then writes nothing)."""
    p, name = Path(path), str(path)
    if p.suffix.lower() not in (".jsonl", ".csv") or not p.is_file():
        yield from parse_file(path)
        return
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ImportFailure(name, None, f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        encoding = _encoding_of(p, name)
        with p.open(encoding=encoding, newline="" if p.suffix.lower() == ".csv" else None) as fh:
            yield from (iter_jsonl(fh, name) if p.suffix.lower() == ".jsonl" else iter_csv(fh, name))
    except OSError as exc:
        raise ImportFailure(name, None, f"cannot read: {exc.strerror}") from None


def _encoding_of(path: Path, name: str) -> str:
    """UTF-8 (with or without BOM) or GB18030, as ``_read_text`` decides, read in chunks."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    if "\x00" in decoder.decode(chunk):
                        raise ImportFailure(name, None, "not a text file in UTF-8 or GB18030")
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFailure(name, None, "not a text file in UTF-8 or GB18030")


def iter_paths(paths: Iterable[str | Path]) -> Iterator[ParsedEntry]:
    """The entries of every file (``iter_file``); ids must be unique across them all."""
    seen: dict[str, str] = {}
    for p in expand_paths(paths):
        for e in iter_file(p):
            if e.id in seen:
                raise ImportFailure(str(p), None, f"duplicate id {e.id!r} (also in {seen[e.id]})")
            seen[e.id] = str(p)
            yield e


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the importable files inside folders named (sorted, recursively)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES))
        else:
            out.append(p)
    return out


def parse_paths(paths: Iterable[str | Path]) -> list[ParsedEntry]:
    """Parse every file; ids must be unique across them all."""
    entries: list[ParsedEntry] = []
    seen: dict[str, str] = {}
    for p in expand_paths(paths):
        for e in parse_file(p):
            if e.id in seen:
                raise ImportFailure(str(p), None, f"duplicate id {e.id!r} (also in {seen[e.id]})")
            seen[e.id] = str(p)
            entries.append(e)
    return entries


async def apply_entries(session: AsyncSession, entries: Sequence[ParsedEntry]) -> ImportCounts:
    """Upsert parsed entries in the caller's transaction and count what changed.

    Children (clauses, Q&A pairs) of an imported parent that the new version no longer has are removed.
    """
    counts = ImportCounts()
    ids = [e.id for e in entries]
    existing: dict[str, Entry] = {}
    for chunk in _chunks(ids, 500):
        rows = await session.scalars(select(Entry).where(Entry.id.in_(chunk)))
        existing.update({r.id: r for r in rows})
    now = utcnow()
    for e in entries:
        digest = e.content_hash()
        row = existing.get(e.id)
        if row is None:
            session.add(Entry(**_columns(e), content_hash=digest, created_at=now, updated_at=now))
            counts.added += 1
            counts.changed_ids.append(e.id)
        elif row.content_hash == digest:
            counts.unchanged += 1
        else:
            for key, value in _columns(e).items():
                setattr(row, key, value)
            row.content_hash, row.updated_at, row.tokens, row.token_sig = digest, now, {}, ""
            counts.updated += 1
            counts.changed_ids.append(e.id)
    parents = {e.id for e in entries if e.kind in ("policy", "guide")}
    if parents:
        keep = set(ids)
        for chunk in _chunks(sorted(parents), 500):
            stale = await session.scalars(select(Entry.id).where(Entry.parent_id.in_(chunk)))
            gone = [s for s in stale if s not in keep]
            if gone:
                await session.execute(delete(Entry).where(Entry.id.in_(gone)))
                counts.removed += len(gone)
                counts.removed_ids.extend(gone)
    await session.flush()
    return counts


def entry_columns(e: ParsedEntry) -> dict[str, object]:
    """The database columns of a parsed entry (but its hash, tokens and times)."""
    return _columns(e)


def _columns(e: ParsedEntry) -> dict[str, object]:
    return {
        "id": e.id, "kind": e.kind, "title": e.title, "question": e.question, "alternates": e.alternates,
        "answer": e.answer, "sections": e.sections, "category": e.category, "tags": e.tags, "status": e.status,
        "source": e.source, "illustrative": e.illustrative, "publish_date": e.publish_date,
        "valid_until": e.valid_until, "parent_id": e.parent_id, "heading_path": e.heading_path,
        "office": e.office, "position": e.position, "origin": e.origin[-300:],
    }  # fmt: skip


def entry_to_parsed(row: Entry) -> ParsedEntry:
    """The ParsedEntry equal to a stored row (for export and for editing)."""
    return ParsedEntry(
        id=row.id, kind=row.kind, title=row.title, question=row.question, alternates=list(row.alternates),
        answer=row.answer, sections=[list(s) for s in row.sections], category=row.category, tags=list(row.tags),
        status=row.status, source=dict(row.source), illustrative=row.illustrative, publish_date=row.publish_date,
        valid_until=row.valid_until, parent_id=row.parent_id, heading_path=list(row.heading_path),
        office=row.office, position=row.position, origin=row.origin,
    )  # fmt: skip


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

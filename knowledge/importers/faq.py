"""FAQ files: ``.jsonl`` (one object a line) and ``.csv`` (a header row; alternates split on ``|``).

Fields: ``id``, ``question``, ``answer``, ``alternates``, ``category``; optionally ``tags``, ``source``,
``status``, ``illustrative``. Other fields (a corpus's own ``url``, ``label``...) are ignored, with a
warning that names them, so that a typo such as ``alternate`` shows. A ``.jsonl`` line that carries
``kind`` is a full entry as written by ``policybot kb export``, so an export imports back unchanged
(strictly: an unknown field there is an error).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import Any

from knowledge.importers.base import ImportFailure, ParsedEntry, check_entry

log = logging.getLogger("policybot.import")

_ENTRY_FIELDS = {f.name for f in fields(ParsedEntry)} - {"origin"}
_FAQ_FIELDS = {
    "id",
    "question",
    "answer",
    "alternates",
    "category",
    "tags",
    "source",
    "status",
    "illustrative",
}


def parse_jsonl(text: str, path: str) -> list[ParsedEntry]:
    """Parse a JSON-lines FAQ (or export) file."""
    return list(iter_jsonl(text.splitlines(), path))


def iter_jsonl(lines: Iterable[str], path: str) -> Iterator[ParsedEntry]:
    """The entries of a JSON-lines FAQ (or export) file, a line at a time (a large file is never
    all in memory); a bad line raises ``ImportFailure`` when it is reached."""
    ignored: Counter[str] = Counter()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFailure(path, lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise ImportFailure(path, lineno, "each line must be a JSON object")
        if "kind" not in obj and (extra := obj.keys() - _FAQ_FIELDS):
            ignored.update(extra)
            obj = {k: v for k, v in obj.items() if k in _FAQ_FIELDS}
        yield _from_record(obj, path, lineno)
    _warn_ignored(path, ignored)


def _warn_ignored(path: str, ignored: Counter[str]) -> None:
    """Name the fields a file carried that a FAQ entry has no place for (each with its line count)."""
    if ignored:
        names = ", ".join(f"{name} ({n} line{'s' if n > 1 else ''})" for name, n in sorted(ignored.items()))
        log.warning(
            "%s: ignored unknown field(s) %s", path, names, extra={"file": path, "fields": dict(ignored)}
        )


def parse_csv(text: str, path: str) -> list[ParsedEntry]:
    """Parse a CSV FAQ file with a header row."""
    # newline="": CR-only files and quoted line breaks
    return list(iter_csv(io.StringIO(text, newline=""), path))


def iter_csv(lines: Iterable[str], path: str) -> Iterator[ParsedEntry]:
    """The entries of a CSV FAQ file with a header row, a row at a time (``lines`` as from a file
    opened with ``newline=""``); a bad row raises ``ImportFailure`` when it is reached."""
    reader = csv.DictReader(lines)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ImportFailure(path, 1, f"bad CSV: {exc}") from exc
    if not fieldnames:
        raise ImportFailure(
            path, 1, "empty file: expected a header row id,question,answer,alternates,category"
        )
    header = [h.strip() for h in fieldnames]
    missing = {"id", "question", "answer"} - set(header)
    if missing:
        raise ImportFailure(path, 1, f"missing column(s) {', '.join(sorted(missing))}")
    unknown = set(header) - _FAQ_FIELDS
    count = 0
    try:
        for row in reader:
            lineno = reader.line_num
            if None in row:
                raise ImportFailure(path, lineno, "more values than columns")
            rec: dict[str, Any] = {
                k.strip(): (v or "").strip()
                for k, v in row.items()
                if k is not None and k.strip() not in unknown
            }
            for key in ("alternates", "tags"):
                rec[key] = [a.strip() for a in rec.get(key, "").split("|") if a.strip()]
            if "source" in rec:
                rec["source"] = _csv_source(rec["source"], path, lineno)
            if "illustrative" in rec:
                rec["illustrative"] = rec["illustrative"].lower() in ("1", "true", "yes", "是")
            if not rec.get("status"):
                rec.pop("status", None)
            count += 1
            yield _from_record(rec, path, lineno)
    except csv.Error as exc:
        raise ImportFailure(path, reader.line_num, f"bad CSV: {exc}") from exc
    _warn_ignored(path, Counter(dict.fromkeys(unknown, count)))


def _csv_source(value: str, path: str, lineno: int) -> dict[str, Any]:
    if not value:
        return {}
    try:
        src = json.loads(value)
    except json.JSONDecodeError:
        return {"title": value}
    if not isinstance(src, dict):
        raise ImportFailure(path, lineno, "source must be a JSON object or a plain title")
    return src


def _from_record(obj: dict[str, Any], path: str, lineno: int) -> ParsedEntry:
    if "kind" in obj:  # a full entry, as exported
        unknown = set(obj) - _ENTRY_FIELDS
        if unknown:
            raise ImportFailure(path, lineno, f"unknown field(s) {', '.join(sorted(unknown))}")
        try:
            entry = ParsedEntry(**obj)
        except TypeError as exc:
            raise ImportFailure(path, lineno, f"bad entry: {exc}") from exc
        entry.origin = path
        return check_entry(entry, path, lineno)
    for key in ("id", "category"):  # corpora often number their questions and categories
        if isinstance(obj.get(key), int) and not isinstance(obj[key], bool):
            obj = {**obj, key: str(obj[key])}
    if isinstance(obj.get("source"), str):
        obj = {**obj, "source": {"title": obj["source"]} if obj["source"].strip() else {}}
    for key in ("id", "question", "answer"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise ImportFailure(path, lineno, f"missing or empty {key!r}")
    alternates = obj.get("alternates", [])
    if isinstance(alternates, str):
        alternates = [a for a in alternates.split("|") if a.strip()]
    entry = ParsedEntry(
        id=obj["id"].strip(),
        kind="faq",
        question=obj["question"].strip(),
        answer=obj["answer"].strip(),
        alternates=alternates,
        category=obj.get("category", "") or "",
        tags=obj.get("tags", []) or [],
        source=obj.get("source", {}) or {},
        status=obj.get("status", "published"),
        illustrative=obj.get("illustrative", False),
        origin=path,
    )
    return check_entry(entry, path, lineno)

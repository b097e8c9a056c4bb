"""The built index saved as files, so that a start loads it in a fraction of a second instead of
reading every entry and building it.

A snapshot is one folder ``<kb_id>-<signature>-v<version>`` in the index directory: the postings as
``.npy`` arrays (memory-mapped on load, never pickled), the documents as JSON lines decoded one at a
time when first read (``DocTable``), the vocabulary and pinyin map as JSON, and ``manifest.json``
with each file's size and CRC-32. It is used only when all of these hold: the database's identity
(``kb_id``), the tokenizer and index layout (``signature``) and a knowledge version not beyond the
database's; the changes made since its version are then replayed from the database's change log
(``knowledge.versions``). A snapshot that fails any check is deleted and the index rebuilt: the
database is the source of truth, and deleting the folder costs a rebuild, never data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import re
import secrets
import shutil
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url

from knowledge.index import (
    BODY_WEIGHT,
    DENSE_SHARE,
    DOC_FIELDS,
    K1,
    KEY_WEIGHT,
    B,
    DocTable,
    Index,
    Parts,
    QuestionTable,
    _Segment,
    dense_rows,
    doc_kinds,
    encode_doc,
)
from knowledge.segment import cache_dir

INDEX_FORMAT = 5  # bump when the files' layout or what they hold changes: older snapshots are then never read
_ARRAYS = (
    *("start", "ids", "weights", "key_start", "key_ids", "df", "q_hashes", "q_docs", "doc_offsets"),
    *("q_grams", "q_gram_start", "q_gram_docs", "q_shortest"),
)
_CHUNK = 1 << 20
log = logging.getLogger("policybot.index")


class SnapshotError(ValueError):
    """A snapshot that must not be used (corrupt, incomplete or made for other knowledge)."""


def index_signature(token_sig: str) -> str:
    """What a snapshot must have been made with: the tokens' signature (lexicon and cache layout),
    this file layout, the documents' fields and the BM25F constants."""
    parts = [token_sig, INDEX_FORMAT, ",".join(DOC_FIELDS), K1, B, KEY_WEIGHT, BODY_WEIGHT, DENSE_SHARE]
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def index_dir_for(db_url: str, configured: str = "") -> Path | None:
    """The configured index directory (``[database] index_dir``), else ``default_index_dir``."""
    return Path(configured).expanduser() if configured else default_index_dir(db_url)


def default_index_dir(db_url: str) -> Path | None:
    """Where the index of a database lives unless configured: beside a SQLite file
    (``kb.db`` -> ``kb.db.index/``); for PostgreSQL in the local cache directory, one folder per
    database (host, port, name and user, never the password). None for an in-memory SQLite."""
    url = make_url(db_url)
    if url.drivername.startswith("sqlite"):
        if url.database in (None, "", ":memory:"):
            return None
        return Path(f"{url.database}.index")
    where = f"{url.host}:{url.port}/{url.database}/{url.username}"
    return cache_dir() / "index" / hashlib.sha256(where.encode()).hexdigest()[:16]


def save(parts: Parts, base: Path, kb_id: str, signature: str, version: int) -> Path:
    """Write a freshly built index as the snapshot of ``version`` (atomically: written in a
    temporary folder, then renamed), and delete the older snapshots of this knowledge base."""
    final = base / f"{kb_id}-{signature}-v{version}"
    if final.exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{final.name}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        files = _write_files(parts, tmp)
        manifest = {
            "format": INDEX_FORMAT,
            "kb_id": kb_id,
            "signature": signature,
            "version": version,
            "averages": list(parts[3]),
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        try:
            tmp.rename(final)
        except OSError:  # another worker saved the same version first
            if not final.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(base, kb_id, keep=final)
    return final


def _write_files(parts: Parts, folder: Path) -> dict[str, list[int]]:
    """The snapshot's files; returns each one's size and CRC-32."""
    docs, main, questions, _, pinyin = parts
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    with (folder / "docs.jsonl").open("wb") as fh:
        for i, doc in enumerate(docs):
            line = encode_doc(doc) + b"\n"
            fh.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    arrays = {
        "start": main.start,
        "ids": main.ids,
        "weights": main.weights,
        "key_start": main.key_start,
        "key_ids": main.key_ids,
        "df": main.df,
        "q_hashes": questions.hashes,
        "q_docs": questions.docs,
        "q_grams": questions.grams,
        "q_gram_start": questions.gram_start,
        "q_gram_docs": questions.gram_docs,
        "q_shortest": questions.shortest,
        "doc_offsets": offsets,
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    ids = [d.entry_id for d in docs] if isinstance(docs, list) else docs.ids()
    named = (("vocab", list(main.vocab)), ("entry_ids", ids), ("kinds", doc_kinds(docs)), ("pinyin", pinyin))
    for name, value in named:
        (folder / f"{name}.json").write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return {f.name: [f.stat().st_size, _crc(f)] for f in sorted(folder.iterdir())}


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _prune(base: Path, kb_id: str, keep: Path) -> None:
    """Delete the other snapshots of this knowledge base (a process that has one loaded keeps its
    memory-mapped files: they go when it lets them go), and temporary folders of dead writers."""
    for p in base.iterdir():
        if p == keep or not p.is_dir():
            continue
        if p.name.startswith(f"{kb_id}-") or (p.name.startswith(".tmp-") and not _writer_alive(p.name)):
            shutil.rmtree(p, ignore_errors=True)


def _writer_alive(name: str) -> bool:
    m = re.search(r"-(\d+)-[0-9a-f]{8}$", name)
    if not m:
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_NAME = re.compile(r"^(?P<kb>[0-9a-f]+)-(?P<sig>[0-9a-f]+)-v(?P<version>\d+)$")


def load(base: Path, index: Index, kb_id: str, signature: str, versions: tuple[int, int]) -> int | None:
    """Install into ``index`` the newest usable snapshot of this knowledge base whose version is
    within ``versions`` (the oldest one that may be replayed from the change log, the database's
    own); return its version, or None when there is none. Snapshots that fail a check are deleted."""
    if not base.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for p in base.iterdir():
        m = _NAME.match(p.name)
        if m and m["kb"] == kb_id:
            version = int(m["version"])
            if m["sig"] == signature and versions[0] <= version <= versions[1]:
                found.append((version, p))
            elif m["sig"] != signature or version > versions[1]:
                # another layout, or ahead of the database (a restored backup): never usable
                log.info("index snapshot %s does not match the database: deleted", p.name)
                shutil.rmtree(p, ignore_errors=True)
    for version, path in sorted(found, reverse=True):
        try:
            read(path, index, kb_id, signature, version)
            return version
        except (SnapshotError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "index snapshot %s unusable (%s): it is deleted and the index rebuilt", path.name, exc
            )
            shutil.rmtree(path, ignore_errors=True)
    return None


def read(folder: Path, index: Index, kb_id: str, signature: str, version: int) -> None:
    """Load one snapshot into ``index`` after checking its manifest and every file's size and CRC-32
    (the index is left as it was when a check fails)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    expected = {"format": INDEX_FORMAT, "kb_id": kb_id, "signature": signature, "version": version}
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise SnapshotError(f"manifest {key} is {manifest.get(key)!r}, expected {value!r}")
    files: dict[str, list[int]] = manifest["files"]
    wanted = {f"{a}.npy" for a in _ARRAYS} | {
        "docs.jsonl",
        "vocab.json",
        "entry_ids.json",
        "kinds.json",
        "pinyin.json",
    }
    if set(files) != wanted:
        raise SnapshotError("files missing from the manifest")
    for name, (size, crc) in files.items():
        path = folder / name
        if path.stat().st_size != size or _crc(path) != crc:
            raise SnapshotError(f"{name} does not match its checksum")
    arrays = {a: np.load(folder / f"{a}.npy", mmap_mode="r", allow_pickle=False) for a in _ARRAYS}
    words: list[str] = _json(folder / "vocab.json")
    ids: list[str] = _json(folder / "entry_ids.json")
    kinds: list[str] = [sys.intern(k) for k in _json(folder / "kinds.json")]
    pinyin: dict[str, list[str]] = _json(folder / "pinyin.json")
    n = len(ids)
    if (
        len(arrays["doc_offsets"]) != n + 1
        or len(arrays["start"]) != len(words) + 1
        or len(arrays["q_shortest"]) != n
        or len(kinds) != n
    ):
        raise SnapshotError("arrays of the wrong length")
    vocab = {w: i for i, w in enumerate(words)}
    start, docs, weights, df = arrays["start"], arrays["ids"], arrays["weights"], arrays["df"]
    dense = dense_rows(df, start, docs, weights, n)
    segment = _Segment(vocab, start, docs, weights, arrays["key_start"], arrays["key_ids"], df, dense)
    questions = QuestionTable(
        *(arrays[a] for a in ("q_hashes", "q_docs", "q_grams", "q_gram_start", "q_gram_docs", "q_shortest"))
    )
    table = DocTable(ids, kinds, _blob(folder / "docs.jsonl"), arrays["doc_offsets"])
    averages = manifest["averages"]
    index.install_parts(table, segment, questions, (float(averages[0]), float(averages[1])), pinyin)


def _json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _blob(path: Path) -> Any:
    """The documents' file, memory-mapped (an empty file cannot be mapped: empty bytes)."""
    if path.stat().st_size == 0:
        return b""
    with path.open("rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def size_of(folder: Path) -> int:
    """Bytes of a snapshot's files."""
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())

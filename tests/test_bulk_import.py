"""Bulk import (knowledge/bulk.py): batches, worker processes, bulk statements, one transaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

import knowledge.bulk
from bot.services import Services
from knowledge.importers import ImportFailure
from knowledge.index import tokenize_entry
from knowledge.models import Entry

TOPICS = [
    "护照",
    "驾驶证",
    "社保卡",
    "居住证",
    "营业执照",
    "食品经营许可证",
    "公积金",
    "医保",
    "户口",
    "不动产登记",
]


def _faq(n: int, bad_line: int | None = None, edit: str = "") -> str:
    lines = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        rec = {
            "id": f"b-{i:04d}",
            "question": f"办理{topic}第{i}号事项需要什么材料",
            "answer": f"办理{topic}第{i}号事项需要身份证和申请表{edit}。",
            "alternates": [f"{topic}{i}号事项要带什么"],
        }
        lines.append(json.dumps(rec, ensure_ascii=False))
    if bad_line is not None:
        lines[bad_line - 1] = json.dumps({"id": "b-bad", "question": "没有答案"}, ensure_ascii=False)
    return "\n".join(lines) + "\n"


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 50, worker processes from 20 entries: a few hundred lines exercise it all."""
    monkeypatch.setattr(knowledge.bulk, "BATCH", 50)
    monkeypatch.setattr(knowledge.bulk, "PARALLEL_FROM", 20)
    monkeypatch.setattr(knowledge.bulk, "TOKENIZERS", 2)


async def test_a_bad_line_late_in_a_large_file_writes_nothing(
    services: Services, tmp_path: Path, small_batches: None
) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(_faq(300, bad_line=260), encoding="utf-8")
    version = services.kb.version
    with pytest.raises(ImportFailure) as err:
        await services.kb.import_paths([path])
    assert f"{path}:260: missing or empty 'answer'" in str(err.value)
    assert await services.kb.count() == 0
    assert len(services.kb.index) == 0 and services.kb.version == version


async def test_worker_processes_tokenize_as_this_process_does(
    services: Services, tmp_path: Path, small_batches: None
) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text(_faq(230), encoding="utf-8")
    counts = await services.kb.import_paths([path])
    assert (counts.added, counts.updated, counts.unchanged) == (230, 0, 0)
    async with services.kb.sessions() as session:
        rows = list(await session.scalars(select(Entry).order_by(Entry.id)))
    assert len(rows) == 230
    for row in rows:
        assert row.token_sig == services.kb.token_sig
        assert row.tokens == tokenize_entry(row, services.kb.lex)
    assert len(services.kb.index) == 230
    d = await services.qa.ask("办理营业执照第114号事项需要什么材料")
    # Ranked first (answered, or offered first among its near-identical synthetic siblings).
    assert d.status in ("answered", "suggested") and d.entry_id == "b-0114"


async def test_a_large_import_is_indexed_once_and_saved(
    services: Services, tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge.bulk, "APPLY_IN_PLACE", 100)
    upserts: list[str] = []
    upsert = services.kb.index.upsert
    monkeypatch.setattr(services.kb.index, "upsert", lambda e, t: upserts.append(e.id) or upsert(e, t))
    path = tmp_path / "faq.jsonl"
    path.write_text(_faq(230), encoding="utf-8")
    await services.kb.import_paths([path])
    assert upserts == []  # not entry by entry: one build
    kb = services.kb
    assert kb.index_dir is not None
    assert (kb.index_dir / f"{kb.kb_id}-{kb.index_sig}-v{kb.version}").is_dir()
    # Re-imported with 10 answers changed: 10 updated, the rest unchanged, applied entry by entry.
    text = _faq(230).splitlines()
    edited = _faq(10, edit="（已更新）").splitlines()
    path.write_text("\n".join(edited + text[10:]) + "\n", encoding="utf-8")
    counts = await kb.import_paths([path])
    assert (counts.added, counts.updated, counts.unchanged) == (0, 10, 220)
    assert sorted(upserts) == [f"b-{i:04d}" for i in range(10)]
    row = await kb.get("b-0003")
    assert row is not None and "已更新" in row.answer and row.tokens == tokenize_entry(row, kb.lex)

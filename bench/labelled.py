"""Labelled question sets on their knowledge bases, for fitting and checking the confidence model
(bench/calibrate.py) and for measuring answer quality (bench/quality.py).

A knowledge base is imported alone into a fresh SQLite database; every question of its sets is
searched once, and each candidate is labelled right or wrong:
- seed sets: the candidate's answer text holds one of the question's ``expect_any`` passages (the
  scoring of ../shared/eval/README.md);
- the other sets: the candidate's entry id is one of the question's expected ids (a guide, when the
  question asks for one of its sections, must show that section: the question's aspect is it);
- an out-of-scope question has no right candidate.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.services import Services  # noqa: E402
from knowledge.answers import answer_text  # noqa: E402
from knowledge.retrieve import Candidate, Query  # noqa: E402
from knowledge.store import default_paths  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
INSURANCEQA = EVAL / "faq_insuranceqa"
SEED = ROOT.parent / "shared" / "seeds" / "000_4e919aa08e42b693.txt"
SHIPPED_SEED = ROOT / "knowledge" / "data" / "documents" / "gulou-commerce-2020-123.txt"  # the same text
DATA = ROOT / "tests" / "data"
LIMIT = 10  # candidates kept a question (QAService.ask asks for as many)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def squash(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


@dataclass
class Row:
    """One labelled question: where it comes from, and what answers it."""

    kb: str  # seed | default | insuranceqa
    set: str  # file stem
    batch: str
    id: str
    question: str
    expect_any: list[str] | None = None  # seed: passages of a right answer
    expect_ids: list[str] | None = None  # others: ids of right entries
    out_of_scope: bool = False
    aspect: str | None = None  # the guide section a right guide answer shows
    refer_ids: list[str] | None = None  # out of scope: the referrals to the body responsible
    # out of scope: entries answering a part of it, or it only with a hedge (本知识库未能核实，请致电…)
    partial_ids: list[str] | None = None


@dataclass
class Searched:
    """A row with its query, candidates (best first) and each candidate's label."""

    row: Row
    query: Query
    cands: list[Candidate]
    right: list[bool]


def seed_rows(with_dev: bool = True) -> list[Row]:
    """The dev seed sets (when present and asked for) and our own seed sets."""
    rows: list[Row] = []
    if with_dev and (EVAL / "dev_seed_questions.jsonl").exists():
        for r in load_jsonl(EVAL / "dev_seed_questions.jsonl"):
            rows.append(Row("seed", "dev_seed", "dev", r["id"], r["question"], expect_any=r["expect_any"]))
        for r in load_jsonl(EVAL / "dev_out_of_scope.jsonl"):
            rows.append(Row("seed", "dev_out_of_scope", "dev", r["id"], r["question"], out_of_scope=True))
    for r in load_jsonl(DATA / "seed_eval.jsonl"):
        rows.append(Row("seed", "seed_eval", r["batch"], r["id"], r["question"], expect_any=r["expect_any"]))
    for r in load_jsonl(DATA / "seed_out_of_scope.jsonl"):
        rows.append(Row("seed", "seed_out_of_scope", r["batch"], r["id"], r["question"], out_of_scope=True))
    return rows


def default_rows(batches: set[str] | None = None) -> list[Row]:
    """Our paraphrases of default-KB entries (faq_eval) and the resident sets (batches asked for)."""
    rows: list[Row] = []
    for i, r in enumerate(load_jsonl(DATA / "faq_eval.jsonl")):
        ids = [r["expect_id"]] if r["expect_id"] else None
        rows.append(
            Row(
                "default",
                "faq_eval",
                "a",
                f"fe{i}",
                r["question"],
                expect_ids=ids,
                out_of_scope=not ids,
                refer_ids=r.get("refer_ids"),
            )
        )
    for name, oos in (("resident_eval", False), ("resident_out_of_scope", True)):
        path = DATA / f"{name}.jsonl"
        if not path.exists():
            continue
        for r in load_jsonl(path):
            if batches is not None and r["batch"] not in batches:
                continue
            ids = None if oos else list(r["expect_entry_ids"])
            aspect = None if oos else r.get("aspect")
            refer = r.get("refer_ids") if oos else None
            partial = r.get("partial_ids") if oos else None
            rows.append(
                Row(
                    "default",
                    name,
                    r["batch"],
                    r["id"],
                    r["question"],
                    expect_ids=ids,
                    out_of_scope=oos,
                    aspect=aspect,
                    refer_ids=refer,
                    partial_ids=partial,
                )
            )
    return rows


def insuranceqa_rows() -> list[Row]:
    """The InsuranceQA development half (../shared/eval/faq_insuranceqa; empty when absent)."""
    if not INSURANCEQA.exists():
        return []
    rows = [
        Row("insuranceqa", "questions", "dev", r["id"], r["question"], expect_ids=r["expect_entry_ids"])
        for r in load_jsonl(INSURANCEQA / "questions.jsonl")
    ]
    rows += [
        Row("insuranceqa", "out_of_scope", "dev", r["id"], r["question"], out_of_scope=True)
        for r in load_jsonl(INSURANCEQA / "out_of_scope.jsonl")
    ]
    return rows


def kb_paths(kb: str) -> list[Path]:
    if kb == "seed":
        return [SEED if SEED.exists() else SHIPPED_SEED]
    if kb == "default":
        return default_paths()
    if kb == "insuranceqa":
        return [INSURANCEQA / "kb.jsonl"]
    raise ValueError(kb)


async def start(kb: str, tmp: str, settings: Settings | None = None) -> Services:
    """Services on a fresh SQLite database holding only that knowledge base."""
    settings = (settings or Settings()).replace("database", url=f"sqlite:///{tmp}/{kb}.db")
    services = await Services.start(settings)
    await services.kb.import_paths(kb_paths(kb))
    # As ``policybot ask`` finds it after ``kb import``: one full build (an import in this process
    # leaves a small knowledge base in the delta segment, scored without its own statistics).
    await services.kb.wait_for_rebuild()
    await services.kb.load_index()
    return services


async def is_right(s: Services, row: Row, q: Query, c: Candidate) -> bool:
    """Whether a candidate answers the row's question."""
    if row.out_of_scope:
        # Pointing to the body responsible is the right reply to another body's matter.
        return c.info.kind == "referral" and c.entry_id in (row.refer_ids or [])
    if row.expect_ids is not None:
        # A guide asked for one of its sections answers with that section.
        return c.entry_id in row.expect_ids and (
            c.info.kind != "guide" or q.aspect == row.aspect or not row.aspect
        )
    entry = await s.kb.get(c.entry_id)
    said = squash(answer_text(entry, q.aspect)) if entry else ""
    return any(squash(e) in said for e in row.expect_any or [])


async def search_all(kb: str, rows: list[Row]) -> list[Searched]:
    """Search every row on its knowledge base (imported alone) and label the candidates."""
    out: list[Searched] = []
    with tempfile.TemporaryDirectory() as tmp:
        s = await start(kb, tmp)
        try:
            for row in rows:
                q, cands = s.kb.matcher.search(row.question, limit=LIMIT)
                out.append(Searched(row, q, cands, [await is_right(s, row, q, c) for c in cands]))
        finally:
            await s.close()
    return out

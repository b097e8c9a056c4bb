"""Answer quality on question sets: the dev sets of ../shared/eval and our own sets in tests/data.

    python bench/quality.py                      # seed document + dev sets + tests/data/seed_*.jsonl
    python bench/quality.py --faq                # default knowledge base + tests/data/faq_eval.jsonl
    python bench/quality.py --resident           # default knowledge base + tests/data/resident_*.jsonl, by batch
    python bench/quality.py --insuranceqa        # ../shared/eval/faq_insuranceqa imported alone
    python bench/quality.py --verbose            # one line per question with the features

A seed question counts as answered correctly when the status is ``answered`` and the answer contains
one of its ``expect_any`` strings (whitespace removed); an out-of-scope question is falsely answered
when its status is ``answered`` (the scoring of ../shared/eval/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.services import Services  # noqa: E402
from knowledge.store import default_paths  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
SEED = ROOT.parent / "shared" / "seeds" / "000_4e919aa08e42b693.txt"
SHIPPED_SEED = ROOT / "knowledge" / "data" / "documents" / "gulou-commerce-2020-123.txt"  # the same text
DATA = ROOT / "tests" / "data"
OUTSIDE_KINDS = ("referral", "smalltalk")  # answers that say where to go, or reply to small talk


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _services(paths: list[Path], tmp: str) -> Services:
    settings = Settings().replace("database", url=f"sqlite:///{tmp}/quality.db")
    services = await Services.start(settings)
    await services.kb.import_paths(paths)
    # As ``policybot ask`` finds it after ``kb import``: one full build (bench/labelled.py).
    await services.kb.wait_for_rebuild()
    await services.kb.load_index()
    return services


def _squash(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


async def _seed_rate(s: Services, rows: list[dict], verbose: bool) -> tuple[float, float]:
    """Shares of questions answered with the right clause, and answered with a wrong one."""
    good = wrong = 0
    for q in rows:
        d = await s.qa.ask(q["question"])
        ok = d.status == "answered" and any(_squash(e) in _squash(d.answer) for e in q["expect_any"])
        good += ok
        wrong += d.status == "answered" and not ok
        if verbose:
            feats = (await s.qa.explain(q["question"], 2)) or [{}]
            second = feats[1] if len(feats) > 1 else ""
            print(
                f"{'OK ' if ok else 'BAD'} {q['id']} {d.status:9} {d.score:.3f} {q['question']} -> {d.title} {feats[0]} | 2nd {second}"
            )
    return good / len(rows), wrong / len(rows)


async def _false_rate(s: Services, rows: list[dict], verbose: bool) -> float:
    """Share of out-of-scope questions answered."""
    false = 0
    for q in rows:
        d = await s.qa.ask(q["question"])
        false += d.status == "answered"
        if verbose:
            feats = (await s.qa.explain(q["question"], 1)) or [{}]
            print(
                f"{'BAD' if d.status == 'answered' else 'OK '} {q['id']} {d.status:9} {d.score:.3f} {q['question']} -> {d.title} {feats[0]}"
            )
    return false / len(rows)


async def seed_quality(verbose: bool) -> dict[str, float]:
    """The seed document alone: the dev sets of ../shared/eval (when present) and our own sets,
    tests/data/seed_eval.jsonl and seed_out_of_scope.jsonl, by batch (see tests/data/README.md)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        s = await _services([SEED if SEED.exists() else SHIPPED_SEED], tmp)
        try:
            if (EVAL / "dev_seed_questions.jsonl").exists():
                out["seed_correct"], _ = await _seed_rate(
                    s, _load(EVAL / "dev_seed_questions.jsonl"), verbose
                )
                out["oos_false_answer"] = await _false_rate(
                    s, _load(EVAL / "dev_out_of_scope.jsonl"), verbose
                )
            own, own_oos = _load(DATA / "seed_eval.jsonl"), _load(DATA / "seed_out_of_scope.jsonl")
            for batch in sorted({r["batch"] for r in own}):
                rows = [r for r in own if r["batch"] == batch]
                correct, wrong = await _seed_rate(s, rows, verbose)
                out[f"own_seed_{batch}_correct"], out[f"own_seed_{batch}_wrong"] = correct, wrong
            out["own_oos_false_answer"] = await _false_rate(s, own_oos, verbose)
        finally:
            await s.close()
    return out


async def faq_quality(path: Path, verbose: bool) -> dict[str, float]:
    """Paraphrased questions against the default knowledge base (expect_id null: out of scope)."""
    with tempfile.TemporaryDirectory() as tmp:
        s = await _services(default_paths(), tmp)
        try:
            rows = _load(path)
            inscope = [r for r in rows if r["expect_id"]]
            outscope = [r for r in rows if not r["expect_id"]]
            correct = top3 = false = referred = 0
            for r in inscope:
                d = await s.qa.ask(r["question"])
                ok = d.status == "answered" and d.entry_id == r["expect_id"]
                listed = (
                    ok
                    or r["expect_id"] in [x.entry_id for x in d.suggestions]
                    or d.entry_id == r["expect_id"]
                )
                correct += ok
                top3 += listed
                if verbose and not ok:
                    feats = (await s.qa.explain(r["question"], 1)) or [{}]
                    print(
                        f"MISS {d.status:9} {d.score:.3f} {r['question']} want {r['expect_id']} got {d.entry_id} {feats[0]}"
                    )
            for r in outscope:
                d = await s.qa.ask(r["question"])
                # Another body's matter or small talk answered as such is the right reply, not a false one.
                elsewhere = d.kind in OUTSIDE_KINDS
                false += d.status == "answered" and not elsewhere
                referred += d.status == "answered" and elsewhere
                if verbose and d.status == "answered":
                    print(
                        f"{'REFER' if elsewhere else 'FALSE'} {d.score:.3f} {r['question']} -> {d.entry_id}"
                    )
        finally:
            await s.close()
    return {
        "answered_correct": correct / max(len(inscope), 1),
        "correct_in_answer_or_suggestions": top3 / max(len(inscope), 1),
        "oos_false_answer": false / max(len(outscope), 1),
        "oos_referred": referred / max(len(outscope), 1),
        "n_in_scope": len(inscope),
        "n_out_of_scope": len(outscope),
    }


NOT_ANSWERS = {"referral", "smalltalk"}  # an out-of-scope question answered by these is not "answered"


async def labelled_quality(kb: str, rows: list) -> dict[str, float]:
    """Each set and batch of labelled rows (bench/labelled.py) through ``QAService.ask`` on that
    knowledge base imported alone and built as ``policybot ask`` finds it: answered rightly and
    wrongly, top-1 and top-3 (the right entry is the answer or best candidate / among the first
    three, then the suggestions), answer precision, and out of scope answered (``_oos_answered``; and,
    for sets whose labels name ``partial_ids``, answered with another entry than those, which answer a
    part of the question or only with a hedge: ``_oos_answered_other``)."""
    from bench.labelled import start

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        s = await start(kb, tmp)
        try:
            groups: dict[str, list] = {}
            for r in rows:
                groups.setdefault(f"{r.set}_{r.batch}", []).append(r)
            for name, group in sorted(groups.items()):
                n = len(group)
                right = wrong = top1 = top3 = false = other = 0
                for r in group:
                    d = await s.qa.ask(r.question)
                    answered = d.status == "answered"
                    if r.out_of_scope:
                        hit = answered and getattr(d, "kind", None) not in NOT_ANSWERS
                        false += hit
                        # (not with an entry its label names as answering a part, or only with a hedge)
                        other += hit and d.entry_id not in (r.partial_ids or [])
                        continue
                    # The answer or best candidate, then the others offered (an escalated question
                    # has no entry_id: its suggestions are its closest entries, best first).
                    ids = [i for i in dict.fromkeys([d.entry_id, *(x.entry_id for x in d.suggestions)]) if i]
                    ok_entry = d.entry_id in r.expect_ids
                    aspect_ok = (
                        not r.aspect or d.aspect == r.aspect or not str(d.entry_id).startswith("guide-")
                    )
                    right += answered and ok_entry and aspect_ok
                    wrong += answered and not (ok_entry and aspect_ok)
                    top1 += bool(ids) and ids[0] in r.expect_ids
                    top3 += any(i in r.expect_ids for i in ids[:3])
                if group[0].out_of_scope:
                    out[f"{name}_oos_answered"] = round(false / n, 3)
                    if any(r.partial_ids for r in group):
                        out[f"{name}_oos_answered_other"] = round(other / n, 3)
                else:
                    out[f"{name}_right"] = round(right / n, 3)
                    out[f"{name}_wrong"] = round(wrong / n, 3)
                    out[f"{name}_precision"] = round(right / max(right + wrong, 1), 3)
                    out[f"{name}_top1"] = round(top1 / n, 3)
                    out[f"{name}_top3"] = round(top3 / n, 3)
                out[f"{name}_n"] = n
        finally:
            await s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faq", action="store_true", help="evaluate tests/data/faq_eval.jsonl on the default KB")
    ap.add_argument("--resident", action="store_true", help="tests/data/resident_*.jsonl on the default KB")
    ap.add_argument(
        "--insuranceqa", action="store_true", help="../shared/eval/faq_insuranceqa, imported alone"
    )
    ap.add_argument("--batches", help="resident batches to measure, comma-separated (default: all)")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    if args.resident or args.insuranceqa:
        from bench.labelled import default_rows, insuranceqa_rows

        if args.resident:
            batches = set(args.batches.split(",")) if args.batches else None
            rows = [r for r in default_rows(batches) if r.set != "faq_eval"]
            print(json.dumps(asyncio.run(labelled_quality("default", rows)), indent=2))
        if args.insuranceqa:
            print(json.dumps(asyncio.run(labelled_quality("insuranceqa", insuranceqa_rows())), indent=2))
    elif args.faq:
        print(json.dumps(asyncio.run(faq_quality(DATA / "faq_eval.jsonl", args.verbose)), indent=2))
    else:
        print(json.dumps(asyncio.run(seed_quality(args.verbose)), indent=2))


if __name__ == "__main__":
    main()

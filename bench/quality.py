"""Answer quality on question sets: the dev sets of ../shared/eval and tests/data/faq_eval.jsonl.

    python bench/quality.py                      # seed document + dev seed/out-of-scope sets
    python bench/quality.py --faq                # default knowledge base + tests/data/faq_eval.jsonl
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


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _services(paths: list[Path], tmp: str) -> Services:
    settings = Settings().replace("database", url=f"sqlite:///{tmp}/quality.db")
    services = await Services.start(settings)
    await services.kb.import_paths(paths)
    return services


async def seed_quality(verbose: bool) -> dict[str, float]:
    """Dev seed questions and out-of-scope questions against the seed document alone."""
    with tempfile.TemporaryDirectory() as tmp:
        s = await _services([SEED], tmp)
        try:
            good = 0
            seed = _load(EVAL / "dev_seed_questions.jsonl")
            for q in seed:
                d = await s.qa.ask(q["question"])
                text = re.sub(r"\s+", "", d.answer or "")
                ok = d.status == "answered" and any(re.sub(r"\s+", "", e) in text for e in q["expect_any"])
                good += ok
                if verbose:
                    feats = (await s.qa.explain(q["question"], 2)) or [{}]
                    print(
                        f"{'OK ' if ok else 'BAD'} {q['id']} {d.status:9} {d.score:.3f} {q['question']} -> {d.title} {feats[0]} | 2nd {feats[1] if len(feats) > 1 else ''}"
                    )
            oos = _load(EVAL / "dev_out_of_scope.jsonl")
            false = 0
            for q in oos:
                d = await s.qa.ask(q["question"])
                false += d.status == "answered"
                if verbose:
                    feats = (await s.qa.explain(q["question"], 1)) or [{}]
                    print(
                        f"{'BAD' if d.status == 'answered' else 'OK '} {q['id']} {d.status:9} {d.score:.3f} {q['question']} -> {d.title} {feats[0]}"
                    )
        finally:
            await s.close()
    return {"seed_correct": good / len(seed), "oos_false_answer": false / len(oos)}


async def faq_quality(path: Path, verbose: bool) -> dict[str, float]:
    """Paraphrased questions against the default knowledge base (expect_id null: out of scope)."""
    with tempfile.TemporaryDirectory() as tmp:
        s = await _services(default_paths(), tmp)
        try:
            rows = _load(path)
            inscope = [r for r in rows if r["expect_id"]]
            outscope = [r for r in rows if not r["expect_id"]]
            correct = top3 = false = 0
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
                false += d.status == "answered"
                if verbose and d.status == "answered":
                    print(f"FALSE {d.score:.3f} {r['question']} -> {d.entry_id}")
        finally:
            await s.close()
    return {
        "answered_correct": correct / max(len(inscope), 1),
        "correct_in_answer_or_suggestions": top3 / max(len(inscope), 1),
        "oos_false_answer": false / max(len(outscope), 1),
        "n_in_scope": len(inscope),
        "n_out_of_scope": len(outscope),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faq", action="store_true", help="evaluate tests/data/faq_eval.jsonl on the default KB")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    if args.faq:
        print(
            json.dumps(
                asyncio.run(faq_quality(ROOT / "tests" / "data" / "faq_eval.jsonl", args.verbose)), indent=2
            )
        )
    else:
        print(json.dumps(asyncio.run(seed_quality(args.verbose)), indent=2))


if __name__ == "__main__":
    main()

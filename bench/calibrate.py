"""Fit the confidence model (knowledge/data/confidence.json) and check it on sets left out of the fit.

    python bench/calibrate.py            # fit on every labelled set, report, write the model file
    python bench/calibrate.py --check    # report only: leave-one-knowledge-base-out, reliability table
    python bench/calibrate.py --check --groups unasked --fit-batches a,b,c,d,e,f --hold f,h
                                         # refit guides', policies' and clauses' model only, on more
                                         # batches, checked on f and h (measured, not shipped: BENCHMARKS.md)

The labelled sets (bench/labelled.py), on three knowledge bases each imported alone:
- seed: the seed document, with the dev sets of ../shared/eval and our own seed sets (tests/data);
- default: the shipped default knowledge base, with tests/data/faq_eval.jsonl and batch a of the
  resident sets (tests/data/resident_*.jsonl; every other batch is held out: --held-out reports them,
  they fit nothing);
- insuranceqa: the InsuranceQA development half (../shared/eval/faq_insuranceqa), read in place and
  never copied into the project (its licence is for evaluation): only the fitted weights come of it.

``--groups unasked`` refits only the model of entries without questions of their own (guides,
policies, clauses) and keeps the shipped FAQ model: InsuranceQA, the one knowledge base nobody here
wrote, is all FAQs, and a refit of the FAQ model on our own sets lowered its answer precision (0.96
-> 0.84, BENCHMARKS.md); guides, policies and clauses exist only on our two knowledge bases.
``--fit-batches`` names the resident batches fitted on (default: a); ``--hold`` leaves batches of
the resident and seed sets out of the fit and reports them apart (``--hold f,h``: the newest blind
batches).

Every question gives one example: the features of the entry the decision would pick (bot/decide.py)
and whether it is right (``answer``), and whether a right entry is among the answers offered
(``listed``). Two L2-regularised logistic regressions (numpy, Newton's method) are fitted, each
knowledge base weighing the same in total, so that no one of them sets the scale. The fit is
deterministic: the same sets and code give the same weights.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labelled import (  # noqa: E402
    Searched,
    default_rows,
    insuranceqa_rows,
    search_all,
    seed_rows,
)
from bot.confidence import (  # noqa: E402
    FEATURES,
    GROUPS,
    LISTED_SIGNS,
    MODEL_FILE,
    SIGNS,
    features,
    group,
    shipped_model,
    thin,
    tied,
)
from bot.config import MatchingSettings  # noqa: E402
from bot.decide import distinct, most_specific, parent_for_parts  # noqa: E402
from knowledge.retrieve import Query  # noqa: E402

L2 = 0.01  # ridge penalty on the weights (not the bias), in units of the total sample weight / 100
KBS = ("seed", "default", "insuranceqa")
BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)


@dataclass
class Examples:
    """One row a question: features, labels, and where the question comes from."""

    x: np.ndarray
    answer: np.ndarray  # the picked entry answers it
    listed: np.ndarray  # a right entry is among those offered
    kb: np.ndarray
    group: list[str]  # set/batch
    oos: np.ndarray
    entry_group: np.ndarray  # GROUPS: the picked entry has questions of its own or not
    queries: list[Query]  # the analysed questions (the decision's rules read them: ``thin``)


def example(s: Searched, m: MatchingSettings) -> tuple[list[float], bool, bool, str]:
    """What the decision sees of a searched question, the two labels, and the entry's group."""
    right = {c.entry_id: r for c, r in zip(s.cands, s.right, strict=True)}
    top = distinct(s.cands, max(m.max_suggestions, 2))
    if not top:
        return [0.0] * len(FEATURES), False, False, "unasked"
    top[0] = parent_for_parts(most_specific(top[0], s.cands, s.query), s.cands, s.query)
    x = features(s.query, top[0], top[1:])
    listed = any(right[c.entry_id] for c in top[: m.max_suggestions])
    return x, right[top[0].entry_id], listed, group(top[0])


def examples(searched: list[Searched], m: MatchingSettings) -> Examples:
    rows = [example(s, m) for s in searched]
    return Examples(
        x=np.asarray([r[0] for r in rows], dtype=np.float64).reshape(len(rows), len(FEATURES)),
        answer=np.asarray([r[1] for r in rows], dtype=np.float64),
        listed=np.asarray([r[2] for r in rows], dtype=np.float64),
        kb=np.asarray([s.row.kb for s in searched]),
        group=[f"{s.row.kb}/{s.row.set}/{s.row.batch}" for s in searched],
        oos=np.asarray([s.row.out_of_scope for s in searched]),
        entry_group=np.asarray([r[3] for r in rows]),
        queries=[s.query for s in searched],
    )


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weighted logistic regression with a ridge penalty on the weights: Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2 * w.sum() / 100)
    penalty[-1] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (w * (p - y)) + penalty * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta[:-1], float(beta[-1])


def predict(x: np.ndarray, model: tuple[np.ndarray, float]) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x @ model[0] + model[1], -30, 30)))


KB_POWER = 0.5  # a knowledge base's examples weigh count ** KB_POWER in total (0: all alike; 1: counts)


def kb_weights(kb: np.ndarray, power: float = KB_POWER) -> np.ndarray:
    """Each knowledge base's examples weigh its count ** ``power`` in total (scaled to the number of
    examples): a large set does not drown a small one, a small one does not outweigh a large one."""
    names, counts = np.unique(kb, return_counts=True)
    totals = counts.astype(float) ** power
    scale = len(kb) / totals.sum()
    per = dict(zip(names.tolist(), (scale * totals / counts).tolist(), strict=True))
    return np.asarray([per[k] for k in kb.tolist()])


Models = dict[str, dict[str, tuple[np.ndarray, float]]]  # answer|listed -> group -> (weights, bias)


def fit_signed(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, directions: dict[str, int] = SIGNS
) -> tuple[np.ndarray, float]:
    """``fit``, then without the features whose weight comes out against its sign (``directions``:
    ``SIGNS``, or ``LISTED_SIGNS`` for the listed model), the worst first, until every weight left
    agrees (the others weigh 0); features of sign 0 are left out from the start."""
    signs = np.asarray([directions[f] for f in FEATURES])
    keep = signs != 0  # (a feature of sign 0 is read by the decision's rules only: never fitted)
    while True:
        weights, bias = fit(x[:, keep], y, w)
        full = np.zeros(len(FEATURES))
        full[keep] = weights
        against = full * signs
        if against.min() >= 0:
            return full, bias
        keep[int(np.argmin(against))] = False


def fit_all(e: Examples, mask: np.ndarray) -> Models:
    """The answer and listed models of each group, fitted on the examples of ``mask``."""
    out: Models = {"answer": {}, "listed": {}}
    for g in GROUPS:
        sel = mask & (e.entry_group == g)
        w = kb_weights(e.kb[sel], KB_POWER)
        for name in out:
            directions = LISTED_SIGNS if name == "listed" else SIGNS
            out[name][g] = fit_signed(e.x[sel], getattr(e, name)[sel], w, directions)
    return out


def predict_all(e: Examples, models: Models, name: str) -> np.ndarray:
    p = np.zeros(len(e.x))
    for g in GROUPS:
        sel = e.entry_group == g
        if sel.any():
            p[sel] = predict(e.x[sel], models[name][g])
    return p


def reliability(p: np.ndarray, y: np.ndarray) -> list[tuple[str, int, float, float]]:
    """(bin, count, mean predicted, observed share right) for each probability bin."""
    out = []
    for lo, hi in itertools.pairwise(BINS):
        sel = (p >= lo) & (p < hi)
        if sel.any():
            out.append(
                (f"{lo:.2f}-{min(hi, 1):.2f}", int(sel.sum()), float(p[sel].mean()), float(y[sel].mean()))
            )
    return out


def outcome(p_ans: np.ndarray, p_list: np.ndarray, m: MatchingSettings, e: Examples) -> np.ndarray:
    """The status each question gets at these settings (``bot.decide.decide``)."""
    x = e.x
    held = [tied(row.tolist()) or thin(q, row.tolist()) for q, row in zip(e.queries, x, strict=True)]
    ties = np.asarray(held, dtype=bool)
    return np.where(
        (p_ans >= m.precision) & ~ties,
        "answered",
        np.where(
            (np.maximum(p_ans, p_list) >= m.suggest_confidence) | (x[:, FEATURES.index("missing")] == 0.0),
            "suggested",
            "escalated",
        ),
    )


def report_groups(e: Examples, p_ans: np.ndarray, p_list: np.ndarray, m: MatchingSettings) -> None:
    status = outcome(p_ans, p_list, m, e)
    print(f"{'set':44} {'n':>4} {'right':>6} {'wrong':>6} {'oos ans':>7} {'prec':>5}")
    for g in sorted(set(e.group)):
        sel = np.asarray([x == g for x in e.group])
        ans = status[sel] == "answered"
        right = int((ans & (e.answer[sel] == 1)).sum())
        n = int(sel.sum())
        if e.oos[sel].all():
            print(f"{g:44} {n:4} {'':>6} {'':>6} {int(ans.sum()):7} {'':>5}")
        else:
            prec = right / max(int(ans.sum()), 1)
            print(f"{g:44} {n:4} {right:6} {int(ans.sum()) - right:6} {'':>7} {prec:5.2f}")


def print_reliability(title: str, p: np.ndarray, y: np.ndarray) -> None:
    print(f"\n{title}\n| predicted | questions | mean predicted | observed right |\n|---|---|---|---|")
    for b, n, pred, obs in reliability(p, y):
        print(f"| {b} | {n} | {pred:.2f} | {obs:.2f} |")


FITTED_BATCHES = {"a"}  # the resident batches fitted on by default; the others are held out


async def collect(held_out: bool, fitted: set[str] = FITTED_BATCHES) -> list[Searched]:
    batches = None if held_out else fitted
    out: list[Searched] = []
    for kb, rows in (
        ("seed", seed_rows()),
        ("default", default_rows(batches)),
        ("insuranceqa", insuranceqa_rows()),
    ):
        if rows:
            out += await search_all(kb, rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="report only; do not write the model file")
    ap.add_argument(
        "--held-out", action="store_true", help="also report the other resident batches (they fit nothing)"
    )
    ap.add_argument(
        "--fit-batches", default=",".join(sorted(FITTED_BATCHES)), help="resident batches to fit on (a,b,...)"
    )
    ap.add_argument("--hold", default="", help="batches of the resident and seed sets left out of the fit")
    ap.add_argument("--groups", default=",".join(GROUPS), help=f"groups to refit ({', '.join(GROUPS)})")
    args = ap.parse_args()
    fitted, hold = set(args.fit_batches.split(",")), set(filter(None, args.hold.split(",")))
    groups = set(args.groups.split(","))
    if not groups <= set(GROUPS):
        ap.error(f"--groups: one or more of {', '.join(GROUPS)}")
    m = MatchingSettings()
    searched = asyncio.run(collect(args.held_out or bool(hold), fitted))
    e = examples(searched, m)
    held = np.asarray([_held(g, fitted, hold) for g in e.group])
    train = ~held
    kbs = [k for k in KBS if (e.kb[train] == k).any()]

    # Leave one knowledge base out: fit on the others, predict the one left out.
    p_ans, p_list = np.zeros(len(e.answer)), np.zeros(len(e.answer))
    for k in kbs:
        left_out = e.kb == k  # (not ``held``: that names the examples out of every fit, read below)
        models = fit_all(e, train & ~left_out)
        sel = left_out & train
        p_ans[sel], p_list[sel] = (predict_all(e, models, n)[sel] for n in ("answer", "listed"))
    print("== leave one knowledge base out (each predicted by a model fitted on the others) ==")
    sub = _subset(e, train)
    report_groups(sub, p_ans[train], p_list[train], m)
    print_reliability(
        "Reliability, leave one knowledge base out (answer model):", p_ans[train], e.answer[train]
    )

    # The model the bot runs (knowledge/data/confidence.json), which a matching change measured
    # without a refit leaves as it was fitted.
    ship = shipped_model()
    shipped: Models = {
        name: {g: (np.asarray(part[g].weights), part[g].bias) for g in GROUPS}
        for name, part in (("answer", ship.answer), ("listed", ship.listed))
    }
    run_ans, run_list = predict_all(e, shipped, "answer"), predict_all(e, shipped, "listed")
    print("\n== the shipped model (knowledge/data/confidence.json), on these examples ==")
    report_groups(e, run_ans, run_list, m)
    if held.any():
        print_reliability("Reliability, held out, shipped model:", run_ans[held], e.answer[held])

    models = fit_all(e, train)
    for name in models:  # (the groups not refitted stay as shipped)
        for g in set(GROUPS) - groups:
            models[name][g] = shipped[name][g]
    full_ans, full_list = predict_all(e, models, "answer"), predict_all(e, models, "listed")
    print("\n== fitted on every training set (what this script writes without --check) ==")
    report_groups(e, full_ans, full_list, m)
    print_reliability("Reliability, in the fit (answer model):", full_ans[train], e.answer[train])
    if held.any():
        print_reliability("Reliability, held out:", full_ans[held], e.answer[held])
    for name in ("answer", "listed"):
        for g in GROUPS:
            w, b = models[name][g]
            weights = " ".join(f"{f}={v:+.2f}" for f, v in zip(FEATURES, w, strict=True))
            print(f"\n{name}/{g}: bias {b:+.3f} {weights}")
    if not args.check:
        data = {
            "features": list(FEATURES),
            **{
                name: {
                    g: {"weights": [round(float(v), 5) for v in w], "bias": round(float(b), 5)}
                    for g, (w, b) in models[name].items()
                }
                for name in ("answer", "listed")
            },
            "fitted_on": {
                g: sum(1 for x in e.group if x == g) for g in sorted(set(np.asarray(e.group)[train].tolist()))
            },
            "l2": L2,
            "refit": "python bench/calibrate.py"
            + (f" --groups {args.groups}" if groups != set(GROUPS) else "")
            + (f" --fit-batches {args.fit_batches}" if fitted != FITTED_BATCHES else "")
            + (f" --hold {args.hold}" if hold else ""),
        }
        MODEL_FILE.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {MODEL_FILE.relative_to(ROOT)}")


def _held(group: str, fitted: set[str], hold: set[str]) -> bool:
    """Whether an example's set/batch is left out of the fit: a resident batch not fitted on, or a
    resident or seed batch held out."""
    kb, name, batch = group.split("/")
    resident = kb == "default" and name.startswith("resident")
    seed = kb == "seed" and name.startswith("seed_")
    return (resident and batch not in fitted) or ((resident or seed) and batch in hold)


def _subset(e: Examples, mask: np.ndarray) -> Examples:
    return Examples(
        e.x[mask],
        e.answer[mask],
        e.listed[mask],
        e.kb[mask],
        [g for g, k in zip(e.group, mask, strict=True) if k],
        e.oos[mask],
        e.entry_group[mask],
        [q for q, k in zip(e.queries, mask, strict=True) if k],
    )


if __name__ == "__main__":
    main()

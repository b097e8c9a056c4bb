"""Smoke test of the performance benchmark (bench/): it still runs at a tiny size and its results are
sane. Timings are never asserted: this only guards the benchmark code against rot."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_matcher  # noqa: E402
import synth  # noqa: E402

SIZE = 300


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The whole benchmark at SIZE entries, in this process, caches and results in a temp folder."""
    tmp = tmp_path_factory.mktemp("bench")
    opts = bench_matcher.Options(
        sizes=[SIZE], queries=40, rounds=1, results_dir=str(tmp), cache_dir=str(tmp / "cache"), chunk=100
    )
    report, rows = bench_matcher.run(opts, inline=True, log=None)
    bench_matcher.save(report, rows, tmp)
    return report, rows[0]


def test_every_measurement_is_present(bench_run: tuple[str, dict[str, Any]]) -> None:
    report, row = bench_run
    assert row["entries"] == SIZE
    assert 0 < row["real"] <= SIZE
    assert row["build_s"] > 0
    assert row["rss_peak_mb"] > 0
    samples = {"ask": 40 * bench_matcher.TURNS_PER_ROUND, "baseline": 40, "ask_sqlite": 40}
    for name, n in samples.items():
        assert row[name]["n"] == n and row["queries"] == 40
        assert 0 < row[name]["p50"] <= row[name]["p99"] <= row[name]["max"]
    assert row["start_s"] > 0
    assert sum(row["statuses"].values()) == row["queries"]
    for title in ("Latency", "Build and memory", "Sanity", f"| {SIZE} "):
        assert title in report


def test_ask_and_baseline_are_timed_in_turns() -> None:
    """Each turn is a full ask pass, then the next slice of the baseline's questions: the baseline
    answers every question ``rounds`` times, ask ten times as often, and the two alternate."""
    calls: list[tuple[str, str]] = []

    async def ask(q: str) -> None:
        calls.append(("ask", q))

    def base(q: str) -> None:
        calls.append(("base", q))

    queries = [f"q{i}" for i in range(30)]
    (a_wall, a_cpu), (b_wall, _) = asyncio.run(bench_matcher.time_in_turns(ask, base, queries, 2))
    turns = 2 * bench_matcher.TURNS_PER_ROUND
    assert len(a_wall) == len(a_cpu) == 30 * turns and len(b_wall) == 30 * 2
    timed = calls[30 + 20 :]  # after the untimed pass of ask and 20 baseline questions
    assert Counter(q for who, q in timed if who == "base") == {q: 2 for q in queries}
    assert Counter(q for who, q in timed if who == "ask") == {q: turns for q in queries}
    # ask pass, baseline slice, ask pass...: every turn switches twice but the last
    assert sum(a[0] != b[0] for a, b in itertools.pairwise(timed)) == 2 * turns - 1


def test_spread_tells_slow_questions_from_slow_moments(bench_run: tuple[str, dict[str, Any]]) -> None:
    """Two questions, one twice as slow as the other, over 100 passes: in a steady run the p99 of
    each question's median is the slow one's, and no call runs slower than its median; when the
    last ten passes all run 1.5 times slower (a slow phase of the machine), every call at or above
    the p99 is one of them, and neighbouring calls' slowness correlates."""
    steady = [0.001, 0.002] * 100
    sp = bench_matcher.spread(steady, 2)
    assert sp["question_p50"] == pytest.approx(1.5) and sp["question_p99"] == pytest.approx(1.99)
    assert sp["p99_calls_slower"] == 0.0 and sp["phase_corr"] == 0.0
    phased = steady[:180] + [t * 1.5 for t in steady[180:]]
    sp = bench_matcher.spread(phased, 2)
    assert sp["question_p99"] == pytest.approx(1.99)  # (the medians hold)
    assert sp["p99_calls_slower"] == 1.0 and sp["phase_corr"] > 0.5
    assert bench_matcher.spread([], 2) == {}
    report, row = bench_run
    assert 0 < row["ask_spread"]["question_p50"] <= row["ask_spread"]["question_p99"]
    assert "What makes ask's p99" in report


def test_matcher_and_baseline_agree_on_exact_questions(bench_run: tuple[str, dict[str, Any]]) -> None:
    _, row = bench_run
    assert row["exact_queries"] >= 3
    assert row["exact_hit_baseline"] >= 0.9
    assert row["exact_agree"] >= 0.9
    assert set(row["hit1"]) == set(bench_matcher.HIT_KINDS)


def test_generator_is_deterministic_prefix_stable_and_in_bounds() -> None:
    real = synth.real_entries()
    vocab = synth.default_vocabulary(real)
    params = synth.SynthParams()
    taken = [e.question for e in real if e.question]
    big = synth.generate(60, vocab, params, taken)
    assert synth.generate(20, vocab, params, taken) == big[:20]
    questions = [r["question"] for r in big]
    assert len(set(questions)) == len(questions)
    assert not set(questions) & set(taken)
    for r in big:
        assert params.q_min <= len(r["question"]) <= params.q_max
        assert all(params.q_min <= len(a) <= params.q_max for a in r["alternates"])
        assert params.a_min <= len(r["answer"]) <= params.a_max


def test_queries_cover_every_kind() -> None:
    items = [(synth.record_of(e), {}) for e in synth.real_entries()]
    queries = synth.make_queries(items, 80)
    assert len(queries) == 80
    kinds = {q.kind for q in queries}
    assert {"exact", "paraphrase_real", "fragment", "out_of_scope"} <= kinds
    assert all(q.expect_id is None for q in queries if q.kind == "out_of_scope")


def test_command_line_options() -> None:
    quick = bench_matcher.options_from(bench_matcher.parse_args(["--quick", "--cpu", "-1"]))
    assert quick.sizes == [SIZE] and quick.cpu is None
    sized = bench_matcher.options_from(bench_matcher.parse_args(["--sizes", "1000,10000", "--no-sqlite"]))
    assert sized.sizes == [1000, 10000] and not sized.sqlite

"""Matcher performance at 1k, 10k and 100k entries against a naive rapidfuzz baseline.

    python bench/bench_matcher.py                         # 1k, 10k, 100k (first run tokenizes ~100k entries)
    python bench/bench_matcher.py --sizes 1000,10000      # a quicker run
    python bench/bench_matcher.py --quick                 # 300 entries, few questions (smoke test)
    python bench/bench_matcher.py --profile               # + cProfile of the matcher at the largest size

Knowledge bases are the real default one (knowledge/data) topped up with synthetic FAQ entries from
bench/synth.py. Each size is measured in fresh subprocesses pinned to one CPU, so sizes do not pollute
each other's memory:

* build:   Index.build from entries whose tokens are already computed (as at start-up), and RSS
           before, right after the build (entries still alive) and once the entries are freed;
* latency: QAService.ask with the entries in memory (Matcher.search + decide + answer text, no
           database), and the baseline: rapidfuzz.process.extract(query, every stored question,
           scorer=fuzz.ratio, limit=5) over compact normalized strings, timed in turns so that both
           are read under the same machine (``time_in_turns``); plus sanity checks;
* sqlite:  Services.start on a SQLite database holding the same entries (load rows + build), then
           QAService.ask end to end (the answered entry is read from the database).

The markdown table is printed and written to bench/results/ with the raw numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import synth  # noqa: E402
from rapidfuzz import fuzz, process  # noqa: E402

from bot.config import MatchingSettings, Settings  # noqa: E402
from bot.qa import QAService  # noqa: E402
from knowledge.index import TOKENS_FORMAT, Index, token_signature  # noqa: E402
from knowledge.models import Entry  # noqa: E402
from knowledge.retrieve import Matcher  # noqa: E402
from knowledge.segment import Lexicon  # noqa: E402
from knowledge.store import KnowledgeBase  # noqa: E402
from knowledge.text import compact, normalize  # noqa: E402

RESULTS = BENCH / "results"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
MB = 1024 * 1024


@dataclass
class Options:
    """What to measure and where to keep results and caches."""

    sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    queries: int = 400
    rounds: int = 3
    sqlite: bool = True
    profile: bool = False
    cpu: int | None = None
    results_dir: str = str(RESULTS)
    cache_dir: str = str(RESULTS / "cache")
    chunk: int = synth.CHUNK  # synthetic entries per cache file

    @classmethod
    def from_json(cls, text: str) -> Options:
        """The inverse of ``json.dumps(dataclasses.asdict(options))``."""
        return cls(**json.loads(text))


# -- helpers ------------------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident memory of this process, MB."""
    return psutil.Process().memory_info().rss / MB


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB: VmHWM, not ru_maxrss, which a child inherits
    from its parent across fork and exec (a worker would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(timings: tuple[Sequence[float], Sequence[float]]) -> dict[str, float]:
    """Wall-clock p50, p99, mean and max, and CPU-time p50 and p99, in milliseconds."""
    ms, cpu = np.asarray(timings[0]) * 1000, np.asarray(timings[1]) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "max": float(ms.max()),
        "cpu_p50": float(np.percentile(cpu, 50)),
        "cpu_p99": float(np.percentile(cpu, 99)),
        "n": len(ms),
    }


def load_entries(size: int, lex: Lexicon, opts: Options) -> tuple[list[Entry], list[synth.CorpusItem], str]:
    """Entries of a knowledge base of ``size`` (real + synthetic, tokens cached), the items, the key."""
    corpus = synth.load_corpus(size, lex, Path(opts.cache_dir), chunk=opts.chunk)
    items = corpus.take(size)
    return [synth.to_entry(r, t, token_signature(lex)) for r, t in items], items, corpus.key


def build_index(lex: Lexicon, entries: Sequence[Entry]) -> tuple[Index, float]:
    """A built index and the seconds Index.build took."""
    index = Index(lex)
    start = time.perf_counter()
    index.build((e, e.tokens) for e in entries)
    return index, time.perf_counter() - start


class MemoryKB:
    """What QAService needs of a KnowledgeBase, with the entries in memory instead of a database."""

    def __init__(self, index: Index, entries: Sequence[Entry]) -> None:
        self.index = index
        self.matcher = Matcher(index)
        self._by_id = {e.id: e for e in entries}

    async def get(self, entry_id: str) -> Entry | None:
        """One entry by id."""
        return self._by_id.get(entry_id)

    async def answer_entry(self, entry_id: str) -> Entry | None:
        """An entry to answer with (``KnowledgeBase.answer_entry``: these are all in memory)."""
        return self._by_id.get(entry_id)


class Baseline:
    """The naive matcher: fuzz.ratio of the question against every stored question."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.choices: list[str] = []
        self.owners: list[str] = []
        for e in entries:
            for text in [e.question, *e.alternates] if e.question else [e.title]:
                if c := compact(text):
                    self.choices.append(c)
                    self.owners.append(e.id)

    def top(self, question: str, limit: int = 5) -> list[tuple[str, float]]:
        """(entry id, score) of the best stored questions."""
        hits = process.extract(compact(question), self.choices, scorer=fuzz.ratio, limit=limit)
        return [(self.owners[i], float(score)) for _, score, i in hits]


Timings = tuple[list[float], list[float]]  # wall-clock and CPU seconds per call


class Clock:
    """Wall and CPU seconds of each call timed with ``timed``; the normalize() cache is cleared
    before each. CPU time (all threads of the process) shows what a busy machine adds to wall time."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @contextmanager
    def timed(self) -> Iterator[None]:
        normalize.cache_clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        yield
        self.wall.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - start_cpu)

    @property
    def timings(self) -> Timings:
        return self.wall, self.cpu


async def time_async(call: Callable[[str], Awaitable[Any]], queries: Sequence[str], rounds: int) -> Timings:
    """Wall and CPU seconds per call (``Clock``), after one warm-up pass."""
    for q in queries:
        await call(q)
    clock = Clock()
    for _ in range(rounds):
        for q in queries:
            with clock.timed():
                await call(q)
    return clock.timings


TURNS_PER_ROUND = 10  # baseline slices per round of ``time_in_turns``


async def time_in_turns(
    ask: Callable[[str], Awaitable[Any]], base: Callable[[str], Any], queries: Sequence[str], rounds: int
) -> tuple[Timings, Timings]:
    """The matcher and the baseline timed in turns, so that both are read under the same machine.

    The machine's speed drifts over seconds (one phase runs the matcher 1.6 times slower than the
    next), and timed one after the other the matcher's one-second pass and the baseline's
    thirty-second one fell in different phases. Each turn is one matcher pass over every question,
    then the baseline on the next tenth of them: after ``rounds`` × 10 turns the baseline has
    answered every question ``rounds`` times and the matcher ``rounds`` × 10 times, both spread
    over the same span. Timed with a ``Clock`` each, after one untimed pass of ask and 20
    baseline questions."""
    for q in queries:
        await ask(q)
    for q in queries[:20]:
        base(q)
    asked, based = Clock(), Clock()
    step = -(-len(queries) // TURNS_PER_ROUND)
    for turn in range(rounds * TURNS_PER_ROUND):
        for q in queries:
            with asked.timed():
                await ask(q)
        first = turn % TURNS_PER_ROUND * step
        for q in queries[first : first + step]:
            with based.timed():
                base(q)
    return asked.timings, based.timings


SLOWER = 1.2  # a call this many times its own question's median ran in a slow phase (``spread``)


def spread(wall: Sequence[float], questions: int) -> dict[str, float]:
    """What makes ask's p99: slow questions, or slow moments. ``wall`` holds whole passes over the
    same ``questions`` questions, in the order they ran (``time_in_turns``). The p50 / p99 of each
    question's median time (slow questions: what the code can speed up); the share of calls at or
    above the p99 of all calls that ran at least ``SLOWER`` times their question's median; and the
    correlation of each call's time over its question's median with the next call's (near 0 when
    slow calls strike at random, near 1 when the machine runs in slower and quicker phases)."""
    ms = np.asarray(wall[: len(wall) // questions * questions]) * 1000
    if not len(ms):
        return {}
    medians = np.median(ms.reshape(-1, questions), axis=0)
    ratio = ms / np.tile(medians, len(ms) // questions)
    top = ms >= np.percentile(ms, 99)
    phase = float(np.corrcoef(ratio[:-1], ratio[1:])[0, 1]) if len(ratio) > 2 and ratio.std() > 0 else 0.0
    return {
        "question_p50": float(np.percentile(medians, 50)),
        "question_p99": float(np.percentile(medians, 99)),
        "p99_calls_slower": float((ratio[top] >= SLOWER).mean()),
        "phase_corr": phase,
    }


# -- sanity -------------------------------------------------------------------------------------------
def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


HIT_KINDS = ("paraphrase_real", "paraphrase_edit", "fragment")


def sanity(matcher: Matcher, baseline: Baseline, queries: Sequence[synth.BenchQuery]) -> dict[str, Any]:
    """Top-1 agreement on exact stored questions, and hit@1 of both, by kind, where the entry is known."""
    exact_agree, exact_m, exact_b = [], [], []
    hits: dict[str, tuple[list[bool], list[bool]]] = {k: ([], []) for k in HIT_KINDS}
    for q in queries:
        if q.expect_id is None:
            continue
        _, cands = matcher.search(q.text, limit=1)
        m_top = cands[0].entry_id if cands else None
        b_top = next(iter(baseline.top(q.text, 1)), (None, 0.0))[0]
        if q.kind == "exact":
            exact_agree.append(m_top == b_top)
            exact_m.append(m_top == q.expect_id)
            exact_b.append(b_top == q.expect_id)
        elif q.kind in hits:
            hits[q.kind][0].append(m_top == q.expect_id)
            hits[q.kind][1].append(b_top == q.expect_id)
    return {
        "exact_queries": len(exact_agree),
        "exact_agree": _rate(exact_agree),
        "exact_hit_matcher": _rate(exact_m),
        "exact_hit_baseline": _rate(exact_b),
        "hit1": {k: {"n": len(m), "matcher": _rate(m), "baseline": _rate(b)} for k, (m, b) in hits.items()},
    }


def write_profile(prof: cProfile.Profile, title: str, path: Path) -> str:
    """The 25 costliest functions by own and by cumulative time, written to ``path``."""
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    out.write(f"{title}\n\n== by own time ==\n")
    stats.sort_stats("tottime").print_stats(25)
    out.write("\n== by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(25)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    return str(path)


def profile_matcher(matcher: Matcher, queries: Sequence[str], path: Path) -> str:
    """cProfile of Matcher.search over the queries; the report is written to ``path``."""
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        matcher.search(q, limit=10)
    prof.disable()
    return write_profile(prof, f"cProfile of Matcher.search over {len(queries)} questions", path)


def profile_build(lex: Lexicon, entries: Sequence[Entry], path: Path) -> tuple[Index, str]:
    """An index built under cProfile, and the path of the report."""
    prof = cProfile.Profile()
    index = Index(lex)
    prof.enable()
    index.build((e, e.tokens) for e in entries)
    prof.disable()
    return index, write_profile(prof, f"cProfile of Index.build over {len(entries)} entries", path)


# -- the three measurements (each run in a fresh subprocess) ------------------------------------------
def measure_build(size: int, opts: Options) -> dict[str, Any]:
    """Index.build time and resident memory for one size."""
    lex = Lexicon.load()
    gc.collect()
    base = rss_mb()
    entries, items, _ = load_entries(size, lex, opts)
    real = sum(1 for r, _ in items if not r["id"].startswith("syn-"))
    del items
    gc.collect()
    loaded = rss_mb()
    index, seconds = build_index(lex, entries)
    gc.collect()
    built = rss_mb()
    del entries
    gc.collect()
    return {
        "entries": len(index.docs),
        "real": real,
        "build_s": seconds,
        "rss_base_mb": base,
        "rss_loaded_mb": loaded,
        "rss_built_mb": built,
        "rss_steady_mb": rss_mb(),
        "rss_peak_mb": peak_rss_mb(),
    }


async def _latency(
    qa: QAService, baseline: Baseline, texts: Sequence[str], rounds: int
) -> tuple[Timings, Timings, Counter[str]]:
    """Timings of ``QAService.ask`` and of the baseline (``time_in_turns``), and the statuses of one
    pass of ask over the questions."""
    statuses = Counter([(await qa.ask(q)).status for q in texts])

    async def ask(q: str) -> None:
        await qa.ask(q)

    ask_times, base_times = await time_in_turns(ask, baseline.top, texts, rounds)
    return ask_times, base_times, statuses


def measure_latency(size: int, opts: Options) -> dict[str, Any]:
    """QAService.ask (entries in memory) and baseline latency, with sanity checks."""
    lex = Lexicon.load()
    entries, items, _ = load_entries(size, lex, opts)
    profiling = opts.profile and size == max(opts.sizes)
    results = Path(opts.results_dir)
    build_profile = ""
    if profiling:
        index, build_profile = profile_build(lex, entries, results / f"profile-build-{size}.txt")
    else:
        index, _ = build_index(lex, entries)
    queries = synth.make_queries(items, opts.queries)
    texts = [q.text for q in queries]
    kb = MemoryKB(index, entries)
    qa = QAService(cast(KnowledgeBase, kb), MatchingSettings())
    baseline = Baseline(entries)
    ask_times, base_times, statuses = asyncio.run(_latency(qa, baseline, texts, opts.rounds))
    oos = [q.text for q in queries if q.kind == "out_of_scope"]
    oos_answered = sum(asyncio.run(qa.ask(q)).status == "answered" for q in oos)
    out: dict[str, Any] = {
        "queries": len(queries),
        "query_kinds": dict(Counter(q.kind for q in queries)),
        "ask": percentiles(ask_times),
        "ask_spread": spread(ask_times[0], len(texts)),
        "baseline": percentiles(base_times),
        "baseline_choices": len(baseline.choices),
        "statuses": dict(statuses),
        "oos_answered": oos_answered / len(oos) if oos else None,
        **sanity(kb.matcher, baseline, queries),
    }
    if profiling:
        search_profile = profile_matcher(kb.matcher, texts, results / f"profile-search-{size}.txt")
        out["profiles"] = [search_profile, build_profile]
    return out


async def _create_db(path: Path, items: Sequence[synth.CorpusItem], signature: str) -> None:
    """A SQLite knowledge base holding exactly these entries, tokens cached (as after an import)."""
    from sqlalchemy import insert

    from knowledge.db import create_engine
    from knowledge.importers import ParsedEntry
    from knowledge.models import utcnow
    from knowledge.schema import ensure_schema

    engine = create_engine(f"sqlite:///{path}")
    try:
        await ensure_schema(engine)
        now = utcnow()
        rows = [
            {**r, "content_hash": ParsedEntry(**r).content_hash(), "tokens": t, "token_sig": signature}
            | {"created_at": now, "updated_at": now}
            for r, t in items
        ]
        async with engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(Entry), rows[i : i + 5000])
    finally:
        await engine.dispose()


def db_path(key: str, size: int, opts: Options) -> Path:
    """Where the SQLite knowledge base of this corpus and size is cached (per token-cache layout)."""
    return Path(opts.cache_dir) / f"kb-{key}-t{TOKENS_FORMAT}-{size}.db"


def ensure_db(size: int, items: Sequence[synth.CorpusItem], key: str, signature: str, opts: Options) -> Path:
    """The cached SQLite database for this corpus and size (created once)."""
    path = db_path(key, size, opts)
    if not path.exists():
        tmp = path.with_suffix(".tmp.db")
        tmp.unlink(missing_ok=True)
        asyncio.run(_create_db(tmp, items, signature))
        tmp.replace(path)
    return path


async def _sqlite_run(db: Path, texts: Sequence[str], rounds: int) -> dict[str, Any]:
    from bot.services import Services

    settings = Settings().replace("database", url=f"sqlite:///{db}")
    start = time.perf_counter()
    services = await Services.start(settings)
    started = time.perf_counter() - start
    try:
        times = await time_async(services.qa.ask, texts, rounds)
    finally:
        await services.close()
    return {"start_s": started, "ask_sqlite": percentiles(times)}


def measure_sqlite(size: int, opts: Options) -> dict[str, Any]:
    """Services.start on SQLite (rows + build) and QAService.ask end to end."""
    lex = Lexicon.load()
    corpus = synth.load_corpus(size, lex, Path(opts.cache_dir), chunk=opts.chunk)
    items = corpus.take(size)
    db = ensure_db(size, items, corpus.key, token_signature(lex), opts)
    texts = [q.text for q in synth.make_queries(items, opts.queries)]
    del corpus, items
    gc.collect()
    return asyncio.run(_sqlite_run(db, texts, opts.rounds))


async def _start_memory(db: Path) -> dict[str, Any]:
    from bot.services import Services

    gc.collect()
    base = rss_mb()
    services = await Services.start(Settings().replace("database", url=f"sqlite:///{db}"))
    try:
        gc.collect()
        return {
            "serve_entries": len(services.kb.index),
            "serve_rss_base_mb": base,
            "serve_rss_mb": rss_mb(),
            "serve_peak_mb": peak_rss_mb(),
        }
    finally:
        await services.close()


def measure_serving_memory(size: int, opts: Options) -> dict[str, Any]:
    """Resident memory of the real start path alone: a fresh process that only opens the SQLite
    knowledge base made by the ``sqlite`` worker and builds its index (rows streamed in batches),
    as ``policybot run`` does. Its peak is the memory a deployment needs for this many entries."""
    key = synth.SynthParams().key(token_signature(Lexicon.load()), synth.kb_digest())
    db = db_path(key, size, opts)
    if not db.exists():
        return {}
    return asyncio.run(_start_memory(db))


WORKERS: dict[str, Callable[[int, Options], dict[str, Any]]] = {
    "build": measure_build,
    "latency": measure_latency,
    "sqlite": measure_sqlite,
    "serve": measure_serving_memory,
}


def run_worker(name: str, size: int, opts: Options, inline: bool = False) -> dict[str, Any]:
    """One measurement in a fresh interpreter pinned to one CPU (or in this process when ``inline``)."""
    if inline:
        return WORKERS[name](size, opts)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--size", str(size)]
    cmd += ["--options", json.dumps(dataclasses.asdict(opts))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} {size} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_main(name: str, size: int, opts: Options) -> None:
    """Entry point of a worker subprocess: pin, measure, print one JSON line."""
    if opts.cpu is not None:
        os.sched_setaffinity(0, {opts.cpu})
    print(json.dumps(WORKERS[name](size, opts)))


# -- the report ---------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    import jieba
    import rapidfuzz

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rapidfuzz": rapidfuzz.__version__,
        "jieba": jieba.__version__,
        "loadavg": os.getloadavg(),
    }


def _f(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _lat(d: dict[str, float] | None) -> str:
    return "-" if d is None else f"{d['p50']:.2f} / {d['p99']:.2f} ({d['cpu_p99']:.2f})"


def latency_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: ask latency against the baseline (wall clock; CPU-time p99 in parentheses)."""
    out = [
        "| entries (real + synthetic) | questions × passes: ask / baseline | ask in-memory p50 / p99 (CPU p99) ms "
        "| ask + SQLite p50 / p99 (CPU p99) ms | baseline p50 / p99 (CPU p99) ms | speed-up p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["ask"], r["baseline"]
        out.append(
            f"| {r['entries']:,} ({r['real']} + {r['entries'] - r['real']:,}) | {r['queries']} × {a['n'] // r['queries']} / {b['n'] // r['queries']} "
            f"| {_lat(a)} | {_lat(r.get('ask_sqlite'))} | {_lat(b)} "
            f"| {b['p50'] / a['p50']:.1f}× / {b['p99'] / a['p99']:.1f}× |"
        )
    return out


def spread_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: ask's p99, slow questions against slow moments (``spread``)."""
    out = [
        "| entries | ask p50 / p99 of all calls ms | p50 / p99 of each question's median ms "
        f"| calls at or above the p99 that ran ≥ {SLOWER:g}× their question's median "
        "| correlation of a call's time (over its question's median) with the next call's |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        a, sp = r["ask"], r.get("ask_spread")
        if not sp:
            continue
        out.append(
            f"| {r['entries']:,} | {a['p50']:.2f} / {a['p99']:.2f} | {sp['question_p50']:.2f} / "
            f"{sp['question_p99']:.2f} | {_pct(sp['p99_calls_slower'])} | {sp['phase_corr']:.2f} |"
        )
    return out


def memory_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: build time and resident memory."""
    out = [
        "| entries | Index.build s | RSS base / entries loaded / built / entries freed MB | peak RSS MB "
        "| Services.start on SQLite s | service start alone: RSS before / serving / peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = " / ".join(
            f"{r[k]:.0f}" for k in ("rss_base_mb", "rss_loaded_mb", "rss_built_mb", "rss_steady_mb")
        )
        serve = (
            " / ".join(f"{r[k]:.0f}" for k in ("serve_rss_base_mb", "serve_rss_mb", "serve_peak_mb"))
            if "serve_peak_mb" in r
            else "-"
        )
        out.append(
            f"| {r['entries']:,} | {r['build_s']:.2f} | {rss} | {r['rss_peak_mb']:.0f} | {_f(r.get('start_s'))} "
            f"| {serve} |"
        )
    return out


def sanity_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: do matcher and baseline find the same entries?"""
    out = [
        "| entries | exact questions: top-1 agree / matcher hit / baseline hit | hit@1 matcher / baseline: "
        + " | ".join(HIT_KINDS)
        + " | out-of-scope answered | statuses (one pass) |",
        "|---|---|" + "---|" * len(HIT_KINDS) + "---|---|",
    ]
    for r in rows:
        st = ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))
        hit = " | ".join(
            f"{_pct(h['matcher'])} / {_pct(h['baseline'])} (n={h['n']})"
            for h in (r["hit1"][k] for k in HIT_KINDS)
        )
        out.append(
            f"| {r['entries']:,} | {_pct(r['exact_agree'])} / {_pct(r['exact_hit_matcher'])} / "
            f"{_pct(r['exact_hit_baseline'])} (n={r['exact_queries']}) | {hit} | {_pct(r['oos_answered'])} | {st} |"
        )
    return out


def targets(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The issue's targets that the measured sizes cover, PASS or MISS."""
    by = {r["entries"]: r for r in rows}
    checks: list[tuple[str, float, float, str]] = []
    if 10_000 in by:
        checks.append(("ask p99 at 10k (in-memory)", by[10_000]["ask"]["p99"], 5.0, "ms"))
    if 100_000 in by:
        r = by[100_000]
        checks += [
            ("ask p99 at 100k (in-memory)", r["ask"]["p99"], 2.0, "ms"),  # issues 13 and 19
            ("Index.build at 100k", r["build_s"], 10.0, "s"),
        ]
        # Memory is the service's own: the build worker's peak also counts the 100k ORM entries
        # the benchmark holds to time Index.build alone, which the service never holds at once.
        if "serve_peak_mb" in r:
            checks.append(
                (
                    "resident memory of the service at 100k (peak of its start)",
                    r["serve_peak_mb"],
                    500.0,
                    "MB",
                )
            )
    out = [f"- {name} ≤ {limit:g} {unit}: {value:.2f} {unit} — {'PASS' if value <= limit else 'MISS'}"
           for name, value, limit, unit in checks]  # fmt: skip
    if 100_000 in by:
        r = by[100_000]
        p50, p99 = r["baseline"]["p50"] / r["ask"]["p50"], r["baseline"]["p99"] / r["ask"]["p99"]
        verdict = "PASS" if min(p50, p99) >= 20 else "MISS"
        out.append(f"- speed-up over the baseline at 100k ≥ 20×: p50 {p50:.1f}×, p99 {p99:.1f}× — {verdict}")
    return out


def render(rows: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    """The whole markdown report."""
    head = (
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']}, Python {info['python']}, numpy {info['numpy']}, "
        f"rapidfuzz {info['rapidfuzz']}, jieba {info['jieba']}; 1-min load average {info['loadavg'][0]:.2f} at start, "
        f"{info.get('loadavg_end', info['loadavg'])[0]:.2f} at end."
    )
    parts = [head, "", "Latency (one core):", "", *latency_table(rows), ""]
    parts += [
        "What makes ask's p99 (slow questions, or slow moments of the machine):",
        "",
        *spread_table(rows),
        "",
    ]
    parts += ["Build and memory:", ""]
    parts += [*memory_table(rows), "", "Sanity:", "", *sanity_table(rows)]
    checks = targets(rows)
    if checks:
        parts += ["", "Targets:", "", *checks]
    profiles = [p for r in rows for p in r.get("profiles", [])]
    if profiles:
        parts += ["", *(f"cProfile: {p}" for p in profiles)]
    return "\n".join(parts) + "\n"


def run(opts: Options, inline: bool = False, log: Any = sys.stderr) -> tuple[str, list[dict[str, Any]]]:
    """Measure every size; return the markdown report and the raw rows."""
    lex = Lexicon.load()
    # generate and tokenize once, before the workers
    synth.load_corpus(max(opts.sizes), lex, Path(opts.cache_dir), log_to=log, chunk=opts.chunk)
    info = machine()
    rows: list[dict[str, Any]] = []
    for size in opts.sizes:
        row: dict[str, Any] = {"size": size}
        for name in ("build", "latency", *(["sqlite", "serve"] if opts.sqlite else [])):
            print(f"[{size}] {name}...", file=log, flush=True)
            row.update(run_worker(name, size, opts, inline))
        rows.append(row)
    info["loadavg_end"] = os.getloadavg()
    return render(rows, info), rows


def save(report: str, rows: Sequence[dict[str, Any]], results_dir: Path) -> Path:
    """Write the report (markdown) and the rows (JSON) under results_dir; return the markdown path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    md = results_dir / f"matcher-{stamp}.md"
    md.write_text(report, encoding="utf-8")
    md.with_suffix(".json").write_text(json.dumps(list(rows), indent=2, ensure_ascii=False), encoding="utf-8")
    return md


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", help="comma-separated knowledge base sizes (default 1000,10000,100000)")
    p.add_argument("--quick", action="store_true", help="300 entries, 60 questions, 2 rounds")
    p.add_argument("--queries", type=int, help="questions per size (default 400)")
    p.add_argument(
        "--rounds",
        type=int,
        help="timed passes of the baseline over the questions; ask makes 10 times as many (default 3)",
    )
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite end-to-end measurement")
    p.add_argument("--profile", action="store_true", help="cProfile Matcher.search at the largest size")
    p.add_argument("--cpu", type=int, help="CPU to pin workers to (default: the last one); -1: no pinning")
    p.add_argument("--results-dir", default=str(RESULTS), help="where reports go (default bench/results)")
    p.add_argument("--cache-dir", help="tokenized corpora and databases (default RESULTS/cache)")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--options", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    """Options from parsed arguments (``--quick`` sets small defaults)."""
    opts = Options(queries=60, rounds=2, sizes=[300]) if args.quick else Options()
    if args.sizes:
        opts.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    opts.queries = args.queries or opts.queries
    opts.rounds = args.rounds or opts.rounds
    opts.sqlite = not args.no_sqlite
    opts.profile = args.profile
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    opts.cpu = None if cpu < 0 else cpu
    opts.results_dir = args.results_dir
    opts.cache_dir = args.cache_dir or str(Path(args.results_dir) / "cache")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or one worker) and print the report."""
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.size, Options.from_json(args.options))
        return 0
    opts = options_from(args)
    report, rows = run(opts)
    path = save(report, rows, Path(opts.results_dir))
    print(report)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

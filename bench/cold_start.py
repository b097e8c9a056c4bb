"""Cold start of ``policybot ask``: from process start to the first answer line printed.

    python bench/cold_start.py                 # 5 runs with the normal (warm) cache, 3 first-ever runs
    python bench/cold_start.py --runs 10 --first-runs 0

A SQLite database holding the default knowledge base is made once with
``policybot --db sqlite:///DB kb import --default``; then ``policybot --db sqlite:///DB ask QUESTION`` is
started with subprocess and timed to its first line on standard output (and to its exit).

* warm cache: the normal case. The trimmed jieba dictionary and jieba's own cache already exist in
  POLICYBOT_CACHE_DIR (~/.cache/policybot); one untimed run first makes sure of it.
* first-ever: every run gets a new empty POLICYBOT_CACHE_DIR, so the trimmed dictionary is written and
  jieba builds its cache, as on the first start after an install.

Python's bytecode caches and the OS page cache are warm in both cases.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
QUESTION = "申请政府信息公开多久答复"
TARGET_S = 1.5


@dataclass(frozen=True, slots=True)
class Run:
    """One timed ``ask``: seconds to the first answer line and to exit, and that line."""

    first_line_s: float
    exit_s: float
    first_line: str


def policybot_cmd() -> list[str]:
    """The ``policybot`` console script next to this interpreter, else ``python -m policybot``."""
    script = Path(sys.executable).parent / "policybot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "policybot"]


def create_db(db_url: str, env: dict[str, str]) -> float:
    """Import the default knowledge base into a new database; return the seconds it took."""
    start = time.perf_counter()
    subprocess.run([*policybot_cmd(), "--db", db_url, "kb", "import", "--default"], env=env, check=True)
    return time.perf_counter() - start


def time_ask(db_url: str, env: dict[str, str], question: str = QUESTION) -> Run:
    """Start ``policybot ask`` and time it to its first non-empty line on stdout, then to its exit."""
    cmd = [*policybot_cmd(), "--db", db_url, "ask", question]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        assert proc.stdout is not None
        line = ""
        while not line.strip():
            line = proc.stdout.readline()
            if not line:
                break
        first = time.perf_counter() - start
        proc.communicate()
        total = time.perf_counter() - start
        if proc.returncode != 0 or not line.strip():
            err.seek(0)
            raise RuntimeError(
                f"policybot ask failed ({proc.returncode}): {err.read().decode(errors='replace')}"
            )
    return Run(first, total, line.strip())


def decision(db_url: str) -> dict[str, object]:
    """What ``ask --json`` decides for the question (status, entry), to show the run answered it."""
    cmd = [*policybot_cmd(), "--db", db_url, "ask", "--json", QUESTION]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[0])


def warm_runs(db_url: str, n: int) -> list[Run]:
    """n timed runs with the normal cache, after one untimed run that fills it."""
    env = dict(os.environ)
    time_ask(db_url, env)
    return [time_ask(db_url, env) for _ in range(n)]


def first_ever_runs(db_url: str, n: int) -> list[Run]:
    """n timed runs, each with a new empty POLICYBOT_CACHE_DIR."""
    runs: list[Run] = []
    for _ in range(n):
        with tempfile.TemporaryDirectory(prefix="policybot-cache-") as cache:
            runs.append(time_ask(db_url, {**os.environ, "POLICYBOT_CACHE_DIR": cache}))
    return runs


def _row(name: str, runs: Sequence[Run]) -> str:
    firsts = [r.first_line_s for r in runs]
    exits = [r.exit_s for r in runs]
    return (
        f"| {name} | {len(runs)} | {min(firsts):.3f} / {statistics.median(firsts):.3f} "
        f"| {min(exits):.3f} / {statistics.median(exits):.3f} |"
    )


def render(warm: Sequence[Run], first: Sequence[Run], import_s: float, decided: dict[str, object]) -> str:
    """The markdown report."""
    import platform

    lines = [
        f"Measured {datetime.now().astimezone().isoformat(timespec='seconds')} on {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; `policybot ask {QUESTION}` on SQLite holding the default "
        f"knowledge base (kb import --default took {import_s:.2f} s).",
        "",
        "| cache | runs | first answer line min / median s | process exit min / median s |",
        "|---|---|---|---|",
    ]
    if warm:
        lines.append(_row("warm (normal)", warm))
    if first:
        lines.append(_row("first-ever (empty POLICYBOT_CACHE_DIR)", first))
    if warm:
        median = statistics.median(r.first_line_s for r in warm)
        verdict = "PASS" if median <= TARGET_S else "MISS"
        lines += ["", f"Target: cold start ≤ {TARGET_S} s (warm cache, median): {median:.3f} s — {verdict}"]
        lines += [f"First answer line: {warm[0].first_line}"]
    lines += [f"Decision (ask --json): status {decided.get('status')}, entry {decided.get('entry_id')}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Create the database, time the runs, print and save the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="timed runs with the normal cache (default 5)")
    p.add_argument("--first-runs", type=int, default=3, help="timed first-ever runs (default 3)")
    p.add_argument("--results-dir", default=str(RESULTS), help="where the report goes")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="policybot-cold-") as tmp:
        db_url = f"sqlite:///{tmp}/cold.db"
        import_s = create_db(db_url, dict(os.environ))
        warm = warm_runs(db_url, args.runs)
        first = first_ever_runs(db_url, args.first_runs)
        report = render(warm, first, import_s, decision(db_url))
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cold-start-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

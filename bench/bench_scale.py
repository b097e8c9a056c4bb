"""A city's knowledge: import, start and update at 10k and 100k FAQ pairs (issue 19).

    python bench/bench_scale.py                        # 10k and 100k
    python bench/bench_scale.py --sizes 10000          # quicker
    python bench/bench_scale.py --baseline-src DIR     # also the same commands run from DIR (older code)

For each size, a FAQ file of that many synthetic pairs (bench/synth.py, no tokens needed) is written,
then, each in a fresh process on a new SQLite database:

* import:  ``policybot kb import FILE``: wall time; peak memory as the peak RSS of the import process
           (``wait4``'s ru_maxrss) and as the peak total PSS of its process tree (the tokenizer
           workers share the parent's pages: PSS counts a shared page once), sampled every 0.1 s;
* files:   the index folder's size after the import;
* ask:     ``policybot ask`` to its first answer line, with the index files present (3 runs), and once
           with the folder deleted (the first build);
* start:   ``Services.start`` in a fresh process, with the files, and again with them deleted;
* update:  one entry added, then edited, through ``KnowledgeBase.save_entry`` in a started service:
           the time until the call returns, when the entry is in the index (commit included).

``--baseline-src DIR`` runs the import, the cold ask and the first build's start again from another
checkout (e.g. main before this change: ``git archive COMMIT | tar -x -C DIR``), in the same run, on
the same file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import psutil  # noqa: E402
import synth  # noqa: E402

RESULTS = BENCH / "results"
QUESTION = "申请政府信息公开多久答复"
MB = 1024 * 1024


def write_faq(path: Path, n: int) -> None:
    """A FAQ file of ``n`` synthetic pairs (the benchmark corpus's, as FAQ lines)."""
    parsed = synth.real_entries()
    taken = [q for e in parsed for q in [e.question, *e.alternates] if q]
    records = synth.generate(n, synth.default_vocabulary(parsed), synth.SynthParams(), taken)
    keep = ("id", "question", "answer", "alternates", "category", "tags")
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({k: r[k] for k in keep}, ensure_ascii=False) + "\n")


def _tree_pss(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_full_info().pss
    return total / MB


def run_measured(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run a command; wall time, its own peak RSS (wait4) and its tree's peak PSS (sampled)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_pss(ps))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    err_chunks: list[bytes] = []
    err_reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    err_reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    reader.join()
    err_reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {b''.join(err_chunks).decode(errors='replace')[-2000:]}")
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "peak_tree_pss_mb": peak[0],
        "stdout": b"".join(out_chunks).decode(errors="replace").strip()[-300:],
    }


def time_ask(src: Path, db_url: str) -> float:
    """Seconds from starting ``policybot ask`` to its first answer line."""
    cmd = [sys.executable, "-m", "policybot", "--db", db_url, "ask", QUESTION]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = ""
    while not line.strip():
        line = proc.stdout.readline()
        if not line:
            break
    first = time.perf_counter() - start
    proc.communicate()
    if proc.returncode != 0 or not line.strip():
        raise RuntimeError(f"policybot ask failed ({proc.returncode})")
    return first


_START = """
import asyncio, json, sys, time
from bot.config import Settings
from bot.services import Services
from knowledge.importers import ParsedEntry

async def main(url, update):
    t = time.perf_counter()
    s = await Services.start(Settings().replace("database", url=url, index_poll_seconds=0))
    out = {"start_s": time.perf_counter() - t, "entries": len(s.kb.index)}
    if update:
        e = ParsedEntry(id="bench-new", kind="faq", question="城市公交老年卡怎么补办", answer="到公交集团服务网点补办。")
        t = time.perf_counter()
        await s.kb.save_entry(e)
        out["add_ms"] = (time.perf_counter() - t) * 1000
        e.answer = "带身份证到公交集团任一服务网点补办，当场取卡。"
        t = time.perf_counter()
        await s.kb.save_entry(e)
        out["edit_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        await s.kb.set_status("bench-new", "expired")
        out["remove_ms"] = (time.perf_counter() - t) * 1000
        _, cands = s.kb.matcher.search("城市公交老年卡怎么补办", limit=3)
        out["removed_gone"] = all(c.entry_id != "bench-new" for c in cands)
    await s.close()
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
"""


def services_start(src: Path, db_url: str, update: bool = False) -> dict[str, Any]:
    """``Services.start`` in a fresh process (and one entry added, edited and retired)."""
    cmd = [sys.executable, "-c", _START, db_url, "1" if update else "0"]
    done = subprocess.run(cmd, cwd=src, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / MB


def measure(size: int, faq: Path, tmp: Path, baseline: Path | None) -> dict[str, Any]:
    """Every measurement of one size (see the module docstring)."""
    row: dict[str, Any] = {"size": size}
    db = tmp / f"kb-{size}.db"
    url = f"sqlite:///{db}"
    index_dir = Path(f"{db}.index")
    print(f"[{size}] import...", file=sys.stderr, flush=True)
    row["import"] = run_measured(
        [sys.executable, "-m", "policybot", "--db", url, "kb", "import", str(faq)], ROOT
    )
    row["index_mb"] = folder_mb(index_dir)
    print(f"[{size}] ask and start...", file=sys.stderr, flush=True)
    row["ask_files_s"] = [time_ask(ROOT, url) for _ in range(3)]
    row["start_files"] = services_start(ROOT, url, update=True)
    shutil.rmtree(index_dir)
    row["start_build"] = services_start(ROOT, url)  # (saves the files again)
    shutil.rmtree(index_dir)
    row["ask_build_s"] = time_ask(ROOT, url)
    if baseline is not None:
        print(f"[{size}] baseline import and ask...", file=sys.stderr, flush=True)
        bdb = tmp / f"base-{size}.db"
        burl = f"sqlite:///{bdb}"
        row["base_import"] = run_measured(
            [sys.executable, "-m", "policybot", "--db", burl, "kb", "import", str(faq)], baseline
        )
        row["base_ask_s"] = time_ask(baseline, burl)
        shutil.rmtree(Path(f"{bdb}.index"), ignore_errors=True)
        row["base_start_build"] = services_start(baseline, burl)  # (the first build, as above)
        bdb.unlink()
    db.unlink()
    return row


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The markdown report."""
    lines = [
        f"Measured {info['date']} on {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}; "
        f"1-min load average {info['load'][0]:.2f} at start, {info['load_end'][0]:.2f} at end "
        "(the machine is shared with other engineers' work).",
        "",
        "| entries | kb import s | import peak RSS / tree PSS MB | index files MB | cold ask s (files: 3 runs; first build) "
        "| Services.start s (files / first build) | one entry added / edited / retired ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        imp, sf, sb = r["import"], r["start_files"], r["start_build"]
        asks = ", ".join(f"{a:.2f}" for a in r["ask_files_s"])
        lines.append(
            f"| {r['size']:,} | {imp['seconds']:.1f} | {imp['peak_rss_mb']:.0f} / {imp['peak_tree_pss_mb']:.0f} "
            f"| {r['index_mb']:.1f} | {asks}; {r['ask_build_s']:.2f} | {sf['start_s']:.2f} / {sb['start_s']:.2f} "
            f"| {sf['add_ms']:.0f} / {sf['edit_ms']:.0f} / {sf['remove_ms']:.0f} |"
        )
    base = [r for r in rows if "base_import" in r]
    if base:
        lines += ["", "Baseline (the older checkout, same run, same files):", ""]
        lines += [
            "| entries | kb import s | import peak RSS / tree PSS MB | cold ask s | Services.start s (first build) |",
            "|---|---|---|---|---|",
        ]
        for r in base:
            b = r["base_import"]
            lines.append(
                f"| {r['size']:,} | {b['seconds']:.1f} | {b['peak_rss_mb']:.0f} / {b['peak_tree_pss_mb']:.0f} "
                f"| {r['base_ask_s']:.2f} | {r['base_start_build']['start_s']:.2f} |"
            )
    big = next((r for r in rows if r["size"] == 100_000), None)
    if big:
        imp, sf, sb = big["import"], big["start_files"], big["start_build"]
        checks = [
            ("kb import of 100,000 FAQ pairs ≤ 45 s", imp["seconds"], 45),
            ("its peak memory ≤ 600 MB (tree PSS)", imp["peak_tree_pss_mb"], 600),
            ("its peak memory ≤ 600 MB (import process RSS)", imp["peak_rss_mb"], 600),
            ("Services.start at 100k with the files ≤ 3 s", sf["start_s"], 3),
            ("Services.start at 100k, first build ≤ 10 s", sb["start_s"], 10),
            ("cold policybot ask at 100k ≤ 3 s (median of 3)", sorted(big["ask_files_s"])[1], 3),
            ("one entry added at 100k reaches the index ≤ 200 ms", sf["add_ms"], 200),
            ("one entry edited at 100k reaches the index ≤ 200 ms", sf["edit_ms"], 200),
        ]
        lines += ["", "Targets:", ""]
        lines += [
            f"- {name}: {value:.2f} — {'PASS' if value <= limit else 'MISS'}" for name, value, limit in checks
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--baseline-src", help="another checkout to run the import and ask from, for comparison")
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)
    info = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load": os.getloadavg(),
    }
    baseline = Path(args.baseline_src).resolve() if args.baseline_src else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="policybot-scale-") as tmp_name:
        tmp = Path(tmp_name)
        for size in [int(s) for s in args.sizes.split(",")]:
            faq = tmp / f"faq-{size}.jsonl"
            write_faq(faq, size)
            rows.append(measure(size, faq, tmp, baseline))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # (each size as soon as it is done)
    info["load_end"] = os.getloadavg()
    report = render(rows, info)
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scale-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report, encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(report)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

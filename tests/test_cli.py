"""The ``policybot`` command line, run as users run it (a subprocess each; they cost ~1 s, so few).

policybot [--config FILE] [--db URL] COMMAND ...
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.config import Settings
from bot.services import Services
from knowledge.importers import parse_paths
from knowledge.segment import Lexicon, cache_dir
from knowledge.store import default_paths
from tests.conftest import seed_path

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "data" / "bad"
DOC = "doc-7a78d0a404"
KEYS = {
    "question",
    "status",
    "answer",
    "entry_id",
    "title",
    "score",
    "suggestions",
    "source",
    "confidence",
    "kind",
}

FAQ = "\n".join(
    json.dumps(r, ensure_ascii=False)
    for r in [
        {"id": "cli-faq-7", "question": "展会补贴什么时候发放？", "answer": "展会结束后按批次审核发放。"},
        {"id": "cli-faq-8", "question": "老字号认定需要什么条件？", "answer": "品牌创立五十年以上。"},
    ]
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    env["POLICYBOT_CACHE_DIR"] = str(cache_dir())  # the jieba dictionary cache this run already built
    env["PYTHONPATH"] = str(ROOT)
    return env


def policybot(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policybot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_env(),
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


async def _count(url: str, lexicon: Lexicon) -> tuple[int, set[str]]:
    s = await Services.start(Settings().replace("database", url=url), build_index=False, lexicon=lexicon)
    try:
        return await s.kb.count(), {e.id for e in await s.kb.entries(limit=100_000)}
    finally:
        await s.close()


def _async_form(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+aiosqlite:///", 1).replace(
        "postgresql://", "postgresql+asyncpg://", 1
    )


async def test_kb_commands(db_url: str, tmp_path: Path, lexicon: Lexicon) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text(FAQ + "\n", encoding="utf-8")
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "cli-more", "question": "问？", "answer": "答。"}, ensure_ascii=False))
    db = ["--db", db_url]

    out = ok(policybot(*db, "kb", "import", str(seed_path()), str(faq), cwd=tmp_path))
    assert "added 20, updated 0, unchanged 0, removed 0" in out
    out = ok(policybot(*db, "kb", "import", str(seed_path()), str(faq), cwd=tmp_path))
    assert "added 0, updated 0, unchanged 20, removed 0" in out

    # a malformed file after a good one: exit non-zero, file:line: reason, nothing written
    bad = policybot(*db, "kb", "import", str(more), str(BAD / "faq_bad_json.jsonl"), cwd=tmp_path)
    assert bad.returncode != 0
    assert f"{BAD / 'faq_bad_json.jsonl'}:2: not valid JSON" in bad.stderr
    assert "Traceback" not in bad.stderr
    count, ids = await _count(db_url, lexicon)
    assert count == 20 and "cli-more" not in ids

    # export, then import the export: nothing changes (the async-driver URL form works as well)
    export = tmp_path / "export.jsonl"
    proc = policybot("--db", _async_form(db_url), "kb", "export", "-o", str(export), cwd=tmp_path)
    ok(proc)
    assert "exported 20 entries" in proc.stderr
    out = ok(policybot(*db, "kb", "import", str(export), cwd=tmp_path))
    assert "added 0, updated 0, unchanged 20" in out
    assert len(export.read_text(encoding="utf-8").splitlines()) == 20

    listed = ok(policybot(*db, "kb", "list", "--kind", "clause", cwd=tmp_path)).splitlines()
    assert listed[0] == "id\tkind\tstatus\tcategory\ttitle" and len(listed) == 18
    assert listed[1].split("\t")[:2] == [f"{DOC}/preamble", "clause"]
    # plain ask: each question above its answer
    asked = ok(
        policybot(*db, "ask", "这个方案的文号是多少？", "会议室周末能借用吗", cwd=tmp_path)
    ).splitlines()
    first, second = asked.index("问：这个方案的文号是多少？"), asked.index("问：会议室周末能借用吗")
    assert first == 0 and any("鼓商务〔2020〕123号" in line for line in asked[first:second])
    assert asked[second + 1] == "这个问题知识库里还没有可靠的答案。"

    shown = json.loads(ok(policybot(*db, "kb", "show", "cli-faq-7", cwd=tmp_path)))
    assert shown["id"] == "cli-faq-7" and shown["question"] == "展会补贴什么时候发放？"
    missing = policybot(*db, "kb", "show", "no-such-id", cwd=tmp_path)
    assert missing.returncode == 1 and "no entry 'no-such-id'" in missing.stderr

    stats = json.loads(ok(policybot(*db, "kb", "stats", cwd=tmp_path)))
    assert stats["total"] == 20
    assert stats["by_kind"] == {"policy": 1, "clause": 17, "faq": 2}
    # what the bot can answer with: the index (loaded for the command), every entry being published
    assert stats["indexed"] == 20 and stats["indexed_by_kind"] == stats["by_kind"]


async def test_ask_explain(db_url: str, tmp_path: Path, lexicon: Lexicon) -> None:
    """``ask --explain`` prints the decision, its confidence and each candidate's features."""
    s = await Services.start(Settings().replace("database", url=db_url), lexicon=lexicon)
    try:
        await s.kb.import_paths([seed_path()])
    finally:
        await s.close()
    out = ok(policybot("--db", db_url, "ask", "--explain", "这个方案的文号是多少？", cwd=tmp_path))
    assert "answered" in out and "confidence" in out and DOC in out
    for name in ("score", "margin", "coverage", "question_sim", "spec_coverage", "missing", "probability"):
        assert name in out
    explained = json.loads(ok(policybot("--db", db_url, "ask", "--explain", "--json", "文号", cwd=tmp_path)))
    assert set(explained) >= {"status", "confidence", "candidates", "words", "precision", "held"}
    assert explained["candidates"] and "features" in explained["candidates"][0]


async def test_ask_json(db_url: str, tmp_path: Path, lexicon: Lexicon) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text(FAQ, encoding="utf-8")
    s = await Services.start(Settings().replace("database", url=db_url), lexicon=lexicon)
    try:
        await s.kb.import_paths([seed_path(), faq])
    finally:
        await s.close()
    questions = ["这个方案的文号是多少？", "明天会下雨吗", "展会补贴什么时候发放", "信息公开"]
    out = ok(policybot("--db", db_url, "ask", "--json", *questions, cwd=tmp_path))
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["question"] for r in rows] == questions
    for r in rows:
        assert set(r) == KEYS
        assert r["status"] in ("answered", "suggested", "escalated")
        assert isinstance(r["score"], int | float) and 0 <= r["score"] <= 1
        assert isinstance(r["suggestions"], list)
        for sug in r["suggestions"]:
            assert set(sug) == {"entry_id", "title", "score"}
        assert 0 <= r["confidence"] <= 1
        assert r["status"] != "answered" or r["confidence"] >= Settings().matching.precision
    number, weather, faq_row, vague = rows
    assert number["kind"] == "policy" and faq_row["kind"] == "faq" and vague["kind"] is not None
    assert number["status"] == "answered" and "鼓商务〔2020〕123号" in number["answer"]
    assert number["entry_id"] == DOC and number["title"] == "鼓楼区商务局2020年政务公开工作实施方案"
    assert number["source"]["number"] == "鼓商务〔2020〕123号" and number["source"]["date"] == "2020-11-12"
    assert weather["status"] == "escalated"
    assert weather["answer"] is None and weather["entry_id"] is None and weather["title"] is None
    assert weather["source"] is None and weather["suggestions"] == []
    assert faq_row["status"] == "answered" and faq_row["entry_id"] == "cli-faq-7"  # imported id kept
    assert vague["status"] == "suggested"
    assert vague["answer"] is None and vague["source"] is None
    best = vague["suggestions"][0]
    assert (vague["entry_id"], vague["title"]) == (best["entry_id"], best["title"])
    assert len(vague["suggestions"]) >= 2

    plain = ok(policybot("--db", db_url, "ask", "这个方案的文号是多少？", cwd=tmp_path))
    assert "文号：鼓商务〔2020〕123号" in plain
    assert "来源：《鼓楼区商务局2020年政务公开工作实施方案》" in plain


def _stream_questions(db_url: str, tmp_path: Path) -> None:
    """Write one question, read its answer, then write the next (a blocking conversation with the
    process, so kept out of the event loop)."""
    with subprocess.Popen(
        [sys.executable, "-m", "policybot", "--db", db_url, "ask", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=_env(),
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        stdout = proc.stdout
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
        reader.start()
        try:
            for question, status in [
                ("这个方案的文号是多少？", "answered"),
                ("明天会下雨吗", "escalated"),
                ("", "escalated"),
                ("方案落款日期是哪天", "answered"),
            ]:
                proc.stdin.write(question + "\n")
                proc.stdin.flush()
                # the answer comes before the next question is written: answers stream, not batch at EOF
                row = json.loads(lines.get(timeout=60))
                assert row["question"] == question
                assert row["status"] == status
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=10)
    assert lines.empty()  # one answer a question, nothing more


async def test_ask_from_stdin_answers_each_line_as_it_arrives(
    db_url: str, tmp_path: Path, lexicon: Lexicon
) -> None:
    s = await Services.start(Settings().replace("database", url=db_url), lexicon=lexicon)
    try:
        await s.kb.import_paths([seed_path()])
    finally:
        await s.close()
    _stream_questions(db_url, tmp_path)


async def test_ask_and_import_never_load_the_default_kb(
    db_url: str, tmp_path: Path, lexicon: Lexicon
) -> None:
    # --db overrides the config file's url
    elsewhere = tmp_path / "elsewhere.db"
    config = tmp_path / "policybot.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{elsewhere}"\n', encoding="utf-8")
    db = ["--config", str(config), "--db", db_url]
    empty = policybot(*db, "ask", "--json", "外商投资信息报告要什么材料", cwd=tmp_path)
    row = json.loads(ok(empty))
    assert row["status"] == "escalated"
    assert "knowledge base is empty" in empty.stderr and "kb import --default" in empty.stderr
    assert (await _count(db_url, lexicon))[0] == 0
    assert not elsewhere.exists()

    out = ok(policybot(*db, "kb", "import", "--default", cwd=tmp_path))
    expected = len(parse_paths(default_paths()))
    assert f"added {expected}, updated 0, unchanged 0" in out
    asked = ["鼓楼区商务局的电话是多少？", "房产证丢了怎么补办", "你好", "会议室周末能借用吗"]
    loaded = policybot(*db, "ask", "--json", *asked, cwd=tmp_path)
    assert "knowledge base is empty" not in loaded.stderr
    phone, referral, greeting, unknown = map(json.loads, ok(loaded).splitlines())
    assert phone["status"] == "answered" and phone["entry_id"] == "faq-bureau-002"
    assert phone["kind"] == "faq"
    # Another body's matter is answered (by its referral), small talk too; no reliable answer stays
    # "escalated" although ``ask`` opens no ticket.
    assert (referral["status"], referral["kind"], referral["entry_id"]) == (
        "answered",
        "referral",
        "ref-realestate",
    )
    assert "不动产登记" in referral["answer"]
    assert (greeting["status"], greeting["kind"], greeting["entry_id"]) == (
        "answered",
        "smalltalk",
        "smalltalk-hello",
    )
    assert unknown["status"] == "escalated" and unknown["kind"] is None


def test_kb_list_to_a_reader_that_stops_early_is_quiet(tmp_path: Path) -> None:
    """``policybot kb list | head``: the reader is gone before the first line; no traceback, success."""
    db = f"sqlite:///{tmp_path}/closed.db"
    closed = subprocess.Popen(
        [sys.executable, "-m", "policybot", "--db", db, "kb", "list"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()
    with closed.stderr:
        err = closed.stderr.read().decode()
    assert closed.wait(timeout=60) == 0 and err == "", err


@pytest.mark.skipif(bool(os.environ.get("POLICYBOT_TEST_DATABASE_URL")), reason="checks the SQLite default")
def test_default_database_is_a_sqlite_file_under_var(tmp_path: Path) -> None:
    stats = json.loads(ok(policybot("kb", "stats", cwd=tmp_path)))
    assert stats["total"] == 0
    assert (tmp_path / "var" / "policybot.db").is_file()


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    proc = policybot("--db", "mysql://u@h/db", "kb", "stats", cwd=tmp_path)
    assert proc.returncode == 1
    assert "unsupported database 'mysql'" in proc.stderr
    assert "Traceback" not in proc.stderr

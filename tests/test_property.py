"""Property-based tests (hypothesis): any text through the question path, any file through the importers.

The hypothesis examples run inside one event loop of their own (``asyncio.Runner``) on one set of
services, so that a few hundred examples take seconds.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.config import Settings
from bot.messages import IncomingMessage
from bot.services import Services
from knowledge.importers import ImportFailure, parse_file
from knowledge.importers.faq import parse_csv, parse_jsonl
from knowledge.importers.markdown import parse_markdown
from knowledge.importers.policy_text import parse_policy_text
from knowledge.segment import Lexicon
from knowledge.store import default_paths
from tests.conftest import seed_path

STATUSES = {"answered", "suggested", "escalated"}
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words the knowledge base knows, so that generated questions also reach answers and suggestions.
WORDS = [
    "文号", "方案", "政务公开", "政府信息公开", "备案", "备按", "外资", "外商投资", "材料", "多久", "收费",
    "特许经营", "预付卡", "12小时", "十二小时", "转载", "责任科室", "什么", "怎么", "吗", "？", "！", "……",
    "😀", "ＡＢＣ", "資訊", "拍卖", "电话", "<b>", "'", ";", "--", "\x00", "\u200b", "\n", " ",
]  # fmt: skip

texts = st.one_of(
    st.text(),  # any Unicode without surrogates, control characters included
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.lists(st.sampled_from(WORDS), max_size=12).map("".join),
    st.tuples(st.lists(st.sampled_from(WORDS), max_size=6).map("".join), st.text(max_size=20)).map("".join),
    st.tuples(st.sampled_from(["这个方案的文号是多少", "问", "a", "😀", " "]), st.integers(1990, 2100)).map(
        lambda t: t[0] * t[1]
    ),  # around the 2,000-character limit
    st.text(min_size=300, max_size=600),  # long: the homophone pass is skipped past 300 characters
)


def _check_decision(d) -> None:
    assert d.status in STATUSES
    assert 0.0 <= d.score <= 1.0 + 1e-9
    json.dumps(d.to_json())
    if d.invalid:
        assert d.status == "escalated" and d.notice
    if d.status == "answered":
        assert d.answer and d.entry_id and d.source is not None
        # (small talk, 哈 or h, is the desk's own reply: it cites nothing)
        assert d.citation.startswith("来源：") or (d.kind == "smalltalk" and not d.citation)
    elif d.status == "suggested":
        assert d.suggestions and d.entry_id == d.suggestions[0].entry_id and d.answer is None
    else:
        assert d.entry_id is None and d.answer is None and d.notice


def test_ask_never_raises(runner: asyncio.Runner, db_url: str, lexicon: Lexicon) -> None:
    async def start() -> Services:
        s = await Services.start(Settings().replace("database", url=db_url), lexicon=lexicon)
        await s.kb.import_paths(default_paths())
        return s

    services = runner.run(start())
    try:
        seen: set[str] = set()

        @FAST
        @given(texts)
        def check(text: str) -> None:
            d = runner.run(services.qa.ask(text))
            _check_decision(d)
            seen.add(d.status)

        check()
        assert seen == STATUSES  # the generator reached every outcome
    finally:
        runner.run(services.close())


def test_conversation_never_raises(runner: asyncio.Runner, db_url: str, lexicon: Lexicon) -> None:
    """The same through the conversation core and the database (surrogates included)."""

    async def start() -> App:
        app = await App.create(Settings().replace("database", url=db_url), lexicon=lexicon)
        await app.services.kb.import_paths([seed_path()])
        return app

    app = runner.run(start())
    counter = iter(range(10**9))
    try:

        @SLOW
        @given(
            st.one_of(texts, st.text(alphabet=st.characters(), max_size=30)), st.sampled_from(["u1", "u2"])
        )
        def check(text: str, user: str) -> None:
            replies = runner.run(
                app.conversations.handle(
                    IncomingMessage("web", user, user, text, update_id=str(next(counter)))
                )
            )
            assert len(replies) == 1
            assert replies[0].kind in ("answer", "suggestions", "no_answer", "escalated", "error", "info")
            assert replies[0].text.strip()

        check()
        assert runner.run(app.services.kb.count()) == 18
    finally:
        runner.run(app.close())


# -- importers -------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
ENTRY_KEYS = [
    "id", "kind", "question", "answer", "alternates", "category", "tags", "source", "status", "illustrative",
    "title", "sections", "heading_path", "position", "parent_id", "office", "publish_date", "valid_until",
]  # fmt: skip
plausible = {
    "id": st.one_of(
        st.text(max_size=12), st.integers(0, 10**6), st.sampled_from(["x", "a/b", "#x", "a b", "q1"])
    ),
    "kind": st.sampled_from(["faq", "guide", "policy", "clause", "other"]),
    "question": st.one_of(st.text(max_size=20), st.just("展会补贴什么时候发？")),
    "answer": st.one_of(st.text(max_size=20), st.just("答案。")),
    "status": st.sampled_from(["published", "draft", "expired", "live"]),
    "sections": st.one_of(
        st.lists(st.lists(st.text(max_size=6), min_size=1, max_size=3), max_size=3), st.text(max_size=5)
    ),
    "position": st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=3), st.booleans()),
    "source": st.one_of(
        st.dictionaries(
            st.sampled_from(["title", "number", "date", "url", "x"]), st.text(max_size=8), max_size=3
        ),
        st.text(max_size=8),
    ),
    "category": st.one_of(st.text(max_size=8), st.text(min_size=101, max_size=120)),
}
records = st.fixed_dictionaries(
    {"id": plausible["id"], "question": plausible["question"], "answer": plausible["answer"]},
    optional={k: plausible.get(k, json_values) for k in ENTRY_KEYS if k not in ("id", "question", "answer")},
)
jsonl_texts = st.lists(
    st.one_of(
        records.map(lambda r: json.dumps(r, ensure_ascii=False)),
        records.map(json.dumps),  # \\u escapes, lone surrogates included
        st.text(max_size=30),
    ),
    max_size=4,
).map("\n".join)

STRUCTURE = ["+++", "## ", "### ", "一、", "二、", "（一）", "(二)", "1.", "2．", "3、", "\n", "\n\n", "id = ", "kind = ",
             '"guide"', '"policy"', "title = ", "鼓商务〔2020〕1号", "2020年1月2日", "商务局", "方案", "根据",
             "为", "（责任科室：办公室）", "事项名称", "申请材料", "问答", ",", '"', "|", "。", "x"]  # fmt: skip
structured_text = st.lists(st.one_of(st.sampled_from(STRUCTURE), st.text(max_size=8)), max_size=40).map(
    "".join
)


def _only_import_failures(parse: Callable[[str, str], Any], text: str) -> None:
    try:
        entries = parse(text, "gen.file")
    except ImportFailure as exc:
        assert str(exc).startswith("gen.file")
    else:
        assert isinstance(entries, list)


@FAST
@given(st.one_of(structured_text, st.text(), jsonl_texts))
def test_parsers_raise_only_import_failures(text: str) -> None:
    for parse in (parse_jsonl, parse_csv, parse_markdown, parse_policy_text):
        _only_import_failures(parse, text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=300),
    suffix=st.sampled_from([".jsonl", ".csv", ".md", ".txt", ".docx", ".pdf", ""]),
)
def test_any_bytes_parse_or_fail_cleanly(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"any{suffix}"
    path.write_bytes(data)
    try:
        entries = parse_file(path)
    except ImportFailure as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(e.id for e in entries)


def test_import_writes_all_or_nothing(
    runner: asyncio.Runner, db_url: str, lexicon: Lexicon, tmp_path: Path
) -> None:
    """Whatever the file holds, an import either succeeds or raises ImportFailure having written nothing."""
    services = runner.run(Services.start(Settings().replace("database", url=db_url), lexicon=lexicon))
    counter = iter(range(10**9))
    outcomes: set[str] = set()
    try:
        runner.run(services.kb.import_paths([seed_path()]))

        @settings(max_examples=60, deadline=None)
        @given(st.one_of(jsonl_texts, structured_text), st.sampled_from([".jsonl", ".md", ".txt", ".csv"]))
        def check(text: str, suffix: str) -> None:
            path = tmp_path / f"gen{next(counter)}{suffix}"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            before = runner.run(services.kb.count())
            indexed = len(services.kb.index)
            try:
                counts = runner.run(services.kb.import_paths([seed_path(), path]))
            except ImportFailure:
                assert runner.run(services.kb.count()) == before
                assert len(services.kb.index) == indexed
                outcomes.add("failed")
            else:
                assert counts.unchanged >= 1
                assert runner.run(services.kb.count()) == before + counts.added
                outcomes.add("imported")

        check()
        assert outcomes == {"failed", "imported"}
    finally:
        runner.run(services.close())


def test_generated_csv_rows(tmp_path: Path) -> None:
    """CSV cells with quotes, separators and newlines survive the round trip into entries."""

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=8),
                st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s),
                st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s),
            ),
            max_size=5,
            unique_by=lambda t: t[0],
        )
    )
    def check(rows: list[tuple[str, str, str]]) -> None:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "question", "answer"])
        w.writerows(rows)
        try:
            entries = parse_csv(buf.getvalue(), "gen.csv")
        except ImportFailure:
            return  # e.g. a cell of only whitespace after stripping, or a bare carriage return
        assert [e.id for e in entries] == [r[0] for r in rows]
        assert [e.question for e in entries] == [r[1].strip() for r in rows]

    check()

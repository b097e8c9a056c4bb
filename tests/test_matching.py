"""Matching quality and behaviour: the dev sets, normalization, synonyms, typos, guide aspects,
citations, expiry, in-place index updates and bad input (knowledge/retrieve.py, bot/decide.py, bot/qa.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from bot.confidence import (
    FEATURES,
    GROUPS,
    LISTED_SIGNS,
    SIGNS,
    TIE,
    ConfidenceModel,
    Logistic,
    features,
    same_section,
    shipped_model,
    tied,
)
from bot.config import MatchingSettings
from bot.decide import (
    CLOSER_SLACK,
    decide,
    distinct,
    head_word,
    inserted,
    main_title,
    whole_policy,
    with_closest_asked,
)
from bot.qa import EMPTY_NOTICE, ESCALATE_NOTICE, NO_TEXT_NOTICE, NOT_CHINESE_NOTICE, closest, not_chinese
from bot.services import Services
from knowledge.answers import answer_text, citation, is_expired, section_answer, source_of, telling_section
from knowledge.importers.base import ParsedEntry
from knowledge.models import Entry
from knowledge.retrieve import (
    PAID,
    SHARED_HEADING,
    STORY_WEIGHT,
    Candidate,
    Matcher,
    Query,
    asked_aspect,
    asked_aspects,
    asked_form,
    asked_years,
    asking_clauses,
    asking_part,
    other_form,
    question_forms,
)
from knowledge.segment import LIGHT_WEIGHT, Lexicon
from knowledge.text import is_han, normalize
from policybot.cli import _explained_text
from tests.conftest import SHARED, seed_path

EVAL = SHARED / "eval"
FAQ_EVAL = Path(__file__).parent / "data" / "faq_eval.jsonl"
DOC = "doc-7a78d0a404"
STATUSES = {"answered", "suggested", "escalated"}


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _squash(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


async def _seed_misses(s: Services, rows: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """The scoring of ../shared/eval/README.md: a question is answered rightly when it is answered
    and the answer holds one of its ``expect_any`` (whitespace removed). Returns the questions not
    answered rightly, and those of them answered with a wrong entry, as (id, question, status, title)."""
    missed, wrong = [], []
    for r in rows:
        d = await s.qa.ask(r["question"])
        if d.status == "answered" and any(_squash(e) in _squash(d.answer) for e in r["expect_any"]):
            continue
        missed.append((r["id"], r["question"], d.status, d.title))
        if d.status == "answered":
            wrong.append(missed[-1])
    return missed, wrong


async def _best_answer(s: Services, question: str) -> tuple[str, str | None, str]:
    """The status, the entry the bot picks (answered or offered first), and that entry's answer
    for this question: the ranking and the aspect, whatever the confidence decides."""
    d = await s.qa.ask(question)
    if d.status == "answered":
        return d.status, d.entry_id, d.answer or ""
    entry = await s.kb.get(d.entry_id) if d.entry_id else None
    return d.status, d.entry_id, answer_text(entry, d.aspect) if entry else ""


# -- the development sets ----------------------------------------------------------------------------


@pytest.mark.skipif(not EVAL.exists(), reason="the shared eval sets (../shared/eval) are not present")
async def test_dev_seed_questions(seeded: Services) -> None:
    """README scoring: answered and the answer contains one of expect_any (whitespace removed)."""
    rows = _load(EVAL / "dev_seed_questions.jsonl")
    misses, _ = await _seed_misses(seeded, rows)
    assert len(rows) >= 30
    # Measured 26 of 30 with the calibrated decision (the rest suggested, none wrong; BENCHMARKS.md).
    assert 1 - len(misses) / len(rows) >= 0.83, misses


@pytest.mark.skipif(not EVAL.exists(), reason="the shared eval sets (../shared/eval) are not present")
async def test_dev_out_of_scope(seeded: Services) -> None:
    rows = _load(EVAL / "dev_out_of_scope.jsonl")
    answered = []
    for r in rows:
        d = await seeded.qa.ask(r["question"])
        assert d.status in STATUSES
        if d.status == "answered":
            answered.append((r["id"], r["question"], d.title))
    assert len(answered) / len(rows) <= 0.05, answered


SEED_EVAL = Path(__file__).parent / "data" / "seed_eval.jsonl"
SEED_OOS = Path(__file__).parent / "data" / "seed_out_of_scope.jsonl"


def test_own_seed_sets_quote_the_seed_document() -> None:
    """Every expected passage of our own seed questions is in the seed document (tests/data/README.md)."""
    text = _squash(seed_path().read_text(encoding="utf-8"))
    missing = [(r["id"], e) for r in _load(SEED_EVAL) for e in r["expect_any"] if _squash(e) not in text]
    assert not missing


async def test_own_seed_questions(seeded: Services) -> None:
    """Our own questions on the seed document (tests/data/README.md): floors under the figures
    measured (90.3% right, 0.6% wrong over 340), so that a change that loses answers shows."""
    rows = _load(SEED_EVAL)
    missed, wrong = await _seed_misses(seeded, rows)
    right = len(rows) - len(missed)
    # Measured 295 of 340 (86.8%) with the calibrated decision, 1 wrong (BENCHMARKS.md).
    assert right / len(rows) >= 0.83 and len(wrong) / len(rows) <= 0.01, (right, wrong)


async def test_own_seed_out_of_scope(seeded: Services) -> None:
    """At most 5% answered (measured: 2 of 175), as for the dev set."""
    rows = _load(SEED_OOS)
    answered = [r["question"] for r in rows if (await seeded.qa.ask(r["question"])).status == "answered"]
    assert len(answered) / len(rows) <= 0.05, answered


async def test_default_kb_faq_eval(default_kb: Services) -> None:
    """Floors a little under the figures of `bench/quality.py --faq` (0.49 / 0.86 / 0.03 when written)."""
    rows = _load(FAQ_EVAL)
    inscope = [r for r in rows if r["expect_id"]]
    outscope = [r for r in rows if not r["expect_id"]]
    correct = listed = false = 0
    for r in inscope:
        d = await default_kb.qa.ask(r["question"])
        ok = d.status == "answered" and d.entry_id == r["expect_id"]
        correct += ok
        listed += ok or d.entry_id == r["expect_id"] or r["expect_id"] in [s.entry_id for s in d.suggestions]
    for r in outscope:
        d = await default_kb.qa.ask(r["question"])
        # another body's matter answered by its referral (or small talk by its reply) is right
        false += d.status == "answered" and d.kind not in ("referral", "smalltalk")
    assert len(inscope) >= 90 and len(outscope) >= 25
    # measured 0.726 right, 0.968 listed, 0.033 out of scope answered (twenty-second session, BENCHMARKS.md)
    assert correct / len(inscope) >= 0.66
    assert listed / len(inscope) >= 0.92
    assert false / len(outscope) <= 0.10


RESIDENT = Path(__file__).parent / "data" / "resident_eval.jsonl"
RESIDENT_OOS = Path(__file__).parent / "data" / "resident_out_of_scope.jsonl"
NOT_ANSWERS = {"referral", "smalltalk"}  # entries that point elsewhere or chat: no answer to the matter


# Floors a little under the figures of BENCHMARKS.md, per group of batches: (right at least, wrong at
# most, out of scope answered at most). Batches a and b were written by a helper who read only the
# knowledge base files; batch c by helpers who read only ../shared/reference, labelled by a third:
# harder, and strictly labelled (a two-part question answered on one part counts wrong); batch d
# (twenty-fifth session) and batches e and f (twenty-sixth) the same way; batch f's labels ask a guide
# section of questions that name none (成品由流通管理办法 什么时候施行: 设定依据), counted wrong when
# the guide answers whole: 5 of its 7 wrong answers.
# (batch d's out of scope: 4 of 52 answered when it was added, small talk answered with the FAQ on
# reaching a human among them; batch e's: 8 of 63, each a question the knowledge base answers with a
# hedge the labeller judged partial (开干洗店要去商务局备案吗: the rule, its enforcement unconfirmed);
# the issue's 3% is not met there; batch j's: 7 of 47 when it was added, six of them hedged answers; batch k's 9 of 48;
# batch u's 6 of 43, five hedged; batch v's 6 of 34, all six hedged; batch w's 10 of 28, nine hedged; batch x's 8 of 37, six hedged, 7 at the forty-fourth session's end; batch y's 3 of 27)
RESIDENT_FLOORS = {
    ("a", "b"): (0.70, 0.02, 0.03),
    ("c",): (0.55, 0.05, 0.03),
    ("d",): (0.55, 0.05, 0.10),
    # (e: 10 of 63 since 8cbbcff, 加由站零售资格在哪办 read 加油站 and answered with its partial guide)
    ("e",): (0.50, 0.05, 0.17),
    ("f",): (0.50, 0.13, 0.20),
    ("g",): (0.70, 0.04, 0.25),
    ("h",): (0.70, 0.02, 0.25),
    ("i",): (0.55, 0.06, 0.08),
    ("j",): (0.55, 0.06, 0.18),
    ("k",): (0.55, 0.06, 0.25),
    ("l",): (0.55, 0.04, 0.30),
    ("m",): (0.55, 0.09, 0.20),
    ("n",): (0.58, 0.09, 0.12),
    ("o",): (0.62, 0.07, 0.20),
    ("p",): (0.50, 0.08, 0.20),
    ("q",): (0.62, 0.04, 0.38),
    ("r",): (0.66, 0.05, 0.16),
    ("s",): (0.62, 0.13, 0.33),
    ("t",): (0.55, 0.07, 0.17),
    ("u",): (0.60, 0.05, 0.19),
    ("v",): (0.65, 0.07, 0.21),
    ("w",): (0.70, 0.05, 0.40),
    ("x",): (0.46, 0.04, 0.22),
    ("y",): (0.60, 0.04, 0.15),
}


async def test_resident_sets(default_kb: Services) -> None:
    """The resident sets on the default knowledge base (tests/data/README.md), every batch: a
    question is answered rightly when its entry is one of ``expect_entry_ids`` (a guide asked for a
    section shows it); an out-of-scope question is answered when the status is ``answered`` with an
    entry that is not a referral or small talk. Floors under the figures of BENCHMARKS.md."""
    all_rows, all_oos = _load(RESIDENT), _load(RESIDENT_OOS)
    assert {r["batch"] for r in all_rows} == {b for group in RESIDENT_FLOORS for b in group}
    for batches, (least_right, most_wrong, most_answered) in RESIDENT_FLOORS.items():
        rows = [r for r in all_rows if r["batch"] in batches]
        oos = [r for r in all_oos if r["batch"] in batches]
        right = wrong = answered = 0
        for r in rows:
            d = await default_kb.qa.ask(r["question"])
            if d.status != "answered":
                continue
            ok = d.entry_id in r["expect_entry_ids"] and (
                d.kind != "guide" or not r["aspect"] or d.aspect == r["aspect"]
            )
            right += ok
            wrong += not ok
        for r in oos:
            d = await default_kb.qa.ask(r["question"])
            answered += d.status == "answered" and d.kind not in NOT_ANSWERS
        # (d: 98, 52; e: 87, 63; f: 66, 54; g: 70, 50; h: 68, 52; i: 73, 47; n: 69, 35; o: 62, 43;
        # p: 69, 39; q: 65, 40; r: 58, 43, nineteen of its questions those of earlier batches left out;
        # s: 62, 54, eleven left out; t: 61, 53, sixteen left out; u: 50, 43, twenty-two left out;
        # v: 44, 34, fifteen left out; w: 45, 28, eighteen left out; x: 50, 37, nine left out; y: 56, 27,
        # twelve left out)
        assert len(rows) >= 40 and len(oos) >= 25, batches
        # Measured: a and b 147 of 210 right (70%), none wrong, 1 of 65 out of scope answered; c 71 of
        # 133 right (53.4%), 6 wrong (4.5%), none of 47 out of scope answered (twenty-fourth session);
        # the twenty-fifth session's end: a and b 156 of 210 (74.3%), none wrong; c 77 (57.9%), 5 wrong;
        # d 57 of 98 (58.2%), 3 wrong, 4 of 52 out of scope answered; batch e when written (44fdc8f):
        # 47 of 87 (54.0%), 4 wrong (4.6%), 8 of 63 out of scope answered (12.7%); batch f when written
        # (44fdc8f and 533ccbe alike): 38 of 66 (57.6%), 7 wrong (10.6%), 10 of 54 out of scope answered;
        # batch g when written (10d4eb3): 51 of 70 (72.9%), 4 wrong (5.7%), 10 of 50 out of scope answered;
        # batch h when written (7e5d9a3): 47 of 68 (69.1%), 1 wrong (1.5%), 12 of 52 out of scope answered;
        # batch i when written (b3b6c90): 42 of 73 (57.5%), 4 wrong (5.5%), 2 of 47 out of scope answered;
        # batch l when written (73da346): 46 of 69 (66.7%), none wrong, 12 of 51 out of scope answered;
        # batch m when written (69d1a5d): 45 of 66 (68.2%), 4 wrong (6.1%: the right guide, another
        # section than labelled), 4 of 43 out of scope answered (9.3%); batch n when written (82dab4f):
        # 47 of 69 (68.1%), 4 wrong (5.8%), 2 of 35 out of scope answered (5.7%); batch o when written
        # (0ab2a5d): 45 of 62 (72.6%), 2 wrong (3.2%), 6 of 43 out of scope answered (14.0%); batch p
        # when written (5a8f324): 37 of 69 (53.6%), 4 wrong (5.8%), 6 of 39 out of scope answered (15.4%);
        # batch q when written (bb678a7): 45 of 65 (69.2%), none wrong, 14 of 40 out of scope answered
        # (35.0%; 12 of the 14 with an entry its label names as partial); batch r, written after that
        # session's changes, with bb678a7: 43 of 58 (74.1%), 1 wrong (1.7%), 5 of 43 out of scope
        # answered (11.6%); with b3c7761, 43, 1 wrong, 4 of 43 (9.3%); batch s when written (9e6ee5c):
        # 41 of 62 (66.1%), 7 wrong (11.3%: three another section or entry of the right family), 16 of
        # 54 out of scope answered (29.6%; 13 of the 16 with an entry its label names as partial); batch
        # u when written (93f1149): 33 of 50 (66.0%), 1 wrong (2.0%), 6 of 43 out of scope answered
        # (14.0%; five with an entry its label names as partial); batch v when written (141aaa2): 32 of
        # 44 (72.7%), 2 wrong (4.5%), 6 of 34 out of scope answered (17.6%, each with an entry its label
        # names as partial); batch w when written (094470d): 32 of 45 (71.1%), 3 wrong (6.7%: two the
        # right guide without the section asked), 10 of 28 out of scope answered (35.7%, nine with an
        # entry its label names as partial); batch x when written (e4da251): 22 of 50 (44.0%), 2 wrong
        # (4.0%), 8 of 37 out of scope answered (21.6%, six with an entry its label names as partial); at
        # the session's end (after changes it tuned), 25, none wrong, 7; batch y when written (e4da251 and
        # fe9af9e alike): 35 of 56 (62.5%), none wrong, 3 of 27 out of scope answered; 36 and 2 at the end.
        assert right / len(rows) >= least_right and wrong / len(rows) <= most_wrong, (batches, right, wrong)
        assert answered / len(oos) <= most_answered, batches


async def test_every_resident_label_names_a_shipped_entry(default_kb: Services) -> None:
    """A label naming no entry of the default knowledge base could never be answered rightly."""
    named = {i for r in _load(RESIDENT) for i in r["expect_entry_ids"]}
    named |= {i for r in _load(RESIDENT_OOS) for i in r.get("refer_ids") or []}
    missing = [i for i in sorted(named) if await default_kb.kb.get(i) is None]
    assert not missing, missing


async def test_a_question_without_an_answer_offers_its_closest_entries(default_kb: Services) -> None:
    """An escalated question still lists its closest entries (one per title, at most three), as the
    chat offers them beside 转人工: ``ask --json`` shows them as its suggestions, with no answer."""
    offered = 0
    for r in _load(RESIDENT):
        d = await default_kb.qa.ask(r["question"])
        if d.status != "escalated":
            continue
        assert d.entry_id is None and d.answer is None and d.kind is None
        assert d.suggestions == closest(d.candidates)
        assert len({s.title for s in d.suggestions}) == len(d.suggestions) <= 3
        assert d.to_json()["suggestions"] == [s.to_json() for s in d.suggestions]
        offered += bool(d.suggestions)
    assert offered >= 5  # (18 of the 210 are escalated, each with entries close to it)


async def test_a_bare_matter_is_offered_the_guide_beside_its_faqs(default_kb: Services) -> None:
    # 预付卡备案 names a matter, not a question: its FAQs lead (their own questions say it), and the
    # guide whose title names it takes the last place offered; a question's offers are left alone.
    d = await default_kb.qa.ask("预付卡备案")
    ids = [s.entry_id for s in d.suggestions]
    assert d.status == "suggested" and len(ids) == 3
    assert ids[-1] == "guide-prepaid-card-filing" and all(i.startswith("faq-circ-") for i in ids[:-1])
    asked = await default_kb.qa.ask("储值卡要备案吗")  # (要: a word no title says)
    assert asked.status == "suggested" and not any(s.entry_id.startswith("guide-") for s in asked.suggestions)
    q, cands = default_kb.kb.matcher.search("预付卡备案", limit=10)
    one = decide(q, cands, dataclasses.replace(default_kb.qa.settings, max_suggestions=1))
    assert [c.entry_id for c in one.alternatives] == [ids[0]]  # one place: the best keeps it


async def test_a_question_its_policys_qas_tie_on_is_answered_by_the_policy(default_kb: Services) -> None:
    """福建两稳一促是啥政策 asks about the policy: its Q&As (两稳一促指什么, 原文在哪里能看到, 加强版是
    什么时候出的) all say its words by the title they share and tie; the policy itself answers
    (``whole_policy``). A Q&A asked in the question's very words keeps the question, and a question
    one Q&A alone answers is left to it."""
    policy = "policy-fujian-two-stabilities-one-promotion-2020"
    for question in ("福建两稳一促是啥政策", "福建两稳一促"):
        d = await default_kb.qa.ask(question)
        assert (d.status, d.entry_id) == ("answered", policy), question
    _, cands = default_kb.kb.matcher.search("福建两稳一促是啥政策", limit=10)
    top = distinct(cands, 3)
    assert top[0].info.parent_id == top[1].info.parent_id == policy  # (tied Q&As: the case)
    assert whole_policy(top[0], top, cands) is not None
    d = await default_kb.qa.ask("两稳一促是什么意思")  # “两稳一促”指什么？ in the same words
    assert (
        d.suggestions[0].entry_id == f"{policy}#qa1"
        if d.status == "suggested"
        else d.entry_id == f"{policy}#qa1"
    )
    d = await default_kb.qa.ask("福建两稳一促政策原文在哪里能看到")
    assert (d.status, d.entry_id) == ("answered", f"{policy}#qa5")


async def test_of_two_tied_answers_the_one_whose_own_question_was_asked_answers(default_kb: Services) -> None:
    """商业特许经营备案在哪办: the franchise guide, titled with those words, scores a hair above the FAQ
    asked 特许经营备案在哪办, and the two tied: the question was offered both. The FAQ, set apart by
    its own question, answers (``question_apart``); a tie neither's question sets apart is still
    offered (拍卖要带什么材料: the auction permit's guide and the annual inspection's)."""
    question = "商业特许经营备案在哪办"
    _, cands = default_kb.kb.matcher.search(question, limit=10)
    top = distinct(cands, 3)
    assert top[0].entry_id == "guide-franchise-filing" and top[1].entry_id == "faq-circ-013"
    assert top[0].score - top[1].score < TIE  # (the case: tied, the guide first)
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id) == ("answered", "faq-circ-013")
    tied_guides = await default_kb.qa.ask("拍卖要带什么材料")
    assert tied_guides.status == "suggested"
    offered = {tied_guides.entry_id, *(s.entry_id for s in tied_guides.suggestions)}
    assert {"guide-auction-permit", "guide-auction-annual-inspection"} <= offered


async def test_a_character_echoing_a_word_of_the_question_weighs_nothing(seeded: Services) -> None:
    """六稳是哪六个稳: the last 稳 repeats a character of 六稳; searched, it made the plan's preamble,
    which says 稳 alone, outrank the clause on 六稳 by BM25, and the clause was only offered. It now
    weighs nothing and is not searched: the clause answers. A Latin letter is no echo (Part D of
    Medicare is asked by its D)."""
    q = seeded.kb.matcher.analyse("六稳是哪六个稳？")
    assert dict(zip(q.words, q.weights, strict=True)) == {"六稳": pytest.approx(0.9), "稳": 0.0}
    assert "稳" not in q.tokens
    d = await seeded.qa.ask("六稳是哪六个稳？")
    assert d.status == "answered" and d.entry_id and d.entry_id.endswith("/2.2.1")
    latin = seeded.kb.matcher.analyse("如何加入Medicare Part D？")
    assert "d" in latin.words and dict(zip(latin.words, latin.weights, strict=True))["d"] > 0


async def test_a_runner_up_close_behind_whose_own_question_was_asked_answers(default_kb: Services) -> None:
    """我们是外资公司，实际控制人换了，要不要去商务局报告: the report guide outscores, by words of the story,
    the FAQ asked 外资企业实际控制人变了，要向商务部门报告吗, not by a tie; the FAQ, asked nearly in the
    question's words, answers (``closer_asked``). A runner-up whose own question is not that close
    is not (没备案就招商加盟会怎么罚: the FAQ on 招商加盟 with one direct store asks another thing)."""
    question = "我们是外资公司，实际控制人换了，要不要去商务局报告？"
    _, cands = default_kb.kb.matcher.search(question, limit=10)
    top = distinct(cands, 3)
    assert [c.entry_id for c in top[:2]] == ["guide-fdi-information-report", "faq-trade-007"]
    assert TIE <= top[0].score - top[1].score < CLOSER_SLACK  # (the case: no tie, the guide first)
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id) == ("answered", "faq-trade-007")
    other = await default_kb.qa.ask("没备案就招商加盟会怎么罚")
    assert (other.status, other.entry_id) != ("answered", "faq-circ-014")


@pytest.mark.parametrize(
    "question", ["备案要带什么材料", "备案需要准备什么", "办备案要什么材料", "备案怎么办理"]
)
async def test_a_question_naming_only_a_kind_of_matter_is_not_answered_by_one_of_them(
    default_kb: Services, question: str
) -> None:
    """备案 is in the title of every filing guide: a question naming nothing else asks which filing
    it is, and the guide a hair of wording puts first (liquor, franchise, large issuers) is no answer
    (``crowded``); the filing guides are offered."""
    d = await default_kb.qa.ask(question)
    assert d.status == "suggested", await default_kb.qa.explain(question, 2)
    offered = [d.entry_id, *(s.entry_id for s in d.suggestions)]
    assert sum(1 for e in offered if e and e.endswith("-filing")) >= 1, offered
    _, cands = default_kb.kb.matcher.search(question, limit=5)
    assert cands[0].peers >= 2
    held = await default_kb.qa.explain_decision(question)
    assert held["held"] == "crowded"  # (confident, every one of them: held by the rule alone)
    _, named = default_kb.kb.matcher.search("商业特许经营备案要什么材料", limit=5)
    assert named[0].entry_id == "guide-franchise-filing" and named[0].peers == 0


def test_a_title_with_words_left_out_is_the_general_one() -> None:
    """``main_title`` drops a title's bracketed asides; ``inserted`` gives what one title adds to
    another that it holds in order, and nothing when it does not hold it."""
    general = main_title("单用途商业预付卡发卡企业备案（其他发卡企业，区级受理）")
    assert general == "单用途商业预付卡发卡企业备案"
    assert inserted(general, main_title("单用途商业预付卡规模、集团、品牌发卡企业备案")) == "规模集团品牌"
    assert inserted("拍卖企业年度核查", "从事拍卖业务许可") == ""
    assert inserted(general, general) == ""


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("预付卡备案要什么材料", "guide-prepaid-card-filing"),
        ("單用途預付卡備案要準備哪些材料", "guide-prepaid-card-filing"),
        ("办单用途预付卡备案要带什么材料？", "guide-prepaid-card-filing"),
        ("集团发卡企业备案要什么材料", "guide-prepaid-card-large-issuer-filing"),
        ("品牌发卡企业备案要带什么材料", "guide-prepaid-card-large-issuer-filing"),
    ],
)
async def test_of_two_tied_guides_titled_alike_the_general_one_answers(
    default_kb: Services, question: str, entry_id: str
) -> None:
    """The two prepaid-card filing guides tie on a question naming neither (预付卡备案要什么材料); one's
    title is the other's with 规模、集团、品牌 left out, so it is the general one and answers
    (``general_apart``: the question was offered both). A question saying 集团 or 品牌 asks the other."""
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id, d.aspect) == ("answered", entry_id, "申请材料"), (
        await default_kb.qa.explain(question, 2)
    )


async def test_of_two_tied_answers_the_one_saying_the_question_word_for_word_answers(
    seeded: Services,
) -> None:
    """培训的针对性, typed from the clause on training (增强培训的针对性、系统性), tied with the clause
    titled 提高经济政策发布解读针对性精准性, which says 针对性 and 培训 apart: only offered both, now the
    clause saying it word for word answers (``literal_apart``)."""
    d = await seeded.qa.ask("培训的针对性")
    assert d.status == "answered" and "增强培训的针对性" in (d.answer or ""), await seeded.qa.explain(
        "培训的针对性", 2
    )


async def test_of_tied_answers_those_asking_another_matter_leave_the_best_to_answer(
    default_kb: Services,
) -> None:
    """信息公开申请咋申请 ties the application guide with the FAQ asked 信息公开申请被拒绝了（不予公开），我能
    怎么办, whose heaviest words the question does not say: it asks another matter, so the guide answers
    with its 办理流程 (``unsaid_apart``: both had been offered at 0.996), and so when the FAQ scores a hair
    above the guide (信息公开怎么申请: the FAQ had been offered first, at 0.54). Tied with answers whose own
    questions the question says in full, the best is still only offered (鼓楼区商务局在哪里？电话多少？: the
    two FAQs on the address and the phone)."""
    for question in ("信息公开申请咋申请", "信息公开怎么申请"):  # (the FAQ a hair above the guide too)
        d = await default_kb.qa.ask(question)
        assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-ogi-application", "办理流程"), question
    d = await default_kb.qa.ask("鼓楼区商务局在哪里？电话多少？")
    assert d.status == "suggested", (d.entry_id, d.confidence)


@pytest.mark.parametrize(
    ("question", "paid"),
    [
        ("报废车能卖多少钱", True),
        ("报废车回收给多少钱", True),
        ("报废车补贴多少钱", True),
        ("预付卡退卡能退多少钱", True),
        ("备案要给多少钱", False),  # (要给: one pays)
        ("二手车备案要交多少钱", False),
        ("预付卡退卡要扣多少钱", False),
    ],
)
async def test_how_much_one_is_paid_is_no_fee(default_kb: Services, question: str, paid: bool) -> None:
    """多少钱 after a verb of being paid (卖, 回收给, 补贴, 退) asks what one gets: no guide's 收费标准,
    and an entry answers only with a sum said to be paid (a price, a subsidy, a refund), not "no fee"
    nor a fine. 报废车补贴多少钱 had been answered (0.79) with the recycling guide's "no fee", and
    报废车回收给多少钱 (0.996) too; then, read as no fee, with the FAQ on fines for recycling without a
    licence, set apart by its own question from the guide it tied with, though it states no sum paid
    either (``question_apart`` sets no runner-up apart that does not state what is asked)."""
    q = default_kb.kb.matcher.analyse(question)
    assert (q.count_of == PAID) is paid and (q.aspect == "收费标准") is not paid, (q.count_of, q.aspect)
    if paid:
        d = await default_kb.qa.ask(question)
        assert d.status != "answered" and d.aspect != "收费标准", (d.entry_id, d.confidence)


async def test_an_own_question_asked_but_for_how_the_place_is_spelled_is_asked(default_kb: Services) -> None:
    """鼓楼区商务局在哪 is the FAQ's own question 鼓楼区商务局在哪里？ but for 里: it had been only offered
    (0.41), tied by score with every FAQ naming the bureau. 在哪儿, and a closing 呢, likewise."""
    for question in ("鼓楼区商务局在哪", "鼓楼区商务局在哪儿", "鼓楼区商务局在哪里呢"):
        d = await default_kb.qa.ask(question)
        assert (d.status, d.entry_id, d.confidence) == ("answered", "faq-bureau-001", 1.0), question


def test_when_is_not_what() -> None:
    """什么时候 asks when: the 什么 in it does not ask what too (an entry asking only when is in
    another form than 是什么), and a question's clauses each ask in their own form."""
    assert question_forms(("福建两稳一促加强版是什么时候出的",)) == {"when"}
    assert question_forms(("六保是什么什么时候提出的",)) == {"what", "when"}
    assert asking_clauses(normalize("两稳一促是哪两稳，啥时候出的")) == 2
    assert asking_clauses(normalize("两稳一促是啥时候出的")) == 1
    assert asking_clauses(normalize("我开了家店，想发会员卡，要备案吗")) == 1


async def test_a_question_in_two_parts_is_not_handed_to_a_qa_asking_one(default_kb: Services) -> None:
    """两稳一促是哪两稳，啥时候出的 asks what and when: the policy, scoring best, answers both; its Q&A
    asking only when (加强版是什么时候出的) had replaced it (``most_specific``). Asked only when, the Q&A
    still answers. Two clauses asking in one form are two questions too."""
    policy = "policy-fujian-two-stabilities-one-promotion-2020"
    d = await default_kb.qa.ask("两稳一促是哪两稳，啥时候出的")
    assert (d.status, d.entry_id) == ("answered", policy)
    q, cands = default_kb.kb.matcher.search("两稳一促加强版是啥时候出的", limit=10)
    assert decide(q, cands, default_kb.qa.settings).best.entry_id == f"{policy}#qa2"
    # Two clauses asking in one form (what, what): the Q&A on the bureau's part had answered both.
    six = "policy-six-stabilities-six-guarantees-2020"
    d = await default_kb.qa.ask("六稳六保到底指哪几样？跟商务局有啥关系")
    assert d.entry_id == six


@pytest.mark.parametrize(
    ("question", "policy"),
    [
        ("两稳一促是啥意思 福建出了哪些措施", "policy-fujian-two-stabilities-one-promotion-2020"),
        ("2020年小规模纳税人增值税减按1%是怎么回事，到什么时候", "policy-small-scale-vat-relief-2020"),
    ],
)
async def test_a_question_in_two_parts_its_qa_scores_best_on_is_the_policys(
    default_kb: Services, question: str, policy: str
) -> None:
    """The best entry is a policy's own Q&A asking one of the question's two clauses (两稳一促指什么),
    the policy scoring nearly as well: the policy is the answer, or is offered, not the Q&A answered
    (``parent_for_parts``)."""
    q, cands = default_kb.kb.matcher.search(question, limit=10)
    assert q.asks_in >= 2 and cands[0].info.parent_id == policy  # (the case: its Q&A first)
    d = await default_kb.qa.ask(question)
    assert d.entry_id == policy, await default_kb.qa.explain(question, 3)


async def test_what_x_refers_to_is_what_x_is(default_kb: Services) -> None:
    """六保是指什么 asks what 六保 is: 指 (refers to) says no more than 是 does, so it is a stop word, and
    “六保”是什么？ leads; it weighed as a light word, which “六稳”指的是哪六个方面？ holds and 六保是什么 lacks."""
    assert default_kb.kb.matcher.analyse("六保是指什么").words == ["六保"]
    d = await default_kb.qa.ask("六保是指什么")
    offered = [d.entry_id, *(s.entry_id for s in d.suggestions)]
    assert offered[0] == "policy-six-stabilities-six-guarantees-2020#qa2", offered


async def test_what_a_term_is_called_asks_what_it_is(default_kb: Services) -> None:
    """什么叫放管服改革 / 放管服是啥意思 ask what 放管服 is: 叫 and 意思 say no more than 是, so they
    are stop words (as light words, the 稳外资 interpretation, which says 叫 somewhere, covered more of
    the question than the entry that says what 放管服 is)."""
    assert default_kb.kb.matcher.analyse("什么叫放管服改革").words == ["放管服", "改革"]
    assert default_kb.kb.matcher.analyse("放管服是啥意思").words == ["放管服"]
    for question in ("什么叫放管服改革", "放管服是什么意思"):
        d = await default_kb.qa.ask(question)
        assert d.status == "answered", (question, d.status, d.entry_id)
        assert "简政放权、放管结合、优化服务" in (d.answer or ""), (question, d.entry_id)


async def test_zayang_asks_how_as_zenmeyang_does(default_kb: Services) -> None:
    """咋样 is 怎么样 said colloquially: a question word, not a rare term (it weighed 0.76, and an
    entry saying 复工情况咋样 took 今天天气咋样 from the weather referral)."""
    assert default_kb.kb.matcher.analyse("今天天气咋样").words == ["今天", "天气"]
    d = await default_kb.qa.ask("今天天气咋样")
    assert (d.status, d.entry_id) == ("answered", "ref-weather")


async def test_a_foreign_firm_changing_its_legal_representative_finds_the_change_report(
    default_kb: Services,
) -> None:
    """法人 is how people say 法定代表人: the guide to the change report names it among the registered
    matters whose change it follows; the prepaid-card guide, which says 企业法人 and 外商投资企业 in
    passing, led before."""
    d = await default_kb.qa.ask("我们公司是外资，法人变了要报告吗")
    offered = [d.entry_id, *(s.entry_id for s in d.suggestions)]
    assert offered[0] == "guide-fdi-information-report", offered


def test_no_shipped_question_names_a_guide_section_none_of_its_entrys_questions_ask() -> None:
    """An alternate of a shipped FAQ or policy Q&A that names a guide section (材料, 在哪个系统, 多久)
    none of its entry's questions asks for takes that section's questions from the guide: the
    section rule lets an entry whose key field says the words asked with answer them (特许人备案材料
    交齐后多久能通过, on the FAQ about how long, took 加盟备案 材料清单)."""
    from knowledge.importers import parse_paths
    from knowledge.retrieve import ASPECTS
    from knowledge.store import default_paths

    named_apart = []
    for e in parse_paths(default_paths()):
        if e.kind in ("faq", "policy"):
            texts = [normalize(t) for t in [e.question or "", *e.alternates]]
            asked = {asked_aspect(t) for t in texts}
            for t in texts[1:]:
                if extra := {name for name, rx in ASPECTS if rx.search(t)} - asked:
                    named_apart.append((e.id, t, extra))
    assert named_apart == []


async def test_which_with_a_number_asks_what(default_kb: Services) -> None:
    """“六稳”指的是哪六个方面 (normalized 哪6个) asks what 六稳 is: asked 六稳是什么, that entry is not
    marked down as one asking in another form, and is among those offered."""
    d = await default_kb.qa.ask("六稳是什么")
    offered = [d.entry_id, *(s.entry_id for s in d.suggestions)]
    assert "policy-six-stabilities-six-guarantees-2020#qa1" in offered[:3], offered


async def test_a_phone_number_is_not_the_hotline_inside_it(default_kb: Services) -> None:
    # A resident leaving a number (on an open ticket, say) is not asking about the 12345 hotline.
    shown = await default_kb.qa.explain_decision("我的电话是13912345678")
    # (one word, not 12345 inside it; a number no entry holds weighs next to nothing)
    assert shown["words"] == {"电话": pytest.approx(0.23, abs=0.05), "13912345678": pytest.approx(0.05)}
    d = await default_kb.qa.ask("我的电话是13912345678")
    assert d.status != "answered" and d.entry_id != "ref-12345"
    asked = await default_kb.qa.ask("打12345能问商务局的事吗")
    assert asked.status == "answered" and "12345" in (asked.answer or "")


async def test_an_answer_removed_before_it_is_read_is_no_answer(default_kb: Services) -> None:
    """The best entry deleted from the database between the search and the read of its answer (by
    another worker, before this one's index hears of it): no answer, and not offered among the closest."""
    question = "鼓楼区商务局的电话是多少？"
    _, cands = default_kb.kb.matcher.search(question)
    gone = cands[0].entry_id
    async with default_kb.sessions() as session, session.begin():
        await session.execute(delete(Entry).where(Entry.id == gone))
    d = await default_kb.qa.ask(question)
    assert d.status == "escalated" and d.notice == ESCALATE_NOTICE
    assert d.entry_id is None and d.answer is None and d.kind is None
    assert gone not in [s.entry_id for s in d.suggestions] and d.suggestions


INSURANCEQA = EVAL / "faq_insuranceqa"


@pytest.mark.skipif(
    not INSURANCEQA.exists(), reason="the InsuranceQA development half (../shared/eval) is not present"
)
async def test_insuranceqa_dev_half(services: Services) -> None:
    """A third-party FAQ imported alone (read from ../shared/eval, never copied): answer precision
    and out-of-scope answered as in BENCHMARKS.md (the issue's targets: >= 0.90, <= 0.10), and the
    ranking's top-1 / top-3 kept where they stand (the targets: 0.50, met on this half; 0.68, not)."""
    await services.kb.import_paths([INSURANCEQA / "kb.jsonl"])
    await services.kb.wait_for_rebuild()
    await services.kb.load_index()
    answered = right = false = top1 = top3 = 0
    questions = _load(INSURANCEQA / "questions.jsonl")
    for r in questions:
        d = await services.qa.ask(r["question"])
        answered += d.status == "answered"
        right += d.status == "answered" and d.entry_id in r["expect_entry_ids"]
        ranked = list(
            dict.fromkeys([*([d.entry_id] if d.entry_id else []), *(s.entry_id for s in d.suggestions)])
        )
        top1 += bool(ranked) and ranked[0] in r["expect_entry_ids"]
        top3 += any(e in r["expect_entry_ids"] for e in ranked[:3])
    # (measured 82 and 104 of 163: 0.503 and 0.638, twenty-fifth session)
    assert top1 / len(questions) >= 0.49 and top3 / len(questions) >= 0.62, (top1, top3, len(questions))
    oos = _load(INSURANCEQA / "out_of_scope.jsonl")
    for r in oos:
        false += (await services.qa.ask(r["question"])).status == "answered"
    assert answered >= 5 and right / answered >= 0.9, (right, answered)
    assert false / len(oos) <= 0.1


# -- normalization, synonyms, typos ------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "这个方案的文号是多少？",
        "這個方案的文號是多少？",  # traditional
        "这个方案的文号是多少?",  # half-width punctuation
        "这个方案的　文号是多少？！",  # ideographic space, full-width punctuation
        "😀😀这个方案的文号是多少？🎉",  # emoji
        "这个方案的文号是多少……",  # Chinese ellipsis
        "这个\u200b方案的文号是多少\x07",  # zero-width and control characters
    ],
)
async def test_equivalent_spellings_get_the_same_answer(seeded: Services, question: str) -> None:
    d = await seeded.qa.ask(question)
    assert d.status == "answered", (question, d.status, d.score)
    assert d.entry_id == DOC
    assert "鼓商务〔2020〕123号" in (d.answer or "")


@pytest.mark.parametrize(
    "question",
    [
        "区政府政务新媒体发布的信息要在十二小时内转载吗",
        "政务新媒体信息12小时内转载吗",
        "政务新媒体信息１２小时内转载吗",
    ],
)
async def test_chinese_numerals_meet_digits(seeded: Services, question: str) -> None:
    q = seeded.kb.matcher.analyse(question)
    assert "12" in q.words
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and d.entry_id == f"{DOC}/2.5.3"
    assert "12小时" in _squash(d.answer)


@pytest.mark.parametrize(
    "variants",
    [
        ["外商投资企业年度报告怎么报", "外国投资企业年度报告怎么报", "外资企业年度报告怎么报"],
        ["报废机动车回收资质认定申请材料", "报废汽车回收资质认定申请材料"],
        ["健身卡店家跑了怎么办", "储值卡商家跑了怎么办"],  # a shop's card is a 预付卡, 店家 a 商家
        # 年审 is how people say 年度核查 (jieba alone cuts it 年 | 审, which the permit guide's 审批 holds)
        ["拍卖企业年审要什么材料", "拍卖企业年度核查要什么材料"],
        # 月工资 is 工资 (jieba keeps 月工资 whole: the labour referral's 工资 was not said)
        ["老板拖欠我的月工资找哪个部门", "老板拖欠我的工资找哪个部门"],
        # 降到 / 降至 is 减到: 小规模纳税人增值税减到多少 is the Q&A's own question
        ["小规模纳税人增值税降到多少了", "小规模纳税人增值税减到多少了", "小规模纳税人增值税降至多少了"],
    ],
)
async def test_synonyms_are_one_word(default_kb: Services, variants: list[str]) -> None:
    analysed = [default_kb.kb.matcher.analyse(v).words for v in variants[:2]]
    assert analysed[0] == analysed[1]  # 外商投资 / 外国投资 -> 外资, 报废汽车 -> 报废机动车
    results, scores = [], []
    for v in variants:
        d = await default_kb.qa.ask(v)
        results.append((d.status, d.entry_id))
        scores.append(d.score)
    assert len(set(results)) == 1, results
    assert results[0][0] in ("answered", "suggested") and results[0][1] is not None
    # (外资企业 is one word of the dictionary, 外商投资企业 two: a guide's key coverage moves a little)
    assert max(scores) - min(scores) < 0.01, scores


@pytest.mark.parametrize(
    ("typo", "right", "entry_id"),
    [
        ("商业特许经营备按的申请材料", "商业特许经营备案的申请材料", "guide-franchise-filing"),
        ("预付卡备按要交钱吗", "预付卡备案要交钱吗", "faq-circ-003"),
        ("对外贸易经营者备按取消了吗", "对外贸易经营者备案取消了吗", "faq-trade-001"),
    ],
)
async def test_homophone_typos_are_corrected(
    default_kb: Services, typo: str, right: str, entry_id: str
) -> None:
    q = default_kb.kb.matcher.analyse(typo)
    assert q.corrections == {"备按": "备案"}
    assert q.words == default_kb.kb.matcher.analyse(right).words
    d = await default_kb.qa.ask(typo)
    assert d.status == "answered" and d.entry_id == entry_id
    assert default_kb.kb.matcher.analyse(right).corrections == {}  # correct words are left alone


async def test_a_typo_of_a_synonym_is_corrected(default_kb: Services) -> None:
    """复义 (复议) and 报费车 (报废车): the index holds each synonym group's first word (行政复议,
    报废机动车), so the same-pinyin search, which looks in the index's words, found no word for them
    and the questions were offered the wrong entries or escalated. The group's other words join it."""
    m = default_kb.kb.matcher
    assert m.analyse("行政复义申请期限").corrections == {"复义": "复议"}
    assert m.analyse("报费车回收企业要具备哪些条件").corrections == {"报费车": "报废车"}
    for typo, entry_id in (
        ("行政复义申请期限", "guide-ogi-review-litigation"),
        ("报费车回收企业要具备哪些条件", "guide-scrap-vehicle-qualification"),
    ):
        d = await default_kb.qa.ask(typo)
        assert (d.status, d.entry_id) == ("answered", entry_id), typo
    # Judged by jieba's own frequencies: the tokenizer's, high for every synonym so that it is cut
    # whole, made any same-sound pair a typo of another spelling (限上 of 线上, 要迁 of 要钱, 是市 of 实施,
    # 在那办 of 在哪办).
    for fine in (
        "限上企业纳统入库要什么条件",
        "小孩户口要迁到鼓楼，需要啥材料",
        "拍卖许可也是市商务局批吗",
        "我在那办的卡",
    ):
        assert m.analyse(fine).corrections == {}, fine


async def test_a_word_mistyped_at_its_end_is_corrected(default_kb: Services) -> None:
    """预付咔: jieba cuts 预付 | 咔, a known word and one character, which the broken-run rule above
    never joins; the knowledge base's 预付卡 has the same pinyin and begins with 预付."""
    m = default_kb.kb.matcher
    q = m.analyse("预付咔备案要交钱吗")
    assert q.corrections == {"预付咔": "预付卡"}
    assert q.words == m.analyse("预付卡备案要交钱吗").words
    d = await default_kb.qa.ask("预付咔备案要交钱吗")
    assert d.status == "answered" and d.entry_id == "faq-circ-003"
    for fine in ("备案吗", "预付的钱能退吗", "公开信"):  # a word and a character that spell no other word
        assert m.analyse(fine).corrections == {}, fine


async def test_a_last_character_typed_for_one_it_looks_like_is_corrected(default_kb: Services) -> None:
    """消费卷: 券 is often read juan and typed 卷, which has another pinyin, so the same-pinyin rule
    never found 消费券 (the question was escalated). confusables.txt says 卷 is typed for 券; the
    correction still needs the knowledge base's word and jieba's odds, as a same-pinyin one does."""
    m = default_kb.kb.matcher
    assert m.analyse("消费卷过期了怎么办").corrections == {"消费卷": "消费券"}
    assert m.analyse("消费卷怎么领").words == m.analyse("消费券怎么领").words
    d = await default_kb.qa.ask("消费卷怎么领")
    assert d.status != "escalated" and d.entry_id == "policy-fuzhou-consumption-voucher-2020#qa1"
    for fine in ("试卷", "卷帘门坏了找谁修", "帐篷"):  # no known word with the character it may stand for
        assert m.analyse(fine).corrections == {}, fine
    assert m.lex.confusables["卷"] == "券"


async def test_a_separable_verb_said_apart_is_the_word(default_kb: Services) -> None:
    """备过案 (jieba: one unknown word) and 备了案 are 备案 with 了 / 过 inside it; the question then
    finds the entry on checking a card's filing, which it missed for want of 备案."""
    m = default_kb.kb.matcher
    q = m.analyse("这家店的卡在商务局备过案没有")
    assert q.corrections == {"备过案": "备案"} and "备案" in q.words
    d = await default_kb.qa.ask("想知道这家店的卡在商务局备过案没有")
    assert "faq-circ-004" in [d.entry_id, *(s.entry_id for s in d.suggestions)][:3]
    for fine in ("通过了吗", "他去过了", "看了看备案"):  # no word of the knowledge base around 了 / 过
        assert m.analyse(fine).corrections == {}, fine


async def test_a_phone_or_id_number_is_not_the_matter_asked(default_kb: Services) -> None:
    """A long number no entry holds (a phone, an ID card) says whose question it is, not what it asks:
    it weighs next to nothing, so the entry on the matter covers the question as it would without it;
    a number the knowledge base holds (the bureau's phone) keeps its weight."""
    m = default_kb.kb.matcher
    _, plain = m.search("预付卡备案要带什么材料", limit=1)
    for said in ("预付卡备案要带什么材料 13800138000", "350102199001011234x 预付卡备案要带什么材料"):
        q, cands = m.search(said, limit=1)
        number = next(w for w in q.words if w[0].isdigit())
        assert q.weights[q.words.index(number)] <= 0.05, said
        # (the two prepaid-card guides tie: either may lead)
        assert cands[0].entry_id.startswith("guide-prepaid-card"), said
        assert cands[0].coverage >= plain[0].coverage - 0.05, said
    known = m.analyse("87538464是哪里的电话")  # the bureau's phone, which entries state
    assert known.weights[known.words.index("87538464")] >= 0.4


async def test_an_entry_saying_the_question_only_in_its_body_is_not_the_answer(default_kb: Services) -> None:
    """那个表在哪下载: of its words only the prepaid-card guide says 下载, once in its materials; its
    title, headings and questions say none of them. However sure the model (it never saw such a
    guide answer), that is a mention in passing, not the answer: offered, not answered. A clause of
    a document, whose key field is only its heading, stays answerable by its body."""
    explained = await default_kb.qa.explain_decision("那个表在哪下载")
    assert explained["status"] == "suggested" and explained["held"] == "thin"
    assert explained["confidence"] >= default_kb.qa.settings.precision  # (the model alone would answer)
    best = explained["candidates"][0]
    assert best["features"]["offhand"] == 1.0 and best["features"]["key_coverage"] == 0.0
    sure = await default_kb.qa.explain_decision("预付卡备案要交钱吗")
    assert sure["status"] == "answered" and sure["held"] is None
    clause = await default_kb.qa.explain_decision("机构职能目录谁来编")  # said in its body only
    assert clause["status"] == "answered" and str(clause["entry_id"]).startswith("doc-")
    assert clause["candidates"][0]["features"]["offhand"] == 0.0


async def test_a_short_question_naming_nothing_an_entry_asks_about_is_not_its_answer(
    default_kb: Services,
) -> None:
    """多久能办好 names no matter: 特许经营备案交上去多久能办好 is the one entry that says 办好, and the model
    alone answers it, but that entry's question is about 特许经营, which was not said. Asked with
    its matter, the same entry answers."""
    explained = await default_kb.qa.explain_decision("多久能办好")
    assert explained["status"] != "answered" and explained["held"] == "thin"
    assert explained["confidence"] >= default_kb.qa.settings.precision  # (the model alone would answer)
    assert explained["candidates"][0]["features"]["unsaid"] == 1.0
    d = await default_kb.qa.ask("特许经营备案多久能办好")
    assert (d.status, d.entry_id) == ("answered", "faq-circ-015")


async def test_one_word_in_common_is_not_an_answer(default_kb: Services) -> None:
    """中午吃啥好呢 names one word more than a light one, 中午, which one of the bureau-hours FAQ's
    questions says (区商务局中午休息吗); that FAQ lacks the rest and its questions are about the
    bureau's hours. Far ahead of entries sharing nothing, the model alone answers it: held back,
    and so is the robot-failings FAQ for an insult. Asked with its matter, the FAQ answers."""
    for said, entry_id in (
        ("中午吃啥好呢", "faq-bureau-003"),
        ("你好笨啊，问什么都答不上来", "faq-bureau-005"),
    ):
        explained = await default_kb.qa.explain_decision(said)
        assert explained["status"] != "answered" and explained["held"] == "thin", said
        assert explained["confidence"] >= default_kb.qa.settings.precision  # (the model alone would answer)
        best = explained["candidates"][0]
        assert best["entry_id"] == entry_id and best["features"]["unsaid"] == 1.0
        assert best["features"]["missing"] > 0.0 and best["features"]["short"] == 0.0  # (three words)
    d = await default_kb.qa.ask("商务局中午休不休息")
    assert (d.status, d.entry_id) == ("answered", "faq-bureau-003")


async def test_every_shipped_question_asked_word_for_word_is_answered_by_its_entry(
    default_kb: Services,
) -> None:
    """A question that is one of an entry's own questions (its question or an alternate), word for
    word, is that entry's question: answered by it, confidence 1, whatever the model makes of a short
    question with close neighbours (鼓楼区商务局在哪里？ was offered at 0.41, 你们电话多少 held as asking
    nothing). Every FAQ and policy Q&A question of the default knowledge base, asked as written."""
    async with default_kb.sessions() as s:
        entries = list(await s.scalars(select(Entry).where(Entry.kind == "faq", Entry.status == "published")))
    asked = [(q, e.id) for e in entries for q in [e.question, *(e.alternates or [])] if q]
    assert len(asked) > 500
    wrong = []
    for q, entry_id in asked:
        d = await default_kb.qa.ask(q)
        if (d.status, d.entry_id) != ("answered", entry_id):
            wrong.append((q, entry_id, d.status, d.entry_id))
    assert wrong == []
    d = await default_kb.qa.ask("鼓楼区商务局在哪里？")
    assert d.confidence == 1.0


async def test_an_answer_saying_nothing_of_a_matter_another_entry_is_named_for_is_not_given(
    default_kb: Services,
) -> None:
    """拍卖公司年报啥时候截止，在哪个系统填 had been answered (0.74) with the foreign-investment FAQ on 年报,
    whose own question is the closest but which says nothing of 拍卖, which the auction annual
    inspection guide, a close runner-up, is named for: offered with it, not answered."""
    explained = await default_kb.qa.explain_decision("拍卖公司年报啥时候截止，在哪个系统填")
    assert explained["status"] != "answered"
    assert "guide-auction-annual-inspection" in [c["entry_id"] for c in explained["candidates"][:2]]
    d = await default_kb.qa.ask("拍卖公司年报啥时候截止，在哪个系统填")
    assert "guide-auction-annual-inspection" in [s.entry_id for s in d.suggestions]


async def test_a_question_that_only_asks_names_no_matter_and_is_not_answered(default_kb: Services) -> None:
    """符合条件吗 / 电话多少 / 地址在哪 / 找谁处理 only ask (conditions, a phone, a place, who deals with
    it: ``ASKING``): every guide has them, and which one's is asked the question does not say. The
    model alone answers them (a policy that says 符合条件, the bureau's phone, the traffic police's
    referral); they are offered instead. Asked with a matter,
    or with a matter beside a light word, the same entries answer."""
    m = default_kb.kb.matcher
    for said in ("符合条件吗", "电话多少", "地址在哪", "要多久", "怎么申请", "依据是什么", "找谁处理"):
        q = m.analyse(said)
        assert q.matter <= 0.15, (said, q.words, q.matter)
        explained = await default_kb.qa.explain_decision(said)
        assert explained["status"] != "answered", said
        if explained["candidates"]:
            assert explained["candidates"][0]["features"]["matterless"] == 1.0, said
    held = await default_kb.qa.explain_decision("符合条件吗")
    assert held["held"] == "thin" and held["confidence"] >= default_kb.qa.settings.precision
    # 条件 only asks: the refined-oil guide's title saying 资格 (条件) does not set it apart from the
    # consultation guide tied with it (each says every word in its body)
    tied_ = await default_kb.qa.explain_decision("申请公开文件啥条件")
    assert tied_["status"] != "answered" and tied_["candidates"][0]["features"]["key_gap"] == 0.0
    for said, entry in (
        ("商务局电话多少", "faq-bureau-002"),
        ("商务局地址在哪", "faq-bureau-001"),
        ("预付卡备案要交钱吗", "faq-circ-003"),
    ):
        q = m.analyse(said)
        assert q.matter > 0.15, (said, q.words)
        d = await default_kb.qa.ask(said)
        assert (d.status, d.entry_id) == ("answered", entry), said


async def test_a_trade_the_trimmed_dictionary_lacks_is_one_word(
    lexicon: Lexicon, default_kb: Services
) -> None:
    """干洗 is not in the trimmed jieba dictionary: 做干洗的 was cut 做 | 干 | 洗, 干洗店 干 | 洗店, and a dry
    cleaner's question missed the laundry FAQ. A domain word, it is one word in questions and entries;
    so is 跑路 (跑 | 路, two light characters, weighed less than the 老板 who ran away)."""
    assert "干洗" in lexicon.cut("我是做干洗的") and "干洗" in lexicon.cut("干洗店要备案吗")
    assert "跑路" in lexicon.cut("楼下理发店老板跑路了")
    d = await default_kb.qa.ask("我是做干洗的要去商务局登记吗")
    assert (d.status, d.entry_id) == ("answered", "faq-circ-023")


def test_word_spans_are_where_the_words_are(lexicon: Lexicon) -> None:
    """``Lexicon.word_spans``: one span for each of ``words``, each slicing that word out of the text."""
    for text in ("预付卡备案要带什么材料", "请问 找谁处理啊？", "我们公司是外资，法人变了要报告吗"):
        norm = normalize(text)
        pieces = lexicon.cut(norm)
        spans = lexicon.word_spans(pieces)
        assert [norm[a:b] for a, b in spans] == lexicon.words(pieces), text


def test_the_matter_of_a_question_is_the_weight_of_its_words_that_do_not_ask() -> None:
    """``asking_words``: a word wholly inside an asking phrase (找谁, 多少钱, 什么条件, 找谁处理) names no
    matter; a word that only overlaps one does. ``matter_weight``: the heaviest of the others."""
    from knowledge.retrieve import asking_words, matter_weight

    assert asking_words("什么条件", [(0, 2), (2, 4)]) == 0b11
    assert asking_words("预付卡要多少钱", [(0, 3), (3, 4), (4, 6), (6, 7)]) == 0b1100
    assert asking_words("找谁处理", [(0, 1), (1, 2), (2, 4)]) == 0b111
    assert asking_words("卡用不了找谁", [(0, 2), (2, 4), (4, 5), (5, 6)]) == 0b1100
    assert asking_words("", []) == 0
    assert matter_weight([1.0, 0.15, 0.15, 0.1], 0b1100) == 1.0
    assert matter_weight([0.2, 0.2], 0b11) == 0.0
    assert matter_weight([0.85, 0.29, 0.15, 0.08], 0b0010) == 0.85


async def test_a_guessed_word_of_a_known_word_and_one_character_more_is_cut(default_kb: Services) -> None:
    """洗染店 is in no dictionary (jieba's HMM guessed it); the knowledge says 洗染 (洗染业). Cut into
    洗染 | 店, the question finds the laundry guide, which it missed for want of its heaviest word."""
    m = default_kb.kb.matcher
    assert m.analyse("洗染店备案需要啥材料").words[:2] == ["洗染", "店"]
    d = await default_kb.qa.ask("洗染店备案需要啥材料")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-laundry-filing", "申请材料")
    assert m.analyse("预付卡备案").words == ["预付卡", "备案"]  # words the knowledge holds stay whole


async def test_a_stop_word_glued_to_another_character_is_cut_off(default_kb: Services) -> None:
    """jieba's HMM glued 文是 (123号文是哪年发的): an unknown word, it weighed 0.85, a rare term every
    entry lacks, and the plan numbered 123 was not answered (0.35). Cut, it is. A glued pair of content
    characters (栋楼) stays whole, as does a stop word in the dictionary (我想), and a stop word before
    the matter (会涨): cut, 涨 weighed as a light character and the weather referral answered 股票明天会涨吗
    for its 明天. A demonstrative before a character is cut (这钱)."""
    m = default_kb.kb.matcher
    assert m.analyse("123号文是哪年发的").words == ["123", "号", "文", "发"]
    d = await default_kb.qa.ask("123号文是哪年发的")
    assert (d.status, d.entry_id) == ("answered", "doc-7a78d0a404")
    assert "栋楼" in m.analyse("商务局在哪栋楼办公").words
    assert "想" not in m.analyse("商务局中午有人上班吗，我想12点多过去办事").words
    assert "会涨" in m.analyse("股票明天会涨吗").words
    assert (await default_kb.qa.ask("股票明天会涨吗")).status != "answered"
    assert (await default_kb.qa.ask("汽车以旧换新补贴怎么申请")).status != "answered"  # not 人社's matter
    # a demonstrative glued to the character after it (这钱: this money) is cut too
    assert "钱" in m.analyse("老板跑路了，这钱还能要回来吗").words


async def test_a_character_glued_to_a_light_word_after_it_is_cut_off(seeded: Services) -> None:
    """jieba's HMM glued 前要 (规范性文件年底前要做到什么) and 科管 (市场监管规则公开归哪个科管): a character
    and the light word after it, unknown together, weighed 0.85, a rare term every clause lacks, and
    the clause asked was only offered (0.10 and 0.29). Cut, both are answered."""
    m = seeded.kb.matcher
    assert m.analyse("规范性文件年底前要做到什么").words[:3] == ["规范性文件", "年底", "前"]
    assert "科管" not in m.analyse("市场监管规则公开归哪个科管").words
    for question, clause in (
        ("规范性文件年底前要做到什么", "doc-7a78d0a404/2.1.3"),
        ("市场监管规则公开归哪个科管", "doc-7a78d0a404/2.3.1"),
    ):
        d = await seeded.qa.ask(question)
        assert (d.status, d.entry_id) == ("answered", clause), question


async def test_a_measure_word_is_no_word_of_the_matter(default_kb: Services) -> None:
    """个 (a measure word: 开个, 办个, 有个) is a stop word. jieba's HMM glued it to the verb before it,
    and 开个, unknown, weighed as a rare term every entry lacks (0.85 in the asking clause): the guide
    asked was only offered (0.69 and 0.57)."""
    m = default_kb.kb.matcher
    assert m.analyse("准备开个废品回收站，要办什么手续").words[:3] == ["准备", "开", "再生资源"]
    for question, entry, aspect in (
        ("准备开个废品回收站，要办什么手续", "guide-recycling-filing", "办理流程"),
        ("想开个报废汽车回收拆解厂，需要满足什么条件", "guide-scrap-vehicle-qualification", "办理条件"),
    ):
        d = await default_kb.qa.ask(question)
        assert (d.status, d.entry_id, d.aspect) == ("answered", entry, aspect), question


@pytest.mark.parametrize(
    ("question", "head"),
    [
        ("洗衣店营业执照在哪办", "营业执照"),  # (地点, of 在哪办, names the section asked)
        ("回收站的营业执照怎么办", "营业执照"),
        ("二手车交易市场拿到执照后多久要去备案", "备案"),
    ],
)
def test_the_head_is_the_last_word_naming_a_matter(default_kb: Services, question: str, head: str) -> None:
    q = default_kb.kb.matcher.analyse(question)
    i = head_word(q)
    assert i is not None and q.words[i] == head, q.words


async def test_another_bodys_matter_named_in_passing_is_not_answered(default_kb: Services) -> None:
    """A trade's business licence asked (洗衣店营业执照在哪办) was answered at 0.95-0.99 with that
    trade's filing guide, which names the licence only as what comes first: the licence is the
    market regulator's, whose referral is titled with it and asked by a question close to this one.
    The guide is offered with the referral second ("referred"); a licence said in passing, the
    question's head another (拿到执照后多久要去备案), still answers with the guide."""
    for question, guide in (
        ("洗衣店营业执照在哪办", "guide-laundry-filing"),
        ("拍卖公司营业执照在哪办", "guide-auction-permit"),
        ("回收站的营业执照怎么办", "guide-recycling-filing"),
    ):
        d = await default_kb.qa.ask(question)
        assert d.status == "suggested", (question, d.status, d.entry_id)
        assert [s.entry_id for s in d.suggestions[:2]] == [guide, "ref-samr"], question
        found = await default_kb.qa.explain_decision(question)
        assert found["held"] == "referred" and "(referred)" in _explained_text(found)
    d = await default_kb.qa.ask("二手车交易市场拿到执照后多久要去备案")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-used-car-entity-filing", "办理时限")
    # No trade named: the filing guides tie, each naming the licence among its materials only; the
    # referral, the one entry offered that is about the licence, comes first.
    d = await default_kb.qa.ask("营业执照在哪办")
    assert d.status == "suggested" and d.suggestions[0].entry_id == "ref-samr"


async def test_wanting_to_is_no_word_of_the_matter(default_kb: Services) -> None:
    """想 (want to) says nothing of what is asked, as 我想 and 想要 do not: as a light word it still
    counted for an entry whose own question happens to say it (拍卖公司想拍文物… for 想注册一家拍卖公司),
    and a question saying it lost a little of every other entry's coverage."""
    m = default_kb.kb.matcher
    assert "想" not in m.analyse("想开个报废汽车回收拆解厂，企业要具备哪些条件").words
    d = await default_kb.qa.ask("想开个报废汽车回收拆解厂，企业要具备哪些条件")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-scrap-vehicle-qualification", "办理条件")


async def test_coming_and_doing_are_no_words_of_the_matter(seeded: Services) -> None:
    """来 (刚来商务局, 根据啥文件来梳理, 稳来着), 搞 and 弄 (搞加盟, 怎么弄) say nothing of what is asked,
    as 想 does not: stop words. 六稳是哪六个稳来着 had kept 稳来着, a guess of jieba's HMM weighing 0.85,
    and was handed to staff."""
    m = seeded.kb.matcher
    assert m.analyse("六稳是哪六个稳来着").words == ["六稳", "稳"]
    assert "搞" not in m.analyse("搞加盟没去备案会不会被罚").words
    assert (await seeded.qa.ask("六稳是哪六个稳来着")).status != "escalated"


async def test_a_light_word_glued_to_the_asking_is_cut_off(default_kb: Services) -> None:
    """要交 in 要交哪些材料 joins a light word to 交哪些, which asks the materials: as one word unknown
    to the dictionary it weighed 0.85, and the general prepaid-card guide was not told apart from the
    large issuers'. The asking joined to a word of the matter stays whole (咋领: entries say it)."""
    m = default_kb.kb.matcher
    assert m.analyse("特许经营备案要交哪些东西").words[-2:] == ["交", "东西"]
    d = await default_kb.qa.ask("预付卡备案要交哪些材料")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-prepaid-card-filing", "申请材料")
    assert "咋领" in m.analyse("惠聚榕城消费券咋领的").words
    d = await default_kb.qa.ask("惠聚榕城消费券咋领的")
    assert (d.status, d.entry_id) == ("answered", "policy-fuzhou-consumption-voucher-2020#qa1")


async def test_there_in_a_question_asking_nothing_else_is_where(default_kb: Services) -> None:
    """商务局地址在那里: 那 and 哪 are both na, and the question asks nothing else: it asks where (it was
    only offered the address). With another question word, 那里 stays "there"."""
    for typo, right in (
        ("商务局地址在那里", "商务局地址在哪里"),
        ("预付卡备案去那里办", "预付卡备案去哪里办"),
    ):
        said, meant = await default_kb.qa.ask(typo), await default_kb.qa.ask(right)
        assert (said.status, said.entry_id) == (meant.status, meant.entry_id), typo
    assert (await default_kb.qa.ask("商务局地址在那里")).status == "answered"
    m = default_kb.kb.matcher
    assert m.analyse("商务局地址在那里").norm.endswith("在哪里")
    assert "那里" in m.analyse("我在那里办过预付卡备案，现在要变更吗").norm


async def test_an_entry_whose_own_question_asks_where_is_not_marked_down_as_stating_no_place(
    default_kb: Services,
) -> None:
    """预付卡备案去哪里办: 我这种小店发预付卡，应该去哪一级商务部门备案？ asks where in its own words (去哪一级),
    so it is not marked down for naming no address; the FAQ on checking a card's filing (its
    alternate 预付卡备案信息在哪里查) was answered instead."""
    d = await default_kb.qa.ask("预付卡备案去哪里办")
    assert d.entry_id == "faq-circ-002" and d.status in {"answered", "suggested"}, (d.status, d.entry_id)


async def test_clauses_of_one_section_tied_answer_together(seeded: Services) -> None:
    """保障措施有哪些: the section's two clauses tie on its heading, and no match can choose between
    them; the section is what is asked, so they answer together, in document order, citing the
    section. Clauses of different sections that tie stay offered, not answered."""
    d = await seeded.qa.ask("保障措施有哪些")
    assert d.status == "answered" and d.entry_id in {f"{DOC}/2.6.1", f"{DOC}/2.6.2"}
    text = _squash(d.answer)
    assert "1.明确领导责任" in text and "2.强化培训工作" in text
    assert text.index("1.明确领导责任") < text.index("2.强化培训工作")
    assert d.citation.endswith("条款：二、主要任务 > （六）强化做好政务公开工作的各项保障措施")
    assert not {s.entry_id for s in d.suggestions} & {f"{DOC}/2.6.1", f"{DOC}/2.6.2"}  # (both shown)
    # 一、总体要求 and (三)'s first clause score alike, but only the one's heading names the matter
    # asked (营商环境, not merely 要求): that clause answers, alone.
    apart = await seeded.qa.ask("放管服改革优化营商环境有啥要求")
    assert apart.status == "answered" and "1.提高市场监管规则和标准公开质量" in _squash(apart.answer)
    assert "总体要求" not in apart.citation


def test_only_tied_clauses_under_the_same_headings_are_one_section() -> None:
    """Tied clauses of one document under the same headings are a section; a tied clause of
    another section (or another document), or a tied entry of another kind, makes them none."""
    import dataclasses

    def clause(i: int, score: float, shared: str, parent: str = "doc-x") -> Candidate:
        c = _cand(i, score, parent=parent, kind="clause")
        c.info = dataclasses.replace(c.info, shared_key=shared)
        return c

    best = clause(0, 0.9, "二、任务（六）保障")
    assert same_section(best, [clause(1, 0.89, "二、任务（六）保障")]) != []
    assert same_section(best, [clause(1, 0.89, "二、任务（六）保障"), clause(2, 0.6, "一、总体要求")]) != []
    assert same_section(best, [clause(1, 0.89, "二、任务（六）保障"), clause(2, 0.88, "一、总体要求")]) == []
    assert same_section(best, [clause(1, 0.89, "二、任务（六）保障", parent="doc-y")]) == []
    assert same_section(best, [_cand(1, 0.89)]) == []
    assert same_section(best, [clause(1, 0.5, "二、任务（六）保障")]) == []  # (not tied: nothing to join)


def test_a_section_answer_puts_its_clauses_in_document_order_under_its_heading() -> None:
    def clause(tail: str, path: list[str], text: str) -> Entry:
        return Entry(
            id=f"doc-x/{tail}", kind="clause", title=path[-1], answer=text, heading_path=path, office=""
        )

    two = clause("2.10", ["二、任务", "（一）保障", "10.培训"], "10.培训。")
    one = clause("2.9", ["二、任务", "（一）保障", "9.领导"], "9.领导。")
    assert section_answer([two, one]) == "【二、任务 > （一）保障】\n9.领导。\n\n10.培训。"  # (9 before 10)
    top = [clause("1", ["一、总体要求"], "总体。"), clause("2", ["二、任务"], "任务。")]
    assert section_answer(top) == "【一、总体要求】\n总体。\n\n【二、任务】\n任务。"  # no shared heading


async def test_homophone_typo_in_the_seed(seeded: Services) -> None:
    q = seeded.kb.matcher.analyse("政务公开的规章制渡怎么执行")
    assert q.corrections.get("制渡") == "制度"


@pytest.mark.parametrize(
    ("question", "garbled"),
    [
        ("特许经营备案名单里有多少个奶茶品牌", "里有"),  # not 理由
        ("机器人答不了，能找人工吗", "能找"),  # not 能招
        ("用有问题，打哪个电话", "用有"),  # not 拥有
    ],
)
async def test_common_words_side_by_side_are_not_taken_for_a_typo(
    default_kb: Services, question: str, garbled: str
) -> None:
    """Two common words that jieba cuts apart, and that sound like a word of the knowledge base,
    are left as they are: the word is not likelier than the two by the odds against a typo."""
    m = default_kb.kb.matcher
    assert garbled in "".join(m.lex.cut(question))
    assert m.index.vocab_pinyin.get(m.lex.pinyin_key(garbled) or "")  # a same-sound word is there
    assert m.analyse(question).corrections == {}


# -- clauses of a document ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expect"),
    [
        # Said in one clause's text and in the heading it shares with its two siblings.
        ("用权公开", "以用权公开为导向"),
        # About the document itself: the document answers, not its preamble.
        ("实施方案什么时候印发的？", "2020年11月12日"),
        # Quotes the clause's own "到哪里": no place is asked for.
        ("权力运行到哪里监督就到哪里", "公开和监督就延伸到哪里"),
        # 多久|内要|转发: jieba's guess 内要 is glue, not a word the clause lacks.
        ("区政府新媒体发的重要信息多久内要转发", "12小时内转载转发"),
    ],
)
async def test_seed_questions_answered_by_the_right_part(
    seeded: Services, question: str, expect: str
) -> None:
    status, _, answer = await _best_answer(seeded, question)
    assert status != "escalated", await seeded.qa.explain(question, 3)
    assert expect in _squash(answer)


async def test_words_only_in_shared_headings_count_part(seeded: Services) -> None:
    """A question word that a clause says only in its parents' headings or its document's title
    counts ``SHARED_HEADING`` of its weight when another candidate under them says it itself (the
    word tells them apart), and fully when none does."""
    m = seeded.kb.matcher
    q = m.analyse("方案里用权公开")
    assert q.words == ["方案", "用权", "公开"]
    clauses = {d.entry_id.rsplit("/", 1)[-1]: i for i, d in enumerate(m.index.docs)}
    plan, useright, public = q.weights
    total = sum(q.weights)

    def cover(*names: str) -> list[float]:
        top = np.asarray([clauses[n] for n in names])
        return m._coverage(q, top, [m.index.docs[d] for d in top.tolist()]).cover

    # 2.1.1 says 用权 only in the heading (一) it shares with 2.1.2, which says it itself; no clause
    # but the preamble says 方案, which is in the document's title.
    assert cover("2.1.1", "2.1.2") == pytest.approx(
        [(plan + SHARED_HEADING * useright + public) / total, (plan + useright + public) / total]
    )
    with_preamble = cover("2.1.1", "2.1.2", "preamble")
    assert with_preamble[:2] == pytest.approx(
        [
            (SHARED_HEADING * (plan + useright) + public) / total,
            (SHARED_HEADING * plan + useright + public) / total,
        ]
    )
    assert cover("2.1.1", "2.1.3") == pytest.approx(
        [(plan + useright + public) / total] * 2
    )  # neither says 用权


def test_an_faqs_category_and_tags_are_what_it_is_asked_within(lexicon: Lexicon) -> None:
    """An FAQ of its own is asked within its category and tags (我申请的信息涉及别的公司, of 政府信息公开,
    tagged 隐私): a question word of two Chinese characters or more said only there counts as said,
    though another candidate says it itself (they are the FAQ's own, not shared as a clause's
    headings are); a policy's Q&A, framed by its policy's title, is not."""
    ogi_faq = {"category": "政府信息公开", "tags": ["隐私"]}
    m = _matcher_of(
        lexicon,
        [
            _faq_entry(0, "申请的材料涉及别的公司，会不会公开？", "应书面征求第三方意见。", **ogi_faq),
            _faq_entry(
                1, "信息公开申请多久答复？", "20个工作日内答复，征求第三方意见的时间不计入。", **ogi_faq
            ),
            _faq_entry(
                2, "申请的材料涉及别的公司，会不会公开？", "应书面征求第三方意见。", parent_id="p", **ogi_faq
            ),
        ],
    )
    index = m.index
    q = m.analyse("信息公开涉及第三方")
    assert q.words[0] == "信息公开"
    ogi, total = q.weights[0], sum(q.weights)

    def cover(*numbers: int) -> list[float]:
        top = np.asarray(numbers)
        return m._coverage(q, top, [index.docs[d] for d in numbers]).cover

    alone, child = cover(0)[0], cover(2)[0]
    assert alone == pytest.approx(1.0)  # (it says every other word itself)
    assert child < 1.0 - 0.4 * ogi / total  # its policy frames it: 信息公开 only partly said
    assert cover(0, 1) == pytest.approx([1.0, cover(1)[0]])  # (f1 says 信息公开 itself)
    q = m.analyse("涉及隐私会公开吗")
    assert "隐私" in q.words
    assert cover(0)[0] == pytest.approx(1.0) and cover(2)[0] < 1.0  # (the tag: f0's, not the Q&A's)


def test_function_characters_joined_by_jieba_are_light(lexicon: Lexicon) -> None:
    assert "内要" not in lexicon.word_freq  # a guess of jieba's HMM, not a dictionary word
    assert lexicon.informativeness("内要") == LIGHT_WEIGHT
    assert lexicon.informativeness("网办") > LIGHT_WEIGHT  # 办 is light, 网 is not: a word


@pytest.mark.parametrize("word", ["才能", "才行", "搞定", "办完", "那边", "这边", "之内", "咋整"])
def test_colloquial_function_words_are_light(lexicon: Lexicon, word: str) -> None:
    """要啥条件才能开, 多长时间内搞定, 商务部门那边: words of how one speaks, not of the matter. As words
    of jieba's dictionary (才能: talent) or unknown to it (才行, 咋整: 0.85) they had weighed as much as
    the matter, and an entry lacking them missed its heaviest word."""
    assert lexicon.informativeness(word) == LIGHT_WEIGHT


async def test_a_story_in_colloquial_words_still_finds_its_section(default_kb: Services) -> None:
    """二手车公司领了执照以后多久之内要去备案 had been only offered (0.56: 之内 weighed as a term the guide
    lacks); 二手车备案咋整 asks how it is done (办理流程), as 咋弄 does."""
    d = await default_kb.qa.ask("二手车公司领了执照以后多久之内要去备案")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-used-car-entity-filing", "办理时限")
    d = await default_kb.qa.ask("二手车备案咋整")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-used-car-entity-filing", "办理流程")


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("权责清单里一共有多少项行政权力", "项"),
        ("办这个要多少钱", "钱"),
        ("几个工作日能办完", "工作日"),
        ("政务公开由几名分管领导负责", "名"),
        ("审核要多长时间", "多久"),
        ("这个方案是谁发的", ""),
    ],
)
def test_count_questions_name_their_unit(seeded: Services, question: str, unit: str) -> None:
    q = seeded.kb.matcher.analyse(question)
    assert q.count_of == unit and q.asks_number == bool(unit)


@pytest.mark.parametrize(
    ("question", "status", "expect"),
    [
        ("政务新媒体转载要几个小时", "answered", "12小时内转载转发"),  # states 12 hours
        ("政务公开由几名分管领导负责", "answered", "确定一名分管领导"),  # a number in words
        ("政务公开工作要点全文有多少字", "suggested", ""),  # the document's numbers count no 字
    ],
)
async def test_asked_for_a_number_of_something_the_entry_must_state_one(
    seeded: Services, question: str, status: str, expect: str
) -> None:
    got, _, answer = await _best_answer(seeded, question)
    if status == "answered":  # the clause stating the number is the one picked
        assert got != "escalated" and expect in _squash(answer), await seeded.qa.explain(question, 2)
    else:
        assert got != "answered", await seeded.qa.explain(question, 2)


async def test_asked_how_many_businesses_a_count_of_something_else_is_no_answer(default_kb: Services) -> None:
    """多少家 counts businesses: a guide stating 3个工作日 states no such number (个 counts anything,
    so it is not a unit of 家), and a statistic it does not give is not answered with it."""
    question = "鼓楼区有多少家企业办了预付卡备案"
    _, cands = default_kb.kb.matcher.search(question, limit=5)
    guide = next(c for c in cands if c.entry_id == "guide-prepaid-card-filing")
    assert guide.factor < 1.0  # (marked down: it states no number of 家)
    d = await default_kb.qa.ask(question)
    assert d.status != "answered", await default_kb.qa.explain(question, 2)


async def test_asked_the_price_free_is_an_answer(default_kb: Services) -> None:
    d = await default_kb.qa.ask("办预付卡备案要多少钱")  # the entry says it is free: no price in 元
    assert d.status == "answered" and d.entry_id == "faq-circ-003"


# -- guides answer the aspect asked about --------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "aspect"),
    [
        ("外资企业信息报告要什么材料", "申请材料"),
        ("特许经营备案要交哪些东西", "申请材料"),  # what is handed in: the materials
        ("外商投资信息报告收费吗", "收费标准"),
        ("拍卖经营许可要多久", "办理时限"),
        ("预付卡备案咋弄", "办理流程"),  # how to get it done, said colloquially
        ("报废车资质认定怎么搞", "办理流程"),
        ("典当行设立需要什么条件", "办理条件"),
        ("单用途预付卡备案要什么材料", "申请材料"),
        # (when the materials are handed in asks the time limit: the phrase asking when holds 材料, and
        # of two phrases ending together the longer asks; the materials had been shown)
        ("拍卖企业年度核查什么时候报材料", "办理时限"),
        ("预付卡备案啥时候交材料", "办理时限"),
        ("预付卡备案要交什么材料", "申请材料"),
    ],
)
async def test_guides_answer_the_section_asked_about(
    default_kb: Services, question: str, aspect: str
) -> None:
    d = await default_kb.qa.ask(question)
    status, entry_id, answer = await _best_answer(default_kb, question)
    assert status != "escalated", (question, status, entry_id)
    assert entry_id is not None and entry_id.startswith("guide-")
    assert d.aspect == aspect
    entry = await default_kb.kb.get(entry_id)
    assert entry is not None
    sections = dict(entry.sections)
    assert answer.startswith(f"【{entry.title}｜{aspect}】")
    assert sections[aspect] in answer
    # only that section's text, then what else the guide covers
    others = [n for n in sections if n != aspect]
    assert f"本指南还包括：{'、'.join(others)}" in answer
    assert all(sections[n] not in answer for n in others if len(sections[n]) > 20)


@pytest.mark.parametrize(
    ("question", "aspect"),
    [
        ("报废车拆解资格找谁办", "办理地点与时间"),  # who handles it: the office, named last
        ("拍卖许可在福州找哪个部门办", "办理地点与时间"),  # which department: whom to go to
        ("成品油零售许可归哪一级机关审批", "办理地点与时间"),
        ("这事涉及哪些部门", None),  # (which departments are involved: not whom to go to)
        ("新的成品油流通管理办法是哪天开始施行的", "设定依据"),  # when the rules took effect: the basis
        ("拍卖法什么时候生效", "设定依据"),
        ("什么时候开始办", None),
        ("典当行设立需要什么条件", "办理条件"),
        ("二手车备案在哪个系统上填报", "在线办理"),
        ("拍卖经营许可要多久", "办理时限"),
        ("预付卡备案咋弄", "办理流程"),  # how to get it done, said colloquially
        ("报废车资质认定怎么搞", "办理流程"),
        ("拍卖企业年度核查要交费吗", "收费标准"),  # the fee said as 交费 / 缴费
        ("预付卡备案要缴费吗", "收费标准"),
        ("去商务局备案要准备些什么东西", "申请材料"),  # words between 准备 and 什么
        ("备案要带些啥", "申请材料"),
        ("再生资源回收备案要带哪些东西", "申请材料"),  # 哪些 as well as 什么 / 啥
        ("要准备哪些", "申请材料"),
        ("营业执照", None),
        ("材料准备好了吗", "申请材料"),
        ("准备好了吗", None),
        # a phone in the story is not the phone asked for (someone called; the owner cannot be reached)
        ("有人打电话说能帮我办回收备案", None),
        ("店关门了老板电话也打不通", None),
        ("回收备案的咨询电话是多少", "咨询电话"),
        ("报废汽车回收拆解资质咋申请", "办理流程"),  # how to apply, said colloquially
        ("外商投资信息报告怎样办理", "办理流程"),
        # a place named, asked whether it deals with the matter: where to go
        ("拍卖许可在鼓楼区商务局能办吗", "办理地点与时间"),
        ("拍卖业务许可 鼓楼区能办吗", "办理地点与时间"),
        ("再生资源回收备案在区里可以办理不", "办理地点与时间"),
        ("拍卖许可在福建网上办事大厅能申请吗", "在线办理"),  # (online, whatever the platform's name)
        ("我这种情况能不能办", "办理条件"),  # (whether one qualifies: no place named)
        ("对答复不服，复议向谁申请？", "办理地点与时间"),  # to whom: the office
        # colloquial ways of asking for a section
        ("预付卡备案手机上能办吗", "在线办理"),
        ("二手车备案有APP吗", "在线办理"),
        ("拍卖许可贵不贵", "收费标准"),
        ("酒类备案要花多少", "收费标准"),
        ("预付卡备案要花多少时间", "办理时限"),  # (花多少 of time: not the fee)
        ("预付卡备案要拿什么去", "申请材料"),
        ("特许经营备案需要什么东西", "申请材料"),
        ("再生资源包括哪些东西", None),  # (what it includes: no materials)
        ("外商投资信息报告上哪办", "办理地点与时间"),
        ("全局政务公开要做到哪三化", None),  # (到哪 of no office)
        ("成品油零售许可有啥要求", "办理条件"),
        ("典当行设立谁能办", "办理条件"),
        ("拍卖许可怎么整", "办理流程"),
        ("没备案怎么整改", None),  # (整改: to put right, not 整, to get done)
        # (an address changed is the story: where to go is not asked)
        ("回收站换地址了 要重新备案吗", None),
        ("预付卡发卡企业变更地址要重新备案吗", None),
        ("商务局地址", "办理地点与时间"),
    ],
)
def test_the_guide_section_a_question_asks_for(question: str, aspect: str | None) -> None:
    assert asked_aspect(normalize(question)) == aspect


async def test_a_guide_asked_for_two_sections_in_two_clauses_shows_both(default_kb: Services) -> None:
    """再生资源回收备案要带哪些材料，要多久 asks the materials and the time limit: the guide answers with
    both sections, in the order asked, and names the rest; it had shown the time limit only (the
    section asked last). One section asked shows that one, as before."""
    assert asked_aspects(normalize("在哪个网站填？大概要几天")) == ("在线办理", "办理时限")
    assert asked_aspects(normalize("要多久，要多久")) == ("办理时限",)
    assert asked_aspects(normalize("向鼓楼区商务局咨询政策、反映诉求要什么材料")) == ("申请材料",)
    entry = await default_kb.kb.get("guide-recycling-filing")
    assert entry is not None
    sections = dict(entry.sections)
    d = await default_kb.qa.ask("再生资源回收备案要带哪些材料，要多久")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-recycling-filing", "办理时限")
    answer = d.answer or ""
    assert answer.split("\n")[0] == f"【{entry.title}｜申请材料、办理时限】"
    assert sections["申请材料"] in answer and sections["办理时限"] in answer
    assert answer.index(sections["申请材料"]) < answer.index(sections["办理时限"])
    assert sections["收费标准"] not in answer and "收费标准" in answer.split("本指南还包括：")[1]
    one = await default_kb.qa.ask("再生资源回收备案要带哪些材料")
    assert (one.answer or "").startswith(f"【{entry.title}｜申请材料】\n{sections['申请材料']}")


def test_the_section_telling_what_a_question_asks() -> None:
    """``telling_section``: of a guide's sections, the one saying more of the question's words than
    the section asked (all of what that one says); title words, and words said in most sections,
    tell none apart; the section naming the matter is left to the overview."""
    guide = Entry(
        id="guide-x",
        kind="guide",
        title="样板备案",
        answer="",
        sections=[
            ("事项名称", "样板备案，由区局办理。"),
            ("办理条件", "拥有2个直营店，经营满1年。"),
            ("办理流程", "提交申请；专家现场验收；公示5天。"),
            ("办理时限", "公示5天。"),
            ("说明", "未备案的处罚款；直营店不足的不予备案。"),
        ],
    )

    def said(*words: str) -> list[tuple[tuple[str, ...], float]]:
        return [((w,), 0.5) for w in words]

    assert telling_section(guide, said("验收", "公示"), "办理时限") == "办理流程"  # says both
    assert telling_section(guide, said("公示"), "办理时限") is None  # the section asked says it
    assert telling_section(guide, said("直营店"), None) == "办理条件"  # (the first of two saying it)
    assert telling_section(guide, said("样板", "备案"), None) is None  # title words
    assert telling_section(guide, said("区局"), None) is None  # the matter's own section
    assert telling_section(guide, said("专家"), "办理条件") == "办理流程"
    assert telling_section(guide, said("专家", "经营"), "办理条件") is None  # (not all the asked one says)
    assert telling_section(guide, said("罚款"), None) == "说明"
    guide.kind = "faq"
    assert telling_section(guide, said("验收"), None) is None  # (a guide's only)


async def test_a_guide_answers_with_the_section_telling_what_is_asked(default_kb: Services) -> None:
    """报废机动车资质认定要专家现场验收吗，公示几天 asks in two clauses; 几天 names the time limit, but the
    process section states the experts' inspection and the days of notice both: it answers, then the
    time limit. 特许经营备案要几个直营店 names no section: the conditions state the shops. A clause
    that asks for a section keeps it (在哪个系统上填报: 在线办理)."""
    d = await default_kb.qa.ask("报废机动车资质认定要专家现场验收吗，公示几天")
    assert (d.entry_id, d.aspect) == ("guide-scrap-vehicle-qualification", "办理流程")
    assert (d.answer or "").split("\n")[0].endswith("｜办理流程、办理时限】")
    d = await default_kb.qa.ask("特许经营备案要几个直营店")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-franchise-filing", "办理条件")
    assert "2个直营店" in (d.answer or "")
    d = await default_kb.qa.ask("二手车经营主体备案在哪个系统上填报")
    assert (d.entry_id, d.aspect) == ("guide-used-car-entity-filing", "在线办理")


async def test_an_entry_mentioning_a_section_in_passing_does_not_beat_the_guide(default_kb: Services) -> None:
    """Asked for the materials of prepaid-card filing, the guides that list them come first; the FAQ
    on large issuers, whose answer mentions extra materials in passing, does not (ASPECT_PENALTY)."""
    _, cands = default_kb.kb.matcher.search("办单用途预付卡备案要带什么材料？", limit=5)
    assert {c.entry_id for c in cands[:2]} == {
        "guide-prepaid-card-filing",
        "guide-prepaid-card-large-issuer-filing",
    }
    faq = next(c for c in cands if c.entry_id == "faq-circ-006")
    assert faq.coverage >= cands[0].coverage  # it says every word: only the rule puts it behind
    d = await default_kb.qa.ask("办单用途预付卡备案要带什么材料？")
    assert (
        d.status in {"answered", "suggested"} and d.entry_id and d.entry_id.startswith("guide-prepaid-card")
    )


async def test_a_referral_answers_any_section_asked_of_another_bodys_matter(default_kb: Services) -> None:
    """营业执照在哪里办，网上能办不 asks the market regulator's matter and its online channel (在线办理): the
    referral, which names 营业执照 in its questions, is the answer (ask that body), not marked down
    for lacking a guide's section; the guides that list a business licence among their materials
    had been offered instead."""
    question = "营业执照在哪里办，网上能办不"
    _, cands = default_kb.kb.matcher.search(question, limit=5)
    referral = next(c for c in cands if c.entry_id == "ref-samr")
    assert referral.factor == 1.0 and cands[0].entry_id == "ref-samr"
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id) == ("answered", "ref-samr")


async def test_an_entry_naming_the_section_only_in_the_name_of_its_matter_does_not_beat_the_guide(
    default_kb: Services,
) -> None:
    """成品油零售许可要什么条件 asks for the guide's 办理条件. The FAQ 成品油零售资格在哪里办 says 资格, a word
    that can ask for conditions, but only inside the name of the matter: its questions ask where,
    and it never says 条件, the word the question asked with. It was answered with that FAQ. An FAQ
    whose question says the very word asked (寄材料给商务局: 材料) keeps it, whatever it asks last."""
    question = "成品油零售许可 要什么条件"
    q = default_kb.kb.matcher.analyse(question)
    assert (q.aspect, q.aspect_said) == ("办理条件", "条件")
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-refined-oil-retail", "办理条件")
    assert "条件" in (d.answer or "").split("\n")[0]
    mailed = await default_kb.qa.ask("寄材料给商务局 邮编")
    assert mailed.entry_id == "faq-bureau-010"


async def test_only_guides_carry_section_names_and_the_others_share_one_empty_value(
    default_kb: Services,
) -> None:
    """A guide knows its sections; every other doc holds the same empty object (a per-doc empty
    set cost 216 bytes each, 21 MB at 100k entries)."""
    docs = default_kb.kb.index.docs
    guide = next(d for d in docs if d.entry_id == "guide-prepaid-card-filing")
    assert "申请材料" in guide.aspects and "办理时限" in guide.aspects
    others = [d for d in docs if d.kind != "guide"]
    assert others and len({id(d.aspects) for d in others}) == 1 and not others[0].aspects


async def test_a_guide_without_aspect_gives_the_overview(default_kb: Services) -> None:
    entry = await default_kb.kb.get("guide-franchise-filing")
    assert entry is not None
    reply = await default_kb.qa.ask("商业特许经营备案")
    if reply.entry_id == "guide-franchise-filing" and reply.status == "answered":
        assert reply.answer and reply.answer.startswith("【商业特许经营备案】")
    from knowledge.answers import answer_text

    overview = answer_text(entry, None)
    assert overview.startswith("【商业特许经营备案】")
    for name in ("事项名称", "办理条件", "申请材料"):
        assert f"{name}：\n{dict(entry.sections)[name]}" in overview
    assert "本指南还包括：" in overview and "办理时限" in overview


# -- citations and expiry ----------------------------------------------------------------------------


async def test_clause_answers_cite_document_and_clause(seeded: Services) -> None:
    d = await seeded.qa.ask("政务新媒体发布的重要信息多长时间内要转载")
    assert d.status == "answered" and d.entry_id == f"{DOC}/2.5.3"
    assert d.citation == (
        "来源：《鼓楼区商务局2020年政务公开工作实施方案》，鼓商务〔2020〕123号，福州市鼓楼区商务局，2020-11-12，"
        "条款：（五）围绕落实新修订的政府信息公开条例加强制度执行 > 3.加强政府网站与政务新媒体建设"
    )
    assert d.answer is not None
    assert d.answer.startswith("【二、主要任务 > （五）围绕落实新修订的政府信息公开条例加强制度执行 > 3.")
    assert d.answer.endswith("（责任科室：各科室）")
    assert d.source == {
        "title": "鼓楼区商务局2020年政务公开工作实施方案",
        "number": "鼓商务〔2020〕123号",
        "date": "2020-11-12",
        "issuer": "福州市鼓楼区商务局",
        "clause": "二、主要任务 > （五）围绕落实新修订的政府信息公开条例加强制度执行 > 3.加强政府网站与政务新媒体建设",
        "office": "各科室",
    }


async def test_nested_office_is_shown_whole(seeded: Services) -> None:
    d = await seeded.qa.ask("提高市场监管规则和标准公开质量由哪个科室负责")
    assert d.status == "answered" and d.entry_id == f"{DOC}/2.3.1"
    assert d.answer is not None and d.answer.endswith("（责任科室：外资与外经科（行政审批科））")


async def test_expired_policy_carries_a_warning(default_kb: Services) -> None:
    d = await default_kb.qa.ask("小规模纳税人增值税减按1%征收")
    assert d.status != "escalated"  # answered, or offered first (the confidence decides)
    assert d.entry_id is not None and d.entry_id.startswith("policy-small-scale-vat-relief-2020")
    entry = await default_kb.kb.get(d.entry_id)
    assert entry is not None
    assert "⚠ 该政策有效期至2020-05-31，已过期" in citation(entry)
    assert source_of(entry)["valid_until"] == "2020-05-31"


async def test_expiry_depends_on_the_date(services: Services) -> None:
    base = {"kind": "faq", "question": "夜间经济示范街区奖励多少？", "answer": "一次性奖励二十万元。"}
    await services.kb.save_entry(ParsedEntry(id="t-valid", valid_until="2999-12-31", **base))
    entry = await services.kb.get("t-valid")
    assert entry is not None
    assert not is_expired(entry) and "已过期" not in citation(entry)
    assert is_expired(entry, today=date(3000, 1, 1))
    assert "⚠ 该政策有效期至2999-12-31，已过期" in citation(entry, today=date(3000, 1, 1))
    assert source_of(entry)["valid_until"] == "2999-12-31"
    d = await services.qa.ask("夜间经济示范街区奖励多少？")
    assert d.status == "answered" and "已过期" not in d.citation
    assert d.citation == "来源：本局知识库"  # no source given


async def test_citation_with_url_and_illustrative(services: Services) -> None:
    await services.kb.save_entry(
        ParsedEntry(
            id="t-cite",
            kind="faq",
            question="展会补贴什么时候发放？",
            answer="展会结束后按批次审核发放。",
            source={
                "title": "展会补贴通知",
                "number": "测商务〔2021〕9号",
                "date": "2021-02-03",
                "url": "https://x.test/a",
            },
            illustrative=True,
        )
    )
    d = await services.qa.ask("展会补贴什么时候发放？")
    assert d.status == "answered" and d.entry_id == "t-cite"
    assert d.citation.startswith("来源：《展会补贴通知》，测商务〔2021〕9号，2021-02-03（https://x.test/a）")
    assert "部分内容为示例" in d.citation
    assert d.source is not None and d.source["illustrative"] is True


# -- the index follows every change without a restart -------------------------------------------------


async def test_saved_entry_is_answered_at_once(seeded: Services) -> None:
    question = "跨境电商企业出口退税找哪个部门办理？"
    before = await seeded.qa.ask(question)
    assert before.status != "answered"
    await seeded.kb.save_entry(
        ParsedEntry(id="t-new", kind="faq", question=question, answer="向主管税务机关申报出口退税。")
    )
    after = await seeded.qa.ask("跨境电商出口退税找哪个部门")
    assert after.status == "answered" and after.entry_id == "t-new"
    # an edit replaces the old text in the index
    await seeded.kb.save_entry(
        ParsedEntry(
            id="t-new", kind="faq", question=question, answer="出口退税由税务机关办理，商务局不受理。"
        )
    )
    edited = await seeded.qa.ask(question)
    assert edited.entry_id == "t-new" and "商务局不受理" in (edited.answer or "")


async def test_expired_entry_leaves_the_index_at_once(seeded: Services) -> None:
    question = "政务新媒体发布的重要信息多长时间内要转载"
    assert (await seeded.qa.ask(question)).entry_id == f"{DOC}/2.5.3"
    assert await seeded.kb.set_status(f"{DOC}/2.5.3", "expired")
    d = await seeded.qa.ask(question)
    assert d.entry_id != f"{DOC}/2.5.3"
    assert f"{DOC}/2.5.3" not in [s.entry_id for s in d.suggestions]
    assert await seeded.kb.set_status(f"{DOC}/2.5.3", "published")
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and d.entry_id == f"{DOC}/2.5.3"
    assert not await seeded.kb.set_status("no-such-entry", "expired")


async def test_added_alternate_is_matched_at_once(default_kb: Services) -> None:
    phrasing = "想打给你们单位办公室该拨哪个号"
    before = await default_kb.qa.ask(phrasing)
    assert not (before.status == "answered" and before.entry_id == "faq-bureau-002")
    assert await default_kb.kb.add_alternate("faq-bureau-002", phrasing)
    after = await default_kb.qa.ask(phrasing)
    assert after.status == "answered" and after.entry_id == "faq-bureau-002"
    entry = await default_kb.kb.get("faq-bureau-002")
    assert entry is not None and phrasing in entry.alternates
    assert not await default_kb.kb.add_alternate("no-such-entry", phrasing)


async def test_changes_during_a_rebuild_are_not_lost(
    seeded: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full rebuild works from a snapshot; what changes while it runs must survive the swap."""
    kb = seeded.kb
    snapshot_taken, release = threading.Event(), threading.Event()
    prepare = kb.index.prepare

    def slow_prepare(builder):  # every row has been read: the snapshot is taken
        snapshot_taken.set()
        release.wait(10)
        return prepare(builder)

    monkeypatch.setattr(kb.index, "prepare", slow_prepare)
    rebuild = asyncio.create_task(kb.rebuild())
    assert await asyncio.to_thread(snapshot_taken.wait, 10)
    question = "跨境电商企业出口退税找哪个部门办理？"
    await kb.save_entry(ParsedEntry(id="t-during", kind="faq", question=question, answer="向税务机关申报。"))
    await kb.set_status(f"{DOC}/2.5.3", "expired")
    release.set()
    await rebuild
    assert len(kb.index) == 18  # 18 seed entries - 1 expired + 1 new
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and d.entry_id == "t-during"
    d = await seeded.qa.ask("政务新媒体发布的重要信息多长时间内要转载")
    assert d.entry_id != f"{DOC}/2.5.3" and f"{DOC}/2.5.3" not in [s.entry_id for s in d.suggestions]


async def test_many_changes_fold_into_a_rebuild(services: Services) -> None:
    # past the delta limit a full rebuild runs in the background; nothing saved meanwhile is lost
    entries = [
        ParsedEntry(
            id=f"t-bulk-{i}",
            kind="faq",
            question=f"第{i}号测试事项编号{i:04d}怎么办理？",
            answer=f"答案{i}。",
        )
        for i in range(205)
    ]
    for e in entries:
        await services.kb.save_entry(e)
    task = services.kb._rebuild_task
    assert task is not None  # the delta passed 200 entries
    await task
    assert len(services.kb.index) == 205
    d = await services.qa.ask("测试事项编号0204怎么办理")
    assert d.entry_id == "t-bulk-204"


# -- decide: pure thresholds -------------------------------------------------------------------------


def _doc(i: int, parent: str | None = None, answer: str | None = None, kind: str = "faq", asked: bool = True):
    """An indexed entry; ``asked``: with a question of its own (as FAQ entries have)."""
    from knowledge.index import IndexedDoc

    sig = answer or f"answer {i}"
    questions = ((f"q{i}",),) if asked else ()
    return IndexedDoc(
        entry_id=f"e{i}",
        kind=kind,
        title=f"t{i}",
        parent_id=parent,
        key_text="",
        body_text="",
        shared_key="",
        document="",
        questions=questions,
        question_weights=(1.0,) * len(questions),
        question_texts=tuple(f"q{i}" for _ in questions),
        has_number=False,
        has_place=False,
        answer_sig=hash(sig),
    )


def _cand(
    i: int,
    score: float,
    parent: str | None = None,
    answer: str | None = None,
    qsim: float = 0.0,
    kind: str = "faq",
    asked: bool = True,
):
    # (missing: a word of the question it lacks, so that the vague-question rule stays out of the way)
    return Candidate(
        _doc(i, parent, answer, kind, asked), f"e{i}", score, 1.0, 1.0, 1.0, 1.0, qsim, missing=0.5
    )


def _model(bias: float = -8.0, score: float = 10.0) -> ConfidenceModel:
    """A confidence model that reads the score alone: p = sigmoid(bias + score * s), for either group."""
    w = tuple(score if f == "score" else 0.0 for f in FEATURES)
    both = {g: Logistic(w, bias) for g in GROUPS}
    return ConfidenceModel(both, both)


Q = Query("q", "q", "q", ["q"], [1.0], ["q"], False, "", "", None)


@pytest.mark.parametrize(
    ("scores", "status"),
    [
        ([1.0, 0.5], "answered"),  # p = sigmoid(2) = 0.88 >= 0.85
        ([0.6, 0.5], "suggested"),  # p = sigmoid(-2) = 0.12, listed likewise: >= 0.1
        ([0.3, 0.1], "escalated"),  # p = sigmoid(-5)
        ([], "escalated"),
    ],
)
def test_decide_answers_at_the_configured_precision(scores: list[float], status: str) -> None:
    cands = [_cand(i, s) for i, s in enumerate(scores)]
    m = MatchingSettings(precision=0.85, suggest_confidence=0.1)
    v = decide(Q, cands, m, _model())
    assert v.status == status
    if cands:
        assert v.best is cands[0] and v.confidence == pytest.approx(1 / (1 + math.exp(8 - 10 * scores[0])))
    if status == "suggested":
        assert v.alternatives[0] is cands[0]


def test_a_higher_precision_answers_less() -> None:
    cands = [_cand(0, 1.0), _cand(1, 0.5)]  # p = 0.88
    assert decide(Q, cands, MatchingSettings(precision=0.85), _model()).status == "answered"
    assert decide(Q, cands, MatchingSettings(precision=0.9), _model()).status == "suggested"


def test_suggestions_score_at_least_half_the_best() -> None:
    v = decide(
        Q, [_cand(0, 0.6), _cand(1, 0.5), _cand(2, 0.2)], MatchingSettings(suggest_confidence=0.1), _model()
    )
    assert v.status == "suggested" and [c.entry_id for c in v.alternatives] == ["e0", "e1"]


def test_a_question_too_vague_to_pick_one_is_offered_the_candidates() -> None:
    """Unsure of the best (p = sigmoid(-5)), but the best entry holds every word of the question."""
    vague = [_cand(0, 0.3), _cand(1, 0.29)]
    vague[0].missing = 0.0
    assert decide(Q, vague, MatchingSettings(), _model()).status == "suggested"
    assert decide(Q, [_cand(0, 0.3), _cand(1, 0.29)], MatchingSettings(), _model()).status == "escalated"


def test_the_model_groups_entries_by_their_own_questions() -> None:
    """An entry with questions of its own is read by the ``asked`` model, one without (a clause, or a
    kind no model was fitted on) by the ``unasked`` one."""
    asked = {g: Logistic((0.0,) * len(FEATURES), 5.0 if g == "asked" else -5.0) for g in GROUPS}
    model = ConfidenceModel(asked, asked)
    m = MatchingSettings()
    assert decide(Q, [_cand(0, 0.7, asked=True)], m, model).status == "answered"
    assert decide(Q, [_cand(0, 0.7, asked=False, kind="clause")], m, model).status == "escalated"
    assert decide(Q, [_cand(0, 0.7, asked=False, kind="newkind")], m, model).status == "escalated"


def test_decide_treats_same_answer_as_one() -> None:
    v = decide(Q, [_cand(0, 0.7, answer="same"), _cand(1, 0.69, answer="same")], MatchingSettings(), _model())
    assert [c.entry_id for c in v.alternatives] == ["e0"]


def test_decide_prefers_a_policys_own_question() -> None:
    # e1 is a Q&A pair of policy e0
    v = decide(Q, [_cand(0, 0.95), _cand(1, 0.9, parent="e0")], MatchingSettings(), _model())
    assert v.best is not None and v.best.entry_id == "e1"


def test_decide_keeps_a_document_over_its_clause() -> None:
    """A clause is a part of its document, not its answer to the question: asked about the document
    itself (its date, its number), the document answers even with a clause close behind."""
    cands = [_cand(0, 0.92, kind="policy"), _cand(1, 0.8, parent="e0", kind="clause")]
    v = decide(Q, cands, MatchingSettings(), _model())
    assert v.best is not None and v.best.entry_id == "e0"


def test_the_entry_asked_closest_takes_the_last_place_offered() -> None:
    """The offer goes by score; an entry whose own question comes as close as every one offered after
    the best takes the last place (InsuranceQA, 医疗保险盖什么眼镜: 医疗保险什么时候支付眼镜 ranked seventh,
    under entries whose long answers hold more of the question's words): top-3 0.638 -> 0.656; and
    measured against those after the best only, 0.656 -> 0.663."""
    offered = [_cand(0, 0.9, qsim=0.5), _cand(1, 0.8, qsim=0.6), _cand(2, 0.7, qsim=0.4)]
    closer, farther, unasked = _cand(5, 0.6, qsim=0.8), _cand(6, 0.6, qsim=0.55), _cand(7, 0.6)
    assert [c.entry_id for c in with_closest_asked(offered, [*offered, farther, closer], 3)] == [
        "e0",
        "e1",
        "e5",
    ]
    assert with_closest_asked(offered, [*offered, farther], 3) == offered  # (not closer than e1's 0.6)
    assert with_closest_asked(offered[:2], [*offered[:2], closer], 3)[-1] is closer  # (a place left: added)
    guides = [_cand(0, 0.9, kind="guide"), _cand(1, 0.8, kind="guide")]
    assert with_closest_asked(guides, [*guides, unasked], 3) == guides  # (no own question: nothing closer)
    assert with_closest_asked(offered[:1], [*offered[:1], closer], 3) == offered[:1]  # (the best alone)
    # The best asked word for word: the others offered are what the closest asked is measured against.
    asked = [_cand(0, 0.9, qsim=1.0), _cand(1, 0.8, qsim=0.4), _cand(2, 0.7, qsim=0.7)]
    assert with_closest_asked(asked, [*asked, closer], 3)[-1] is closer


def test_shipped_model_reads_every_feature() -> None:
    """The shipped weights were fitted on the features the code computes (bench/calibrate.py)."""
    model = shipped_model()
    for part in (model.answer, model.listed):
        assert set(part) == set(GROUPS)
        assert all(len(lr.weights) == len(FEATURES) for lr in part.values())


def test_features_of_a_match() -> None:
    """Each feature from its candidate fields: margins over the runner-up, ties, short questions."""
    best = _cand(0, 0.8, qsim=0.9)
    best.factor, best.missing, best.spec_coverage, best.spec_missing, best.unsaid = 0.7, 0.2, 0.6, 0.3, 0.4
    runner = _cand(1, 0.78, qsim=0.5)
    runner.spec_coverage = 0.5
    x = dict(zip(FEATURES, features(Q, best, [runner, _cand(2, 0.1)]), strict=True))
    assert x["score"] == 0.8 and x["margin"] == pytest.approx(0.02)
    assert x["question_gap"] == pytest.approx(0.4)  # (its own closeness, 0.9, is no feature)
    assert x["spec_coverage"] == 0.6 and x["spec_gap"] == pytest.approx(0.1) and x["spec_missing"] == 0.3
    assert x["missing"] == 0.2 and x["unsaid"] == 0.4 and x["off_type"] == 1.0
    assert x["ties"] == pytest.approx(1 / 3)  # e1 within TIE, e2 not
    assert x["short"] == 1.0  # one informative word
    alone = dict(zip(FEATURES, features(Q, best, []), strict=True))
    assert alone["margin"] == 0.8 and alone["ties"] == 0.0


@pytest.mark.parametrize(
    ("question", "form"),
    [
        ("为什么要办预付卡", "why"),
        ("什么时候办预付卡最好", "when"),
        ("怎么申请，要多久", "when"),  # the form named last
        ("预付卡备案去哪里办", "where"),
        ("注册资金最少要多少", "much"),
        ("外资年报怎么报", "how"),
        ("哪些政府信息不公开", "what"),
        ("六稳指的是哪6个方面", "what"),  # (哪六个, as normalized)
        ("哪三类企业要备案", "what"),
        ("理发店需要备案吗", "whether"),
        # (colloquially, a clause ending in 不 or 没, or a verb said either way, asks whether)
        ("二手车备案要钱不", "whether"),
        ("特许经营备案了没", "whether"),
        ("收不收费", "whether"),
        ("不", None),
        ("说不定", None),
        ("营业执照", None),
        ("一次能申请几件", "much"),
        ("消费券一次能用几张", "much"),
        ("这部法律有几章", "much"),
        ("要几天", "when"),
        ("新外贸法啥时施行", "when"),  # (啥时, said for 啥时候: not 啥, what)
        ("外资年报啥时候报", "when"),
        ("二手车备案啥时间能办好", "when"),
        # A rough number (十几件, 二十几天, 好几趟) asks nothing.
        ("我这个月可能要申请十几件", None),
        ("等了二十几天了", None),
        ("让人跑了好几趟", None),
    ],
)
def test_the_form_a_question_asks_in(question: str, form: str | None) -> None:
    assert asked_form(question) == form


@pytest.mark.parametrize(
    ("question", "part"),
    [
        ("怎么查它有没有备过案，怕交了钱老板跑路", "怎么查它有没有备过案"),  # the worry after it asks nothing
        ("卡里还有钱，能退吗", "卡里还有钱 能退吗"),  # the story before it stays: the question ends it
        ("预付卡备案 材料", "预付卡备案 材料"),  # no clause names a form: the whole fragment
        ("预付卡备案要多久", "预付卡备案要多久"),
    ],
)
def test_the_asking_part_of_a_question_ends_with_its_last_asking_clause(question: str, part: str) -> None:
    assert asking_part(normalize(question)) == normalize(part)


@pytest.mark.parametrize(
    ("question", "years"),
    [
        ("2021年的政务公开方案出了吗", ("2021",)),
        ("2020年5月那批消费券一份多少钱，有哪几种面额", ("2020",)),
        # the year a story tells, before the clause that asks, is not what is asked about
        ("公司抽屉里还有张2018年办的对外贸易经营者备案登记表，现在还有用吗", ()),
        ("鼓楼区2021年政务公开工作要点", ("2021",)),  # no clause asks: the whole fragment
        ("卡里充了2000块，能退吗", ()),  # an amount, not a year
    ],
)
def test_the_years_a_question_asks_of(question: str, years: tuple[str, ...]) -> None:
    assert asked_years(normalize(question)) == years


@pytest.mark.parametrize(
    "question", ["2021年的政务公开方案发布了吗", "2022年政务公开要点出了吗", "2019年的实施方案有哪些内容"]
)
async def test_a_question_of_another_year_is_not_answered_by_this_years_plan(
    seeded: Services, question: str
) -> None:
    """The plan is 2020's (its title, its number 鼓商务〔2020〕123号): asked of another year, it is
    about another document, however many words they share."""
    d = await seeded.qa.ask(question)
    assert d.status != "answered", await seeded.qa.explain(question, 2)


@pytest.mark.parametrize(
    ("question", "numbers"),
    [
        ("国办发17号文的全文", ("17",)),
        ("鼓政办〔2020〕65号是哪天印发的", ("65",)),
        ("国务院令第711号什么时候施行", ("711",)),
        ("123号文是哪年发的", ("123",)),
        ("国办发2020第17号文跟这个方案有关系吗", ()),  # what it is to the plan: the plan says that
        ("鼓政办65号是什么通知", ()),
        ("年报5月10号前交什么内容", ()),  # a day, not a document
        ("营业执照30号之前下来，什么时候备案", ()),
        ("第3号窗口什么时候开门", ()),
        ("财政部税务总局公告2020年第13号什么时候到期", ("13",)),
    ],
)
def test_the_documents_a_question_asks_the_date_or_text_of(question: str, numbers: tuple[str, ...]) -> None:
    from knowledge.retrieve import asked_documents

    assert asked_documents(normalize(question)) == numbers


@pytest.mark.parametrize(
    "question", ["国办发17号文的全文", "鼓政办65号文什么时候废止", "国办发17号文里都讲了哪些要点"]
)
async def test_a_document_the_plan_only_cites_is_not_answered_by_it(seeded: Services, question: str) -> None:
    """The plan cites 国办发〔2020〕17号 and 鼓政办〔2020〕65号 in its preamble; their text, date or
    validity it does not state (the plan, numbered 123, had answered them). What they are to it, it
    does say."""
    d = await seeded.qa.ask(question)
    assert d.status != "answered", await seeded.qa.explain(question, 2)
    d = await seeded.qa.ask("国办发2020第17号文跟这个方案有关系吗")
    assert d.status == "answered" and "国办发〔2020〕17号" in re.sub(r"\s+", "", d.answer or "")


async def test_a_document_asked_by_its_own_number_answers(default_kb: Services) -> None:
    """国务院令第711号 is the disclosure regulation's own number: asked when it took effect, the
    regulation answers (its Q&A had only been offered); asked of a number no entry has, none does
    (国办发〔2020〕24号文讲了什么 had been answered with 国办发〔2020〕16号)."""
    d = await default_kb.qa.ask("国务院令第711号什么时候施行")
    assert (d.status, d.entry_id) == ("answered", "policy-ogi-regulation-2019")
    assert (await default_kb.qa.ask("国办发〔2020〕24号文讲了什么")).status != "answered"


async def test_a_question_of_the_plans_own_year_is_answered_by_it(seeded: Services) -> None:
    d = await seeded.qa.ask("2020年的政务公开方案文号是多少")
    assert d.status == "answered" and "鼓商务〔2020〕123号" in (d.answer or "")


@pytest.mark.parametrize(
    "question",
    [
        "文件什么时候发的",
        "这个文件啥时候出的",
        "方案什么时候出台的",
        "这文件啥时候下发的",
        "落款时间是什么时候",
    ],
)
async def test_a_document_asked_when_it_came_out_in_any_words_gives_its_date(
    seeded: Services, question: str
) -> None:
    """发的 / 出的 / 出台 / 下发 / 落款时间 ask for the document's date as 发布 does (``META_QUESTIONS``):
    文件什么时候发的 was answered with the clause on 规范性文件, which says 文件 too."""
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and "2020年11月12日" in (d.answer or ""), await seeded.qa.explain(
        question, 2
    )


@pytest.mark.parametrize("question", ["哪个部门出的这个方案", "方案是哪个单位印发的"])
async def test_a_document_asked_who_issued_it_names_its_issuer(seeded: Services, question: str) -> None:
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and "发布机关：福州市鼓楼区商务局" in (d.answer or "")


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("六保是哪六保", "policy-six-stabilities-six-guarantees-2020#qa2"),
        ("六稳是哪六稳", "policy-six-stabilities-six-guarantees-2020#qa1"),
    ],
)
async def test_which_n_asks_which_ones_not_for_a_number(
    default_kb: Services, question: str, entry: str
) -> None:
    """哪六保 asks which ones, as 哪些 does: no entry writes the 6 (六保是哪六保 was only offered)."""
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id) == ("answered", entry), await default_kb.qa.explain(question, 2)


@pytest.mark.parametrize("question", ["这个方案根据哪些上级文件制定的", "方案的上级文件有哪些"])
async def test_a_document_asked_for_its_higher_documents_names_its_basis(
    seeded: Services, question: str
) -> None:
    """上级文件 are the documents it is based on (制定依据), as 依据哪些文件 asks."""
    d = await seeded.qa.ask(question)
    assert d.status == "answered" and "国办发〔2020〕17号" in (d.answer or ""), await seeded.qa.explain(
        question, 2
    )


@pytest.mark.parametrize(
    ("question", "asking"),
    [("要严格执行哪部条例", "哪部"), ("发卡归哪级商务部门管", "哪级"), ("依据哪条规定", "哪条")],
)
def test_which_with_a_measure_word_only_asks(seeded: Services, question: str, asking: str) -> None:
    """哪部 / 哪级 / 哪条 ask which one, as 哪个 does: jieba knows them not, and as unknown words they
    weighed 0.85, a term every entry lacked."""
    q = seeded.kb.matcher.analyse(question)
    assert asking not in q.words and q.words


async def test_which_law_is_answered_by_the_clause_naming_it(seeded: Services) -> None:
    d = await seeded.qa.ask("要严格执行哪部条例")
    assert d.status == "answered" and "政府信息公开条例" in (d.answer or ""), await seeded.qa.explain(
        "要严格执行哪部条例", 2
    )


async def test_a_document_asked_for_its_contents_lists_its_parts(seeded: Services) -> None:
    """主要内容 is asked of the document, which answers with its outline (the clause on training,
    which says 内容, had been offered first)."""
    d = await seeded.qa.ask("方案的主要内容")
    assert d.status == "answered" and d.entry_id == DOC
    assert "（三）围绕优化营商环境加强政务信息公开" in (d.answer or "")


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("12小时内没转发会被通报吗", True),
        ("回收站没去备案会被罚多少", True),
        ("申请表上要的信息我写得不清楚会咋样", True),
        ("申请的信息不是商务局做的会咋处理", False),  # not a duty left undone: who made it
        ("重要信息要在多少小时内转发", False),
    ],
)
def test_a_question_asking_what_comes_of_not_doing_something(
    seeded: Services, question: str, asks: bool
) -> None:
    assert seeded.kb.matcher.analyse(question).asks_consequence is asks


@pytest.mark.parametrize(
    "question", ["12小时内没转发会被通报吗", "区政府新媒体的信息没在12小时内转发会怎么处理"]
)
async def test_an_entry_stating_a_duty_does_not_answer_what_comes_of_neglecting_it(
    seeded: Services, question: str
) -> None:
    """The plan says to repost within 12 hours; what happens otherwise it does not say (both had been
    answered with its clause, with confidence)."""
    d = await seeded.qa.ask(question)
    assert d.status != "answered", await seeded.qa.explain(question, 2)


async def test_a_guide_asked_what_comes_of_not_doing_it_answers_with_the_penalty(
    default_kb: Services,
) -> None:
    """没备案就搞加盟被查到罚多少钱: 多少钱 names the fee section, but what is asked is the penalty,
    which the franchise guide states in its 说明 (the fee section says no fee is charged)."""
    for question in ("没备案就搞加盟被查到罚多少钱", "搞加盟没去备案会不会被罚"):
        d = await default_kb.qa.ask(question)
        assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-franchise-filing", "说明"), question
        assert "处1万元以上5万元以下罚款" in (d.answer or "")


async def test_an_entry_stating_the_penalty_still_answers(default_kb: Services) -> None:
    d = await default_kb.qa.ask("没资质收报废车被抓到怎么罚")
    assert (d.status, d.entry_id) == ("answered", "faq-circ-017")


async def test_a_clause_after_the_question_does_not_set_what_is_asked(default_kb: Services) -> None:
    """怎么查它有没有在商务部门备过案，怕交了钱老板跑路 asks how to check a filing; the worry after it
    (交了钱) named the fee section, and the FAQ on the filing fee was answered. What is asked (form,
    section, number, place) is read up to the last clause that asks."""
    question = "家门口新开的健身房在推年卡，怎么查它有没有在商务部门备过案，怕交了钱老板跑路"
    q = default_kb.kb.matcher.analyse(question)
    assert (q.aspect, q.form) == (None, "whether")
    d = await default_kb.qa.ask(question)
    assert d.entry_id != "faq-circ-003"
    assert "faq-circ-004" in [d.entry_id, *(s.entry_id for s in d.suggestions)]


async def test_which_road_asks_a_place(default_kb: Services) -> None:
    """商务局在哪条路上 asks where, as 在哪 at the end of a clause does (鼓楼商务局在哪，电话多少 asks
    where and a number: the phone FAQ, stating no address, was answered with): an entry stating no
    place is marked down. 在哪个网站 asks which site."""
    for question in (
        "商务局在哪条路上",
        "商务局在哪",
        "商务局地址",
        "鼓楼商务局在哪，电话多少",
        "商务局在哪 几点上班",
    ):
        assert default_kb.kb.matcher.analyse(question).asks_place, question
    for question in ("商务局有哪些职责", "在哪个网站填报"):
        assert not default_kb.kb.matcher.analyse(question).asks_place, question
    d = await default_kb.qa.ask("鼓楼商务局在哪，电话多少")
    assert d.entry_id != "faq-bureau-002" and "faq-bureau-002" not in [s.entry_id for s in d.suggestions[:1]]


def test_an_entry_whose_own_questions_ask_in_another_form_is_told() -> None:
    """Only entries with questions of their own, none of them in a form asked, are marked; a
    question that names no form marks none."""
    import dataclasses

    why = dataclasses.replace(_doc(0), question_texts=("为什么要办预付卡", "预付卡好不好"))
    where = dataclasses.replace(_doc(1), question_texts=("哪里办预付卡",))
    mixed = dataclasses.replace(_doc(2), question_texts=("哪里办预付卡", "为何办预付卡"))
    docs = [why, where, mixed, _doc(3, asked=False)]
    assert other_form(("why",), docs, question_forms) == [1]
    assert other_form((None,), docs, question_forms) == [] and other_form((), docs, question_forms) == []
    # A question asked in clauses of several forms is in an entry's form when one of them is (哪里办，
    # 为什么要办: where, then why).
    assert other_form(("where", "why"), docs, question_forms) == []
    # A question naming two forms asks in both: 去哪一级 is where, though 哪一 (what) is named last.
    both = [dataclasses.replace(_doc(4), question_texts=("应该去哪一级商务部门备案",))]
    assert other_form(("where",), both, question_forms) == [] and other_form(
        ("why",), both, question_forms
    ) == [0]


def test_a_key_field_naming_more_of_the_question_tells_close_answers_apart() -> None:
    """Two answers within TIE of each other are tied, unless one's key field (title, headings,
    questions) holds question words the other's lacks while lacking none the other holds, and the
    other's own question is not the closer one."""
    q = Query("q", "q", "ab", ["a", "b"], [0.5, 0.5], ["a", "b"], False, "", "", None)
    best, runner = _cand(0, 0.8), _cand(1, 0.79)
    best.key_words, runner.key_words = 0b11, 0b01  # the best's key holds both words, the runner's one
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["key_gap"] == pytest.approx(0.5)
    assert not tied(list(x.values()))
    best.key_words, runner.key_words = 0b01, 0b10  # each names a different word: no gap, tied
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["key_gap"] == 0.0 and tied(list(x.values()))
    best.key_words, runner.key_words = 0b11, 0b01
    q.asking = 0b10  # b only asks (条件): a key naming it tells nothing apart
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["key_gap"] == 0.0 and tied(list(x.values()))
    q.asking = 0
    runner.question_sim = 0.9  # the runner's own question is much closer: tied whatever the key says
    assert tied(features(q, best, [runner]))


def test_a_closer_own_question_does_not_set_apart_an_answer_lacking_a_word_the_runner_up_names() -> None:
    """Within TIE, an answer whose own question is the closer one is still tied with a runner-up
    whose key field names a word of the question's matter that it does not say at all (``outnamed``);
    not when it says that word, when the word is light or only asks, or when its own key field
    outweighs the runner-up's (``key_gap``)."""
    q = Query("q", "q", "abc", ["a", "b", "c"], [0.5, 0.7, 0.1], ["a", "b", "c"], False, "", "", None)
    best, runner = _cand(0, 0.66, qsim=0.57), _cand(1, 0.64, kind="guide", asked=False)
    best.key_words, runner.key_words = 0b010, 0b001  # best's question names b, the guide's title a
    best.said_words = 0b110  # it never says a
    best.word_spec = runner.word_spec = [0.5, 0.2, 0.1]
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["outnamed"] == 1.0 and x["key_gap"] == 0.0 and tied(list(x.values()))
    best.said_words = 0b111  # it says a in its answer: its closer question sets it apart
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["outnamed"] == 0.0 and not tied(list(x.values()))
    best.said_words, runner.key_words = 0b110, 0b100  # the runner-up names only c, a light word
    assert features(q, best, [runner])[FEATURES.index("outnamed")] == 0.0
    runner.key_words, q.asking = 0b001, 0b001  # a only asks (条件): naming it tells no matter
    assert features(q, best, [runner])[FEATURES.index("outnamed")] == 0.0
    q.asking = 0
    best.word_spec = runner.word_spec = [0.1, 0.8, 0.1]  # best's key names far more: apart
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["outnamed"] == 1.0 and x["key_gap"] > 0.0 and not tied(list(x.values()))
    runner.score = 0.6  # no longer within TIE: the margin decides
    assert not tied(features(q, best, [runner]))


def test_a_key_field_naming_the_specific_words_outweighs_one_naming_common_ones() -> None:
    """When each key field names question words the other's lacks, the best's are weighed against
    the runner-up's by how specific each word is here: it is apart only when its words outweigh the
    runner-up's twice over."""
    q = Query("q", "q", "abc", ["a", "b", "c"], [0.5, 0.5, 0.5], ["a", "b", "c"], False, "", "", None)
    best, runner = _cand(0, 0.8), _cand(1, 0.79)
    best.key_words, runner.key_words = 0b011, 0b100
    best.word_spec = runner.word_spec = [0.5, 0.4, 0.1]  # c, named by the runner-up alone, is common
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["key_gap"] == pytest.approx((0.9 - 2 * 0.1) / 1.0)
    assert not tied(list(x.values()))
    best.word_spec = runner.word_spec = [0.3, 0.0, 0.2]  # c weighs more than half of what a does
    x = dict(zip(FEATURES, features(q, best, [runner]), strict=True))
    assert x["key_gap"] == 0.0 and tied(list(x.values()))


def test_a_runner_up_asked_by_the_same_question_is_a_duplicate() -> None:
    """Two entries repeating one question (an imported FAQ's duplicates) are a duplicate pair: tied,
    so offered together, and the listed model may read them as likely to hold a right answer, the
    answer model never as making the best one likelier."""
    import dataclasses

    best = _cand(0, 0.8, qsim=0.9)
    same = Candidate(dataclasses.replace(_doc(1), question_texts=("q0",)), "e1", 0.8, 1.0, 1.0, 1.0, 1.0, 0.9)
    x = dict(zip(FEATURES, features(Q, best, [same]), strict=True))
    assert x["duplicate"] == 1.0 and tied(list(x.values()))
    assert features(Q, best, [_cand(1, 0.8, qsim=0.9)])[FEATURES.index("duplicate")] == 0.0
    assert features(Q, best, [])[FEATURES.index("duplicate")] == 0.0
    guide = _cand(2, 0.8, asked=False)  # no questions of its own: never a duplicate
    assert features(Q, guide, [same])[FEATURES.index("duplicate")] == 0.0
    assert SIGNS["duplicate"] == -1 and LISTED_SIGNS["duplicate"] == 1
    assert all(LISTED_SIGNS[f] == SIGNS[f] for f in FEATURES if f != "duplicate")


def test_an_answer_lacking_what_is_asked_is_not_apart_from_a_close_one_that_states_it() -> None:
    """An FAQ asked almost word for word but not stating what is asked (the materials a guide lists:
    its ``factor`` is below 1) is tied with a runner-up within TIE that states it, however much
    closer its own question is; further apart, or both lacking it, the question gap decides as
    before."""
    best, runner = _cand(0, 0.80, qsim=0.9), _cand(1, 0.79, kind="guide", asked=False)
    assert not tied(features(Q, best, [runner]))  # its own question is far closer: apart
    best.factor = 0.7
    x = dict(zip(FEATURES, features(Q, best, [runner]), strict=True))
    assert x["off_gap"] == 1.0 and tied(list(x.values()))
    runner.factor = 0.7  # both lack it: the question gap decides again
    assert features(Q, best, [runner])[FEATURES.index("off_gap")] == 0.0
    assert not tied(features(Q, best, [runner]))
    runner.factor, runner.score = 1.0, 0.70  # not within TIE: apart
    assert not tied(features(Q, best, [runner]))
    assert features(Q, best, [])[FEATURES.index("off_gap")] == 0.0


def test_rule_only_features_are_never_fitted() -> None:
    """A feature of sign 0 (``off_gap``: only ``tied`` reads it) weighs 0 in every fitted model,
    however well it would predict the label."""
    from bench.calibrate import fit, fit_signed

    assert SIGNS["off_gap"] == 0 and LISTED_SIGNS["off_gap"] == 0
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURES)))
    col = FEATURES.index("off_gap")
    y = (x[:, col] + 0.1 * rng.random(200) > 0.5).astype(float)  # the label follows off_gap alone
    assert fit(x, y, np.ones(200))[0][col] > 1.0  # fitted, it would weigh much
    for directions in (SIGNS, LISTED_SIGNS):
        assert fit_signed(x, y, np.ones(200), directions)[0][col] == 0.0


def test_a_clause_after_the_question_asking_nothing_is_story(seeded: Services) -> None:
    """Words no entry holds weigh ``STORY_WEIGHT`` outside the clause that asks: before it, and after
    it when the clauses after it ask nothing (我有点担心泄露); in it they weigh fully. When the last
    clause asks, it is the one."""
    m = seeded.kb.matcher
    q = m.analyse("防疫时候登记的个人信息咋处理的？我有点担心泄露")
    w = dict(zip(q.words, q.weights, strict=True))
    assert w["泄露"] == pytest.approx(STORY_WEIGHT * m.lex.informativeness("泄露"))
    assert w["防疫"] == pytest.approx(m.lex.informativeness("防疫"))  # (in the asking clause)
    q = m.analyse("我有点担心泄露，防疫时候登记的个人信息咋处理的")
    w = dict(zip(q.words, q.weights, strict=True))
    assert w["泄露"] == pytest.approx(STORY_WEIGHT * m.lex.informativeness("泄露"))
    assert w["防疫"] == pytest.approx(m.lex.informativeness("防疫"))


def test_calibration_holds_out_what_it_is_told() -> None:
    """bench/calibrate.py fits on the resident batches named and leaves out the batches held, of the
    resident and seed sets alike; the dev sets, the FAQ set and InsuranceQA are always fitted."""
    from bench.calibrate import _held

    fitted, hold = {"a", "b"}, {"h"}
    assert not _held("default/resident_eval/a", fitted, hold)
    assert _held("default/resident_out_of_scope/c", fitted, hold)  # a batch not fitted on
    assert _held("seed/seed_eval/h", fitted, hold) and _held("seed/seed_out_of_scope/h", fitted, hold)
    assert not _held("seed/seed_eval/g", fitted, hold)
    assert not _held("seed/dev_seed/dev", fitted, {"dev"})
    assert not _held("default/faq_eval/a", set(), hold)
    assert not _held("insuranceqa/questions/dev", fitted, {"dev"})


async def test_calibration_reads_the_rules_the_decision_reads(default_kb: Services) -> None:
    """bench/calibrate.py's statuses hold back a confident best entry as the decision does: ``thin``
    reads the question too (中午吃啥好呢 names one word; 商务局中午休不休息, its matter)."""
    from bench.calibrate import Examples, outcome

    m = default_kb.kb.matcher
    for said in ("中午吃啥好呢", "商务局中午休不休息"):
        q, cands = m.search(said, limit=10)
        top = distinct(cands, 3)
        x = np.asarray([features(q, top[0], top[1:])])
        sure = np.ones(1)  # (whatever the model: the rules alone)
        one = Examples(
            x,
            sure,
            sure,
            np.asarray(["default"]),
            ["default/x/a"],
            np.zeros(1, bool),
            np.asarray(["asked"]),
            [q],
        )
        d = await default_kb.qa.ask(said)
        assert outcome(sure, sure, default_kb.qa.settings, one)[0] == d.status, said
    assert d.status == "answered"


async def test_features_on_real_questions(default_kb: Services) -> None:
    """What the re-ranker measures: an entry lacking the question's rarest word says so (missing),
    a word every entry holds tells nothing (specificity), an FAQ asked in other words than its own
    question has words of its own question unsaid."""
    m = default_kb.kb.matcher
    _, cands = m.search("外资企业信息报告要什么材料", limit=5)
    best = cands[0]
    assert best.coverage > 0.9 and best.missing < 0.1 and best.spec_coverage > 0.9
    _, cands2 = m.search("外资企业信息报告和火星移民", limit=5)
    assert cands2[0].missing > 0.5 and cands2[0].spec_missing > 0.5
    common, rare = m._specificity(["备案", "火星移民"], [1.0, 1.0])
    assert common < rare == 1.0  # a word many entries hold tells them apart less; one none holds, most
    _, asked = m.search("开店发会员储值卡要去商务局备案吗？多久内要办？", limit=3)
    assert asked[0].entry_id == "faq-circ-001" and asked[0].unsaid == 0.0  # asked word for word
    _, other = m.search("发储值卡要备案吗", limit=3)
    faqs = [c for c in other if c.closest]
    assert faqs and all(c.unsaid > 0.5 for c in faqs)  # 个体户 / 餐厅 of their own questions, unasked


async def test_unsaid_is_worked_out_when_read(default_kb: Services) -> None:
    """Only the best candidate's ``unsaid`` is read by the decision, so each candidate works it out
    when first read: the same value as the rule gives for its closest own question, every time."""
    m = default_kb.kb.matcher
    q, cands = m.search("商务局办公地址", limit=10)
    assert all(c._unsaid is None for c in cands)  # nothing worked out yet
    for c in cands:
        assert c.unsaid == m._unsaid(q, c.closest) == c.unsaid
    assert any(c.unsaid > 0 for c in cands) and all(c._unsaid is not None for c in cands)


# -- bad input: a status and a clear reply, never an exception -----------------------------------------

BAD_INPUT = [
    ("", True, EMPTY_NOTICE),
    ("   \n\t ", True, EMPTY_NOTICE),
    ("问" * 2001, True, "问题太长了（超过 2000 字）"),
    ("😀🎉👍", True, NO_TEXT_NOTICE),
    ("？！。。。", True, NO_TEXT_NOTICE),
    ("\x00\x01\x02\x1b[31m", False, None),
    ("\x00\x01\x02", True, EMPTY_NOTICE),
    ("Hello, how do I apply for the 外资 备案?", False, None),
    ("'; DROP TABLE entries; --", False, None),
    ("<script>alert('x')</script>", False, None),
    ("SELECT * FROM entries WHERE 1=1", False, None),
    ("%s %d {0} ${x} \\x00", False, None),
]


@pytest.mark.parametrize(
    ("text", "invalid", "notice"), BAD_INPUT, ids=[f"bad{i}" for i in range(len(BAD_INPUT))]
)
async def test_bad_input_gets_a_status_and_a_clear_reply(
    seeded: Services, text: str, invalid: bool, notice: str | None
) -> None:
    before = await seeded.kb.count()
    d = await seeded.qa.ask(text)
    assert d.status in STATUSES
    assert d.invalid is invalid
    if invalid:
        assert d.status == "escalated" and d.answer is None
        assert notice is not None and d.notice.startswith(notice)
        assert len(d.question) <= 200
    elif d.status == "escalated":  # (letters without Chinese: told the bot answers Chinese questions)
        assert d.notice == (NOT_CHINESE_NOTICE if not_chinese(text) else ESCALATE_NOTICE)
    json.dumps(d.to_json())  # always serializable for `ask --json`
    assert await seeded.kb.count() == before
    assert len(seeded.kb.index) == before
    assert (await seeded.qa.ask("这个方案的文号是多少？")).status == "answered"


async def test_exactly_the_limit_is_still_a_question(seeded: Services) -> None:
    d = await seeded.qa.ask(("这个方案的文号是多少？" * 200)[:2000])
    assert not d.invalid and d.status in STATUSES


async def test_empty_knowledge_base_escalates(services: Services) -> None:
    d = await services.qa.ask("这个方案的文号是多少？")
    assert d.status == "escalated" and not d.invalid and d.entry_id is None


async def test_index_loads_in_batches(seeded: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are read a batch at a time; every published entry arrives, exactly once."""
    import knowledge.store

    before = sorted(d.entry_id for d in seeded.kb.index.docs)
    monkeypatch.setattr(knowledge.store, "LOAD_BATCH", 3)
    count = await seeded.kb.rebuild()
    assert count == len(before) == 18
    assert sorted(d.entry_id for d in seeded.kb.index.docs) == before
    d = await seeded.qa.ask("这个方案的文号是多少？")
    assert d.status == "answered" and "鼓商务〔2020〕123号" in (d.answer or "")


async def test_tokens_cached_in_an_older_layout_are_redone(seeded: Services) -> None:
    """A token cache written before the texts were cached (or by another lexicon) is redone at load."""
    from sqlalchemy import select, update

    from knowledge.models import Entry

    async with seeded.kb.sessions() as session, session.begin():
        await session.execute(
            update(Entry).values(tokens={"key": [], "body": [], "q": []}, token_sig=seeded.kb.lex.signature)
        )
    assert await seeded.kb.rebuild() == 18
    async with seeded.kb.sessions() as session:
        sigs = set(await session.scalars(select(Entry.token_sig)))
    assert sigs == {seeded.kb.token_sig}
    d = await seeded.qa.ask("这个方案的文号是多少？")
    assert d.status == "answered" and "鼓商务〔2020〕123号" in (d.answer or "")


async def test_postings_built_in_batches_are_the_per_doc_bm25f_weights(seeded: Services) -> None:
    """A build reduces each batch of rows to distinct (word, doc) pairs; however the rows are cut
    into batches, every posting weight is what ``_bm25f`` (the formula of the delta segment) gives."""
    from sqlalchemy import select

    from knowledge.index import Index, IndexBuilder, _bm25f
    from knowledge.models import Entry

    async with seeded.kb.sessions() as session:
        rows = list(
            await session.scalars(select(Entry).where(Entry.status == "published").order_by(Entry.id))
        )
    lex = seeded.kb.lex
    one, batched = Index(lex), Index(lex)
    one.build((r, r.tokens) for r in rows)
    builder = IndexBuilder(batched)
    for i in range(0, len(rows), 4):
        builder.add((r, r.tokens) for r in rows[i : i + 4])
    batched.install(builder)
    main = one._main
    for tok in main.vocab:
        ids, ws = one.postings(tok)
        ids2, ws2 = batched.postings(tok)
        assert ids.tolist() == ids2.tolist() and ws.tolist() == ws2.tolist()
        assert list(ids) == sorted(ids) and len(ids) == main.doc_freq(tok)
    for i, r in enumerate(rows):
        key = [lex.canonical(t) for t in r.tokens["key"]]
        body = [lex.canonical(t) for t in r.tokens["body"]]
        expect = _bm25f(key, body, main.doc_freq, len(rows), one._avg_key, one._avg_body)
        for tok, w in expect.items():
            ids, ws = one.postings(tok)
            assert ws[list(ids).index(i)] == pytest.approx(w, rel=1e-5)
        for tok in set(key):
            assert i in one.key_postings(tok)


async def test_common_words_keep_dense_weights_equal_to_their_postings(seeded: Services) -> None:
    """A word in DENSE_SHARE of the docs or more also has its weights as one array over the docs:
    the same numbers as its postings, zero elsewhere; rarer words have none."""
    from knowledge.index import DENSE_SHARE

    await seeded.kb.rebuild()  # a full build (the import added its entries to the delta)
    index = seeded.kb.index
    n = len(index.docs)
    dense_words = 0
    for tok in index._main.vocab:
        ids, ws = index.postings(tok)
        dense = index.dense_weights(tok)
        if len(ids) < DENSE_SHARE * n:
            assert dense is None, tok
            continue
        dense_words += 1
        assert dense is not None and dense.dtype == ws.dtype and len(dense) == n
        assert dense[ids].tolist() == ws.tolist()
        assert np.count_nonzero(dense) == np.count_nonzero(ws)
    assert dense_words > 0  # the seed document has common words: the test covers both kinds


async def test_candidates_stay_exact_with_dense_words_new_docs_and_removed_ones(
    seeded: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docs added since the build (only in postings) and removed ones (tombstones) are scored right
    next to the common words' dense weights: the candidates are the best of every doc's full sum."""
    import knowledge.retrieve

    kb = seeded.kb
    await kb.rebuild()  # a full build (the import added its entries to the delta)
    question = "政务公开工作要点责任科室信息公开"
    await kb.save_entry(
        ParsedEntry(id="t-new", kind="faq", question=question, answer="政务公开工作由办公室负责。")
    )
    removed = next(c.entry_id for c in kb.matcher.search(question)[1] if c.entry_id != "t-new")
    await kb.set_status(removed, "expired")
    index = kb.index
    assert any(index.dense_weights(t) is not None for t in set(kb.matcher.analyse(question).tokens))
    monkeypatch.setattr(knowledge.retrieve, "CANDIDATES", 5)
    q = kb.matcher.analyse(question)
    top, scores = kb.matcher._retrieve(q)
    every = np.zeros(len(index.docs), dtype=np.float32)
    for tok in set(q.tokens):
        ids, ws = index.postings(tok)
        np.add.at(every, ids, ws)
    every[~index.alive] = 0
    expect = np.sort(every[every > 0])[::-1][:5]
    assert scores.tolist() == pytest.approx(expect.tolist(), rel=1e-6)  # (words added in another order)
    assert index.by_id["t-new"] in top.tolist()
    assert index.by_id.get(removed) is None and not index.alive[index.dead].any()


@pytest.mark.parametrize(
    "question", ["这个方案的文号是多少？", "政务公开 工作 要点 责任 科室", "信息公开", "政府 的 了"]
)
async def test_candidates_are_the_best_bm25_of_all_docs(
    seeded: Services, monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    """Candidates come from docs above a floor found among the rarest words' docs: the same ones as
    ranking every doc any word touches (few candidates here, so the floor decides)."""
    import knowledge.retrieve

    monkeypatch.setattr(knowledge.retrieve, "CANDIDATES", 3)
    monkeypatch.setattr(knowledge.retrieve, "FLOOR_SAMPLE", 4)
    m = seeded.kb.matcher
    q = m.analyse(question)
    top, scores = m._retrieve(q)
    every = np.zeros(len(seeded.kb.index.docs))
    for tok in set(q.tokens):
        ids, ws = seeded.kb.index.postings(tok)
        every[ids] += ws
    expect = np.sort(every[every > 0])[::-1][:3]
    assert scores.tolist() == pytest.approx(expect.tolist(), rel=1e-5)
    assert every[top].tolist() == pytest.approx(scores.tolist(), rel=1e-5)


@pytest.mark.parametrize("rebuilt", [False, True])
async def test_an_exact_own_question_is_a_candidate_whatever_its_rank(
    seeded: Services, monkeypatch: pytest.MonkeyPatch, rebuilt: bool
) -> None:
    """Asked word for word as one of an entry's questions (here an alternate), the entry joins the
    candidates even when BM25 ranks others first; from the delta and from a full build alike, and
    not once it is withdrawn."""
    import knowledge.retrieve

    kb = seeded.kb
    asked = "跨境电商出口海外仓怎么备案？"
    await kb.save_entry(
        ParsedEntry(
            id="t-exact", kind="faq", question="海外仓备案的办理方式", alternates=[asked], answer="在线提交。"
        )
    )
    await kb.save_entry(
        ParsedEntry(
            id="t-louder",
            kind="faq",
            question="跨境电商出口海外仓备案 跨境电商出口海外仓备案",
            alternates=["跨境电商出口海外仓怎么备案的流程"],
            answer="跨境电商出口海外仓备案流程。",
        )
    )
    if rebuilt:
        await kb.rebuild()
    monkeypatch.setattr(knowledge.retrieve, "CANDIDATES", 1)
    m = kb.matcher
    top, _ = m._retrieve(m.analyse(asked))
    ids = [kb.index.docs[d].entry_id for d in top.tolist()]
    assert ids == ["t-louder", "t-exact"]  # BM25's best, then the exact question's entry
    assert "t-exact" in [c.entry_id for c in m.search(asked)[1]]
    await kb.set_status("t-exact", "expired")
    top, _ = m._retrieve(m.analyse(asked))
    assert [kb.index.docs[d].entry_id for d in top.tolist()] == ["t-louder"]


@pytest.mark.parametrize("rebuilt", [False, True])
async def test_entries_sharing_the_question_asked_are_one_tie_in_id_order(
    seeded: Services, rebuilt: bool
) -> None:
    """Two entries with the same question, the newer one's answer repeating more of its words: asked
    that question word for word, both are the question's own entry, so they tie (in id order, from
    the delta and after a rebuild alike, the newer no longer ahead for its answer's wording) and the
    decision offers both instead of answering with either."""
    kb = seeded.kb
    asked = "海外仓备案怎么办理？"
    await kb.save_entry(ParsedEntry(id="t-1", kind="faq", question=asked, answer="在线提交。"))
    await kb.save_entry(
        ParsedEntry(id="t-2", kind="faq", question=asked, answer="海外仓备案办理：在线提交备案材料。")
    )
    if rebuilt:
        await kb.rebuild()
    q, cands = kb.matcher.search(asked)
    assert [c.entry_id for c in cands[:2]] == ["t-1", "t-2"]
    assert cands[0].score == cands[1].score
    verdict = decide(q, cands, MatchingSettings())
    assert verdict.status == "suggested"
    assert {c.entry_id for c in verdict.alternatives[:2]} == {"t-1", "t-2"}


def _plain_coverage(m, q, top: np.ndarray) -> list[tuple[float, float]]:
    """Matcher._coverage's rule, word by word and written plainly: said literally (or, for a word
    with synonyms, shown by its postings) counts fully, but a clause's word said only in its
    parents' headings or its document's title counts SHARED_HEADING when a clause sharing them
    says it itself; an FAQ's word said only in its category or tags counts fully when of two
    Chinese characters or more; otherwise half, by the share of its character pairs said; in the
    key field literally (one character: by the key postings only)."""
    idx = m.index
    total = sum(q.weights) or 1.0
    docs = [idx.docs[d] for d in top.tolist()]

    def says_itself(doc, w: str) -> bool:  # in its own heading or its text
        return w in doc.key_text.removeprefix(doc.shared_key) + "\n" + doc.body_text

    out = []
    for d, doc in zip(top.tolist(), docs, strict=True):
        text = doc.key_text + "\n" + doc.body_text
        cover = key = 0.0
        for w, v in zip(q.words, q.weights, strict=True):
            grouped = w in m._grouped
            # A sibling (same parents' headings, same document) among the candidates says it itself.
            sibling_heading = any(o.shared_key == doc.shared_key and says_itself(o, w) for o in docs)
            sibling_title = any(
                o.kind == "clause" and o.document == doc.document and says_itself(o, w) for o in docs
            )
            in_context = doc.kind == "clause" or (len(w) > 1 and is_han(w[0]))  # (an FAQ's: its own)
            shared_only = bool(doc.shared_key) and w in doc.key_text and not says_itself(doc, w)
            if w in text or (grouped and d in idx.postings(w)[0].tolist()):
                cover += SHARED_HEADING * v if shared_only and sibling_heading else v
            elif doc.document and w in doc.document and in_context:
                cover += SHARED_HEADING * v if doc.kind == "clause" and sibling_title else v
            elif len(w) > 1:
                pairs = [w[i : i + 2] for i in range(len(w) - 1)]
                cover += v * 0.5 * sum(p in text for p in pairs) / len(pairs)
            in_key_postings = d in idx.key_postings(w).tolist()
            if in_key_postings if len(w) == 1 else w in doc.key_text or (grouped and in_key_postings):
                key += v
        out.append((cover / total, key / total))
    return out


async def test_coverage_follows_its_rule_on_real_questions(default_kb: Services) -> None:
    """The re-ranker's coverage (loops arranged for speed) equals the plain rule for every candidate
    of the FAQ eval questions, which exercise synonyms, one-character words and partly said words,
    and of two questions on the seed document's clauses (shared headings, the document's title);
    FAQs' categories and tags among them."""
    m = default_kb.kb.matcher
    partly = grouped = single = shared = titled = filed = 0
    for question in [r["question"] for r in _load(FAQ_EVAL)] + ["方案里用权公开", "方案里讲的舆论引导"]:
        q = m.analyse(question)
        top, _ = m._retrieve(q)
        if not len(top):
            continue
        docs = [m.index.docs[d] for d in top.tolist()]
        cov = m._coverage(q, top, docs)
        cover, key_cover = cov.cover, cov.key_cover
        expect = _plain_coverage(m, q, top)
        assert cover == pytest.approx([c for c, _ in expect], abs=1e-12), question
        assert key_cover == pytest.approx([k for _, k in expect], abs=1e-12), question
        grouped += any(w in m._grouped for w in q.words)
        single += any(len(w) == 1 for w in q.words)
        texts = [d.key_text + "\n" + d.body_text for d in docs]
        partly += any(
            w not in t and any(w[i : i + 2] in t for i in range(len(w) - 1))
            for w in q.words
            if len(w) > 2
            for t in texts
        )
        for d in docs:
            own = d.key_text.removeprefix(d.shared_key) + "\n" + d.body_text
            shared += any(d.shared_key and w in d.key_text and w not in own for w in q.words)
            unsaid_there = [
                w for w in q.words if d.document and w in d.document and w not in d.key_text + d.body_text
            ]
            titled += d.kind == "clause" and bool(unsaid_there)
            filed += d.kind == "faq" and bool(unsaid_there)
    assert grouped and single and partly and shared and titled and filed  # each branch of the rule was met


async def test_a_kept_candidate_is_ranked_in_full_whatever_its_rank(default_kb: Services) -> None:
    """``_rerank`` with docs to keep returns them wherever they rank (first or last), with the best
    ``limit`` of the others, each scored exactly as when every candidate is ranked (the phrasing
    is only skipped for candidates that cannot reach the others' best ``limit``)."""
    m = default_kb.kb.matcher
    for question in [r["question"] for r in _load(FAQ_EVAL)][:60]:
        q = m.analyse(question)
        top, bm25 = m._retrieve(q)
        full = m._rerank(q, top, bm25, len(top))
        for kept in {full[0].entry_id, full[-1].entry_id}:
            part = m._rerank(q, top, bm25, 2, keep={m.index.by_id[kept]})
            others = [c.entry_id for c in full if c.entry_id != kept][:2]
            expect = [c for c in full if c.entry_id in others or c.entry_id == kept]
            got = [(c.entry_id, c.score, c.phrase) for c in part]
            assert got == [(c.entry_id, c.score, c.phrase) for c in expect], question


def _faq_entry(i: int, question: str, answer: str, **fields: object) -> Entry:
    """An FAQ entry built in memory, id f{i}; ``fields`` (category, tags, parent_id...) over empty ones."""
    empty = {"title": "", "alternates": [], "sections": [], "tags": [], "source": {}, "heading_path": []}
    rest = {**empty, "office": "", "parent_id": None, **fields}
    return Entry(id=f"f{i}", kind="faq", question=question, answer=answer, status="published", **rest)


def _matcher_of(lexicon: Lexicon, entries: list[Entry]) -> Matcher:
    """A matcher over entries built in memory."""
    from knowledge.index import Index, tokenize_entry

    index = Index(lexicon)
    index.build((e, tokenize_entry(e, lexicon)) for e in entries)
    return Matcher(index)


def _faq_matcher(lexicon: Lexicon, faqs: list[tuple[str, str]]) -> Matcher:
    """A matcher over a few FAQs built in memory, ids f0, f1... in order: (question, answer) each."""
    return _matcher_of(
        lexicon, [_faq_entry(i, question, answer) for i, (question, answer) in enumerate(faqs)]
    )


def test_a_fragment_said_whole_in_an_own_question_is_phrased_literally(lexicon: Lexicon) -> None:
    """异地怎么处, cut from 咨询异地怎么处理: its core (异地处: 怎么 is a stop word, 处理 cut) aligns no
    better with that question than with others saying 异地, so an entry merely mentioning 异地 ranked
    first; the whole fragment, said in the entry's own question, is its literal phrasing (the
    bench_matcher sanity table's fragments at 100k: 68% -> 75%, the naive scan's 75%)."""
    questions = [
        "异地变更商贸多久内提交",
        "咨询异地怎么处理",
        "经环节没有所申请的流通是什么异地",
        "不动产权异地专班补办",
    ]
    matcher = _faq_matcher(lexicon, [(q, f"第{i}条的答复。") for i, q in enumerate(questions)])
    _, cands = matcher.search("异地怎么处", limit=4)
    assert cands[0].entry_id == "f1" and cands[0].phrase == 1.0
    assert all(c.phrase < 1.0 for c in cands[1:])
    _, cands = matcher.search("异地", limit=4)  # (one word, in all four: phrased alike)
    assert len({c.phrase for c in cands}) == 1


def test_an_own_question_of_the_very_words_asked_is_phrased_literally(lexicon: Lexicon) -> None:
    """预付卡押金有多少 and 预付卡押金是多少 say the same words, a stop word apart: the entry asking it
    so is phrased literally (``SAME_WORDS``), like one whose text holds the words unbroken, and its
    closer own question ranks it first (it ranked below the one asking 多少退, whose text aligns
    whole with the question's words)."""
    matcher = _faq_matcher(
        lexicon, [("预付卡押金多少退", "按合同约定。"), ("预付卡押金是多少", "一般不超过卡面额。")]
    )
    _, cands = matcher.search("预付卡押金有多少", limit=2)
    assert [c.entry_id for c in cands] == ["f1", "f0"]
    assert cands[0].phrase == 1.0 and cands[0].question_sim == pytest.approx(1.0)


def test_own_questions_of_the_same_words_are_told_apart_by_their_wording(lexicon: Lexicon) -> None:
    """Two entries whose own questions say the question's words (pronouns are stop words) tie on
    every score part; the one whose question is typed more like the question ranks first."""
    matcher = _faq_matcher(
        lexicon,
        [
            ("我可以随时注销我的预付卡吗", "可以。"),
            ("您可以随时注销预付卡吗", "可以，余额按合同约定的方式和期限退还。"),
        ],
    )
    _, cands = matcher.search("你可以随时注销预付卡吗", limit=2)
    assert cands[0].question_sim == cands[1].question_sim == pytest.approx(1.0)
    assert [c.entry_id for c in cands] == ["f1", "f0"]
    _, cands = matcher.search("我可以随时注销我的预付卡吗", limit=2)
    assert [c.entry_id for c in cands] == ["f0", "f1"]


def test_an_entry_whose_own_question_asks_the_same_number_is_not_marked_down(lexicon: Lexicon) -> None:
    """几月 asks for a date; an entry stating none is marked down (``ANSWER_TYPE_PENALTY``), unless one
    of its own questions asks it in the same words, or asks when (or how long) in other words: that is
    its question, whatever its answer says. A count is asked of a unit: only in the same words."""
    from knowledge.retrieve import ANSWER_TYPE_PENALTY

    matcher = _faq_matcher(
        lexicon,
        [
            ("企业名录几月公布", "以当年通知为准。"),
            ("企业名录在哪里看", "公布后在官网查看，一般在6月。"),
            ("名录登记要多长时间", "视材料而定。"),
            ("名录登记要多少钱", "不收费。"),
        ],
    )
    factors = {c.entry_id: c.factor for c in matcher.search("企业名录几月公布", limit=2)[1]}
    assert factors == {"f0": 1.0, "f1": 1.0}  # f0 asks it so; f1 states a month
    factors = {c.entry_id: c.factor for c in matcher.search("企业名录何时公布", limit=2)[1]}
    assert factors["f0"] == 1.0  # when, in other words (the InsuranceQA half: 何时 / 什么时候)
    factors = {c.entry_id: c.factor for c in matcher.search("名录登记要多久", limit=4)[1]}
    assert factors["f2"] == 1.0  # how long, in other words
    factors = {c.entry_id: c.factor for c in matcher.search("企业名录公布要多久", limit=4)[1]}
    assert factors["f0"] == ANSWER_TYPE_PENALTY  # how long, of an entry asking when: no date stated
    factors = {c.entry_id: c.factor for c in matcher.search("名录登记了多少家", limit=4)[1]}
    assert factors["f3"] == ANSWER_TYPE_PENALTY  # a count of firms, of one asking a price


async def test_an_entry_naming_no_section_does_not_answer_which_section_deals_with_it(
    default_kb: Services,
) -> None:
    """放管服改革 商务局哪个科负责 asks which of the bureau's sections deals with it: the Q&A explaining
    what 放管服 means had answered it with confidence; the plan's clause naming its 责任科室 is the
    answer. An entry naming the section still answers."""
    m = default_kb.kb.matcher
    assert m.analyse("放管服改革 商务局哪个科负责").asks_office
    assert not m.analyse("放管服是什么意思").asks_office
    assert not m.analyse("哪个科技公司能做外贸").asks_office
    d = await default_kb.qa.ask("放管服改革 商务局哪个科负责")
    assert d.entry_id != "policy-business-environment-regulation#qa6"
    assert d.entry_id == "doc-7a78d0a404/2.3.1"
    d = await default_kb.qa.ask("商务局里负责外资的是哪个科")
    assert (d.status, d.entry_id) == ("answered", "faq-bureau-009")


async def test_an_entry_addressing_one_of_several_sections_asked_answers_a_part(default_kb: Services) -> None:
    """加盟备案要交哪些材料，多久能办下来 asks the franchise guide's materials and its time limit: the FAQ
    on the time limit alone had answered it (0.83); it answers a part, and the guide, which holds
    both sections, comes first. An FAQ whose own question names both sections asked is not held
    back (外资企业年报什么时候报、在哪报 for 啥时候报，在哪个网站报)."""
    m = default_kb.kb.matcher
    q, cands = m.search("加盟备案要交哪些材料，多久能办下来", limit=5)
    assert q.aspects == ("申请材料", "办理时限")
    factors = {c.entry_id: c.factor for c in cands}
    assert factors["faq-circ-015"] < 1.0 and factors["guide-franchise-filing"] == 1.0
    assert cands[0].entry_id == "guide-franchise-filing"
    d = await default_kb.qa.ask("加盟备案要交哪些材料，多久能办下来")
    assert d.entry_id != "faq-circ-015"
    d = await default_kb.qa.ask("外资企业年报啥时候报，在哪个网站报")
    assert (d.status, d.entry_id) == ("answered", "faq-trade-004")
    d = await default_kb.qa.ask("单用途卡备案要什么材料 要不要交钱 多久能办好")
    assert (d.status, d.entry_id) == ("answered", "guide-prepaid-card-filing")


async def test_a_confident_policy_is_not_traded_for_its_unconfident_qa(default_kb: Services) -> None:
    """2020年小规模纳税人增值税减按1%是怎么回事 asks what the relief is: the policy answers it with
    confidence, and its own Q&A scoring nearly as well (``most_specific``) asks when the relief ran;
    not confident of the Q&A, the decision had only suggested it. The policy answers."""
    d = await default_kb.qa.ask("2020年小规模纳税人增值税减按1%是怎么回事")
    assert (d.status, d.entry_id) == ("answered", "policy-small-scale-vat-relief-2020")
    # A Q&A the question asks for is still the answer (most_specific).
    d = await default_kb.qa.ask("小规模纳税人增值税减按1%什么时候到期")
    assert (d.status, d.entry_id) == ("answered", "policy-small-scale-vat-relief-2020#qa1")


async def test_a_rough_number_told_after_the_question_asks_nothing(default_kb: Services) -> None:
    """申请信息公开收费吗？我这个月可能要申请十几件: 十几件 tells a rough number, it does not ask how many
    (it had made the question ask "much", so the FAQ asked 申请政府信息公开要收费吗 was taken for one asking
    in another form, and the guide's fee section answered). The FAQ answers."""
    q = default_kb.kb.matcher.analyse("申请信息公开收费吗？我这个月可能要申请十几件")
    assert q.form == "whether" and not q.number_asked and not q.count_of
    d = await default_kb.qa.ask("申请信息公开收费吗？我这个月可能要申请十几件")
    assert d.entry_id == "faq-ogi-005"


async def test_a_policy_qa_asked_in_only_some_of_the_forms_answers_a_part(default_kb: Services) -> None:
    """惠聚榕城消费券怎么领 能不能跟店里的优惠一起用 asks how to get the vouchers, then whether they combine
    with a shop's offers: the Q&A on combining offers (asking whether only) had answered it (0.84,
    batches g and i). It answers a part: offered, not answered, and ``ask --explain`` says why. Asked
    its own question, it still answers."""
    question = "惠聚榕城消费券怎么领 能不能跟店里的优惠一起用"
    q = default_kb.kb.matcher.analyse(question)
    assert q.forms == ("how", "whether")
    d = await default_kb.qa.ask(question)
    assert d.status != "answered"
    found = await default_kb.qa.explain_decision(question)
    assert found["entry_id"] == "policy-fuzhou-consumption-voucher-2020#qa3" and found["held"] == "part"
    d = await default_kb.qa.ask("惠聚榕城消费券能和商家的优惠一起用吗")
    assert (d.status, d.entry_id) == ("answered", "policy-fuzhou-consumption-voucher-2020#qa3")


async def test_a_policy_qa_not_asking_a_section_asked_answers_a_part(default_kb: Services) -> None:
    """能开不可抗力证明吗？要收费吗？ asks whether the certificate can be had, then its fee: the Q&A asking
    whether it can be had (no fee in its questions) had answered it (0.72) with nothing on the fee. It
    answers a part, and the policy, which states both, is offered right after it."""
    question = "疫情期间外贸订单交不了货，能开不可抗力证明吗？要收费吗？"
    q = default_kb.kb.matcher.analyse(question)
    assert q.asks_in == 2 and q.aspects == ("收费标准",)
    found = await default_kb.qa.explain_decision(question)
    assert (
        found["entry_id"] == "policy-mofcom-foreign-trade-force-majeure-2020#qa1" and found["held"] == "part"
    )
    d = await default_kb.qa.ask(question)
    assert d.status == "suggested"
    assert [s.entry_id for s in d.suggestions][:2] == [
        "policy-mofcom-foreign-trade-force-majeure-2020#qa1",
        "policy-mofcom-foreign-trade-force-majeure-2020",
    ]
    d = await default_kb.qa.ask("开不可抗力证明要交钱吗？")  # (the Q&A asking the fee still answers it)
    assert (d.status, d.entry_id) == ("answered", "policy-mofcom-foreign-trade-force-majeure-2020#qa3")


async def test_a_policy_qa_answers_a_part_when_another_of_its_qas_asks_a_section_asked(
    default_kb: Services,
) -> None:
    """不可抗力证明在哪开？要钱不 asks where and the fee (要钱不 asks whether, as 要钱吗 would): the Q&A on
    the fee, which says only that a chamber of commerce issues it free, had answered it whole (0.996).
    A Q&A whose policy has another Q&A asking for the section is not held for a section its own
    questions do not name: the one on which firms count as hard hit answers what it takes to count."""
    question = "不可抗力证明在哪开？要钱不"
    q = default_kb.kb.matcher.analyse(question)
    assert q.asks_in == 2 and q.aspects == ("办理地点与时间", "收费标准")
    assert (await default_kb.qa.ask(question)).status != "answered"
    d = await default_kb.qa.ask("开饭店的算不算困难行业？要满足什么条件")
    assert (d.status, d.entry_id) == ("answered", "policy-epidemic-tax-2020#qa1")


async def test_the_policy_is_offered_beside_its_qa_answering_a_part(default_kb: Services) -> None:
    """Offered the Q&A answering a part of the question, one is offered the policy answering the whole
    right after it: as a policy and its Q&A give one answer (``same_answer``), the policy had been left
    out of the offer (its Q&A, then two FAQs on other vouchers), though it was the third candidate."""
    for question in (
        "惠聚榕城消费券怎么领 能不能跟店里的优惠一起用",
        "惠聚榕城的消费券怎么领？跟商家的优惠能一起用吗",
    ):
        d = await default_kb.qa.ask(question)
        assert d.status == "suggested", question
        assert [s.entry_id for s in d.suggestions][:2] == [
            "policy-fuzhou-consumption-voucher-2020#qa3",
            "policy-fuzhou-consumption-voucher-2020",
        ], question


async def test_a_policy_asked_the_basis_of_another_matter_does_not_state_it(default_kb: Services) -> None:
    """预付卡备案依据的是哪个文件 asks the filing guide's 设定依据: the judicial interpretation on prepaid
    consumption had answered it (0.90), its key field holding 依据哪些文件 as every policy's does
    (META_QUESTIONS). Naming a matter its title does not (备案), the question asks it of another
    entry. A policy asked its own basis still answers."""
    d = await default_kb.qa.ask("预付卡备案依据的是哪个文件")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-prepaid-card-filing", "设定依据")
    d = await default_kb.qa.ask("优化营商环境条例是根据什么制定的")
    assert (d.status, d.entry_id) == ("answered", "policy-business-environment-regulation")
    d = await default_kb.qa.ask("预付式消费司法解释依据哪些文件")
    assert (d.status, d.entry_id) == ("answered", "policy-prepaid-consumption-interpretation-2025")


async def test_a_third_party_is_one_word(default_kb: Services) -> None:
    """第三方 (a third party) stays a word: rewritten 第3方 it fell apart into 第 / 3 / 方, and 方 glued
    to the next character (第三方要在 -> 方要, a heavy word nobody wrote), and the 3 of every 第三方 met
    the 3 of 三个月."""
    words = default_kb.kb.matcher.analyse("征求第三方意见要多少天").words
    assert "第三方" in words and "3" not in words
    d = await default_kb.qa.ask("征求第三方意见要多少天")
    assert d.entry_id == "faq-ogi-007"


async def test_a_year_an_entry_pins_is_not_unasked_by_a_question_naming_none(default_kb: Services) -> None:
    """2020年的惠聚榕城消费券怎么领 pins the year its vouchers were of: 惠聚榕城消费券怎么领, naming no
    year, asks of the same matter, so the year is not a word of the entry the question left unasked
    (``unsaid``); a question naming another year did leave it unasked."""
    m = default_kb.kb.matcher
    own = ("2020", "年", "惠聚榕城", "消费券", "领")
    assert m._unsaid(m.analyse("惠聚榕城消费券怎么领"), own) < 0.2
    assert m._unsaid(m.analyse("2021年惠聚榕城消费券怎么领"), own) == 1.0


async def test_a_clause_stating_how_long_asked_answers_it(default_kb: Services) -> None:
    """区政府政务新媒体发的重要信息，你们局要在多长时间内转发 asks how long (办理时限, a guide's section);
    a guide among the candidates had marked every entry without that section down as mentioning it in
    passing, the plan's clause stating 12 小时内转发 too. A clause stating the number asked answers it."""
    question = "区政府政务新媒体发的重要信息，你们局要在多长时间内转发？"
    q, cands = default_kb.kb.matcher.search(question, limit=10)
    assert q.aspect == "办理时限" and any(c.info.kind == "guide" for c in cands)
    assert cands[0].entry_id == "doc-7a78d0a404/2.5.3" and cands[0].factor == 1.0
    d = await default_kb.qa.ask(question)
    assert (d.status, d.entry_id) == ("answered", "doc-7a78d0a404/2.5.3")


async def test_which_department_handles_it_asks_where_to_apply(default_kb: Services) -> None:
    """拍賣許可在福州找哪個部門辦 asks whom to go to: the permit guide's 办理地点与时间 (福州市商务局),
    not the whole guide."""
    d = await default_kb.qa.ask("拍賣許可在福州找哪個部門辦")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-auction-permit", "办理地点与时间")


async def test_when_the_rules_took_effect_is_asked_of_the_basis(default_kb: Services) -> None:
    """新的成品油流通管理办法是哪天开始施行的 asks the date of the rules a guide rests on: its 设定依据
    dates them (2025年9月1日起施行); the whole guide had answered. A policy's Q&A asking that date
    answers it as well; asked the basis (优化营商环境条例是根据什么制定的), the Q&A on the date does not:
    ``test_a_policy_asked_the_basis_of_another_matter_does_not_state_it`` holds that."""
    d = await default_kb.qa.ask("新的成品油流通管理办法是哪天开始施行的？")
    assert (d.status, d.entry_id, d.aspect) == ("answered", "guide-refined-oil-retail", "设定依据")
    d = await default_kb.qa.ask("听说外贸法又改了，新的啥时候开始施行？")
    assert (d.status, d.entry_id) == ("answered", "policy-foreign-trade-law-2025#qa1")
    # (啥时 said for 啥时候 asks when too: the Q&A on the law's earlier amendments had answered)
    d = await default_kb.qa.ask("新外贸法啥时施行")
    assert (d.status, d.entry_id) == ("answered", "policy-foreign-trade-law-2025#qa1")


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("政策资金流向公不公开", ["政策", "资金", "流向", "公开"]),  # not 公 | 不公开 (不予公开)
        ("二手车备案收费不收费", ["二手车", "备案", "收费"]),
        ("你们管不管", ["管"]),
        ("预付卡备不备案啊", ["预付卡", "备案"]),
    ],
)
def test_a_not_a_asks_whether_of_the_verb_once(default_kb: Services, question: str, words: list[str]) -> None:
    """A clause asked as A-not-A asks whether, of the verb once: jieba cut 公不公开 as 公 | 不公开,
    whose synonym 不予公开 says the opposite of what is asked, and no form read "whether"."""
    q = default_kb.kb.matcher.analyse(question)
    assert (q.words, q.form) == (words, "whether")


def test_the_modals_a_not_a_stays_as_it_was(default_kb: Services) -> None:
    """能不能, 要不要 stand before the verb and are stop words read as whether already."""
    m = default_kb.kb.matcher
    assert (m.analyse("能不能网上办").words, m.analyse("能不能网上办").form) == (["网上", "办"], "whether")
    assert m.analyse("预付卡要不要备案").words == ["预付卡", "备案"]


async def test_a_question_scores_the_same_whatever_order_its_words_come_in(
    default_kb: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BM25 sums add the question's distinct tokens in one order, not in the order of a set,
    which follows the salted string hash (``PYTHONHASHSEED``): a second worker, or the same one
    after a restart, scores a question to the last bit as the first and cannot decide otherwise at
    a tie. (This question's float32 sums came out two ways with its tokens taken in two orders.)"""
    import knowledge.retrieve as retrieve

    m = default_kb.kb.matcher
    q = m.analyse("以前办对外贸易经营者备案要交哪些材料")
    runs = set()
    for order in (list, lambda xs: list(reversed(list(xs)))):
        monkeypatch.setattr(retrieve, "set", lambda xs, order=order: order(dict.fromkeys(xs)), raising=False)
        top, bm25 = m._retrieve(q)
        runs.add(tuple(zip(top.tolist(), bm25.tolist(), strict=True)))
    assert len(runs) == 1


async def test_a_runner_up_asking_another_form_is_weighed_by_its_form_in_the_question_gap(
    default_kb: Services,
) -> None:
    """出口的货想转内销，有没有什么扶持政策 is as close in words to the Q&A asking when the policy ends
    (出口转内销的实施意见什么时候到期) as to the one asking what support there is: the runner-up's
    closeness counts at its form penalty, as in its score, and once more as a Q&A of the same policy
    (every one of which repeats its matter, 出口转内销), and the question is answered. So is
    出口转内销有什么支持政策, asked so in six resident batches and only offered at 0.684 (the operating
    point 0.70) while the penalty counted once."""
    from bot.confidence import FEATURES, question_gap
    from knowledge.retrieve import FORM_PENALTY

    question = "出口的货想转内销，有没有什么扶持政策"
    q, cands = default_kb.kb.matcher.search(question, limit=10)
    best, runner = cands[0], cands[1]
    assert best.entry_id == "policy-export-to-domestic-2020#qa1" and best.form == 1.0
    assert runner.entry_id == "policy-export-to-domestic-2020#qa5" and runner.form == FORM_PENALTY
    gap = best.question_sim - runner.question_sim * FORM_PENALTY * FORM_PENALTY
    assert question_gap(best, runner) == pytest.approx(gap)
    verdict = decide(q, cands, default_kb.settings.matching)
    assert verdict.features is not None
    assert verdict.features[FEATURES.index("question_gap")] == question_gap(best, runner)
    for asked in (question, "出口转内销有什么支持政策"):
        d = await default_kb.qa.ask(asked)
        assert (d.status, d.entry_id) == ("answered", "policy-export-to-domestic-2020#qa1"), asked

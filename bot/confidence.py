"""The confidence of a match: the probability that an entry answers the question, from a logistic
model over features that mean the same on any knowledge base.

The weights ship in ``knowledge/data/confidence.json``; ``bench/calibrate.py`` refits them from the
labelled question sets (several knowledge bases) and checks them on sets left out of the fit. Two
models share the features: ``answer`` (the best entry answers the question) and ``listed`` (a right
entry is among the candidates offered).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from knowledge.retrieve import FORM_PENALTY, Candidate, Query
from knowledge.segment import LIGHT_WEIGHT

MODEL_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "data" / "confidence.json"
TIE = 0.03  # a runner-up this close to the best score ties with it
# When each of two answers' key fields names question words the other's lacks, the best's must outweigh
# the runner-up's this many times over to set it apart (``key_gap``).
KEY_LOSS = 2.0
SHORT_WORDS = 2  # a question of this many informative words or fewer says little of what it asks

# Every feature lies in [0, 1] (the margins in [-1, 1]), so that one regularisation fits them all.
# The closeness to its own question itself is not one: how close a right (or a wrong) entry's question
# comes depends on how a knowledge base words its questions (InsuranceQA's short ones all look alike);
# only its lead over the runner-up's means the same everywhere (leave-one-knowledge-base-out, the
# model fitted without InsuranceQA answers it with 54 wrong answers instead of 62: calibrate.py --check).
FEATURES: tuple[str, ...] = (
    "score",  # the matcher's score (coverage, phrasing, own question)
    "margin",  # over the runner-up with another answer
    "coverage",  # share of the question's informative words the entry holds (by weight)
    "key_coverage",  # ... in its questions, title or headings
    "key_gap",  # ... words the runner-up's lacks, when it holds none this one lacks (``key_gap``)
    "question_gap",  # closeness to one of its own questions (0 without), more than the runner-up's (``question_gap``)
    "phrase",  # how literally it says the question's words
    "missing",  # the heaviest question word it lacks, relative to the heaviest of all
    "spec_coverage",  # coverage, each word weighed by how rare it is in this knowledge base too
    "spec_gap",  # ... more than the runner-up's
    "spec_missing",  # missing, likewise
    "unsaid",  # the heaviest word of its closest own question that the question does not say
    "off_type",  # asked for a number, place or guide section it does not state
    "ties",  # how many other answers score within TIE of it (up to 3, over 3)
    "short",  # the question has at most SHORT_WORDS informative words
    "section",  # it has the guide section the question asks for (``Query.aspect``)
    "bm25_share",  # its BM25 score relative to the highest of the answers offered (``bm25_share``)
    "duplicate",  # the runner-up is asked by one of its own questions too (``duplicate``)
    "off_gap",  # it does not state what is asked and the runner-up does (``off_gap``; ``tied`` reads it)
    "offhand",  # an entry of its own whose key field holds no word of the question (``thin`` reads it)
    "one_section",  # the answers tied with it are clauses under the same headings (``tied`` reads it)
    "matterless",  # no word of the question names a matter, only how it asks (``thin`` reads it)
    "outnamed",  # the runner-up's key field names a word of the matter it does not say (``tied`` reads it)
)


# The direction each feature may push the probability (bench/calibrate.py drops a feature whose fitted
# weight comes out the other way: on a few hundred questions that is noise, and it would not hold on
# another knowledge base). A tie or an unsaid word never makes an answer likelier. 0: a feature only
# the decision's rules read (``tied``), never fitted (its weight is 0 in every model).
SIGNS: dict[str, int] = {
    "score": 1,
    "margin": 1,
    "coverage": 1,
    "key_coverage": 1,
    "key_gap": 1,
    "question_gap": 1,
    "phrase": 1,
    "missing": -1,
    "spec_coverage": 1,
    "spec_gap": 1,
    "spec_missing": -1,
    "unsaid": -1,
    "off_type": -1,
    "ties": -1,
    "short": -1,
    "section": 1,
    "bm25_share": 1,
    "duplicate": -1,
    "off_gap": 0,
    "offhand": 0,
    "one_section": 0,
    "matterless": 0,
    "outnamed": 0,
}
# The ``listed`` model's directions where they differ: a knowledge base that repeats a question under
# two answers ties them, which never makes the best the likelier answer, but the answers offered
# together then hold the right one as likely as either (InsuranceQA: 20 of its 21 questions whose two
# best entries share their question have both right).
LISTED_SIGNS: dict[str, int] = SIGNS | {"duplicate": 1}


def features(q: Query, best: Candidate, others: list[Candidate]) -> list[float]:
    """The features of ``best`` as the answer to ``q``; ``others`` are the other answers offered,
    best first (one candidate a distinct answer)."""
    runner = others[0] if others else None
    ties = sum(1 for c in others if c.score >= best.score - TIE)
    return [
        best.score,
        best.score - (runner.score if runner else 0.0),
        best.coverage,
        best.key_coverage,
        key_gap(q, best, runner),
        question_gap(best, runner),
        best.phrase,
        best.missing,
        best.spec_coverage,
        best.spec_coverage - (runner.spec_coverage if runner else 0.0),
        best.spec_missing,
        best.unsaid,
        1.0 if best.factor < 1.0 else 0.0,
        min(ties, 3) / 3,
        1.0 if len(q.words) <= SHORT_WORDS else 0.0,
        1.0 if q.aspect and q.aspect in best.info.aspects else 0.0,
        bm25_share(best, others),
        duplicate(best, runner),
        off_gap(best, runner),
        1.0 if offhand(best) else 0.0,
        1.0 if same_section(best, others) else 0.0,
        1.0 if q.matter <= LIGHT_WEIGHT else 0.0,
        outnamed(q, best, runner),
    ]


def offhand(c: Candidate) -> bool:
    """An entry of its own (not a clause of a document, nor a policy's Q&A) whose key field (its
    questions, title, headings) names no word of the question: it says the matter only in its body."""
    return c.key_coverage == 0.0 and c.info.parent_id is None


def question_gap(best: Candidate, runner: Candidate | None) -> float:
    """How much closer the question is to one of ``best``'s own questions than to one of the
    runner-up's, the runner-up's closeness weighed like its score when its own questions all ask in
    another form (``Candidate.form``): 出口转内销有什么支持政策 is as close in words to 出口转内销的实施
    意见什么时候到期 as to 出口产品转内销有哪些支持措施, but only the second asks what. Weighed so once more
    when the two are Q&As of one policy (``siblings``): every one of its questions repeats the
    policy's matter (出口转内销), so their words come close to any question naming it, and what each
    asks is what sets them apart."""
    if runner is None:
        return best.question_sim
    form = runner.form * (FORM_PENALTY if runner.form < 1.0 and siblings(best, runner) else 1.0)
    return best.question_sim - runner.question_sim * form


def siblings(x: Candidate, y: Candidate) -> bool:
    """Two entries of one parent (Q&As of one policy, clauses of one document)."""
    return x.info.parent_id is not None and x.info.parent_id == y.info.parent_id


def same_section(best: Candidate, others: list[Candidate]) -> list[Candidate]:
    """The other answers tied with ``best`` (within ``TIE``) when every one is, like it, a clause of
    the same document under the same headings (保障措施有哪些: its clauses 1.明确领导责任 and 2.强化培训工作
    tie on the section's heading): the section answers, all of them together. Empty otherwise."""
    close = [c for c in others if c.score >= best.score - TIE]
    info = best.info
    if not close or info.kind != "clause" or not info.shared_key:
        return []
    alike = all(
        c.info.kind == "clause"
        and c.info.parent_id == info.parent_id
        and c.info.shared_key == info.shared_key
        for c in close
    )
    return close if alike else []


def outnamed(q: Query, best: Candidate, runner: Candidate | None) -> float:
    """1.0 when ``runner``'s key field (questions, title, headings) names a word of the question's
    matter, more than a light word, that ``best`` does not say in full anywhere; 0.0 otherwise.
    (拍卖公司年报啥时候截止，在哪个系统填: the foreign-investment FAQ on 年报 says nothing of 拍卖,
    which the auction guide's title names; its own question's closeness is no reason to answer.)"""
    if runner is None:
        return 0.0
    named = runner.key_words & ~best.said_words & ~q.asking
    return 1.0 if any(w > LIGHT_WEIGHT for i, w in enumerate(q.weights) if named >> i & 1) else 0.0


def off_gap(best: Candidate, runner: Candidate | None) -> float:
    """1.0 when ``best`` does not state what the question asks for (a number, a place, a guide
    section: its ``factor`` is below 1) and ``runner`` does, 0.0 otherwise."""
    return 1.0 if runner is not None and best.factor < 1.0 <= runner.factor else 0.0


def duplicate(best: Candidate, runner: Candidate | None) -> float:
    """1.0 when ``runner`` is asked by one of ``best``'s own questions too (two entries of a
    knowledge base repeating one question with different answers: no match can tell them apart),
    0.0 otherwise."""
    if runner is None or not best.info.question_texts:
        return 0.0
    return 0.0 if set(best.info.question_texts).isdisjoint(runner.info.question_texts) else 1.0


def bm25_share(best: Candidate, others: list[Candidate]) -> float:
    """``best``'s BM25 score relative to the highest among it and ``others``, in [0, 1]: whether the
    retrieval that found the candidates agrees with the full score on the best (a ratio, the same
    on any knowledge base, where BM25 scores themselves are not)."""
    top = max([best.bm25] + [c.bm25 for c in others])
    return best.bm25 / top if top > 0 else 0.0


def key_gap(q: Query, best: Candidate, runner: Candidate | None) -> float:
    """The share (by weight) of the question's words that ``best`` holds in its key field (questions,
    title, headings) and the runner-up's lacks, when the runner-up's holds none that ``best`` lacks.
    When each names part of the question, what ``best``'s names less twice what the runner-up's
    names, by specificity (``Candidate.word_spec``: a word many entries say tells little), and 0 when
    that is not more: 不服…行政复议 in one title outweighs 商务局 and 申请 in the other's, while 培训 and
    针对性, one in each heading, tie."""
    if runner is None:
        return best.key_coverage
    # Words that only ask (条件 in 申请公开文件啥条件) tell no matter apart: a guide's title saying
    # 资格 does not make it the one about what was asked.
    extra = best.key_words & ~runner.key_words & ~q.asking
    lack = runner.key_words & ~best.key_words & ~q.asking
    if not lack:
        return sum(w for i, w in enumerate(q.weights) if extra >> i & 1) / (sum(q.weights) or 1.0)
    spec = best.word_spec
    gain = sum(w for i, w in enumerate(spec) if extra >> i & 1)
    loss = sum(w for i, w in enumerate(spec) if lack >> i & 1)
    return max(0.0, gain - KEY_LOSS * loss) / (sum(spec) or 1.0)


def tied(x: list[float]) -> bool:
    """Another answer scores within ``TIE`` of this one and neither its own question nor its key
    field (questions, title, headings) tells them apart: two guides of near-identical text, one of
    which names the question's words in its title, are apart, unless the other's own question is
    the closer one. Nor does a closer own question set apart an answer that does not state what is
    asked from a runner-up that does (``off_gap``: an FAQ asked almost word for word, about the
    materials a guide lists). Whatever the model says, the match cannot choose between tied
    answers, so it offers both; unless they are clauses of one section, which answer together.
    Nor does a closer own question set apart an answer that does not even say a word of the matter
    the runner-up's key field names (``outnamed``), unless its own key field outweighs that
    (``key_gap``: 注册商标 in one, 企业 in the other)."""
    margin, q_gap, k_gap, off, section, out = (
        x[FEATURES.index(f)]
        for f in ("margin", "question_gap", "key_gap", "off_gap", "one_section", "outnamed")
    )
    if section:  # clauses of one section: the section is the answer (``same_section``)
        return False
    if margin >= TIE:
        return False
    apart_by_question = q_gap >= TIE or (k_gap >= TIE and q_gap > -TIE)
    return not apart_by_question or off > 0 or (out > 0 and k_gap < TIE)


# An entry holding less than this share (by weight) of the question's informative words is never the
# answer, whatever the model says: the labelled sets hold almost no such question (2 right answers of
# 724 on three knowledge bases, 58 wrong), so the model cannot know them and extrapolates (a lone
# weak candidate has a large margin over nobody).
MIN_COVERAGE = 0.3


def thin(q: Query, x: list[float]) -> bool:
    """The best entry says too little of the question to be answered with (``MIN_COVERAGE``), or
    says it only in passing: an entry of its own (not a clause of a document, nor a policy's Q&A)
    whose questions, title and headings name no word of the question (那个表在哪下载: a guide that
    mentions 下载 once). The labelled sets hold no such answer, right or wrong, on their guides,
    policies or FAQs; a clause, whose key field is its heading, is asked by its body every day.
    Nor is a short question (``SHORT_WORDS``) answered by an entry whose closest own question is
    chiefly about a word it does not say (``unsaid`` 1: its heaviest): 多久能办好 names no matter,
    and 特许经营备案交上去多久能办好 is the one entry that says 办好. Of the labelled questions, none
    answered, right or wrong, is such a one. Nor is a question answered whose words only ask, naming
    no matter at all (``matterless``: 符合条件吗, 要多久, 电话多少; at most light words besides): any
    guide has conditions and a phone; which one's is asked, the question does not say (a follow-up
    to an answer does: ``Conversation._follow_up``). Nor is a question naming one word more than a
    light one (``named_words``) answered by an entry that lacks some of it and whose closest own
    question is chiefly about a word it does not say: one word in common is all they share (中午吃啥
    好呢 and 你好笨啊，问什么都答不上来 were answered with the bureau's hours, one of whose questions says
    中午, and with the FAQ on the robot's failings, far ahead of entries sharing nothing)."""
    if x[FEATURES.index("coverage")] < MIN_COVERAGE or x[FEATURES.index("offhand")] == 1.0:
        return True
    if x[FEATURES.index("matterless")] == 1.0:
        return True
    unsaid = x[FEATURES.index("unsaid")] >= 1.0
    if unsaid and named_words(q) <= 1 and x[FEATURES.index("missing")] > 0.0:
        return True
    return x[FEATURES.index("short")] == 1.0 and unsaid


def named_words(q: Query) -> int:
    """How many of the question's words weigh more than a light word (``LIGHT_WEIGHT``)."""
    return sum(1 for w in q.weights if w > LIGHT_WEIGHT)


@dataclass(frozen=True, slots=True)
class Logistic:
    """A logistic model: ``sigmoid(bias + weights . x)``."""

    weights: tuple[float, ...]
    bias: float

    def __call__(self, x: list[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


GROUPS = ("asked", "unasked")  # entries with questions of their own (FAQ-like), and without


def group(c: Candidate) -> str:
    """Which of the two fitted groups an entry belongs to: with questions of its own (an FAQ, a
    policy's Q&A, any kind that has them) or without (a clause, a guide or policy known by its title
    and headings). An entry of a kind no model was fitted on falls in one of them like any other."""
    return "asked" if c.info.questions else "unasked"


@dataclass(frozen=True, slots=True)
class ConfidenceModel:
    """The fitted models over ``FEATURES``, one pair for each ``GROUPS``: ``answer`` (this entry
    answers the question) and ``listed`` (a right entry is among those offered)."""

    answer: dict[str, Logistic]
    listed: dict[str, Logistic]

    def p_answer(self, best: Candidate, x: list[float]) -> float:
        return self.answer[group(best)](x)

    def p_listed(self, best: Candidate, x: list[float]) -> float:
        return self.listed[group(best)](x)

    @classmethod
    def from_json(cls, data: dict) -> ConfidenceModel:
        """Read a model file's object; its feature names must be ``FEATURES`` (a refit is needed
        when they change)."""
        if tuple(data.get("features", ())) != FEATURES:
            raise ValueError(f"{MODEL_FILE.name}: fitted on other features; run bench/calibrate.py")

        def read(part: dict) -> dict[str, Logistic]:
            return {
                g: Logistic(tuple(map(float, part[g]["weights"])), float(part[g]["bias"])) for g in GROUPS
            }

        return cls(read(data["answer"]), read(data["listed"]))


@cache
def shipped_model() -> ConfidenceModel:
    """The model shipped in ``knowledge/data/confidence.json``."""
    return ConfidenceModel.from_json(json.loads(MODEL_FILE.read_text(encoding="utf-8")))

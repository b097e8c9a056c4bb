"""From a question to scored candidates: analyse, retrieve with BM25F, re-rank, score in [0, 1].

The score is built to mean "this entry says what the question asks": mostly how much of the
question's informative words the entry covers, then how literally it says them (rapidfuzz), then
how close the question is to one of the entry's own questions. A question that asks for a number or a
date which the entry does not contain is marked down.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz

from knowledge.index import Index, IndexedDoc
from knowledge.text import compact, is_han, normalize

CANDIDATES = 40
# The score's parts (``_combine``): coverage, literal phrasing, the entry's own question or title.
COVER_WEIGHT, PHRASE_WEIGHT, OWN_WEIGHT = 0.65, 0.20, 0.15
FINE_WEIGHT = PHRASE_WEIGHT + OWN_WEIGHT  # what the costly features can add on top of coverage
ANSWER_TYPE_PENALTY = 0.65  # asked for a number, date or place the entry does not state
_ASKS_NUMBER = re.compile(
    r"多少|几[个点天年月日号项件次家岁位条]|多久|多长|哪[一]?天|何时|什么时候|哪年|几月|几号|日期|截止|期限|时限|号码|电话"
)

# A question asking where to go or where something is, which an entry answers only if it names a place.
_ASKS_PLACE = re.compile(r"(在|去|到)哪(里|儿)?$|去哪(里|儿)?|地址|什么位置|怎么走|在什么地方")

# Guide aspects: words in a question -> the guide section that answers it.
ASPECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("申请材料", re.compile(r"材料|资料|带什么|带啥|准备什么|提交什么|交什么|证件|要件|复印件")),
    ("办理条件", re.compile(r"条件|资格|门槛|谁可以|能不能办|符合")),
    ("收费标准", re.compile(r"收费|费用|多少钱|要钱|花钱|免费|交钱|收钱")),
    ("办理时限", re.compile(r"多久|多长时间|几天|时限|期限|多少天|多少个工作日|办结")),
    ("办理地点与时间", re.compile(r"地点|在哪|哪里办|地址|几点|上班时间|办公时间|窗口")),
    ("咨询电话", re.compile(r"电话|热线|联系方式|咨询")),
    ("在线办理", re.compile(r"网上|在线|线上|网办|网站|系统")),
    ("办理流程", re.compile(r"流程|步骤|程序|怎么办理|如何办理|怎么办|手续|怎么申请|如何申请")),
    ("设定依据", re.compile(r"依据|根据什么|哪个文件|法规")),
)


@dataclass(slots=True)
class Query:
    """A question analysed once: normalized, segmented, corrected, weighted."""

    raw: str
    norm: str
    core: str  # the informative words run together (stop words removed)
    words: list[str]  # canonical content words
    weights: list[float]
    tokens: list[str]  # canonical search tokens for BM25
    asks_number: bool
    asks_place: bool
    aspect: str | None
    corrections: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Candidate:
    """One scored entry, with what the index knew of it when it was scored (a rebuild may replace
    the index's documents at any moment: read ``info``, never ``index.docs``)."""

    info: IndexedDoc
    entry_id: str
    score: float
    bm25: float
    coverage: float
    key_coverage: float
    phrase: float
    question_sim: float


class Matcher:
    """Question -> ranked candidates over an ``Index``."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.lex = index.lex

    # -- analysis -----------------------------------------------------------------------------------
    def analyse(self, question: str) -> Query:
        """Normalize, correct homophone typos against the knowledge vocabulary, segment and weigh."""
        norm = normalize(question)
        corrections: dict[str, str] = {}
        if len(norm) <= 300:
            norm, corrections = self._correct(norm)
        words = [self.lex.canonical(w) for w in self.lex.query_words(norm)]
        weights = [self.lex.informativeness(w) for w in words]
        tokens = [self.lex.canonical(t) for t in self.lex.index_tokens(norm)]
        aspect = next((name for name, rx in ASPECTS if rx.search(norm)), None)
        return Query(
            raw=question,
            norm=norm,
            core="".join(words),
            words=words,
            weights=weights,
            tokens=tokens,
            asks_number=bool(_ASKS_NUMBER.search(norm)),
            asks_place=bool(_ASKS_PLACE.search(norm)),
            aspect=aspect,
            corrections=corrections,
        )

    def _correct(self, norm: str) -> tuple[str, dict[str, str]]:
        """Replace runs that jieba breaks into single characters (or an unknown word) by a same-pinyin
        word of the knowledge base: 备按 -> 备案, 制渡 -> 制度."""
        if not self.index.vocab_pinyin:
            return norm, {}
        pieces = self.lex.tokenizer.lcut(norm, HMM=True)
        out: list[str] = []
        fixes: dict[str, str] = {}
        i = 0
        while i < len(pieces):
            fixed = False
            for span in (3, 2, 1):
                group = pieces[i : i + span]
                text = "".join(group)
                if len(group) < span or not 2 <= len(text) <= 4 or not all(is_han(c) for c in text):
                    continue
                broken = all(len(p) == 1 for p in group) if span > 1 else text not in self.lex.word_freq
                if not broken or self.index.knows(self.lex.canonical(text)) or text in self.lex.word_freq:
                    continue
                key = self.lex.pinyin_key(text)
                options = self.index.vocab_pinyin.get(key or "", [])
                if options:
                    best = min(options, key=self.index.idf)  # the most common same-sounding word
                    fixes[text] = best
                    out.append(best)
                    i += span
                    fixed = True
                    break
            if not fixed:
                out.append(pieces[i])
                i += 1
        return ("".join(out), fixes) if fixes else (norm, {})

    # -- retrieval ----------------------------------------------------------------------------------
    def search(self, question: str | Query, limit: int = 5) -> tuple[Query, list[Candidate]]:
        """Score the best entries for a question, best first."""
        with self.index.reading():  # one consistent index: a background build may swap it
            q = question if isinstance(question, Query) else self.analyse(question)
            return q, self._search(q, limit)

    def _search(self, q: Query, limit: int) -> list[Candidate]:
        idx = self.index
        n = len(idx.docs)
        if n == 0 or not q.tokens:
            return []
        scores = np.zeros(n, dtype=np.float32)
        for tok in set(q.tokens):
            ids, ws = idx.postings(tok)
            if len(ids):
                scores[ids] += ws
        scores[~idx.alive] = 0.0
        found = np.flatnonzero(scores)
        if not len(found):
            return []
        if len(found) > CANDIDATES:
            found = found[np.argpartition(-scores[found], CANDIDATES - 1)[:CANDIDATES]]
        cands = self._rerank(q, found, scores, limit)
        cands.sort(key=lambda c: (-c.score, -c.bm25))
        return cands[:limit]

    def _rerank(self, q: Query, top: np.ndarray, bm25: np.ndarray, limit: int) -> list[Candidate]:
        """Exact scores of the candidates that can still be among the best ``limit``.

        Phrase and question similarity add at most ``FINE_WEIGHT`` to what coverage gives, so once
        ``limit`` candidates are scored, one whose coverage alone cannot reach the lowest of them is
        skipped: the same best ``limit`` as scoring all, for less of rapidfuzz's time."""
        docs = [self.index.docs[int(d)] for d in top]
        cover, key_cover = self._coverage(q, top, docs)
        bound = COVER_WEIGHT * cover**1.5 + FINE_WEIGHT
        kept: list[float] = []  # min-heap of the best ``limit`` scores so far
        out: list[Candidate] = []
        for j in np.argsort(-bound, kind="stable"):
            if len(kept) >= limit and bound[j] < kept[0]:
                break
            cand = self._score(q, docs[j], float(cover[j]), float(key_cover[j]), float(bm25[top[j]]))
            out.append(cand)
            if len(kept) < limit:
                heapq.heappush(kept, cand.score)
            elif cand.score > kept[0]:
                heapq.heapreplace(kept, cand.score)
        return out

    def _coverage(self, q: Query, top: np.ndarray, docs: list[IndexedDoc]) -> tuple[np.ndarray, np.ndarray]:
        """Weighted share of the question's words each candidate holds (anywhere; in its key field)."""
        idx = self.index
        cover = np.zeros(len(top))
        key_cover = np.zeros(len(top))
        for w, v in zip(q.words, q.weights, strict=True):
            hit = _members(idx.postings(w)[0], top)
            khit = _members(idx.key_postings(w), top)
            cover += v * hit
            for j in np.flatnonzero(~hit):
                cover[j] += v * _text_cover(w, docs[j].key_text, docs[j].body_text)
            if len(w) > 1:
                for j in np.flatnonzero(~khit):
                    khit[j] = w in docs[j].key_text
            key_cover += v * khit
        total_w = sum(q.weights) or 1.0
        return cover / total_w, key_cover / total_w

    def _score(self, q: Query, doc: IndexedDoc, cover: float, key_cover: float, bm25: float) -> Candidate:
        """One candidate's score from its coverage, phrase and question similarity."""
        phrase = _phrase(q.core, doc.key_text, doc.body_text)
        qsim = self._question_sim(q, doc)
        score = _combine(cover, key_cover, phrase, qsim)
        # Asked for a number, a date or a place the entry does not state: it cannot be the answer.
        if q.asks_number and not doc.has_number:
            score *= ANSWER_TYPE_PENALTY
        if q.asks_place and not doc.has_place:
            score *= ANSWER_TYPE_PENALTY
        # Break ties between full matches by how closely the entry's own question was asked.
        score = min(1.0, score) - 0.01 * (1.0 - qsim)
        return Candidate(doc, doc.entry_id, score, bm25, cover, key_cover, phrase, qsim)

    def _question_sim(self, q: Query, doc: IndexedDoc) -> float:
        """How close the question is to one of the entry's own questions (0 when it has none)."""
        best = 0.0
        qset = set(q.words)
        for words, text in zip(doc.questions, doc.question_texts, strict=False):
            if not words:
                continue
            ws = [self.lex.informativeness(w) for w in words]
            rev = sum(v for w, v in zip(words, ws, strict=True) if w in qset or w in q.core) / (sum(ws) or 1)
            ratio = fuzz.ratio(q.core, "".join(words)) / 100
            best = max(best, 0.6 * rev + 0.4 * ratio, fuzz.ratio(q.norm.replace(" ", ""), text) / 100)
        return best


def _members(sorted_ids: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Which of ``cands`` occur in a posting list (doc numbers ascending): a binary search each,
    so a word held by half of a large knowledge base costs no more than a rare one."""
    if not len(sorted_ids):
        return np.zeros(len(cands), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, cands), len(sorted_ids) - 1)
    return sorted_ids[pos] == cands


def _text_cover(word: str, key_text: str, body_text: str) -> float:
    """Credit for a word the postings did not find: a literal occurrence, else shared bigrams."""
    if word in key_text or word in body_text:
        return 1.0
    if len(word) < 2:
        return 0.0
    grams = [word[i : i + 2] for i in range(len(word) - 1)]
    found = sum(1 for g in grams if g in key_text or g in body_text)
    return 0.5 * found / len(grams)


def _phrase(core: str, key_text: str, body_text: str) -> float:
    """How literally the entry says the question's words: best partial alignment, in [0, 1]."""
    if not core:
        return 0.0
    return max(fuzz.partial_ratio(core, key_text), fuzz.partial_ratio(core, body_text[:4000])) / 100


def _combine(cover: float, key_cover: float, phrase: float, qsim: float) -> float:
    """One score in [0, 1]. Coverage dominates and full coverage is rewarded more than linearly; an
    entry's own question (FAQ) or its heading and title (clauses, guides) add the rest."""
    return COVER_WEIGHT * cover**1.5 + PHRASE_WEIGHT * phrase + OWN_WEIGHT * max(key_cover, qsim)


def question_compact(text: str) -> str:
    """Compact normalized form used to compare questions (exposed for tests and tools)."""
    return compact(text)

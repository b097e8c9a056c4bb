"""In-memory inverted index with BM25F weights over two fields (key: questions and titles; body).

Built once at start from the entries' cached tokens, then updated in place: a changed or removed entry
is tombstoned, a new one goes into a small delta segment scored with the current statistics. When the
delta grows past a tenth of the index it is folded in by a full rebuild.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
import sys
import threading
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from itertools import islice, pairwise
from typing import Any

import numpy as np

from knowledge.answers import office_label
from knowledge.collector import collector_paused
from knowledge.importers.base import OUTLINE
from knowledge.models import Entry
from knowledge.segment import Lexicon, Memo
from knowledge.text import compact, normalize

K1 = 1.2
B = 0.75
BUILD_BATCH = 2000  # entries reduced to (word, doc) pairs at a time
# A word in this share of the docs or more also keeps its weights as one array over all docs: adding
# that array to the scores is several times quicker than adding its long posting list doc by doc.
FRAGMENT_SCAN = 400  # docs ``Index.said_in`` checks at most (a fragment of common pairs finds none)
DENSE_SHARE = 0.15
KEY_WEIGHT = 2.5  # a word in a question or title counts 2.5 times a word in the body
BODY_WEIGHT = 1.0
META_QUESTIONS = (
    # Questions every document answers from its own facts; added to the key field of `policy` entries.
    "文号是多少 发文字号 文件编号",
    "全称 标题 名称 叫什么",
    "发布机关 哪个单位发布 发文单位 哪个部门 印发",
    "落款日期 发布日期 落款时间 印发日期 什么时候发布 哪天发的 哪年出的 出台 下发",
    "依据哪些文件 根据什么 上级",
    "主要内容",
)


@dataclass(slots=True)
class IndexedDoc:
    """What the matcher needs of one entry besides its postings."""

    entry_id: str
    kind: str
    title: str
    parent_id: str | None
    key_text: str  # compact normalized key text
    body_text: str  # compact normalized body text
    # What a clause shares with its sibling clauses ("" for other kinds): the beginning of its key
    # text that its parents' headings make up, and its document's title. A word said only there
    # does not tell the siblings apart. (For an FAQ of its own, ``document`` holds its category and
    # tags: what it is asked within, its own, shared with none.)
    shared_key: str
    document: str
    questions: tuple[tuple[str, ...], ...]  # distinct canonical words of the question and each alternate
    question_weights: tuple[float, ...]  # the informativeness of each one's words, summed
    question_texts: tuple[str, ...]  # compact normalized question and alternates
    has_number: bool
    has_place: bool
    answer_sig: int  # entries with the same answer are one answer for the margin rule
    aspects: tuple[str, ...] = ()  # a guide's section names (it answers each of them)


DOC_FIELDS = tuple(f.name for f in fields(IndexedDoc))


def entry_fields(entry: Entry) -> tuple[str, str, list[str]]:
    """(key text, body text, questions) of an entry, before normalization."""
    heading = " ".join(entry.heading_path)
    sections = " ".join(f"{name} {text}" for name, text in entry.sections)
    questions = [q for q in [entry.question, *entry.alternates] if q]
    src = entry.source or {}
    if entry.kind == "faq":
        key = " ".join([entry.title, *questions])
        body = entry.answer
    elif entry.kind == "clause":
        key = heading
        # (its office: under its own label in its sections, when the document's importer put it there)
        office = f"责任科室 {entry.office}" if entry.office and office_label(entry) is None else ""
        body = " ".join([entry.answer, sections, office, entry.title])
    elif entry.kind == "policy":
        meta = [entry.title, src.get("number", ""), src.get("issuer", ""), *questions, *META_QUESTIONS]
        key = " ".join([*meta, *entry.tags])
        answer, sections = _without_outline(entry)
        body = " ".join([answer, sections, src.get("date", ""), entry.publish_date])
    elif entry.kind == "smalltalk":
        # Found by its whole wording only (knowledge/smalltalk.py): its words (你好, 谢谢, 垃圾, 笨)
        # must not draw real questions, nor be offered as "您是不是想问".
        key, body = "", ""
    elif entry.kind == "referral":
        key = " ".join([entry.title, *questions, *entry.tags])
        body = " ".join(text for _, text in entry.sections)
    else:  # guide and anything newer
        key = " ".join([entry.title, *questions, *entry.tags])
        body = " ".join([entry.answer, sections])
    return key, body, questions


def _without_outline(entry: Entry) -> tuple[str, str]:
    """A document's answer and sections without its outline (``OUTLINE``): its parts' headings are its
    clauses' own words, which would draw every clause's question to the document."""
    outline = next((text for name, text in entry.sections if name == OUTLINE), None)
    answer = entry.answer.replace(f"\n\n{OUTLINE}：{outline}", "") if outline else entry.answer
    sections = " ".join(f"{name} {text}" for name, text in entry.sections if name != OUTLINE)
    return answer, sections


TOKENS_FORMAT = 10  # bump when tokenize_entry caches something new, cuts otherwise or reads other fields
# (``entry_fields``, ``META_QUESTIONS``): every cache is redone


def token_signature(lex: Lexicon) -> str:
    """What ``Entry.token_sig`` records: the lexicon the tokens were made with and the cache layout."""
    return hashlib.sha256(f"{lex.signature}/{TOKENS_FORMAT}".encode()).hexdigest()[:16]


def tokenize_entry(entry: Entry, lex: Lexicon) -> dict[str, Any]:
    """What the index caches of an entry (in ``Entry.tokens``): its raw jieba tokens (synonyms are
    applied at build), and its compact normalized texts, so that a build normalizes nothing."""
    key, body, questions = entry_fields(entry)
    cuts = [lex.cut(normalize(q)) for q in questions]
    if entry.kind == "faq" and not entry.title.strip():
        # The key is the questions, space apart, and jieba cuts across no space: the key's tokens
        # are those of each question's cut, which ``q`` needs anyway (each text is cut once).
        key_tokens = [t for pieces in cuts for t in lex.search_tokens(pieces)]
    else:
        key_tokens = lex.index_tokens(normalize(key))
    return {
        "key": key_tokens,
        "body": lex.index_tokens(normalize(body)),
        "q": [" ".join(lex.words(pieces)) for pieces in cuts],
        **_texts_of(entry),
    }


class IndexBuilder:
    """Collects entries for a full build, a batch at a time, keeping only what the index needs (the
    entries themselves can be freed after each batch: a large knowledge base is never all in memory
    as ORM objects at once). Each batch is reduced at once to its distinct (word, doc) pairs with
    their counts, so a build never holds every token of the knowledge base."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.docs: list[IndexedDoc] = []
        self.vocab: dict[str, int] = {}
        self._batches: list[_Pairs] = []
        self._len_k, self._len_b = array("i"), array("i")
        canonical, vocab = index.lex.canonical, self.vocab
        # Raw token -> number of its canonical form in the vocabulary, each worked out once.
        self._number = Memo(lambda t: vocab.setdefault(canonical(t), len(vocab)))
        self._words = Words(index.lex)

    def add(self, entries: Iterable[tuple[Entry, dict[str, Any]]]) -> None:
        """Take a batch of (entry, tokens) pairs; unpublished entries are skipped."""
        first = len(self.docs)
        keys: list[str] = []
        bodies: list[str] = []
        len_k, len_b = array("i"), array("i")
        for entry, toks in entries:
            if entry.status != "published":
                continue
            self.docs.append(make_doc(self.index.lex, entry, toks, self._words))
            k, b = toks.get("key", []), toks.get("body", [])
            keys += k
            bodies += b
            len_k.append(len(k))
            len_b.append(len(b))
        if len(self.docs) == first:
            return
        self._len_k.extend(len_k)
        self._len_b.extend(len_b)
        # The batch's tokens as numbers, and the doc of each, in one pass each (not four a doc).
        number = self._number.__getitem__
        docs = np.arange(first, len(self.docs), dtype=np.int32)
        self._batches.append(
            _Pairs.of(
                first,
                len(self.docs),
                np.repeat(docs, np.frombuffer(len_k, dtype=np.int32)),
                np.fromiter(map(number, keys), dtype=np.int32, count=len(keys)),
                np.repeat(docs, np.frombuffer(len_b, dtype=np.int32)),
                np.fromiter(map(number, bodies), dtype=np.int32, count=len(bodies)),
            )
        )

    def segment(self) -> tuple[_Segment, float, float]:
        """The postings of everything added, and the average key and body lengths."""
        renumbered = self._in_id_order()
        batches, self._batches = self._batches, []
        return _build_segment(self.vocab, len(self.docs), batches, self._len_k, self._len_b, renumbered)

    def _in_id_order(self) -> bool:
        """Renumber the docs in entry id order when they were added in another (an import adds them
        in its files' order; a build from the database reads them by id). Equal scores rank by doc
        number, so every build of one knowledge base must number its docs alike. True if renumbered."""
        ids = [d.entry_id for d in self.docs]
        if all(a <= b for a, b in pairwise(ids)):
            return False
        order = sorted(range(len(ids)), key=ids.__getitem__)
        new_number = np.empty(len(ids), dtype=np.int32)
        new_number[order] = np.arange(len(ids), dtype=np.int32)
        self.docs = [self.docs[i] for i in order]
        self._len_k = array("i", np.frombuffer(self._len_k, dtype=np.int32)[order].tobytes())
        self._len_b = array("i", np.frombuffer(self._len_b, dtype=np.int32)[order].tobytes())
        for batch in self._batches:
            batch.doc = new_number[batch.doc]
        return True


@dataclass
class _Pairs:
    """The distinct (token, doc) pairs of a batch of docs, by token then doc, with the token's
    count in the doc's key and body fields."""

    tok: np.ndarray  # int32
    doc: np.ndarray  # int32
    tf_k: np.ndarray  # uint16 (counts saturate long before: BM25 flattens them)
    tf_b: np.ndarray  # uint16

    @classmethod
    def of(
        cls, first: int, end: int, kd: np.ndarray, kt: np.ndarray, bd: np.ndarray, bt: np.ndarray
    ) -> _Pairs:
        """The pairs of docs ``first`` to ``end`` from their key and body tokens: the doc and
        token number of each (int32)."""
        stride = end - first
        pairs_k = kt.astype(np.int64) * stride + (kd - first)
        pairs_b = bt.astype(np.int64) * stride + (bd - first)
        pairs, inverse = np.unique(np.concatenate([pairs_k, pairs_b]), return_inverse=True)
        tf_k = np.bincount(inverse[: len(pairs_k)], minlength=len(pairs))
        tf_b = np.bincount(inverse[len(pairs_k) :], minlength=len(pairs))
        return cls(
            (pairs // stride).astype(np.int32),
            (pairs % stride + first).astype(np.int32),
            np.minimum(tf_k, 65535).astype(np.uint16),
            np.minimum(tf_b, 65535).astype(np.uint16),
        )


@dataclass
class _Segment:
    """Postings of a set of docs in compressed rows: token ``t`` (number ``vocab[t]``) holds the doc
    numbers ``ids[start[v]:start[v + 1]]`` (ascending) with their BM25F weights; likewise the docs
    whose key field holds it. One pair of arrays instead of two small arrays a word keeps a 100k
    index small and quick to build."""

    vocab: dict[str, int] = field(default_factory=dict)
    start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    key_start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    key_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    df: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dense: dict[int, np.ndarray] = field(default_factory=dict)  # token number -> weight of every doc

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        v = self.vocab.get(token)
        if v is None:
            return EMPTY_I, EMPTY_F
        a, b = self.start[v], self.start[v + 1]
        return self.ids[a:b], self.weights[a:b]

    def key_postings(self, token: str) -> np.ndarray:
        v = self.vocab.get(token)
        return EMPTY_I if v is None else self.key_ids[self.key_start[v] : self.key_start[v + 1]]

    def doc_freq(self, token: str) -> int:
        v = self.vocab.get(token)
        return 0 if v is None else int(self.df[v])

    def dense_weights(self, token: str) -> np.ndarray | None:
        v = self.vocab.get(token)
        return None if v is None else self.dense.get(v)


class DocTable:
    """The documents of an index loaded from files, decoded one at a time when first read: a start
    does not build 100k ``IndexedDoc`` objects, only the few dozen each question re-ranks. ``blob``
    holds each doc's JSON (``encode_doc``) at ``offsets[i]:offsets[i + 1]``; docs added since
    (``Index.upsert``) are appended as objects."""

    def __init__(self, ids: list[str], kinds: list[str], blob: Any, offsets: np.ndarray) -> None:
        self._ids = ids
        self._kinds = kinds
        self._blob = blob
        self._offsets = offsets
        self._items: list[IndexedDoc | None] = [None] * len(ids)

    def ids(self) -> list[str]:
        """The entry id of every doc, in doc order."""
        return self._ids

    def kinds(self) -> list[str]:
        """The kind of every doc, in doc order (no doc decoded)."""
        return self._kinds

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> IndexedDoc:
        doc = self._items[i]
        if doc is None:
            doc = self._items[i] = decode_doc(self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])])
        return doc

    def __iter__(self) -> Iterator[IndexedDoc]:
        return (self[i] for i in range(len(self._items)))

    def append(self, doc: IndexedDoc) -> None:
        """A doc added after the load."""
        self._items.append(doc)
        self._ids.append(doc.entry_id)
        self._kinds.append(doc.kind)


def doc_kinds(docs: DocList) -> list[str]:
    """The kind of every doc, in doc order, without decoding a loaded table's docs."""
    return docs.kinds() if isinstance(docs, DocTable) else [d.kind for d in docs]


DocList = list[IndexedDoc] | DocTable
# An index's parts: docs, postings, question table, average key and body lengths, pinyin map.
Parts = tuple[DocList, "_Segment", "QuestionTable", tuple[float, float], dict[str, list[str]]]


def encode_doc(doc: IndexedDoc) -> bytes:
    """One doc as a JSON array (what ``decode_doc`` reads back equal)."""
    return json.dumps(
        [getattr(doc, f) for f in DOC_FIELDS], ensure_ascii=False, separators=(",", ":")
    ).encode()


def decode_doc(data: bytes) -> IndexedDoc:
    """The doc ``encode_doc`` wrote (its lists as tuples again)."""
    values = dict(zip(DOC_FIELDS, map(_tuples, json.loads(data)), strict=True))
    values["kind"], values["document"] = sys.intern(values["kind"]), sys.intern(values["document"])
    return IndexedDoc(**values)


def _tuples(value: Any) -> Any:
    """A JSON value with its lists, nested ones too, made tuples."""
    return tuple(map(_tuples, value)) if isinstance(value, list) else value


class Index:
    """The searchable knowledge: BM25F postings plus per-doc data for re-ranking."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon
        self.docs: DocList = []
        self.alive = np.zeros(0, dtype=bool)
        self.dead = EMPTY_I  # the doc numbers not alive (tombstones), to mask scores quickly
        self.by_id: dict[str, int] = {}
        self._main = _Segment()
        self._delta_post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._delta_key: dict[str, list[int]] = defaultdict(list)
        self._delta_count = 0
        self._questions = QuestionTable.of([])
        self._delta_questions: dict[str, list[int]] = defaultdict(list)
        self._delta_grams: dict[int, list[int]] = defaultdict(list)
        self._avg_key = 1.0
        self._avg_body = 1.0
        self._n = 0
        self.vocab_pinyin: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def reading(self) -> threading.Lock:
        """Hold this while reading the index so that a build finishing in its thread cannot swap
        the documents and postings half-way through a search."""
        return self._lock

    # -- building -----------------------------------------------------------------------------------
    def build(self, entries: Iterable[tuple[Entry, dict[str, Any]]]) -> None:
        """Replace the whole index with these (entry, tokens) pairs (published entries only)."""
        builder = IndexBuilder(self)
        rest = iter(entries)
        with collector_paused():
            while batch := list(islice(rest, BUILD_BATCH)):
                builder.add(batch)
            self.install(builder)

    def install(self, builder: IndexBuilder) -> None:
        """Replace the whole index with what ``builder`` was given."""
        self.install_parts(*self.prepare(builder))

    def prepare(self, builder: IndexBuilder) -> Parts:
        """The parts of a built index from what ``builder`` was given (``install_parts`` installs
        them: the costly part of a build, done before taking the index's lock)."""
        main, avg_k, avg_b = builder.segment()
        docs = builder.docs
        return docs, main, QuestionTable.of(docs), (avg_k, avg_b), self._pinyin_map(builder.vocab)

    def install_parts(
        self,
        docs: DocList,
        main: _Segment,
        questions: QuestionTable,
        averages: tuple[float, float],
        pinyin: dict[str, list[str]],
    ) -> None:
        """Replace the whole index with a built one's parts (a build, or one loaded from files)."""
        with self._lock:
            self.docs = docs
            self.alive = np.ones(len(docs), dtype=bool)
            self.dead = EMPTY_I
            self.by_id = (
                {d: i for i, d in enumerate(docs.ids())}
                if isinstance(docs, DocTable)
                else {d.entry_id: i for i, d in enumerate(docs)}
            )
            self._main = main
            self._delta_post = defaultdict(list)
            self._delta_key = defaultdict(list)
            self._delta_count = 0
            self._questions = questions
            self._delta_questions = defaultdict(list)
            self._delta_grams = defaultdict(list)
            self._n, (self._avg_key, self._avg_body) = len(docs), averages
            self.vocab_pinyin = pinyin

    def parts(self) -> Parts:
        """A copy of the parts of an index fresh from a build (no tombstones or delta yet), which
        later changes of the index do not alter: what ``index_files.save`` writes."""
        with self._lock:
            if self._delta_count or len(self.dead):
                raise ValueError("only a freshly built index can be saved")
            docs = self.docs[:] if isinstance(self.docs, list) else self.docs
            pinyin = {k: list(v) for k, v in self.vocab_pinyin.items()}
            return docs, self._main, self._questions, (self._avg_key, self._avg_body), pinyin

    def _pinyin_map(self, vocab: Iterable[str]) -> dict[str, list[str]]:
        """Toneless pinyin -> vocabulary words (2-4 Han characters), for homophone typos. The
        vocabulary holds each synonym group's first word only; the group's other words are typed as
        much (复议 for 行政复议: 复义 is its typo), so they join it."""
        out: dict[str, list[str]] = defaultdict(list)
        words = set(vocab)
        words.update(s for w in list(words) for s in self.lex.spellings(w))
        for word in sorted(words):  # (in one order whatever order the build met the words in)
            if 2 <= len(word) <= 4:
                key = self.lex.pinyin_key(word)
                if key:
                    out[key].append(word)
        return dict(out)

    def of_kind(self, kind: str) -> list[int]:
        """The docs of one kind (removed ones too: callers look them up in the index, which knows),
        found without decoding a loaded table's docs (small talk among 100,000 FAQs: a cold
        ``policybot ask`` had decoded every one). The caller holds ``reading``."""
        return [i for i, k in enumerate(doc_kinds(self.docs)) if k == kind]

    # -- updating in place --------------------------------------------------------------------------
    def remove(self, entry_id: str) -> None:
        """Drop an entry from search results at once (tombstone)."""
        with self._lock:
            i = self.by_id.pop(entry_id, None)
            if i is not None:
                self.alive[i] = False
                self.dead = np.append(self.dead, np.int32(i))

    def upsert(self, entry: Entry, toks: dict[str, Any]) -> bool:
        """Add or replace one entry; return True when the caller should schedule a full rebuild."""
        self.remove(entry.id)
        if entry.status != "published":
            return False
        k = [self.lex.canonical(t) for t in toks.get("key", [])]
        b = [self.lex.canonical(t) for t in toks.get("body", [])]
        doc = make_doc(self.lex, entry, toks)
        with self._lock:
            i = len(self.docs)
            self.docs.append(doc)
            self.alive = np.append(self.alive, True)
            self.by_id[entry.id] = i
            # New words keep the statistics of the last build (absent: treated as df=1).
            stats = (self._main.doc_freq, max(self._n, 1), self._avg_key, self._avg_body)
            for tok, w in _bm25f(k, b, *stats).items():
                self._delta_post[tok].append((i, w))
            for tok in set(k):
                self._delta_key[tok].append(i)
            for text in doc.question_texts:
                self._delta_questions[text].append(i)
            for code in set(bigram_codes(" ".join(doc.question_texts)).tolist()):
                self._delta_grams[code].append(i)
            for tok in set(k) | set(b):
                for word in (tok, *self.lex.spellings(tok)):  # (as ``_pinyin_map``)
                    if 2 <= len(word) <= 4 and (key := self.lex.pinyin_key(word)):
                        words = self.vocab_pinyin.setdefault(key, [])
                        if word not in words:
                            words.append(word)
            self._delta_count += 1
            return self._delta_count > max(200, self._n // 10)

    # -- reading ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.alive.sum())

    def knows(self, token: str) -> bool:
        """True when the token occurs in some indexed entry."""
        return token in self._main.vocab or token in self._delta_post

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """Doc numbers and weights of a (canonical) token, main and delta segments together."""
        ids, ws = self._main.postings(token)
        extra = self._delta_post.get(token)
        if extra:
            ids = np.concatenate([ids, np.fromiter((i for i, _ in extra), dtype=np.int32)])
            ws = np.concatenate([ws, np.fromiter((w for _, w in extra), dtype=np.float32)])
        return ids, ws

    def dense_weights(self, token: str) -> np.ndarray | None:
        """For a common token, its weights in the last full build as one array over the docs of
        that build (0 where absent), the same numbers as its postings there; else None. Docs added
        since (numbered after them) are only in ``postings``."""
        return self._main.dense_weights(token)

    def key_postings(self, token: str) -> np.ndarray:
        """Doc numbers whose key field holds the token."""
        ids = self._main.key_postings(token)
        extra = self._delta_key.get(token)
        if extra:
            ids = np.concatenate([ids, np.asarray(extra, dtype=np.int32)])
        return ids

    def asked_as(self, text: str) -> list[int]:
        """The live docs one of whose own questions (or alternates) is exactly ``text`` (compact)."""
        found = [*self._questions.find(text), *self._delta_questions.get(text, ())]
        return [d for d in found if self.alive[d] and text in self.docs[d].question_texts]

    def said_in(self, text: str, limit: int) -> list[int]:
        """Up to ``limit`` live docs one of whose own questions says ``text`` (compact, two
        characters or more) somewhere in it, those with the shortest such question first (the
        closest to it); none when more than ``FRAGMENT_SCAN`` docs hold its rarest pairs."""
        codes = list(pair_codes(text))
        if limit < 1 or not codes or "\x00" in text:  # (NUL separates joined questions: in none of them)
            return []
        table = self._questions
        # Whether to look is told by the rarest pairs: their lengths first, all in one search.
        counts = table.gram_counts(np.asarray(codes, dtype=np.int64)).tolist()
        for i, code in enumerate(codes):
            counts[i] += len(self._delta_grams.get(code, ()))
        if not min(counts):
            return []
        rarest = sorted(range(len(codes)), key=counts.__getitem__)
        held = self._gram_docs(rarest[0], codes)
        for i in rarest[1:3]:  # the rarest pairs narrow it down; the text itself is checked below
            held = _within(held, self._gram_docs(i, codes))
        if len(held) > FRAGMENT_SCAN:
            return []
        # The other pairs narrow it further, each a binary search of the few docs held, before the
        # text is looked for in their questions one at a time in Python.
        for i in rarest[3:]:
            if len(held) <= limit:
                break
            held = _within(held, self._gram_docs(i, codes))
        held = held[self.alive[held]]
        # Near-duplicate entries say a fragment by the hundred: the docs are looked at shortest question
        # first, and the look stops once ``limit`` are found that no doc left can beat (its questions
        # saying the text are no shorter than its shortest; of two as short, the lower number first).
        bound = self._shortest(held)
        order = np.lexsort((held, bound))
        found: list[tuple[int, int]] = []  # (the shortest question saying it, doc), ascending
        docs = self.docs
        for least, d in zip(bound[order].tolist(), held[order].tolist(), strict=True):
            if len(found) == limit and (least, d) > found[-1]:
                break
            lengths = [len(t) for t in docs[d].question_texts if text in t]
            if lengths:
                bisect.insort(found, (min(lengths), d))
                del found[limit:]
        return [d for _, d in found]

    def _shortest(self, held: np.ndarray) -> np.ndarray:
        """The length of each held doc's shortest question: the build's table, or the doc itself
        for docs added since."""
        table = self._questions.shortest
        if not len(held) or held[-1] < len(table):
            return table[held]
        late = [
            min(map(len, self.docs[d].question_texts), default=0) for d in held.tolist() if d >= len(table)
        ]
        return np.concatenate([table[held[held < len(table)]], np.asarray(late, dtype=table.dtype)])

    def _gram_docs(self, i: int, codes: list[int]) -> np.ndarray:
        """The docs (ascending, distinct) one of whose questions holds the pair ``codes[i]``, main
        and delta segments together."""
        ids = self._questions.gram_postings(codes[i])
        extra = self._delta_grams.get(codes[i])
        if extra:
            ids = distinct(np.concatenate([ids, np.asarray(extra, dtype=np.int32)]))
        return ids

    def idf(self, token: str) -> float:
        """BM25 idf of a token with the current statistics."""
        df = self._main.doc_freq(token)
        return math.log(1 + (self._n - df + 0.5) / (df + 0.5))


_PLACE = re.compile(
    r"[路街巷道]\s*\d+\s*号|地址|位于|\d+\s*(?:楼|层|室)|办公地点|办事大厅|政务服务中心|网站|网址|平台|系统"
)
_LIST_LABEL = re.compile(r"(^|\n)\s*(\d{1,2}[.．、]|[（(]\d{1,2}[)）])")


@dataclass
class QuestionTable:
    """The docs of a build by their own questions. By the hash of each question: an exact question
    finds its entry even where the words it shares with many others would leave it out of the
    candidates (hashes, not texts, to stay small: 12 bytes a question; ``Index.asked_as`` checks
    the text). And by the character pairs of each question (``bigram_codes``): a fragment of a
    question (users type part of one, cut anywhere, even inside words) finds the entries whose
    questions hold every pair of it, which ``Index.said_in`` then checks. Hashes are stable across
    processes (``stable_hash``), so the table can be saved and loaded."""

    hashes: np.ndarray  # int64, ascending
    docs: np.ndarray  # int32, the doc number of each hash
    grams: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # ascending, distinct
    gram_start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    gram_docs: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int32)
    )  # docs of grams[g]: [start[g]:start[g+1]]
    # The length of each doc's shortest question (0 without any): no question of it that says a
    # fragment is shorter, so ``Index.said_in`` stops once the docs left cannot beat those found.
    shortest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @classmethod
    def of(cls, docs: list[IndexedDoc]) -> QuestionTable:
        """The table of these docs' questions (doc numbers are positions in the list)."""
        texts = [t for d in docs for t in d.question_texts]
        hashes = np.fromiter((stable_hash(t) for t in texts), dtype=np.int64, count=len(texts))
        owners = np.fromiter((i for i, d in enumerate(docs) for _ in d.question_texts), dtype=np.int32)
        order = np.argsort(hashes, kind="stable")
        # Every character pair of every question, with its doc: one array operation over them all.
        codes = bigram_codes("\x00".join(texts))
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        at = np.repeat(owners, lengths)[: max(0, int(lengths.sum()) - 2)] if len(texts) else EMPTY_I
        keep = codes >= 0  # (pairs across two questions hold the separator)
        pairs = distinct(codes[keep] * _DOC_SPAN + at[keep])
        grams, counts = np.unique(pairs // _DOC_SPAN, return_counts=True)
        start = np.zeros(len(grams) + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        gram_docs = (pairs % _DOC_SPAN).astype(np.int32)
        shortest = np.full(len(docs), np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(shortest, owners, (lengths - 1).astype(np.int32))
        shortest[shortest == np.iinfo(np.int32).max] = 0
        return cls(hashes[order], owners[order], grams, start, gram_docs, shortest)

    def find(self, text: str) -> list[int]:
        """Doc numbers with a question of this hash (the text itself is not checked)."""
        h = stable_hash(text)
        a = int(np.searchsorted(self.hashes, h, side="left"))
        # Most texts looked up are no question (every phrasing of every message is, in small talk):
        # one binary search tells, the second only bounds a hit.
        if a == len(self.hashes) or int(self.hashes[a]) != h:
            return []
        b = int(np.searchsorted(self.hashes, h, side="right"))
        return self.docs[a:b].tolist()

    def gram_counts(self, codes: np.ndarray) -> np.ndarray:
        """How many docs hold each of these character pairs in one of their questions."""
        if not len(self.grams):
            return np.zeros(len(codes), dtype=np.int64)
        g = np.minimum(np.searchsorted(self.grams, codes), len(self.grams) - 1)
        return np.where(self.grams[g] == codes, self.gram_start[g + 1] - self.gram_start[g], 0)

    def gram_postings(self, code: int) -> np.ndarray:
        """The docs one of whose questions holds this character pair (ascending)."""
        g = int(np.searchsorted(self.grams, code))
        if g == len(self.grams) or int(self.grams[g]) != code:
            return EMPTY_I
        return self.gram_docs[self.gram_start[g] : self.gram_start[g + 1]]


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending. ``np.unique`` does the same, but numpy 2.4 hashes when asked
    for the values alone: 8.9 s against this sort's 0.39 s for 4 million int64 (BENCHMARKS.md)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


_DOC_SPAN = 1 << 21  # doc numbers below this (2 million docs) pack with a pair code into one int64


def _within(held: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The docs of ``held`` that are in ``ids`` (both ascending: a binary search of each held doc)."""
    if not len(held) or not len(ids):
        return held[:0]
    at = np.minimum(np.searchsorted(ids, held), len(ids) - 1)
    return held[ids[at] == held]


def pair_codes(text: str) -> set[int]:
    """The codes of ``bigram_codes`` for a text without NUL, as a set (for one short text, quicker
    in Python than through an array)."""
    return {(ord(a) << 21) | ord(b) for a, b in pairwise(text)}


def bigram_codes(text: str) -> np.ndarray:
    """One int64 code for each pair of neighbouring characters of ``text``; -1 for pairs with a NUL
    (the separator of joined texts)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    if len(cps) < 2:
        return np.zeros(0, dtype=np.int64)
    codes = (cps[:-1] << 21) | cps[1:]
    codes[(cps[:-1] == 0) | (cps[1:] == 0)] = -1
    return codes


class Words:
    """Canonical words, interned (one string object per word, however many entries use it), and
    their informativeness: worked out once per word through a build."""

    def __init__(self, lex: Lexicon) -> None:
        self.canonical = Memo(lambda w: sys.intern(lex.canonical(w)))
        self.weight = Memo(lex.informativeness)


def _aspects(entry: Entry) -> tuple[str, ...]:
    """The section names of a guide; none for other kinds. A tuple, not a frozenset: the empty tuple
    is one shared object, while every ``frozenset()`` is a new 216-byte one (21 MB at 100k docs)."""
    if entry.kind != "guide":
        return ()
    return tuple(dict.fromkeys(name for name, _ in entry.sections))


def make_doc(lex: Lexicon, entry: Entry, toks: dict[str, Any], words: Words | None = None) -> IndexedDoc:
    """What the re-ranker reads of an entry, from the entry and its cached ``tokenize_entry`` output
    (the answer is kept as a hash: a large knowledge base holds 100k of these)."""
    words = words or Words(lex)
    canonical, weight = words.canonical.__getitem__, words.weight.__getitem__
    qwords = tuple(tuple(dict.fromkeys(map(canonical, q.split()))) for q in toks.get("q", []))
    return IndexedDoc(
        entry_id=entry.id,
        kind=sys.intern(entry.kind),
        # A policy's own Q&A is offered under its own question, not its parent's title.
        title=(entry.question if entry.parent_id and entry.question else entry.title) or entry.question,
        parent_id=entry.parent_id,
        key_text=toks["key_text"],
        body_text=toks["body_text"],
        shared_key=toks["shared_key"],
        document=sys.intern(toks["document"]),
        questions=qwords,
        question_weights=tuple(sum(map(weight, q)) for q in qwords),
        question_texts=tuple(toks["q_texts"]),
        has_number=bool(toks["has_number"]),
        # (a referral's answer is where to go: the body responsible)
        has_place=entry.kind == "referral"
        or any(_PLACE.search(t) for t in [entry.answer, *(t for _, t in entry.sections)]),
        answer_sig=stable_hash(toks["answer_sig"] or entry.id),
        aspects=_aspects(entry),
    )


def _shared_key(entry: Entry, key_text: str) -> str:
    """The start of a clause's key text that its parents' headings make up (see ``IndexedDoc``)."""
    if entry.kind != "clause" or len(entry.heading_path) < 2:
        return ""
    shared = compact(" ".join(entry.heading_path[:-1]))
    return shared if key_text.startswith(shared) else ""


def _document_title(entry: Entry) -> str:
    """The compact title of the document a clause belongs to, or the category and tags of an FAQ of
    its own (not a policy's Q&A, which its policy's title frames), each apart (a word spans no two):
    the matter it is asked within, which its words take for granted (我申请的信息涉及别的公司, of
    政府信息公开, tagged 第三方). "" for other kinds."""
    if entry.kind == "faq" and not entry.parent_id:
        return "|".join(c for c in (compact(t) for t in [entry.category, *(entry.tags or ())] if t) if c)
    title = (entry.source or {}).get("title", "") if entry.kind == "clause" else ""
    return compact(title) if title else ""


def _texts_of(entry: Entry) -> dict[str, Any]:
    """The compact texts and number flag of an entry (what ``tokenize_entry`` caches besides tokens)."""
    key, body, questions = entry_fields(entry)
    key_text = compact(key)
    return {
        "key_text": key_text,
        "body_text": compact(body),
        "shared_key": _shared_key(entry, key_text),
        "document": _document_title(entry),
        "q_texts": [compact(q) for q in questions],
        "has_number": _states_number(entry),
        "answer_sig": compact(entry.answer)[:200] if entry.answer else "",
    }


def _states_number(entry: Entry) -> bool:
    """True when the entry's answer states a number, date or time (list labels like "1." do not count)."""
    texts = [entry.answer, *(t for _, t in entry.sections)]
    return any(any(c.isdigit() for c in normalize(_LIST_LABEL.sub(" ", t))) for t in texts)


def stable_hash(text: str) -> int:
    """A 64-bit hash of a text that every process agrees on (Python's ``hash`` is salted per
    process, so a saved index could not compare its hashes with a new process's)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


EMPTY_I = np.zeros(0, dtype=np.int32)
EMPTY_F = np.zeros(0, dtype=np.float32)


def _bm25f(
    key: list[str], body: list[str], doc_freq: Callable[[str], int], n: int, avg_k: float, avg_b: float
) -> dict[str, float]:
    """BM25F weight of every token of one doc (the delta segment; ``_build_segment`` computes the
    same for a whole build at once): field-weighted, length-normalized tf, then saturation."""
    tf_k, tf_b = Counter(key), Counter(body)
    norm_k = 1 - B + B * len(key) / avg_k
    norm_b = 1 - B + B * len(body) / avg_b
    out: dict[str, float] = {}
    for tok in tf_k.keys() | tf_b.keys():
        tf = KEY_WEIGHT * tf_k.get(tok, 0) / norm_k + BODY_WEIGHT * tf_b.get(tok, 0) / norm_b
        d = doc_freq(tok) or 1
        idf = math.log(1 + (n - d + 0.5) / (d + 0.5))
        out[tok] = idf * tf * (K1 + 1) / (tf + K1)
    return out


def _build_segment(
    vocab: dict[str, int],
    n: int,
    batches: list[_Pairs],
    len_k: array,
    len_b: array,
    renumbered: bool = False,
) -> tuple[_Segment, float, float]:
    """The postings of a whole build from its batches' pairs, computed with array operations (see
    ``_bm25f``); also the average key and body lengths. Batches hold ascending docs, so a stable
    sort by token puts every posting list in doc order (``renumbered`` docs are sorted by token and
    doc instead)."""
    if not batches:
        return _Segment(vocab), 1.0, 1.0
    v = max(len(vocab), 1)
    lk, lb = np.frombuffer(len_k, dtype=np.int32), np.frombuffer(len_b, dtype=np.int32)
    avg_k, avg_b = max(1.0, float(lk.mean())), max(1.0, float(lb.mean()))
    # One field at a time, each batch's copy dropped once joined: the peak is about twice the pairs.
    tok, doc = _join(batches, "tok"), _join(batches, "doc")
    order = np.argsort(tok.astype(np.int64) * n + doc) if renumbered else np.argsort(tok, kind="stable")
    tok, doc = tok[order], doc[order]
    tf_k = _join(batches, "tf_k")[order]
    tf_b = _join(batches, "tf_b")[order]
    del order
    df = np.bincount(tok, minlength=v)
    weights = np.empty(len(tok), dtype=np.float32)
    for a in range(0, len(tok), _WEIGHT_CHUNK):  # in chunks: float64 temporaries stay small
        z = slice(a, a + _WEIGHT_CHUNK)
        d, t = doc[z], tok[z]
        norm_k = 1 - B + B * lk[d] / avg_k
        norm_b = 1 - B + B * lb[d] / avg_b
        tf = KEY_WEIGHT * tf_k[z] / norm_k + BODY_WEIGHT * tf_b[z] / norm_b
        dft = df[t]
        idf = np.log(1 + (n - dft + 0.5) / (dft + 0.5))
        weights[z] = idf * tf * (K1 + 1) / (tf + K1)
    start = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(df, out=start[1:])
    in_key = tf_k > 0
    key_ids = doc[in_key]
    key_start = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(np.bincount(tok[in_key], minlength=v), out=key_start[1:])
    del tok, tf_k, tf_b, in_key
    segment = _Segment(
        vocab, start, doc, weights, key_start, key_ids, df, dense_rows(df, start, doc, weights, n)
    )
    return segment, avg_k, avg_b


_WEIGHT_CHUNK = 1 << 20


def dense_rows(
    df: np.ndarray, start: np.ndarray, doc: np.ndarray, weights: np.ndarray, n: int
) -> dict[int, np.ndarray]:
    """The weights of every doc, as one array, of each word in ``DENSE_SHARE`` of the docs or more."""
    dense: dict[int, np.ndarray] = {}
    for t in np.flatnonzero(df >= max(1.0, DENSE_SHARE * n)).tolist():
        dense[t] = np.zeros(n, dtype=np.float32)
        dense[t][doc[start[t] : start[t + 1]]] = weights[start[t] : start[t + 1]]
    return dense


def _join(batches: list[_Pairs], name: str) -> np.ndarray:
    """One field of every batch, concatenated; the batches' own copies are dropped."""
    parts = [getattr(b, name) for b in batches]
    for b in batches:
        setattr(b, name, parts[0][:0])
    return np.concatenate(parts)

"""Synthetic FAQ entries and benchmark questions built from the real knowledge base's own vocabulary.

The generator reads the shipped knowledge base (knowledge/data: the seed document, guides, policies,
FAQ), takes its nouns, its real question frames (a real question with its nouns turned into slots) and
its real answer sentences, and composes FAQ entries: questions of 8-25 characters, answers of 30-120.
Everything is drawn from one ``random.Random(seed)`` in order, so the first n entries of a run are the
same for every larger n: a 100k corpus contains the 10k and 1k ones as prefixes.

Tokenizing 100k entries with jieba takes tens of seconds, so ``load_corpus`` caches the tokenized
corpus (pickle) under a key made of the generator parameters, the lexicon signature and a digest of
the real knowledge base files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import pickle
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge.importers import ImportFailure, ParsedEntry, expand_paths, parse_file  # noqa: E402
from knowledge.index import entry_fields, token_signature, tokenize_entry  # noqa: E402
from knowledge.models import Entry  # noqa: E402
from knowledge.segment import DATA_DIR, Lexicon, read_synonyms  # noqa: E402
from knowledge.store import default_paths  # noqa: E402
from knowledge.text import compact, is_han  # noqa: E402

log = logging.getLogger("bench.synth")

GENERATOR_VERSION = "1"  # bump when the generation logic changes (invalidates caches)
SHARED = ROOT.parent / "shared"
SEED_DOC = SHARED / "seeds" / "000_4e919aa08e42b693.txt"
FAQ_EVAL = ROOT / "tests" / "data" / "faq_eval.jsonl"
DEV_SEED = SHARED / "eval" / "dev_seed_questions.jsonl"
DEV_OOS = SHARED / "eval" / "dev_out_of_scope.jsonl"

Record = dict[str, Any]  # the fields of a ParsedEntry
Tokens = dict[str, list[str]]
CorpusItem = tuple[Record, Tokens]

_NOUN_FLAGS = frozenset({"n", "nz", "nt", "ns", "vn", "j"})
# Nouns that belong to the question frame itself ("什么时候", "多长时间"), never slots.
_FRAME_NOUNS = frozenset({"时候", "时间", "地方", "哪里", "办法", "问题", "情况", "方面", "内容", "东西"})
_SENTENCE_SPLIT = re.compile(r"[。；！？?\n]+")
_LIST_LABEL = re.compile(r"^(?:[-*•]\s*|\d{1,2}[.．、]\s*|[（(]\d{1,2}[)）]\s*|[一二三四五六七八九十]+、)")
# Frames used besides the ones harvested from real questions ("{}" is a noun slot).
_EXTRA_FRAMES = (
    "{}{}需要准备哪些材料",
    "办理{}{}要多长时间",
    "{}的{}在哪里办理",
    "{}{}有什么条件",
    "{}{}收费吗",
    "申请{}{}的流程是什么",
    "{}{}找哪个部门",
    "{}{}可以网上办吗",
    "{}和{}有什么区别",
    "{}{}的咨询电话是多少",
)
_FILLERS_BEFORE = ("请问", "你好，", "想咨询一下", "我想问下", "麻烦问一下", "您好 ")
_FILLERS_AFTER = ("？", "呢", "啊？", "，谢谢", "。")
OUT_OF_SCOPE = (
    "今天天气怎么样",
    "推荐一部好看的电影",
    "股票明天会涨吗",
    "红烧肉怎么做才好吃",
    "附近有什么好吃的餐馆",
    "帮我写一首关于春天的诗",
    "世界杯最后谁夺冠了",
    "手机充不进电怎么办",
    "感冒了应该吃什么药",
    "火车票退票要收手续费吗",
    "孩子上幼儿园怎么报名",
    "驾照到期了怎么换证",
    "公积金贷款利率是多少",
    "养猫需要注意什么",
    "怎样才能学好英语",
    "周末带孩子去哪里玩",
    "电动车上牌在哪里办",
    "护照办理需要多久",
    "你是机器人吗",
    "讲个笑话听听",
)


@dataclass(frozen=True, slots=True)
class SynthParams:
    """Everything that determines the synthetic corpus (and so its cache key)."""

    seed: int = 20240601
    q_min: int = 8
    q_max: int = 25
    a_min: int = 30
    a_max: int = 120
    max_alternates: int = 2

    def key(self, token_sig: str, kb_digest: str) -> str:
        """Cache key of the corpus these parameters make from this knowledge base, tokenized with this
        lexicon and token-cache layout (``token_signature``)."""
        raw = json.dumps([GENERATOR_VERSION, dataclasses.asdict(self), token_sig, kb_digest])
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the generator samples from, all taken from real texts."""

    nouns: tuple[str, ...]
    noun_weights: tuple[float, ...]
    frames: tuple[str, ...]
    sentences: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BenchQuery:
    """One benchmark question: its text, how it was made, and the entry it is about (if any)."""

    text: str
    kind: str  # exact | paraphrase | partial | out_of_scope
    expect_id: str | None = None


# -- the real knowledge base -------------------------------------------------------------------------
def real_entries() -> list[ParsedEntry]:
    """The shipped knowledge base, file by file; a file that does not parse (being edited) is skipped."""
    out: list[ParsedEntry] = []
    seen: set[str] = set()
    for path in expand_paths(default_paths()):
        try:
            parsed = parse_file(path)
        except ImportFailure as exc:
            log.warning("skipping %s", exc)
            continue
        for entry in parsed:
            if entry.id not in seen:
                seen.add(entry.id)
                out.append(entry)
    return out


def kb_digest() -> str:
    """A digest of what the cached tokens depend on besides the lexicon: the default knowledge base
    files, the seed document, and the code that turns an entry into tokens (part of the cache key)."""
    h = hashlib.sha256()
    files = [*expand_paths(default_paths()), *([SEED_DOC] if SEED_DOC.exists() else [])]
    files += [ROOT / "knowledge" / "text.py", ROOT / "knowledge" / "segment.py"]
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(inspect.getsource(tokenize_entry).encode())
    h.update(inspect.getsource(entry_fields).encode())
    return h.hexdigest()[:16]


def record_of(entry: ParsedEntry) -> Record:
    """A ParsedEntry as a plain dict (its fields are the Entry columns)."""
    return dataclasses.asdict(entry)


def to_entry(record: Record, tokens: Tokens, signature: str) -> Entry:
    """An in-memory Entry (no database) with its cached tokens, as read at start-up."""
    entry = Entry(**record)
    entry.tokens, entry.token_sig = tokens, signature
    return entry


# -- vocabulary --------------------------------------------------------------------------------------
def _texts(entries: Sequence[ParsedEntry], questions: bool = True) -> list[str]:
    """Real texts: answers and sections (and titles and questions), plus the seed document."""
    texts: list[str] = []
    for e in entries:
        if questions:
            texts += [e.title, e.question, *e.alternates]
        texts += [e.answer, *(t for _, t in e.sections)]
    if SEED_DOC.exists():  # its lines are hard-wrapped mid-sentence: join them
        texts.append("".join(SEED_DOC.read_text(encoding="utf-8").split()))
    return [t for t in texts if t]


def _sentences(entries: Sequence[ParsedEntry]) -> list[str]:
    """Statements of 10-80 characters from answers, sections and the seed document (list labels cut)."""
    out: set[str] = set()
    for text in _texts(entries, questions=False):
        for piece in _SENTENCE_SPLIT.split(text):
            s = _LIST_LABEL.sub("", piece.strip())
            if 10 <= len(s) <= 80 and not s.endswith(("吗", "么", "呢")):
                out.add(s)
    return sorted(out)


def _is_slot(word: str, flag: str) -> bool:
    return flag in _NOUN_FLAGS and len(word) >= 2 and word not in _FRAME_NOUNS and all(map(is_han, word))


def _frame(question: str, pseg: Any) -> str | None:
    """A real question with its nouns replaced by ``{}`` (1-3 slots), or None."""
    parts: list[str] = []
    slots = 0
    for pair in pseg.cut(question.rstrip("？?。！! ")):
        if _is_slot(pair.word, pair.flag):
            parts.append("{}")
            slots += 1
        else:
            parts.append(pair.word.replace("{", "").replace("}", ""))
    frame = "".join(parts)
    literal = frame.replace("{}", "")
    return frame if 1 <= slots <= 3 and len(literal) >= 2 else None


def build_vocabulary(entries: Sequence[ParsedEntry]) -> Vocabulary:
    """Nouns (with frequencies), question frames and answer sentences of the real knowledge base."""
    import jieba.posseg as pseg  # the global jieba dictionary: POS tags, generation only

    nouns: Counter[str] = Counter()
    for text in _texts(entries):
        nouns.update(p.word for p in pseg.cut(text) if _is_slot(p.word, p.flag))
    questions = sorted({q for e in entries for q in [e.question, *e.alternates] if q})
    frames = sorted({f for q in questions if (f := _frame(q, pseg))} | set(_EXTRA_FRAMES))
    sentences = _sentences(entries)
    ranked = sorted(nouns.items(), key=lambda kv: (-kv[1], kv[0]))
    return Vocabulary(
        nouns=tuple(w for w, _ in ranked),
        noun_weights=tuple(c**0.5 for _, c in ranked),  # flatter than Zipf: more distinct combinations
        frames=tuple(frames),
        sentences=tuple(sentences),
        categories=tuple(sorted({e.category for e in entries if e.category})) or ("综合",),
    )


_VOCABULARIES: dict[str, Vocabulary] = {}


def default_vocabulary(entries: Sequence[ParsedEntry] | None = None) -> Vocabulary:
    """The vocabulary of the default knowledge base, built once per process and knowledge base."""
    key = kb_digest()
    if key not in _VOCABULARIES:
        _VOCABULARIES[key] = build_vocabulary(real_entries() if entries is None else entries)
    return _VOCABULARIES[key]


# -- generation --------------------------------------------------------------------------------------
def _fill(frame: str, nouns: Sequence[str]) -> str:
    return frame.format(*nouns[: frame.count("{}")])


def _question(rng: random.Random, vocab: Vocabulary, p: SynthParams) -> tuple[str, list[str], str] | None:
    frame = rng.choice(vocab.frames)
    nouns = rng.choices(vocab.nouns, vocab.noun_weights, k=frame.count("{}"))
    if len(set(nouns)) < len(nouns):
        return None
    text = _fill(frame, nouns)
    return (text, nouns, frame) if p.q_min <= len(text) <= p.q_max else None


def _answer(rng: random.Random, vocab: Vocabulary, nouns: Sequence[str], p: SynthParams) -> str:
    target = rng.randint(p.a_min, p.a_max)
    text = f"关于{'、'.join(nouns)}：" if rng.random() < 0.6 else ""
    while len(text) < target:
        text += rng.choice(vocab.sentences) + "。"
    text = text[: p.a_max]
    return text if len(text) >= p.a_min else (text + "具体以窗口受理为准。")[: p.a_max]


def _alternates(
    rng: random.Random, vocab: Vocabulary, nouns: list[str], frame: str, p: SynthParams
) -> list[str]:
    out: list[str] = []
    for _ in range(rng.randint(0, p.max_alternates)):
        other = rng.choice(vocab.frames)
        if other == frame or other.count("{}") > len(nouns):
            continue
        text = _fill(other, rng.sample(nouns, len(nouns)))
        if p.q_min <= len(text) <= p.q_max and text not in out:
            out.append(text)
    return out


def generate(n: int, vocab: Vocabulary, params: SynthParams, taken: Iterable[str] = ()) -> list[Record]:
    """n synthetic FAQ records; questions are unique (compact form) and unlike any in ``taken``."""
    rng = random.Random(params.seed)
    seen = {compact(q) for q in taken}
    out: list[Record] = []
    while len(out) < n:
        made = _question(rng, vocab, params)
        if made is None or compact(made[0]) in seen:
            continue
        question, nouns, frame = made
        seen.add(compact(question))
        entry = ParsedEntry(
            id=f"syn-{len(out):06d}",
            kind="faq",
            question=question,
            alternates=_alternates(rng, vocab, nouns, frame, params),
            answer=_answer(rng, vocab, nouns, params),
            category=rng.choice(vocab.categories),
            tags=list(dict.fromkeys(nouns)),
            source={"note": "synthetic benchmark entry (bench/synth.py)"},
            illustrative=True,
        )
        out.append(record_of(entry))
    return out


# -- tokenized corpus with a cache -------------------------------------------------------------------
CHUNK = 2000  # synthetic entries per cache file: a small size loads only the files it needs


@dataclass(slots=True)
class Corpus:
    """The real entries and the synthetic ones, each with its index tokens."""

    key: str
    real: list[CorpusItem]
    synthetic: list[CorpusItem]

    def take(self, size: int) -> list[CorpusItem]:
        """A knowledge base of ``size`` entries: all real ones, then synthetic ones."""
        return (self.real + self.synthetic)[:size]


def _tokenize(records: Iterable[Record], lex: Lexicon) -> list[CorpusItem]:
    return [(r, tokenize_entry(Entry(**r), lex)) for r in records]


def _read(path: Path) -> list[CorpusItem]:
    with path.open("rb") as fh:
        items: list[CorpusItem] = pickle.load(fh)
    return items


def _write(path: Path, items: list[CorpusItem]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(items, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


def load_corpus(
    size: int,
    lex: Lexicon,
    cache_dir: Path,
    params: SynthParams | None = None,
    log_to: Any = None,
    chunk: int = CHUNK,
) -> Corpus:
    """Real + synthetic tokenized entries for a knowledge base of up to ``size`` entries.

    Tokenized entries are cached in files of ``chunk`` entries under ``cache_dir/corpus-KEY-cCHUNK``;
    generation is prefix-stable, so only the missing files are tokenized."""
    params = params or SynthParams()
    parsed = real_entries()
    key = params.key(token_signature(lex), kb_digest())
    folder = cache_dir / f"corpus-{key}-c{chunk}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "real.pkl").exists():
        _write(folder / "real.pkl", _tokenize(map(record_of, parsed), lex))
    n_synth = max(0, size - len(parsed))
    chunks = [folder / f"synth-{i:04d}.pkl" for i in range(-(-n_synth // chunk))]
    missing = [i for i, path in enumerate(chunks) if not path.exists()]
    if missing:
        if log_to is not None:
            print(f"generating and tokenizing {len(missing) * chunk} synthetic entries...", file=log_to)
        taken = [q for e in parsed for q in [e.question, *e.alternates] if q]
        records = generate(len(chunks) * chunk, default_vocabulary(parsed), params, taken)
        for i in missing:
            _write(chunks[i], _tokenize(records[i * chunk : (i + 1) * chunk], lex))
    synthetic = [item for path in chunks for item in _read(path)][:n_synth]
    return Corpus(key, _read(folder / "real.pkl"), synthetic)


# -- benchmark questions -----------------------------------------------------------------------------
def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _synonym_variants() -> dict[str, list[str]]:
    """Canonical word -> the other words of its synonym line (real lexicon data)."""
    out: dict[str, list[str]] = {}
    for variant, canon in sorted(read_synonyms(DATA_DIR / "synonyms.txt").items()):
        out.setdefault(canon, []).append(variant)
    return out


def paraphrase(text: str, rng: random.Random, variants: dict[str, list[str]]) -> str:
    """A user-like rewording: a synonym swapped, a filler added, sometimes a small piece dropped."""
    out = text.rstrip("？?。")
    present = [w for w in variants if w in out]
    if present:
        word = rng.choice(present)
        out = out.replace(word, rng.choice(variants[word]), 1)
    if rng.random() < 0.3 and len(out) > 8:
        i = rng.randrange(2, len(out) - 2)
        out = out[:i] + out[i + 1 :]
    if rng.random() < 0.5:
        out = rng.choice(_FILLERS_BEFORE) + out
    return out + rng.choice(_FILLERS_AFTER)


def partial(text: str, rng: random.Random) -> str:
    """A contiguous 50-80 % of a question (users type fragments)."""
    core = text.rstrip("？?。")
    n = max(4, round(len(core) * rng.uniform(0.5, 0.8)))
    start = rng.randint(0, max(0, len(core) - n))
    return core[start : start + n]


def _stored_questions(items: Sequence[CorpusItem]) -> list[tuple[str, str]]:
    """(question, entry id) of every question and alternate in a knowledge base, small talk aside:
    it is answered by its whole wording before any search (knowledge/smalltalk.py), and the index
    gives it no words, so its phrasings are no test of the matcher."""
    return [
        (q, r["id"])
        for r, _ in items
        if r.get("kind") != "smalltalk"
        for q in [r["question"], *r["alternates"]]
        if q
    ]


def _take(rng: random.Random, pool: Sequence[Any], k: int) -> list[Any]:
    return rng.sample(list(pool), min(k, len(pool)))


def _out_of_scope(rng: random.Random, evals: Sequence[dict[str, Any]], k: int) -> list[BenchQuery]:
    """k out-of-scope questions: the dev set, the FAQ eval's unanswerable ones, a built-in list, then
    reworded copies of them when more are needed."""
    pool = [e["question"] for e in [*_jsonl(DEV_OOS), *(e for e in evals if e.get("expect_id") is None)]]
    pool += list(OUT_OF_SCOPE)
    texts = _take(rng, pool, k)
    while len(texts) < k:
        texts.append(paraphrase(rng.choice(pool), rng, {}))
    return [BenchQuery(t, "out_of_scope") for t in texts]


def make_queries(items: Sequence[CorpusItem], count: int, seed: int = 7) -> list[BenchQuery]:
    """``count`` questions: 15 % exact stored questions (half real), 35 % paraphrases (real ones from
    tests/data/faq_eval.jsonl and the dev seed set, then edited stored questions), 25 % fragments of
    stored questions and 25 % out of scope."""
    rng = random.Random(seed)
    ids = {r["id"] for r, _ in items}
    stored = _stored_questions(items)
    real = [s for s in stored if not s[1].startswith("syn-")]
    synth = [s for s in stored if s[1].startswith("syn-")] or real
    out = [BenchQuery(q, "exact", i) for q, i in _take(rng, real, count * 15 // 200)]
    out += [BenchQuery(q, "exact", i) for q, i in _take(rng, synth, count * 15 // 100 - len(out))]
    evals = _jsonl(FAQ_EVAL)
    n_para = count * 35 // 100
    real_para = [
        BenchQuery(e["question"], "paraphrase_real", e["expect_id"])
        for e in evals
        if e.get("expect_id") in ids
    ]
    real_para += [BenchQuery(e["question"], "paraphrase_real") for e in _jsonl(DEV_SEED)]
    out += _take(rng, real_para, n_para // 2)
    variants = _synonym_variants()
    edits = _take(rng, synth, count * 15 // 100 + n_para - len(out))
    out += [BenchQuery(paraphrase(q, rng, variants), "paraphrase_edit", i) for q, i in edits]
    out += [BenchQuery(partial(q, rng), "fragment", i) for q, i in _take(rng, stored, count * 25 // 100)]
    return out + _out_of_scope(rng, evals, count - len(out))

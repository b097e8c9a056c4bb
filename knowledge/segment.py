"""Chinese word segmentation: jieba with the domain dictionary, stop words, synonyms and pinyin.

One ``Lexicon`` is built per process. It owns a private jieba ``Tokenizer`` (the global one is left
alone) over a trimmed dictionary: jieba's own most frequent words plus the domain words and every
synonym. Trimming keeps start-up well under a second (the full dictionary takes 0.7 s to load); words
left out fall back to jieba's HMM, the same way in questions and in the knowledge base.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba

from knowledge.text import is_han

jieba.setLogLevel(logging.WARNING)

DATA_DIR = Path(__file__).parent / "data" / "lexicon"
TRIMMED_WORDS = 80_000  # jieba words kept, by frequency (of 349k)
_DOMAIN_FREQ = 200_000  # high enough that jieba keeps domain words whole
INFORMATIVENESS_CACHE = 200_000  # words whose informativeness is remembered
PINYIN_CACHE = 200_000  # texts whose pinyin key is remembered
LIGHT_WEIGHT = 0.15  # informativeness of a light word (light_words.txt): a fraction of a content word
TYPO_ODDS = 100  # odds against a homophone typo: one word in a hundred (``Lexicon.likelier_whole``)
_FORMAT = "v2"  # bump when the trimmed dictionary's layout changes


def cache_dir() -> Path:
    """Where derived files (trimmed dictionary, jieba cache) live: POLICYBOT_CACHE_DIR or ~/.cache."""
    base = os.environ.get("POLICYBOT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "policybot"
    )
    path = Path(base)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / "policybot-cache"
        path.mkdir(parents=True, exist_ok=True)
    return path


def _word_lines(path: Path) -> list[list[str]]:
    """The words of each line of a lexicon file: whitespace-separated, ``#`` starts a comment."""
    return [line.split("#", 1)[0].split() for line in path.read_text(encoding="utf-8").splitlines()]


def _read_words(path: Path) -> list[str]:
    """Words of a lexicon file, every line's together."""
    return [w for words in _word_lines(path) for w in words]


def read_synonyms(path: Path) -> dict[str, str]:
    """Map every word of every synonym line to the line's first word."""
    mapping: dict[str, str] = {}
    for words in _word_lines(path):
        for w in words[1:]:
            mapping[w.lower()] = words[0].lower()
    return mapping


def read_confusables(path: Path) -> dict[str, str]:
    """Map the first character of each line to the characters after it (those it is typed for)."""
    mapping: dict[str, str] = {}
    for chars in _word_lines(path):
        if len(chars) > 1:
            mapping[chars[0]] = mapping.get(chars[0], "") + "".join(chars[1:])
    return mapping


def _load_pinyin_table() -> dict[int, str]:
    """pypinyin's character table, loaded without the package's slow ``__init__`` (0.2 s -> 0.04 s)."""
    spec = importlib.util.find_spec("pypinyin")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "pinyin_dict.py"
    mspec = importlib.util.spec_from_file_location("_policybot_pinyin_dict", path)
    assert mspec is not None and mspec.loader is not None
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module.pinyin_dict


class Memo(dict[Any, Any]):
    """A dict that works out a missing value once, with ``make``; emptied when it holds ``limit``
    keys (None: never)."""

    def __init__(self, make: Callable[[Any], Any], limit: int | None = None) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key: Any) -> Any:
        if self.limit is not None and len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(key)
        return value


_TONES = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


@dataclass
class Lexicon:
    """The tokenizer and word lists used by the index and by questions."""

    tokenizer: jieba.Tokenizer
    stopwords: frozenset[str]
    light_words: frozenset[str]
    synonyms: dict[str, str]
    word_freq: dict[str, int]
    domain_words: frozenset[str]
    log_total: float
    signature: str
    # A character typed for others it looks like or is misread as (confusables.txt): 卷 -> 券
    confusables: dict[str, str] = field(default_factory=dict)
    _pinyin: dict[int, str] | None = field(default=None, repr=False)
    # The re-ranker and the typo search ask for the same words and runs over and over; questions
    # bring new ones without end, so each cache is emptied when full rather than left to grow.
    _informativeness: Memo = field(init=False, repr=False)
    _pinyin_keys: Memo = field(init=False, repr=False)
    _spellings: dict[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._informativeness = Memo(self._informativeness_of, limit=INFORMATIVENESS_CACHE)
        self._pinyin_keys = Memo(self._pinyin_key_of, limit=PINYIN_CACHE)
        groups: dict[str, list[str]] = {}
        for word, first in self.synonyms.items():
            groups.setdefault(first, []).append(word)
        self._spellings = {first: tuple(sorted(words)) for first, words in groups.items()}

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def load(cls, extra_synonyms: str | Path | None = None, extra_dict: str | Path | None = None) -> Lexicon:
        """Build the lexicon from the shipped files plus optional site-specific ones."""
        domain = _read_words(DATA_DIR / "domain_dict.txt")
        if extra_dict:
            domain += _read_words(Path(extra_dict))
        synonyms = read_synonyms(DATA_DIR / "synonyms.txt")
        if extra_synonyms:
            synonyms.update(read_synonyms(Path(extra_synonyms)))
        stopwords = _read_words(DATA_DIR / "stopwords.txt")
        light = _read_words(DATA_DIR / "light_words.txt")
        terms = {w.lower() for w in domain}
        # Synonyms, stop words and light words join the dictionary so that jieba keeps them whole.
        dict_words = sorted(terms | set(synonyms) | set(synonyms.values()) | set(stopwords) | set(light))
        # Which words are stop words counts as well as the dictionary: the tokens cached of every entry
        # leave stop words out, so a word moved from the light to the stop words (想, 来) changes them.
        # So does which word each synonym reads as: an index snapshot holds the canonical words, so a
        # word moved to another group (a site's synonyms file) must not leave an old snapshot current.
        roles = [
            "stop:" + " ".join(sorted(stopwords)),
            "light:" + " ".join(sorted(light)),
            "synonyms:" + " ".join(f"{w}>{c}" for w, c in sorted(synonyms.items())),
        ]
        sig = hashlib.sha256(
            "\n".join([_FORMAT, *dict_words, str(TRIMMED_WORDS), *roles]).encode()
        ).hexdigest()[:16]
        dict_path, freq = _trimmed_dictionary(dict_words, sig)
        tk = jieba.Tokenizer(dictionary=str(dict_path))
        tk.tmp_dir = str(cache_dir())
        tk.initialize()
        total = sum(freq.values())
        return cls(
            tokenizer=tk,
            stopwords=frozenset(stopwords),
            light_words=frozenset(light),
            synonyms=synonyms,
            word_freq=freq,
            domain_words=frozenset(terms - set(freq)),
            log_total=math.log(total),
            signature=sig,
            confusables=read_confusables(DATA_DIR / "confusables.txt"),
        )

    # -- tokens -------------------------------------------------------------------------------------
    def canonical(self, token: str) -> str:
        """The synonym group's first word for ``token`` (or the token itself)."""
        return self.synonyms.get(token, token)

    def spellings(self, canonical: str) -> tuple[str, ...]:
        """The other words of ``canonical``'s synonym group (复议 for 行政复议; none for a word in
        no group)."""
        return self._spellings.get(canonical, ())

    def cut(self, normalized: str) -> list[str]:
        """jieba's precise cut (HMM on) of normalized text, a run of letters and digits kept whole
        (``whole_codes``): the pieces the other views derive from."""
        return whole_codes(self.tokenizer.lcut(normalized, HMM=True))

    def index_tokens(self, normalized: str) -> list[str]:
        """Tokens of knowledge text for the index: search-mode cut (words plus their sub-words)."""
        return self.search_tokens(self.cut(normalized))

    def search_tokens(self, pieces: list[str]) -> list[str]:
        """``index_tokens`` of a text already ``cut`` into ``pieces``: what jieba's ``cut_for_search``
        adds to its cut (each piece's known 2- and 3-character sub-words), so that a question is cut
        once instead of once per view."""
        freq = self.tokenizer.FREQ
        out: list[str] = []
        for w in pieces:
            if len(w) > 2:
                out.extend(g for i in range(len(w) - 1) if freq.get(g := w[i : i + 2]))
            if len(w) > 3:
                out.extend(g for i in range(len(w) - 2) if freq.get(g := w[i : i + 3]))
            out.append(w)
        return [t for t in out if t.strip() and t not in self.stopwords]

    def words(self, pieces: list[str]) -> list[str]:
        """The words of a text already ``cut`` into ``pieces``, stop words dropped."""
        return [t for t in pieces if self._is_word(t)]

    def word_spans(self, pieces: list[str]) -> list[tuple[int, int]]:
        """Where each of ``words(pieces)`` starts and ends in the text the pieces join into."""
        out: list[tuple[int, int]] = []
        at = 0
        for t in pieces:
            if self._is_word(t):
                out.append((at, at + len(t)))
            at += len(t)
        return out

    def _is_word(self, piece: str) -> bool:
        return bool(piece.strip()) and piece not in self.stopwords

    def query_words(self, normalized: str) -> list[str]:
        """The words of a question, in order, stop words dropped (not canonicalized)."""
        return self.words(self.cut(normalized))

    def likelier_whole(self, word: str, text: str, own: bool = False) -> bool:
        """True when ``text`` is better read as a typo of ``word``: by jieba's dictionary, the word
        is likelier than the text's characters one after the other (the comparison jieba's own cut
        makes) by more than the odds against a typo (``TYPO_ODDS``). A typo's characters are each
        plausible but together far less likely than the word they garble (备按, 制渡), while two
        common words side by side (里有, 会受) are no typo of a rarer one (理由, 回收). A word
        outside the dictionary (one that jieba's HMM found in some text) is never the likelier.
        ``own``: by jieba's own frequencies, not the tokenizer's, which gives every synonym a high
        one so that it is cut whole; that says nothing of how often it is typed, and a synonym's
        other spelling would read any same-sound pair (限上 as 线上, 要迁 as 要钱, 是市 as 实施)."""
        if own:
            freq, log_total = self.word_freq, self.log_total
        else:
            freq, log_total = self.tokenizer.FREQ, math.log(self.tokenizer.total)
        whole = freq.get(word, 0)
        if not whole:
            return False
        apart = [freq.get(c, 0) for c in text]
        if 0 in apart:
            return True
        gain = math.log(whole) - sum(map(math.log, apart)) + (len(apart) - 1) * log_total
        return gain > math.log(TYPO_ODDS)

    def informativeness(self, word: str) -> float:
        """How much a word says, from its general frequency in jieba's dictionary, in (0, 1]."""
        return self._informativeness[word]

    def _informativeness_of(self, word: str) -> float:
        if word in self.light_words:
            return LIGHT_WEIGHT
        if word in self.domain_words:
            return 0.9
        if not any(is_han(c) for c in word):
            return 0.9 if len(word) > 1 else 0.4
        freq = self.word_freq.get(word)
        if freq is None:
            if len(word) > 1 and all(c in self.stopwords or c in self.light_words for c in word):
                # jieba's HMM joined function characters (多久|内要|转发): glue, not a term.
                return LIGHT_WEIGHT
            # Unknown to the dictionary: a name, a term or a typo; long ones say a lot.
            base = 0.85 if len(word) > 1 else 0.3
        else:
            # log-rarity between a very common word (~10 bits) and a rare one (~17 bits).
            rarity = self.log_total - math.log(freq)
            base = min(1.0, max(0.2, (rarity - 7.0) / 8.0))
        if len(word) == 1:
            base *= 0.4
        return base

    # -- pinyin -------------------------------------------------------------------------------------
    def pinyin_key(self, word: str) -> str | None:
        """Toneless pinyin of a Han word by its first reading (``备案`` -> ``bei an``); None if not Han."""
        return self._pinyin_keys[word]

    def _pinyin_key_of(self, word: str) -> str | None:
        if self._pinyin is None:
            self._pinyin = _load_pinyin_table()
        out: list[str] = []
        for ch in word:
            reading = self._pinyin.get(ord(ch))
            if reading is None:
                return None
            out.append(reading.split(",", 1)[0].translate(_TONES))
        return " ".join(out)


def whole_codes(pieces: list[str]) -> list[str]:
    """``pieces`` with neighbouring runs of ASCII letters and digits joined: jieba cuts such a run
    where a dictionary word sits inside it (13912345678 -> 139|12345|678, the 12345 hotline), but a
    phone number, a code or a model name is one word, which says nothing of the words inside it."""
    out: list[str] = []
    for piece in pieces:
        if out and _is_code(piece) and _is_code(out[-1]):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _is_code(piece: str) -> bool:
    return piece.isascii() and piece.isalnum()


def _trimmed_dictionary(domain_words: list[str], sig: str) -> tuple[Path, dict[str, int]]:
    """Write (once) a jieba dictionary of the top words plus the domain words; return it and the freqs.

    Words outside the trimmed list are rare by construction, so their frequency is not needed.
    """
    target = cache_dir() / f"jieba-trimmed-{sig}.txt"
    if not target.exists():
        source = Path(jieba.__file__).parent / "dict.txt"
        entries: list[tuple[str, int, str]] = []
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2:
                    entries.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""))
        top = sorted(entries, key=lambda e: -e[1])[:TRIMMED_WORDS]
        domain = set(domain_words)
        # Each line: word, the frequency jieba segments with, tag, and jieba's own frequency (0: not in
        # jieba's dictionary). jieba reads only the first two fields.
        lines = [f"{w} {max(f, _DOMAIN_FREQ) if w in domain else f} {p or 'x'} {f}" for w, f, p in top]
        keep = {w for w, _, _ in top}
        full = {w: f for w, f, _ in entries}
        lines += [
            f"{w} {_DOMAIN_FREQ} n {full.get(w, 0)}" for w in domain_words if w not in keep and " " not in w
        ]
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target)  # atomic: a second worker never reads half a file
    freq: dict[str, int] = {}
    with target.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4 and parts[3] != "0":
                freq[parts[0]] = int(parts[3])
    return target, freq

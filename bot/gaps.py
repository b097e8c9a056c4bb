"""Knowledge gaps: the questions the bot did not answer outright, grouped by need.

A question counts when the bot only suggested candidates or handed it to staff (``suggested``,
``escalated``), or when the visitor said 没解决 about an answer (a ``not_helpful`` ticket). Questions
asked in different words for the same need land in one cluster:

- each question becomes a set of words: jieba's cut (dictionary words only, no HMM guesses) plus the known sub-words of longer words, each
  word replaced by its synonym group's first word (外企, 外商投资 -> 外资), stop words dropped, weighted
  by how rare the word is among the questions (idf) times its informativeness (light words count
  little);
- clusters are built greedily, most asked questions first: a question joins the cluster whose word
  weights (its centroid) are most like its own (cosine) when that is at least ``threshold``, otherwise
  it starts a new one. Only clusters holding one of the question's two strongest words are compared
  (an inverted index), so the cost grows with the number of distinct questions, not its square.

The bot's stored candidates are not part of the similarity (a question the bot could not place often
has a candidate unrelated to it); the nearest entry of a cluster is the candidate most of its questions
had (or, given a matcher, the
best match for the cluster's label when none was stored).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.models import Conversation, Message, Ticket, utcnow
from knowledge.segment import Lexicon
from knowledge.text import normalize

GAP_STATUSES = ("suggested", "escalated")
# Tuned on the tests' needs (tests/test_gaps.py): lower merges different needs sharing one word
# (补贴 of 跨境电商 and of 参展), higher splits 夜市摆摊 from 夜市摊位.
THRESHOLD = 0.28
MAX_EXAMPLES = 20
KEY_WORDS = 2  # a question is compared with the clusters holding one of its strongest words


@dataclass(frozen=True, slots=True)
class Asked:
    """One unanswered question: its text, channel and the bot's best candidate when it asked."""

    text: str
    channel: str
    entry_id: str | None = None


@dataclass
class Gap:
    """A cluster of unanswered questions with the same need."""

    label: str
    count: int
    questions: list[str]
    channels: dict[str, int]
    nearest_entry_id: str | None = None
    counts: list[int] = field(default_factory=list)  # how often each of ``questions`` was asked

    def to_json(self) -> dict[str, Any]:
        """The ``policybot gaps --json`` line."""
        return {
            "label": self.label,
            "count": self.count,
            "questions": self.questions,
            "nearest_entry_id": self.nearest_entry_id,
        }


class _Cluster:
    __slots__ = ("centroid", "members", "norm2")

    def __init__(self) -> None:
        self.centroid: dict[str, float] = {}
        self.members: list[tuple[str, int]] = []  # (question, how often)
        self.norm2 = 0.0

    def add(self, vec: dict[str, float], text: str, n: int) -> None:
        for w, v in vec.items():
            old = self.centroid.get(w, 0.0)
            new = old + v * n
            self.centroid[w] = new
            self.norm2 += new * new - old * old
        self.members.append((text, n))

    def cosine(self, vec: dict[str, float], vnorm: float) -> float:
        dot = sum(v * self.centroid.get(w, 0.0) for w, v in vec.items())
        return dot / (vnorm * math.sqrt(self.norm2)) if self.norm2 > 0 and vnorm > 0 else 0.0


def question_words(text: str, lex: Lexicon) -> set[str]:
    """The canonical words of a question (with the sub-words of its longer words)."""
    pieces = lex.tokenizer.lcut(normalize(text), HMM=False)
    return {lex.canonical(t) for t in lex.search_tokens(pieces)}


def cluster(asked: Sequence[Asked], lex: Lexicon, threshold: float = THRESHOLD) -> list[Gap]:
    """Group the questions by need; largest clusters first."""
    counts = Counter(a.text.strip() for a in asked if a.text.strip())
    if not counts:
        return []
    channels: dict[str, Counter[str]] = defaultdict(Counter)
    entries: dict[str, Counter[str]] = defaultdict(Counter)
    for a in asked:
        text = a.text.strip()
        channels[text][a.channel] += 1
        if a.entry_id:
            entries[text][a.entry_id] += 1
    texts = sorted(counts, key=lambda t: (-counts[t], len(t), t))
    words = {t: question_words(t, lex) for t in texts}
    df: Counter[str] = Counter(w for t in texts for w in words[t])
    n = len(texts)
    vectors = [_vector(words[t], df, n, lex) for t in texts]
    clusters: list[_Cluster] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for text, (vec, vnorm) in zip(texts, vectors, strict=True):
        seen: set[int] = set()
        best, best_sim = -1, threshold
        # Candidate clusters share one of the question's strongest words: a cluster sharing only weak
        # words cannot reach the threshold, and this keeps each question's comparisons few.
        for w in sorted(vec, key=vec.__getitem__, reverse=True)[:KEY_WORDS]:
            for ci in postings.get(w, ()):
                if ci in seen:
                    continue
                seen.add(ci)
                sim = clusters[ci].cosine(vec, vnorm)
                if sim >= best_sim:
                    best, best_sim = ci, sim
        if best < 0:
            clusters.append(_Cluster())
            best = len(clusters) - 1
        c = clusters[best]
        fresh = [w for w in vec if w not in c.centroid]
        c.add(vec, text, counts[text])
        for w in fresh:
            postings[w].append(best)
    gaps = [_gap(c, channels, entries) for c in clusters]
    gaps.sort(key=lambda g: (-g.count, g.label))
    return gaps


def _vector(words: set[str], df: Counter[str], n: int, lex: Lexicon) -> tuple[dict[str, float], float]:
    """Word weights: rarity among the questions (idf) times informativeness."""
    vec = {w: math.log(1 + n / df[w]) * lex.informativeness(w) for w in words}
    vec = {w: v for w, v in vec.items() if v > 0}
    return vec, math.sqrt(sum(v * v for v in vec.values()))


def _gap(c: _Cluster, channels: dict[str, Counter[str]], entries: dict[str, Counter[str]]) -> Gap:
    members = sorted(c.members, key=lambda m: (-m[1], len(m[0]), m[0]))
    chans: Counter[str] = Counter()
    near: Counter[str] = Counter()
    for text, _ in members:
        chans.update(channels[text])
        near.update(entries[text])
    return Gap(
        label=members[0][0],
        count=sum(n for _, n in members),
        questions=[t for t, _ in members[:MAX_EXAMPLES]],
        channels=dict(chans.most_common()),
        nearest_entry_id=near.most_common(1)[0][0] if near else None,
        counts=[n for _, n in members[:MAX_EXAMPLES]],
    )


# -- reading the questions ------------------------------------------------------------------------------
async def unanswered(
    sessions: async_sessionmaker[AsyncSession], since: datetime, limit: int = 200_000
) -> list[Asked]:
    """The questions not answered outright since ``since``, with their channel and best candidate."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    Message.text, Message.entry_id, Message.payload, Conversation.channel, Ticket.candidates
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .outerjoin(Ticket, Ticket.id == Message.ticket_id)
                .where(
                    Message.direction == "in",
                    Message.author == "user",
                    Message.status.in_(GAP_STATUSES),
                    Message.created_at >= since,
                )
                .order_by(Message.id.desc())
                .limit(limit)
            )
        ).all()
        not_helpful = (
            await session.execute(
                select(Ticket.question, Ticket.candidates, Conversation.channel)
                .join(Conversation, Conversation.id == Ticket.conversation_id)
                .where(Ticket.reason == "not_helpful", Ticket.created_at >= since)
                .limit(limit)
            )
        ).all()
    out = [
        Asked(text, channel, _best(entry_id, payload, cands))
        for text, entry_id, payload, channel, cands in rows
    ]
    out += [Asked(q, channel, _best(None, None, cands)) for q, cands, channel in not_helpful]
    return out


def _best(
    entry_id: str | None, payload: dict[str, Any] | None, candidates: Iterable[dict] | None
) -> str | None:
    """The bot's best candidate for a stored question: its decision's entry, its first suggestion, or
    its ticket's first candidate."""
    if entry_id:
        return entry_id
    for c in (payload or {}).get("suggestions", []) or []:
        if isinstance(c, dict) and c.get("entry_id"):
            return str(c["entry_id"])
    for c in candidates or []:
        if isinstance(c, dict) and c.get("entry_id"):
            return str(c["entry_id"])
    return None


async def find_gaps(
    sessions: async_sessionmaker[AsyncSession],
    lex: Lexicon,
    days: int = 30,
    now: datetime | None = None,
    threshold: float = THRESHOLD,
) -> list[Gap]:
    """The clusters of the last ``days`` days, largest first."""
    since = (now or utcnow()) - timedelta(days=days)
    return cluster(await unanswered(sessions, since), lex, threshold)


def fill_nearest(gaps: Sequence[Gap], search: Any, limit: int = 50) -> None:
    """Give the first ``limit`` clusters without a stored candidate the best match for their label
    (``search``: the knowledge base's matcher)."""
    for g in list(gaps)[:limit]:
        if g.nearest_entry_id is None:
            _, cands = search.search(g.label, limit=1)
            g.nearest_entry_id = cands[0].entry_id if cands else None

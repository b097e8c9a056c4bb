"""The question-answering service: a Chinese question in, a ``Decision`` with its evidence out."""

from __future__ import annotations

import logging
import unicodedata

from bot.confidence import FEATURES, features, same_section, shipped_model
from bot.config import MatchingSettings
from bot.decide import decide, distinct, held_by, same_answer
from bot.messages import Decision, Suggestion
from knowledge.answers import (
    answer_text,
    citation,
    penalty_section,
    section_answer,
    source_of,
    telling_section,
)
from knowledge.models import Entry
from knowledge.retrieve import MATTER_WEIGHT, Candidate, Query, asked_aspect, asked_form
from knowledge.smalltalk import find_small_talk, said_apart
from knowledge.store import KnowledgeBase
from knowledge.text import clean_display, has_han

log = logging.getLogger("policybot.qa")

EMPTY_NOTICE = "请输入您想咨询的问题，例如：“申请政府信息公开多久答复？”"
TOO_LONG_NOTICE = "问题太长了（超过 {limit} 字），请精简后再问，或输入 /human 转人工。"
NO_TEXT_NOTICE = "没有看到文字内容。请用文字描述您的问题。"
ESCALATE_NOTICE = "这个问题知识库里还没有可靠的答案。"
# A question in letters only (no Chinese) that nothing answers: the knowledge base is in Chinese.
NOT_CHINESE_NOTICE = (
    "目前只能回答中文问题，请用中文描述您的问题。\n"
    "Sorry, I can only answer questions asked in Chinese. Please ask in Chinese, or tap 转人工 to reach our staff."
)
LATIN_LETTERS = 4  # letters a question without Chinese needs to be read as another language
CLOSEST_LIMIT = 3  # closest entries offered with a question the bot cannot answer
TELLING_WEIGHT = 0.2  # a question word lighter than this (要, 办, 填) tells no guide section apart
ASKS_ABOUT = "呢"  # a clause ending so asks about what it names (湖北呢), whatever its words


def closest(candidates: list[Suggestion], limit: int = CLOSEST_LIMIT) -> list[Suggestion]:
    """The candidates of a question without a reliable answer, one per title (never the same label
    twice)."""
    out: dict[str, Suggestion] = {}
    for c in candidates:
        out.setdefault(c.title.strip(), c)
    return list(out.values())[:limit]


def not_chinese(text: str) -> bool:
    """A text of Latin letters (an English question) without a Chinese character."""
    return not has_han(text) and sum(c.isascii() and c.isalpha() for c in text) >= LATIN_LETTERS


class QAService:
    """Normalize, retrieve, re-rank and decide; knows nothing of channels."""

    def __init__(self, kb: KnowledgeBase, settings: MatchingSettings) -> None:
        self.kb = kb
        self.settings = settings

    async def ask(self, question: str) -> Decision:
        """Decide for one question. Never raises on any text."""
        shown = clean_display(question)
        if len(question) > self.settings.max_question_chars:
            limit = self.settings.max_question_chars
            return Decision(
                shown[:200], "escalated", notice=TOO_LONG_NOTICE.format(limit=limit), invalid=True
            )
        if not shown:
            return Decision(shown, "escalated", notice=EMPTY_NOTICE, invalid=True)
        if not any(unicodedata.category(c)[0] in "LN" for c in shown):
            return Decision(shown, "escalated", notice=NO_TEXT_NOTICE, invalid=True)
        if (small := find_small_talk(self.kb.index, question)) and (
            entry := await self.kb.answer_entry(small)
        ):
            return self._small_talk(shown, entry)
        query, cands = self.kb.matcher.search(question, limit=10)
        verdict = decide(query, cands, self.settings)
        if (small := self._small_talk_apart(question, query)) and (
            entry := await self.kb.answer_entry(small)
        ):
            return self._small_talk(shown, entry)
        suggestions = [Suggestion(c.entry_id, c.info.title, c.score) for c in verdict.alternatives]
        best = verdict.best
        decision = Decision(
            shown,
            verdict.status,  # type: ignore[arg-type]
            score=best.score if best else 0.0,
            aspect=query.aspect,
            confidence=verdict.confidence,
            kind=best.info.kind if best else None,
            matterless=bool(verdict.features and verdict.features[FEATURES.index("matterless")]),
        )
        # The closest entries for staff and for "no exact answer yet" (small talk is never one of them).
        decision.candidates = [
            Suggestion(c.entry_id, c.info.title, c.score) for c in cands if c.info.kind != "smalltalk"
        ][:3]
        if best is not None and verdict.status != "escalated":
            decision.entry_id, decision.title = best.entry_id, best.info.title
        # (None when the entry was removed between search and read: no answer then)
        answered = best.entry_id if best is not None and verdict.status == "answered" else None
        entry = await self.kb.answer_entry(answered) if answered else None
        if entry is not None:
            # Clauses of one section tied with it answer together (``same_section``).
            together = same_section(best, verdict.alternatives[1:]) if best is not None else []
            parts = [e for c in together if (e := await self.kb.answer_entry(c.entry_id)) is not None]
            aspect, asked = query.aspect, query.aspects
            # Asked what comes of not doing something, a guide answers with the section stating it.
            if query.asks_consequence and (penalty := penalty_section(entry)):
                aspect, asked = penalty, (penalty,)
                decision.aspect = penalty
            # ... and the section saying more of what its asking clauses name than the one asked for.
            elif telling := telling_section(entry, self._said_asking(query), aspect):
                aspect, asked = telling, tuple(dict.fromkeys((telling, *asked)))
                decision.aspect = telling
            _answer_with(decision, entry, aspect, [entry, *parts] if parts else None, asked)
            joined = {c.entry_id for c in together}
            decision.suggestions = [s for s in suggestions[1:] if s.entry_id not in joined]
        elif verdict.status == "suggested":
            decision.suggestions = suggestions
        else:
            # No answer: the closest entries are still offered (the chat lists them beside 转人工).
            decision.status = "escalated"
            decision.notice = NOT_CHINESE_NOTICE if not_chinese(shown) else ESCALATE_NOTICE
            decision.suggestions = closest([c for c in decision.candidates if c.entry_id != answered])
            decision.entry_id = decision.title = decision.kind = None
        log.info(
            "decided",
            extra={
                "status": decision.status,
                "score": round(decision.score, 3),
                "confidence": round(decision.confidence, 3),
                "entry": decision.entry_id,
            },
        )
        return decision

    def _said_asking(self, query: Query) -> list[tuple[tuple[str, ...], float]]:
        """The words that name a matter (not how it asks, not the lightest: 要, 办) in a question's
        asking clauses that ask for no guide section (all of them when none does), each with its
        spellings and weight, for ``telling_section``: a clause asking for a section has its answer
        there (二手车备案在哪个系统上填报: 在线办理, whatever other section says 填报)."""
        asking = [c for c in query.norm.split() if asked_form(c)] or [query.norm]
        clauses = [c for c in asking if not asked_aspect(c)] if query.aspect else asking
        if not clauses:
            return []
        out: list[tuple[tuple[str, ...], float]] = []
        for i, (word, w) in enumerate(zip(query.words, query.weights, strict=True)):
            if query.asking >> i & 1 or w < TELLING_WEIGHT:
                continue
            spellings = (word, *self.kb.matcher.lex.spellings(word))
            if any(s in c for s in spellings for c in clauses):
                out.append((spellings, w))
        return out

    def answered_by(self, alone: Decision, entry: Entry, aspect: str | None) -> Decision:
        """The question of ``alone`` (its own decision) answered with ``entry`` (for a guide, its section
        ``aspect``), chosen by the conversation rather than by the match: a follow-up to an answer
        (要多久 after a guide's materials). Score and confidence stay the match's own."""
        d = Decision(
            alone.question, "answered", score=alone.score, aspect=aspect, confidence=alone.confidence
        )
        d.entry_id, d.title, d.candidates = entry.id, entry.title, alone.candidates
        _answer_with(d, entry, aspect)
        return d

    def _small_talk_apart(self, question: str, query: Query) -> str | None:
        """The small-talk entry of a message that says small talk in a clause of its own and asks
        nothing besides (``said_apart``: 谢谢，帮大忙了; 你好，我想问一下; 好的 我再看看): its other clauses
        ask for no guide section and in no form, and name no matter the knowledge base knows (a word
        of ``MATTER_WEIGHT`` or more that some entry says). None otherwise: 你好，我想开个奶茶店 names
        a matter, 好的，那要多久 asks for a section (a follow-up: bot/conversation.py), 谢谢，那个是什么意思
        asks what. Its matter unknown, the message has no answer to lose; its small talk has a reply,
        taken over an answer too: that answer was found by the small talk's own words (答非所问，气死我了
        matches the FAQ on reaching a human by 答非所问, and is a complaint to apologise for)."""
        if query.aspect is not None or (apart := said_apart(self.kb.index, question)) is None:
            return None
        entry_id, rest = apart
        index = self.kb.index
        with index.reading():
            q = self.kb.matcher.analyse(rest)
            named = any(
                weight >= MATTER_WEIGHT and not q.asking >> i & 1 and index.knows(word)
                for i, (word, weight) in enumerate(zip(q.words, q.weights, strict=True))
            )
        # (湖北呢, 还有呢: a clause ending in 呢 asks "and what of ...", a follow-up's way of asking)
        asks = q.aspect or q.forms or any(c.endswith(ASKS_ABOUT) for c in rest.split())
        return None if named or asks else entry_id

    def _small_talk(self, shown: str, entry: Entry) -> Decision:
        """A greeting, thanks, goodbye...: answered by its entry as said, whatever the thresholds."""
        log.info("decided", extra={"status": "answered", "kind": "smalltalk", "entry": entry.id})
        return Decision(
            shown,
            "answered",
            score=1.0,
            answer=answer_text(entry),
            entry_id=entry.id,
            title=entry.title or entry.question,
            source=source_of(entry),
            kind=entry.kind,
            confidence=1.0,  # said word for word
            entry=entry,
        )

    async def explain(self, question: str, limit: int = 5) -> list[dict[str, object]]:
        """Scored candidates with their features (staff console, tuning), each with the probability
        that it answers the question were it the best (the other answers after it as its rivals)."""
        query, cands = self.kb.matcher.search(question, limit=limit)
        return _explained(query, cands)

    async def explain_decision(self, question: str, limit: int = 5) -> dict[str, object]:
        """The decision with its evidence (``policybot ask --explain``): status, confidence, the
        question's words with their weights, and the candidates as ``explain`` gives them."""
        query, cands = self.kb.matcher.search(question, limit=max(limit, 10))
        verdict = decide(query, cands, self.settings)
        x = verdict.features
        return {
            "question": question,
            "status": verdict.status,
            # why a confident best is not the answer (``held_by``): None when it is, or is not confident;
            # "thin" when the decision went past it on another path
            "held": None
            if verdict.status == "answered"
            or verdict.best is None
            or x is None
            or verdict.confidence < self.settings.precision
            else held_by(query, verdict.best, x, cands) or "thin",
            "entry_id": verdict.best.entry_id if verdict.best else None,
            "confidence": round(verdict.confidence, 4),
            "precision": self.settings.precision,
            "aspect": query.aspect,
            "words": dict(zip(query.words, (round(w, 2) for w in query.weights), strict=False)),
            "candidates": _explained(query, cands[:limit]),
        }


def _answer_with(
    decision: Decision,
    entry: Entry,
    aspect: str | None,
    section: list[Entry] | None = None,
    asked: tuple[str, ...] = (),
) -> None:
    """Fill ``decision`` with ``entry``'s answer (its section ``aspect``, for a guide, with the other
    sections the question's clauses ask, ``asked``; with the other clauses of its ``section``, for a
    clause answering together with them) and source."""
    decision.kind, decision.entry = entry.kind, entry
    decision.answer = section_answer(section) if section else answer_text(entry, aspect, asked)
    decision.source = source_of(entry)
    decision.citation = citation(entry, section=bool(section))


def _explained(query: Query, cands: list[Candidate]) -> list[dict[str, object]]:
    model = shipped_model()
    rows: list[dict[str, object]] = []
    for i, c in enumerate(cands):
        rivals = [o for o in cands[i + 1 :] if not same_answer(o, c)]
        x = features(query, c, distinct(rivals, len(rivals)))
        rows.append(
            {
                "entry_id": c.entry_id,
                "kind": c.info.kind,
                "title": c.info.title,
                "score": round(c.score, 4),
                "probability": round(model.p_answer(c, x), 4),
                "coverage": round(c.coverage, 3),
                "key_coverage": round(c.key_coverage, 3),
                "phrase": round(c.phrase, 3),
                "question_sim": round(c.question_sim, 3),
                "bm25": round(c.bm25, 3),
                "peers": c.peers,
                "features": {name: round(v, 3) for name, v in zip(FEATURES, x, strict=True)},
            }
        )
    return rows

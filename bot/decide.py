"""Answer, suggest or escalate: pure functions of the scored candidates and the thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import MatchingSettings
from knowledge.retrieve import Candidate


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision before it is rendered: status, best candidate, and the distinct alternatives."""

    status: str
    best: Candidate | None
    alternatives: list[Candidate]


def same_answer(x: Candidate, y: Candidate) -> bool:
    """Two entries that give one answer (same text, or a policy and its own Q&A)."""
    a, b = x.info, y.info
    return a.answer_sig == b.answer_sig or a.parent_id == b.entry_id or b.parent_id == a.entry_id


def distinct(cands: list[Candidate], limit: int) -> list[Candidate]:
    """The best candidates, one per answer."""
    out: list[Candidate] = []
    for c in cands:
        if all(not same_answer(c, o) for o in out):
            out.append(c)
        if len(out) == limit:
            break
    return out


CHILD_SLACK = 0.15  # a policy's own Q&A this close to the policy is the more specific answer


def most_specific(best: Candidate, cands: list[Candidate]) -> Candidate:
    """The best candidate, or its own Q&A child when that scores nearly as well. A document's clauses
    are its parts, not answers to questions about it: asked for its date or number, the document
    itself answers, so a clause never replaces it."""
    children = [
        c
        for c in cands
        if c.info.parent_id == best.entry_id
        and c.info.kind != "clause"
        and c.score >= best.score - CHILD_SLACK
    ]
    return max(children, key=lambda c: c.score) if children else best


def asked_as_own_question(best: Candidate, runner_up: Candidate | None, m: MatchingSettings) -> bool:
    """The scores are close because both entries cover the question's words, but the question was
    asked as the best entry's own question (or an alternate), clearly more than as the runner-up's:
    the wording, not the vocabulary, tells them apart (near-duplicate FAQs, a policy's sibling Q&As)."""
    if runner_up is None:
        return False
    return (
        best.question_sim >= m.own_question_sim
        and best.question_sim - runner_up.question_sim >= m.own_question_gap
    )


def decide(cands: list[Candidate], m: MatchingSettings) -> Verdict:
    """``answered`` when the best score and its margin over the runner-up clear the thresholds (a
    smaller margin will do above ``sure_threshold``; an entry without questions of its own needs
    ``unasked_answer_threshold``); ``suggested`` when it is close; ``escalated`` otherwise."""
    top = distinct(cands, max(m.max_suggestions, 2))
    if not top or top[0].score < m.suggest_threshold:
        return Verdict("escalated", top[0] if top else None, top)
    specific = most_specific(top[0], cands)
    if specific.score >= m.suggest_threshold:  # a child too weak to offer must not replace its parent
        top[0] = specific
    best = top[0]
    runner_up = top[1] if len(top) > 1 else None
    margin = best.score - (runner_up.score if runner_up else 0.0)
    confident = (
        margin >= m.answer_margin
        or (best.score >= m.sure_threshold and margin >= m.sure_margin)
        or asked_as_own_question(best, runner_up, m)
    )
    # Without questions of its own an entry's score rests on coverage alone: it must reach more.
    threshold = m.answer_threshold if best.info.questions else m.unasked_answer_threshold
    if best.score >= threshold and confident:
        return Verdict("answered", best, top)
    return Verdict("suggested", best, [c for c in top if c.score >= m.suggest_threshold][: m.max_suggestions])

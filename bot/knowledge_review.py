"""Knowledge review: what staff save from a ticket is a proposal until an editor approves it (an
editor's own saves publish at once), personal data never becomes knowledge, every staff change of an
entry is kept and can be reverted.

Personal data (``bot.privacy``: phone, ID-card and bank-card numbers, e-mail addresses, names introduced
as 我叫…) found in a proposal blocks its approval until it is masked or edited out; an edit of an
existing entry is refused when it adds personal data the entry did not have (the bureau's own published
numbers already in an entry do not block editing it).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import privacy
from bot.personal_data import findings as _findings
from bot.personal_data import personal_data
from bot.tickets import TicketError
from knowledge.importers import entry_to_parsed
from knowledge.importers.base import ImportFailure, ParsedEntry, check_entry
from knowledge.models import EntryRevision, KnowledgeProposal, Ticket, utcnow
from knowledge.store import KnowledgeBase

STAFF_CATEGORY = "工作人员答复"


class ReviewError(ValueError):
    """A review action that cannot be done (unknown proposal, already decided, bad text...)."""


class PersonalDataError(ReviewError):
    """Text that would become knowledge holds personal data; ``kinds`` names what was found."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        super().__init__(f"含有个人信息（{'、'.join(kinds)}），请先遮盖或删除后再保存为知识")


def entry_texts(e: ParsedEntry) -> list[str]:
    """Every text of an entry a visitor could be shown."""
    return [e.title, e.question, e.answer, *e.alternates, *(t for s in e.sections for t in s)]


def new_personal_data(edited: ParsedEntry, before: ParsedEntry | None) -> list[str]:
    """The personal data in ``edited`` that ``before`` did not hold (all of it for a new entry)."""
    old = {masked for t in entry_texts(before) for _, masked in _findings(t)} if before else set()
    kinds: list[str] = []
    for text in entry_texts(edited):
        for label, masked in _findings(text):
            if masked not in old and label not in kinds:
                kinds.append(label)
    return kinds


@dataclass(frozen=True, slots=True)
class Saved:
    """The outcome of saving from a ticket: published at once, or a proposal waiting for review."""

    published: bool
    entry_id: str | None
    proposal_id: int | None


class KnowledgeReview:
    """Proposals, approval, and revisions over the knowledge base."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], kb: KnowledgeBase) -> None:
        self.sessions = sessions
        self.kb = kb

    # -- from a ticket ----------------------------------------------------------------------------------
    async def save_from_ticket(
        self,
        ticket_id: int,
        staff_name: str,
        *,
        publish: bool,
        entry_id: str | None = None,
        candidate: int | None = None,
        mask: bool = False,
    ) -> Saved:
        """The ticket's question as an alternate phrasing of ``entry_id`` (or candidate number
        ``candidate``), or question and staff answer as a new FAQ. ``publish`` (an editor): straight into
        the knowledge base, refused if it holds personal data unless ``mask``; otherwise a proposal."""
        async with self.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketError(f"没有工单 #{ticket_id}")
        if candidate is not None:
            if not 0 <= candidate < len(ticket.candidates):
                raise TicketError(f"工单 #{ticket_id} 没有第 {candidate + 1} 个候选")
            entry_id = str(ticket.candidates[candidate]["entry_id"])
        if entry_id and await self.kb.get(entry_id) is None:
            raise TicketError(f"没有知识条目 {entry_id}")
        if not entry_id and not ticket.answer:
            raise TicketError(f"工单 #{ticket_id} 还没有工作人员答复，请先回复再存为知识")
        question, answer = ticket.question, "" if entry_id else ticket.answer
        if mask:
            question, answer = privacy.mask(question), privacy.mask(answer)
        proposal = KnowledgeProposal(
            kind="alternate" if entry_id else "new",
            entry_id=entry_id,
            question=question,
            answer=answer,
            category=STAFF_CATEGORY,
            ticket_id=ticket.id,
            proposed_by=staff_name,
        )
        if publish:
            found = personal_data([question, answer])
            if found:
                raise PersonalDataError(found)
            saved = await self._apply(proposal, staff_name)
            await self._mark_saved(ticket.id, saved)
            return Saved(True, saved, None)
        async with self.sessions() as session, session.begin():
            session.add(proposal)
        return Saved(False, entry_id, proposal.id)

    async def _mark_saved(self, ticket_id: int, entry_id: str) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(Ticket, ticket_id)
            if row is not None:
                row.saved_entry_id = entry_id

    async def _apply(self, p: KnowledgeProposal, actor: str) -> str:
        """Put a proposal into the knowledge base; returns the entry id."""
        if p.kind == "alternate" and p.entry_id:
            if not await self.kb.add_alternate(p.entry_id, p.question, actor=actor):
                raise ReviewError(f"没有知识条目 {p.entry_id}")
            return p.entry_id
        entry_id = (
            f"staff-{p.ticket_id}" if p.ticket_id else f"staff-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        )
        if await self.kb.get(entry_id) is not None:
            entry_id = f"{entry_id}-{secrets.token_hex(2)}"
        entry = ParsedEntry(
            id=entry_id,
            kind="faq",
            question=p.question,
            answer=p.answer,
            category=p.category or STAFF_CATEGORY,
            tags=["人工答复"],
            source={
                "title": "工作人员答复",
                "note": f"{'工单 #' + str(p.ticket_id) + '，' if p.ticket_id else ''}{p.proposed_by}",
            },
            origin=f"ticket:{p.ticket_id}" if p.ticket_id else f"review:{p.id}",
        )
        try:
            check_entry(entry, "entry", None)
        except ImportFailure as exc:
            raise ReviewError(exc.reason) from None
        await self.kb.write_entries([entry], actor=actor, action="create")
        return entry_id

    # -- the review queue -------------------------------------------------------------------------------
    async def proposals(self, status: str = "pending", limit: int = 200) -> list[KnowledgeProposal]:
        """Proposals in a state, oldest first for pending ones, newest first otherwise."""
        order = KnowledgeProposal.id if status == "pending" else KnowledgeProposal.id.desc()
        async with self.sessions() as session:
            return list(
                await session.scalars(
                    select(KnowledgeProposal)
                    .where(KnowledgeProposal.status == status)
                    .order_by(order)
                    .limit(limit)
                )
            )

    async def proposal(self, proposal_id: int) -> KnowledgeProposal:
        async with self.sessions() as session:
            p = await session.get(KnowledgeProposal, proposal_id)
        if p is None:
            raise ReviewError(f"没有待审核的知识 #{proposal_id}")
        return p

    async def propose(
        self, *, question: str, answer: str = "", entry_id: str | None = None, category: str = "", by: str
    ) -> KnowledgeProposal:
        """A proposal made outside a ticket (e.g. from a knowledge gap)."""
        p = KnowledgeProposal(
            kind="alternate" if entry_id else "new",
            entry_id=entry_id,
            question=question.strip(),
            answer=answer.strip(),
            category=category.strip()[:100] or STAFF_CATEGORY,
            proposed_by=by,
        )
        if not p.question or (p.kind == "new" and not p.answer):
            raise ReviewError("问题和答案都不能为空")
        async with self.sessions() as session, session.begin():
            session.add(p)
        return p

    async def decide(
        self,
        proposal_id: int,
        editor: str,
        approve: bool,
        *,
        question: str | None = None,
        answer: str | None = None,
        mask: bool = False,
    ) -> KnowledgeProposal:
        """Approve (publish) or reject a pending proposal. The editor may correct its question and answer,
        or mask the personal data in them; approval is refused while personal data remains."""
        async with self.sessions() as session, session.begin():
            p = await session.get(KnowledgeProposal, proposal_id, with_for_update=True)
            if p is None:
                raise ReviewError(f"没有待审核的知识 #{proposal_id}")
            if p.status != "pending":
                raise ReviewError(f"知识 #{proposal_id} 已经审核过了")
            if question is not None:
                p.question = question.strip()
            if answer is not None and p.kind == "new":
                p.answer = answer.strip()
            if mask:
                p.question, p.answer = privacy.mask(p.question), privacy.mask(p.answer)
            p.decided_by, p.decided_at = editor, utcnow()
            if not approve:
                p.status = "rejected"
                return p
            if not p.question or (p.kind == "new" and not p.answer):
                raise ReviewError("问题和答案都不能为空")
            found = personal_data([p.question, p.answer])
            if found:
                raise PersonalDataError(found)
            p.status = "approved"
        # The entry is written after the proposal's transaction: a failure puts it back to pending.
        try:
            p.result_entry_id = await self._apply(p, editor)
        except ReviewError:
            await self._reopen(p.id)
            raise
        async with self.sessions() as session, session.begin():
            row = await session.get(KnowledgeProposal, p.id)
            assert row is not None
            row.result_entry_id = p.result_entry_id
            if row.ticket_id:
                t = await session.get(Ticket, row.ticket_id)
                if t is not None:
                    t.saved_entry_id = p.result_entry_id
        return p

    async def _reopen(self, proposal_id: int) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(KnowledgeProposal, proposal_id)
            if row is not None:
                row.status, row.decided_by, row.decided_at = "pending", "", None

    # -- from a knowledge gap ---------------------------------------------------------------------------
    async def create_faq(
        self, question: str, answer: str, category: str, alternates: list[str], actor: str
    ) -> str:
        """A new published FAQ (an editor's, from a gap): the question, its other phrasings (masked;
        any still holding personal data left out) and the answer, which must hold none."""
        question = privacy.mask(question.strip())
        answer = answer.strip()
        if not question or not answer:
            raise ReviewError("问题和答案都不能为空")
        others = _clean_phrasings(alternates, exclude=question)
        entry = ParsedEntry(
            id=f"faq-gap-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
            kind="faq",
            question=question,
            answer=answer,
            alternates=others,
            category=category.strip()[:100] or STAFF_CATEGORY,
            source={"title": "工作人员录入", "note": f"由知识缺口新建，{actor}"},
            origin=f"gaps:{actor}",
        )
        found = new_personal_data(entry, None)
        if found:
            raise PersonalDataError(found)
        try:
            check_entry(entry, "entry", None)
        except ImportFailure as exc:
            raise ReviewError(exc.reason) from None
        await self.kb.write_entries([entry], actor=actor, action="create")
        return entry.id

    async def add_phrasings(self, entry_id: str, questions: list[str], actor: str) -> int:
        """Add questions (masked; any still holding personal data left out) as other phrasings of an
        entry in one change. Returns how many were new."""
        row = await self.kb.get(entry_id)
        if row is None:
            raise ReviewError(f"没有知识条目 {entry_id}")
        edited = entry_to_parsed(row)
        fresh = [
            q for q in _clean_phrasings(questions, exclude=edited.question) if q not in edited.alternates
        ]
        if not fresh:
            return 0
        edited.alternates = [*edited.alternates, *fresh]
        children: list[ParsedEntry] = []
        if edited.kind in ("guide", "policy"):
            children = [
                entry_to_parsed(c)
                for c in await self.kb.entries(limit=10_000_000)
                if c.parent_id == edited.id
            ]
        await self.kb.write_entries([edited, *children], actor=actor, action="alternate")
        return len(fresh)

    # -- revisions --------------------------------------------------------------------------------------
    async def revision(self, revision_id: int) -> EntryRevision:
        async with self.sessions() as session:
            rev = await session.get(EntryRevision, revision_id)
        if rev is None:
            raise ReviewError(f"没有修改记录 #{revision_id}")
        return rev

    async def revert(self, revision_id: int, actor: str) -> str:
        """Put an entry back as it was before a change (a created entry is retired). Itself a change."""
        rev = await self.revision(revision_id)
        current = await self.kb.get(rev.entry_id)
        if rev.before is None:
            if current is None:
                raise ReviewError(f"知识条目 {rev.entry_id} 已不存在")
            await self.kb.set_status(rev.entry_id, "expired", actor=actor, action="revert")
            return rev.entry_id
        try:
            entry = ParsedEntry(**rev.before)
        except TypeError as exc:
            raise ReviewError(f"修改记录 #{revision_id} 无法恢复：{exc}") from None
        entry.origin = current.origin if current is not None else f"revert:{revision_id}"
        children: list[ParsedEntry] = []
        if entry.kind in ("guide", "policy"):
            # Writing a parent removes the children missing from the write: keep the current ones.
            children = [
                entry_to_parsed(c) for c in await self.kb.entries(limit=10_000_000) if c.parent_id == entry.id
            ]
        await self.kb.write_entries([entry, *children], actor=actor, action="revert")
        return rev.entry_id


def _clean_phrasings(questions: Iterable[str], exclude: str = "") -> list[str]:
    """Distinct questions, masked, without any that still hold personal data, short enough to keep."""
    out: list[str] = []
    for q in questions:
        q = privacy.mask((q or "").strip())[:500]
        if q and q != exclude and q not in out and not personal_data([q]):
            out.append(q)
    return out


def changed_fields(before: dict | None, after: dict | None) -> list[str]:
    """The names of the fields a revision changed."""
    if before is None or after is None:
        return ["全部"]
    return [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]

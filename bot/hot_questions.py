"""热点问题: the questions the welcome offers as buttons.

In order: the entries staff pinned (console: 热点问题), then the entries that answered the most
questions in the last ``[desk] hot_days`` days, then ``[desk] hot_defaults`` (the shipped knowledge
base's most asked matters) while there is room. Only published entries that answer a question of the
bureau's own are offered (no small talk, no referral to another body); each appears once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DeskSettings
from bot.messages import Button
from bot.protocol import entry_action, fits_button
from knowledge.importers.base import DESK_KINDS
from knowledge.models import Entry, Message, PinnedQuestion, utcnow
from knowledge.store import KnowledgeBase

LABEL_CHARS = 40
NOT_HOT_KINDS = DESK_KINDS  # small talk and referrals are never a hot question
MAX_PINNED = 12
HOT_TAG = "热点问题"  # a small-talk entry with this tag (你好, 你能做什么) is followed by the hot questions


class PinError(ValueError):
    """A pin that cannot be made: no such published entry, a kind that is never hot, too many pins."""


@dataclass(frozen=True, slots=True)
class HotQuestion:
    """One hot question: the entry, its label, and why it is offered (pinned, asked N times, default)."""

    entry_id: str
    label: str
    source: str  # pinned | asked | default
    asked: int = 0

    @property
    def action(self) -> str:
        return entry_action(self.entry_id)


def label_of(entry: Entry) -> str:
    """An entry as a hot question: its own question, else its title, cut to fit a button."""
    text = " ".join((entry.question or entry.title).split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def offerable(entry: Entry | None) -> bool:
    """Whether ``entry`` may be a hot question."""
    return (
        entry is not None
        and entry.status == "published"
        and entry.kind not in NOT_HOT_KINDS
        and fits_button(entry_action(entry.id))
    )


class HotQuestions:
    """Computes the hot questions and keeps the staff's pins."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], kb: KnowledgeBase, settings: DeskSettings
    ) -> None:
        self.sessions = sessions
        self.kb = kb
        self.settings = settings

    async def top(
        self, now: datetime | None = None, limit: int | None = None, session: AsyncSession | None = None
    ) -> list[HotQuestion]:
        """The hot questions, pinned first (read in ``session`` when the caller has one open: a
        conversation's turn holds one database connection, never a second)."""
        limit = self.settings.hot_count if limit is None else limit
        if limit <= 0:
            return []
        since = (now or utcnow()) - timedelta(days=self.settings.hot_days)
        if session is not None:
            return await self._top(session, since, limit)
        async with self.sessions() as own:
            return await self._top(own, since, limit)

    async def _top(self, session: AsyncSession, since: datetime, limit: int) -> list[HotQuestion]:
        pinned = [p.entry_id for p in await self._pins(session)]
        asked = list(
            (str(e), int(n))
            for e, n in await session.execute(
                select(Message.entry_id, func.count())
                .where(
                    Message.direction == "in",
                    Message.author == "user",
                    Message.status == "answered",
                    Message.entry_id.is_not(None),
                    Message.created_at >= since,
                )
                .group_by(Message.entry_id)
                .order_by(func.count().desc(), Message.entry_id)
                .limit(limit * 4)
            )
        )
        wanted = list(dict.fromkeys([*pinned, *(e for e, _ in asked), *self.settings.hot_defaults]))
        entries = {e.id: e for e in await session.scalars(select(Entry).where(Entry.id.in_(wanted)))}
        counts = dict(asked)
        out: list[HotQuestion] = []
        seen: set[str] = set()
        for source, ids in (
            ("pinned", pinned),
            ("asked", [e for e, _ in asked]),
            ("default", self.settings.hot_defaults),
        ):
            for entry_id in ids:
                entry = entries.get(entry_id)
                if entry_id in seen or not offerable(entry) or len(out) >= limit:
                    continue
                assert entry is not None
                seen.add(entry_id)
                out.append(HotQuestion(entry_id, label_of(entry), source, counts.get(entry_id, 0)))
        return out

    async def buttons(self, session: AsyncSession | None = None) -> list[list[Button]]:
        """The hot questions as buttons, one a row."""
        return [[Button(h.label, h.action)] for h in await self.top(session=session)]

    async def pins(self) -> list[PinnedQuestion]:
        """The staff's pins in order."""
        async with self.sessions() as session:
            return await self._pins(session)

    async def _pins(self, session: AsyncSession) -> list[PinnedQuestion]:
        return list(
            await session.scalars(
                select(PinnedQuestion).order_by(PinnedQuestion.position, PinnedQuestion.created_at)
            )
        )

    async def pin(self, entry_id: str, staff_name: str) -> PinnedQuestion:
        """Pin a published entry (after the others); ``PinError`` when it cannot be offered."""
        entry_id = entry_id.strip()
        entry = await self.kb.get(entry_id) if entry_id and len(entry_id) <= 200 else None
        if entry is None or not offerable(entry):
            raise PinError(f"没有可置顶的已发布知识「{entry_id[:80]}」（寒暄和他部门事项不能置顶）")
        async with self.sessions() as session, session.begin():
            existing = await session.get(PinnedQuestion, entry_id)
            if existing is not None:
                return existing
            count = int(await session.scalar(select(func.count()).select_from(PinnedQuestion)) or 0)
            if count >= MAX_PINNED:
                raise PinError(f"最多置顶 {MAX_PINNED} 条，请先取消一条")
            last = await session.scalar(select(func.max(PinnedQuestion.position)))
            pin = PinnedQuestion(entry_id=entry_id, position=(last or 0) + 1, pinned_by=staff_name[:100])
            session.add(pin)
        return pin

    async def unpin(self, entry_id: str) -> bool:
        """Remove a pin; False when there was none."""
        async with self.sessions() as session, session.begin():
            pin = await session.get(PinnedQuestion, entry_id)
            if pin is None:
                return False
            await session.delete(pin)
        return True

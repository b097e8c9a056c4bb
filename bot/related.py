"""相关问题 under an answer: the same guide's other sections, the same policy's other Q&As, then the
next candidates of the search that score at least half the best, without duplicates and never the
entry just answered.

The offer is stored in the answer's payload (``related``) and each button carries only the answer's
message id and an index (``rel:<message>:<i>``), so actions stay within Telegram's 64 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Button, Suggestion
from bot.protocol import related_action
from knowledge.answers import GUIDE_OVERVIEW
from knowledge.models import Entry

LABEL_CHARS = 40
NO_RELATED_KINDS = ("smalltalk",)
GUIDE_SKIP = ("事项名称",)  # a guide's name is its title, not an aspect to ask about
RELATED_SCORE_SHARE = 0.5  # a next candidate is offered when it scores at least this share of the best


@dataclass(frozen=True, slots=True)
class Related:
    """One related question: an entry, the guide section to show (if any), and its button label."""

    entry_id: str
    label: str
    aspect: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "label": self.label, "aspect": self.aspect}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Related:
        aspect = data.get("aspect")
        return cls(str(data.get("entry_id", "")), str(data.get("label", "")), aspect if aspect else None)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _guide_title(entry: Entry) -> str:
    """A guide's title without its bracketed remark (「…（现行状态待确认）」), to keep labels short."""
    title = entry.title or entry.question
    cut = title.find("（")
    return title[:cut] if cut > 4 else title


async def related_for(
    session: AsyncSession,
    entry: Entry,
    aspect: str | None,
    candidates: list[Suggestion],
    limit: int,
    best: float = 0.0,
) -> list[Related]:
    """Up to ``limit`` related questions for the answer ``entry`` gave (for ``aspect`` of a guide);
    ``best``: the answer's own score, when the candidates leave it out. Read in the caller's
    ``session``: a conversation's turn holds one database connection, never a second (with several
    at once, turns waiting for a second connection drained PostgreSQL's pool)."""
    if limit <= 0 or entry.kind in NO_RELATED_KINDS:
        return []
    if entry.kind != "guide":
        aspect = None  # only a guide shows a section: a Q&A asked 什么时候施行 (设定依据) shows itself whole
    found: list[Related] = []
    seen: set[tuple[str, str | None]] = {(entry.id, aspect)}
    shown_whole = entry.kind == "guide" and aspect is None

    def add(item: Related) -> None:
        key = (item.entry_id, item.aspect)
        if key not in seen and item.entry_id and len(found) < limit:
            seen.add(key)
            found.append(item)

    if entry.kind == "guide":
        title = _guide_title(entry)
        skip = GUIDE_OVERVIEW if shown_whole else GUIDE_SKIP  # the overview shows those already
        for name, _ in entry.sections:
            if name not in skip:
                add(Related(entry.id, _short(f"{title}：{name}"), name))
    parent_id = entry.parent_id if entry.kind == "faq" and entry.parent_id else None
    family = parent_id or (entry.id if entry.kind == "policy" else None)
    if family is not None:
        rows = await session.scalars(
            select(Entry)
            .where(Entry.parent_id == family, Entry.status == "published", Entry.kind == "faq")
            .order_by(Entry.position, Entry.id)
            .limit(limit + 1)
        )
        for child in rows:
            add(Related(child.id, _short(child.question or child.title)))
    answered = {entry.id, entry.parent_id}
    # A candidate far below the best shares only an incidental word with the question (福州 in
    # 明天福州会下雨吗, answered by the weather referral): offered under the answer, it would be noise.
    floor = RELATED_SCORE_SHARE * max([best, *(c.score for c in candidates)])
    for c in candidates:
        if c.score < floor or c.entry_id in answered:
            continue
        if all(r.entry_id != c.entry_id for r in found):
            add(Related(c.entry_id, _short(c.title)))
    return found


def related_buttons(message_id: int, items: list[Related]) -> list[list[Button]]:
    """One button a row, 相关问题 in order."""
    return [[Button(item.label, related_action(message_id, i))] for i, item in enumerate(items)]

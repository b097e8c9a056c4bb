"""Routing: the responsible office (责任科室) of a new ticket, and why.

The bot's best candidate decides: a clause's responsible office or a guide's or policy's office (its own,
else its parent's), else the office of its category in ``[staff] category_offices``, else the default
office. An entry's office is matched to the configured offices by name, so the seed's
``外资与外经科（行政审批科）`` goes to ``外资与外经科``; ``各科室`` (every office) names none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffSettings
from knowledge.models import Entry

MAX_PARENTS = 3


@dataclass(frozen=True, slots=True)
class Route:
    """Where a ticket goes and the reason shown to staff."""

    office: str
    reason: str


def match_office(name: str, offices: Sequence[str]) -> str | None:
    """The configured office an entry's office name means, or None (``各科室``, unknown names)."""
    name = name.strip()
    if not name:
        return None
    if name in offices:
        return name
    for office in sorted(offices, key=len, reverse=True):
        if name.startswith(office) or office.startswith(name):
            return office
    return None


async def route(session: AsyncSession, candidates: Sequence[dict[str, Any]], staff: StaffSettings) -> Route:
    """The office for a ticket whose bot candidates (best first) are ``candidates``."""
    best = candidates[0] if candidates else None
    entry = await session.get(Entry, str(best["entry_id"])) if best else None
    if best is None or entry is None:
        return Route(staff.default_office, f"机器人没有可参考的候选条目，交默认科室 {staff.default_office}")
    title = str(best.get("title") or entry.title or entry.question or entry.id)[:60]
    row: Entry | None = entry
    for _ in range(MAX_PARENTS):
        if row is None:
            break
        office = match_office(row.office, staff.offices)
        if office:
            what = "条款的责任科室" if row.kind == "clause" else "条目所属科室"
            return Route(office, f"机器人的最佳候选「{title}」（{row.id}）{what}：{row.office}")
        row = await session.get(Entry, row.parent_id) if row.parent_id else None
    office = staff.category_offices.get(entry.category, "")
    if office:
        return Route(office, f"机器人的最佳候选「{title}」属于「{entry.category}」类，该类由 {office} 负责")
    return Route(
        staff.default_office,
        f"机器人的最佳候选「{title}」没有指定科室，其分类「{entry.category or '无'}」也未对应科室，"
        f"交默认科室 {staff.default_office}",
    )

"""The staff console's overview: how the bot and the staff are doing, computed with SQL.

Questions are the users' messages that the bot decided on (answered, suggested or escalated); follow-up
messages on an open ticket and invalid input (empty, too long) are not counted. Days are calendar days
in the staff time zone (``[staff] timezone``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import privacy
from bot.ratings import RATING_SCORES
from bot.ratings import counts as rating_counts
from bot.tickets import TicketService
from knowledge.models import DailyStats, Entry, Feedback, JobState, Message, Ticket, utcnow

QUESTION_STATUSES = ("answered", "suggested", "escalated")
DAYS = 14
TOP_UNANSWERED = 10
TOP_CATEGORIES = 8
PURGE_MARK = "purge_before"  # job_state: the first day ``policybot purge`` has not purged
PUSH_ROW = "push"  # daily_stats: the running totals of purged push deliveries (not a day)


@dataclass(frozen=True, slots=True)
class DayCount:
    """Questions on one day, by what the bot did."""

    day: str
    answered: int = 0
    suggested: int = 0
    escalated: int = 0

    @property
    def questions(self) -> int:
        return self.answered + self.suggested + self.escalated


@dataclass(frozen=True, slots=True)
class OfficeStats:
    """One office's tickets in the period: opened, answered, first response and the SLA."""

    office: str
    opened: int
    answered: int
    median_first_response_minutes: float | None
    within_sla: int  # answered within the SLA (working minutes)
    past_sla: int  # answered late, or still open past the SLA

    @property
    def sla_share(self) -> float:
        """Share of the tickets decided so far (answered, or open past the SLA) that met the SLA."""
        decided = self.within_sla + self.past_sla
        return self.within_sla / decided if decided else 0.0


@dataclass(frozen=True, slots=True)
class Overview:
    """The numbers on the console's overview page."""

    days: list[DayCount]
    answered: int
    suggested: int
    escalated: int
    tickets_opened: int
    staff_answered: int
    median_response_minutes: float | None
    open_tickets: int
    past_sla: int
    sla_minutes: int
    helpful: int
    not_helpful: int
    unanswered: list[tuple[str, int]] = field(default_factory=list)
    offices: list[OfficeStats] = field(default_factory=list)
    categories: list[tuple[str, int]] = field(default_factory=list)
    # Ratings of staff replies (满意 / 一般 / 不满意) given in the period, by score (bot/ratings.py).
    ratings: dict[str, int] = field(default_factory=dict)

    @property
    def questions(self) -> int:
        return self.answered + self.suggested + self.escalated

    def share(self, part: int, whole: int | None = None) -> float:
        """``part`` as a fraction of ``whole`` (default: all questions); 0 when there is nothing."""
        whole = self.questions if whole is None else whole
        return part / whole if whole else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``/console/api/stats`` object."""
        data = asdict(self)
        data["days"] = [{**asdict(d), "questions": d.questions} for d in self.days]
        data["unanswered"] = [{"question": q, "count": n} for q, n in self.unanswered]
        data["offices"] = [{**asdict(o), "sla_share": round(o.sla_share, 4)} for o in self.offices]
        data["categories"] = [{"category": c, "count": n} for c, n in self.categories]
        data["satisfaction"] = round(self.share(self.helpful, self.helpful + self.not_helpful), 4)
        data["questions"] = self.questions
        data["shares"] = {
            "answered": round(self.share(self.answered), 4),
            "suggested": round(self.share(self.suggested), 4),
            "escalated": round(self.share(self.escalated), 4),
            "staff_answered": round(self.share(self.staff_answered, self.tickets_opened), 4),
        }
        return data


def period_start(now: datetime, tz: ZoneInfo, days: int = DAYS) -> datetime:
    """Local midnight ``days - 1`` days before ``now``, in UTC: the start of the overview period."""
    local = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return local.astimezone(UTC)


def local_day(column: Any, dialect: str, tz: ZoneInfo, now: datetime) -> ColumnElement[Any]:
    """A SQL expression for the calendar day (``YYYY-MM-DD``) of a UTC timestamp in the staff zone."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(str(tz), column), "YYYY-MM-DD")
    # SQLite stores naive UTC text; shift by the zone's current offset (Asia/Shanghai has no DST).
    offset = int((now.astimezone(tz).utcoffset() or timedelta()).total_seconds() // 60)
    return func.date(column, f"{offset:+d} minutes")


async def overview(tickets: TicketService, now: datetime | None = None, days: int = DAYS) -> Overview:
    """Compute the overview for the last ``days`` days (including today).

    Days before the purge mark (``policybot purge`` deleted their rows) come from ``daily_stats``, the
    rest from the live rows; questions are shown masked (``bot.privacy``)."""
    now = now or utcnow()
    tz = ZoneInfo(tickets.staff.timezone)
    start = period_start(now, tz, days)
    first_day = start.astimezone(tz).strftime("%Y-%m-%d")
    async with tickets.sessions() as session:
        dialect = (await session.connection()).dialect.name
        mark = await purge_mark(session)
        live_start = max(start, day_start(mark, tz)) if mark else start
        live = await day_data(session, dialect, tz, now, live_start, None)
        stored = await stored_days(session, first_day, mark) if mark and first_day < mark else []
    data = merge_day_data([live, *stored])
    queue = await tickets.queue(now)
    all_days = [(start.astimezone(tz) + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    per_day = data["questions"]
    day_rows = [DayCount(d, **per_day.get(d, {})) for d in all_days]
    waits = data["waits"]
    helpful, not_helpful = data["feedback"].get("helpful", 0), data["feedback"].get("not_helpful", 0)
    return Overview(
        days=day_rows,
        answered=sum(d.answered for d in day_rows),
        suggested=sum(d.suggested for d in day_rows),
        escalated=sum(d.escalated for d in day_rows),
        tickets_opened=data["tickets_opened"],
        staff_answered=len(waits),
        median_response_minutes=round(statistics.median(waits), 1) if waits else None,
        open_tickets=len(queue),
        past_sla=sum(1 for q in queue if q.working_minutes > tickets.staff.sla_minutes),
        sla_minutes=tickets.staff.sla_minutes,
        helpful=helpful,
        not_helpful=not_helpful,
        unanswered=_top(data["unanswered"], TOP_UNANSWERED),
        offices=_offices(tickets, [_office_row(r) for r in data["offices"]], now),
        categories=_top(data["categories"], TOP_CATEGORIES),
        ratings={s: data["ratings"].get(s, 0) for s in RATING_SCORES},
    )


# -- one stretch of time's numbers, as stored for a purged day (``daily_stats.data``) ---------------


async def day_data(
    session: AsyncSession,
    dialect: str,
    tz: ZoneInfo,
    now: datetime,
    start: datetime,
    end: datetime | None,
) -> dict[str, Any]:
    """Everything the overview counts from rows created in ``[start, end)``, as plain JSON: questions by
    day and outcome, tickets, first-response minutes, feedback, unanswered questions (masked), office
    rows, categories and ratings."""
    day = local_day(Message.created_at, dialect, tz, now)
    opened, waits = await _ticket_numbers(session, start, end)
    helpful, not_helpful = await _feedback(session, start, end)
    return {
        "questions": await _questions_per_day(session, start, end, day),
        "tickets_opened": opened,
        "waits": waits,
        "feedback": {"helpful": helpful, "not_helpful": not_helpful},
        "unanswered": await _unanswered(session, start, end),
        "offices": [
            [o, _iso(c), _iso(a) if a else None, st]
            for o, c, a, st in await _office_tickets(session, start, end)
        ],
        "categories": await _categories(session, start, end),
        "ratings": await rating_counts(session, start, end),
    }


def merge_day_data(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several ``day_data`` results (live rows and stored days)."""
    out: dict[str, Any] = {
        "questions": {},
        "tickets_opened": 0,
        "waits": [],
        "feedback": Counter(),
        "unanswered": Counter(),
        "offices": [],
        "categories": Counter(),
        "ratings": Counter(),
    }
    for part in parts:
        for d, by_status in part.get("questions", {}).items():
            day = out["questions"].setdefault(d, {})
            for status, n in by_status.items():
                day[status] = day.get(status, 0) + int(n)
        out["tickets_opened"] += int(part.get("tickets_opened", 0))
        out["waits"] += [float(w) for w in part.get("waits", [])]
        out["offices"] += part.get("offices", [])
        for key in ("feedback", "unanswered", "categories", "ratings"):
            out[key].update({k: int(v) for k, v in part.get(key, {}).items()})
    return out


async def purge_mark(session: AsyncSession) -> str | None:
    """The first calendar day not purged (``YYYY-MM-DD``): earlier days are in ``daily_stats``."""
    state = await session.get(JobState, PURGE_MARK)
    return state.value if state is not None and state.value else None


def day_start(day: str, tz: ZoneInfo) -> datetime:
    """Local midnight starting ``day`` (``YYYY-MM-DD``), in UTC."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=tz).astimezone(UTC)


async def stored_days(session: AsyncSession, first: str, mark: str) -> list[dict[str, Any]]:
    """The stored statistics of the purged days from ``first`` up to (not including) ``mark``."""
    rows = await session.scalars(
        select(DailyStats.data).where(
            DailyStats.day >= first, DailyStats.day < mark, DailyStats.day != PUSH_ROW
        )
    )
    return list(rows)


def _top(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def _iso(dt: datetime) -> str:
    return _aware(dt).isoformat()


def _office_row(row: list[Any]) -> tuple[str, datetime, datetime | None, str]:
    office, created, answered, status = row
    return (
        office,
        datetime.fromisoformat(created),
        datetime.fromisoformat(answered) if answered else None,
        status,
    )


def _questions() -> list[ColumnElement[bool]]:
    return [Message.direction == "in", Message.author == "user", Message.status.in_(QUESTION_STATUSES)]


def _within(column: Any, start: datetime, end: datetime | None) -> list[ColumnElement[bool]]:
    return [column >= start] + ([column < end] if end is not None else [])


async def _questions_per_day(
    session: AsyncSession, start: datetime, end: datetime | None, day: ColumnElement[Any]
) -> dict[str, dict[str, int]]:
    rows = await session.execute(
        select(day, Message.status, func.count())
        .where(*_questions(), *_within(Message.created_at, start, end))
        .group_by(day, Message.status)
    )
    out: dict[str, dict[str, int]] = {}
    for d, status, count in rows:
        out.setdefault(str(d), {})[status] = int(count)
    return out


async def _ticket_numbers(
    session: AsyncSession, start: datetime, end: datetime | None
) -> tuple[int, list[float]]:
    """Tickets opened in the stretch, and the minutes each staff answer took."""
    opened = await session.scalar(
        select(func.count()).select_from(Ticket).where(*_within(Ticket.created_at, start, end))
    )
    rows = await session.execute(
        select(Ticket.created_at, Ticket.answered_at).where(
            *_within(Ticket.created_at, start, end), Ticket.answered_at.is_not(None)
        )
    )
    waits = [
        (_aware(done) - _aware(created)).total_seconds() / 60 for created, done in rows if done is not None
    ]
    return int(opened or 0), waits


async def _feedback(session: AsyncSession, start: datetime, end: datetime | None) -> tuple[int, int]:
    rows = dict(
        (bool(h), int(n))
        for h, n in await session.execute(
            select(Feedback.helpful, func.count())
            .where(*_within(Feedback.created_at, start, end))
            .group_by(Feedback.helpful)
        )
    )
    return rows.get(True, 0), rows.get(False, 0)


async def _unanswered(session: AsyncSession, start: datetime, end: datetime | None) -> dict[str, int]:
    """The questions the bot did not answer outright (suggested or escalated), masked, with counts."""
    rows = await session.execute(
        select(Message.text, func.count())
        .where(*_questions(), Message.status != "answered", *_within(Message.created_at, start, end))
        .group_by(Message.text)
    )
    out: Counter[str] = Counter()
    for text, n in rows:
        out[privacy.mask(text)] += int(n)
    return dict(out)


async def _office_tickets(
    session: AsyncSession, start: datetime, end: datetime | None
) -> list[tuple[str, datetime, datetime | None, str]]:
    """(office, created, answered, status) of the tickets opened in the stretch (merged ones left out)."""
    rows = await session.execute(
        select(Ticket.office, Ticket.created_at, Ticket.answered_at, Ticket.status).where(
            *_within(Ticket.created_at, start, end), Ticket.merged_into.is_(None)
        )
    )
    return [(o, c, a, st) for o, c, a, st in rows]


def _offices(
    tickets: TicketService, rows: list[tuple[str, datetime, datetime | None, str]], now: datetime
) -> list[OfficeStats]:
    """Per configured office (and any other office tickets carry): first response and SLA."""
    sla, hours = tickets.staff.sla_minutes, tickets.hours
    by_office: dict[str, list[tuple[datetime, datetime | None, str]]] = {o: [] for o in tickets.staff.offices}
    for office, created, answered, status in rows:
        by_office.setdefault(office or "未分配", []).append(
            (_aware(created), _aware(answered) if answered else None, status)
        )
    out = []
    for office, items in by_office.items():
        waits = [(a - c).total_seconds() / 60 for c, a, _ in items if a is not None]
        within = sum(1 for c, a, _ in items if a is not None and hours.working_minutes(c, a) <= sla)
        late = sum(1 for c, a, _ in items if a is not None and hours.working_minutes(c, a) > sla)
        late += sum(
            1
            for c, a, st in items
            if a is None and st in ("open", "claimed") and hours.working_minutes(c, now) > sla
        )
        out.append(
            OfficeStats(
                office=office,
                opened=len(items),
                answered=len(waits),
                median_first_response_minutes=round(statistics.median(waits), 1) if waits else None,
                within_sla=within,
                past_sla=late,
            )
        )
    return out


async def _categories(session: AsyncSession, start: datetime, end: datetime | None) -> dict[str, int]:
    """The categories of the entries questions were answered or suggested from, with counts."""
    rows = await session.execute(
        select(Entry.category, func.count())
        .select_from(Message)
        .join(Entry, Entry.id == Message.entry_id)
        .where(
            *_questions(),
            Message.status.in_(("answered", "suggested")),
            *_within(Message.created_at, start, end),
        )
        .group_by(Entry.category)
    )
    return {(c or "（未分类）"): int(n) for c, n in rows}


def _aware(dt: datetime) -> datetime:
    # SQLite returns naive datetimes; they were stored in UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

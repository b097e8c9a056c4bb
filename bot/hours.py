"""Working hours: parse ``"Mon-Fri 08:30-12:00,14:30-17:30"`` and count working time between instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(
    r"^\s*(?P<days>[A-Za-z]{3}(?:-[A-Za-z]{3})?(?:,[A-Za-z]{3}(?:-[A-Za-z]{3})?)*)\s+(?P<ranges>.+)$"
)
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Weekly opening hours in one time zone; several ``;``-separated specs may be combined."""

    days: dict[int, tuple[tuple[time, time], ...]]
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str = "Asia/Shanghai") -> WorkingHours:
        """Parse e.g. ``"Mon-Fri 08:30-12:00,14:30-17:30; Sat 09:00-12:00"``; raise ValueError on nonsense."""
        days: dict[int, list[tuple[time, time]]] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            m = _SPEC.match(part)
            if not m:
                raise ValueError(f"cannot read {part!r}; expected like 'Mon-Fri 08:30-12:00,14:30-17:30'")
            ranges = [_parse_range(r.strip()) for r in m.group("ranges").split(",")]
            for day in _parse_days(m.group("days")):
                days.setdefault(day, []).extend(ranges)
        if not days:
            raise ValueError("no working hours given")
        return cls({d: tuple(sorted(r)) for d, r in days.items()}, ZoneInfo(timezone))

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` (aware) falls inside working hours."""
        local = at.astimezone(self.tz)
        return any(a <= local.time() < b for a, b in self.days.get(local.weekday(), ()))

    def working_minutes(self, start: datetime, end: datetime) -> float:
        """Working minutes between two aware instants (0 when end <= start)."""
        if end <= start:
            return 0.0
        total = timedelta()
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for a, b in self.days.get(day.weekday(), ()):
                lo = max(start, datetime.combine(day, a, self.tz))
                hi = min(end, datetime.combine(day, b, self.tz))
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60

    def next_open(self, at: datetime) -> datetime:
        """The first instant at or after ``at`` that is inside working hours."""
        local = at.astimezone(self.tz)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            for a, b in self.days.get(day.weekday(), ()):
                lo = datetime.combine(day, a, self.tz)
                hi = datetime.combine(day, b, self.tz)
                if hi > local:
                    return max(lo, local)
        return local  # pragma: no cover - parse() guarantees at least one range


def _parse_days(spec: str) -> list[int]:
    out: list[int] = []
    for chunk in spec.lower().split(","):
        a, _, b = chunk.partition("-")
        if a not in _DAYS or (b and b not in _DAYS):
            raise ValueError(f"unknown day in {spec!r}; use Mon Tue Wed Thu Fri Sat Sun")
        i, j = _DAYS.index(a), _DAYS.index(b or a)
        if j < i:
            raise ValueError(f"day range {chunk!r} runs backwards")
        out.extend(range(i, j + 1))
    return out


def _parse_range(text: str) -> tuple[time, time]:
    m = _RANGE.match(text)
    if not m:
        raise ValueError(f"cannot read time range {text!r}; expected HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"time out of range in {text!r}")
    # 24:00 ends a range at midnight, so that "00:00-24:00" is the whole day.
    a, b = time(h1, m1), (time.max if h2 == 24 else time(h2, m2))
    if b <= a:
        raise ValueError(f"time range {text!r} ends before it starts")
    return a, b

"""bot/hours.py: working hours and the working time between two instants."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.hours import WorkingHours

SH = ZoneInfo("Asia/Shanghai")
DEFAULT = "Mon-Fri 08:30-12:00,14:30-17:30"


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """A Shanghai time in the week of Monday 2024-03-04 (day 0 = Monday)."""
    return datetime(2024, 3, 4 + day, hh, mm, tzinfo=SH)


@pytest.fixture
def hours() -> WorkingHours:
    return WorkingHours.parse(DEFAULT, "Asia/Shanghai")


def test_parse() -> None:
    wh = WorkingHours.parse("Mon-Wed,Fri 09:00-12:00; Sat 10:00-11:30", "Europe/Berlin")
    assert sorted(wh.days) == [0, 1, 2, 4, 5]
    assert wh.days[5] == ((time(10, 0), time(11, 30)),)
    assert wh.tz == ZoneInfo("Europe/Berlin")
    default = WorkingHours.parse(DEFAULT)
    assert default.days[0] == ((time(8, 30), time(12, 0)), (time(14, 30), time(17, 30)))
    assert 5 not in default.days and 6 not in default.days


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "weekdays",
        "Mon-Fri",
        "Mon-Fri 9-5",
        "Mon-Fri 09:00-24:30",
        "Sun-Mon 09:00-10:00",
        "Xyz 09:00-10:00",
    ],
)
def test_parse_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        WorkingHours.parse(spec)


def test_is_open(hours: WorkingHours) -> None:
    assert hours.is_open(at(0, 8, 30))
    assert hours.is_open(at(0, 11, 59))
    assert not hours.is_open(at(0, 12, 0))  # the end is exclusive
    assert not hours.is_open(at(0, 13, 0))  # lunch
    assert hours.is_open(at(4, 17, 0))
    assert not hours.is_open(at(5, 10, 0))  # Saturday
    # the same instant in another zone: 02:00 UTC is 10:00 in Shanghai
    assert hours.is_open(datetime(2024, 3, 4, 2, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2024, 3, 4, 10, 0, tzinfo=UTC))  # 18:00 in Shanghai


def test_working_minutes_within_a_day(hours: WorkingHours) -> None:
    assert hours.working_minutes(at(0, 9), at(0, 10)) == 60
    assert hours.working_minutes(at(0, 11), at(0, 15)) == 60 + 30  # lunch does not count
    assert hours.working_minutes(at(0, 0), at(1, 0)) == 210 + 180  # a whole working day: 6.5 h
    assert hours.working_minutes(at(0, 10), at(0, 9)) == 0
    assert hours.working_minutes(at(0, 12, 30), at(0, 13, 30)) == 0


def test_working_minutes_across_a_weekend(hours: WorkingHours) -> None:
    # Friday 17:00 to Monday 09:00: half an hour on Friday and half an hour on Monday.
    assert hours.working_minutes(at(4, 17), at(7, 9)) == 60
    # a whole week is five working days
    assert hours.working_minutes(at(0, 0), at(7, 0)) == 5 * 390


def test_working_minutes_with_utc_instants(hours: WorkingHours) -> None:
    start = datetime(2024, 3, 4, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    assert hours.working_minutes(start, start + timedelta(hours=2)) == 120


def test_next_open(hours: WorkingHours) -> None:
    assert hours.next_open(at(0, 10)) == at(0, 10)  # already open
    assert hours.next_open(at(0, 7)) == at(0, 8, 30)
    assert hours.next_open(at(0, 12, 30)) == at(0, 14, 30)
    assert hours.next_open(at(4, 18)) == at(7, 8, 30)  # Friday evening -> Monday morning
    assert hours.next_open(at(5, 10)) == at(7, 8, 30)
    nxt = hours.next_open(datetime(2024, 3, 8, 12, 0, tzinfo=UTC))  # Friday 20:00 Shanghai
    assert nxt == at(7, 8, 30)


def test_24_00_ends_a_range_at_midnight() -> None:
    hours = WorkingHours.parse("Mon-Sun 00:00-24:00", "Asia/Shanghai")
    late = datetime(2026, 11, 24, 15, 59, 30, tzinfo=UTC)  # 23:59:30 in Shanghai
    assert hours.is_open(late)

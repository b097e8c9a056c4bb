"""The broadcast benchmark (bench/bench_broadcast.py) at a small size: against the fake Bot API enforcing
Telegram's flood limits, the paced outbox delivers every push once with no 429. Timings are not asserted
(the fake's limits themselves are tested in test_subscriptions_telegram.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_broadcast
import pytest


async def test_a_broadcast_reaches_every_subscriber_once_without_a_429(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    result = await bench_broadcast.one_run("smoke", db_url, 80, True, logging.getLogger("bench"))
    assert result.delivered == 80 and result.chats_once == 80
    assert result.chats_twice_or_more == 0 and result.chats_missing == 0 and result.failed == 0
    assert result.flood_rejections == 0

"""bot/periodic.py: the background loop under the service's periodic work (subscriptions' pass, staff
alerts, the daily purge)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.periodic import Periodic

log = logging.getLogger("tests.periodic")


async def test_a_step_runs_at_once_then_every_interval_until_stopped() -> None:
    runs: list[int] = []

    async def step() -> None:
        runs.append(len(runs))

    loop = Periodic("test-periodic", step, 0.01, log)
    loop.start()
    loop.start()  # a second start is the same loop
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    await loop.stop()
    done = len(runs)
    assert done >= 3 and not loop.running
    await asyncio.sleep(0.05)
    assert len(runs) == done  # stopped: no more steps
    await loop.stop()  # stopping twice is harmless


async def test_a_failing_step_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")

    loop = Periodic("test-flaky", step, 0.01, log)
    with caplog.at_level(logging.ERROR, logger="tests.periodic"):
        loop.start()
        for _ in range(200):
            if calls >= 2:
                break
            await asyncio.sleep(0.01)
        await loop.stop()
    assert calls >= 2
    assert any("test-flaky failed" in r.getMessage() for r in caplog.records)

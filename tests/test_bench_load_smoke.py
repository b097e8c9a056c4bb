"""Smoke test of the load benchmark (bench/load.py) at a tiny size: real workers, the web API and the
Telegram path end to end, and on PostgreSQL the fault run (two workers, one killed and restarted).
Timings are never asserted; what must hold at any size is: nothing lost, nothing left pending, and
nothing duplicated, but for the one reply a worker killed with SIGKILL may have sent just before it died
(delivery is at least once: no Telegram call can be made idempotent, bot/outbox.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import load  # noqa: E402


def tiny(configs: tuple[str, ...], workdir: Path) -> list[dict]:
    opts = load.Options(
        pg_url=PG_URL,
        configs=configs,
        seconds=3.0,
        visitors=3,
        telegram_users=2,
        drain=load.LEASE_SECONDS + 30,
        workdir=workdir,
        quiet=True,
    )
    return asyncio.run(load.run(opts))


def check(row: dict) -> None:
    assert row["web_requests"] > 0 and row["tg_messages"] > 0, row
    assert (row["lost"], row["unexplained"], row["pending"]) == (0, 0, 0), row
    assert 0 < row["web_p50_ms"] <= row["web_p99_ms"]


def test_one_sqlite_worker(tmp_path: Path) -> None:
    if PG_URL:
        pytest.skip("the SQLite configuration runs in the SQLite pass")
    (row,) = tiny(("sqlite",), tmp_path)
    check(row)
    assert (row["duplicated"], row["in_doubt"]) == (0, 0), row  # no worker killed: nothing in doubt
    assert row["web_errors"] == 0 and row["tg_errors"] == 0 and row["telegram"] == "polling"
    assert "| sqlite | 1 | polling |" in load.table([row])


def test_two_postgresql_workers_one_killed_and_restarted(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set POLICYBOT_TEST_DATABASE_URL (see .ci/run)")
    (row,) = tiny(("fault",), tmp_path)
    check(row)
    # A worker sends one reply at a time: one kill leaves at most one in doubt.
    assert row["duplicated"] <= row["in_doubt"] <= 1, row
    assert row["workers"] == 2 and row["telegram"] == "webhook"
    assert [e.split()[0] for e in row["events"]] == ["killed", "restarted"]
    (line,) = [t for t in load.targets([row]) if t.startswith("fault: 0 lost")]
    assert line.endswith(": met") == (row["duplicated"] == 0), line

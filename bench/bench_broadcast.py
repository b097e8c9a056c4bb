"""A broadcast to many Telegram subscribers against the fake Bot API enforcing Telegram's flood limits.

    python bench/bench_broadcast.py                          # 10,000 subscribers, baseline on 1,000
    python bench/bench_broadcast.py --subscribers 500 --baseline 0
    python bench/bench_broadcast.py --db postgresql://postgres@127.0.0.1:5432/bench

The fake (tests/fakes/bot_api.py with ``FloodLimits``) answers 429 with ``retry_after`` to more than 30
messages in any second or a second message to one chat within a second, as Telegram does. The bot is the
real one: ``App`` (outbox, change scanner) and a real python-telegram-bot ``Bot`` behind
``TelegramChannel``. Subscribers are written straight into the database (one conversation and one
category subscription each: the bench measures delivery, not 10,000 /subscribe commands). Then a new
entry is written in their category, the scanner makes the broadcast (review off), the outbox delivers it,
and the bench reports: messages delivered, chats that got it more or less than once, 429s, failures, and the
time from the entry's writing to the last delivery against the 12-hour rule.

The baseline, in the same run: the same delivery with the outbox's pacing switched off (only PTB's own
``AIORateLimiter``), on ``--baseline`` subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from bot.app import App  # noqa: E402
from bot.config import Settings  # noqa: E402
from handlers.telegram_bot import build_application  # noqa: E402
from handlers.telegram_channel import TelegramChannel  # noqa: E402
from knowledge.importers.base import ParsedEntry  # noqa: E402
from knowledge.models import Conversation, OutboxItem, Subscription  # noqa: E402
from tests.fakes.bot_api import TOKEN, FakeBotAPI, FloodLimits  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CATEGORY = "外贸外资"
FIRST_CHAT = 10_000_000
DEADLINE_S = 12 * 3600


@dataclass
class Result:
    """One broadcast run."""

    label: str
    subscribers: int
    paced: bool
    delivered: int
    chats_once: int
    chats_twice_or_more: int
    chats_missing: int
    flood_rejections: int
    failed: int
    seconds: float
    per_second: float
    share_of_12_hours: float


async def add_subscribers(app: App, n: int) -> None:
    """``n`` Telegram private chats subscribed to CATEGORY (bulk insert, in batches)."""
    async with app.services.sessions() as s, s.begin():
        for start in range(0, n, 2000):
            chats = range(FIRST_CHAT + start, FIRST_CHAT + min(n, start + 2000))
            await s.execute(
                insert(Conversation),
                [
                    {"channel": "telegram", "chat_ref": str(c), "user_ref": str(c), "display_name": ""}
                    for c in chats
                ],
            )
        ids = list(await s.scalars(select(Conversation.id).where(Conversation.channel == "telegram")))
        for start in range(0, len(ids), 2000):
            await s.execute(
                insert(Subscription),
                [
                    {"conversation_id": i, "topic": f"c:{CATEGORY}", "mode": "instant"}
                    for i in ids[start : start + 2000]
                ],
            )


async def one_run(label: str, db_url: str, n: int, paced: bool, log: logging.Logger) -> Result:
    """Subscribe ``n`` chats, publish an entry, deliver the broadcast; measure."""
    api = FakeBotAPI(limits=FloodLimits())
    await api.start()
    settings = (
        Settings()
        .replace("database", url=db_url)
        .replace("telegram", token=TOKEN, base_url=api.base_url)
        .replace("subscriptions", review=False)
    )
    app = await App.create(settings, outbox_poll=0.2)
    application = build_application(settings.telegram)
    await application.initialize()
    try:
        if not paced:
            app.outbox.paces.clear()
        await app.services.kb.write_entries(
            [
                ParsedEntry(
                    id="bench-seed", kind="faq", question="种子问题？", answer="种子。", category=CATEGORY
                )
            ]
        )
        await app.push.run_once()  # baseline of the scanner
        await add_subscribers(app, n)
        app.registry.add(TelegramChannel(application.bot))
        entry = ParsedEntry(
            id=f"bench-new-{label}",
            kind="faq",
            question="外贸企业出口退税有新规定吗？",
            answer="自2027年1月1日起，出口退税可全程网上办理。申报材料减为三项。",
            category=CATEGORY,
            source={"title": "关于优化出口退税办理的通知", "number": "榕商务〔2027〕1号"},
        )
        start = time.perf_counter()
        await app.services.kb.write_entries([entry])
        made = await app.push.run_once()
        assert made == 1, f"expected one broadcast, got {made}"
        app.outbox.start()
        await wait_done(app, n, log, start)
        seconds = time.perf_counter() - start
        await app.outbox.stop()
        async with app.services.sessions() as s:
            failed = int(
                await s.scalar(
                    select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "failed")
                )
                or 0
            )
        counts = Counter(int(m["chat"]["id"]) for m in api.sent())
        return Result(
            label=label,
            subscribers=n,
            paced=paced,
            delivered=sum(counts.values()),
            chats_once=sum(1 for c in counts.values() if c == 1),
            chats_twice_or_more=sum(1 for c in counts.values() if c > 1),
            chats_missing=n - len(counts),
            flood_rejections=api.flood_rejections,
            failed=failed,
            seconds=round(seconds, 1),
            per_second=round(sum(counts.values()) / seconds, 2),
            share_of_12_hours=round(seconds / DEADLINE_S, 5),
        )
    finally:
        await application.shutdown()
        await app.close()
        await api.stop()


async def wait_done(app: App, n: int, log: logging.Logger, start: float) -> None:
    """Until no broadcast row is pending (sent or failed), logging progress every 30 s."""
    last_log = 0.0
    while True:
        async with app.services.sessions() as s:
            left = int(
                await s.scalar(
                    select(func.count())
                    .select_from(OutboxItem)
                    .where(OutboxItem.kind == "broadcast", OutboxItem.status.in_(["pending", "sending"]))
                )
                or 0
            )
        if left == 0:
            return
        if time.perf_counter() - last_log > 30:
            last_log = time.perf_counter()
            log.info("%d of %d left after %.0f s", left, n, last_log - start)
        await asyncio.sleep(1.0)


async def main_async(args: argparse.Namespace) -> list[Result]:
    log = logging.getLogger("bench")
    results = []
    runs = [("paced", args.subscribers, True)]
    if args.baseline:
        runs.insert(0, ("unpaced-baseline", args.baseline, False))
    for label, n, paced in runs:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = args.db or f"sqlite:///{tmp}/bench.db"
            if args.db:
                await reset(args.db)
            log.info("run %s: %d subscribers on %s", label, n, db_url.split("://")[0])
            results.append(await one_run(label, db_url, n, paced, log))
            log.info("%s", json.dumps(asdict(results[-1]), ensure_ascii=False))
    return results


async def reset(url: str) -> None:
    from sqlalchemy import text

    from knowledge.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def table(results: list[Result]) -> str:
    """The Markdown table for BENCHMARKS.md."""
    head = "| run | subscribers | delivered | once | twice+ | missing | 429s | failed | seconds | msg/s | of 12 h |"
    rows = [head, "|" + "---|" * 11]
    for r in results:
        rows.append(
            f"| {r.label} | {r.subscribers:,} | {r.delivered:,} | {r.chats_once:,} | {r.chats_twice_or_more} | "
            f"{r.chats_missing} | {r.flood_rejections} | {r.failed} | {r.seconds} | {r.per_second} | "
            f"{r.share_of_12_hours:.2%} |"
        )
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument(
        "--baseline", type=int, default=1_000, help="subscribers of the unpaced baseline (0: none)"
    )
    p.add_argument("--db", help="database URL (default: a new SQLite file per run); PostgreSQL is reset")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("policybot").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(logging.CRITICAL)  # the unpaced run's 429s, one traceback each
    logging.getLogger("alembic").setLevel(logging.WARNING)
    results = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"broadcast-{stamp}.json"
    out.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2), encoding="utf-8")
    print(table(results))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

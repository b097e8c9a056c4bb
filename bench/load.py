"""Load benchmark: the web API and the Telegram path end to end, one worker on SQLite and workers on
PostgreSQL, with a fault run (issue 16).

Each configuration starts real ``policybot run`` processes on a fresh database (workers of one
configuration start together, as behind a reverse proxy) and a fake Telegram Bot API
(``tests/fakes/bot_api.py``) in this process. For ``--seconds`` it drives them with ``--visitors`` web
visitors (each posts a question to ``/api/ask`` and, answered, the next, as fast as it can) and
``--telegram-users`` Telegram users (each sends a question and waits for the bot's reply before the next):
by long polling with one worker, through the webhook with several (this process spreads the requests
over the workers round robin, as a reverse proxy would).

Configurations: ``sqlite`` (one worker, Telegram polling), ``pg1`` (one PostgreSQL worker: the baseline
for ``pg2``), ``pg2`` (two workers, webhook) and ``fault`` (``pg2`` with one worker killed with SIGKILL
at 30% of the run and started again at 45%, the load going on until it has served a while; the proxy
retries a request that failed on another worker, as Telegram redelivers an update it got no 200 for).
Each configuration also times ``/healthz`` at the same concurrency for a second (``floor``: HTTP and the
machine's own load, no database, no matching).

After the load it waits (up to ``--drain`` seconds, more than the outbox's lease of a row claimed by a
killed worker) for every reply to be delivered, then checks the database:

- lost: questions stored without their decision, web 200s whose replies are not stored, a visitor's
  answered requests beyond the questions stored, Telegram updates accepted (200) without a reply;
- duplicated: Telegram replies beyond the updates accepted, questions stored beyond the requests sent;
  of these, ``in_doubt`` counts the replies a killed worker may have sent just before it died (rows sent
  again after their lease, ``bot.outbox.IN_DOUBT``: delivery is at least once), and ``unexplained`` the
  duplicates beyond them (a Telegram reply sent twice otherwise, or a question stored twice);
- pending: outbox rows not sent after the drain.

    .venv/bin/python bench/load.py --pg postgresql://postgres@127.0.0.1:5432/bench_load
    .venv/bin/python bench/load.py --configs sqlite --seconds 10 --visitors 20

The PostgreSQL database given is emptied (its ``public`` schema dropped) before each configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, text  # noqa: E402

from bot.outbox import IN_DOUBT, LEASE  # noqa: E402
from knowledge.db import create_engine  # noqa: E402
from tests.fakes.bot_api import FakeBotAPI, post_webhook, text_update, user  # noqa: E402

CONFIGS = ("sqlite", "pg1", "pg2", "fault")
WEBHOOK_PATH = "/tg/hook"
WEBHOOK_SECRET = "bench_webhook_secret"
READY_SECONDS = 180.0  # a worker's start (schema, default knowledge, index) on a busy machine
REQUEST_TIMEOUT = 15.0
REPLY_TIMEOUT = 20.0  # a Telegram user waits this long for the reply before sending the next question
FLOOR_SECONDS = 1.0
ESCALATE_EVERY = 25  # one question in this many is one the bot cannot answer (opens a ticket)
OUT_OF_SCOPE = "会议室周末能借用吗"
LEASE_SECONDS = LEASE.total_seconds()  # a reply claimed by a killed worker is sent after this


@dataclass
class Options:
    """What to run."""

    pg_url: str = ""
    configs: tuple[str, ...] = CONFIGS
    seconds: float = 20.0
    visitors: int = 20
    telegram_users: int = 5
    drain: float = LEASE_SECONDS + 30
    workdir: Path | None = None
    quiet: bool = False


@dataclass
class Stats:
    """What the load saw, per channel."""

    web_latency: list[float] = field(default_factory=list)
    web_errors: Counter[str] = field(default_factory=Counter)
    web_failed: int = 0  # requests that failed on every attempt
    web_reply_ids: list[int] = field(default_factory=list)
    web_sent: Counter[str] = field(default_factory=Counter)  # token -> distinct requests sent
    web_ok: Counter[str] = field(default_factory=Counter)  # token -> requests answered 200
    web_empty: int = (
        0  # 200 with no replies: an earlier attempt was handled by a worker killed before answering
    )
    tg_latency: list[float] = field(default_factory=list)
    tg_errors: Counter[str] = field(default_factory=Counter)
    tg_failed: int = 0
    tg_accepted: Counter[int] = field(default_factory=Counter)  # chat -> updates answered 200 / queued
    tg_late: int = 0  # replies that came after REPLY_TIMEOUT (checked again after the drain)
    floor_latency: list[float] = field(default_factory=list)
    duration: float = 0.0
    deadline: float = 0.0  # when the load stops (the fault run moves it past the restart)
    events: list[str] = field(default_factory=list)


class CountingBotAPI(FakeBotAPI):
    """The fake Bot API, counting the bot's messages per chat and waking whoever waits for one."""

    def __init__(self) -> None:
        super().__init__()
        self.per_chat: Counter[int] = Counter()
        self.arrived: dict[int, asyncio.Event] = {}

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        result = await super()._m_sendMessage(params)
        chat = int(params["chat_id"])
        self.per_chat[chat] += 1
        self.arrived.setdefault(chat, asyncio.Event()).set()
        return result

    async def wait_count(self, chat: int, count: int, within: float) -> bool:
        """True once ``count`` messages went to ``chat``; False after ``within`` seconds."""
        deadline = time.monotonic() + within
        event = self.arrived.setdefault(chat, asyncio.Event())
        while self.per_chat[chat] < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)
        return True


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    """One ``policybot run`` process."""

    def __init__(self, name: str, folder: Path, db_url: str, fake: FakeBotAPI, mode: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / f"{name}.toml"
        self.log = folder / f"{name}.log"
        self.up = False
        self.proc: asyncio.subprocess.Process | None = None
        self.config.write_text(
            worker_config(db_url, folder / "index", self.port, fake, mode), encoding="utf-8"
        )

    async def start(self) -> None:
        """Start the process (its output goes to ``<name>.log``)."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "POLICYBOT_CACHE_DIR": str(self.config.parent / "cache"),
        }
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "policybot", "--config", str(self.config), "run",
                cwd=ROOT, env=env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        """Wait until ``/healthz`` answers with the knowledge indexed."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"worker {self.name} exited {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200 and (await r.json()).get("indexed", 0) > 0:
                        self.up = True
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready in {READY_SECONDS} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        self.up = False
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 20 s)."""
        self.up = False
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def tail(self) -> str:
        """The end of the worker's log."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""


def worker_config(db_url: str, index_dir: Path, port: int, fake: FakeBotAPI, mode: str) -> str:
    """The worker's config file: limits far above the load (one address carries every visitor here)."""
    webhook = f'webhook_url = "http://127.0.0.1:{port}{WEBHOOK_PATH}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
    return (
        f'[database]\nurl = "{db_url}"\nindex_dir = "{index_dir}"\n\n'
        f'[web]\nhost = "127.0.0.1"\nport = {port}\nrate_limit_per_minute = 1000000\n\n'
        f'[telegram]\ntoken = "{fake.token}"\nbase_url = "{fake.base_url}"\nmode = "{mode}"\n'
        + (webhook if mode == "webhook" else "")
        + "rate_limit_messages = 1000000\nrate_limit_seconds = 1\n"
    )


class Proxy:
    """Round robin over the workers that are up (a reverse proxy with health checks)."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._turn = itertools.count()

    def pick(self) -> Worker | None:
        live = [w for w in self.workers if w.up]
        return live[next(self._turn) % len(live)] if live else None


def questions() -> list[str]:
    """The default knowledge's FAQ questions (answered), and now and then one that goes to staff."""
    qs = []
    for path in sorted((ROOT / "knowledge" / "data" / "faq").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                qs.append(json.loads(line)["question"])
    return qs


async def web_visitor(
    i: int, tag: str, proxy: Proxy, session: aiohttp.ClientSession, qs: list[str], st: Stats
) -> None:
    """One visitor asking question after question; a request that fails is retried on another worker
    with the same ``request_id`` (handled at most once)."""
    token = f"bench-{tag}-visitor-{i:05d}"
    for n in itertools.count():
        if time.monotonic() >= st.deadline:
            return
        q = OUT_OF_SCOPE if n % ESCALATE_EVERY == ESCALATE_EVERY - 1 else qs[(i * 7 + n) % len(qs)]
        body = {"token": token, "question": q, "request_id": f"q{n}"}
        st.web_sent[token] += 1
        for _attempt in range(4):
            worker = proxy.pick()
            if worker is None:
                await asyncio.sleep(0.2)
                continue
            t0 = time.perf_counter()
            try:
                async with session.post(f"{worker.url}/api/ask", json=body) as resp:
                    status, data = resp.status, await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
                st.web_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            if status != 200:
                st.web_errors[f"HTTP {status}"] += 1
                continue
            st.web_latency.append(time.perf_counter() - t0)
            st.web_ok[token] += 1
            replies = data.get("replies") or []
            if not replies:
                st.web_empty += 1
            st.web_reply_ids.extend(int(r["message_id"]) for r in replies if r.get("message_id"))
            break
        else:
            st.web_failed += 1


async def telegram_user(
    j: int, mode: str, proxy: Proxy, fake: CountingBotAPI, qs: list[str], st: Stats
) -> None:
    """One Telegram user: a question, then wait for the bot's reply before the next."""
    uid = 900_000 + j
    sender = user(uid, f"用户{j}")
    for n in itertools.count():
        if time.monotonic() >= st.deadline:
            return
        update = text_update(fake, sender, qs[(j * 11 + n) % len(qs)])
        t0 = time.perf_counter()
        if mode == "polling":
            fake.push(update)
            accepted = True
        else:
            accepted = await deliver_webhook(update, proxy, st)
        if not accepted:
            st.tg_failed += 1
            continue
        st.tg_accepted[uid] += 1
        if await fake.wait_count(uid, st.tg_accepted[uid], REPLY_TIMEOUT):
            st.tg_latency.append(time.perf_counter() - t0)
        else:
            st.tg_late += 1


async def deliver_webhook(update: dict[str, Any], proxy: Proxy, st: Stats) -> bool:
    """POST an update as Telegram does, again (to the next worker) until one answers 200."""
    for _attempt in range(6):
        worker = proxy.pick()
        if worker is None:
            await asyncio.sleep(0.2)
            continue
        try:
            status = await post_webhook(f"{worker.url}{WEBHOOK_PATH}", update, WEBHOOK_SECRET)
        except (aiohttp.ClientError, TimeoutError) as exc:
            st.tg_errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        if status == 200:
            return True
        st.tg_errors[f"HTTP {status}"] += 1
    return False


async def floor(proxy: Proxy, session: aiohttp.ClientSession, concurrency: int, st: Stats) -> None:
    """``/healthz`` at the same concurrency: the HTTP path and the machine without the bot's work."""
    deadline = time.monotonic() + FLOOR_SECONDS

    async def one() -> None:
        while time.monotonic() < deadline:
            worker = proxy.pick()
            assert worker is not None
            t0 = time.perf_counter()
            async with session.get(f"{worker.url}/healthz") as resp:
                await resp.read()
            st.floor_latency.append(time.perf_counter() - t0)

    await asyncio.gather(*(one() for _ in range(concurrency)))


async def reset_postgres(url: str) -> None:
    """Empty the PostgreSQL database (its public schema)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


LOST_DECISIONS = """
SELECT count(*) FROM messages m
WHERE m.direction = 'in' AND m.author = 'user' AND (
  (m.status = '' AND m.ticket_id IS NULL)
  OR (m.status <> '' AND NOT EXISTS (
        SELECT 1 FROM messages o
        WHERE o.conversation_id = m.conversation_id AND o.direction = 'out' AND o.id > m.id)))
"""
STORED_PER_VISITOR = """
SELECT c.chat_ref, count(m.id) FROM conversations c JOIN messages m ON m.conversation_id = c.id
WHERE c.channel = 'web' AND m.direction = 'in' GROUP BY c.chat_ref
"""
PENDING = "SELECT count(*) FROM outbox WHERE status <> 'sent'"
IN_DOUBT_SENT = (
    "SELECT count(*) FROM outbox WHERE channel = 'telegram' AND status = 'sent' AND last_error = :doubt"
)
REPLIES_STORED = "SELECT count(*) FROM messages WHERE direction = 'out' AND id IN :ids"


async def drain(url: str, fake: CountingBotAPI, st: Stats, seconds: float) -> float:
    """Wait until every accepted Telegram update has its reply and the outbox is empty; the seconds taken."""
    engine = create_engine(url)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            async with engine.connect() as conn:
                pending = (await conn.execute(text(PENDING))).scalar_one()
            replied = all(fake.per_chat[c] >= n for c, n in st.tg_accepted.items())
            if pending == 0 and replied:
                break
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    return time.monotonic() - t0


async def verify(url: str, fake: CountingBotAPI, st: Stats) -> dict[str, int]:
    """Lost, duplicated and pending, from the database and the fake's record."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            no_decision = int((await conn.execute(text(LOST_DECISIONS))).scalar_one())
            stored = {r[0]: int(r[1]) for r in (await conn.execute(text(STORED_PER_VISITOR))).all()}
            pending = int((await conn.execute(text(PENDING))).scalar_one())
            in_doubt = int((await conn.execute(text(IN_DOUBT_SENT), {"doubt": IN_DOUBT})).scalar_one())
            found = 0
            ids = sorted(set(st.web_reply_ids))
            for k in range(0, len(ids), 1000):
                chunk = ids[k : k + 1000]
                stmt = text(REPLIES_STORED).bindparams(bindparam("ids", expanding=True))
                found += int((await conn.execute(stmt, {"ids": chunk})).scalar_one())
    finally:
        await engine.dispose()
    web_unstored = len(ids) - found
    web_short = sum(max(0, ok - stored.get(tok, 0)) for tok, ok in st.web_ok.items())
    web_extra = sum(max(0, n - st.web_sent.get(tok, 0)) for tok, n in stored.items())
    tg_missing = sum(max(0, n - fake.per_chat[c]) for c, n in st.tg_accepted.items())
    tg_extra = sum(max(0, fake.per_chat[c] - n) for c, n in st.tg_accepted.items())
    return {
        "lost": no_decision + web_unstored + web_short + tg_missing,
        "duplicated": web_extra + tg_extra,
        "in_doubt": in_doubt,
        "unexplained": web_extra + max(0, tg_extra - in_doubt),
        "pending": pending,
        "no_decision": no_decision,
        "web_unstored": web_unstored,
        "web_short": web_short,
        "tg_missing": tg_missing,
    }


def pct(values: list[float], p: float) -> float:
    """The p-th percentile in milliseconds (0 without samples)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return round(ordered[k] * 1000, 1)


async def run_config(name: str, opts: Options, folder: Path) -> dict[str, Any]:
    """Start the workers of one configuration, load them, check, stop them; the row of the table."""
    workers_n = 1 if name in ("sqlite", "pg1") else 2
    if name == "sqlite":
        db_url = f"sqlite:///{folder / 'bench.db'}"
    else:
        if not opts.pg_url:
            raise SystemExit(f"{name}: needs --pg URL")
        db_url = opts.pg_url
        await reset_postgres(db_url)
    mode = "polling" if workers_n == 1 else "webhook"
    fake = CountingBotAPI()
    await fake.start()
    workers = [Worker(f"{name}-w{k}", folder, db_url, fake, mode) for k in range(workers_n)]
    st = Stats()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(w.start() for w in workers))  # together: one migrates, the others wait
            await asyncio.gather(*(w.wait_ready(session) for w in workers))
            proxy = Proxy(workers)
            qs = questions()
            await floor(proxy, session, opts.visitors, st)
            load1 = os.getloadavg()[0]
            t0 = time.monotonic()
            st.deadline = t0 + opts.seconds
            load = [web_visitor(i, name, proxy, session, qs, st) for i in range(opts.visitors)]
            load += [telegram_user(j, mode, proxy, fake, qs, st) for j in range(opts.telegram_users)]
            faults = [fault(workers[1], session, t0, opts.seconds, st)] if name == "fault" else []
            await asyncio.gather(*load, *faults)
            st.duration = time.monotonic() - t0
            drained = await drain(db_url, fake, st, opts.drain)
            checks = await verify(db_url, fake, st)
            load2 = os.getloadavg()[0]
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
        await fake.stop()
    asks = len(st.web_latency)
    return {
        "config": name,
        "workers": workers_n,
        "telegram": mode,
        "seconds": round(st.duration, 1),
        "web_requests": asks,
        "web_rps": round(asks / st.duration, 1) if st.duration else 0.0,
        "web_p50_ms": pct(st.web_latency, 50),
        "web_p99_ms": pct(st.web_latency, 99),
        "web_errors": sum(st.web_errors.values()),
        "web_error_kinds": dict(st.web_errors),
        "web_failed": st.web_failed,
        "web_empty": st.web_empty,
        "tg_messages": len(st.tg_latency),
        "tg_per_s": round(sum(st.tg_accepted.values()) / st.duration, 1) if st.duration else 0.0,
        "tg_p50_ms": pct(st.tg_latency, 50),
        "tg_p99_ms": pct(st.tg_latency, 99),
        "tg_errors": sum(st.tg_errors.values()),
        "tg_failed": st.tg_failed,
        "tg_late": st.tg_late,
        "floor_p50_ms": pct(st.floor_latency, 50),
        "floor_p99_ms": pct(st.floor_latency, 99),
        "drain_s": round(drained, 1),
        "load_avg": [round(load1, 2), round(load2, 2)],
        "events": st.events,
        **checks,
    }


async def fault(worker: Worker, session: aiohttp.ClientSession, t0: float, seconds: float, st: Stats) -> None:
    """SIGKILL ``worker`` at 30% of the run and start it again at 45%; once it serves again behind the
    proxy, the load goes on for at least a quarter of the run (so the restarted worker takes part)."""
    await asyncio.sleep(max(0.0, t0 + 0.3 * seconds - time.monotonic()))
    worker.kill()
    st.events.append(f"killed {worker.name} at {time.monotonic() - t0:.1f} s")
    assert worker.proc is not None
    await worker.proc.wait()
    await asyncio.sleep(max(0.0, t0 + 0.45 * seconds - time.monotonic()))
    await worker.start()
    await worker.wait_ready(session)
    now = time.monotonic()
    st.events.append(f"restarted {worker.name}, serving again at {now - t0:.1f} s")
    st.deadline = max(st.deadline, now + 0.25 * seconds)


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = (
        "| config | workers | Telegram | web req/s | web p50 ms | web p99 ms | web errors | "
        "Telegram msg/s | Telegram p50 ms | Telegram p99 ms | Telegram errors | lost | duplicated | "
        "pending after drain | /healthz p50/p99 ms | load avg |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = [
        f"| {r['config']} | {r['workers']} | {r['telegram']} | {r['web_rps']} | {r['web_p50_ms']} | "
        f"{r['web_p99_ms']} | {r['web_errors']} | {r['tg_per_s']} | {r['tg_p50_ms']} | {r['tg_p99_ms']} | "
        f"{r['tg_errors']} | {r['lost']} | {_duplicated(r)} | {r['pending']} | "
        f"{r['floor_p50_ms']}/{r['floor_p99_ms']} | {r['load_avg'][0]}-{r['load_avg'][1]} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def _duplicated(r: dict[str, Any]) -> str:
    """The duplicates, and how many of them were replies in flight when a worker was killed."""
    if r["duplicated"] and r.get("in_doubt"):
        return f"{r['duplicated']} ({r['in_doubt']} in flight at the kill)"
    return str(r["duplicated"])


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each with whether this run met it."""
    by = {r["config"]: r for r in rows}
    out = []
    if "sqlite" in by:
        r = by["sqlite"]
        ok = r["web_errors"] == 0 and r["web_p99_ms"] <= 300
        out.append(f"sqlite, {r['config']}: 0 errors and p99 <= 300 ms: {'met' if ok else 'NOT met'}")
    if "pg2" in by:
        r = by["pg2"]
        ok = r["web_errors"] == 0 and r["web_p99_ms"] <= 250
        more = "pg1" in by and r["web_rps"] > by["pg1"]["web_rps"]
        out.append(f"pg2: 0 errors and p99 <= 250 ms: {'met' if ok else 'NOT met'}")
        if "pg1" in by:
            out.append(
                f"pg2 throughput above pg1 ({r['web_rps']} vs {by['pg1']['web_rps']}): {'met' if more else 'NOT met'}"
            )
    if "fault" in by:
        r = by["fault"]
        ok = r["lost"] == 0 and r["duplicated"] == 0 and r["pending"] == 0
        out.append(
            f"fault: 0 lost, 0 duplicated, nothing pending after the restart: {'met' if ok else 'NOT met'}"
        )
    for r in rows:
        if r["lost"] or r["duplicated"] or r["pending"]:
            out.append(
                f"{r['config']}: lost {r['lost']}, duplicated {_duplicated(r)}, pending {r['pending']}"
            )
    return out


async def run(opts: Options) -> list[dict[str, Any]]:
    """Every configuration in turn; the rows."""
    rows = []
    with contextlib.ExitStack() as stack:
        base = opts.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="policybot-load-"))
        )
        for name in opts.configs:
            folder = base / name
            folder.mkdir(parents=True, exist_ok=True)
            row = await run_config(name, opts, folder)
            rows.append(row)
            if not opts.quiet:
                print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pg", default=os.environ.get("POLICYBOT_BENCH_PG_URL", ""), help="PostgreSQL URL (emptied!)"
    )
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--visitors", type=int, default=20)
    p.add_argument("--telegram-users", type=int, default=5)
    p.add_argument("--drain", type=float, default=LEASE_SECONDS + 30)
    p.add_argument("--workdir", default="", help="keep the databases and worker logs here")
    p.add_argument("--json", default="", help="also write the rows to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs: {', '.join(sorted(unknown))}")
    opts = Options(
        pg_url=args.pg,
        configs=configs,
        seconds=args.seconds,
        visitors=args.visitors,
        telegram_users=args.telegram_users,
        drain=args.drain,
        workdir=Path(args.workdir) if args.workdir else None,
    )
    rows = asyncio.run(run(opts))
    print()
    print(table(rows))
    for line in targets(rows):
        print(f"- {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

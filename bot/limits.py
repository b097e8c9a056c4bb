"""Rate limits and flood guards: token buckets, kept where every worker sees them.

One primitive serves every limit: a token bucket of ``capacity`` tokens refilled at ``rate`` tokens a
second; a request takes one token or is refused with the seconds until the next one is due. The web API's
per-visitor and per-address limits, the console's login limit and Telegram's per-user flood guard are all
``RateLimiter``s over one ``Buckets`` store:

- ``DatabaseBuckets`` (PostgreSQL, several workers): one row per key in ``rate_buckets``, taken with a
  single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in autocommit (the row lock orders
  concurrent takes and is held for that one statement only, never across a round trip to the worker:
  every request of one address takes the same row), so two workers allow exactly the rate one would.
  Keys are stored as digests, never a token or an address.
- ``MemoryBuckets`` (SQLite, one worker): the same buckets in the process's memory, no database write.

``buckets_for(engine)`` picks the store for a database.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Insert,
    String,
    bindparam,
    case,
    delete,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from knowledge.models import RateBucket
from knowledge.upsert import dialect_insert

PRUNE_EVERY = 600.0  # seconds between a worker's sweeps of refilled buckets from the table
PRUNE_AFTER = 3600.0  # a bucket untouched this long is full again: its row is dropped


@dataclass(frozen=True, slots=True)
class Verdict:
    """One take: allowed, or refused with ``wait`` seconds until a token is due; ``first_refusal`` is
    True for the first refusal since the last grant (a flood guard tells the user once, then is silent)."""

    allowed: bool
    wait: float = 0.0
    first_refusal: bool = False


Take = tuple[str, float, float]  # a bucket's key, capacity and rate


class Buckets(Protocol):
    """Where the buckets live."""

    async def take(self, key: str, capacity: float, rate: float) -> Verdict:
        """Take one token from ``key``'s bucket (created full)."""
        ...

    async def take_all(self, takes: Sequence[Take]) -> list[Verdict]:
        """``take`` for each ``(key, capacity, rate)``, at once where the store can (one statement)."""
        ...

    async def level(self, key: str, capacity: float, rate: float) -> float:
        """The tokens in ``key``'s bucket now (``capacity`` when it has none), taking nothing."""
        ...

    async def give_back(self, key: str, capacity: float) -> None:
        """Return one token taken from ``key``'s bucket (never past ``capacity``)."""
        ...


def _verdict(tokens: float, refusals: int, rate: float) -> Verdict:
    if refusals == 0:
        return Verdict(True)
    return Verdict(False, max(0.0, (1.0 - tokens) / rate), refusals == 1)


class MemoryBuckets:
    """Buckets in this process's memory (one worker); at most ``max_keys`` are kept."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float, int]] = {}  # key -> tokens, stamp, refusals

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str, capacity: float, rate: float) -> Verdict:
        """Take one token from ``key``'s bucket."""
        now = self.clock()
        tokens, last, refusals = self._buckets.get(key, (capacity, now, 0))
        tokens = min(capacity, tokens + max(0.0, now - last) * rate)
        if tokens >= 1.0:
            tokens, refusals = tokens - 1.0, 0
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._forget(now, capacity, rate)
        else:
            refusals += 1
        self._buckets[key] = (tokens, now, refusals)
        return _verdict(tokens, refusals, rate)

    async def take_all(self, takes: Sequence[Take]) -> list[Verdict]:
        """``take`` of each, in turn."""
        return [await self.take(*t) for t in takes]

    async def level(self, key: str, capacity: float, rate: float) -> float:
        """The tokens ``key``'s bucket holds now, taking nothing."""
        now = self.clock()
        tokens, last, _ = self._buckets.get(key, (capacity, now, 0))
        return min(capacity, tokens + max(0.0, now - last) * rate)

    async def give_back(self, key: str, capacity: float) -> None:
        """Return one token to ``key``'s bucket."""
        if key in self._buckets:
            tokens, last, refusals = self._buckets[key]
            self._buckets[key] = (min(capacity, tokens + 1.0), last, refusals)

    def _forget(self, now: float, capacity: float, rate: float) -> None:
        """Drop the buckets that have refilled (their keys start again from a full bucket anyway)."""
        full = [k for k, (t, last, _) in self._buckets.items() if t + (now - last) * rate >= capacity]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # still full of busy keys: drop the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.max_keys // 2]:
                del self._buckets[k]


def _take_statement(dialect: str, n: str = "") -> Insert:
    """The take of ``DatabaseBuckets``, built once (building it is most of a take's Python work): one
    ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` whose values are the parameters ``key``, ``full``
    (a new bucket's tokens after this take), ``now``, ``cap`` and ``rate`` (each name followed by ``n``)."""
    cap = bindparam(f"cap{n}", type_=Float)
    at = bindparam(f"now{n}", type_=Float)
    # Time since the last take (never negative: workers' clocks may differ a little).
    elapsed = case((at > RateBucket.stamp, at - RateBucket.stamp), else_=0.0)
    refilled = RateBucket.tokens + elapsed * bindparam(f"rate{n}", type_=Float)
    available: ColumnElement[float] = case((refilled > cap, cap), else_=refilled)
    return (
        dialect_insert(dialect)(RateBucket)
        .values(
            key=bindparam(f"key{n}", type_=String),
            tokens=bindparam(f"full{n}", type_=Float),
            stamp=at,
            refusals=0,
        )
        .on_conflict_do_update(
            index_elements=[RateBucket.key],
            set_={
                "tokens": case((available >= 1.0, available - 1.0), else_=available),
                "refusals": case((available >= 1.0, 0), else_=RateBucket.refusals + 1),
                "stamp": case((at > RateBucket.stamp, at), else_=RateBucket.stamp),
            },
        )
        .returning(RateBucket.tokens, RateBucket.refusals)
    )


def _pair_statement() -> CompoundSelect:
    """PostgreSQL: two takes in one statement (two data-modifying ``WITH`` queries), in order."""
    first, second = (_take_statement("postgresql", n).cte(f"take{n}") for n in ("0", "1"))
    return select(literal(0).label("i"), first.c.tokens, first.c.refusals).union_all(
        select(literal(1), second.c.tokens, second.c.refusals)
    )


def _values(take: Take, now: float, n: str = "") -> dict[str, object]:
    key, capacity, rate = take
    return {f"key{n}": key, f"full{n}": capacity - 1.0, f"now{n}": now, f"cap{n}": capacity, f"rate{n}": rate}


class DatabaseBuckets:
    """Buckets in the ``rate_buckets`` table, shared by every worker on the database."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Every statement here commits on its own: an engine set to autocommit once, not per take.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self._take = _take_statement(engine.dialect.name)
        self._pair = _pair_statement() if engine.dialect.name == "postgresql" else None
        self._pruned = 0.0

    async def take(self, key: str, capacity: float, rate: float) -> Verdict:
        """Take one token in one statement; concurrent takes of a key wait for each other's row lock."""
        return (await self.take_all([(key, capacity, rate)]))[0]

    async def take_all(self, takes: Sequence[Take]) -> list[Verdict]:
        """Each take in its own statement on one connection, or two in one statement on PostgreSQL (a
        web request's visitor and address limits: one round trip, not two). The rows are taken in the
        order of their keys, whoever takes them: two statements never wait for each other's rows."""
        now = self.clock()
        order = sorted(range(len(takes)), key=lambda i: takes[i][0])
        rows: dict[int, tuple[float, int]] = {}
        async with self.engine.connect() as conn:
            if self._pair is not None and len(takes) == 2 and takes[0][0] != takes[1][0]:
                values = _values(takes[order[0]], now, "0") | _values(takes[order[1]], now, "1")
                for i, tokens, refusals in await conn.execute(self._pair, values):
                    rows[order[i]] = (tokens, refusals)
            else:
                for i in order:
                    tokens, refusals = (await conn.execute(self._take, _values(takes[i], now))).one()
                    rows[i] = (tokens, refusals)
            if now - self._pruned > PRUNE_EVERY:
                self._pruned = now
                await conn.execute(delete(RateBucket).where(RateBucket.stamp < now - PRUNE_AFTER))
        return [_verdict(float(rows[i][0]), int(rows[i][1]), t[2]) for i, t in enumerate(takes)]

    async def give_back(self, key: str, capacity: float) -> None:
        """Return one token to ``key``'s row, in one statement (as ``take``)."""
        cap = bindparam("cap", capacity, type_=Float)
        more = RateBucket.tokens + 1.0
        stmt = (
            update(RateBucket).where(RateBucket.key == key).values(tokens=case((more > cap, cap), else_=more))
        )
        async with self.engine.connect() as conn:
            await conn.execute(stmt)

    async def level(self, key: str, capacity: float, rate: float) -> float:
        """The tokens ``key``'s row holds now (refilled since its last take), taking nothing."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(RateBucket.tokens, RateBucket.stamp).where(RateBucket.key == key))
            ).one_or_none()
        if row is None:
            return capacity
        return min(capacity, float(row.tokens) + max(0.0, self.clock() - float(row.stamp)) * rate)


def buckets_for(engine: AsyncEngine) -> Buckets:
    """The store for a database: shared rows on PostgreSQL (several workers), memory on SQLite (one
    worker, and no extra write transaction per request on a database that has one writer at a time)."""
    if engine.dialect.name == "postgresql":
        return DatabaseBuckets(engine)
    return MemoryBuckets()


class RateLimiter:
    """At most ``limit`` requests a ``window`` of seconds per key, in bursts of up to ``limit``."""

    def __init__(self, name: str, limit: int, window: float, buckets: Buckets) -> None:
        self.name = name
        self.capacity = float(max(1, limit))
        self.rate = self.capacity / max(0.001, float(window))
        self.buckets = buckets

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(f"{self.name}\n{key}".encode()).hexdigest()[:40]
        return f"{self.name}:{digest}"

    async def check(self, key: str) -> Verdict:
        """Take one token for ``key``."""
        return await self.buckets.take(self._key(key), self.capacity, self.rate)

    async def level(self, key: str) -> float:
        """The tokens ``key`` has left now (``capacity``: untouched lately), taking none."""
        return await self.buckets.level(self._key(key), self.capacity, self.rate)

    async def wait(self, key: str) -> float | None:
        """None when ``key`` has a token left, else the seconds until it has one (taking none)."""
        level = await self.level(key)
        return None if level >= 1.0 else (1.0 - level) / self.rate

    async def give_back(self, key: str) -> None:
        """Return the token a ``check`` of ``key`` took (for a take that turned out not to count)."""
        await self.buckets.give_back(self._key(key), self.capacity)

    def take_of(self, key: str) -> Take:
        """What a ``check`` of ``key`` takes (for ``check_all``)."""
        return (self._key(key), self.capacity, self.rate)

    async def hit(self, key: str) -> float | None:
        """None when ``key`` may go on, else the seconds until it may."""
        verdict = await self.check(key)
        return None if verdict.allowed else verdict.wait


async def check_all(checks: Sequence[tuple[RateLimiter, str]]) -> list[Verdict]:
    """``check`` of each ``(limiter, key)`` at once (the limiters share one store): every one takes its
    token, refused or not."""
    stores = {id(limiter.buckets) for limiter, _ in checks}
    if len(stores) != 1:
        raise ValueError("check_all: the limiters must share one store")
    return await checks[0][0].buckets.take_all([limiter.take_of(key) for limiter, key in checks])


def per_minute(name: str, limit: int, buckets: Buckets) -> RateLimiter:
    """A limit of ``limit`` requests a minute."""
    return RateLimiter(name, limit, 60.0, buckets)


# The console's login (``handlers.staff_auth``). Only failures count against an account, and per
# address: an attacker elsewhere cannot lock a staff member out, and a staff member behind the same
# address who has not failed is let in with the right password.
LOGIN_ATTEMPTS_PER_MINUTE = 120  # every attempt, per address: keeps a flood off the password hashing
LOGIN_ACCOUNT_FAILURES = 10  # failed attempts per (address, account) ...
LOGIN_ADDRESS_FAILURES = 30  # ... and per address, whatever the account ...
LOGIN_FAILURE_WINDOW = 900.0  # ... in 15 minutes (one more allowed every 90 or 30 seconds after)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """The login's three limits (see ``handlers.staff_auth.login`` for how they combine)."""

    attempts: RateLimiter
    account_failures: RateLimiter
    address_failures: RateLimiter

    @classmethod
    def over(cls, buckets: Buckets) -> LoginLimits:
        return cls(
            per_minute("login", LOGIN_ATTEMPTS_PER_MINUTE, buckets),
            RateLimiter("login-fail", LOGIN_ACCOUNT_FAILURES, LOGIN_FAILURE_WINDOW, buckets),
            RateLimiter("login-fail-address", LOGIN_ADDRESS_FAILURES, LOGIN_FAILURE_WINDOW, buckets),
        )

"""One write path for SQLite: the transactions of one process take turns instead of fighting over the
database's single write lock.

SQLite lets one connection write at a time; the others wait in ``busy_timeout`` sleeps inside their
threads, and with many concurrent requests a transaction that holds the lock across event-loop turns
(each statement is an ``await``) keeps them sleeping until some give up with "database is locked".
Here every transaction begun with ``session.begin()`` on a SQLite file first takes the file's
``WriteGate`` (an ``asyncio.Lock``, first come first served, re-entrant within one task; one per file
and process, whatever the number of engines on it), so in one process there is never more than one at a
time and a waiting transaction holds no connection and no lock. Other processes (``policybot kb import`` beside a running bot) still meet ``busy_timeout``.
PostgreSQL needs none of this: its sessions are plain ``AsyncSession``s.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction


class WriteGate:
    """A first-come-first-served turn for transactions, re-entrant within one task."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    async def enter(self) -> None:
        """Wait for the turn (at once when this task holds it already)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a gate outlives an event loop (a test's): start afresh in the new one
            self._lock, self._loop, self._owner, self._depth = asyncio.Lock(), loop, None, 0
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            self._depth += 1
            return
        await self._lock.acquire()
        self._owner, self._depth = task, 1

    def leave(self) -> None:
        """End this task's turn (the outermost ``leave`` of a re-entered gate releases it)."""
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


_GATES: dict[str, WriteGate] = {}


def gate_for(database: str) -> WriteGate:
    """The gate of one SQLite file in this process."""
    return _GATES.setdefault(os.path.abspath(database) if database != ":memory:" else database, WriteGate())


class GatedTransaction(AsyncSessionTransaction):
    """``session.begin()`` that holds the session's gate from before BEGIN until after COMMIT."""

    __slots__ = ("gate",)

    def __init__(self, session: AsyncSession, gate: WriteGate) -> None:
        super().__init__(session)
        self.gate = gate

    async def __aenter__(self) -> AsyncSessionTransaction:
        await self.gate.enter()
        try:
            return await super().__aenter__()
        except BaseException:
            self.gate.leave()
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            self.gate.leave()


class GatedSession(AsyncSession):
    """An ``AsyncSession`` whose ``begin()`` transactions take turns through ``gate``."""

    def __init__(self, *args: Any, gate: WriteGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    def begin(self) -> AsyncSessionTransaction:
        """A transaction (an async context manager) that waits for the gate first."""
        return GatedTransaction(self, self.gate)

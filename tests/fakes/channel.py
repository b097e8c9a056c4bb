"""An in-memory channel for core tests: records what the outbox sends, fails when told to.

ch = FakeChannel("web")
app.registry.add(ch)
ch.fail_next(DeliveryError("flood", retry_after=30))   # the next send raises this
await app.outbox.deliver_due()
ch.sent  # [(chat_ref, Reply, reply_to), ...] of the successful sends, in order
"""

from __future__ import annotations

import asyncio
import itertools

from bot.channels import DeliveryError
from bot.messages import Reply

_refs = itertools.count(1000)


class FakeChannel:
    """A ``bot.channels.Channel`` that keeps every delivered reply in ``sent``.

    ``fail_next(*errors)`` queues exceptions (usually ``DeliveryError``) raised by the next sends, one
    per send; ``None`` in the queue lets that send through. ``delay`` makes each send yield to the event
    loop for that long first (to interleave concurrent workers). ``attempts`` counts every call.
    """

    def __init__(self, name: str = "fake", *, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.sent: list[tuple[str, Reply, str | None]] = []
        self.attempts = 0
        self._failures: list[BaseException | None] = []

    def fail_next(self, *errors: BaseException | None) -> None:
        """Make the next ``len(errors)`` sends raise these (``None``: succeed)."""
        self._failures.extend(errors)

    def fail_with_retry_after(self, seconds: float) -> None:
        """The next send answers like Telegram's 429: retry after ``seconds``."""
        self.fail_next(DeliveryError(f"Too Many Requests: retry after {seconds}", retry_after=seconds))

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._failures:
            error = self._failures.pop(0)
            if error is not None:
                raise error
        self.sent.append((chat_ref, reply, reply_to))
        return str(next(_refs))

    # -- convenience for assertions -----------------------------------------------------------------
    def to(self, chat_ref: str) -> list[Reply]:
        """The replies delivered to one chat, in order."""
        return [r for c, r, _ in self.sent if c == chat_ref]

    def kinds(self) -> list[str]:
        return [r.kind for _, r, _ in self.sent]

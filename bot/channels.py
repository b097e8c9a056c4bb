"""The channel seam: what the core needs of an adapter to deliver a reply, and the registry of them."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Reply


class DeliveryError(Exception):
    """A reply could not be delivered. ``retry_after`` (seconds) when the channel said when to retry;
    ``permanent`` when retrying cannot help (chat gone, bot blocked)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


class Channel(Protocol):
    """A channel adapter as the outbox sees it."""

    name: str

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        """Deliver ``reply`` to ``chat_ref`` (optionally as a reply to a message); return the channel's
        id of the sent message, or raise ``DeliveryError``."""
        ...


class ChannelRegistry:
    """The channels running in this process, by name."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def add(self, channel: Channel) -> None:
        self._channels[channel.name] = channel

    def remove(self, name: str) -> None:
        self._channels.pop(name, None)

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def names(self) -> list[str]:
        return sorted(self._channels)

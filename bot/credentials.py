"""Channel API credentials shared by every worker: a token with its expiry, kept in the database.

A channel whose API needs a short-lived token (WeChat's access token, two hours) fetches it once and
stores it here, so a second worker uses the same token instead of fetching (and invalidating) another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.models import ChannelToken, utcnow


@dataclass(frozen=True, slots=True)
class Credential:
    """A token and when it stops working."""

    value: str
    expires_at: datetime

    def fresh(self, margin: timedelta, now: datetime | None = None) -> bool:
        """True while more than ``margin`` is left before expiry."""
        expires = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return expires - margin > (now or utcnow())


class CredentialStore:
    """Tokens by name (e.g. ``wechat:<app_id>``) in the ``channel_tokens`` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, name: str) -> Credential | None:
        async with self.sessions() as session:
            row = await session.get(ChannelToken, name)
            return None if row is None else Credential(row.value, row.expires_at)

    async def put(self, name: str, credential: Credential) -> None:
        """Store (or replace) a token; when another worker stores one at the same moment, theirs stays."""
        try:
            async with self.sessions() as session, session.begin():
                row = await session.get(ChannelToken, name)
                if row is None:
                    session.add(
                        ChannelToken(name=name, value=credential.value, expires_at=credential.expires_at)
                    )
                else:
                    row.value, row.expires_at = credential.value, credential.expires_at
        except IntegrityError:
            return

    async def forget(self, name: str) -> None:
        """Drop a token the API said is no longer valid."""
        async with self.sessions() as session, session.begin():
            row = await session.get(ChannelToken, name)
            if row is not None:
                await session.delete(row)

"""Staff console accounts and login sessions.

Passwords are stored as argon2id hashes (argon2-cffi). A login session is a random token kept in the
browser's cookie; the database keeps only its hash (HMAC-SHA256 with ``[web] session_secret`` when one
is set, plain SHA-256 otherwise), the session's CSRF token and its expiry.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.models import StaffAccount, StaffSession, utcnow

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
PASSWORD_RULE = (
    f"Choose a password of {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters; it is asked twice."
)
SESSION_TTL = timedelta(hours=12)
PASSWORD_ENV = "POLICYBOT_STAFF_PASSWORD"
_NAME = re.compile(r"^[\w.@-]{1,100}\Z")  # \Z: "$" allows a final newline
# Roles, each allowed what the ones before it are: an agent works tickets; an editor also approves
# knowledge, manages canned replies and turns knowledge gaps into entries; an admin also manages accounts
# and may export personal data unmasked.
ROLES = ("agent", "editor", "admin")
ROLE_WORDS = {"agent": "坐席", "editor": "编辑", "admin": "管理员"}

DEFAULT_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a wrong password."""
    return DEFAULT_HASHER.hash("policybot-no-such-account")


class StaffAccountError(ValueError):
    """A staff account that cannot be created, or a password that cannot be used."""


@dataclass(frozen=True, slots=True)
class StaffLogin:
    """A valid console session: who is logged in and the session's CSRF token."""

    staff_id: int
    name: str
    csrf_token: str
    expires_at: datetime
    role: str = "agent"
    office: str = ""

    def can(self, role: str) -> bool:
        """Whether this member's role includes ``role`` (admin > editor > agent)."""
        return has_role(self.role, role)


def has_role(held: str, needed: str) -> bool:
    """Whether role ``held`` includes role ``needed``."""
    return held in ROLES and ROLES.index(held) >= ROLES.index(needed)


def check_role(role: str) -> str:
    """Return the role if known; raise StaffAccountError otherwise."""
    if role not in ROLES:
        raise StaffAccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_office(office: str, offices: Sequence[str]) -> str:
    """Return the office if it is one of the configured ``offices``; raise StaffAccountError otherwise."""
    if office not in offices:
        raise StaffAccountError(f"unknown office {office!r}: use one of {', '.join(offices)}")
    return office


def check_password(password: str) -> str:
    """Return the password if it is usable; raise StaffAccountError with the reason otherwise."""
    if not password:
        raise StaffAccountError("the password is empty")
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffAccountError(f"the password is too short (at least {MIN_PASSWORD_CHARS} characters)")
    if len(password) > MAX_PASSWORD_CHARS:
        raise StaffAccountError(f"the password is too long (at most {MAX_PASSWORD_CHARS} characters)")
    return password


def check_name(name: str) -> str:
    """Return the account name if valid: 1-100 letters, digits, Chinese characters or ``_ . @ -``."""
    if not _NAME.match(name or ""):
        raise StaffAccountError(
            f"invalid account name {name!r}: use 1-100 letters, digits, Chinese characters or _ . @ -"
        )
    return name


def read_password(
    env: Mapping[str, str] | None = None, prompt: Callable[[str], str] = getpass.getpass
) -> str:
    """The new account's password: ``$POLICYBOT_STAFF_PASSWORD``, else asked twice on the terminal."""
    env = os.environ if env is None else env
    if env.get(PASSWORD_ENV):
        return check_password(env[PASSWORD_ENV])
    print(PASSWORD_RULE, file=sys.stderr, flush=True)
    try:
        first = prompt("Password: ")
        second = prompt("Repeat password: ")
    except (EOFError, KeyboardInterrupt) as exc:
        raise StaffAccountError(f"no password given (set ${PASSWORD_ENV} when there is no terminal)") from exc
    if first != second:
        raise StaffAccountError("the two passwords do not match")
    return check_password(first)


async def create_account(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    password: str,
    telegram_id: int | None = None,
    *,
    office: str = "",
    role: str | None = None,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> StaffAccount:
    """Store a new account with an argon2 hash of its password; the name must be new. Without a
    ``role`` the first account is an admin (someone must manage the others) and later ones agents."""
    check_name(name)
    check_password(password)
    if role is not None:
        check_role(role)
    password_hash = await asyncio.to_thread(hasher.hash, password)
    async with sessions() as session, session.begin():
        if await session.scalar(select(StaffAccount.id).where(StaffAccount.name == name)) is not None:
            raise StaffAccountError(f"a staff account named {name!r} already exists")
        if role is None:
            first = await session.scalar(select(StaffAccount.id).limit(1)) is None
            role = "admin" if first else "agent"
        account = StaffAccount(
            name=name, password_hash=password_hash, telegram_user_id=telegram_id, office=office, role=role
        )
        session.add(account)
    return account


async def list_accounts(sessions: async_sessionmaker[AsyncSession]) -> list[StaffAccount]:
    """Every account, by name."""
    async with sessions() as session:
        return list(await session.scalars(select(StaffAccount).order_by(StaffAccount.name)))


async def _account(session: AsyncSession, name: str) -> StaffAccount:
    account = await session.scalar(select(StaffAccount).where(StaffAccount.name == name))
    if account is None:
        raise StaffAccountError(f"no staff account named {name!r}")
    return account


async def set_active(sessions: async_sessionmaker[AsyncSession], name: str, active: bool) -> StaffAccount:
    """Disable (or enable again) an account; disabling also ends its login sessions."""
    async with sessions() as session, session.begin():
        account = await _account(session, name)
        account.active = active
        if not active:
            await session.execute(delete(StaffSession).where(StaffSession.staff_id == account.id))
    return account


async def reset_password(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    password: str,
    *,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> StaffAccount:
    """Give an account a new password and end its login sessions."""
    check_password(password)
    password_hash = await asyncio.to_thread(hasher.hash, password)
    async with sessions() as session, session.begin():
        account = await _account(session, name)
        account.password_hash = password_hash
        await session.execute(delete(StaffSession).where(StaffSession.staff_id == account.id))
    return account


async def update_account(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    *,
    office: str | None = None,
    role: str | None = None,
) -> StaffAccount:
    """Change an account's office or role."""
    if role is not None:
        check_role(role)
    async with sessions() as session, session.begin():
        account = await _account(session, name)
        if office is not None:
            account.office = office
        if role is not None:
            account.role = role
    return account


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], name: str, password: str
) -> StaffAccount | None:
    """The active account with this name and password, or None (in about constant time)."""
    async with sessions() as session:
        account = await session.scalar(select(StaffAccount).where(StaffAccount.name == name))
    stored = account.password_hash if account is not None and account.active else None
    ok = await asyncio.to_thread(_verify, stored, password[:MAX_PASSWORD_CHARS])
    return account if ok and account is not None and account.active else None


def _verify(stored: str | None, password: str) -> bool:
    try:
        return DEFAULT_HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_token(token: str, secret: str = "") -> str:
    """What the database keeps of a session token (64 hex characters)."""
    if secret:
        return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    sessions: async_sessionmaker[AsyncSession],
    account: StaffAccount,
    secret: str = "",
    ttl: timedelta = SESSION_TTL,
) -> tuple[str, StaffLogin]:
    """Start a login session; return the cookie token and the session (with its CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    async with sessions() as session, session.begin():
        await session.execute(delete(StaffSession).where(StaffSession.expires_at < utcnow()))
        session.add(
            StaffSession(
                token_hash=hash_token(token, secret), staff_id=account.id, csrf_token=csrf, expires_at=expires
            )
        )
    return token, StaffLogin(account.id, account.name, csrf, expires)


async def session_for(
    sessions: async_sessionmaker[AsyncSession], token: str, secret: str = ""
) -> StaffLogin | None:
    """The unexpired session of an active account that this cookie token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    async with sessions() as session:
        row = (
            await session.execute(
                select(StaffSession, StaffAccount)
                .join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
                .where(StaffSession.token_hash == hash_token(token, secret))
            )
        ).first()
    if row is None:
        return None
    staff_session, account = row
    expires = _aware(staff_session.expires_at)
    if expires <= utcnow() or not account.active:
        return None
    return StaffLogin(
        account.id, account.name, staff_session.csrf_token, expires, account.role, account.office
    )


async def close_session(sessions: async_sessionmaker[AsyncSession], token: str, secret: str = "") -> None:
    """Log out: forget the session."""
    async with sessions() as session, session.begin():
        await session.execute(
            delete(StaffSession).where(StaffSession.token_hash == hash_token(token, secret))
        )


def _aware(dt: datetime) -> datetime:
    # SQLite gives back naive datetimes; they were stored in UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

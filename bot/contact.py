"""留言 with a contact, and the ticket's reply page (``/t/{ticket}-{code}``).

A web visitor may leave a message (留言) with a mainland mobile number or an e-mail address; the
message opens a ticket (or joins the open one) and the contact is stored with the ticket
(``TicketAccess``). Everywhere but the staff's ticket page the contact is shown masked
(``bot.privacy.mask_value``: ``138****5678``, ``z***@example.com``), and it is never logged.

Every web ticket gets a reply page: its number plus a short code drawn with ``secrets`` (10 characters
of a 31-letter alphabet, about 49 bits), shown to the visitor once when the ticket opens. Only the
code's SHA-256 is stored, and it is compared in constant time; the page shows that ticket's
conversation from any browser, without the visitor's token. A wrong code and an unknown ticket look
the same (None).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import IncomingMessage, Reply
from bot.outbox import enqueue
from bot.privacy import Kind, mask_value
from bot.tickets import TicketService
from knowledge.models import Conversation, Message, Ticket, TicketAccess, TicketPost
from knowledge.text import storable

log = logging.getLogger("policybot.contact")

ContactKind = Literal["", "phone", "email"]
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied by hand
CODE_LENGTH = 10
PAGE_PATH = re.compile(r"^([1-9][0-9]{0,11})-([a-z0-9]{1,40})\Z")  # \Z: "$" allows a final newline
MAX_MESSAGE = 2000
_MOBILE = re.compile(r"^1[3-9][0-9]{9}\Z")
_EMAIL = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}$"
)
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

BAD_CONTACT = "联系方式应为手机号（11 位，1 开头）或电子邮箱（contact must be a mainland mobile number or an e-mail address）"
EMPTY_MESSAGE = "请填写留言内容（message is empty）"
LONG_MESSAGE = f"留言不能超过 {MAX_MESSAGE} 字（message over {MAX_MESSAGE} characters）"
LEFT = "已收到您的留言，工单号 #{ticket}。{expected}"
ADDED = "已将您的留言补充到工单 #{ticket}。{expected}"
CONTACT_LINE = "\n您留下的联系方式：{contact}（仅工作人员可见，用于答复您）。"
PAGE_LINE = (
    "\n工单 #{ticket} 的答复页：{url}\n"
    "请保存这个链接：换浏览器或清除浏览器数据后，也能用它查看工作人员的答复。"
)


class ContactError(ValueError):
    """Bad input for 留言: the contact is not a mobile number or e-mail, or the message is empty or long."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_contact(value: str) -> tuple[ContactKind, str]:
    """A contact as stored: ``("phone", "13812345678")``, ``("email", "a@b.cn")`` or ``("", "")`` when
    empty; ``ContactError`` for anything else. Spaces, dashes and a +86 / 0086 prefix are forgiven."""
    text = storable(value).translate(_FOLD).strip()
    if not text:
        return "", ""
    if "@" in text:
        if len(text) <= 254 and _EMAIL.match(text):
            local, _, domain = text.rpartition("@")
            return "email", f"{local}@{domain.lower()}"
        raise ContactError("bad_contact", BAD_CONTACT)
    digits = re.sub(r"[\s\-()]", "", text)
    digits = re.sub(r"^(?:\+86|0086|86)(?=1[0-9]{10}$)", "", digits)
    if _MOBILE.match(digits):
        return "phone", digits
    raise ContactError("bad_contact", BAD_CONTACT)


def masked(kind: str, value: str) -> str:
    """The contact as everyone but the staff's ticket page shows it."""
    if not value:
        return ""
    return mask_value(Kind.EMAIL if kind == "email" else Kind.PHONE, value)


def new_code() -> str:
    """A fresh reply-page code."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def page_path(ticket_id: int, code: str) -> str:
    """The reply page's path, ``/t/12-k3m9x2pq7d``."""
    return f"/t/{ticket_id}-{code}"


def page_notice(ticket_id: int, code: str, base_url: str) -> Reply:
    """The one-time notice with the reply page's address (not stored: only the code's hash is)."""
    url = base_url.rstrip("/") + page_path(ticket_id, code)
    return Reply(PAGE_LINE.format(ticket=ticket_id, url=url).strip(), kind="info", ticket_id=ticket_id)


@dataclass(frozen=True, slots=True)
class TicketPage:
    """What the reply page shows: the ticket, its conversation (questions and staff replies), and the
    contact left with it, masked."""

    ticket: Ticket
    messages: list[Message]
    contact: str


class TicketAccessService:
    """Reply-page codes and contacts of tickets."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], tickets: TicketService) -> None:
        self.sessions = sessions
        self.tickets = tickets

    async def _conversation(self, session: AsyncSession, msg: IncomingMessage) -> Conversation | None:
        return await session.scalar(
            select(Conversation).where(
                Conversation.channel == msg.channel,
                Conversation.chat_ref == msg.chat_ref,
                Conversation.user_ref == msg.user_ref,
            )
        )

    async def _issue(self, session: AsyncSession, ticket_id: int) -> str | None:
        """A code for a ticket that has none yet (None when it has one: it was shown already)."""
        access = await session.get(TicketAccess, ticket_id)
        if access is not None and access.code_hash:
            return None
        code = new_code()
        if access is None:
            session.add(TicketAccess(ticket_id=ticket_id, code_hash=code_hash(code)))
        else:
            access.code_hash = code_hash(code)
        await session.flush()
        return code

    async def page_for(self, msg: IncomingMessage, ticket_id: int, base_url: str) -> Reply | None:
        """The reply page's link for a ticket of this visitor just opened, shown once and never stored
        (only the code's hash is); None when the ticket is not theirs or its page was given before."""
        try:
            async with self.sessions() as session, session.begin():
                conv = await self._conversation(session, msg)
                ticket = await session.get(Ticket, ticket_id)
                if conv is None or ticket is None or ticket.conversation_id != conv.id:
                    return None
                code = await self._issue(session, ticket_id)
        except IntegrityError:  # a second request for the same ticket issued it at the same moment
            return None
        return None if code is None else page_notice(ticket_id, code, base_url)

    async def leave_message(self, msg: IncomingMessage, text: str, contact: str) -> tuple[Reply, str | None]:
        """留言: open a ticket with ``text`` (or add it to the open one) and store ``contact`` with it.
        Returns the reply to store in the conversation and the new reply-page code (None when the
        ticket had one; show it with ``page_notice``). ``ContactError`` for bad input; nothing is
        stored then."""
        text = storable(text).strip()
        if not text:
            raise ContactError("empty_message", EMPTY_MESSAGE)
        if len(text) > MAX_MESSAGE:
            raise ContactError("message_too_long", LONG_MESSAGE)
        kind, value = parse_contact(contact)
        async with self.sessions() as session, session.begin():
            conv = await self._conversation(session, msg)
            if conv is None:
                conv = Conversation(
                    channel=msg.channel,
                    chat_ref=msg.chat_ref,
                    user_ref=msg.user_ref,
                    display_name=msg.display_name[:200],
                )
                session.add(conv)
                await session.flush()
            ticket = await self.tickets.open_for(session, conv)
            added = ticket is not None
            if ticket is not None:
                await self.tickets.add_user_message(session, ticket, conv, text)
            else:
                ticket = await self.tickets.open(session, conv, text, "user_request", [])
                session.add(
                    Message(
                        conversation_id=conv.id, direction="in", author="user", text=text, ticket_id=ticket.id
                    )
                )
            code = await self._issue(session, ticket.id)
            if value:
                access = await session.get(TicketAccess, ticket.id)
                assert access is not None  # _issue made it
                access.contact, access.contact_kind = value, kind
                await self._tell_staff(session, ticket, masked(kind, value))
            ticket_id = ticket.id
        log.info("message left", extra={"ticket": ticket_id, "contact_kind": kind or "none"})
        words = (ADDED if added else LEFT).format(ticket=ticket_id, expected=self.tickets.expected_reply())
        if value:
            words += CONTACT_LINE.format(contact=masked(kind, value))
        return Reply(words, kind="info" if added else "escalated", ticket_id=ticket_id), code

    async def _tell_staff(self, session: AsyncSession, ticket: Ticket, contact: str) -> None:
        """The staff thread hears that a contact was left (masked: the ticket page shows it in full)."""
        posts = list(await session.scalars(select(TicketPost).where(TicketPost.ticket_id == ticket.id)))
        targets = {(p.channel, p.chat_ref): p.message_ref for p in posts}
        note = Reply(
            f"【工单 #{ticket.id} 用户留下联系方式】{contact}", kind="staff_followup", ticket_id=ticket.id
        )
        for ref in self.tickets.staff_targets:
            reply_to = targets.get((ref.channel, ref.chat_ref))
            enqueue(session, ref, note, kind="staff_followup", ticket_id=ticket.id, reply_to=reply_to)

    async def page(self, ticket_id: int, code: str) -> TicketPage | None:
        """The reply page of ``ticket_id`` when ``code`` is its code; None otherwise (whether or not the
        ticket exists)."""
        given = code_hash(code)
        async with self.sessions() as session:
            access = await session.get(TicketAccess, ticket_id)
            stored = access.code_hash if access is not None and access.code_hash else code_hash(new_code())
            if not hmac.compare_digest(given, stored) or access is None:
                return None
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return None
            rows = await session.scalars(
                select(Message)
                .where(Message.ticket_id == ticket_id, Message.author.in_(("user", "staff")))
                .order_by(Message.id)
                .limit(500)
            )
            return TicketPage(ticket, list(rows), masked(access.contact_kind, access.contact))

    async def contacts(self, ticket_ids: list[int], *, full: bool = False) -> dict[int, str]:
        """The contacts left with these tickets, masked (``full`` only for the staff's ticket page)."""
        if not ticket_ids:
            return {}
        async with self.sessions() as session:
            rows = await session.scalars(
                select(TicketAccess).where(TicketAccess.ticket_id.in_(ticket_ids), TicketAccess.contact != "")
            )
            return {a.ticket_id: a.contact if full else masked(a.contact_kind, a.contact) for a in rows}

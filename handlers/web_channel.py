"""The ``web`` channel as the outbox sees it.

A web visitor reads their conversation from the database (``GET /api/conversations/{token}``), so
delivering means making the message visible there: a staff answer is already stored as a message by
``TicketService.reply``; other notices (a ticket closed by staff) are stored here as bot messages.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Reply
from knowledge.models import Conversation, Message

STORED_ELSEWHERE = ("staff_reply",)


class WebChannel:
    """Delivers replies to web visitors by storing them in the visitor's conversation."""

    name = "web"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.delivered = 0

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        """Store a notice in the conversation of ``chat_ref``; staff answers are stored already."""
        self.delivered += 1
        if reply.kind in STORED_ELSEWHERE:
            return None if reply.message_id is None else str(reply.message_id)
        async with self.sessions() as session, session.begin():
            conv_id = await session.scalar(
                select(Conversation.id).where(
                    Conversation.channel == self.name, Conversation.chat_ref == chat_ref
                )
            )
            if conv_id is None:
                return None  # the visitor's conversation is gone: nothing to show it in
            msg = Message(
                conversation_id=conv_id,
                direction="out",
                author="bot",
                text=reply.text,
                status=reply.kind,
                ticket_id=reply.ticket_id,
                payload={"reply": reply.to_json()},
            )
            session.add(msg)
            await session.flush()
            return str(msg.id)

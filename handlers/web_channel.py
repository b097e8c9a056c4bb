"""The ``web`` channel as the outbox sees it.

A web visitor reads their conversation from the database (``GET /api/conversations/{token}``), so
delivering means making the message visible there: a staff answer is already stored as a message by
``TicketService.reply``; other notices (a ticket closed by staff) are stored by the core
(``Conversations.record_reply``).
"""

from __future__ import annotations

from bot.conversation import Conversations
from bot.messages import ChannelRef, Reply

STORED_ELSEWHERE = ("staff_reply",)


class WebChannel:
    """Delivers replies to web visitors by having the core store them in the visitor's conversation."""

    name = "web"

    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations
        self.delivered = 0

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        """Store a notice in the conversation of ``chat_ref``; staff answers are stored already."""
        self.delivered += 1
        if reply.kind in STORED_ELSEWHERE:
            return None if reply.message_id is None else str(reply.message_id)
        message_id = await self.conversations.record_reply(ChannelRef(self.name, chat_ref), reply)
        return None if message_id is None else str(message_id)

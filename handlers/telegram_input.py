"""Reading Telegram updates: the neutral message of an update, the text meant for the bot, the content
kind of a non-text message (the per-user flood limit: ``bot.limits``)."""

from __future__ import annotations

import re

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from bot.messages import IncomingMessage
from handlers.telegram_channel import CHANNEL

CONTENT_KINDS = ("photo", "sticker", "voice", "audio", "video", "video_note", "animation", "document",
                 "location", "contact", "poll", "dice")  # fmt: skip


def incoming(update: Update, text: str = "", content_type: str = "text") -> IncomingMessage | None:
    """The neutral message for an update from a user (None for updates without a user or chat)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot:
        return None
    chat_id = chat.id if chat is not None else user.id
    return IncomingMessage(
        channel=CHANNEL,
        chat_ref=str(chat_id),
        user_ref=str(user.id),
        text=text,
        display_name=user.full_name,
        update_id=str(update.update_id),
        content_type=content_type,
    )


def addressed_text(message: Message, bot_id: int, username: str | None) -> str | None:
    """The text meant for the bot: all of it in a private chat; in a group only when the bot is
    mentioned (the mention removed) or replied to; None when the message is not for the bot."""
    text = message.text or message.caption or ""
    if message.chat.type == ChatType.PRIVATE:
        return text
    replied = message.reply_to_message is not None and (
        message.reply_to_message.from_user is not None and message.reply_to_message.from_user.id == bot_id
    )
    if not (replied or (username and mentions(message, username))):
        return None
    return strip_mention(text, username) if username else text


def mentions(message: Message, username: str) -> bool:
    """True when a ``mention`` entity in the text or caption names the bot."""
    wanted = f"@{username}".lower()
    found = {**message.parse_entities([MessageEntity.MENTION]),
             **message.parse_caption_entities([MessageEntity.MENTION])}  # fmt: skip
    return any(value.lower() == wanted for value in found.values())


def strip_mention(text: str, username: str) -> str:
    """Remove ``@username`` from the text."""
    return re.sub(rf"@{re.escape(username)}(?![A-Za-z0-9_])", " ", text, flags=re.IGNORECASE).strip()


def content_kind(message: Message) -> str:
    """What a non-text message carries (``photo``, ``sticker``, ``voice``, ...)."""
    for kind in CONTENT_KINDS:
        if getattr(message, kind, None):
            return kind
    return "other"

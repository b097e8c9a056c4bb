"""Satisfaction with staff replies: 满意 / 一般 / 不满意 under each staff answer, an optional comment.

A rating belongs to one staff reply (a stored ``Message`` written by ``TicketService``); rating it again
replaces the rating (and the comment, when one is given). The console's overview counts the ratings
beside the bot's 有用 / 没解决 (``counts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Button, IncomingMessage, Reply
from bot.protocol import RATING_SCORES, rate_action

__all__ = ["RATING_SCORES", "RatingError", "RatingService", "check", "counts", "rating_buttons"]
from knowledge.models import Conversation, Message, Rating, utcnow
from knowledge.text import storable

RATING_LABELS = {"good": "满意", "fair": "一般", "bad": "不满意"}
MAX_COMMENT = 500
THANKS = "感谢您的评价（{label}）！"
THANKS_COMMENT = "感谢您的评价（{label}）和意见！"
NO_REPLY = "找不到这条工作人员答复。"
ASK_COMMENT = "如有意见，请发送 /comment 加上您的意见，例如：/comment 答复很清楚。"
NOTHING_RATED = "请先评价工作人员的答复（满意 / 一般 / 不满意），再发送 /comment 补充意见。"
EMPTY_COMMENT = "请在 /comment 后面写上您的意见，例如：/comment 答复很清楚。"
COMMENT_HOURS = 24  # /comment adds to the conversation's rating given within this many hours


class RatingError(ValueError):
    """A rating that cannot be stored: a score or comment out of range."""


def rating_buttons(message_id: int) -> list[list[Button]]:
    """满意 / 一般 / 不满意 under a staff reply."""
    return [[Button(RATING_LABELS[s], rate_action(message_id, s)) for s in RATING_SCORES]]


def check(score: str, comment: str) -> str:
    """The comment ready to store; ``RatingError`` for an unknown score or a comment over the limit."""
    if score not in RATING_SCORES:
        raise RatingError(f"评价应为 {' / '.join(RATING_SCORES)}（rating must be good, fair or bad）")
    comment = storable(comment).strip()
    if len(comment) > MAX_COMMENT:
        raise RatingError(f"意见不能超过 {MAX_COMMENT} 字（comment over {MAX_COMMENT} characters）")
    return comment


class RatingService:
    """Stores the ratings of staff replies."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def rate(self, msg: IncomingMessage, message_id: int, score: str, comment: str = "") -> Reply:
        """Rate staff reply ``message_id`` of this user's conversation; a reply of kind ``error`` when it
        is not one (nothing stored). ``RatingError`` (nothing stored) for a bad score or comment."""
        comment = check(score, comment)
        async with self.sessions() as session, session.begin():
            conv = await session.scalar(
                select(Conversation).where(
                    Conversation.channel == msg.channel,
                    Conversation.chat_ref == msg.chat_ref,
                    Conversation.user_ref == msg.user_ref,
                )
            )
            answer = await session.get(Message, message_id)
            if (
                conv is None
                or answer is None
                or answer.conversation_id != conv.id
                or answer.author != "staff"
            ):
                return Reply(NO_REPLY, kind="error")
            rating = await session.scalar(select(Rating).where(Rating.message_id == answer.id))
            if rating is None:
                rating = Rating(message_id=answer.id, conversation_id=conv.id, ticket_id=answer.ticket_id)
                session.add(rating)
            rating.score, rating.updated_at = score, utcnow()
            if comment:
                rating.comment = comment
        text = (THANKS_COMMENT if comment else THANKS).format(label=RATING_LABELS[score])
        if not comment and msg.channel != "web":  # the web page offers a comment box instead
            text += ASK_COMMENT
        return Reply(text, kind="info", ticket_id=answer.ticket_id)

    async def comment(self, msg: IncomingMessage, text: str) -> Reply:
        """``/comment TEXT``: the comment of the conversation's latest rating (given in the last day)."""
        if not storable(text).strip():
            return Reply(EMPTY_COMMENT, kind="error")
        try:
            comment = check("good", text)
        except RatingError as exc:
            return Reply(str(exc), kind="error")
        since = utcnow() - timedelta(hours=COMMENT_HOURS)
        async with self.sessions() as session, session.begin():
            rating = await session.scalar(
                select(Rating)
                .join(Conversation, Conversation.id == Rating.conversation_id)
                .where(
                    Conversation.channel == msg.channel,
                    Conversation.chat_ref == msg.chat_ref,
                    Conversation.user_ref == msg.user_ref,
                    Rating.updated_at >= since,
                )
                .order_by(Rating.updated_at.desc(), Rating.id.desc())
                .limit(1)
            )
            if rating is None:
                return Reply(NOTHING_RATED, kind="error")
            rating.comment, rating.updated_at = comment, utcnow()
            label = RATING_LABELS.get(rating.score, rating.score)
            return Reply(THANKS_COMMENT.format(label=label), kind="info", ticket_id=rating.ticket_id)

    async def of_messages(self, message_ids: list[int]) -> dict[int, Rating]:
        """The ratings of these staff replies, by message id."""
        if not message_ids:
            return {}
        async with self.sessions() as session:
            rows = await session.scalars(select(Rating).where(Rating.message_id.in_(message_ids)))
            return {r.message_id: r for r in rows}


async def counts(session: AsyncSession, start: datetime, end: datetime | None = None) -> dict[str, int]:
    """Ratings given (or changed) since ``start`` (and before ``end``), by score."""
    bounds = [Rating.updated_at >= start] + ([Rating.updated_at < end] if end is not None else [])
    rows = await session.execute(select(Rating.score, func.count()).where(*bounds).group_by(Rating.score))
    found = {str(s): int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in RATING_SCORES}

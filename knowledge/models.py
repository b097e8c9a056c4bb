"""SQLAlchemy 2 typed models: knowledge entries, conversations, tickets, feedback, outbox, staff.

Everything that must survive a restart or be shared by a second worker lives here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The values of the status and kind columns (stored as short strings; typed here for the checker).
ReplyKind = Literal["answer", "suggestions", "no_answer", "escalated", "staff_reply", "staff_post",
                    "staff_followup", "info", "error", "reminder", "ack", "alert", "broadcast", "staff_notice"]  # fmt: skip
MessageStatus = ReplyKind | Literal["", "answered", "suggested", "invalid", "staff"]
Direction = Literal["in", "out"]
Author = Literal["user", "bot", "staff"]
TicketStatus = Literal["open", "claimed", "answered", "closed", "cancelled"]
TicketReason = Literal["", "no_match", "user_request", "not_helpful"]
OutboxKind = Literal[
    "reply", "staff_post", "staff_followup", "reminder", "alert", "broadcast", "staff_notice"
]
OutboxStatus = Literal["pending", "sending", "sent", "failed"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (stored as such on both SQLite and PostgreSQL)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for all models."""


class Entry(Base):
    """One knowledge entry: faq, guide (办事指南), policy (政策解读 or imported document), or clause."""

    __tablename__ = "entries"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str] = mapped_column(Text, default="")
    alternates: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text, default="")
    # Ordered named sections: [[name, text], ...] (guide sections, policy summary/points, clause text).
    sections: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(100), default="", index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="published", index=True)
    # Provenance: title, number (文号), date, issuer, url, note.
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    publish_date: Mapped[str] = mapped_column(String(10), default="")
    valid_until: Mapped[str] = mapped_column(String(10), default="")
    parent_id: Mapped[str | None] = mapped_column(String(200), index=True, default=None)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    office: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[str] = mapped_column(String(300), default="")
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # Index tokens {"key": [...], "body": [...]} cached with the lexicon signature that made them, so a
    # large knowledge base loads without running jieba again.
    tokens: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    token_sig: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KnowledgeState(Base):
    """The knowledge version (one row): every change to the entries raises it in the same
    transaction, so each worker can tell whether its index is current (``knowledge.versions``).
    ``kb_id`` names this database's knowledge for the index files; ``full_version`` is the last
    change too large to log entry by entry: a worker behind it reloads everything."""

    __tablename__ = "knowledge_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    full_version: Mapped[int] = mapped_column(BigInteger, default=0)
    kb_id: Mapped[str] = mapped_column(String(32))


class KnowledgeChange(Base):
    """The entries one knowledge version changed (added, edited, retired or deleted)."""

    __tablename__ = "knowledge_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)
    entry_id: Mapped[str] = mapped_column(String(200))


class Conversation(Base):
    """One user on one channel (a Telegram chat, a web visitor token, a terminal session)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "chat_ref", "user_ref", name="uq_conversation_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_ref: Mapped[str] = mapped_column(String(200))
    user_ref: Mapped[str] = mapped_column(String(200), default="")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the visitor last wrote or pressed anything (refreshed at most once a minute).
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Message(Base):
    """Every message in a conversation: the user's questions with the bot's decision, and replies."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[Direction] = mapped_column(String(8))
    author: Mapped[Author] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[MessageStatus] = mapped_column(String(16), default="")
    entry_id: Mapped[str | None] = mapped_column(String(200), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ProcessedUpdate(Base):
    """Channel update ids already handled: the same update is never answered twice."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Ticket(Base):
    """A question handed to staff; its number is the id shown to the user."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[TicketStatus] = mapped_column(String(16), default="open")
    reason: Mapped[TicketReason] = mapped_column(String(32), default="")
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    answered_by: Mapped[str] = mapped_column(String(200), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    saved_entry_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Routing: the office responsible and why (e.g. the best candidate's 责任科室); claimed_by is the assignee.
    office: Mapped[str] = mapped_column(String(200), default="", index=True)
    route_reason: Mapped[str] = mapped_column(Text, default="")
    # A duplicate merged into another ticket: answered with it, on its own channel.
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None, index=True
    )


class TicketPost(Base):
    """A message posted about a ticket in a staff chat: replying to it answers the ticket."""

    __tablename__ = "ticket_posts"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """有用 / 没解决 on one bot answer."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), default=None
    )
    entry_id: Mapped[str | None] = mapped_column(String(200), default=None)
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxItem(Base):
    """A reply waiting to be delivered on a channel; kept and retried until it is sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_ref: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OutboxKind] = mapped_column(String(32), default="reply")
    # Lower goes first: replies (0) are never queued behind a broadcast to thousands (1).
    priority: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    status: Mapped[OutboxStatus] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class StaffAccount(Base):
    """A staff member who may log in to the console."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    office: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent | editor | admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffSession(Base):
    """A console login session; the cookie holds the token, the table only its hash."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChannelToken(Base):
    """A channel's API credential (WeChat's access token), cached for every worker until it expires."""

    __tablename__ = "channel_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SentAlert(Base):
    """A staff alert already queued (an overdue ticket, a day's summary, per target), so it goes out once."""

    __tablename__ = "sent_alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketNote(Base):
    """An internal note on a ticket: seen by staff only, never sent to the user."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CannedReply(Base):
    """A reply text staff can insert when answering a ticket (managed by editors)."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KnowledgeProposal(Base):
    """Knowledge proposed by staff (a new FAQ or an alternate phrasing), waiting for an editor."""

    __tablename__ = "knowledge_proposals"
    __table_args__ = (Index("ix_proposals_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # new | alternate
    entry_id: Mapped[str | None] = mapped_column(String(200), default=None)  # alternate: its entry
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    proposed_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    result_entry_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EntryRevision(Base):
    """One change of a knowledge entry made by staff: who, when, what (the record before and after)."""

    __tablename__ = "entry_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(200), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))  # create | edit | alternate | status | revert
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Subscription(Base):
    """A conversation's wish to hear of a category's new entries (``c:<category>``) or of one entry's
    changes (``e:<entry id>``); ``mode`` is ``instant`` or ``digest`` (once a day)."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("conversation_id", "topic", name="uq_subscription_topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(300), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="instant")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SubscriptionEvent(Base):
    """Every subscribe, unsubscribe and mode change (stats, and the per-visitor flood limit)."""

    __tablename__ = "subscription_events"
    __table_args__ = (Index("ix_subscription_events_conv_at", "conversation_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(300), default="")
    action: Mapped[str] = mapped_column(String(16))  # subscribe | unsubscribe | digest | instant
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Broadcast(Base):
    """A push about a new or changed entry: waits for review (``pending``), then is ``sent`` (its
    deliveries are in the outbox) or ``dropped``. ``change_key`` makes one change one broadcast, however
    many workers notice it."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    change_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # new | batch | changed | expired | withdrawn
    topic: Mapped[str] = mapped_column(String(300))  # who receives it: c:<category> or e:<entry id>
    entry_id: Mapped[str | None] = mapped_column(String(200), default=None)
    category: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    source_line: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewed_by: Mapped[str] = mapped_column(String(100), default="")
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    overdue_noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    """One broadcast to one subscriber: its outbox row (instant) or, for a digest, the digest's row once
    the day's digest is written. Unique per broadcast and conversation: nobody gets a push twice."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "conversation_id", name="uq_delivery_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(16), default="instant")
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EntryMark(Base):
    """What the change scanner last saw of a top-level entry, to tell new and materially changed entries
    from the rest whichever process wrote them."""

    __tablename__ = "entry_marks"

    entry_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    material: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="")
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobState(Base):
    """Small shared state of background jobs (the scanner's watermark, the last digest day)."""

    __tablename__ = "job_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Rating(Base):
    """A visitor's rating of one staff reply (满意 / 一般 / 不满意, optional comment); one per reply, a
    new rating replaces the old (``updated_at``)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    score: Mapped[str] = mapped_column(String(8))  # good | fair | bad
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class TicketAccess(Base):
    """A ticket's reply page (``/t/{ticket}-{code}``) and the contact the visitor left with it (留言).
    Only the code's SHA-256 is stored; the contact is shown masked everywhere but the staff ticket page."""

    __tablename__ = "ticket_access"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), default="")
    contact: Mapped[str] = mapped_column(String(254), default="")
    contact_kind: Mapped[str] = mapped_column(String(8), default="")  # phone | email | ""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PinnedQuestion(Base):
    """An entry staff pinned to the welcome's hot questions (热点问题), in ``position`` order."""

    __tablename__ = "pinned_questions"

    entry_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    pinned_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateBucket(Base):
    """A rate limit's token bucket, shared by every worker on the database (``bot.limits``). The key is
    a digest of the limited thing (a visitor token, an address, a user id), never the thing itself."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float, index=True)  # seconds since the epoch of the last take
    refusals: Mapped[int] = mapped_column(Integer, default=0)  # refusals since the last grant


class DailyStats(Base):
    """The statistics of one purged calendar day (staff time zone), counted before ``policybot purge``
    deleted the rows behind them, so the console shows the same numbers for that day afterwards
    (``bot.retention``). ``data`` holds counts and timings only, and questions masked."""

    __tablename__ = "daily_stats"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

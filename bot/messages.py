"""The neutral vocabulary shared by the core and every channel adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from knowledge.models import Entry, ReplyKind

Status = Literal["answered", "suggested", "escalated"]
REPLY_KINDS: frozenset[str] = frozenset(get_args(ReplyKind))


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A candidate entry offered to the user or shown to staff."""

    entry_id: str
    title: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "title": self.title, "score": round(self.score, 4)}


@dataclass(slots=True)
class Decision:
    """What the question-answering service decided for one question, with its evidence."""

    question: str
    status: Status
    score: float = 0.0
    answer: str | None = None
    entry_id: str | None = None
    title: str | None = None
    # The entries offered: an answer's alternatives, the candidates of a suggestion, or the closest
    # entries to a question without an answer (the chat lists them beside 转人工).
    suggestions: list[Suggestion] = field(default_factory=list)
    candidates: list[Suggestion] = field(default_factory=list)  # the search's best three, for staff
    source: dict[str, Any] | None = None
    citation: str = ""
    notice: str = ""  # why there is no answer (empty, too long, ...) in words for the user
    invalid: bool = False  # not a question at all (empty, too long, no text): no ticket is opened
    aspect: str | None = None
    confidence: float = 0.0  # the probability that the best entry answers the question (bot/confidence.py)
    kind: str | None = None  # the answered or best entry's kind (faq, guide, policy, clause...)
    # Its words only ask (要带什么材料, 电话多少: ``matterless`` in bot/confidence.py): the matter is
    # the conversation's, if any. Not part of the JSON.
    matterless: bool = False
    # The answered entry as read to answer (the turn that stores the answer need not read it again);
    # not part of the JSON.
    entry: Entry | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The ``policybot ask --json`` object (keys fixed by the command-line contract)."""
        return {
            "question": self.question,
            "status": self.status,
            "answer": self.answer,
            "entry_id": self.entry_id,
            "title": self.title,
            "score": round(self.score, 4),
            "suggestions": [s.to_json() for s in self.suggestions],
            "source": self.source,
            "confidence": round(self.confidence, 4),
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """Where to reach a user: the channel's name and its chat address."""

    channel: str
    chat_ref: str


@dataclass(slots=True)
class IncomingMessage:
    """One message from a user, as every channel adapter hands it to the core."""

    channel: str
    chat_ref: str
    user_ref: str
    text: str = ""
    display_name: str = ""
    update_id: str | None = None  # channel's own id, for de-duplication
    content_type: str = "text"  # text | photo | sticker | voice | document | location | ...

    @property
    def ref(self) -> ChannelRef:
        return ChannelRef(self.channel, self.chat_ref)


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered under a reply; ``action`` is channel-neutral (``pick:<id>``, ``feedback:…``)."""

    label: str
    action: str


@dataclass(slots=True)
class Reply:
    """A channel-neutral reply: plain text (adapters escape it), a source line, and buttons."""

    text: str
    source_line: str = ""
    buttons: list[list[Button]] = field(default_factory=list)
    # ack: a short acknowledgement of a button press (Telegram shows it as a popup, not a message)
    kind: ReplyKind = "info"
    ticket_id: int | None = None
    message_id: int | None = None  # the stored outgoing message, for feedback
    entry_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "source_line": self.source_line,
            "buttons": [[{"label": b.label, "action": b.action} for b in row] for row in self.buttons],
            "kind": self.kind,
            "ticket_id": self.ticket_id,
            "message_id": self.message_id,
            "entry_id": self.entry_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data.get("text", ""),
            source_line=data.get("source_line", ""),
            buttons=[[Button(b["label"], b["action"]) for b in row] for row in data.get("buttons", [])],
            kind=reply_kind(data.get("kind")),
            ticket_id=data.get("ticket_id"),
            message_id=data.get("message_id"),
            entry_id=data.get("entry_id"),
        )


def reply_kind(value: object) -> ReplyKind:
    """A stored reply's kind; an unknown one (written by an older version) reads as ``info``."""
    return cast(ReplyKind, value) if isinstance(value, str) and value in REPLY_KINDS else "info"

"""The conversation core: one normalized incoming message in, the replies out.

Every adapter (Telegram, web chat, terminal) calls ``Conversations`` and nothing else of the core's
state. The channel API is three calls, all taking the neutral ``IncomingMessage``:

- ``handle(msg)``: a message from the user (a question, a typed ``/command``, or non-text content);
- ``act(msg, action)``: a button press; ``action`` is the string the core put in ``Reply.buttons``
  (parsed by ``bot.protocol.parse_action``; a malformed or unknown one raises ``ActionError``; one about
  something that is not, or no longer, this user's gets a reply of kind ``error``);
- ``command(msg, name, args)``: ``start``, ``help``, ``human``, ``status``, ``cancel``, ``subscribe``,
  ``unsubscribe`` or ``subscriptions`` (others get the help text).

Subscription actions (``subscribe:<category>``, ``unsub:<id>``, ``read:<broadcast>``...) are run by
``bot.push_actions``; a refused one raises ``bot.subscriptions.Refusal`` from ``act`` (a command, or a
number chosen on a text channel, gets the refusal as its reply). An answer carries 订阅此类政策更新 and
关注此条 under its feedback buttons.

Each de-duplicates ``msg.update_id``, records what it stores (questions, bot replies), and returns the
replies for the adapter to render; with ``via_outbox=True`` the replies are also queued in the outbox in
the same transaction, so none is lost (``send`` queues other replies, e.g. a flood notice).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.hot_questions import HOT_TAG, HotQuestions
from bot.messages import Button, ChannelRef, Decision, IncomingMessage, Reply, Suggestion
from bot.outbox import enqueue
from bot.protocol import (
    PUSH_KINDS,
    Action,
    CommandName,
    cancel_action,
    category_action,
    category_in_words,
    choices,
    command_in_words,
    entry_action,
    escalate_action,
    feedback_action,
    parse_action,
    parse_command,
    pick_action,
    status_action,
    ticket_arg,
)
from bot.push_actions import push_act, push_command
from bot.qa import NOT_CHINESE_NOTICE, QAService
from bot.ratings import RatingService
from bot.related import Related, related_buttons, related_for
from bot.render import NO_ANSWER_CLOSEST
from bot.subscriptions import Refusal, SubscriptionService
from bot.tickets import TicketService
from knowledge.answers import answer_text, citation
from knowledge.models import (
    Conversation,
    Entry,
    Feedback,
    Message,
    ProcessedUpdate,
    Ticket,
    TicketReason,
    utcnow,
)
from knowledge.store import KnowledgeBase
from knowledge.text import compact, storable
from knowledge.upsert import insert_if_new, insert_or_ignore

log = logging.getLogger("policybot.conversation")

NOT_TEXT = "抱歉，我只能阅读文字消息。请用文字描述您的问题。"
NOT_TEXT_FORWARDED = "抱歉，我只能阅读文字消息；您发送的{what}已转给正在处理工单 #{ticket} 的工作人员。"
CONTENT_WORDS = {
    "photo": "图片", "sticker": "贴纸", "voice": "语音", "audio": "音频", "video": "视频",
    "document": "文件", "location": "位置", "contact": "名片", "animation": "动图",
}  # fmt: skip
HELPFUL_THANKS = "感谢您的反馈！"
NO_TICKET = "您目前没有待处理的问题。"
GONE = "这条内容已不存在，请重新提问。"
GREETING = (
    "您好！我是鼓楼区商务局的政策咨询机器人。\n"
    "我可以回答这些方面的问题（共 {count} 条）：{names}。\n\n"
    "请直接用一句话描述您的问题，例如：“申请政府信息公开多久答复？”\n"
    "我答不上来时，您可以选择转人工，请工作人员解答。点下面的分类可以看看常见问题。"
)
HELP = (
    "使用方法：直接发送您的问题（文字）。\n"
    "/human 转人工（可跟上问题，例如 /human 我想咨询……）\n"
    "/status 查看您的问题处理进度\n"
    "/cancel 撤回正在等待的人工问题\n"
    "/start 查看我能回答哪些方面的问题\n"
    "/subscribe 订阅某类政策的更新（有新政策时推送给您），/unsubscribe 退订，/subscriptions 我的订阅\n"
    "/comment 对工作人员的答复补充意见（先评价这条答复：满意 / 一般 / 不满意）\n"
    "在群里提问时，请 @我 或回复我的消息。"
)
UNKNOWN_COMMAND = "没有这个命令。" + HELP
NO_ANSWER = "这个问题我暂时还没有准确的答案。"
MAX_LABEL_CHARS = 60  # longer messages are questions, not a choice's label typed out
MAX_CATEGORY_CHARS = 30  # longer messages are not looked up as a category's name
# A question this short (characters, spaces removed) with no answer of its own, within this many
# minutes of an answer, is asked again about the matter answered (``Conversations._follow_up``).
FOLLOW_UP_CHARS = 12
FOLLOW_UP_MINUTES = 30
FOLLOW_UP_SKIPPED = frozenset({"smalltalk"})  # no matter to ask more about


def _choices_of(last: Message | None) -> list[Button]:
    """The choices of a stored reply (``protocol.choices``), in number order; none for no reply."""
    if last is None:
        return []
    return choices(Reply.from_json((last.payload or {}).get("reply") or {"text": ""}).buttons)


def _recent_answer(last: Message | None) -> bool:
    """``last`` is an answer from an entry, given within ``FOLLOW_UP_MINUTES``."""
    if last is None or last.status != "answer" or not last.entry_id:
        return False
    return _recent(last)


def _stored_suggestions(question: Message | None) -> list[dict]:
    """The entries offered for a stored question (``Suggestion.to_json`` each), in order."""
    return (question.payload or {}).get("suggestions", []) if question is not None else []


def _recent_offer(last: Message | None) -> bool:
    """``last`` is a 您是不是想问 (entries offered for a question), given within ``FOLLOW_UP_MINUTES``."""
    return last is not None and last.status == "suggestions" and _recent(last)


def _recent(last: Message) -> bool:
    at = last.created_at if last.created_at.tzinfo else last.created_at.replace(tzinfo=UTC)
    return utcnow() - at <= timedelta(minutes=FOLLOW_UP_MINUTES)


def _ticket_buttons(ticket_id: int) -> list[Button]:
    """查看进度 and 撤回工单 for an open ticket: one row."""
    return [Button("查看进度", status_action()), Button("撤回工单", cancel_action(ticket_id))]


def _farewell(entry: Entry | None) -> bool:
    """A small-talk entry tagged ``FAREWELL_TAG`` (再见, 不用了, 算了)."""
    return entry is not None and entry.kind == "smalltalk" and FAREWELL_TAG in (entry.tags or [])


def _same_matter(shown: Entry, answer: Entry) -> bool:
    """``answer`` is ``shown``'s parent, its own Q&A, or a sibling Q&A of the same policy. A document's
    clauses are no such family: each is a matter of its own, as any entry is to another."""
    if "clause" in (shown.kind, answer.kind):
        return False
    family = {shown.id, shown.parent_id} - {None}
    return answer.id in family or answer.parent_id in family


BROWSED_NOT_HELPFUL = "（用户查看「{label}」后反馈没解决）"  # the ticket's question then
NO_ANSWER_WAYS = "如需工作人员解答，请选择“转人工”。"
ESCALATED_WORDS: dict[TicketReason, str] = {
    "user_request": "好的，已为您转人工，工单号 #{id}。",
    "not_helpful": "抱歉这条回答没有解决您的问题，已请工作人员跟进，工单号 #{id}。",
    "no_match": "这个问题我暂时无法准确回答，已转给工作人员，工单号 #{id}。",
}
ESCALATED_AFTER = "答复会发到这里。等待期间您可以继续提问：我能回答的直接回答，其他的补充到这个工单。"
ADDED_TO_TICKET = "已补充到工单 #{id}，工作人员会一并看到。"
FAREWELL_TAG = "告别"  # a small-talk entry with this tag says goodbye (再见, 不用了, 算了)
STILL_OPEN = "您的工单 #{id} 还在处理中，工作人员答复后会发到这里；如果已经不需要了，可以点“撤回工单”。"
NOT_HELPFUL_ADDED = "抱歉这条回答没有解决您的问题。已把它补充到您正在处理中的工单 #{id}，工作人员会一并答复。"
RELATED_WHILE_WAITING = "知识库里也有这些相关内容，您可以先看看："
HOT_LINE = "\n\n大家常问的问题："
CATEGORY_LIMIT = 8
CONVERSATION_KEY = ("channel", "chat_ref", "user_ref")  # uq_conversation_ref
ATTEMPTS = 2  # a message's transaction is run again once when it lost a race on a unique key
MAX_HUMAN_TEXT = 2000
TICKET_WORDS = {
    "open": "等待处理",
    "claimed": "处理中",
    "answered": "已答复",
    "closed": "已关闭",
    "cancelled": "已撤回",
}


class Conversations:
    """Turns incoming messages into replies; knows nothing of Telegram or HTTP."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        qa: QAService,
        kb: KnowledgeBase,
        tickets: TicketService,
        wake: Callable[[], None] = lambda: None,
        *,
        auto_escalate: bool = False,
    ) -> None:
        self.sessions = sessions
        self.auto_escalate = auto_escalate  # [handoff] auto_escalate: open a ticket on every no-answer
        self.qa = qa
        self.kb = kb
        self.tickets = tickets
        self.wake = wake
        self.subscriptions: SubscriptionService | None = None  # set by App.create
        # Called with every contact (set by App.create: notes the time, sends pushes held for it).
        self.on_contact: Callable[[AsyncSession, Conversation], Awaitable[None]] | None = None
        self.hot: HotQuestions | None = None  # set by App.create
        self.related_count = 4  # [desk] related_count
        self.ratings = RatingService(sessions)

    # -- the main path ------------------------------------------------------------------------------
    async def handle(self, msg: IncomingMessage, *, via_outbox: bool = False) -> list[Reply]:
        """Reply to one message; an update seen before gets no reply at all (``[]``)."""
        msg = dataclasses.replace(msg, text=storable(msg.text), display_name=storable(msg.display_name))
        typed = parse_command(msg.text) if msg.content_type == "text" else None
        if typed is not None:
            return await self.command(msg, typed[0], typed[1], via_outbox=via_outbox)
        if msg.content_type == "text" and (named := await self._in_words(msg.text)):
            return await self.command(msg, *named, via_outbox=via_outbox)
        if msg.content_type == "text" and (listed := await self._category_named(msg, via_outbox)):
            return listed
        decision = None
        if msg.content_type == "text":
            # Matching needs no database: do it before the transaction to keep that short.
            decision = await self.qa.ask(msg.text)
            # Not answered: it may be a choice's label typed out (有用 under an answer on WeChat), or
            # a follow-up to the answer before it (要多久); both read the conversation's latest reply.
            if decision.status != "answered" and len(compact(msg.text)) <= MAX_LABEL_CHARS:
                last = await self._latest_reply(msg)
                if chosen := await self._chosen_by_label(msg, last, via_outbox):
                    return chosen
                if not decision.invalid and (follow := await self._follow_up(msg, decision, last)):
                    # (the match alone decided otherwise: say why this one is answered or offered)
                    log.info(
                        "follow-up answered" if follow.status == "answered" else "follow-up offered",
                        extra={"entry": follow.entry_id, "after": last.entry_id if last else None},
                    )
                    decision = follow
        for attempt in range(ATTEMPTS):
            try:
                async with self.sessions() as session, session.begin():
                    if msg.update_id is not None and not await self._first_time(session, msg):
                        return []
                    conv = await self.conversation(session, msg, hold=True)
                    replies = await self._respond(session, conv, msg, decision)
                    if via_outbox:
                        for reply in replies:
                            enqueue(session, msg.ref, reply, ticket_id=reply.ticket_id)
                break
            except IntegrityError:
                # Only the update's own key means "another worker handled this update at the same
                # moment"; any other conflict is a race this transaction lost: run it again.
                if msg.update_id is not None and await self._seen(msg):
                    return []
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("conversation write conflicted, retrying", extra={"channel": msg.channel})
        if via_outbox or any(r.kind == "escalated" for r in replies):
            self.wake()
        return replies

    async def _in_words(self, text: str) -> tuple[str, str] | None:
        """A command said in words, with its argument: 转人工, 查看进度, 怎么订阅政策更新
        (``command_in_words``), or a subscription word followed by a category (订阅 外贸外资,
        退订外贸外资); None for a question (订阅号怎么关注)."""
        if named := command_in_words(text):
            return named, ""
        asked = category_in_words(text)
        if asked is not None and (category := await self.kb.category_named(compact(asked[1]))):
            return asked[0], category
        return None

    async def first_time(self, msg: IncomingMessage) -> bool:
        """Record ``msg.update_id`` for actions outside ``handle`` (button presses, commands); False when
        that update was handled before, so a redelivered update is not acted on twice."""
        if msg.update_id is None:
            return True
        try:
            async with self.sessions() as session, session.begin():
                return await self._first_time(session, msg)
        except IntegrityError:
            return False

    async def _seen(self, msg: IncomingMessage) -> bool:
        """True when ``msg.update_id`` is recorded as handled (committed by whichever worker)."""
        async with self.sessions() as session:
            return await session.get(ProcessedUpdate, (msg.channel, str(msg.update_id))) is not None

    async def _first_time(self, session: AsyncSession, msg: IncomingMessage) -> bool:
        # One statement: a worker handling the same update at this moment holds the key until it
        # commits; this one waits for it, then finds the key taken (or takes it, if that one rolled back).
        values = {"channel": msg.channel, "update_id": str(msg.update_id), "created_at": utcnow()}
        return await insert_if_new(session, ProcessedUpdate, values, ("channel", "update_id"))

    async def conversation(
        self, session: AsyncSession, msg: IncomingMessage, hold: bool = False
    ) -> Conversation:
        """The conversation of this user on this channel, created on first contact; with ``hold``, its
        row locked until the transaction ends (``_hold``), in the statement that reads it.

        Get-or-create that survives two first messages at once (two requests, or two workers): the
        insert does nothing when the other one created the row a moment earlier, and both use that row.
        """
        conv = await self._existing(session, msg, hold)
        if conv is None:
            values = {
                "channel": msg.channel,
                "chat_ref": msg.chat_ref,
                "user_ref": msg.user_ref,
                "display_name": msg.display_name[:200],
                "created_at": utcnow(),
            }
            await insert_or_ignore(session, Conversation, values, CONVERSATION_KEY)
            conv = await self._existing(session, msg, hold)
            if conv is None:  # pragma: no cover - the row exists once the insert has returned
                raise RuntimeError("conversation vanished while being created")
        if msg.display_name and conv.display_name != msg.display_name[:200]:
            conv.display_name = msg.display_name[:200]
        if self.on_contact is not None:
            await self.on_contact(session, conv)
        return conv

    async def _hold(self, session: AsyncSession, conv: Conversation) -> None:
        """Lock the conversation's row until the transaction ends, before deciding whether to open a
        ticket: two messages of one user at once (on two workers) then open one ticket, not two. A
        write takes the row lock on PostgreSQL and the write lock on SQLite, and re-reads see the other's
        committed ticket."""
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conv.id)
            .values(display_name=Conversation.display_name)
            .execution_options(synchronize_session=False)
        )

    async def _respond(
        self, session: AsyncSession, conv: Conversation, msg: IncomingMessage, decision: Decision | None
    ) -> list[Reply]:
        """The replies to ``msg`` (its conversation's row held: see ``conversation``)."""
        open_ticket = await self.tickets.open_for(session, conv)
        if msg.content_type != "text":
            return [await self._not_text(session, conv, msg, open_ticket)]
        assert decision is not None
        if open_ticket is not None and not decision.invalid and decision.status != "answered":
            # A ticket is open: what the bot cannot answer goes to it; what it can is answered.
            return [await self._add_to_ticket(session, conv, open_ticket, msg.text[:4000], decision)]
        return await self._answer(session, conv, msg.text, decision, open_ticket)

    async def _add_to_ticket(
        self, session: AsyncSession, conv: Conversation, ticket: Ticket, text: str, d: Decision
    ) -> Reply:
        """已补充到工单 #N, with the candidates the bot had for it (if it had any)."""
        added = await self.tickets.add_user_message(session, ticket, conv, text)
        added.payload = {"suggestions": [s.to_json() for s in d.suggestions]}
        await session.flush()
        words = ADDED_TO_TICKET.format(id=ticket.id) + self.tickets.expected_reply()
        buttons = [[Button(s.title[:60], pick_action(added.id, i))] for i, s in enumerate(d.suggestions)]
        if buttons:
            words += "\n" + RELATED_WHILE_WAITING
        return await self._bot_reply(
            session, conv, Reply(words, buttons=buttons, kind="info", ticket_id=ticket.id)
        )

    async def _answer(
        self, session: AsyncSession, conv: Conversation, text: str, d: Decision, ticket: Ticket | None = None
    ) -> list[Reply]:
        """Store the question with the decision and reply; with ``ticket`` open, an answered question and
        its answer join the ticket's transcript."""
        offered = d.suggestions  # (a question without an answer: its closest entries)
        question = Message(
            conversation_id=conv.id,
            direction="in",
            author="user",
            text=text[:4000],
            status="invalid" if d.invalid else d.status,
            entry_id=d.entry_id,
            score=d.score,
            ticket_id=ticket.id if ticket is not None else None,
            payload={"suggestions": [s.to_json() for s in offered]},
        )
        session.add(question)
        await session.flush()
        if d.status == "answered":
            return [await self._answer_reply(session, conv, question, d, ticket)]
        if d.status == "suggested":
            return [await self._bot_reply(session, conv, suggestion_reply(d, question.id))]
        if d.invalid:
            # Empty, too long or no text at all: say so, open no ticket.
            return [await self._bot_reply(session, conv, Reply(d.notice, kind="error"))]
        if not self.auto_escalate:
            # Staff only when asked: the question stays recorded (gaps, overview); 转人工 opens a ticket.
            hint = d.notice if d.notice == NOT_CHINESE_NOTICE else ""
            return [await self._bot_reply(session, conv, no_answer_reply(offered, question.id, hint))]
        # The staff's best guesses come from the search that decided (no second search).
        ticket = await self.tickets.open(
            session, conv, text.strip(), "no_match", [s.to_json() for s in d.candidates]
        )
        question.ticket_id = ticket.id
        return [await self._bot_reply(session, conv, self.escalated_reply(ticket, "no_match"))]

    async def _answer_reply(
        self, session: AsyncSession, conv: Conversation, question: Message, d: Decision, ticket: Ticket | None
    ) -> Reply:
        reply = Reply(
            d.answer or "",
            source_line=d.citation,
            kind="answer",
            entry_id=d.entry_id,
            ticket_id=ticket.id if ticket is not None else None,
        )
        # The rest of this turn is read in its own transaction: one connection a turn (see related_for);
        # the entry as the decision read it, a moment ago.
        entry = d.entry if d.entry is not None and d.entry.id == d.entry_id else None
        if entry is None and d.entry_id:
            entry = await session.get(Entry, d.entry_id)
        related = await self._related(session, entry, d.aspect, d.suggestions, d.score)
        extra = await self._hot_after(session, entry)
        if ticket is not None and _farewell(entry):
            # 不用了 / 再见 with a ticket open: it is still open; say so, and how to withdraw it.
            reply.text += "\n\n" + STILL_OPEN.format(id=ticket.id)
            extra = [*extra, _ticket_buttons(ticket.id)]
        # Small talk is not an answer to judge: 没解决 under 你好 would hand a greeting to staff.
        rated = entry is None or entry.kind != "smalltalk"
        return await self._bot_reply(
            session,
            conv,
            reply,
            entry_id=d.entry_id,
            score=d.score,
            related=related,
            extra=extra,
            rated=rated,
            entry=entry,
        )

    async def _related(
        self,
        session: AsyncSession,
        entry: Entry | None,
        aspect: str | None,
        cands: list[Suggestion],
        score: float = 0.0,
    ) -> list[Related]:
        """相关问题 for an answer from ``entry`` (``score``: the answer's, when ``cands`` leave it out)."""
        if entry is None:
            return []
        return await related_for(session, entry, aspect, cands, self.related_count, best=score)

    async def _hot_after(self, session: AsyncSession, entry: Entry | None) -> list[list[Button]]:
        """The hot questions after a small-talk answer tagged 热点问题 (a greeting, 你能做什么)."""
        if (
            entry is None
            or entry.kind != "smalltalk"
            or HOT_TAG not in (entry.tags or [])
            or self.hot is None
        ):
            return []
        return await self.hot.buttons(session)

    async def _bot_reply(
        self,
        session: AsyncSession,
        conv: Conversation,
        reply: Reply,
        entry_id: str | None = None,
        score: float | None = None,
        related: list[Related] | None = None,
        extra: list[list[Button]] | None = None,
        rated: bool = True,
        entry: Entry | None = None,
        browsed: bool = False,
    ) -> Reply:
        """Store an outgoing bot message (the web chat shows the history from these); an answer gets
        有用 / 没解决 (when ``rated``), the subscription buttons, ``extra`` rows and its 相关问题 (kept in
        the payload). ``entry``: the answering entry, when the caller has read it. ``browsed``: an
        entry shown without a question of the user's (chosen from a list): 没解决 on it then hands over
        the entry, not whatever the user asked before (``feedback``)."""
        msg = Message(
            conversation_id=conv.id,
            direction="out",
            author="bot",
            text=reply.text,
            status=reply.kind,
            entry_id=entry_id,
            score=score,
            ticket_id=reply.ticket_id,
            payload={"reply": reply.to_json()},
        )
        session.add(msg)
        await session.flush()
        reply.message_id = msg.id
        if reply.kind == "answer":
            rating = feedback_buttons(msg.id) if rated else []
            reply.buttons = rating + await self._push_buttons(session, entry_id, entry)
            reply.buttons += (extra or []) + related_buttons(msg.id, related or [])
        msg.payload = {"reply": reply.to_json()}
        if related:
            msg.payload["related"] = [r.to_json() for r in related]
        if browsed:
            msg.payload["browsed"] = True
        return reply

    async def _push_buttons(
        self, session: AsyncSession, entry_id: str | None, entry: Entry | None = None
    ) -> list[list[Button]]:
        """订阅此类政策更新 and 关注此条 under an answer (when subscriptions are on)."""
        if self.subscriptions is None or not entry_id:
            return []
        return await self.subscriptions.answer_buttons(session, entry_id, entry)

    async def _candidates(self, text: str) -> list[Suggestion]:
        """The bot's best guesses, for the staff post of an escalated question."""
        _, cands = self.kb.matcher.search(text, limit=3)
        return [Suggestion(c.entry_id, c.info.title, c.score) for c in cands]

    def escalated_reply(self, ticket: Ticket, reason: TicketReason) -> Reply:
        """What the user is told when a question goes to staff (worded for why it went), with 查看进度
        and 撤回 (channels without buttons hint the commands: ``protocol.command_hint``)."""
        words = ESCALATED_WORDS.get(reason, ESCALATED_WORDS["user_request"]).format(id=ticket.id)
        return Reply(
            f"{words}\n{self.tickets.expected_reply()}\n{ESCALATED_AFTER}",
            buttons=[_ticket_buttons(ticket.id)],
            kind="escalated",
            ticket_id=ticket.id,
        )

    async def _not_text(
        self, session: AsyncSession, conv: Conversation, msg: IncomingMessage, ticket: Ticket | None
    ) -> Reply:
        what = CONTENT_WORDS.get(msg.content_type, "内容")
        if ticket is None:
            return Reply(NOT_TEXT, kind="error")
        await self.tickets.add_user_message(session, ticket, conv, f"[用户发送了{what}]")
        return Reply(NOT_TEXT_FORWARDED.format(what=what, ticket=ticket.id), kind="info", ticket_id=ticket.id)

    # -- the channel API: buttons, commands, deliveries ----------------------------------------------------
    async def act(
        self, msg: IncomingMessage, action: str | Action, *, via_outbox: bool = False
    ) -> list[Reply]:
        """A button press. Raises ``ActionError`` for a malformed or unknown action (nothing is recorded),
        ``Refusal`` for a refused subscription action (nothing changed); a redelivered update gets ``[]``.
        A feedback ``up`` is answered with an ``ack``."""
        parsed = action if isinstance(action, Action) else parse_action(action)
        if not await self.first_time(msg):
            return []
        replies = await self._act(msg, parsed)
        if via_outbox:
            await self.send(msg.ref, replies)
        return replies

    async def choose(
        self, msg: IncomingMessage, number: int, *, via_outbox: bool = False
    ) -> list[Reply] | None:
        """A numbered choice on a text-only channel: choice ``number`` (from 1, see ``protocol.choices``)
        of the latest reply in this conversation; None when that reply offered no such choice (the
        text is then a question). A refused choice (a push withdrawn since) is answered with the reason."""
        offered = _choices_of(await self._latest_reply(msg))
        if not 1 <= number <= len(offered):
            return None
        return await self._choose(msg, offered[number - 1], via_outbox)

    async def _chosen_by_label(
        self, msg: IncomingMessage, last: Message | None, via_outbox: bool
    ) -> list[Reply] | None:
        """A message that is the label of one of the latest reply's choices (有用, 没解决, a suggested
        title), or its first clause (都不是 of 都不是，转人工), typed instead of its number or button: that
        choice; None otherwise. ``last``: the latest reply (``_latest_reply``)."""
        said = compact(msg.text)  # (short enough: ``handle`` reads the latest reply only then)
        for button in _choices_of(last):
            if said in (compact(button.label), compact(button.label.split("，")[0])):
                return await self._choose(msg, button, via_outbox)
        return None

    async def _category_named(self, msg: IncomingMessage, via_outbox: bool) -> list[Reply] | None:
        """A message that is only a category's name (外贸外资, as the greeting lists them): that
        category's entries, as its button shows them; None otherwise."""
        said = compact(msg.text)
        if not said or len(said) > MAX_CATEGORY_CHARS:
            return None
        name = await self.kb.category_named(said)
        if name is None:
            return None
        return await self._choose(msg, Button(name, category_action(name)), via_outbox)

    async def _follow_up(
        self, msg: IncomingMessage, alone: Decision, last: Message | None
    ) -> Decision | None:
        """A short question with no answer of its own right after an answer (要多久, 收费吗, 湖北呢) asks
        about the matter just answered: the section it asks for of the guide just shown, or its own
        best entry when that is of the family of the entry just shown (a policy and its own Q&As);
        a question that only asks (要带什么材料 after an FAQ on 预付卡备案's deadline), that section of
        the first guide offered under the answer (``_offered_guide``); None otherwise. ``alone``: its
        own decision; ``last``: the latest reply. Right after entries were offered (您是不是想问), a
        question that only asks for a section (要多久) asks it of those offered (``_offered_again``)."""
        if len(compact(msg.text)) > FOLLOW_UP_CHARS:
            return None
        if _recent_offer(last) and alone.aspect and alone.matterless:
            assert last is not None  # (``_recent_offer``)
            return await self._offered_again(alone, last)
        if not _recent_answer(last):
            return None
        if not alone.matterless and await self._refers_elsewhere(alone):
            return None
        assert last is not None and last.entry_id is not None  # (``_recent_answer``)
        shown = await self.kb.answer_entry(last.entry_id)
        if shown is None or shown.kind in FOLLOW_UP_SKIPPED:
            return None
        if alone.aspect and alone.aspect in dict(shown.sections):  # a section of the guide just shown
            return self.qa.answered_by(alone, shown, alone.aspect)
        guide = await self._offered_guide(last, shown) if alone.aspect and alone.matterless else None
        if guide is not None and alone.aspect in dict(guide.sections):
            return self.qa.answered_by(alone, guide, alone.aspect)
        best = alone.candidates[0].entry_id if alone.candidates else None
        entry = await self.kb.answer_entry(best) if best and best != shown.id else None
        if entry is None or not _same_matter(shown, entry):
            return None
        return self.qa.answered_by(alone, entry, alone.aspect)

    async def _refers_elsewhere(self, alone: Decision) -> bool:
        """Whether a question's own decision offers a referral first or second (``with_referral``: the
        question names another body's matter, 营业执照在哪办): not a follow-up, however the entry just
        shown names that matter (the prepaid-card guide asks for a business licence among its
        materials; its 办理地点 is no answer to where the licence is issued)."""
        for s in alone.suggestions[:2]:
            entry = await self.kb.answer_entry(s.entry_id)
            if entry is not None and entry.kind == "referral":
                return True
        return False

    async def _offered_again(self, alone: Decision, offer: Message) -> Decision | None:
        """A question that only asks for a guide section (要多久), right after ``offer`` (您是不是想问):
        answered with that section of the one entry offered that has it, or those entries offered
        again (each, chosen, shows that section: ``show`` reads the question's aspect); None when
        none offered has it. (预付卡备案要带什么材料 offers both prepaid-card filing guides; 要多久 then
        had been offered information-disclosure FAQs.)"""
        having: list[Entry] = []
        for entry_id in await self._offered_ids(offer):
            entry = await self.kb.answer_entry(entry_id)
            if entry is not None and alone.aspect in dict(entry.sections):
                having.append(entry)
        if len(having) == 1:
            return self.qa.answered_by(alone, having[0], alone.aspect)
        if not having:
            return None
        d = dataclasses.replace(alone, status="suggested", entry_id=None, answer=None, title=None)
        d.suggestions = [Suggestion(e.id, f"{e.title}：{alone.aspect}", alone.score) for e in having]
        return d

    async def _offered_ids(self, offer: Message) -> list[str]:
        """The ids of the entries a 您是不是想问 reply offered, in order (its choices pick suggestions
        stored with the question it answered)."""
        picks = [parse_action(b.action) for b in _choices_of(offer) if b.action.startswith("pick:")]
        if not picks:
            return []
        async with self.sessions() as session:
            question = await session.get(Message, picks[0].ids[0])
        stored = _stored_suggestions(question)
        return [stored[p.ids[1]]["entry_id"] for p in picks if p.ids[1] < len(stored)]

    async def _offered_guide(self, answer: Message, shown: Entry) -> Entry | None:
        """The first guide of ``shown``'s category among the related questions offered under its
        ``answer`` (the guide closest to the matter an FAQ or a policy answered; one of another
        category shares words with the question, not its matter), None when none is."""
        for item in (answer.payload or {}).get("related", []):
            entry = await self.kb.answer_entry(Related.from_json(item).entry_id)
            if entry is not None and entry.kind == "guide" and entry.category == shown.category:
                return entry
        return None

    async def _latest_reply(self, msg: IncomingMessage) -> Message | None:
        """The conversation's latest outgoing message (None before the first)."""
        async with self.sessions() as session:
            conv = await self._existing(session, msg)
            if conv is None:
                return None
            return await session.scalar(
                select(Message)
                .where(Message.conversation_id == conv.id, Message.direction == "out")
                .order_by(Message.id.desc())
                .limit(1)
            )

    async def _choose(self, msg: IncomingMessage, button: Button, via_outbox: bool) -> list[Reply]:
        try:
            return await self.act(msg, button.action, via_outbox=via_outbox)
        except Refusal as exc:  # (阅读全文 of a push withdrawn since: said, as a button's refusal is)
            replies = [exc.reply()]
            if via_outbox:
                await self.send(msg.ref, replies)
            return replies

    async def _existing(
        self, session: AsyncSession, msg: IncomingMessage, hold: bool = False
    ) -> Conversation | None:
        mine = (
            Conversation.channel == msg.channel,
            Conversation.chat_ref == msg.chat_ref,
            Conversation.user_ref == msg.user_ref,
        )
        if not hold:
            return await session.scalar(select(Conversation).where(*mine))
        # The write of ``_hold`` that returns the row: read and locked in one statement.
        locking = (
            update(Conversation)
            .where(*mine)
            .values(display_name=Conversation.display_name)
            .returning(Conversation)
            .execution_options(synchronize_session=False)
        )
        return await session.scalar(locking)

    async def _act(self, msg: IncomingMessage, a: Action) -> list[Reply]:
        if a.kind in PUSH_KINDS:
            return [await push_act(self._subscriptions(), self.show, msg, a)]
        match a.kind:
            case "pick":
                return [await self.pick(msg, a.ids[0], a.ids[1])]
            case "feedback":
                reply = await self.feedback(msg, a.ids[0], a.helpful)
                if a.helpful and reply.kind == "info":
                    reply.kind = "ack"
                return [reply]
            case "escalate" | "human":
                return [await self.escalate(msg, a.id)]
            case "cancel":
                return [await self.cancel(msg, a.id)]
            case "status":
                return [await self.status(msg)]
            case "cat":
                # (stored: a text-only channel numbers its entries, and a number is read from the
                # conversation's latest reply, ``choose``)
                return [await self._stored(msg, await self.category(a.arg))]
            case "entry":
                return [await self.show(msg, a.arg)]
            case "rel":
                return [await self.related(msg, a.ids[0], a.ids[1])]
            case "rate":
                return [await self.ratings.rate(msg, a.ids[0], a.arg)]
        raise AssertionError(a.kind)  # pragma: no cover - parse_action makes only the kinds above

    def _subscriptions(self) -> SubscriptionService:
        if self.subscriptions is None:  # pragma: no cover - App.create always sets it
            raise RuntimeError("subscriptions are not wired")
        return self.subscriptions

    async def command(
        self, msg: IncomingMessage, name: str, args: str = "", *, via_outbox: bool = False
    ) -> list[Reply]:
        """``/start``, ``/help``, ``/human [question]``, ``/status``, ``/cancel [ticket]``; any other name
        gets the help text. A redelivered update gets ``[]``."""
        if not await self.first_time(msg):
            return []
        replies = [await self._command(msg, name, args)]
        if via_outbox:
            await self.send(msg.ref, replies)
        return replies

    async def _command(self, msg: IncomingMessage, name: str, args: str) -> Reply:
        known: dict[str, CommandName] = {"start": "start", "help": "help", "human": "human",
                                         "status": "status", "cancel": "cancel", "subscribe": "subscribe",
                                         "unsubscribe": "unsubscribe", "subscriptions": "subscriptions",
                                         "comment": "comment"}  # fmt: skip
        match known.get(name):
            case "subscribe" | "unsubscribe" | "subscriptions":
                return await push_command(self._subscriptions(), msg, name, args)
            case "start":
                return await self.welcome(msg)  # (stored, like a category's list)
            case "help":
                return Reply(HELP)
            case "human":
                return await self.escalate(msg, text=args[:MAX_HUMAN_TEXT])
            case "status":
                return await self.status(msg)
            case "cancel":
                return await self.cancel(msg, ticket_arg(args))
            case "comment":
                return await self.ratings.comment(msg, args)
            case None:
                return Reply(UNKNOWN_COMMAND)

    async def send(self, ref: ChannelRef, replies: list[Reply]) -> None:
        """Queue replies for delivery through the outbox (a failed send is retried) and wake it."""
        if not replies:
            return
        async with self.sessions() as session, session.begin():
            for reply in replies:
                enqueue(session, ref, reply, ticket_id=reply.ticket_id)
        self.wake()

    async def record_reply(self, ref: ChannelRef, reply: Reply) -> int | None:
        """Store a reply that arrives later (a notice from staff's side) in the conversation at ``ref``, for
        channels that show the stored history (the web chat); None when there is no such conversation."""
        async with self.sessions() as session, session.begin():
            conv = await session.scalar(
                select(Conversation).where(
                    Conversation.channel == ref.channel, Conversation.chat_ref == ref.chat_ref
                )
            )
            if conv is None:
                return None
            stored = await self._bot_reply(session, conv, dataclasses.replace(reply))
            return stored.message_id

    async def greeting(self) -> Reply:
        """The /start text: the hot questions (热点问题), then one button per knowledge category."""
        cats = await self.kb.categories(topics_only=True)
        names = "、".join(name for name, _ in cats) or "（知识库暂时为空）"
        buttons = [Button(f"{name}（{n}）", category_action(name)) for name, n in cats]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        hot = await self.hot.buttons() if self.hot is not None else []
        text = GREETING.format(count=sum(n for _, n in cats), names=names)
        return Reply(text + (HOT_LINE if hot else ""), buttons=hot + rows)

    async def welcome(self, msg: IncomingMessage) -> Reply:
        """The greeting stored in the conversation, so a text-only channel can choose its hot questions
        by number (``choose``)."""
        return await self._stored(msg, await self.greeting())

    async def _stored(self, msg: IncomingMessage, reply: Reply) -> Reply:
        """``reply`` stored in the conversation as the bot's latest message (its numbered choices are
        then the ones a number typed next chooses among)."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
            return await self._bot_reply(session, conv, reply)

    async def related(self, msg: IncomingMessage, message_id: int, index: int) -> Reply:
        """相关问题 ``index`` offered under the answer ``message_id`` (``rel:<message>:<i>``)."""
        async with self.sessions() as session:
            conv = await self._existing(session, msg)
            answer = await session.get(Message, message_id)
            mine = conv is not None and answer is not None and answer.conversation_id == conv.id
        offered = (answer.payload or {}).get("related", []) if mine and answer else []
        if not 0 <= index < len(offered):
            return Reply(GONE, kind="error")
        item = Related.from_json(offered[index])
        return await self.show(msg, item.entry_id, aspect=item.aspect)

    async def category(self, name: str) -> Reply:
        """A few entries of one category as buttons (pressing one shows its answer)."""
        entries = [e for e in await self.kb.entries(category=name, status="published") if e.parent_id is None]
        if not entries:
            return Reply(f"「{name}」下暂时没有内容，请直接输入您的问题。")
        shown = entries[:CATEGORY_LIMIT]
        buttons = [[Button((e.title or e.question)[:40], entry_action(e.id))] for e in shown]
        more = f"，这里列出 {len(shown)} 条" if len(entries) > len(shown) else ""
        return Reply(
            f"「{name}」共 {len(entries)} 条{more}。点按查看答案，或直接输入您的问题。", buttons=buttons
        )

    # -- buttons and commands -----------------------------------------------------------------------
    async def pick(self, msg: IncomingMessage, question_id: int, index: int) -> Reply:
        """The user chose suggestion ``index`` of their question ``question_id`` (``pick:<q>:<i>``)."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
            question = await session.get(Message, question_id)
            mine = question is not None and question.conversation_id == conv.id
        suggestions = _stored_suggestions(question) if mine else []
        if not 0 <= index < len(suggestions):
            return Reply(GONE, kind="error")
        return await self.show(msg, suggestions[index]["entry_id"], question_id)

    async def show(
        self, msg: IncomingMessage, entry_id: str, question_id: int | None = None, aspect: str | None = None
    ) -> Reply:
        """Show one entry's answer (a picked suggestion, an entry chosen from a category list or the hot
        questions, or a guide's section offered as 相关问题), with its own 相关问题."""
        entry = await self.kb.get(entry_id)
        if entry is None or entry.status != "published":
            return Reply(GONE, kind="error")
        others: list[Suggestion] = []
        asked = False  # a suggestion picked for a question of the user's (else: browsed)
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
            if question_id is not None:
                q = await session.get(Message, question_id)
                if q is not None and q.conversation_id == conv.id:
                    asked = True
                    aspect = self.kb.matcher.analyse(q.text).aspect
                    stored = _stored_suggestions(q)
                    others = [Suggestion(s["entry_id"], s["title"], s["score"]) for s in stored]
            reply = Reply(
                answer_text(entry, aspect), source_line=citation(entry), kind="answer", entry_id=entry.id
            )
            related = await self._related(session, entry, aspect, others)
            return await self._bot_reply(
                session, conv, reply, entry_id=entry.id, related=related, entry=entry, browsed=not asked
            )

    async def feedback(self, msg: IncomingMessage, message_id: int, helpful: bool) -> Reply:
        """有用 / 没解决 on an answer; 没解决 hands the question to staff."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
            answer = await session.get(Message, message_id)
            if answer is None or answer.conversation_id != conv.id:
                return Reply("找不到这条回答。", kind="error")
            session.add(
                Feedback(
                    message_id=answer.id, conversation_id=conv.id, entry_id=answer.entry_id, helpful=helpful
                )
            )
            if helpful:
                return Reply(HELPFUL_THANKS, kind="info")
            if (answer.payload or {}).get("browsed"):
                question = await self._browsed_label(answer)
            else:
                question = await self._question_before(session, conv, answer)
            await self._hold(session, conv)
            existing = await self.tickets.open_for(session, conv)
            if existing is None:
                return await self._escalate(session, conv, question, "not_helpful")
            await self.tickets.add_user_message(session, existing, conv, f"[没解决] {question}"[:4000])
            return Reply(NOT_HELPFUL_ADDED.format(id=existing.id), kind="info", ticket_id=existing.id)

    async def escalate(self, msg: IncomingMessage, question_id: int | None = None, text: str = "") -> Reply:
        """/human, 都不是, or an explicit request: hand the question (or the last one) to staff."""
        text = storable(text)
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg, hold=True)
            existing = await self.tickets.open_for(session, conv)
            if existing is not None:
                if text:
                    await self.tickets.add_user_message(session, existing, conv, text)
                return Reply(
                    f"您的问题已在工作人员处理中（工单 #{existing.id}）。{self.tickets.expected_reply()}",
                    kind="info",
                    ticket_id=existing.id,
                )
            question, asked = text, None
            if not question and question_id is not None:
                q = await session.get(Message, question_id)
                asked = q if q is not None and q.conversation_id == conv.id else None
            if not question and asked is None:
                asked = await self._last_question(session, conv)
            if asked is not None:
                question = asked.text
            reply = await self._escalate(
                session, conv, question or "（用户请求人工服务）", "user_request", asked
            )
        self.wake()
        return reply

    async def _escalate(
        self,
        session: AsyncSession,
        conv: Conversation,
        question: str,
        reason: TicketReason,
        asked: Message | None = None,
    ) -> Reply:
        """Open a ticket (the caller holds ``_hold`` and found none open); ``asked`` is the stored
        question it is about, linked to it."""
        cands = [s.to_json() for s in await self._candidates(question)] if question else []
        ticket = await self.tickets.open(session, conv, question, reason, cands)
        if asked is not None and asked.ticket_id is None:
            asked.ticket_id = ticket.id
        self.wake()
        return await self._bot_reply(session, conv, self.escalated_reply(ticket, reason))

    async def _browsed_label(self, answer: Message) -> str:
        """What a ticket says of 没解决 on an entry the user chose from a list, not asked for."""
        entry = await self.kb.get(answer.entry_id) if answer.entry_id else None
        label = (entry.title or entry.question) if entry else (answer.entry_id or "")
        return BROWSED_NOT_HELPFUL.format(label=label[:80])

    async def _question_before(self, session: AsyncSession, conv: Conversation, answer: Message) -> str:
        q = await session.scalar(
            select(Message.text)
            .where(Message.conversation_id == conv.id, Message.direction == "in", Message.id < answer.id)
            .order_by(Message.id.desc())
            .limit(1)
        )
        return q or ""

    async def _last_question(self, session: AsyncSession, conv: Conversation) -> Message | None:
        """The user's newest message that asked something: small talk answered as such (你好 or 谢谢
        before 转人工) is no question to hand over, nor is an invalid one."""
        return await session.scalar(
            select(Message)
            .outerjoin(Entry, Entry.id == Message.entry_id)
            .where(
                Message.conversation_id == conv.id,
                Message.direction == "in",
                Message.status != "invalid",
                or_(Entry.kind.is_(None), Entry.kind != "smalltalk"),
            )
            .order_by(Message.id.desc())
            .limit(1)
        )

    async def status(self, msg: IncomingMessage) -> Reply:
        """/status: the user's open questions and their state."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
        tickets = await self.tickets.of_conversation(conv, only_open=False)
        if not tickets:
            return Reply(NO_TICKET, kind="info")
        lines = ["您的问题："]
        for t in tickets[:10]:
            lines.append(f"#{t.id} {TICKET_WORDS.get(t.status, t.status)}：{t.question[:40]}")
        buttons = [
            [Button(f"撤回 #{t.id}", cancel_action(t.id))] for t in tickets if t.status in ("open", "claimed")
        ]
        return Reply("\n".join(lines), buttons=buttons, kind="info")

    async def cancel(self, msg: IncomingMessage, ticket_id: int | None = None) -> Reply:
        """/cancel: withdraw the open question (the newest, or the one named)."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation(session, msg)
        ticket = await self.tickets.cancel(conv, ticket_id)
        if ticket is None:
            return Reply(NO_TICKET, kind="info")
        return Reply(f"已撤回工单 #{ticket.id}。如有新问题，请直接提问。", kind="info", ticket_id=ticket.id)

    async def history(self, channel: str, chat_ref: str, user_ref: str, after_id: int = 0) -> list[Message]:
        """A conversation's messages after ``after_id`` (the web chat polls this)."""
        async with self.sessions() as session:
            conv = await session.scalar(
                select(Conversation).where(
                    Conversation.channel == channel,
                    Conversation.chat_ref == chat_ref,
                    Conversation.user_ref == user_ref,
                )
            )
            if conv is None:
                return []
            return list(
                await session.scalars(
                    select(Message)
                    .where(Message.conversation_id == conv.id, Message.id > after_id)
                    .order_by(Message.id)
                    .limit(500)
                )
            )


def feedback_buttons(message_id: int) -> list[list[Button]]:
    """有用 / 没解决 under an answer."""
    return [
        [
            Button("有用", feedback_action(message_id, True)),
            Button("没解决", feedback_action(message_id, False)),
        ]
    ]


def no_answer_reply(offered: list[Suggestion], question_id: int, hint: str = "") -> Reply:
    """No exact answer yet: the closest entries (if any) and 转人工; no ticket is opened. ``hint``: a
    line on what to do differently (``NOT_CHINESE_NOTICE``)."""
    buttons = [[Button(s.title[:60], pick_action(question_id, i))] for i, s in enumerate(offered)]
    buttons.append([Button("转人工", escalate_action(question_id))])
    lines = [NO_ANSWER] + ([hint] if hint else []) + ([NO_ANSWER_CLOSEST] if offered else [])
    lines.append(NO_ANSWER_WAYS)
    return Reply("\n".join(lines), buttons=buttons, kind="no_answer")


def suggestion_reply(d: Decision, question_id: int) -> Reply:
    """您是不是想问: the candidates as buttons, and 都不是 to reach staff."""
    # Actions stay short (Telegram allows 64 bytes): the question's stored suggestions hold the ids.
    # Two entries with one title are offered once (the first, the better one): never a label twice.
    labels: dict[str, Button] = {}
    for i, s in enumerate(d.suggestions):
        labels.setdefault(s.title[:60].strip(), Button(s.title[:60], pick_action(question_id, i)))
    buttons = [[b] for b in labels.values()]
    buttons.append([Button("都不是，转人工", escalate_action(question_id))])
    return Reply("您是不是想问：", buttons=buttons, kind="suggestions")

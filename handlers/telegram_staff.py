"""The staff chat on Telegram: answer tickets by replying, 认领 / 关闭 / 存为知识 buttons, /queue, SLA reminders.

New-ticket posts and user follow-ups reach the staff chat through the outbox, which remembers which Telegram
message belongs to which ticket (``TicketPost``). A staff member answers by *replying* to any message of a
ticket's thread; the answer goes to the user through the outbox, and the bot confirms in the thread.
Only the Telegram user ids in ``[staff] user_ids`` may act: anyone else's replies and button presses change
nothing and get a notice. Admins of the staff chat do not count unless listed (see docs/telegram.md).
"""

from __future__ import annotations

import datetime as dtm
import logging
from collections.abc import Awaitable, Callable

from telegram import CallbackQuery, Message, Update, User
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    JobQueue,
    MessageHandler,
    filters,
)

from bot.app import App
from bot.channels import DeliveryError
from bot.knowledge_review import KnowledgeReview
from bot.logs import pseudonym
from bot.messages import IncomingMessage, Reply
from bot.privacy import mask
from bot.protocol import parse_id
from bot.tickets import QueueItem, TicketError
from handlers.telegram_channel import CHANNEL, TelegramChannel

log = logging.getLogger("policybot.telegram.staff")

REMINDER_INTERVAL = dtm.timedelta(minutes=1)
STAFF_BUTTONS = r"^(claim|close|save):"
NOT_STAFF = "只有登记在 [staff] user_ids 中的工作人员可以处理工单，您的操作没有生效。"
TEXT_ONLY = "目前只能把文字答复转给用户，请用文字回复。"
STAFF_HELP = (
    "工作人员使用说明：\n"
    "· 新工单会发到本群；直接「回复」工单消息（或该工单的任何后续消息）即答复用户。\n"
    "· 按钮：认领 / 关闭 / 存为知识（把问题和您的答复存为新的常见问题；"
    "「存为某条的问法」把问题加为已有条目的另一种问法）。\n"
    "· /queue 查看待处理工单（最早的在前）。超过时限未处理的工单会定时提醒。"
)
STATUS_WORDS = {"open": "待处理", "claimed": "处理中"}

StaffAction = Callable[[int, str, list[str]], Awaitable[str]]


class StaffHandlers:
    """Handlers for the one staff chat ``[staff] chat_id``; registered before the user handlers."""

    def __init__(self, app: App, channel: TelegramChannel) -> None:
        self.app = app
        self.tickets = app.tickets
        self.channel = channel
        self.staff = app.settings.staff
        assert self.staff.chat_id is not None
        self.chat_id: int = self.staff.chat_id
        self.chat_ref = str(self.chat_id)
        self.allowed = frozenset(self.staff.user_ids)
        if not self.allowed:
            log.warning("[staff] user_ids is empty: nobody can answer tickets from Telegram")
        self.actions: dict[str, StaffAction] = {
            "claim": self._claim,
            "close": self._close,
            "save": self._save,
        }

    def register(self, application: Application) -> None:
        """Everything in the staff chat is handled here (and nothing there reaches the user handlers)."""
        chat = filters.Chat(chat_id=self.chat_id)
        application.add_handler(CommandHandler("queue", self.queue, filters=chat))
        application.add_handler(CommandHandler(["help", "start"], self.help, filters=chat))
        application.add_handler(MessageHandler(chat & filters.REPLY & ~filters.COMMAND, self.on_reply))
        application.add_handler(MessageHandler(chat, self.ignore))
        application.add_handler(CallbackQueryHandler(self.on_button, pattern=STAFF_BUTTONS))

    def schedule(self, job_queue: JobQueue) -> None:
        """The SLA reminder: every minute, post the overdue tickets once."""
        job_queue.run_repeating(self._remind_job, interval=REMINDER_INTERVAL, first=REMINDER_INTERVAL,
                                name="policybot-sla-reminder")  # fmt: skip

    def is_staff(self, user: User | None) -> bool:
        """Only the configured staff user ids may act on tickets."""
        return user is not None and user.id in self.allowed

    # -- replying to a ticket -------------------------------------------------------------------------
    async def on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to a ticket's message in the staff chat answers that ticket."""
        message = update.effective_message
        if message is None or message.reply_to_message is None:
            return
        target = str(message.reply_to_message.message_id)
        ticket_id = await self.tickets.by_post(CHANNEL, self.chat_ref, target)
        if ticket_id is None:
            return  # ordinary conversation among staff
        user = update.effective_user
        if not self.is_staff(user):
            log.info(
                "non-staff reply to a ticket ignored", extra={"user": pseudonym(user.id if user else "")}
            )
            await self._note(NOT_STAFF, message)
            return
        assert user is not None
        if not message.text:
            await self._note(TEXT_ONLY, message)
            return
        if not await self._first_time(update, user):
            return
        try:
            ticket = await self.tickets.reply(ticket_id, user.full_name, message.text)
        except TicketError as exc:
            await self._note(str(exc), message, ticket_id)
            return
        await self.tickets.add_post(CHANNEL, self.chat_ref, str(message.message_id), ticket_id)
        log.info("staff answered", extra={"ticket": ticket.id, "staff": pseudonym(user.id)})
        await self._note(f"已发送给用户（工单 #{ticket.id}，{user.full_name}）", message, ticket_id)

    async def ignore(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Other messages in the staff chat are staff talking among themselves."""

    # -- buttons ----------------------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """认领 / 关闭 / 存为知识; only staff may press them; the query is always answered."""
        query = update.callback_query
        if query is None:
            return
        toast, alert = "", False
        try:
            if not self.is_staff(query.from_user):
                toast, alert = NOT_STAFF, True
                return
            if not await self._first_time(update, query.from_user):
                return
            kind, ticket, *rest = (query.data or "").split(":")
            ticket_id = parse_id(ticket)  # ValueError beyond the id columns (claim:99999999999)
            toast = await self.actions[kind](ticket_id, query.from_user.full_name, rest)
            await self._note(toast, _message(query), ticket_id)
        except TicketError as exc:
            toast, alert = str(exc), True
        except (KeyError, ValueError):
            toast, alert = "这个按钮已失效。", True
        finally:
            await _answer(query, toast, alert)

    async def _claim(self, ticket_id: int, name: str, rest: list[str]) -> str:
        await self.tickets.claim(ticket_id, name)
        return f"工单 #{ticket_id} 已由 {name} 认领"

    async def _close(self, ticket_id: int, name: str, rest: list[str]) -> str:
        await self.tickets.close(ticket_id, name)
        return f"工单 #{ticket_id} 已由 {name} 关闭"

    async def _save(self, ticket_id: int, name: str, rest: list[str]) -> str:
        """存为知识: a proposal in the console's review queue (never published from the chat, where no
        editor checks it), with personal data masked before it is stored."""
        candidate = int(rest[0]) if rest else None
        review = KnowledgeReview(self.app.services.sessions, self.app.services.kb)
        saved = await review.save_from_ticket(ticket_id, name, publish=False, candidate=candidate, mask=True)
        how = "新增为常见问题" if candidate is None else f"加为已有条目（{saved.entry_id}）的问法"
        return (
            f"工单 #{ticket_id} 已提交审核（{how}，建议 #{saved.proposal_id}）：编辑在工作台“知识审核”批准后，"
            "机器人才会用它回答；其中的个人信息已遮盖"
        )

    # -- the queue and reminders ------------------------------------------------------------------------
    async def queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue: open tickets, oldest first, with waiting times."""
        message = update.effective_message
        if message is None:
            return
        if not self.is_staff(update.effective_user):
            await self._note(NOT_STAFF, message)
            return
        items = await self.tickets.queue()
        text = (
            "\n".join(["待处理工单（最早的在前）：", *map(queue_line, items)])
            if items
            else "目前没有待处理的工单。"
        )
        await self._note(text, message)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help in the staff chat: how staff work the queue."""
        if update.effective_message is not None:
            await self._note(STAFF_HELP, update.effective_message)

    async def _remind_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.remind_overdue()

    async def remind_overdue(self, now: dtm.datetime | None = None) -> list[int]:
        """Post one reminder listing tickets past the SLA (in working minutes); return their ids."""
        items = await self.tickets.overdue(now)
        if not items:
            return []
        lines = [f"【超时提醒】以下工单已超过 {self.staff.sla_minutes} 分钟（工作时间）未答复："]
        lines += map(queue_line, items)
        try:
            await self.channel.send(self.chat_ref, Reply("\n".join(lines), kind="reminder"))
        except DeliveryError as exc:
            log.warning("SLA reminder not sent; will try again", extra={"error": str(exc)})
            return []
        ids = [item.ticket.id for item in items]
        await self.tickets.mark_reminded(ids)
        return ids

    # -- helpers ----------------------------------------------------------------------------------------
    async def _first_time(self, update: Update, user: User) -> bool:
        """The core's update de-duplication, for staff actions."""
        msg = IncomingMessage(CHANNEL, self.chat_ref, str(user.id), update_id=str(update.update_id))
        return await self.app.conversations.first_time(msg)

    async def _note(self, text: str, reply_to: Message | None, ticket_id: int | None = None) -> None:
        """Say something in the staff chat (as a reply); a note in a ticket's thread joins the thread."""
        target = str(reply_to.message_id) if reply_to is not None else None
        try:
            sent = await self.channel.send(self.chat_ref, Reply(text, kind="info"), target)
        except DeliveryError as exc:
            log.warning("staff chat note not sent", extra={"error": str(exc)})
            return
        if ticket_id is not None and sent:
            await self.tickets.add_post(CHANNEL, self.chat_ref, sent, ticket_id)


def queue_line(item: QueueItem) -> str:
    """One ticket of /queue or a reminder: number, state, waiting time, who (display name), question."""
    t, waited = item.ticket, int(item.waiting_minutes)
    wait = f"{waited // 60} 小时 {waited % 60} 分" if waited >= 60 else f"{waited} 分钟"
    who = item.conversation.display_name or "访客"
    claimed = f"，{t.claimed_by}" if t.claimed_by else ""
    return f"#{t.id}【{STATUS_WORDS.get(t.status, t.status)}{claimed}】等待 {wait}｜{who}：{mask(t.question)[:40]}"


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def _answer(query: CallbackQuery, text: str, alert: bool) -> None:
    try:
        await query.answer(text[:200] or None, show_alert=alert)
    except TelegramError as exc:
        log.info("answerCallbackQuery failed", extra={"error": str(exc)})

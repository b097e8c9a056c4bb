"""The ``telegram`` channel as the outbox sees it: send a neutral ``Reply`` rendered by ``telegram_render``.

Texts longer than one Telegram message go out in parts, with the keyboard under the last part. Bot API
failures become ``DeliveryError``s the outbox understands: 429 carries ``retry_after``, timeouts and
server errors are retried with backoff, a blocked bot or a vanished chat is permanent.
"""

from __future__ import annotations

import datetime as dtm
import logging

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.channels import DeliveryError
from bot.logs import pseudonym
from bot.messages import Reply
from bot.tickets import TicketService
from handlers.telegram_render import keyboard, render_parts

log = logging.getLogger("policybot.telegram")

CHANNEL = "telegram"
THREAD_KINDS = ("staff_post", "staff_followup")  # messages whose every part answers a ticket when replied to
PERMANENT_BAD_REQUESTS = ("chat not found", "user is deactivated", "bot was kicked", "not enough rights",
                          "have no rights", "peer_id_invalid", "group chat was deactivated")  # fmt: skip


class TelegramChannel:
    """Delivers replies through a PTB ``Bot``; returns the Telegram message id of the (last) part sent."""

    name = CHANNEL

    def __init__(self, bot: Bot, tickets: TicketService | None = None) -> None:
        self.bot = bot
        self.tickets = tickets

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        """Send ``reply`` to chat ``chat_ref`` (as a reply to message ``reply_to`` when given)."""
        parts = render_parts(reply)
        markup = keyboard(reply.buttons)
        sent: list[str] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            message_id = await self._send_part(
                chat_ref, part, markup if last else None, reply_to if i == 0 else None
            )
            sent.append(message_id)
        await self._record_thread(chat_ref, reply, sent[:-1])
        return sent[-1]

    async def _send_part(
        self, chat_ref: str, text: str, markup: InlineKeyboardMarkup | None, reply_to: str | None
    ) -> str:
        params = None
        if reply_to:
            params = ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
        try:
            message = await self.bot.send_message(
                chat_id=int(chat_ref),
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                reply_parameters=params,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramError as exc:
            error = delivery_error(exc)
            log.info(
                "telegram send failed",
                extra={"chat": pseudonym(chat_ref), "error": str(error), "permanent": error.permanent},
            )
            raise error from exc
        return str(message.message_id)

    async def _record_thread(self, chat_ref: str, reply: Reply, earlier_parts: list[str]) -> None:
        """The outbox maps the returned (last) message to the ticket; map the earlier parts too."""
        if self.tickets is None or not reply.ticket_id or reply.kind not in THREAD_KINDS:
            return
        for message_id in earlier_parts:
            await self.tickets.add_post(CHANNEL, chat_ref, message_id, reply.ticket_id)


# -- errors ---------------------------------------------------------------------------------------------
def delivery_error(exc: TelegramError) -> DeliveryError:
    """Map a Bot API error to what the outbox should do about it."""
    if isinstance(exc, RetryAfter):
        return DeliveryError(f"rate limited: {exc}", retry_after=retry_seconds(exc))
    if isinstance(exc, Forbidden):
        return DeliveryError(f"forbidden: {exc.message}", permanent=True)
    if isinstance(exc, ChatMigrated):
        return DeliveryError(f"chat migrated to {exc.new_chat_id}", permanent=True)
    if isinstance(exc, BadRequest):
        permanent = any(p in exc.message.lower() for p in PERMANENT_BAD_REQUESTS)
        return DeliveryError(f"bad request: {exc.message}", permanent=permanent)
    # TimedOut, NetworkError (5xx, connection errors) and anything else: retry with backoff.
    return DeliveryError(f"{type(exc).__name__}: {exc.message}")


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB gives an int or (with PTB_TIMEDELTA) a timedelta."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)

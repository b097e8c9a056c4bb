"""The WeChat Official Account (微信公众号) channel: WeChat's server posts messages to ``[wechat] path``.

``start_wechat(app)`` (``policybot run``, when ``[wechat] token`` is set) adds the route to the web server
and registers the ``wechat`` channel with the outbox. The protocol pieces come from wechatpy (signature,
XML parsing, passive reply, AES in safe mode); see docs/wechat.md.

- ``GET``: WeChat's server verification; the ``echostr`` back when the signature is right.
- ``POST``: a message or event. The signature (and in safe mode the message signature) is checked first:
  403 and nothing processed otherwise; a timestamp more than five minutes off is refused too (a replayed
  request). The body must be a small XML document (413 / 400 otherwise).
- A text is answered by the passive XML reply within ``reply_seconds``; a number answers a numbered
  choice. WeChat retries a message it got no answer to (same MsgId): the retry gets the same answer
  (``Conversations`` de-duplicates by MsgId; a retry reaching another worker gets an empty ``success``).
  An answer not ready in time is sent as a customer-service message through the outbox.
- Events: ``subscribe`` gets the welcome; a menu ``CLICK`` maps its key to a command (``status``...), a
  core action (``cat:…``, ``entry:…``), or a question (``q:<question>``); other events get ``success``.
- Images, voice, video, location, links: the core's polite "text only" reply (passed to staff when a
  ticket is open); message types WeChat may add later get that text without touching the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import ClickEvent, SubscribeEvent, SubscribeScanEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage, UnknownMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.app import App
from bot.config import WechatSettings
from bot.conversation import NOT_TEXT
from bot.logs import pseudonym
from bot.messages import ChannelRef, IncomingMessage, Reply
from bot.protocol import ActionError, parse_action, parse_command
from bot.subscriptions import Refusal as SubscriptionRefusal
from handlers.wechat_api import CHANNEL, WechatApi, WechatChannel
from handlers.wechat_render import render_parts

log = logging.getLogger("policybot.wechat")

MAX_SKEW = 300  # seconds between WeChat's timestamp and ours before a request counts as replayed
REMEMBER = 2048  # recent message keys whose answers are kept for WeChat's retries
EMPTY = "success"  # WeChat's "no reply"
CONTENT_TYPES = {"image": "photo", "voice": "voice", "video": "video", "shortvideo": "video",
                 "location": "location", "link": "document", "file": "document"}  # fmt: skip
UNKNOWN_KEY = "这个菜单暂时没有内容，请直接输入您的问题。"


class Refusal(Exception):
    """A request the endpoint refuses: HTTP status and a short reason (nothing was processed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WechatEndpoint:
    """Verifies, decrypts, parses and answers WeChat's requests; every answer comes from the core."""

    def __init__(self, app: App, settings: WechatSettings, max_body: int) -> None:
        self.core = app.conversations
        self.settings = settings
        self.max_body = max_body
        self.crypto = (
            WeChatCrypto(settings.token, settings.encoding_aes_key, settings.app_id)
            if settings.encoding_aes_key
            else None
        )
        self._answers: OrderedDict[str, asyncio.Task[list[Reply]]] = OrderedDict()
        self._late: set[asyncio.Task[None]] = set()
        self._handed_over: set[str] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.settings.path, self.verify), web.post(self.settings.path, self.receive)]

    # -- HTTP -----------------------------------------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """Server verification: ``echostr`` back when the signature is right."""
        try:
            self._check_signature(request)
        except Refusal as exc:
            return _refuse(exc)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        """One message or event from WeChat; the passive reply (XML) or ``success``."""
        try:
            self._check_signature(request)
            body = await self._body(request)
            xml = self._decrypt(request, body)
            message = _parse(xml)
        except Refusal as exc:
            return _refuse(exc)
        text = await self._answer(message)
        if not text:
            return web.Response(text=EMPTY)
        reply = TextReply(source=message.target, target=message.source, content=text).render()
        if self.crypto is not None:
            reply = self.crypto.encrypt_message(reply, request.query.get("nonce", ""))
        return web.Response(text=reply, content_type="application/xml", charset="utf-8")

    def _check_signature(self, request: web.Request) -> None:
        q = request.query
        try:
            check_signature(
                self.settings.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")
            )
        except InvalidSignatureException:
            raise Refusal(403, "invalid signature") from None
        stamp = q.get("timestamp", "")
        if request.method == "POST" and (not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW):
            raise Refusal(403, "stale timestamp")

    async def _body(self, request: web.Request) -> str:
        if request.content_length is not None and request.content_length > self.max_body:
            raise Refusal(413, "body too large")
        raw = await request.content.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise Refusal(413, "body too large")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal(400, "body is not UTF-8") from None

    def _decrypt(self, request: web.Request, body: str) -> str:
        if self.crypto is None:
            return body
        q = request.query
        try:
            return str(
                self.crypto.decrypt_message(
                    body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
                )
            )
        except (InvalidSignatureException, InvalidAppIdException):
            raise Refusal(403, "invalid message signature") from None
        except Exception:  # malformed XML, no <Encrypt>, bad base64 or padding
            raise Refusal(400, "cannot decrypt the message") from None

    # -- answering ------------------------------------------------------------------------------------------
    async def _answer(self, message: BaseMessage) -> str:
        """The passive reply text ('' for none); a slow answer goes to the outbox instead."""
        key = _key(message)
        if key in self._handed_over:
            return ""  # a retry of a message whose answer the outbox delivers
        task = self._answers.get(key)
        retry = task is not None
        if task is None:
            task = asyncio.create_task(self._replies(message, key))
            self._remember(key, task)
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), self.settings.reply_seconds)
        except TimeoutError:
            self._handed_over.add(key)
            self._later(task, message.source)
            log.info("wechat answer late: sent by the outbox", extra={"user": pseudonym(message.source)})
            return ""
        except Exception:
            self._answers.pop(key, None)  # WeChat's retry tries again (the core de-duplicates what it stored)
            raise
        parts = render_parts(replies) if replies else []
        if len(parts) > 1 and not retry:  # one passive message; the rest as customer-service messages
            await self.core.send(_ref(message.source), [Reply("\n".join(parts[1:]))])
        return parts[0] if parts else ""

    async def _replies(self, message: BaseMessage, key: str) -> list[Reply]:
        msg = IncomingMessage(CHANNEL, message.source, message.source, update_id=key)
        if isinstance(message, TextMessage):
            return await self._text(msg, (message.content or "").strip())
        if isinstance(message, SubscribeEvent | SubscribeScanEvent):
            return await self.core.command(msg, "start")
        if isinstance(message, ClickEvent):
            return await self._click(msg, (message.key or "").strip())
        if message.type == "event":
            return []  # unsubscribe, VIEW (a link opened), location reports...: nothing to say
        if isinstance(message, UnknownMessage) or message.type not in CONTENT_TYPES:
            return [Reply(NOT_TEXT, kind="error")]  # a type we do not know: a polite text, nothing stored
        msg.content_type = CONTENT_TYPES[message.type]
        return await self.core.handle(msg)

    async def _text(self, msg: IncomingMessage, text: str) -> list[Reply]:
        msg.text = text
        if text.isascii() and text.isdigit() and len(text) <= 3:
            chosen = await self.core.choose(msg, int(text))
            if chosen is not None:
                return chosen
        # (subscription words, 订阅 外贸外资 or 我的订阅, are read by the core like any command in words)
        return await self.core.handle(msg)

    async def _click(self, msg: IncomingMessage, key: str) -> list[Reply]:
        """A menu button: ``q:<question>``, a command name (``status``, ``human``...) or a core action."""
        if key.startswith("q:") and key[2:].strip():
            msg.text = key[2:].strip()
            return await self.core.handle(msg)
        command = parse_command(key if key.startswith("/") else f"/{key}")
        if command is not None:
            return await self.core.command(msg, *command)
        try:
            return await self.core.act(msg, parse_action(key))
        except ActionError:
            log.warning("unknown menu key", extra={"key": key[:64]})
            return [Reply(UNKNOWN_KEY)]
        except SubscriptionRefusal as exc:  # a menu key subscribing to a category that is gone...
            return [exc.reply()]

    def _remember(self, key: str, task: asyncio.Task[list[Reply]]) -> None:
        self._answers[key] = task
        while len(self._answers) > REMEMBER:
            old_key, _ = self._answers.popitem(last=False)
            self._handed_over.discard(old_key)

    def _later(self, task: asyncio.Task[list[Reply]], openid: str) -> None:
        """Deliver an answer that missed the passive window through the outbox, once it is ready."""

        async def deliver() -> None:
            with contextlib.suppress(Exception):
                replies = await task
                await self.core.send(_ref(openid), replies)

        late = asyncio.create_task(deliver())
        self._late.add(late)
        late.add_done_callback(self._late.discard)


def _ref(openid: str) -> ChannelRef:
    return ChannelRef(CHANNEL, openid)


def _key(message: BaseMessage) -> str:
    """WeChat's id of a message (MsgId), or for events the sender, time, event and key (WeChat advises
    sender and time; two menu clicks within a second differ by their key)."""
    if message.id:
        return str(message.id)
    event = f"{getattr(message, 'event', message.type)}:{getattr(message, 'key', '') or ''}"
    return f"{message.source}:{message.create_time.timestamp():.0f}:{event}"[:100]


def _parse(xml: str) -> BaseMessage:
    """The message of an XML body; 400 for anything that is not a WeChat message."""
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise Refusal(400, "XML with a document type is not accepted")
    try:
        message = parse_message(xml)
    except Exception:  # expat errors, wrong structure
        raise Refusal(400, "malformed XML") from None
    if message is None or not message.source or not message.target:
        raise Refusal(400, "not a WeChat message (no FromUserName / ToUserName)")
    return message


def _refuse(exc: Refusal) -> web.Response:
    log.info("wechat request refused", extra={"status": exc.status, "reason": str(exc)})
    return web.Response(status=exc.status, text=str(exc))


async def start_wechat(app: App) -> WechatApi:
    """Add the WeChat route for the web server and register the ``wechat`` channel with the outbox."""
    settings = app.settings.wechat
    endpoint = WechatEndpoint(app, settings, app.settings.web.max_body_bytes)
    app.extra_routes.extend(endpoint.routes())
    api = WechatApi(settings, app.credentials)
    app.registry.add(WechatChannel(api, app.conversations.record_reply))

    async def stop() -> None:
        app.registry.remove(CHANNEL)
        await api.close()

    app.stoppers.append(stop)
    log.info("wechat channel ready", extra={"path": settings.path, "safe_mode": endpoint.crypto is not None})
    return api

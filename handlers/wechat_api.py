"""WeChat's server API, as the ``wechat`` channel of the outbox uses it.

Replies that are not passive (a staff answer, a reply that took too long, the rest of a long text) go out
as customer-service messages (``/cgi-bin/message/custom/send``). They need an access token: fetched from
``/cgi-bin/stable_token`` (which hands every worker the same token instead of invalidating the last),
cached in memory and in the database (``CredentialStore``) and fetched again five minutes before it
expires, or at once when WeChat says it is invalid. WeChat's errors become ``DeliveryError``s the outbox
understands: limits, ``-1`` (busy) and 5xx are retried; the 48-hour window (45015) and the like are
permanent, and the console shows them on the ticket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp

from bot.channels import DeliveryError
from bot.config import WechatSettings
from bot.credentials import Credential, CredentialStore
from bot.logs import pseudonym
from bot.messages import ChannelRef, Reply
from handlers.wechat_render import render_parts
from knowledge.models import utcnow

log = logging.getLogger("policybot.wechat")

CHANNEL = "wechat"
Recorder = Callable[[ChannelRef, Reply], Awaitable[object]]  # stores a reply in a conversation
REFRESH_MARGIN = timedelta(minutes=5)
TIMEOUT = aiohttp.ClientTimeout(total=10)
TOKEN_INVALID = {40001, 40014, 42001}  # invalid, malformed, expired access token
RETRY_LATER = {-1: 5.0, 45009: 60.0, 45011: 60.0}  # busy; API limits
OUT_OF_WINDOW = 45015
WINDOW_TEXT = "用户超过 48 小时未与公众号互动，微信不允许再向其发送客服消息，答复未能送达"


class WechatApiError(Exception):
    """An answer of WeChat's API with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"wechat errcode {errcode}: {errmsg}")
        self.errcode = errcode


class WechatApi:
    """The two API calls the channel needs, over one aiohttp session."""

    def __init__(self, settings: WechatSettings, store: CredentialStore) -> None:
        self.settings = settings
        self.store = store
        self.base = settings.api_base_url.rstrip("/")
        self.name = f"wechat:{settings.app_id}"
        self._token: Credential | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def access_token(self) -> str:
        """A token with more than five minutes left: memory, then the database, then WeChat."""
        if self._token is not None and self._token.fresh(REFRESH_MARGIN):
            return self._token.value
        async with self._lock:
            if self._token is not None and self._token.fresh(REFRESH_MARGIN):
                return self._token.value
            stored = await self.store.get(self.name)
            if stored is None or not stored.fresh(REFRESH_MARGIN):
                stored = await self._fetch_token()
                await self.store.put(self.name, stored)
            self._token = stored
            return stored.value

    async def forget_token(self) -> None:
        """WeChat said the token is invalid: fetch another next time."""
        self._token = None
        await self.store.forget(self.name)

    async def _fetch_token(self) -> Credential:
        body = {
            "grant_type": "client_credential",
            "appid": self.settings.app_id,
            "secret": self.settings.app_secret,
            "force_refresh": False,
        }
        data = await self._post("/cgi-bin/stable_token", body)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise WechatApiError(-2, "no access_token in the answer")
        log.info("wechat access token fetched", extra={"expires_in": expires_in})
        return Credential(token, utcnow() + timedelta(seconds=expires_in))

    async def send_text(self, openid: str, text: str) -> None:
        """One customer-service text message; a stale token is replaced and the call made once more."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        for attempt in (1, 2):
            token = await self.access_token()
            try:
                await self._post("/cgi-bin/message/custom/send", body, access_token=token)
                return
            except WechatApiError as exc:
                if exc.errcode not in TOKEN_INVALID or attempt == 2:
                    raise
                await self.forget_token()

    async def _post(self, path: str, body: dict[str, Any], access_token: str | None = None) -> dict[str, Any]:
        """POST JSON; the decoded answer, or ``WechatApiError`` for a non-zero errcode."""
        params = {"access_token": access_token} if access_token else None
        async with self._http().post(self.base + path, json=body, params=params) as resp:
            if resp.status >= 500:
                raise DeliveryError(f"wechat http {resp.status}")
            if resp.status != 200:
                raise DeliveryError(f"wechat http {resp.status}", permanent=True)
            data = await resp.json(content_type=None)
        if not isinstance(data, dict):
            raise WechatApiError(-2, "not a JSON object")
        errcode = data.get("errcode", 0)
        if errcode:
            raise WechatApiError(int(errcode), str(data.get("errmsg", "")))
        return data


class WechatChannel:
    """The ``wechat`` channel for the outbox: replies as customer-service text messages.

    A reply longer than one message goes out in parts; the parts already sent are remembered, so a retry
    after a failure in the middle sends only the rest (within this process). A push, once sent, is
    recorded in the visitor's conversation (``record``: ``Conversations.record_reply``), so that its
    numbered 阅读全文 is what the number typed next chooses."""

    name = CHANNEL

    def __init__(self, api: WechatApi, record: Recorder | None = None) -> None:
        self.api = api
        self.record = record
        self._sent_parts: dict[str, int] = {}

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        parts = render_parts([reply])
        key = hashlib.sha256(f"{chat_ref}\n{reply.message_id}\n{reply.text}".encode()).hexdigest()
        done = self._sent_parts.get(key, 0)
        for i, part in enumerate(parts[done:], done):
            try:
                await self.api.send_text(chat_ref, part)
            except WechatApiError as exc:
                self._sent_parts[key] = i
                raise delivery_error(exc, chat_ref) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._sent_parts[key] = i
                raise DeliveryError(f"wechat unreachable: {type(exc).__name__}") from exc
            except DeliveryError:
                self._sent_parts[key] = i
                raise
        self._sent_parts.pop(key, None)
        if reply.kind == "broadcast" and self.record is not None:
            await self.record(ChannelRef(CHANNEL, chat_ref), reply)
        return None


def delivery_error(exc: WechatApiError, chat_ref: str) -> DeliveryError:
    """What the outbox should do about an API error."""
    log.info("wechat send failed", extra={"user": pseudonym(chat_ref), "errcode": exc.errcode})
    if exc.errcode == OUT_OF_WINDOW:
        return DeliveryError(f"{WINDOW_TEXT}（{exc.errcode}）", permanent=True)
    if exc.errcode in RETRY_LATER:
        return DeliveryError(str(exc), retry_after=RETRY_LATER[exc.errcode])
    return DeliveryError(str(exc), permanent=True)

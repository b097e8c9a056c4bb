"""A fake Telegram Bot API server on aiohttp, for end-to-end tests of the real PTB Application.

PTB reaches it through ``base_url`` (``http://127.0.0.1:<port>/bot``) and calls
``POST /bot<token>/<camelCaseMethod>`` with form-encoded parameters (strings raw, everything else
JSON-encoded). The fake answers like Telegram: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": ...}``; unknown methods get 400 (a 404 would make PTB
raise ``InvalidToken``). It checks what Telegram checks and a test cares about: HTML that does not parse,
texts over 4,096 characters, empty texts, callback data over 64 bytes.

``getUpdates`` keeps updates until they are confirmed with a higher ``offset``, as Telegram does, so a
poller that goes away (a restart) loses nothing; long polls wake at once on ``push`` and on ``stop``.
Failures can be injected per method: the next N calls answer 500, 429 with ``retry_after``, or hang
(a client-side timeout). Every call is recorded in ``calls``; ``transcript()`` renders them.

With ``limits=FloodLimits()`` it also enforces Telegram's flood limits on ``sendMessage`` as Telegram
does: more than ``per_second`` messages in any one-second window, or a second message to one chat within
``per_chat_seconds``, is answered 429 with ``retry_after`` (counted in ``flood_rejections``).

The module-level helpers build the Update dicts a user or staff member would cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from tests.fakes.local_server import LocalServer

TOKEN = "123456:TEST-fake-token"
BOT_ID = 123456
BOT_USERNAME = "policybot_test_bot"
MAX_TEXT = 4096
RAW_KEYS = {"text", "callback_query_id", "url", "secret_token", "parse_mode", "caption", "command"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "tg-spoiler",
                "blockquote", "span"}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")

Json = dict[str, Any]


@dataclass
class ApiCall:
    """One request the bot made, as the fake decoded it, and what it answered."""

    method: str
    params: Json
    status: int
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Failure:
    """An injected failure for the next call of one method."""

    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0  # seconds to hang before answering (longer than the client's timeout: TimedOut)
    description: str = "Internal Server Error"


class BadRequest(Exception):
    """A call Telegram would refuse with 400."""


@dataclass
class FloodLimits:
    """Telegram's limits on sending: about 30 messages a second overall, one a second per chat."""

    per_second: int = 30
    per_chat_seconds: float = 1.0
    retry_after: int = 1


class Flooded(Exception):
    """A send over the flood limits: Telegram answers 429 with ``retry_after``."""


class FakeBotAPI(LocalServer):
    """The fake server; ``await start()`` binds 127.0.0.1 on a free port."""

    def __init__(
        self,
        token: str = TOKEN,
        username: str = BOT_USERNAME,
        bot_id: int = BOT_ID,
        limits: FloodLimits | None = None,
    ) -> None:
        self.token = token
        self.limits = limits
        self.flood_rejections = 0
        self._recent_sends: deque[float] = deque()
        self._last_send: dict[int, float] = {}
        self.bot_user: Json = {"id": bot_id, "is_bot": True, "first_name": "政策咨询", "username": username}
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[int, int], Json] = {}  # (chat_id, message_id) -> Message
        self.webhook: Json = {}
        self._updates: list[tuple[Json, bool]] = []  # (update, delivered at least once)
        self._failures: dict[str, deque[Failure]] = {}
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(5000)
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)

    async def stop(self) -> None:
        """Wake every pending long poll or hanging call, then shut the server down."""
        self._stopping.set()
        self._changed.set()
        await super().stop()

    @property
    def base_url(self) -> str:
        """What ``[telegram] base_url`` should be set to (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- test controls ------------------------------------------------------------------------------
    def push(self, update: Json) -> Json:
        """Queue an update for ``getUpdates`` (an ``update_id`` is assigned when missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append((update, False))
        self.record_user(update)
        return update

    def fail_next(self, method: str, times: int = 1, **failure: Any) -> None:
        """Make the next ``times`` calls of ``method`` fail (see ``Failure`` for the options)."""
        queue = self._failures.setdefault(method, deque())
        queue.extend(Failure(**failure) for _ in range(times))

    def next_update_id(self) -> int:
        """A fresh ``update_id`` (builders assign one, so a test can deliver the same update twice)."""
        return next(self._update_ids)

    def next_message_id(self) -> int:
        """A message id for a message a user sends (shares the counter with the bot's messages)."""
        return next(self._ids)

    def remember(self, message: Json) -> Json:
        """Store a user's message so replies to it can carry it as ``reply_to_message``."""
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def of(self, method: str, chat_id: int | None = None, ok: bool | None = True) -> list[ApiCall]:
        """Recorded calls of one method, optionally to one chat: successful ones (``ok=True``), failed
        ones (``ok=False``) or all (``ok=None``)."""
        return [
            c
            for c in self.calls
            if c.method == method
            and (ok is None or c.ok == ok)
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    def sent(self, chat_id: int | None = None) -> list[Json]:
        """Messages the bot sent (the Message dicts the fake returned), oldest first."""
        return [c.result for c in self.of("sendMessage", chat_id)]

    async def wait_for(self, predicate: Callable[[ApiCall], bool], within: float = 5.0) -> ApiCall:
        """The first recorded call (past or future) matching ``predicate``; fail after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for call in self.calls:
                if predicate(call):
                    return call
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                methods = [f"{c.method}:{c.status}" for c in self.calls[-15:]]
                raise AssertionError(f"no matching Bot API call within {within}s; last calls: {methods}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))

    async def wait_sent(
        self, chat_id: int, contains: str = "", count: int = 1, within: float = 5.0
    ) -> list[Json]:
        """Wait until ``count`` messages to ``chat_id`` whose text contains ``contains`` were sent."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = [m for m in self.sent(chat_id) if contains in m.get("text", "")]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                texts = [m.get("text", "")[:60] for m in self.sent(chat_id)]
                raise AssertionError(f"expected {count} message(s) with {contains!r} to {chat_id}: {texts}")
            await asyncio.sleep(0.02)

    def transcript(self, methods: tuple[str, ...] = ("sendMessage", "answerCallbackQuery")) -> str:
        """The recorded calls as readable text (for the handoff transcript artifact)."""
        lines = []
        for call in self.calls:
            if call.method not in methods and not call.method.startswith("_user"):
                continue
            lines.append(_describe(call))
        return "\n".join(lines)

    def record_user(self, update: Json) -> None:
        """Note what a user did in the call log, so transcripts show both sides."""
        self.calls.append(ApiCall("_user", update, 200, update))
        self._notify()

    # -- the server ---------------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = _decode(await request.post()) if request.can_read_body else {}
        failure = self._next_failure(method)
        if failure is not None:
            return await self._fail(method, params, failure)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self._record(method, params, 400)
            return _error(400, f"Bad Request: method {method} not found")
        try:
            result = await handler(params)
        except Flooded:
            self.flood_rejections += 1
            assert self.limits is not None
            self._record(method, params, 429, "Too Many Requests")
            wait = self.limits.retry_after
            return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        except BadRequest as exc:
            self._record(method, params, 400, str(exc))
            return _error(400, f"Bad Request: {exc}")
        if method != "getUpdates" or result:
            self._record(method, params, 200, result)
        return web.json_response({"ok": True, "result": result})

    def _next_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    async def _fail(self, method: str, params: Json, failure: Failure) -> web.Response:
        if failure.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), failure.delay)
        self._record(method, params, failure.status, failure.description)
        if failure.retry_after is not None:
            return _error(
                429,
                f"Too Many Requests: retry after {failure.retry_after}",
                {"retry_after": failure.retry_after},
            )
        return _error(failure.status, failure.description)

    def _record(self, method: str, params: Json, status: int, result: Any = None) -> None:
        self.calls.append(ApiCall(method, params, status, result))
        self._notify()

    # -- methods ------------------------------------------------------------------------------------
    async def _m_getMe(self, params: Json) -> Json:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False}

    async def _m_deleteWebhook(self, params: Json) -> bool:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_setWebhook(self, params: Json) -> bool:
        self.webhook = dict(params)
        return True

    async def _m_getWebhookInfo(self, params: Json) -> Json:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }

    async def _m_setMyCommands(self, params: Json) -> bool:
        return True

    async def _m_getUpdates(self, params: Json) -> list[Json]:
        if self.webhook:
            raise BadRequest("can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if offset:  # confirmed: forget updates below the offset that were handed out
                self._updates = [(u, d) for u, d in self._updates if u["update_id"] >= offset or not d]
            pending = [u for u, _ in self._updates]
            left = deadline - asyncio.get_running_loop().time()
            if pending or left <= 0 or self._stopping.is_set():
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
        self._updates = [(u, True) for u, _ in self._updates]
        return pending[: int(params.get("limit") or 100)]

    def _check_flood(self, chat_id: int) -> None:
        """Raise ``Flooded`` for a send over the limits; otherwise count it."""
        if self.limits is None:
            return
        now = time.monotonic()
        while self._recent_sends and self._recent_sends[0] <= now - 1.0:
            self._recent_sends.popleft()
        last = self._last_send.get(chat_id)
        if len(self._recent_sends) >= self.limits.per_second or (
            last is not None and now - last < self.limits.per_chat_seconds
        ):
            raise Flooded()
        self._recent_sends.append(now)
        self._last_send[chat_id] = now

    async def _m_sendMessage(self, params: Json) -> Json:
        text = str(params.get("text", ""))
        plain = _check_text(text, params.get("parse_mode"))
        _check_markup(params.get("reply_markup"))
        chat_id = int(params["chat_id"])
        self._check_flood(chat_id)
        message: Json = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self.bot_user,
            "text": plain,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        reply_to = (params.get("reply_parameters") or {}).get("message_id") or params.get(
            "reply_to_message_id"
        )
        if reply_to:
            quoted = self.messages.get((chat_id, int(reply_to)))
            if quoted is None and not (params.get("reply_parameters") or {}).get(
                "allow_sending_without_reply"
            ):
                raise BadRequest("message to be replied not found")
            if quoted is not None:
                message["reply_to_message"] = {k: v for k, v in quoted.items() if k != "reply_to_message"}
        self.messages[(chat_id, message["message_id"])] = message
        return message

    async def _m_editMessageText(self, params: Json) -> Json:
        message = self._stored(params)
        message["text"] = _check_text(str(params.get("text", "")), params.get("parse_mode"))
        _check_markup(params.get("reply_markup"))
        message["reply_markup"] = params.get("reply_markup") or {}
        return message

    async def _m_editMessageReplyMarkup(self, params: Json) -> Json:
        message = self._stored(params)
        _check_markup(params.get("reply_markup"))
        message["reply_markup"] = params.get("reply_markup") or {}
        return message

    async def _m_answerCallbackQuery(self, params: Json) -> bool:
        if len(str(params.get("text", ""))) > 200:
            raise BadRequest("MESSAGE_TOO_LONG")
        return True

    async def _m_deleteMessage(self, params: Json) -> bool:
        self._stored(params)
        self.messages.pop((int(params["chat_id"]), int(params["message_id"])), None)
        return True

    def _stored(self, params: Json) -> Json:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise BadRequest("message to edit not found")
        return self.messages[key]


# -- validation and encoding --------------------------------------------------------------------------
def _decode(form: Any) -> Json:
    """Form fields as Telegram reads them: strings raw, other values JSON-encoded."""
    params: Json = {}
    for key, value in form.items():
        if key in RAW_KEYS or not isinstance(value, str):
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _check_text(text: str, parse_mode: str | None) -> str:
    """Validate a message text as Telegram would; return the text users see."""
    plain = _parse_html(text) if parse_mode == "HTML" else text
    if not plain.strip():
        raise BadRequest("message text is empty")
    if len(plain.encode("utf-16-le")) // 2 > MAX_TEXT:
        raise BadRequest("message is too long")
    return plain


def _parse_html(text: str) -> str:
    """Telegram's HTML subset: only known tags, properly nested; a bare ``<`` or ``&`` is an error."""
    stack: list[str] = []
    pos = 0
    out: list[str] = []
    for m in _TAG.finditer(text):
        out.append(_check_entities(text[pos : m.start()]))
        closing, name = m.group(1) == "/", m.group(2).lower()
        if name not in ALLOWED_TAGS:
            raise BadRequest(f'can\'t parse entities: unsupported start tag "{name}"')
        if closing:
            if not stack or stack.pop() != name:
                raise BadRequest(f'can\'t parse entities: unexpected end tag "{name}"')
        else:
            stack.append(name)
        pos = m.end()
    out.append(_check_entities(text[pos:]))
    if stack:
        raise BadRequest(f'can\'t parse entities: unclosed start tag "{stack[-1]}"')
    return html.unescape("".join(out))


def _check_entities(chunk: str) -> str:
    if "<" in chunk or ">" in chunk:
        raise BadRequest("can't parse entities: unescaped < or >")
    if chunk.count("&") != len(_ENTITY.findall(chunk)):
        raise BadRequest("can't parse entities: unescaped &")
    return chunk


def _check_markup(markup: Any) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise BadRequest("BUTTON_DATA_INVALID")


def _error(code: int, description: str, parameters: Json | None = None) -> web.Response:
    body: Json = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _chat(chat_id: int) -> Json:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
    return {"id": chat_id, "type": "supergroup", "title": f"group{chat_id}"}


def _describe(call: ApiCall) -> str:
    """One transcript line (or block) for a recorded call."""
    if call.method == "_user":
        return _describe_update(call.params)
    p = call.params
    if call.method == "answerCallbackQuery":
        return f"BOT  answerCallbackQuery {p.get('text', '')!r}"
    status = "" if call.ok else f"  [FAILED {call.status}: {call.result}]"
    msg = call.result if call.ok else {}
    head = f"BOT  -> chat {p.get('chat_id')} msg #{msg.get('message_id', '?')}"
    text = msg.get("text", "") if call.ok else str(p.get("text", ""))
    reply = (p.get("reply_parameters") or {}).get("message_id")
    if reply:
        head += f" (reply to #{reply})"
    lines = [head + status, *("       " + line for line in text.splitlines())]
    buttons = [b["text"] + "=" + b.get("callback_data", "") for row in (p.get("reply_markup") or {}).get(
        "inline_keyboard", []) for b in row]  # fmt: skip
    if buttons:
        lines.append("       [" + "] [".join(buttons) + "]")
    return "\n".join(lines)


def _describe_update(update: Json) -> str:
    if "callback_query" in update:
        q = update["callback_query"]
        return f"USER {q['from']['first_name']} (id {q['from']['id']}) presses [{q['data']}]"
    m = update.get("message", {})
    who = m.get("from", {}).get("first_name", "?")
    reply = m.get("reply_to_message", {}).get("message_id")
    where = f"chat {m.get('chat', {}).get('id')}" + (f", reply to #{reply}" if reply else "")
    return f"USER {who} ({where}) msg #{m.get('message_id')}: {m.get('text', '[' + _kind(m) + ']')!r}"


def _kind(message: Json) -> str:
    for key in ("photo", "sticker", "voice", "document", "location", "video", "contact"):
        if key in message:
            return key
    return "?"


# -- building updates -------------------------------------------------------------------------------------
def user(user_id: int, first_name: str = "张三", username: str | None = None) -> Json:
    """A Telegram User dict (no phone numbers: Telegram never sends them unasked)."""
    data: Json = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}
    if username:
        data["username"] = username
    return data


def message(
    api: FakeBotAPI,
    sender: Json,
    text: str | None = None,
    *,
    chat_id: int | None = None,
    reply_to: Json | None = None,
    entities: list[Json] | None = None,
    **content: Any,
) -> Json:
    """A Message from ``sender`` (in their private chat unless ``chat_id`` names a group)."""
    chat = _chat(chat_id if chat_id is not None else sender["id"])
    msg: Json = {"message_id": api.next_message_id(), "date": int(time.time()), "chat": chat, "from": sender}
    if text is not None:
        msg["text"] = text
    if entities:
        msg["entities"] = entities
    if reply_to is not None:
        msg["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
    msg.update(content)
    return api.remember(msg)


def text_update(api: FakeBotAPI, sender: Json, text: str, **kw: Any) -> Json:
    """An Update carrying a text message; commands get their ``bot_command`` entity."""
    entities = kw.pop("entities", None)
    if entities is None and text.startswith("/"):
        command = text.split()[0]
        entities = [{"type": "bot_command", "offset": 0, "length": _utf16(command)}]
    return {"update_id": api.next_update_id(), "message": message(api, sender, text, entities=entities, **kw)}


def mention_update(
    api: FakeBotAPI, sender: Json, chat_id: int, question: str, username: str = BOT_USERNAME
) -> Json:
    """A group message that mentions the bot: ``"@bot question"`` with its ``mention`` entity."""
    mention = f"@{username}"
    return text_update(
        api,
        sender,
        f"{mention} {question}",
        chat_id=chat_id,
        entities=[{"type": "mention", "offset": 0, "length": _utf16(mention)}],
    )


def callback_update(api: FakeBotAPI, sender: Json, bot_message: Json, data: str) -> Json:
    """An Update for pressing the inline button ``data`` under ``bot_message``."""
    return {
        "update_id": api.next_update_id(),
        "callback_query": {
            "id": str(api.next_message_id()),
            "from": sender,
            "chat_instance": f"ci{bot_message['chat']['id']}",
            "message": bot_message,
            "data": data,
        },
    }


def media_update(api: FakeBotAPI, sender: Json, kind: str, **kw: Any) -> Json:
    """An Update with a photo, sticker, voice, document or location instead of text."""
    payloads: dict[str, Any] = {
        "photo": [{"file_id": "ph1", "file_unique_id": "u1", "width": 90, "height": 90}],
        "sticker": {"file_id": "st1", "file_unique_id": "u2", "width": 512, "height": 512,
                    "is_animated": False, "is_video": False, "type": "regular"},
        "voice": {"file_id": "vo1", "file_unique_id": "u3", "duration": 3},
        "document": {"file_id": "do1", "file_unique_id": "u4", "file_name": "申请表.pdf"},
        "location": {"latitude": 26.08, "longitude": 119.30},
    }  # fmt: skip
    return {
        "update_id": api.next_update_id(),
        "message": message(api, sender, None, **{kind: payloads[kind]}, **kw),
    }


async def post_webhook(
    url: str, update: Json, secret: str | None, body: bytes | None = None, wait: float = 60.0
) -> int:
    """POST an update to a webhook like Telegram does (it waits for the answer while the update is
    processed, as Telegram does for up to a minute); return the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    data = body if body is not None else json.dumps(update).encode()
    async with (
        ClientSession(timeout=ClientTimeout(total=wait)) as session,
        session.post(url, data=data, headers=headers) as resp,
    ):
        return resp.status


def _utf16(text: str) -> int:
    """Length in UTF-16 code units (what Telegram's entity offsets count)."""
    return len(text.encode("utf-16-le")) // 2

"""A local fake of WeChat for tests: the API server (access tokens, customer-service messages) and the
client side of WeChat's server, which signs (and in safe mode encrypts) messages to our endpoint.

    api = FakeWechatAPI(); await api.start()     # [wechat] api_base_url = api.base_url
    api.fail("send", 45015)                       # the next custom/send answers errcode 45015
    api.fail("send", http=502)                    # ... or HTTP 502
    api.sent                                      # [(openid, text), ...] delivered customer-service texts
    wx = WechatSender(token, app_id, aes_key)     # builds the query string and body of a POST
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from tests.fakes.local_server import LocalServer

APP_ID = "wx1234567890abcdef"
APP_SECRET = "s3cret-of-the-account"
ACCOUNT = "gh_0123456789ab"


@dataclass
class Failure:
    errcode: int = 0
    http: int = 200


@dataclass
class FakeWechatAPI(LocalServer):
    """``/cgi-bin/stable_token`` and ``/cgi-bin/message/custom/send`` on 127.0.0.1."""

    expires_in: int = 7200
    sent: list[tuple[str, str]] = field(default_factory=list)
    token_calls: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    _failures: dict[str, deque[Failure]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/stable_token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, call: str, errcode: int = 0, http: int = 200, times: int = 1) -> None:
        """Make the next ``times`` calls of ``call`` (``token`` or ``send``) fail."""
        self._failures.setdefault(call, deque()).extend(Failure(errcode, http) for _ in range(times))

    def expire_tokens(self) -> None:
        """Every token handed out so far stops working (WeChat answers 40001)."""
        self.valid_tokens.clear()

    def _failure(self, call: str) -> web.Response | None:
        queue = self._failures.get(call)
        if not queue:
            return None
        f = queue.popleft()
        if f.http != 200:
            return web.Response(status=f.http, text="upstream error")
        return web.json_response({"errcode": f.errcode, "errmsg": f"fake error {f.errcode}"})

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_calls += 1
        if (failed := self._failure("token")) is not None:
            return failed
        if body.get("appid") != APP_ID or body.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        token = f"ACCESS_TOKEN_{next(self._ids)}"
        self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") not in self.valid_tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if (failed := self._failure("send")) is not None:
            return failed
        body = await request.json()
        assert body["msgtype"] == "text" and len(body["text"]["content"].encode()) <= 2048
        self.sent.append((body["touser"], body["text"]["content"]))
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class WechatSender:
    """What WeChat's server sends to our endpoint, signed with the account's token (and encrypted with
    its EncodingAESKey in safe mode)."""

    def __init__(self, token: str, aes_key: str = "", app_id: str = APP_ID) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self._msg_ids = itertools.count(int(time.time()) * 1000)
        self._nonces = itertools.count(1)

    def signature(self, timestamp: str, nonce: str) -> str:
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce])).encode()).hexdigest()

    def query(self, timestamp: int | None = None, **extra: str) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = f"n{next(self._nonces)}"
        q = {"signature": self.signature(stamp, nonce), "timestamp": stamp, "nonce": nonce, **extra}
        if self.crypto is not None:
            q.update(encrypt_type="aes")
        return q

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    def post(self, xml: str, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        """The query and body of one POST carrying ``xml``."""
        q = self.query(timestamp)
        if self.crypto is None:
            return q, xml
        encrypted = self.crypto.encrypt_message(xml, q["nonce"], q["timestamp"])
        q["msg_signature"] = _tag(encrypted, "MsgSignature")
        return q, encrypted

    def read(self, body: str) -> str:
        """The plaintext XML of a passive reply (decrypted in safe mode)."""
        if self.crypto is None or body == "success":
            return body
        return str(
            self.crypto.decrypt_message(
                body, _tag(body, "MsgSignature"), _tag(body, "TimeStamp"), _tag(body, "Nonce")
            )
        )


def text_xml(openid: str, content: str, msg_id: int) -> str:
    return _xml(openid, "text", f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>")


def event_xml(openid: str, event: str, key: str = "") -> str:
    extra = f"<Event><![CDATA[{event}]]></Event>" + (f"<EventKey><![CDATA[{key}]]></EventKey>" if key else "")
    return _xml(openid, "event", extra)


def media_xml(openid: str, kind: str, msg_id: int) -> str:
    return _xml(openid, kind, f"<MediaId><![CDATA[media1]]></MediaId><MsgId>{msg_id}</MsgId>")


def _xml(openid: str, kind: str, extra: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{escape(openid)}]]>"
        f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
        f"{extra}</xml>"
    )


def _tag(xml: str, name: str) -> str:
    m = re.search(rf"<{name}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{name}>", xml, flags=re.S)
    assert m, f"no <{name}> in {xml[:200]}"
    return m.group(1)


def reply_content(xml: str) -> str:
    """The text of a passive reply's XML."""
    return _tag(xml, "Content")


@dataclass
class FakeWecomRobot(LocalServer):
    """A WeCom group robot's webhook (``/cgi-bin/webhook/send?key=…``) on 127.0.0.1."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    _failures: deque[Failure] = field(default_factory=deque)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self._send)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=robot-key-1"

    def fail(self, errcode: int = 0, http: int = 200) -> None:
        self._failures.append(Failure(errcode, http))

    async def _send(self, request: web.Request) -> web.Response:
        if request.query.get("key") != "robot-key-1":
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        if self._failures:
            f = self._failures.popleft()
            if f.http != 200:
                return web.Response(status=f.http, text="upstream error")
            return web.json_response({"errcode": f.errcode, "errmsg": "fake error"})
        body = await request.json()
        assert body["msgtype"] == "markdown" and len(body["markdown"]["content"].encode()) <= 4096
        self.posts.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    @property
    def texts(self) -> list[str]:
        return [p["markdown"]["content"] for p in self.posts]

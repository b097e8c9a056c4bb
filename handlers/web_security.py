"""Web safety: JSON errors, body limits, input checks, the rate-limit check (the limits: ``bot.limits``)
and security headers.

``json_errors`` is the one error layer of the whole web app: under ``/api/`` and ``/console/api/`` every
answer is JSON (an error is ``{"error", "message"}``), bad input anywhere is a 4xx and never a 500, and
an unexpected exception is logged and answered with a JSON 500 that shows nothing of the internals.
Input is checked in one place: ``read_json`` refuses bodies that are badly encoded, too deep or hold
numbers too long to convert, and strings no database column can hold (lone surrogates, NUL bytes);
the middleware checks the same of path parts, query values and form fields, and path ids against
``MAX_ID``.

Every page sends a Content-Security-Policy without inline scripts or styles (the pages load their
JavaScript and CSS from ``/static``). The widget page (``/widget``) may be framed by any http(s) site;
the chat page only by its own origin; the staff console by nobody.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from bot.limits import RateLimiter, check_all
from bot.protocol import MAX_ID

log = logging.getLogger(__name__)

CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
WIDGET_PATHS = ("/widget",)
API_PREFIXES = ("/api/", "/console/api/")
JSON_TYPE = "application/json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_DEPTH = 20  # the API's bodies are two levels deep; deeper nesting is refused (json.loads recurses)
# Lone surrogates cannot be encoded as UTF-8 (SQLite and PostgreSQL refuse them); PostgreSQL refuses NUL.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answered as JSON: ``{"error": code, "message": text}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The JSON response for this error."""
        return json_error(self.status, self.code, self.message, self.headers)


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error body with a machine-readable code and a message for people."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers, dumps=dumps)


def dumps(data: Any) -> str:
    """JSON with Chinese text kept readable."""
    return json.dumps(data, ensure_ascii=False)


def ok(data: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON success response."""
    return web.json_response(data, status=status, dumps=dumps)


async def read_json(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object; 413 over ``max_bytes``, 400 for bad JSON or a non-object."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    except (HttpProcessingError, RequestPayloadError):  # e.g. "gzip" on a body that is not compressed
        raise ApiError(
            400, "bad_encoding", "请求体的编码无法解读（request body does not match its Content-Encoding）"
        ) from None
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, "bad_json", f"请求体不是合法的 JSON（request body is not valid JSON: {exc}）"
        ) from None
    except (RecursionError, ValueError):  # nested past the recursion limit; a number of 4,300+ digits
        raise ApiError(
            400, "bad_json", "请求体嵌套太深或数字太长（request body nested too deep or number too long）"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "请求体必须是 JSON 对象（request body must be a JSON object）")
    check_json(data)
    return data


def check_json(data: Any) -> None:
    """Refuse (400) a JSON value nested deeper than ``MAX_DEPTH`` or holding a string (key or value)
    that no database column can store; walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(400, "bad_json", f"请求体嵌套超过 {MAX_DEPTH} 层（request body nested too deep）")
        if isinstance(value, str):
            check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def check_text(value: str, what: str = "文本") -> str:
    """``value`` when it can be stored: 400 ``bad_text`` for a NUL byte or a lone surrogate."""
    if UNSTORABLE.search(value):
        raise ApiError(
            400,
            "bad_text",
            f"{what}含有无法保存的字符（NUL 或不成对的代理字符）（text holds a NUL byte or a lone surrogate）",
        )
    return value


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, "body_too_large", f"请求体超过 {max_bytes} 字节（request body larger than {max_bytes} bytes）"
    )


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    """One field of a JSON body, checked for presence and type (booleans are not numbers)."""
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "missing_field", f"缺少字段 {name}（missing field {name!r}）")
        return None
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = "/".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ApiError(400, "wrong_type", f"字段 {name} 应为 {names}（field {name!r} must be {names}）")
    return value


_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", float: "number", list: "array", dict: "object"}


async def check_rate(limiter: RateLimiter, key: str, what: str = "requests") -> None:
    """Raise a 429 ApiError with ``Retry-After`` when ``key`` is over its limit (``bot.limits``)."""
    await check_rates([(limiter, key, what)])


async def check_rates(checks: Sequence[tuple[RateLimiter, str, str]]) -> None:
    """``check_rate`` of each ``(limiter, key, what)``, all taken at once (one statement on PostgreSQL);
    the first refused raises."""
    verdicts = await check_all([(limiter, key) for limiter, key, _ in checks])
    for (_, _, what), verdict in zip(checks, verdicts, strict=True):
        if not verdict.allowed:
            seconds = max(1, math.ceil(verdict.wait))
            raise ApiError(
                429,
                "rate_limited",
                f"请求太频繁，请 {seconds} 秒后再试（too many {what}; retry in {seconds} s）",
                {"Retry-After": str(seconds)},
            )


def client_address(request: web.Request) -> str:
    """The peer address (proxies' X-Forwarded-For is not trusted; see docs/web.md)."""
    return request.remote or "unknown"


def is_api(request: web.Request) -> bool:
    """Whether ``request`` is for the JSON API (the residents' or the console's)."""
    return request.path.startswith(API_PREFIXES)


async def check_request(request: web.Request) -> None:
    """The path parts, query values and form fields of any request: no NUL byte or lone surrogate
    (400), and a path part its route declares as digits (``{ticket_id:\\d+}``) is an id no larger than
    ``MAX_ID`` (404: no row can have it). A form read here is cached for the handler."""
    check_texts(request.match_info.values(), "地址")
    check_texts(request.query.keys(), "查询参数")
    check_texts(request.query.values(), "查询参数")
    if request.method == "POST" and request.content_type in FORM_TYPES:
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError, RequestPayloadError):  # not UTF-8, a broken multipart
            raise ApiError(400, "bad_form", "表单无法解读（form could not be decoded）") from None
        check_texts(form.keys(), "表单")
        check_texts((v for v in form.values() if isinstance(v, str)), "表单")
    info = request.match_info.route.resource.get_info() if request.match_info.route.resource else {}
    pattern = getattr(info.get("pattern"), "pattern", "")
    for name, value in request.match_info.items():
        if f"(?P<{name}>\\d" in pattern and (len(value) > 10 or int(value) > MAX_ID):
            raise ApiError(404, "not_found", f"没有编号为 {value[:20]} 的记录（no such id）")


def check_texts(values: Iterable[str], what: str) -> None:
    for value in values:
        check_text(value, what)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The web app's error layer: API errors (and 404/405/413 under the API prefixes) as JSON, bad
    input as a 4xx, anything unexpected as a logged JSON 500 under the API prefixes."""
    try:
        await check_request(request)
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not is_api(request) or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, code, f"{exc.reason}（{request.method} {request.path}）", headers)
    except (HttpProcessingError, RequestPayloadError):  # a body aiohttp could not decode (a console form)
        return json_error(400, "bad_encoding", "请求体无法解读（request body could not be decoded）")
    except Exception:
        if not is_api(request):
            raise  # aiohttp logs it and answers a plain 500 page
        log.exception("web request failed", extra={"method": request.method, "route": _route(request)})
        return json_error(500, "internal_error", "服务器内部错误，请稍后再试（internal server error）")


def _route(request: web.Request) -> str:
    """The route's pattern (``/api/conversations/{token}``), never the path: paths carry tokens."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "?"


_HTTP_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: CSP, nosniff, referrer and framing policy on every response."""
    h = response.headers
    path = request.path
    if path in WIDGET_PATHS:
        # The widget page is meant to be framed by the sites that embed it.
        h["Content-Security-Policy"] = f"{CSP_BASE}; frame-ancestors http: https:"
    elif path.startswith("/console"):
        h["Content-Security-Policy"] = f"{CSP_BASE}; frame-ancestors 'none'"
        h["X-Frame-Options"] = "DENY"
        h.setdefault("Cache-Control", "no-store")
    else:
        h["Content-Security-Policy"] = f"{CSP_BASE}; frame-ancestors 'self'"
        h["X-Frame-Options"] = "SAMEORIGIN"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if path.startswith(API_PREFIXES):
        h.setdefault("Cache-Control", "no-store")

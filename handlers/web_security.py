"""Web safety: JSON errors, body limits, the rate-limit check (the limits: ``bot.limits``) and security
headers.

Every page sends a Content-Security-Policy without inline scripts or styles (the pages load their
JavaScript and CSS from ``/static``). The widget page (``/widget``) may be framed by any http(s) site;
the chat page only by its own origin; the staff console by nobody.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.limits import RateLimiter

CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
WIDGET_PATHS = ("/widget",)
API_PREFIXES = ("/api/", "/console/api/")
JSON_TYPE = "application/json"

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
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, "bad_json", f"请求体不是合法的 JSON（request body is not valid JSON: {exc}）"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "请求体必须是 JSON 对象（request body must be a JSON object）")
    return data


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
    wait = await limiter.hit(key)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"请求太频繁，请 {seconds} 秒后再试（too many {what}; retry in {seconds} s）",
            {"Retry-After": str(seconds)},
        )


def client_address(request: web.Request) -> str:
    """The peer address (proxies' X-Forwarded-For is not trusted; see docs/web.md)."""
    return request.remote or "unknown"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer API errors (and 404/405/413 under the API prefixes) as JSON."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not request.path.startswith(API_PREFIXES) or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, code, f"{exc.reason}（{request.method} {request.path}）", headers)


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

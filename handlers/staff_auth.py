"""Staff console login: session cookies, the guard on every /console URL, CSRF, login and logout.

The session cookie (``policybot_staff``) is HttpOnly, SameSite=Strict, limited to ``/console``, and
Secure when the site is served over https (``[web] public_url`` or the request). Every state-changing
request must carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) and, when
the browser sends an ``Origin`` header, come from this site. The login form has its own double-submit
token (cookie ``policybot_login`` plus a hidden field).
"""

from __future__ import annotations

import hmac
import math
import secrets

from aiohttp import web

from bot.limits import LoginLimits
from bot.staff_accounts import ROLE_WORDS, StaffLogin, authenticate, close_session, open_session, session_for
from handlers.staff_html import Markup, button, field_row, join, label, notice, page, redirect, tag, void
from handlers.web_security import ApiError, Handler, check_rate, client_address, json_error
from handlers.web_state import LOGIN_LIMITER, WEB_SETTINGS, core

COOKIE = "policybot_staff"
LOGIN_COOKIE = "policybot_login"
LOGIN_PATH = "/console/login"
STAFF = web.RequestKey("policybot_staff_login", StaffLogin)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

routes = web.RouteTableDef()


class RoleRequired(Exception):
    """The logged-in member's role does not allow this (answered 403 by the guard)."""

    def __init__(self, role: str, what: str) -> None:
        super().__init__(what)
        self.role, self.what = role, what


def staff(request: web.Request) -> StaffLogin:
    """The logged-in staff member (set by the guard)."""
    return request[STAFF]


def require(request: web.Request, role: str, what: str) -> StaffLogin:
    """The logged-in member when their role includes ``role``; otherwise a 403 naming ``what``."""
    login = staff(request)
    if not login.can(role):
        raise RoleRequired(role, what)
    return login


def _secret(request: web.Request) -> str:
    return request.app[WEB_SETTINGS].session_secret


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[WEB_SETTINGS].public_url.startswith("https://")


def session_cookie(request: web.Request) -> str:
    """The session cookie's value, or "" when it cannot be a token of ours (``token_urlsafe`` text):
    aiohttp keeps bytes that are not UTF-8 as lone surrogates, which cannot even be hashed."""
    value = request.cookies.get(COOKIE, "")
    return value if value.isascii() and value.isprintable() else ""


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/console/api/")


def forbidden(request: web.Request, reason: str) -> web.StreamResponse:
    """403: JSON under /console/api, otherwise a page with the login form."""
    if _is_api(request):
        return json_error(403, "forbidden", reason)
    response = login_page(request, reason, status=403)
    return response


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a staff session on /console (except the login form) and CSRF on state changes."""
    path = request.path
    if not (path == "/console" or path.startswith("/console/")) or path == LOGIN_PATH:
        return await handler(request)
    login = await session_for(core(request).services.sessions, session_cookie(request), _secret(request))
    if login is None:
        return forbidden(request, "请先登录工作台（staff login required）")
    if request.method not in SAFE_METHODS:
        problem = await csrf_problem(request, login)
        if problem:
            return forbidden(request, problem)
    request[STAFF] = login
    try:
        return await handler(request)
    except RoleRequired as exc:
        message = f"只有{ROLE_WORDS[exc.role]}及以上角色可以{exc.what}（requires role {exc.role}）"
        if _is_api(request):
            return json_error(403, "role_required", message)
        return page("没有权限", notice(message, "error"), login, status=403)


async def csrf_problem(request: web.Request, login: StaffLogin) -> str:
    """Why a state-changing request fails the CSRF checks, or "" when it passes."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
        return "请求来源不是本站（cross-site request refused）"
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf", "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent.encode(), login.csrf_token.encode()):
        return "页面已过期或缺少安全校验码，请刷新后重试（CSRF token missing or wrong）"
    return ""


def login_page(request: web.Request, error: str = "", status: int = 200, name: str = "") -> web.Response:
    """The login form, with a fresh double-submit token in a cookie."""
    token = secrets.token_urlsafe(24)
    form = tag(
        "form",
        join(
            [
                void("input", type="hidden", name="csrf", value=token),
                field_row(
                    label("name", "账号"),
                    void("input", id="name", name="name", value=name, required=True, autocomplete="username"),
                ),
                field_row(
                    label("password", "密码"),
                    void(
                        "input",
                        id="password",
                        name="password",
                        type="password",
                        required=True,
                        autocomplete="current-password",
                    ),
                ),
                button("登录", class_="btn btn-primary"),
            ]
        ),
        method="post",
        action=LOGIN_PATH,
        class_="login",
    )
    hint = tag("p", "账号由管理员用命令 policybot staff add 姓名 创建。", class_="hint")
    content = join([notice(error, "error") if error else Markup(""), form, hint])
    response = page("工作台登录", content, status=status)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        max_age=3600,
    )
    return response


@routes.get(LOGIN_PATH)
async def login_form(request: web.Request) -> web.Response:
    """GET /console/login."""
    return login_page(request)


@routes.post(LOGIN_PATH)
async def login(request: web.Request) -> web.StreamResponse:
    """POST /console/login: check the double-submit token and the password, start a session."""
    limits, address = request.app[LOGIN_LIMITER], client_address(request)
    try:
        await check_rate(limits.attempts, address, "login attempts")
    except ApiError as exc:
        return login_page(request, exc.message, status=429)
    form = await request.post()
    sent, cookie = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return login_page(request, "登录页面已过期，请重新输入（login form expired）", status=403)
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    pair = f"{address}\n{name.casefold()}"
    wait = await _login_refused(limits, address, pair)
    if wait is not None:
        return _too_many(request, wait, name)
    # The attempt counts as a failure before its password is checked, and is given back when the
    # password is right: attempts made at once each take their own token, so together they never pass
    # a limit that one at a time would reach (checked first and counted after, all would).
    pair_take = await limits.account_failures.check(pair)
    if not pair_take.allowed:
        return _too_many(request, pair_take.wait, name)
    address_take = await limits.address_failures.check(address)
    sessions = core(request).services.sessions
    account = await authenticate(sessions, name, password) if name and password else None
    if account is None:
        return login_page(request, "账号或密码不正确", status=401, name=name)
    await limits.account_failures.give_back(pair)
    if address_take.allowed:
        await limits.address_failures.give_back(address)
    token, _ = await open_session(sessions, account, _secret(request))
    response = redirect("/console")
    response.set_cookie(
        COOKIE, token, path="/console", httponly=True, samesite="Strict", secure=_secure(request)
    )
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


async def _login_refused(limits: LoginLimits, address: str, pair: str) -> float | None:
    """Seconds to wait when this attempt is refused before its password is checked, else None.

    Only failures count. Ten failures for one account from one address refuse that account from that
    address (the right password too, or guessing would go on: a success would tell), for up to 15
    minutes; other addresses are not affected, so an attacker elsewhere cannot lock the member out.
    Thirty failures from one address (any accounts) refuse the accounts that failed from there
    lately, but an account with no recent failure from that address is still checked: a colleague
    behind the same address (a proxy, an office's NAT) logs in with the right password."""
    pair_wait = await limits.account_failures.wait(pair)
    if pair_wait is not None:
        return pair_wait
    address_wait = await limits.address_failures.wait(address)
    if (
        address_wait is not None
        and await limits.account_failures.level(pair) < limits.account_failures.capacity
    ):
        return address_wait
    return None


def _too_many(request: web.Request, wait: float, name: str) -> web.Response:
    seconds = max(1, math.ceil(wait))
    response = login_page(
        request,
        f"登录失败次数过多，请 {seconds} 秒后再试（too many failed logins; retry in {seconds} s）",
        status=429,
        name=name,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@routes.post("/console/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """POST /console/logout (guarded: needs the session and its CSRF token)."""
    await close_session(core(request).services.sessions, request.cookies.get(COOKIE, ""), _secret(request))
    response = redirect(LOGIN_PATH)
    response.del_cookie(COOKIE, path="/console")
    return response

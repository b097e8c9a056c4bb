"""The console's account administration (admins only): add accounts, change office and role, disable or
enable, reset passwords. The same as ``policybot staff ...``, as a page and as JSON under /console/api."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.staff_accounts import (
    ROLE_WORDS,
    ROLES,
    StaffAccountError,
    check_office,
    create_account,
    list_accounts,
    reset_password,
    set_active,
    update_account,
)
from handlers.staff_auth import require
from handlers.staff_html import (
    Markup,
    button,
    field_row,
    join,
    label,
    notice,
    page,
    post_form,
    redirect,
    select_box,
    table,
    tag,
    url,
    void,
)
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS, core
from knowledge.models import StaffAccount

WHAT = "管理账号"
DONE_WORDS = {
    "added": "账号已创建。",
    "updated": "已保存。",
    "disabled": "账号已停用，它的登录已全部失效。",
    "enabled": "账号已重新启用。",
    "password": "密码已重置，该账号需要用新密码重新登录。",
}

routes = web.RouteTableDef()


def account_json(a: StaffAccount) -> dict[str, Any]:
    """An account as the API shows it (never the password hash)."""
    return {"name": a.name, "office": a.office, "role": a.role, "active": a.active}


# -- page -----------------------------------------------------------------------------------------------
@routes.get("/console/admin")
async def admin_page(request: web.Request) -> web.Response:
    """Every account with its office, role and state, and the forms to change them."""
    login = require(request, "admin", WHAT)
    done = request.query.get("done", "")
    error = request.query.get("error", "")[:300]
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    if error:
        flash = notice(error, "error")
    offices = core(request).settings.staff.offices
    rows = []
    for a in await list_accounts(core(request).services.sessions):
        base = "/console/admin/" + a.name
        change = post_form(
            f"{base}/update",
            login,
            join(
                [
                    select_box("office", [(o, o) for o in offices], a.office, aria_label=f"{a.name} 的科室"),
                    select_box(
                        "role", [(r, ROLE_WORDS[r]) for r in ROLES], a.role, aria_label=f"{a.name} 的角色"
                    ),
                    button("保存", class_="btn btn-small"),
                ]
            ),
            class_="inline",
        )
        toggle = post_form(
            f"{base}/{'disable' if a.active else 'enable'}",
            login,
            button(
                "停用" if a.active else "启用", class_="btn btn-small" + (" btn-danger" if a.active else "")
            ),
            class_="inline",
        )
        reset = post_form(
            f"{base}/password",
            login,
            join(
                [
                    void(
                        "input",
                        type="password",
                        name="password",
                        minlength="8",
                        required=True,
                        autocomplete="new-password",
                        aria_label=f"{a.name} 的新密码",
                        placeholder="新密码",
                    ),
                    button("重置密码", class_="btn btn-small"),
                ]
            ),
            class_="inline",
        )
        rows.append([a.name, "启用" if a.active else "已停用", join([change, toggle, reset])])
    add = post_form(
        "/console/admin",
        login,
        join(
            [
                field_row(
                    label("new-name", "账号"), void("input", id="new-name", name="name", required=True)
                ),
                field_row(
                    label("new-office", "科室"),
                    select_box("office", [(o, o) for o in offices], offices[0], id="new-office"),
                ),
                field_row(
                    label("new-role", "角色"),
                    select_box("role", [(r, ROLE_WORDS[r]) for r in ROLES], "agent", id="new-role"),
                ),
                field_row(
                    label("new-password", "初始密码（至少 8 位）"),
                    void(
                        "input",
                        id="new-password",
                        name="password",
                        type="password",
                        minlength="8",
                        required=True,
                        autocomplete="new-password",
                    ),
                ),
                button("创建账号", class_="btn btn-primary"),
            ]
        ),
        class_="filters",
    )
    roles = tag(
        "p",
        "坐席处理工单；编辑还可审核知识、管理常用答复、把知识缺口变成知识；管理员还可管理账号、导出未脱敏的记录。",
        class_="hint",
    )
    content = join(
        [
            flash,
            roles,
            table(["账号", "状态", "科室 · 角色 · 操作"], rows, class_="accounts"),
            tag("h2", "新建账号"),
            add,
        ]
    )
    return page("账号管理", content, login, "admin")


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v.strip() if k != "password" else v for k, v in form.items() if isinstance(v, str)}


def _back(done: str = "", error: str = "") -> web.Response:
    return redirect(url("/console/admin", done=done, error=error))


@routes.post("/console/admin")
async def admin_add(request: web.Request) -> web.Response:
    """Create an account from the form."""
    require(request, "admin", WHAT)
    form = await _form(request)
    try:
        await _create(
            request,
            form.get("name", ""),
            form.get("password", ""),
            form.get("office", ""),
            form.get("role", ""),
        )
    except StaffAccountError as exc:
        return _back(error=str(exc))
    return _back("added")


@routes.post(r"/console/admin/{name}/{action:update|disable|enable|password}")
async def admin_change(request: web.Request) -> web.Response:
    """Change one account from the page's forms."""
    login = require(request, "admin", WHAT)
    name, action = request.match_info["name"], request.match_info["action"]
    form = await _form(request)
    try:
        await _change(request, login.name, name, action, form)
    except StaffAccountError as exc:
        return _back(error=str(exc))
    return _back({"update": "updated", "disable": "disabled", "enable": "enabled"}.get(action, action))


async def _create(request: web.Request, name: str, password: str, office: str, role: str) -> StaffAccount:
    app = core(request)
    check_office(office, app.settings.staff.offices)
    return await create_account(app.services.sessions, name, password, office=office, role=role or "agent")


async def _change(
    request: web.Request, me: str, name: str, action: str, data: dict[str, Any]
) -> StaffAccount:
    """update (office, role), disable, enable or password; an admin cannot disable or demote themselves."""
    app = core(request)
    sessions = app.services.sessions
    if action == "disable":
        if name == me:
            raise StaffAccountError("不能停用自己的账号（cannot disable your own account）")
        return await set_active(sessions, name, False)
    if action == "enable":
        return await set_active(sessions, name, True)
    if action == "password":
        return await reset_password(sessions, name, str(data.get("password", "")))
    office, role = data.get("office") or None, data.get("role") or None
    if office is not None:
        check_office(str(office), app.settings.staff.offices)
    if name == me and role not in (None, "admin"):
        raise StaffAccountError("不能取消自己的管理员角色（cannot demote yourself）")
    return await update_account(sessions, name, office=office, role=role)


# -- JSON API -------------------------------------------------------------------------------------------
@routes.get("/console/api/accounts")
async def api_accounts(request: web.Request) -> web.Response:
    """Every account: name, office, role, active."""
    require(request, "admin", WHAT)
    return ok({"accounts": [account_json(a) for a in await list_accounts(core(request).services.sessions)]})


@routes.post("/console/api/accounts")
async def api_add(request: web.Request) -> web.Response:
    """``{"name", "password", "office", "role"}``: a new account."""
    require(request, "admin", WHAT)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    try:
        account = await _create(
            request,
            field(data, "name", str),
            field(data, "password", str),
            field(data, "office", str, required=False) or core(request).settings.staff.default_office,
            field(data, "role", str, required=False) or "agent",
        )
    except StaffAccountError as exc:
        raise ApiError(400, "bad_account", str(exc)) from None
    return ok({"account": account_json(account)}, status=201)


@routes.post(r"/console/api/accounts/{name}/{action:update|disable|enable|password}")
async def api_change(request: web.Request) -> web.Response:
    """update ``{"office"?, "role"?}``, disable, enable, or password ``{"password"}``."""
    login = require(request, "admin", WHAT)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    for key in ("office", "role", "password"):
        field(data, key, str, required=False)
    try:
        account = await _change(
            request, login.name, request.match_info["name"], request.match_info["action"], data
        )
    except StaffAccountError as exc:
        status = 404 if str(exc).startswith("no staff account") else 400
        raise ApiError(status, "bad_account", str(exc)) from None
    return ok({"account": account_json(account)})

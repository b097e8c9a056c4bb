"""Canned replies in the console: listed for everyone (and offered on the ticket page), managed by
editors; the JSON API for the same."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.canned import CannedError, CannedReplies
from handlers.staff_auth import require, staff
from handlers.staff_html import (
    Markup,
    button,
    field_row,
    join,
    label,
    notice,
    page,
    post_form,
    pre,
    redirect,
    tag,
    url,
    void,
)
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS, core
from knowledge.models import CannedReply

WHAT = "管理常用答复"
DONE_WORDS = {"saved": "已保存。", "deleted": "已删除。"}

routes = web.RouteTableDef()


def canned(request: web.Request) -> CannedReplies:
    return CannedReplies(core(request).services.sessions)


def canned_json(r: CannedReply) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "text": r.text, "updated_by": r.updated_by}


def canned_picker(replies: list[CannedReply]) -> Markup:
    """The ticket page's 插入常用答复 list (console.js puts the chosen text in the reply box)."""
    if not replies:
        return Markup("")
    options = join(
        [tag("option", "插入常用答复…", value=""), *(tag("option", r.title, value=r.text) for r in replies)]
    )
    return field_row(label("canned-select", "常用答复"), tag("select", options, id="canned-select"))


@routes.get("/console/canned")
async def canned_page(request: web.Request) -> web.Response:
    """Every canned reply; editors edit, delete and add."""
    login = staff(request)
    done, error = request.query.get("done", ""), request.query.get("error", "")[:300]
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    if error:
        flash = notice(error, "error")
    editor = login.can("editor")
    items = []
    for r in await canned(request).all():
        if editor:
            body = join(
                [
                    post_form(
                        f"/console/canned/{r.id}",
                        login,
                        join(
                            [
                                field_row(
                                    label(f"t-{r.id}", "标题"),
                                    void("input", id=f"t-{r.id}", name="title", value=r.title, required=True),
                                ),
                                field_row(
                                    label(f"x-{r.id}", "内容"),
                                    tag(
                                        "textarea",
                                        r.text,
                                        id=f"x-{r.id}",
                                        name="text",
                                        rows="3",
                                        required=True,
                                    ),
                                ),
                                button("保存", class_="btn btn-small"),
                            ]
                        ),
                    ),
                    post_form(
                        f"/console/canned/{r.id}/delete",
                        login,
                        button("删除", class_="btn btn-small btn-danger"),
                        class_="inline",
                    ),
                ]
            )
        else:
            body = join([tag("h3", r.title), pre(r.text)])
        items.append(tag("article", body, class_="canned"))
    parts = [flash, tag("p", "处理工单时可在答复框上方选择插入。", class_="hint"), join(items)]
    if editor:
        parts += [
            tag("h2", "新增常用答复"),
            post_form(
                "/console/canned",
                login,
                join(
                    [
                        field_row(
                            label("new-title", "标题"),
                            void("input", id="new-title", name="title", required=True),
                        ),
                        field_row(
                            label("new-text", "内容"),
                            tag("textarea", "", id="new-text", name="text", rows="3", required=True),
                        ),
                        button("新增", class_="btn btn-primary"),
                    ]
                ),
            ),
        ]
    elif not items:
        parts.append(tag("p", "（还没有常用答复，可请编辑添加）", class_="hint"))
    return page("常用答复", join(parts), login, "canned")


@routes.post("/console/canned")
@routes.post(r"/console/canned/{reply_id:\d{1,9}}")
@routes.post(r"/console/canned/{reply_id:\d{1,9}}/{action:delete}")
async def canned_save(request: web.Request) -> web.Response:
    """Add (``/console/canned``), change (``/console/canned/{id}``) or delete (``…/{id}/delete``)."""
    login = require(request, "editor", WHAT)
    raw, delete = request.match_info.get("reply_id", ""), "action" in request.match_info
    form = await request.post()
    try:
        if delete:
            await canned(request).delete(int(raw))
        else:
            await canned(request).save(
                str(form.get("title", "")), str(form.get("text", "")), login.name, int(raw) if raw else None
            )
    except CannedError as exc:
        return redirect(url("/console/canned", error=str(exc)))
    return redirect(url("/console/canned", done="deleted" if delete else "saved"))


@routes.get("/console/api/canned")
async def api_canned(request: web.Request) -> web.Response:
    """Every canned reply."""
    return ok({"canned": [canned_json(r) for r in await canned(request).all()]})


@routes.post("/console/api/canned")
@routes.post(r"/console/api/canned/{reply_id:\d{1,9}}")
@routes.post(r"/console/api/canned/{reply_id:\d{1,9}}/{action:delete}")
async def api_canned_save(request: web.Request) -> web.Response:
    """``{"title", "text"}``: add, or change ``/{id}``; ``/{id}/delete``: delete."""
    login = require(request, "editor", WHAT)
    raw, delete = request.match_info.get("reply_id", ""), "action" in request.match_info
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    try:
        if delete:
            await canned(request).delete(int(raw))
            return ok({"deleted": int(raw)})
        row = await canned(request).save(
            field(data, "title", str), field(data, "text", str), login.name, int(raw) if raw else None
        )
    except CannedError as exc:
        raise ApiError(404 if str(exc).startswith("没有") else 400, "bad_canned", str(exc)) from None
    return ok({"canned": canned_json(row)}, status=200 if raw else 201)

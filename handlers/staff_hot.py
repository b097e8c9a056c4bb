"""热点问题 in the console (``/console/hot``): what the welcome offers now and why (pinned, asked N
times in the last ``[desk] hot_days`` days, shipped default); editors pin and unpin entries. The JSON
API (``/console/api/hot``) does the same."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.hot_questions import HotQuestion, HotQuestions, PinError
from handlers.staff_auth import require, staff
from handlers.staff_html import (
    Markup,
    button,
    field_row,
    join,
    label,
    link,
    notice,
    page,
    post_form,
    redirect,
    table,
    tag,
    url,
    void,
)
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS, core

WHAT = "置顶热点问题"
DONE_WORDS = {"pinned": "已置顶。", "unpinned": "已取消置顶。"}
SOURCE_WORDS = {"pinned": "置顶", "asked": "近期常问", "default": "默认"}

routes = web.RouteTableDef()


def hot(request: web.Request) -> HotQuestions:
    found = core(request).conversations.hot
    if found is None:  # pragma: no cover - App.create always sets it
        raise web.HTTPServiceUnavailable()
    return found


def hot_json(h: HotQuestion) -> dict[str, Any]:
    return {"entry_id": h.entry_id, "label": h.label, "source": h.source, "asked": h.asked}


@routes.get("/console/hot")
async def hot_page(request: web.Request) -> web.Response:
    """The hot questions as the welcome shows them; editors pin (by entry id) and unpin."""
    login = staff(request)
    done, error = request.query.get("done", ""), request.query.get("error", "")[:300]
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    if error:
        flash = notice(error, "error")
    editor = login.can("editor")
    days = core(request).settings.desk.hot_days
    rows = []
    for h in await hot(request).top():
        why = SOURCE_WORDS[h.source] + (f"（{h.asked} 次）" if h.source == "asked" else "")
        action: object = ""
        if editor and h.source == "pinned":
            action = post_form(
                url("/console/hot/unpin", entry=h.entry_id),
                login,
                button("取消置顶", class_="btn btn-small"),
                class_="inline",
            )
        elif editor:
            action = post_form(
                url("/console/hot/pin", entry=h.entry_id),
                login,
                button("置顶", class_="btn btn-small"),
                class_="inline",
            )
        rows.append(
            [link("/console/knowledge/e/" + quote(h.entry_id, safe=""), h.label), h.entry_id, why, action]
        )
    parts = [
        flash,
        tag(
            "p",
            f"欢迎语下方显示的热点问题：先是置顶的，再是近 {days} 天被问得最多且已回答的问题，"
            "没有记录时用默认问题补足。",
            class_="hint",
        ),
        table(["问题", "知识编号", "来源", ""], rows)
        if rows
        else tag("p", "（暂无热点问题）", class_="hint"),
    ]
    if editor:
        parts += [
            tag("h2", "置顶一条知识"),
            post_form(
                "/console/hot/pin",
                login,
                join(
                    [
                        field_row(
                            label("pin-entry", "知识编号"),
                            void("input", id="pin-entry", name="entry", required=True, maxlength="200"),
                        ),
                        button("置顶", class_="btn btn-primary"),
                    ]
                ),
            ),
        ]
    return page("热点问题", join(parts), login, "hot")


@routes.post(r"/console/hot/{action:pin|unpin}")
async def hot_save(request: web.Request) -> web.Response:
    """Pin or unpin the entry named by ``entry`` (query or form)."""
    login = require(request, "editor", WHAT)
    form = await request.post()
    entry_id = str(form.get("entry") or request.query.get("entry", "")).strip()
    if request.match_info["action"] == "unpin":
        if not await hot(request).unpin(entry_id):
            return redirect(url("/console/hot", error=f"「{entry_id[:80]}」没有置顶"))
        return redirect(url("/console/hot", done="unpinned"))
    try:
        await hot(request).pin(entry_id, login.name)
    except PinError as exc:
        return redirect(url("/console/hot", error=str(exc)))
    return redirect(url("/console/hot", done="pinned"))


@routes.get("/console/api/hot")
async def api_hot(request: web.Request) -> web.Response:
    """The hot questions with their sources, and the pins."""
    pins = [{"entry_id": p.entry_id, "pinned_by": p.pinned_by} for p in await hot(request).pins()]
    return ok({"questions": [hot_json(h) for h in await hot(request).top()], "pinned": pins})


@routes.post(r"/console/api/hot/{action:pin|unpin}")
async def api_hot_save(request: web.Request) -> web.Response:
    """``{"entry_id"}``: pin (400 when it cannot be offered) or unpin (404 when not pinned)."""
    login = require(request, "editor", WHAT)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    entry_id = field(data, "entry_id", str)
    if request.match_info["action"] == "unpin":
        if not await hot(request).unpin(entry_id):
            raise ApiError(404, "not_pinned", f"「{entry_id[:80]}」没有置顶")
        return ok({"unpinned": entry_id})
    try:
        await hot(request).pin(entry_id, login.name)
    except PinError as exc:
        raise ApiError(400, "bad_pin", str(exc)) from None
    return ok({"pinned": entry_id}, status=201)

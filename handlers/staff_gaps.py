"""The console's knowledge gaps: questions the bot did not answer outright, grouped by need (``bot.gaps``),
each with its count, examples, channels and nearest entry; an editor turns a cluster into a new FAQ or
into other phrasings of the nearest entry in one step. Questions are shown masked of personal data."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import privacy
from bot.gaps import Gap, fill_nearest, find_gaps
from bot.knowledge_review import KnowledgeReview, PersonalDataError, ReviewError
from bot.staff_accounts import StaffLogin
from handlers.staff_auth import require, staff
from handlers.staff_console import CHANNEL_WORDS
from handlers.staff_html import (
    Markup,
    button,
    entry_href,
    field_row,
    join,
    label,
    link,
    notice,
    page,
    post_form,
    redirect,
    tag,
    url,
    void,
)
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS, core

SHOWN = 50
WHAT = "把知识缺口变成知识"
DONE_WORDS = {
    "created": "已新建条目并发布，机器人立即可用。",
    "added": "已加为该条目的其他问法，机器人立即可用。",
}

routes = web.RouteTableDef()


def _days(request: web.Request) -> int:
    raw = request.query.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 3660:
        raise ApiError(400, "bad_days", "days 应为 1-3660 的整数")
    return int(raw)


async def gaps_for(request: web.Request, days: int) -> list[Gap]:
    """The clusters of the last ``days`` days, the first ones with a nearest entry."""
    app = core(request)
    gaps = await find_gaps(app.services.sessions, app.services.kb.lex, days=days)
    fill_nearest(gaps, app.services.kb.matcher, limit=SHOWN)
    return gaps


def gap_json(g: Gap) -> dict[str, Any]:
    """A cluster as the API shows it (questions masked)."""
    return {
        "label": privacy.mask(g.label),
        "count": g.count,
        "questions": [privacy.mask(q) for q in g.questions],
        "counts": g.counts,
        "channels": g.channels,
        "nearest_entry_id": g.nearest_entry_id,
    }


@routes.get("/console/gaps")
async def gaps_page(request: web.Request) -> web.Response:
    """The clusters, largest first, with the editors' one-step actions."""
    login = staff(request)
    try:
        days = _days(request)
    except ApiError as exc:
        return page("知识缺口", notice(exc.message, "error"), login, "gaps", status=400)
    done, error = request.query.get("done", ""), request.query.get("error", "")[:300]
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    if error:
        flash = notice(error, "error")
    gaps = (await gaps_for(request, days))[:SHOWN]
    entries = await core(request).services.kb.get_many(
        [g.nearest_entry_id for g in gaps if g.nearest_entry_id]
    )
    picker = tag(
        "form",
        join(
            [
                label("days", "最近天数"),
                void("input", id="days", name="days", type="number", min="1", max="3660", value=str(days)),
                button("查看", class_="btn btn-small"),
            ]
        ),
        method="get",
        action="/console/gaps",
        class_="inline",
    )
    intro = tag(
        "p",
        f"机器人没有直接回答（只给了候选、转了人工或用户点了“没解决”）的问题，按同一需求的不同问法归为一组。"
        f"共 {len(gaps)} 组（最多显示 {SHOWN} 组）。问题中的个人信息已遮盖。",
        class_="hint",
    )
    cards = [_card(i, g, entries, login) for i, g in enumerate(gaps)]
    content = join(
        [flash, picker, intro, join(cards) if cards else notice("这段时间没有未直接回答的问题。", "ok")]
    )
    return page("知识缺口", content, login, "gaps")


def _card(i: int, g: Gap, entries: dict, login: StaffLogin) -> Markup:
    channels = "，".join(f"{CHANNEL_WORDS.get(c, c)} {n}" for c, n in g.channels.items())
    near = entries.get(g.nearest_entry_id) if g.nearest_entry_id else None
    near_text = (near.title or near.question) if near else ""
    examples = join(
        tag("li", f"{privacy.mask(q)}" + (f"（{n} 次）" if n > 1 else ""))
        for q, n in zip(g.questions, g.counts, strict=False)
    )
    parts = [
        tag("h2", join([tag("span", str(g.count), class_="gap-count"), f" {privacy.mask(g.label)}"])),
        tag(
            "p",
            join(
                [
                    f"来自：{channels}。最近的条目：",
                    link(entry_href(g.nearest_entry_id), near_text or g.nearest_entry_id)
                    if g.nearest_entry_id
                    else "无",
                ]
            ),
            class_="meta",
        ),
        tag("ul", examples, class_="gap-questions"),
    ]
    if login.can("editor"):
        parts.append(_actions(i, g, near_text, login))
    return tag("article", join(parts), class_="gap", id=f"gap-{i}")


def _actions(i: int, g: Gap, near_text: str, login: StaffLogin) -> Markup:
    hidden = join(void("input", type="hidden", name="question", value=privacy.mask(q)) for q in g.questions)
    out: list[Markup] = []
    if g.nearest_entry_id:
        out.append(
            post_form(
                "/console/gaps/alternates",
                login,
                join(
                    [
                        hidden,
                        void("input", type="hidden", name="entry_id", value=g.nearest_entry_id),
                        button(f"全部加为「{near_text[:24] or g.nearest_entry_id}」的其他问法", class_="btn"),
                    ]
                ),
                class_="inline",
            )
        )
    new = post_form(
        "/console/gaps/new",
        login,
        join(
            [
                hidden,
                field_row(
                    label(f"gap-q-{i}", "新条目的问题"),
                    void(
                        "input",
                        id=f"gap-q-{i}",
                        name="label",
                        value=privacy.mask(g.label),
                        required=True,
                        class_="wide",
                    ),
                ),
                field_row(
                    label(f"gap-a-{i}", "答案"),
                    tag("textarea", "", id=f"gap-a-{i}", name="answer", rows="4", required=True),
                ),
                field_row(
                    label(f"gap-c-{i}", "分类"), void("input", id=f"gap-c-{i}", name="category", value="")
                ),
                button("新建条目（本组问题都作为问法）", class_="btn btn-primary"),
            ]
        ),
        class_="gap-new",
    )
    out.append(tag("details", join([tag("summary", "新建条目"), new])))
    return tag("div", join(out), class_="gap-actions")


def _strings(form: Any, name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str)][:200]


@routes.post("/console/gaps/new")
async def gaps_new(request: web.Request) -> web.Response:
    """A new FAQ from a cluster: its label as the question, the others as phrasings."""
    login = require(request, "editor", WHAT)
    form = await request.post()
    try:
        entry_id = await _review(request).create_faq(
            str(form.get("label", "")),
            str(form.get("answer", "")),
            str(form.get("category", "")),
            _strings(form, "question"),
            login.name,
        )
    except ReviewError as exc:
        return redirect(url("/console/gaps", error=str(exc)))
    return redirect(entry_href(entry_id) + "?done=created")


@routes.post("/console/gaps/alternates")
async def gaps_alternates(request: web.Request) -> web.Response:
    """A cluster's questions as other phrasings of its nearest entry."""
    login = require(request, "editor", WHAT)
    form = await request.post()
    try:
        await _review(request).add_phrasings(
            str(form.get("entry_id", ""))[:200], _strings(form, "question"), login.name
        )
    except ReviewError as exc:
        return redirect(url("/console/gaps", error=str(exc)))
    return redirect(url("/console/gaps", done="added"))


def _review(request: web.Request) -> KnowledgeReview:
    app = core(request)
    return KnowledgeReview(app.services.sessions, app.services.kb)


# -- JSON API -------------------------------------------------------------------------------------------
@routes.get("/console/api/gaps")
async def api_gaps(request: web.Request) -> web.Response:
    """``?days=30``: the clusters, largest first (questions masked)."""
    gaps = await gaps_for(request, _days(request))
    return ok({"gaps": [gap_json(g) for g in gaps]})


@routes.post("/console/api/gaps/entry")
async def api_gaps_entry(request: web.Request) -> web.Response:
    """``{"question", "answer", "category"?, "alternates"?: [..]}``: a new published FAQ."""
    login = require(request, "editor", WHAT)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    alternates = field(data, "alternates", list, required=False) or []
    if not all(isinstance(a, str) for a in alternates):
        raise ApiError(400, "wrong_type", "alternates 应为字符串数组")
    try:
        entry_id = await _review(request).create_faq(
            field(data, "question", str),
            field(data, "answer", str),
            field(data, "category", str, required=False) or "",
            alternates,
            login.name,
        )
    except PersonalDataError as exc:
        raise ApiError(409, "personal_data", str(exc)) from None
    except ReviewError as exc:
        raise ApiError(400, "bad_entry", str(exc)) from None
    return ok({"entry_id": entry_id}, status=201)


@routes.post("/console/api/gaps/alternates")
async def api_gaps_alternates(request: web.Request) -> web.Response:
    """``{"entry_id", "questions": [..]}``: add them as other phrasings of the entry."""
    login = require(request, "editor", WHAT)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    questions = field(data, "questions", list)
    if not all(isinstance(q, str) for q in questions):
        raise ApiError(400, "wrong_type", "questions 应为字符串数组")
    try:
        added = await _review(request).add_phrasings(field(data, "entry_id", str), questions, login.name)
    except ReviewError as exc:
        raise ApiError(404, "unknown_entry", str(exc)) from None
    return ok({"added": added})

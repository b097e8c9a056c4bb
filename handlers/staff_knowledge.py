"""The staff console's knowledge pages: search (with the bot's own matcher), read, edit, add an FAQ,
retire and republish. Every change goes through ``KnowledgeBase`` so the bot's index follows at once.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.knowledge_review import new_personal_data
from bot.staff_accounts import StaffLogin
from handlers.staff_auth import require, staff
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
    pre,
    redirect,
    table,
    tag,
    void,
)
from handlers.staff_review import history_block
from handlers.web_state import core
from knowledge.answers import citation
from knowledge.importers import ImportFailure, entry_to_parsed
from knowledge.importers.base import GUIDE_SECTIONS, REFERRAL_SECTIONS, ParsedEntry, check_entry
from knowledge.models import Entry

KIND_WORDS = {
    "faq": "常见问题", "guide": "办事指南", "policy": "政策解读", "clause": "政策条款",
    "smalltalk": "寒暄闲聊", "referral": "他部门事项",
}  # fmt: skip
STATUS_WORDS = {"published": "已发布", "draft": "草稿", "expired": "已停用"}
EXTRA_SECTIONS = 2  # empty section rows offered for adding sections to a guide or policy
LIST_LIMIT = 500
DONE_WORDS = {
    "saved": "已保存，机器人立即按新内容回答。",
    "expired": "已停用，机器人不再使用这条知识。",
    "published": "已重新发布。",
    "created": "已新增。",
    "reverted": "已恢复到修改前的版本（这次恢复也记入了修改记录）。",
}
EDIT = "修改知识库"

routes = web.RouteTableDef()


# -- list and search ------------------------------------------------------------------------------------
@routes.get("/console/knowledge")
async def knowledge_page(request: web.Request) -> web.Response:
    """Search with the bot's matcher (``?q=``) or list by category, kind and status."""
    app = core(request)
    q = request.query.get("q", "").strip()[:200]
    category, kind, status = (request.query.get(k, "") for k in ("category", "kind", "status"))
    categories = [c for c, _ in await app.services.kb.categories()]
    parts = [
        search_form(q, category, kind, status, categories),
    ]
    if staff(request).can("editor"):
        parts.append(tag("p", link("/console/knowledge/new", "＋ 新增常见问题", class_="btn")))
    if q:
        found = await app.services.qa.explain(q, limit=20)
        entries = await app.services.kb.get_many([str(c["entry_id"]) for c in found])
        rows = [
            [
                link(entry_href(str(c["entry_id"])), c["title"]),
                KIND_WORDS.get(_kind(entries, c), ""),
                c["score"],
            ]
            for c in found
        ]
        parts += [
            tag("h2", f"“{q}”的匹配结果（与机器人相同的匹配器）"),
            table(["条目", "类型", "得分"], rows) if rows else tag("p", "（没有匹配）"),
        ]
    else:
        rows_all = await app.services.kb.entries(
            kind or None, category or None, status or None, limit=LIST_LIMIT
        )
        rows = [
            [
                link(entry_href(e.id), e.title or e.question or e.id),
                KIND_WORDS.get(e.kind, e.kind),
                e.category,
                STATUS_WORDS.get(e.status, e.status),
                e.id,
            ]
            for e in rows_all
        ]
        more = (
            tag("p", f"只显示前 {LIST_LIMIT} 条，请用筛选或搜索缩小范围。", class_="hint")
            if len(rows_all) >= LIST_LIMIT
            else Markup("")
        )
        parts += [table(["标题 / 问题", "类型", "分类", "状态", "编号"], rows, class_="knowledge"), more]
    return page("知识库", join(parts), staff(request), "knowledge")


def _kind(entries: dict[str, Entry], cand: dict[str, Any]) -> str:
    row = entries.get(str(cand["entry_id"]))
    return row.kind if row else ""


def search_form(q: str, category: str, kind: str, status: str, categories: list[str]) -> Markup:
    """The search and filter form."""

    def select(name: str, text: str, options: list[tuple[str, str]], current: str) -> Markup:
        opts = join(tag("option", t, value=v, selected=(v == current)) for v, t in [("", "全部"), *options])
        return field_row(label(name, text), tag("select", opts, id=name, name=name))

    return tag(
        "form",
        join(
            [
                field_row(
                    label("q", "搜索（按机器人的匹配方式）"),
                    void("input", id="q", name="q", value=q, class_="wide"),
                ),
                select("category", "分类", [(c, c) for c in categories], category),
                select("kind", "类型", list(KIND_WORDS.items()), kind),
                select("status", "状态", list(STATUS_WORDS.items()), status),
                button("查找", class_="btn btn-primary"),
            ]
        ),
        method="get",
        action="/console/knowledge",
        class_="filters",
    )


# -- one entry ------------------------------------------------------------------------------------------
@routes.get("/console/knowledge/e/{entry_id:.+}")
async def entry_page(request: web.Request) -> web.Response:
    """Read an entry and edit it."""
    entry_id = request.match_info["entry_id"]
    done = request.query.get("done", "")
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    return await render_entry(request, entry_id, flash)


async def render_entry(
    request: web.Request, entry_id: str, flash: Markup, status: int = 200, draft: ParsedEntry | None = None
) -> web.Response:
    """The entry page (``draft``: the rejected edit, shown again with the error)."""
    login = staff(request)
    row = await core(request).services.kb.get(entry_id)
    if row is None:
        return page(
            "没有这条知识", notice(f"没有知识条目 {entry_id}", "error"), login, "knowledge", status=404
        )
    shown = draft or entry_to_parsed(row)
    facts = [
        ("编号", row.id),
        ("类型", KIND_WORDS.get(row.kind, row.kind)),
        ("状态", STATUS_WORDS.get(row.status, row.status)),
        ("上级条目", row.parent_id or "—"),
        ("来源", citation(row)),
    ]
    parent = link(entry_href(row.parent_id), "查看上级条目") if row.parent_id else Markup("")
    if login.can("editor"):
        edit = join(
            [
                status_form(row, login),
                tag("h2", "编辑"),
                post_form(
                    entry_href(row.id),
                    login,
                    join([edit_fields(shown), button("保存", class_="btn btn-primary")]),
                    class_="edit",
                ),
            ]
        )
    else:
        edit = join(
            [
                tag("h2", "内容"),
                pre(row.question or row.title),
                pre(row.answer) if row.answer else Markup(""),
                tag("p", "只有编辑可以修改知识；坐席可从工单提交知识，由编辑审核后发布。", class_="hint"),
            ]
        )
    content = join(
        [
            flash,
            tag("dl", join(join([tag("dt", k), tag("dd", v)]) for k, v in facts), class_="facts"),
            parent,
            edit,
            await history_block(request, row.id, login),
        ]
    )
    return page(row.title or row.question or row.id, content, login, "knowledge", status=status)


def status_form(row: Entry, login: StaffLogin) -> Markup:
    """Retire (expire) a published entry, or republish a retired / draft one."""
    target, text, cls = (
        ("expired", "停用（机器人不再使用）", "btn btn-danger")
        if row.status == "published"
        else ("published", "重新发布", "btn")
    )
    fields = join(
        [
            void("input", type="hidden", name="id", value=row.id),
            void("input", type="hidden", name="status", value=target),
            button(text, class_=cls),
        ]
    )
    return post_form("/console/knowledge/status", login, fields, class_="inline")


def edit_fields(entry: ParsedEntry) -> Markup:
    """The edit controls for one entry's kind."""
    category = field_row(
        label("category", "分类"), void("input", id="category", name="category", value=entry.category)
    )
    if entry.kind in ("faq", "smalltalk"):
        return join(
            [
                _phrasings(entry),
                field_row(
                    label("answer", "答案"),
                    tag("textarea", entry.answer, id="answer", name="answer", rows="8", required=True),
                ),
                category,
            ]
        )
    if entry.kind == "clause":
        return field_row(
            label("answer", "条款原文"), tag("textarea", entry.answer, id="answer", name="answer", rows="8")
        )
    rows = [*entry.sections, *([["", ""]] * EXTRA_SECTIONS)]
    sections = join(
        tag(
            "fieldset",
            join(
                [
                    tag("legend", f"第 {i + 1} 节"),
                    field_row(
                        label(f"section-name-{i}", "小节名称"),
                        void(
                            "input",
                            id=f"section-name-{i}",
                            name="section_name",
                            value=name,
                            list="section-names",
                        ),
                    ),
                    field_row(
                        label(f"section-text-{i}", "内容"),
                        tag("textarea", text, id=f"section-text-{i}", name="section_text", rows="5"),
                    ),
                ]
            ),
            class_="section",
        )
        for i, (name, text) in enumerate(rows)
    )
    section_names = REFERRAL_SECTIONS if entry.kind == "referral" else GUIDE_SECTIONS
    names = tag("datalist", join(tag("option", "", value=n) for n in section_names), id="section-names")
    answer = (
        field_row(
            label("answer", "摘要答案（可空）"),
            tag("textarea", entry.answer, id="answer", name="answer", rows="4"),
        )
        if entry.kind == "policy"
        else Markup("")
    )
    return join(
        [
            field_row(
                label("title", "标题"),
                void("input", id="title", name="title", value=entry.title, required=True, class_="wide"),
            ),
            category,
            answer,
            _phrasings(entry) if entry.kind == "referral" else Markup(""),
            tag("p", "清空小节名称和内容即删除该小节。", class_="hint"),
            sections,
            names,
        ]
    )


def _phrasings(entry: ParsedEntry) -> Markup:
    """An FAQ's or a referral's question and other phrasings (how residents ask about the matter)."""
    return join(
        [
            field_row(
                label("question", "问题"),
                void(
                    "input",
                    id="question",
                    name="question",
                    value=entry.question,
                    required=True,
                    class_="wide",
                ),
            ),
            field_row(
                label("alternates", "其他问法（每行一个）"),
                tag("textarea", "\n".join(entry.alternates), id="alternates", name="alternates", rows="5"),
            ),
        ]
    )


def apply_form(entry: ParsedEntry, form: MultiDictProxy[Any]) -> ParsedEntry:
    """The entry with the form's edits applied (fields of its kind only)."""

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    entry.category = text("category")[:100] if "category" in form else entry.category
    if entry.kind in ("faq", "smalltalk", "referral"):
        entry.question = text("question")
        entry.alternates = [line.strip() for line in text("alternates").splitlines() if line.strip()]
    if entry.kind in ("faq", "smalltalk", "clause"):
        entry.answer = text("answer")
    else:
        entry.title = text("title")
        if entry.kind == "policy":
            entry.answer = text("answer")
        names = [n.strip() for n in form.getall("section_name", []) if isinstance(n, str)]
        texts = [t.strip() for t in form.getall("section_text", []) if isinstance(t, str)]
        entry.sections = [[n, t] for n, t in zip(names, texts, strict=False) if n or t]
        if any(not n or not t for n, t in entry.sections):
            raise ImportFailure("entry", None, "每个小节都需要名称和内容")
    return entry


@routes.post("/console/knowledge/e/{entry_id:.+}")
async def entry_save(request: web.Request) -> web.Response:
    """Save an edit; guides and policies keep their clauses and Q&A children. Refused when it adds
    personal data the entry did not hold."""
    login = require(request, "editor", EDIT)
    kb = core(request).services.kb
    entry_id = request.match_info["entry_id"]
    row = await kb.get(entry_id)
    if row is None:
        return page(
            "没有这条知识",
            notice(f"没有知识条目 {entry_id}", "error"),
            staff(request),
            "knowledge",
            status=404,
        )
    edited = entry_to_parsed(row)
    try:
        apply_form(edited, await request.post())
        check_entry(edited, "entry", None)
        found = new_personal_data(edited, entry_to_parsed(row))
        if found:
            raise ImportFailure("entry", None, f"含有个人信息（{'、'.join(found)}），请删除或遮盖后再保存")
    except ImportFailure as exc:
        return await render_entry(request, entry_id, notice(exc.reason, "error"), status=400, draft=edited)
    children: list[ParsedEntry] = []
    if row.kind in ("guide", "policy"):
        # Writing a guide or policy removes children missing from the write: write them unchanged.
        children = [entry_to_parsed(c) for c in await kb.entries(limit=10_000_000) if c.parent_id == row.id]
    await kb.write_entries([edited, *children], actor=login.name)
    return redirect(entry_href(entry_id) + "?done=saved")


@routes.post("/console/knowledge/status")
async def entry_status(request: web.Request) -> web.Response:
    """Retire (``expired``) or republish (``published``) an entry."""
    login = require(request, "editor", EDIT)
    form = await request.post()
    entry_id, status = str(form.get("id", "")), str(form.get("status", ""))
    if status not in ("expired", "published"):
        return page(
            "无法更改状态",
            notice("状态只能是 expired 或 published", "error"),
            staff(request),
            "knowledge",
            status=400,
        )
    if not await core(request).services.kb.set_status(entry_id, status, actor=login.name):
        return page(
            "没有这条知识",
            notice(f"没有知识条目 {entry_id}", "error"),
            staff(request),
            "knowledge",
            status=404,
        )
    return redirect(entry_href(entry_id) + f"?done={status}")


# -- a new FAQ ------------------------------------------------------------------------------------------
@routes.get("/console/knowledge/new")
async def new_page(request: web.Request) -> web.Response:
    """The form for a new FAQ."""
    require(request, "editor", EDIT)
    return new_form(request, ParsedEntry(id="", kind="faq"))


def new_form(request: web.Request, draft: ParsedEntry, error: str = "", status: int = 200) -> web.Response:
    """The new-FAQ page (again with the error when saving failed)."""
    login = staff(request)
    id_field = field_row(
        label("entry-id", "编号（可空，自动生成）"),
        void("input", id="entry-id", name="id", value=draft.id, pattern=r"[A-Za-z0-9_.\-]{1,100}"),
    )
    form = post_form(
        "/console/knowledge/new",
        login,
        join([id_field, edit_fields(draft), button("新增", class_="btn btn-primary")]),
        class_="edit",
    )
    return page(
        "新增常见问题",
        join([notice(error, "error") if error else Markup(""), form]),
        login,
        "knowledge",
        status=status,
    )


@routes.post("/console/knowledge/new")
async def new_save(request: web.Request) -> web.Response:
    """Create the FAQ; it is answerable at once."""
    kb = core(request).services.kb
    login = require(request, "editor", EDIT)
    form = await request.post()
    given = str(form.get("id", "")).strip()
    draft = ParsedEntry(
        id=given or f"faq-staff-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
        kind="faq",
        source={"title": "工作人员录入", "note": f"{login.name} 在工作台录入"},
        origin=f"console:{login.name}",
    )
    try:
        apply_form(draft, form)
        check_entry(draft, "entry", None)
        found = new_personal_data(draft, None)
        if found:
            raise ImportFailure("entry", None, f"含有个人信息（{'、'.join(found)}），请删除或遮盖后再保存")
    except ImportFailure as exc:
        return new_form(request, draft, exc.reason, status=400)
    if await kb.get(draft.id) is not None:
        return new_form(request, draft, f"编号 {draft.id} 已存在，请换一个", status=409)
    await kb.save_entry(draft, actor=login.name)
    return redirect(entry_href(draft.id) + "?done=created")

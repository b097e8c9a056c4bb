"""The console's knowledge review: proposals from tickets waiting for an editor (personal data shown
masked and blocking approval), an entry's change history with revert, and the JSON API for both."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import privacy
from bot.knowledge_review import (
    KnowledgeReview,
    PersonalDataError,
    ReviewError,
    changed_fields,
    personal_data,
)
from bot.staff_accounts import StaffLogin
from bot.tickets import TicketError
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
    url,
    void,
)
from handlers.web_security import ApiError, field, ok, read_json
from handlers.web_state import WEB_SETTINGS, core
from knowledge.models import EntryRevision, KnowledgeProposal

APPROVE = "审核知识"
EDIT = "修改知识库"
DONE_WORDS = {
    "approved": "已批准并发布，机器人立即可用。",
    "rejected": "已驳回。",
    "reverted": "已恢复到修改前的版本（这次恢复也记入了修改记录）。",
}
ACTION_WORDS = {
    "create": "新建",
    "edit": "修改",
    "alternate": "增加问法",
    "status": "更改状态",
    "revert": "恢复",
    "remove": "删除",
    "import": "导入",
}

routes = web.RouteTableDef()


def review(request: web.Request) -> KnowledgeReview:
    """The review service over this process's knowledge base."""
    app = core(request)
    return KnowledgeReview(app.services.sessions, app.services.kb)


def proposal_json(p: KnowledgeProposal) -> dict[str, Any]:
    """A proposal as the API shows it: texts masked, with the kinds of personal data found."""
    return {
        "id": p.id,
        "kind": p.kind,
        "entry_id": p.entry_id,
        "question": privacy.mask(p.question),
        "answer": privacy.mask(p.answer),
        "personal_data": personal_data([p.question, p.answer]),
        "category": p.category,
        "ticket_id": p.ticket_id,
        "proposed_by": p.proposed_by,
        "status": p.status,
        "decided_by": p.decided_by,
        "result_entry_id": p.result_entry_id,
        "created_at": p.created_at.isoformat(),
    }


def revision_json(r: EntryRevision) -> dict[str, Any]:
    return {
        "id": r.id,
        "entry_id": r.entry_id,
        "actor": r.actor,
        "action": r.action,
        "fields": changed_fields(r.before, r.after),
        "created_at": r.created_at.isoformat(),
        "before": r.before,
        "after": r.after,
    }


# -- the review page ------------------------------------------------------------------------------------
@routes.get("/console/review")
async def review_page(request: web.Request) -> web.Response:
    """Pending proposals (editors decide), and the latest decisions."""
    login = staff(request)
    done, error = request.query.get("done", ""), request.query.get("error", "")[:300]
    flash = notice(DONE_WORDS[done], "ok") if done in DONE_WORDS else Markup("")
    if error:
        flash = notice(error, "error")
    svc = review(request)
    pending = await svc.proposals("pending")
    entries = await core(request).services.kb.get_many([p.entry_id for p in pending if p.entry_id])
    cards = [await _card(p, login, entries) for p in pending]
    intro = tag(
        "p",
        "工作人员从工单存为知识的内容在这里等待编辑审核；批准后才会发布。个人信息已遮盖显示，"
        "含个人信息的内容必须遮盖或删除后才能发布。",
        class_="hint",
    )
    decided = [
        [
            f"#{p.id}",
            "新问答" if p.kind == "new" else "增加问法",
            privacy.mask(p.question)[:80],
            {"approved": "已批准", "rejected": "已驳回"}.get(p.status, p.status),
            p.decided_by,
            link(entry_href(p.result_entry_id), p.result_entry_id) if p.result_entry_id else "—",
        ]
        for status in ("approved", "rejected")
        for p in (await svc.proposals(status, limit=20))
    ]
    content = join(
        [
            flash,
            intro,
            tag("p", f"待审核 {len(pending)} 条。", id="pending-count"),
            join(cards) if cards else notice("没有待审核的知识。", "ok"),
            tag("h2", "最近的审核"),
            table(["编号", "类型", "问题", "结果", "审核人", "条目"], decided, class_="decided")
            if decided
            else tag("p", "（暂无）", class_="hint"),
        ]
    )
    return page("知识审核", content, login, "review")


async def _card(p: KnowledgeProposal, login: StaffLogin, entries: dict) -> Markup:
    found = personal_data([p.question, p.answer])
    target = entries.get(p.entry_id) if p.entry_id else None
    what = (
        join(
            [
                "作为 ",
                link(entry_href(p.entry_id), (target.title or target.question) if target else p.entry_id),
                " 的另一种问法",
            ]
        )
        if p.kind == "alternate" and p.entry_id
        else Markup("新的常见问题")
    )
    meta = join(
        [
            f"#{p.id} · {p.proposed_by} 提交",
            join([" · 来自 ", link(f"/console/tickets/{p.ticket_id}", f"工单 #{p.ticket_id}")])
            if p.ticket_id
            else "",
            " · ",
            what,
        ]
    )
    parts: list[Markup] = [tag("p", meta, class_="meta")]
    if found:
        parts.append(
            notice(f"检测到个人信息：{'、'.join(found)}（已遮盖显示；发布前必须遮盖或删除）", "error")
        )
    if login.can("editor"):
        parts.append(_decide_form(p, login))
    else:
        parts += [tag("h3", "问题"), pre(privacy.mask(p.question))]
        if p.kind == "new":
            parts += [tag("h3", "答案"), pre(privacy.mask(p.answer))]
        parts.append(tag("p", "等待编辑审核。", class_="hint"))
    return tag("article", join(parts), class_="proposal", id=f"proposal-{p.id}")


def _decide_form(p: KnowledgeProposal, login: StaffLogin) -> Markup:
    """The editor's form: the masked texts, editable, then approve or reject."""
    fields = [
        field_row(
            label(f"q-{p.id}", "问题"),
            tag(
                "textarea", privacy.mask(p.question), id=f"q-{p.id}", name="question", rows="2", required=True
            ),
        )
    ]
    if p.kind == "new":
        fields.append(
            field_row(
                label(f"a-{p.id}", "答案"),
                tag(
                    "textarea", privacy.mask(p.answer), id=f"a-{p.id}", name="answer", rows="5", required=True
                ),
            )
        )
    approve = post_form(
        f"/console/review/{p.id}/approve",
        login,
        join([*fields, button("批准并发布", class_="btn btn-primary")]),
        class_="approve",
    )
    reject = post_form(
        f"/console/review/{p.id}/reject", login, button("驳回", class_="btn btn-danger"), class_="inline"
    )
    return join([approve, reject])


@routes.post(r"/console/review/{proposal_id:\d{1,9}}/{action:approve|reject}")
async def review_action(request: web.Request) -> web.Response:
    """Approve (with the edited texts) or reject a proposal."""
    login = require(request, "editor", APPROVE)
    form = await request.post()
    question, answer = form.get("question"), form.get("answer")
    approve = request.match_info["action"] == "approve"
    try:
        await review(request).decide(
            int(request.match_info["proposal_id"]),
            login.name,
            approve,
            question=question if isinstance(question, str) else None,
            answer=answer if isinstance(answer, str) else None,
        )
    except ReviewError as exc:
        return redirect(url("/console/review", error=str(exc)))
    return redirect(url("/console/review", done="approved" if approve else "rejected"))


# -- history and revert ---------------------------------------------------------------------------------
async def history_block(request: web.Request, entry_id: str, login: StaffLogin) -> Markup:
    """An entry's kept changes (who, when, what) with 恢复 for editors."""
    from handlers.staff_console import local_time

    tz = core(request).settings.staff.timezone
    revs = await core(request).services.kb.revisions(entry_id)
    if not revs:
        return join([tag("h2", "修改记录"), tag("p", "（工作台里还没有修改过这条知识）", class_="hint")])
    rows = []
    for r in revs:
        revert = (
            post_form(
                "/console/knowledge/revert",
                login,
                join(
                    [
                        void("input", type="hidden", name="revision_id", value=str(r.id)),
                        button("恢复到这次修改之前", class_="btn btn-small"),
                    ]
                ),
                class_="inline",
            )
            if login.can("editor")
            else ""
        )
        rows.append(
            [
                local_time(r.created_at, tz),
                r.actor,
                ACTION_WORDS.get(r.action, r.action),
                "、".join(changed_fields(r.before, r.after)),
                revert,
            ]
        )
    return join(
        [tag("h2", "修改记录"), table(["时间", "谁", "操作", "改了哪些字段", ""], rows, class_="revisions")]
    )


@routes.post("/console/knowledge/revert")
async def revert_action(request: web.Request) -> web.Response:
    """Put an entry back as it was before one of its changes."""
    login = require(request, "editor", EDIT)
    form = await request.post()
    raw = str(form.get("revision_id", ""))
    if not raw.isdigit() or len(raw) > 9:
        return page("无法恢复", notice("缺少修改记录编号", "error"), login, "knowledge", status=400)
    try:
        entry_id = await review(request).revert(int(raw), login.name)
    except ReviewError as exc:
        return page("无法恢复", notice(str(exc), "error"), login, "knowledge", status=409)
    return redirect(entry_href(entry_id) + "?done=reverted")


# -- JSON API -------------------------------------------------------------------------------------------
@routes.get("/console/api/review")
async def api_review(request: web.Request) -> web.Response:
    """``?status=pending|approved|rejected``: proposals, texts masked."""
    status = request.query.get("status", "pending")
    if status not in ("pending", "approved", "rejected"):
        raise ApiError(400, "bad_status", "status 应为 pending、approved 或 rejected")
    return ok({"proposals": [proposal_json(p) for p in await review(request).proposals(status)]})


@routes.post(r"/console/api/review/{proposal_id:\d{1,9}}/{action:approve|reject}")
async def api_decide(request: web.Request) -> web.Response:
    """``{"question"?, "answer"?, "mask"?}``: approve (publish) or reject. ``409 personal_data`` while
    the texts hold personal data (send ``"mask": true`` or corrected texts)."""
    login = require(request, "editor", APPROVE)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    question = field(data, "question", str, required=False)
    answer = field(data, "answer", str, required=False)
    mask = bool(field(data, "mask", bool, required=False))
    approve = request.match_info["action"] == "approve"
    try:
        p = await review(request).decide(
            int(request.match_info["proposal_id"]),
            login.name,
            approve,
            question=question,
            answer=answer,
            mask=mask,
        )
    except PersonalDataError as exc:
        raise ApiError(409, "personal_data", str(exc)) from None
    except ReviewError as exc:
        status = 404 if str(exc).startswith("没有") else 409
        raise ApiError(status, "review_error", str(exc)) from None
    return ok({"proposal": proposal_json(p)})


@routes.post(r"/console/api/tickets/{ticket_id:\d{1,9}}/save")
async def api_save(request: web.Request) -> web.Response:
    """``{"mode": "new"|"alternate", "entry_id"?, "candidate"?, "mask"?}``: an editor's save publishes at
    once (``409 personal_data`` unless masked); an agent's becomes a proposal for review."""
    login = staff(request)
    data = await read_json(request, request.app[WEB_SETTINGS].max_body_bytes)
    mode = field(data, "mode", str)
    entry_id = field(data, "entry_id", str, required=False)
    candidate = field(data, "candidate", int, required=False)
    if mode not in ("new", "alternate") or (mode == "alternate" and not entry_id and candidate is None):
        raise ApiError(400, "bad_mode", "mode 应为 new，或 alternate 加上 entry_id 或 candidate")
    if candidate is not None and not 0 <= candidate < 100:
        raise ApiError(400, "bad_candidate", "candidate 应为候选序号（从 0 开始）")
    try:
        saved = await review(request).save_from_ticket(
            int(request.match_info["ticket_id"]),
            login.name,
            publish=login.can("editor"),
            entry_id=entry_id if mode == "alternate" else None,
            candidate=candidate if mode == "alternate" else None,
            mask=bool(field(data, "mask", bool, required=False)),
        )
    except PersonalDataError as exc:
        raise ApiError(409, "personal_data", str(exc)) from None
    except (TicketError, ReviewError) as exc:
        raise ApiError(409, "ticket_error", str(exc)) from None
    return ok({"published": saved.published, "entry_id": saved.entry_id, "proposal_id": saved.proposal_id})


@routes.get("/console/api/entries/{entry_id:.+}/revisions")
async def api_revisions(request: web.Request) -> web.Response:
    """An entry's kept changes, newest first."""
    revs = await core(request).services.kb.revisions(request.match_info["entry_id"][:200])
    return ok({"revisions": [revision_json(r) for r in revs]})


@routes.post(r"/console/api/revisions/{revision_id:\d{1,9}}/revert")
async def api_revert(request: web.Request) -> web.Response:
    """Put the entry back as it was before this change."""
    login = require(request, "editor", EDIT)
    try:
        entry_id = await review(request).revert(int(request.match_info["revision_id"]), login.name)
    except ReviewError as exc:
        raise ApiError(409, "review_error", str(exc)) from None
    return ok({"entry_id": entry_id})

"""The staff console's pages: the ticket queue, one ticket (claim, reply, close, save as knowledge),
the "try a question" box and the overview. Knowledge editing is in ``staff_knowledge``; login in
``staff_auth``; the JSON API in ``staff_api``. Every page needs a staff session (see ``staff_auth``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from bot import privacy
from bot.canned import CannedReplies
from bot.knowledge_review import KnowledgeReview, PersonalDataError, ReviewError
from bot.staff_accounts import StaffLogin
from bot.tickets import QueueItem, TicketError
from handlers.staff_auth import staff
from handlers.staff_canned import canned_picker
from handlers.staff_html import (
    Markup,
    button,
    entry_href,
    field_row,
    join,
    label,
    link,
    minutes_text,
    notice,
    page,
    post_form,
    pre,
    redirect,
    table,
    tag,
    void,
)
from handlers.staff_ticket_work import (
    WORK_DONE,
    answer_with_entry_block,
    assign_block,
    merge_block,
    note_form,
    notes_list,
    routing_block,
)
from handlers.web_state import core
from handlers.web_ticket_page import access
from knowledge.models import Conversation, Message, Ticket

MAX_REPLY_CHARS = 4000
STATUS_WORDS = {
    "open": "待处理",
    "claimed": "处理中",
    "answered": "已答复",
    "closed": "已关闭",
    "cancelled": "用户已撤回",
}
REASON_WORDS = {
    "no_match": "机器人无可靠答案",
    "user_request": "用户要求人工",
    "not_helpful": "用户反馈没解决",
}
CHANNEL_WORDS = {"web": "网页", "telegram": "Telegram", "terminal": "终端"}
AUTHOR_WORDS = {"user": "用户", "bot": "机器人", "staff": "工作人员"}
DONE_WORDS = {
    "claimed": "已认领。",
    "replied": "答复已发送，用户会在提问的渠道收到。",
    "closed": "工单已关闭。",
    "saved": "已存入知识库，机器人立即可用。",
    "proposed": "已提交知识审核，编辑批准后机器人才会使用。",
}

routes = web.RouteTableDef()


def local_time(dt: datetime | None, tz: str) -> str:
    """A stored UTC time shown in the staff time zone."""
    if dt is None:
        return ""
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


# -- the queue ------------------------------------------------------------------------------------------
QUEUE_HEADERS = ["工单", "科室", "渠道", "问题", "状态", "已等待", "工作时间内等待"]


def queue_rows(items: list[QueueItem]) -> Markup:
    """The queue table's body rows (also sent to live pages by ``staff_live``)."""
    return join(
        tag(
            "tr",
            join(
                tag("td", c, data_label=QUEUE_HEADERS[i])
                for i, c in enumerate(
                    [
                        link(f"/console/tickets/{q.ticket.id}", f"#{q.ticket.id}"),
                        q.ticket.office or "—",
                        CHANNEL_WORDS.get(q.conversation.channel, q.conversation.channel),
                        tag("span", privacy.mask(q.ticket.question)[:120], class_="question"),
                        STATUS_WORDS.get(q.ticket.status, q.ticket.status)
                        + (f"（{q.ticket.claimed_by}）" if q.ticket.claimed_by else ""),
                        minutes_text(q.waiting_minutes),
                        tag(
                            "span",
                            minutes_text(q.working_minutes) + ("，已超时" if q.overdue else ""),
                            class_="overdue" if q.overdue else "",
                        ),
                    ]
                )
            ),
            class_="overdue-row" if q.overdue else None,
            data_ticket=str(q.ticket.id),
        )
        for q in items
    )


def queue_table(items: list[QueueItem]) -> Markup:
    """The queue as a table (an empty body when there is nothing)."""
    head = tag("tr", join(tag("th", h, scope="col") for h in QUEUE_HEADERS))
    return tag(
        "table", join([tag("thead", head), tag("tbody", queue_rows(items), id="queue-body")]), class_="queue"
    )


def queue_summary(items: list[QueueItem], office: str) -> str:
    """One line over the queue: how many, how many of them the member's office's, how many overdue."""
    mine = sum(1 for q in items if q.ticket.office == office)
    overdue = sum(1 for q in items if q.overdue)
    return f"共 {len(items)} 张待处理工单，本科室（{office or '未分科室'}）{mine} 张，已超时 {overdue} 张。"


@routes.get("/console")
async def queue_page(request: web.Request) -> web.Response:
    """Open tickets, the member's office first, oldest first, with waiting times and the SLA flag; the
    page updates itself (``/console/events``) and alerts on a new ticket."""
    app, login = core(request), staff(request)
    items = await app.tickets.queue(office_first=login.office)
    sla = app.settings.staff.sla_minutes
    intro = tag(
        "p",
        join(
            [
                tag("span", queue_summary(items, login.office), id="queue-summary"),
                f" 本科室的工单排在前面，同组内最早的在前。答复时限：{sla} 个工作分钟。",
            ]
        ),
    )
    live = tag(
        "div",
        join(
            [
                tag("span", "实时更新中", class_="live-state", id="live-state"),
                tag("label", join([void("input", type="checkbox", id="sound-toggle"), " 新工单提示音"])),
            ]
        ),
        class_="live-bar",
        data_live="queue",
        data_max_id=str(max((q.ticket.id for q in items), default=0)),
    )
    alert = tag("p", "", class_="notice notice-info new-alert", id="new-alert", role="status", hidden=True)
    empty = tag(
        "p", "目前没有待处理的工单。", class_="notice notice-ok", id="queue-empty", hidden=bool(items)
    )
    return page("工单队列", join([live, alert, intro, empty, queue_table(items)]), login, "queue")


# -- one ticket -----------------------------------------------------------------------------------------
@routes.get(r"/console/tickets/{ticket_id:\d+}")
async def ticket_page(request: web.Request) -> web.Response:
    """A ticket: question, routing, conversation, candidates, notes, and the actions."""
    done, error = request.query.get("done", ""), request.query.get("error", "")[:300]
    flash = Markup("")
    if done in DONE_WORDS or done in WORK_DONE:
        flash = notice(DONE_WORDS.get(done) or WORK_DONE[done], "ok")
    if error:
        flash = notice(error, "error")
    return await render_ticket(request, int(request.match_info["ticket_id"]), flash)


async def render_ticket(
    request: web.Request, ticket_id: int, flash: Markup, status: int = 200
) -> web.Response:
    """The ticket page with a notice on top."""
    app = core(request)
    login = staff(request)
    try:
        ticket, conv = await app.tickets.get(ticket_id)
    except TicketError as exc:
        return page("没有这张工单", notice(str(exc), "error"), login, "queue", status=404)
    undelivered = await app.tickets.undelivered(ticket_id)
    answered_entry = request.query.get("entry", "") if request.query.get("done") == "answered_entry" else ""
    content = join(
        [
            flash,
            *[notice(f"答复未能送达用户：{reason}", "error") for reason in undelivered],
            await offer_alternate(request, ticket, login, answered_entry),
            tag(
                "div",
                await ticket_live_parts(request, ticket, conv),
                id="ticket-live",
                data_live="ticket",
                data_ticket=str(ticket.id),
            ),
            ticket_actions(
                ticket, login, canned_picker(list(await CannedReplies(app.services.sessions).all()))
            ),
            await assign_block(request, ticket, login),
            answer_with_entry_block(ticket, login),
            candidates_block(ticket, login),
            await merge_block(request, ticket, login),
        ]
    )
    return page(f"工单 #{ticket.id}", content, login, "queue", status=status)


async def ticket_live_parts(request: web.Request, ticket: Ticket, conv: Conversation) -> Markup:
    """The parts of the ticket page that change while it is open (``staff_live`` sends them again)."""
    app = core(request)
    tz = app.settings.staff.timezone
    history = await app.conversations.history(conv.channel, conv.chat_ref, conv.user_ref, 0)
    notes = await app.tickets.notes(ticket.id)
    return join(
        [
            ticket_facts(ticket, conv, tz),
            await contact_block(request, ticket),
            routing_block(ticket),
            tag("h2", "问题"),
            pre(ticket.question),
            tag("h2", "内部备注"),
            notes_list(notes, lambda dt: local_time(dt, tz)),
            note_form(ticket, staff(request)),
            tag("h2", "对话记录"),
            conversation_block(history, tz),
        ]
    )


async def contact_block(request: web.Request, ticket: Ticket) -> Markup:
    """The contact the visitor left with the ticket (留言), in full: the only place it is shown so."""
    found = await access(request).contacts([ticket.id], full=True)
    if ticket.id not in found:
        return Markup("")
    return tag(
        "p", join([tag("strong", "用户留下的联系方式："), tag("span", found[ticket.id], class_="contact")])
    )


async def offer_alternate(request: web.Request, ticket: Ticket, login: StaffLogin, entry_id: str) -> Markup:
    """After answering with an entry: offer to keep the user's question as that entry's phrasing."""
    if not entry_id:
        return Markup("")
    entry = await core(request).services.kb.get(entry_id)
    if entry is None or ticket.question in (entry.alternates or []) or ticket.question == entry.question:
        return Markup("")
    form = post_form(
        f"/console/tickets/{ticket.id}/save",
        login,
        join(
            [
                void("input", type="hidden", name="mode", value="alternate"),
                void("input", type="hidden", name="entry_id", value=entry_id),
                button(
                    f"把用户的问题存为「{(entry.title or entry.question)[:30]}」的另一种问法",
                    class_="btn btn-primary",
                ),
            ]
        ),
        class_="inline",
    )
    return tag(
        "div",
        join([tag("p", "下次有人这样问，机器人就能直接回答："), form]),
        class_="notice notice-info offer",
    )


def ticket_fact_pairs(ticket: Ticket, conv: Conversation, tz: str) -> list[tuple[str, str]]:
    """The ticket's state as (label, value) pairs."""
    return [
        ("状态", STATUS_WORDS.get(ticket.status, ticket.status)),
        ("渠道", CHANNEL_WORDS.get(conv.channel, conv.channel)),
        ("提问人", conv.display_name or "访客"),
        ("转人工原因", REASON_WORDS.get(ticket.reason, ticket.reason)),
        ("提问时间", local_time(ticket.created_at, tz)),
        ("认领人", ticket.claimed_by or "—"),
        ("答复人", ticket.answered_by or "—"),
    ]


def ticket_facts(ticket: Ticket, conv: Conversation, tz: str) -> Markup:
    """The ticket's state in a definition list."""
    items = join(join([tag("dt", k), tag("dd", v)]) for k, v in ticket_fact_pairs(ticket, conv, tz))
    saved = Markup("")
    if ticket.saved_entry_id:
        saved = tag(
            "p", join(["已存为知识：", link(entry_href(ticket.saved_entry_id), ticket.saved_entry_id)])
        )
    return join([tag("dl", items, class_="facts", id="ticket-facts"), saved])


NO_MARKUP = Markup("")


def ticket_actions(ticket: Ticket, login: StaffLogin, canned: Markup = NO_MARKUP) -> Markup:
    """Claim, reply and close (while the ticket is not closed)."""
    base = f"/console/tickets/{ticket.id}"
    parts: list[Markup] = []
    if ticket.answer:
        parts += [tag("h2", "工作人员答复"), pre(ticket.answer)]
    if ticket.status in ("closed", "cancelled") or ticket.merged_into is not None:
        return join(parts)
    if ticket.status == "open":
        parts.append(post_form(f"{base}/claim", login, button("认领"), class_="inline"))
    reply = join(
        [
            canned,
            field_row(
                label("reply-text", "答复用户" if not ticket.answer else "再次答复"),
                tag(
                    "textarea",
                    "",
                    id="reply-text",
                    name="text",
                    rows="6",
                    required=True,
                    maxlength=str(MAX_REPLY_CHARS),
                ),
                "答复会发到用户提问的渠道（网页、Telegram 或终端）。",
            ),
            button("发送答复", class_="btn btn-primary"),
        ]
    )
    parts.append(post_form(f"{base}/reply", login, reply, class_="reply"))
    parts.append(
        post_form(f"{base}/close", login, button("关闭工单", class_="btn btn-danger"), class_="inline")
    )
    return tag("section", join(parts), class_="actions", aria_label="处理")


def candidates_block(ticket: Ticket, login: StaffLogin) -> Markup:
    """The bot's candidates and the save-as-knowledge buttons."""
    base = f"/console/tickets/{ticket.id}/save"
    parts: list[Markup] = [tag("h2", "存为知识")]
    if ticket.answer:
        parts.append(
            post_form(
                base,
                login,
                join(
                    [
                        void("input", type="hidden", name="mode", value="new"),
                        button("把问题和答复存为新的常见问题"),
                    ]
                ),
                class_="inline",
            )
        )
    else:
        parts.append(tag("p", "答复后可以把问题和答复存为新的常见问题。", class_="hint"))
    rows = []
    for i, c in enumerate(ticket.candidates or []):
        save = post_form(
            base,
            login,
            join(
                [
                    void("input", type="hidden", name="mode", value="alternate"),
                    void("input", type="hidden", name="candidate", value=str(i)),
                    button("存为它的另一种问法", class_="btn btn-small"),
                ]
            ),
            class_="inline",
        )
        rows.append(
            [
                link(entry_href(str(c.get("entry_id", ""))), c.get("title", "")),
                f"{float(c.get('score', 0)):.2f}",
                save,
            ]
        )
    if rows:
        parts += [tag("h3", "机器人的候选"), table(["候选条目", "得分", ""], rows, class_="candidates")]
    return tag("section", join(parts), class_="save")


def conversation_block(history: list[Message], tz: str) -> Markup:
    """The user's conversation, newest last."""
    items = [
        tag(
            "li",
            join(
                [
                    tag(
                        "span",
                        f"{AUTHOR_WORDS.get(m.author, m.author)} · {local_time(m.created_at, tz)}",
                        class_="meta",
                    ),
                    pre(m.text),
                ]
            ),
            class_=f"conv-{m.author}",
        )
        for m in history[-100:]
    ]
    return tag("ol", join(items), class_="conversation", id="conversation")


async def _form_text(request: web.Request, name: str) -> str:
    form = await request.post()
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


@routes.post(r"/console/tickets/{ticket_id:\d+}/{action:claim|reply|close}")
async def ticket_action(request: web.Request) -> web.Response:
    """Claim, reply to or close a ticket; then back to the ticket page."""
    app, login = core(request), staff(request)
    ticket_id, action = int(request.match_info["ticket_id"]), request.match_info["action"]
    try:
        if action == "claim":
            await app.tickets.claim(ticket_id, login.name)
            done = "claimed"
        elif action == "reply":
            text = await _form_text(request, "text")
            if len(text) > MAX_REPLY_CHARS:
                raise TicketError(f"答复太长（最多 {MAX_REPLY_CHARS} 字）")
            await app.tickets.reply(ticket_id, login.name, text)
            done = "replied"
        else:
            await app.tickets.close(ticket_id, login.name)
            done = "closed"
    except TicketError as exc:
        return await render_ticket(request, ticket_id, notice(str(exc), "error"), status=409)
    return redirect(f"/console/tickets/{ticket_id}?done={done}")


@routes.post(r"/console/tickets/{ticket_id:\d+}/save")
async def ticket_save(request: web.Request) -> web.Response:
    """Save as knowledge: a new FAQ (question + answer) or an alternate phrasing of a candidate or an
    entry. An editor's save publishes at once; an agent's waits in the review queue. Personal data
    blocks publishing until masked (``mask=1``)."""
    app, login = core(request), staff(request)
    ticket_id = int(request.match_info["ticket_id"])
    form = await request.post()
    mode, candidate = str(form.get("mode", "")), str(form.get("candidate", ""))
    entry_id = str(form.get("entry_id", "")).strip()[:200]
    review = KnowledgeReview(app.services.sessions, app.services.kb)
    try:
        if mode not in ("new", "alternate") or (
            mode == "alternate" and not entry_id and not (candidate.isdigit() and len(candidate) <= 3)
        ):
            raise TicketError("请选择保存方式")
        saved = await review.save_from_ticket(
            ticket_id,
            login.name,
            publish=login.can("editor"),
            entry_id=entry_id if mode == "alternate" and entry_id else None,
            candidate=int(candidate) if mode == "alternate" and not entry_id else None,
            mask=form.get("mask") == "1",
        )
    except PersonalDataError as exc:
        retry = post_form(
            f"/console/tickets/{ticket_id}/save",
            login,
            join(
                [
                    *(
                        void("input", type="hidden", name=k, value=str(v))
                        for k, v in form.items()
                        if k != "csrf"
                    ),
                    void("input", type="hidden", name="mask", value="1"),
                    button("遮盖个人信息后保存", class_="btn btn-primary"),
                ]
            ),
            class_="inline",
        )
        return await render_ticket(request, ticket_id, join([notice(str(exc), "error"), retry]), status=409)
    except (TicketError, ReviewError, ValueError) as exc:
        return await render_ticket(request, ticket_id, notice(str(exc), "error"), status=409)
    return redirect(f"/console/tickets/{ticket_id}?done={'saved' if saved.published else 'proposed'}")


# -- try a question -------------------------------------------------------------------------------------
@routes.get("/console/try")
async def try_page(request: web.Request) -> web.Response:
    """Ask the bot as a resident would, and see its decision and the candidates' features."""
    app = core(request)
    q = request.query.get("q", "").strip()[: app.settings.matching.max_question_chars]
    form = tag(
        "form",
        join(
            [
                field_row(
                    label("q", "问题"), void("input", id="q", name="q", value=q, required=True, class_="wide")
                ),
                button("试问", class_="btn btn-primary"),
            ]
        ),
        method="get",
        action="/console/try",
        class_="try",
    )
    parts = [form]
    if q:
        decision = await app.services.qa.ask(q)
        explain = await app.services.qa.explain(q, limit=8)
        facts = [
            (
                "决定",
                {"answered": "直接回答", "suggested": "给出候选", "escalated": "转人工"}.get(
                    decision.status, decision.status
                ),
            ),
            ("得分", f"{decision.score:.3f}"),
            ("条目", decision.entry_id or "—"),
        ]
        parts.append(tag("dl", join(join([tag("dt", k), tag("dd", v)]) for k, v in facts), class_="facts"))
        if decision.answer:
            parts += [tag("h2", "回答"), pre(decision.answer), tag("p", decision.citation, class_="source")]
        elif decision.notice:
            parts.append(notice(decision.notice))
        if decision.suggestions:
            parts += [
                tag("h2", "给用户的候选"),
                tag("ol", join(tag("li", s.title) for s in decision.suggestions)),
            ]
        headers = ["条目", "得分", "覆盖", "关键词覆盖", "短语", "问句相似", "BM25"]
        rows = [
            [
                link(entry_href(str(c["entry_id"])), c["title"]),
                c["score"],
                c["coverage"],
                c["key_coverage"],
                c["phrase"],
                c["question_sim"],
                c["bm25"],
            ]
            for c in explain
        ]
        parts += [
            tag("h2", "候选及特征"),
            table(headers, rows, class_="explain") if rows else tag("p", "（没有候选）"),
        ]
    return page("试问", join(parts), staff(request), "try")

"""Working a ticket in the console: routing shown, reassign or unclaim, internal notes, answer with a
knowledge entry, merge duplicates. The blocks are drawn into the ticket page (``staff_console``); the
POST handlers come back to it with ``?done=`` or ``?error=``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from rapidfuzz import fuzz

from bot import privacy
from bot.staff_accounts import StaffLogin, list_accounts
from bot.tickets import OPEN_STATES, QueueItem, TicketError
from handlers.staff_auth import staff
from handlers.staff_html import (
    Markup,
    button,
    join,
    label,
    link,
    post_form,
    pre,
    redirect,
    select_box,
    table,
    tag,
    url,
    void,
)
from handlers.web_state import core
from knowledge.models import Conversation, Ticket, TicketNote

MERGE_CHOICES = 10
WORK_DONE = {
    "assigned": "已转交。",
    "unclaimed": "已取消认领，工单回到队列。",
    "noted": "备注已保存（只有工作人员能看到）。",
    "merged": "已合并。答复本工单时，被合并工单的提问人也会在各自的渠道收到同一答复。",
    "answered_entry": "已用知识条目答复并关闭工单。",
}

routes = web.RouteTableDef()


def routing_block(ticket: Ticket) -> Markup:
    """The ticket's office and why it was sent there."""
    return tag(
        "p",
        join(
            [tag("strong", f"科室：{ticket.office or '未分配'}"), tag("span", f"（{ticket.route_reason}）")]
        ),
        class_="routing",
        id="ticket-routing",
    )


async def assign_block(request: web.Request, ticket: Ticket, login: StaffLogin) -> Markup:
    """Reassign to an office or a colleague, and unclaim."""
    if ticket.status not in OPEN_STATES or ticket.merged_into is not None:
        return Markup("")
    base = f"/console/tickets/{ticket.id}"
    offices = core(request).settings.staff.offices
    accounts = [a for a in await list_accounts(core(request).services.sessions) if a.active]
    parts = [
        post_form(
            f"{base}/assign",
            login,
            join(
                [
                    label("assign-office", "转交科室"),
                    select_box("office", [(o, o) for o in offices], ticket.office, id="assign-office"),
                    button("转交", class_="btn btn-small"),
                ]
            ),
            class_="inline",
        ),
        post_form(
            f"{base}/assign",
            login,
            join(
                [
                    label("assign-colleague", "转给同事"),
                    select_box(
                        "colleague",
                        [(a.name, f"{a.name}（{a.office or '未分科室'}）") for a in accounts],
                        ticket.claimed_by,
                        id="assign-colleague",
                    ),
                    button("转给TA", class_="btn btn-small"),
                ]
            ),
            class_="inline",
        ),
    ]
    if ticket.status == "claimed":
        parts.append(
            post_form(f"{base}/unclaim", login, button("取消认领", class_="btn btn-small"), class_="inline")
        )
    return tag("section", join(parts), class_="assign", aria_label="转交")


def notes_list(notes: list[TicketNote], tz_time: Callable[[datetime], str]) -> Markup:
    """A ticket's internal notes (the live page redraws this list)."""
    items = join(
        tag("li", join([tag("span", f"{n.author} · {tz_time(n.created_at)}", class_="meta"), pre(n.text)]))
        for n in notes
    )
    return tag("ol", items, class_="notes", id="notes")


def note_form(ticket: Ticket, login: StaffLogin) -> Markup:
    """The form to add an internal note."""
    return post_form(
        f"/console/tickets/{ticket.id}/note",
        login,
        join(
            [
                label("note-text", "添加内部备注（用户看不到）"),
                tag("textarea", "", id="note-text", name="text", rows="2", required=True, maxlength="4000"),
                button("保存备注", class_="btn btn-small"),
            ]
        ),
        class_="note",
    )


def answer_with_entry_block(ticket: Ticket, login: StaffLogin) -> Markup:
    """用此条答复 for each candidate, and any entry by its id."""
    if ticket.status in ("closed", "cancelled"):
        return Markup("")
    base = f"/console/tickets/{ticket.id}/answer-entry"
    rows = []
    for c in ticket.candidates or []:
        entry_id = str(c.get("entry_id", ""))
        form = post_form(
            base,
            login,
            join(
                [
                    void("input", type="hidden", name="entry_id", value=entry_id),
                    button("用此条答复并关闭", class_="btn btn-small btn-primary"),
                ]
            ),
            class_="inline",
        )
        rows.append(
            [
                link("/console/knowledge/e/" + entry_id, c.get("title", "")),
                f"{float(c.get('score', 0)):.2f}",
                form,
            ]
        )
    other = post_form(
        base,
        login,
        join(
            [
                label("answer-entry-id", "或按条目编号答复"),
                void(
                    "input",
                    id="answer-entry-id",
                    name="entry_id",
                    required=True,
                    placeholder="例如 faq-bureau-001",
                ),
                button("发送该条答案并关闭", class_="btn btn-small"),
            ]
        ),
        class_="inline",
    )
    hint = tag(
        "p", "发送条目的答案和出处，关闭工单；之后可以把用户的问题存为该条目的另一种问法。", class_="hint"
    )
    body = [tag("h2", "用知识条目答复"), hint]
    if rows:
        body.append(table(["机器人的候选", "得分", ""], rows, class_="candidates"))
    body.append(other)
    return tag("section", join(body), class_="answer-entry")


async def merge_block(request: web.Request, ticket: Ticket, login: StaffLogin) -> Markup:
    """The tickets merged into this one, and open tickets to merge (the most similar questions first)."""
    app = core(request)
    merged = await app.tickets.merged_into(ticket.id)
    parts: list[Markup] = [tag("h2", "合并重复工单")]
    if ticket.merged_into is not None:
        parts.append(
            tag(
                "p",
                join(
                    [
                        "本工单已合并到 ",
                        link(f"/console/tickets/{ticket.merged_into}", f"#{ticket.merged_into}"),
                        "，随它答复。",
                    ]
                ),
            )
        )
        return tag("section", join(parts), class_="merge")
    if merged:
        parts.append(
            tag(
                "p",
                join(
                    [
                        "已合并：",
                        join(
                            (
                                link(f"/console/tickets/{t.id}", f"#{t.id}（{_channel(c)}）")
                                for t, c in merged
                            ),
                            "、",
                        ),
                    ]
                ),
                class_="merged",
            )
        )
    if ticket.status not in OPEN_STATES:
        return tag("section", join(parts), class_="merge")
    others = [q for q in await app.tickets.queue() if q.ticket.id != ticket.id]
    others.sort(key=lambda q: -fuzz.ratio(q.ticket.question, ticket.question))
    choices = others[:MERGE_CHOICES]
    if not choices:
        parts.append(tag("p", "没有其他待处理工单可合并。", class_="hint"))
        return tag("section", join(parts), class_="merge")
    boxes = join(_merge_choice(q, ticket) for q in choices)
    parts.append(
        post_form(
            f"/console/tickets/{ticket.id}/merge",
            login,
            join(
                [tag("ul", boxes, class_="merge-choices"), button("把选中的工单合并到本工单", class_="btn")]
            ),
            class_="merge-form",
        )
    )
    return tag("section", join(parts), class_="merge")


def _merge_choice(q: QueueItem, ticket: Ticket) -> Markup:
    similar = fuzz.ratio(q.ticket.question, ticket.question)
    box_id = f"merge-{q.ticket.id}"
    return tag(
        "li",
        join(
            [
                void("input", type="checkbox", name="ticket_id", value=str(q.ticket.id), id=box_id),
                tag(
                    "label",
                    f"#{q.ticket.id}（{_channel(q.conversation)}，相似度 {similar:.0f}%）：{privacy.mask(q.ticket.question)[:80]}",
                    for_=box_id,
                ),
            ]
        ),
    )


def _channel(conv: Conversation) -> str:
    return {"web": "网页", "telegram": "Telegram", "terminal": "终端"}.get(conv.channel, conv.channel)


# -- actions --------------------------------------------------------------------------------------------
def _back(ticket_id: int, done: str = "", error: str = "", entry: str = "") -> web.Response:
    return redirect(url(f"/console/tickets/{ticket_id}", done=done, error=error[:300], entry=entry))


async def _form(request: web.Request) -> dict[str, list[str]]:
    form = await request.post()
    out: dict[str, list[str]] = {}
    for k, v in form.items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v.strip())
    return out


@routes.post(r"/console/tickets/{ticket_id:\d+}/{action:assign|unclaim|note|merge|answer-entry}")
async def work_action(request: web.Request) -> web.Response:
    """Reassign, unclaim, add a note, merge duplicates, or answer with an entry."""
    app, login = core(request), staff(request)
    ticket_id, action = int(request.match_info["ticket_id"]), request.match_info["action"]
    form = await _form(request)
    first = lambda k: (form.get(k) or [""])[0]  # noqa: E731
    try:
        if action == "assign":
            await assign(request, ticket_id, login.name, first("office"), first("colleague"))
            done = "assigned"
        elif action == "unclaim":
            await app.tickets.unclaim(ticket_id, login.name)
            done = "unclaimed"
        elif action == "note":
            await app.tickets.add_note(ticket_id, login.name, first("text"))
            done = "noted"
        elif action == "merge":
            ids = [int(v) for v in form.get("ticket_id", []) if v.isdigit() and len(v) <= 9]
            await app.tickets.merge(ticket_id, ids, login.name)
            done = "merged"
        else:
            await app.tickets.answer_with_entry(ticket_id, login.name, first("entry_id"))
            return _back(ticket_id, "answered_entry", entry=first("entry_id"))
    except TicketError as exc:
        return _back(ticket_id, error=str(exc))
    return _back(ticket_id, done)


async def assign(request: web.Request, ticket_id: int, actor: str, office: str, colleague: str) -> Ticket:
    """Reassign to ``colleague`` (an active account) or else to ``office``."""
    app = core(request)
    if colleague:
        account = next((a for a in await list_accounts(app.services.sessions) if a.name == colleague), None)
        if account is None or not account.active:
            raise TicketError(f"没有可用的账号「{colleague}」")
        return await app.tickets.assign(
            ticket_id, actor, colleague=colleague, colleague_office=account.office
        )
    return await app.tickets.assign(ticket_id, actor, office=office)

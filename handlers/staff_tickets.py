"""The console's ticket search: every ticket, open or closed, by number, question or transcript, with
filters (status, office, assignee, channel, overdue). Closed tickets are the history."""

from __future__ import annotations

from aiohttp import web

from bot.staff_accounts import list_accounts
from bot.tickets import QueueItem, TicketFilter
from handlers.staff_auth import staff
from handlers.staff_console import CHANNEL_WORDS, STATUS_WORDS, local_time
from handlers.staff_html import (
    Markup,
    button,
    field_row,
    join,
    label,
    link,
    minutes_text,
    page,
    select_box,
    table,
    tag,
    void,
)
from handlers.web_state import core

STATUS_CHOICES = [
    ("open", "待处理（含处理中）"),
    ("done", "已结束（已答复、已关闭、已撤回）"),
    ("all", "全部"),
    *STATUS_WORDS.items(),
]

routes = web.RouteTableDef()


def ticket_filter(query: web.Request | dict) -> TicketFilter:
    """The filter from a query string (unknown values fall back to the defaults)."""
    q = query.query if isinstance(query, web.Request) else query
    status = q.get("status", "open")
    return TicketFilter(
        status=status if status in dict(STATUS_CHOICES) else "open",
        office=q.get("office", "")[:200],
        assignee=q.get("assignee", "")[:100],
        channel=q.get("channel", "")[:32],
        overdue=q.get("overdue", "") in ("1", "true", "on"),
        q=q.get("q", "").strip()[:200],
    )


@routes.get("/console/tickets")
async def tickets_page(request: web.Request) -> web.Response:
    """Search and filter every ticket."""
    app, login = core(request), staff(request)
    f = ticket_filter(request)
    accounts = await list_accounts(app.services.sessions)
    items = await app.tickets.search(f)
    form = tag(
        "form",
        join(
            [
                field_row(
                    label("q", "搜索（工单号、问题、对话内容）"),
                    void("input", id="q", name="q", value=f.q, class_="wide", type="search"),
                ),
                field_row(
                    label("status", "状态"), select_box("status", STATUS_CHOICES, f.status, id="status")
                ),
                field_row(
                    label("office", "科室"),
                    select_box(
                        "office",
                        [("", "全部"), *((o, o) for o in app.settings.staff.offices)],
                        f.office,
                        id="office",
                    ),
                ),
                field_row(
                    label("assignee", "处理人"),
                    select_box(
                        "assignee",
                        [("", "全部"), ("-", "未认领"), *((a.name, a.name) for a in accounts)],
                        f.assignee,
                        id="assignee",
                    ),
                ),
                field_row(
                    label("channel", "渠道"),
                    select_box("channel", [("", "全部"), *CHANNEL_WORDS.items()], f.channel, id="channel"),
                ),
                field_row(
                    label("overdue", "只看超时"),
                    void(
                        "input", type="checkbox", id="overdue", name="overdue", value="1", checked=f.overdue
                    ),
                ),
                button("查找", class_="btn btn-primary"),
            ]
        ),
        method="get",
        action="/console/tickets",
        class_="filters",
    )
    tz = app.settings.staff.timezone
    rows = [_row(q, tz) for q in items]
    body = (
        table(["工单", "科室", "渠道", "问题", "状态", "处理人", "提问时间", "等待"], rows, class_="tickets")
        if rows
        else tag("p", "没有符合条件的工单。", class_="hint")
    )
    return page(
        "工单查询", join([form, tag("p", f"共 {len(items)} 张。", class_="hint"), body]), login, "tickets"
    )


def _row(q: QueueItem, tz: str) -> list[object]:
    t = q.ticket
    status = STATUS_WORDS.get(t.status, t.status) + (
        f"（已合并到 #{t.merged_into}）" if t.merged_into else ""
    )
    wait: Markup | str = minutes_text(q.working_minutes) if t.status in ("open", "claimed") else "—"
    if q.overdue:
        wait = tag("span", f"{wait}，已超时", class_="overdue")
    return [
        link(f"/console/tickets/{t.id}", f"#{t.id}"),
        t.office or "—",
        CHANNEL_WORDS.get(q.conversation.channel, q.conversation.channel),
        tag("span", t.question[:120], class_="question"),
        status,
        t.claimed_by or "—",
        local_time(t.created_at, tz),
        wait,
    ]

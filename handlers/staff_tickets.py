"""The console's ticket search: every ticket, open or closed, by number, question or transcript, with
filters (status, office, assignee, channel, overdue). Closed tickets are the history."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot import privacy
from bot.export import ExportError, day_range, message_rows, ticket_rows
from bot.staff_accounts import list_accounts
from bot.tickets import QueueItem, TicketFilter
from handlers.staff_auth import require, staff
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
from handlers.web_security import ApiError
from handlers.web_state import core
from handlers.web_ticket_page import access
from knowledge.models import utcnow

log = logging.getLogger("policybot.console")

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
    contacts = await access(request).contacts([q.ticket.id for q in items])  # masked
    rows = [_row(q, tz, contacts.get(q.ticket.id, "")) for q in items]
    body = (
        table(["工单", "科室", "渠道", "问题", "状态", "处理人", "提问时间", "等待"], rows, class_="tickets")
        if rows
        else tag("p", "没有符合条件的工单。", class_="hint")
    )
    content = join(
        [form, tag("p", f"共 {len(items)} 张。", class_="hint"), body, export_form(login.can("admin"))]
    )
    return page("工单查询", content, login, "tickets")


def export_form(admin: bool) -> Markup:
    """Download tickets or conversations of a date range as CSV (masked unless an admin asks)."""
    fields = [
        field_row(
            label("export-from", "开始日期"), void("input", type="date", id="export-from", name="from")
        ),
        field_row(label("export-to", "结束日期"), void("input", type="date", id="export-to", name="to")),
        field_row(
            label("export-what", "内容"),
            select_box(
                "what", [("tickets", "工单"), ("conversations", "全部对话记录")], "tickets", id="export-what"
            ),
        ),
    ]
    if admin:
        fields.append(
            field_row(
                label("export-unmasked", "不遮盖个人信息（仅管理员）"),
                void("input", type="checkbox", id="export-unmasked", name="unmasked", value="1"),
            )
        )
    hint = tag(
        "p", "默认导出最近 30 天；个人信息（电话、证件号、姓名等）已遮盖，提问人姓名不导出。", class_="hint"
    )
    return join(
        [
            tag("h2", "导出 CSV"),
            hint,
            tag(
                "form",
                join([*fields, button("下载", class_="btn")]),
                method="get",
                action="/console/export.csv",
                class_="filters",
            ),
        ]
    )


@routes.get("/console/export.csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD&what=tickets|conversations&unmasked=1`` (unmasked: admins)."""
    app, login = core(request), staff(request)
    masked = request.query.get("unmasked", "") not in ("1", "true", "on")
    if not masked:
        require(request, "admin", "导出未遮盖个人信息的记录")
    what = request.query.get("what", "tickets")
    if what not in ("tickets", "conversations"):
        raise ApiError(400, "bad_what", "what 应为 tickets 或 conversations")
    tz = app.settings.staff.timezone
    zone = ZoneInfo(tz)
    try:
        lo, hi = day_range(
            request.query.get("from", ""), request.query.get("to", ""), tz, utcnow().astimezone(zone).date()
        )
    except ExportError as exc:
        raise ApiError(400, "bad_range", str(exc)) from None
    log.info(
        "console export",
        extra={
            "staff": login.name,
            "what": what,
            "masked": masked,
            "from": lo.isoformat(),
            "to": hi.isoformat(),
        },
    )
    last_day = (hi - timedelta(days=1)).astimezone(zone)
    name = f"policybot-{what}-{lo.astimezone(zone):%Y%m%d}-{last_day:%Y%m%d}.csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    rows = ticket_rows if what == "tickets" else message_rows
    async for line in rows(app.services.sessions, lo, hi, tz, masked):
        await response.write(line.encode("utf-8"))
    await response.write_eof()
    return response


def _row(q: QueueItem, tz: str, contact: str = "") -> list[object]:
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
        join(
            [
                tag("span", privacy.mask(t.question)[:120], class_="question"),
                tag("small", f"（联系方式：{contact}）", class_="contact") if contact else Markup(""),
            ]
        ),
        status,
        t.claimed_by or "—",
        local_time(t.created_at, tz),
        wait,
    ]

"""The console's 推送审核 page: broadcasts waiting for review with the time left to the 12-hour deadline
(overdue ones flagged), confirm or drop each, the latest sent ones, and the subscription figures; and
``/console/api/broadcasts`` with the same as JSON. Routes are guarded by ``staff_auth`` like the rest."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.broadcasts import HEADINGS, BroadcastError, PendingView
from bot.push_stats import PushStats, push_stats
from bot.staff_accounts import StaffLogin
from handlers.staff_auth import staff
from handlers.staff_console import local_time
from handlers.staff_html import (
    Markup,
    button,
    join,
    minutes_text,
    notice,
    page,
    post_form,
    redirect,
    table,
    tag,
)
from handlers.web_security import ok
from handlers.web_state import core

routes = web.RouteTableDef()
STATUS_WORDS = {"pending": "待审核", "sent": "已推送", "dropped": "已放弃"}
DONE_WORDS = {"approved": "已确认，正在推送给订阅者。", "dropped": "已放弃，不会推送。"}


def left_text(left: timedelta) -> Markup:
    """Time left to the deadline, or how long it is overdue (flagged)."""
    minutes = left.total_seconds() / 60
    if minutes > 0:
        return tag("span", f"剩余 {minutes_text(minutes)}")
    return tag("span", f"已超时 {minutes_text(-minutes)}", class_="overdue")


def pending_rows(items: list[PendingView], login: StaffLogin, tz: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for v in items:
        b = v.broadcast
        actions = join(
            [
                post_form(
                    f"/console/broadcasts/{b.id}/approve",
                    login,
                    button("确认推送", class_="btn btn-primary"),
                    class_="inline",
                ),
                post_form(
                    f"/console/broadcasts/{b.id}/drop",
                    login,
                    button("放弃", class_="btn btn-danger"),
                    class_="inline",
                ),
            ]
        )
        what = join([tag("strong", b.title), tag("div", b.summary, class_="pre")])
        rows.append(
            [
                f"#{b.id}",
                HEADINGS.get(b.kind, b.kind),
                what,
                v.subscribers,
                local_time(b.published_at, tz),
                left_text(v.left),
                actions,
            ]
        )
    return rows


def stats_block(s: PushStats) -> Markup:
    per_category = (
        table(["分类", "订阅数"], sorted(s.subscribers.items()))
        if s.subscribers
        else notice("暂无分类订阅。")
    )
    within = "—" if s.within_deadline is None else f"{s.within_deadline:.1%}"
    median = "—" if s.median_minutes is None else minutes_text(s.median_minutes)
    figures = table(
        ["指标", "数值"],
        [
            ["关注单条内容的会话", s.followers],
            [
                "推送（已推送 / 已放弃 / 待审核）",
                f"{s.broadcasts.get('sent', 0)} / {s.broadcasts.get('dropped', 0)} / {s.broadcasts.get('pending', 0)}",
            ],
            ["送达 / 失败 / 发送中", f"{s.delivered} / {s.failed} / {s.waiting}"],
            ["从变更到送达（中位数）", median],
            [f"{s.deadline_hours} 小时内送达的比例", within],
            ["退订次数", s.unsubscribes],
        ],
    )
    return join([tag("h2", "订阅统计"), per_category, figures])


@routes.get("/console/broadcasts")
async def broadcasts_page(request: web.Request) -> web.Response:
    """Pending broadcasts (most urgent first), the latest handled ones, and the figures."""
    app, login = core(request), staff(request)
    tz = app.settings.staff.timezone
    sub = app.settings.subscriptions
    pending = await app.broadcasts.pending()
    mode = (
        f"审核模式：每条推送需工作人员确认，须在内容变更后 {sub.deadline_hours} 小时内推送；超时的会标红并发到工作人员群。"
        if sub.review
        else "未开启审核：内容发布后立即推送给订阅者。"
    )
    parts: list[object] = []
    done = request.query.get("done", "")
    if done in DONE_WORDS:
        parts.append(notice(DONE_WORDS[done], "ok"))
    parts.append(tag("p", mode))
    overdue = sum(1 for v in pending if v.overdue)
    if overdue:
        parts.append(notice(f"{overdue} 条推送已超过 {sub.deadline_hours} 小时时限，请尽快处理。", "error"))
    parts.append(tag("h2", f"待审核（{len(pending)}）"))
    parts.append(
        table(
            ["编号", "类型", "内容", "订阅者", "变更时间", "时限", "操作"],
            pending_rows(pending, login, tz),
            class_="queue",
        )
        if pending
        else notice("没有待审核的推送。", "ok")
    )
    recent = await app.broadcasts.recent(20)
    if recent:
        rows = [
            [
                f"#{b.id}",
                HEADINGS.get(b.kind, b.kind),
                b.title,
                STATUS_WORDS.get(b.status, b.status),
                b.recipients,
                b.reviewed_by or "自动",
                local_time(b.released_at, tz),
            ]
            for b in recent
        ]
        parts += [
            tag("h2", "最近处理"),
            table(["编号", "类型", "标题", "状态", "接收人数", "审核人", "处理时间"], rows),
        ]
    parts.append(stats_block(await push_stats(app.services.sessions, sub.deadline_hours)))
    return page("推送审核", join(parts), login, "broadcasts")


@routes.post(r"/console/broadcasts/{broadcast_id:\d+}/{action:approve|drop}")
async def broadcast_action(request: web.Request) -> web.Response:
    """Confirm (send now) or drop one pending broadcast."""
    app, login = core(request), staff(request)
    broadcast_id, action = int(request.match_info["broadcast_id"]), request.match_info["action"]
    try:
        if action == "approve":
            await app.broadcasts.approve(broadcast_id, login.name)
        else:
            await app.broadcasts.drop(broadcast_id, login.name)
    except BroadcastError as exc:
        return page("推送审核", notice(str(exc), "error"), login, "broadcasts", status=409)
    return redirect(f"/console/broadcasts?done={'approved' if action == 'approve' else 'dropped'}")


@routes.get("/console/api/broadcasts")
async def broadcasts_json(request: web.Request) -> web.Response:
    """Pending broadcasts with seconds left (negative: overdue) and the figures, as JSON."""
    app = core(request)
    pending = await app.broadcasts.pending()
    items = [
        {
            "id": v.broadcast.id,
            "kind": v.broadcast.kind,
            "title": v.broadcast.title,
            "summary": v.broadcast.summary,
            "subscribers": v.subscribers,
            "seconds_left": round(v.left.total_seconds()),
            "overdue": v.overdue,
        }
        for v in pending
    ]
    stats = await push_stats(app.services.sessions, app.settings.subscriptions.deadline_hours)
    return ok({"review": app.settings.subscriptions.review, "pending": items, "stats": stats.to_json()})

"""The ticket reply page ``/t/{ticket}-{code}``: a web ticket's conversation (the question, the
visitor's additions and the staff's replies) for whoever holds the code, from any browser and without
the visitor's token (bot/contact.py). A wrong code and an unknown ticket get the same 404; requests are
limited per client address (``[desk] reply_page_per_minute``), right or wrong.

``offer_page`` gives a web visitor the page's address once, when one of their tickets opens.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import App
from bot.contact import PAGE_PATH, TicketAccessService
from bot.limits import RateLimiter, per_minute
from bot.messages import IncomingMessage, Reply
from bot.protocol import is_id
from handlers.web_security import check_rate, client_address
from handlers.web_state import WEB_SETTINGS, core

PAGE_LIMITER = web.AppKey("policybot_ticket_page_limiter", RateLimiter)
STATUS_WORDS = {
    "open": "等待处理",
    "claimed": "处理中",
    "answered": "已答复",
    "closed": "已关闭",
    "cancelled": "已撤回",
}
NOT_FOUND = "没有找到这个工单答复页。请检查链接是否完整（工单号-编码），或回到咨询页面重新提问。"

routes = web.RouteTableDef()


def setup(application: web.Application, app: App) -> None:
    """The page's rate limiter (per client address)."""
    application[PAGE_LIMITER] = per_minute("ticket-page", app.settings.desk.reply_page_per_minute, app.limits)


def access(request: web.Request) -> TicketAccessService:
    app = core(request)
    return TicketAccessService(app.services.sessions, app.tickets)


def site_url(request: web.Request) -> str:
    """This site's address as visitors see it: ``[web] public_url``, else the request's origin."""
    public = request.app[WEB_SETTINGS].public_url
    return public.rstrip("/") if public else str(request.url.origin())


async def offer_page(request: web.Request, visitor: IncomingMessage, replies: list[Reply]) -> list[Reply]:
    """The reply page's address for each ticket these replies opened (shown once, never stored)."""
    notices = []
    for r in replies:
        if r.kind == "escalated" and r.ticket_id is not None:
            notice = await access(request).page_for(visitor, r.ticket_id, site_url(request))
            if notice is not None:
                notices.append(notice)
    return notices


def _time(dt: datetime, tz: str) -> str:
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{html.escape(title)} · 鼓楼区商务局</title>\n"
        '<link rel="stylesheet" href="/static/chat.css">\n</head>\n<body class="mode-page ticket-page">\n'
        '<header class="site-header"><div class="site-header-inner">'
        '<span class="emblem" aria-hidden="true">商</span><div><p class="site-name">福州市鼓楼区商务局</p>'
        f'<h1 class="site-title">{html.escape(title)}</h1></div></div></header>\n'
        f'<main class="content">{body}</main>\n'
        '<footer class="site-footer"><p class="footer-links"><a href="/">回到在线咨询</a></p></footer>\n'
        "</body>\n</html>\n"
    )
    response = web.Response(text=text, content_type="text/html", charset="utf-8", status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _bubble(author: str, text: str, when: str) -> str:
    who = {"user": "我", "staff": "工作人员"}.get(author, "咨询助手")
    badge = '<span class="badge badge-staff">人工答复</span>' if author == "staff" else ""
    return (
        f'<div class="msg msg-{author}"><p class="msg-meta"><span class="msg-who">{who}</span>{badge}'
        f'<time class="msg-time">{html.escape(when)}</time></p>'
        f'<p class="msg-text">{html.escape(text)}</p></div>'
    )


@routes.get("/t/{code}")
async def ticket_page(request: web.Request) -> web.Response:
    """The ticket's conversation for the holder of its code; 404 for anything else."""
    await check_rate(request.app[PAGE_LIMITER], f"t:{client_address(request)}", "requests for ticket pages")
    match = PAGE_PATH.match(request.match_info["code"])
    number = int(match.group(1)) if match else 0
    found = await access(request).page(number, match.group(2)) if match and is_id(number) else None
    if found is None:
        return _page("工单答复", f'<p class="notice notice-warn">{html.escape(NOT_FOUND)}</p>', status=404)
    t, tz = found.ticket, core(request).settings.staff.timezone
    status = STATUS_WORDS.get(t.status, t.status)
    facts = [
        f"<dt>工单号</dt><dd>#{t.id}</dd>",
        f'<dt>状态</dt><dd class="ticket-status">{html.escape(status)}</dd>',
        f"<dt>提交时间</dt><dd>{html.escape(_time(t.created_at, tz))}</dd>",
    ]
    if found.contact:
        facts.append(f"<dt>联系方式</dt><dd>{html.escape(found.contact)}</dd>")
    question = t.question.strip()
    bubbles = (
        []
        if any(m.text.strip() == question for m in found.messages[:1])
        else [_bubble("user", question, _time(t.created_at, tz))]
    )
    bubbles += [_bubble(m.author, m.text, _time(m.created_at, tz)) for m in found.messages]
    waiting = (
        '<p class="notice">工作人员答复后会显示在这里，请稍后刷新本页。</p>'
        if t.status in ("open", "claimed")
        else ""
    )
    body = (
        f'<section class="panel ticket"><dl class="ticket-facts">{"".join(facts)}</dl>'
        f'<div class="log ticket-log" role="log" aria-label="工单记录">{"".join(bubbles)}</div>{waiting}</section>'
    )
    return _page(f"工单 #{t.id} 的答复", body)

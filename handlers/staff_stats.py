"""The console's statistics (``/console/overview``): questions per day by outcome, answer and escalation
rates, first response and the SLA per office, satisfaction, top categories; each as a server-rendered
SVG chart (``staff_charts``) with the table of numbers behind it."""

from __future__ import annotations

from aiohttp import web

from bot.ratings import RATING_SCORES
from bot.stats import Overview
from bot.stats import overview as compute_overview
from handlers.staff_auth import staff
from handlers.staff_charts import AMBER, BLUE, GREEN, RED, hbars, share_bar, stacked_days
from handlers.staff_html import Markup, join, link, minutes_text, page, table, tag, url
from handlers.web_state import core

routes = web.RouteTableDef()


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def rating_text(ratings: dict[str, int]) -> str:
    """满意 / 一般 / 不满意 of the staff replies, with the share satisfied."""
    good, fair, bad = (ratings.get(s, 0) for s in RATING_SCORES)
    total = good + fair + bad
    return f"满意 {good} · 一般 {fair} · 不满意 {bad}（满意率 {_pct(good, total)}）"


def cards(o: Overview) -> Markup:
    """The headline numbers."""
    median = "—" if o.median_response_minutes is None else minutes_text(o.median_response_minutes)
    items = [
        ("近 14 天提问", str(o.questions)),
        ("机器人直接回答率", f"{_pct(o.answered, o.questions)}（{o.answered}）"),
        ("转人工率", f"{_pct(o.escalated, o.questions)}（{o.escalated}）"),
        ("工作人员已答复", f"{o.staff_answered} / {o.tickets_opened} 张工单"),
        ("首次答复用时中位数", median),
        ("待处理工单", f"{o.open_tickets} 张，超时 {o.past_sla} 张"),
        (
            "满意度（有用占比）",
            f"{_pct(o.helpful, o.helpful + o.not_helpful)}（{o.helpful + o.not_helpful} 次评价）",
        ),
        ("工作人员答复评价", rating_text(o.ratings)),
    ]
    return tag(
        "dl",
        join(tag("div", join([tag("dt", k), tag("dd", v)]), class_="card") for k, v in items),
        class_="cards",
    )


def _section(title: str, chart: Markup, numbers: Markup) -> Markup:
    return tag(
        "section",
        join(
            [
                tag("h2", title),
                tag("figure", chart, class_="chart-box"),
                tag("details", join([tag("summary", "查看数字"), numbers]), open=True),
            ]
        ),
        class_="stat",
    )


@routes.get("/console/overview")
async def overview_page(request: web.Request) -> web.Response:
    """The statistics of the last 14 days."""
    o = await compute_overview(core(request).tickets)
    days = [d.day for d in o.days]
    per_day = stacked_days(
        days,
        [
            ("直接回答", GREEN, [d.answered for d in o.days]),
            ("给出候选", AMBER, [d.suggested for d in o.days]),
            ("转人工", RED, [d.escalated for d in o.days]),
        ],
        "每日提问（按结果）",
    )
    day_rows = [[d.day, d.questions, d.answered, d.suggested, d.escalated] for d in o.days]
    rates = share_bar(
        [("直接回答", GREEN, o.answered), ("给出候选", AMBER, o.suggested), ("转人工", RED, o.escalated)],
        "回答率与转人工率",
    )
    rate_rows = [
        ["直接回答", o.answered, _pct(o.answered, o.questions)],
        ["给出候选", o.suggested, _pct(o.suggested, o.questions)],
        ["转人工", o.escalated, _pct(o.escalated, o.questions)],
    ]
    offices = [x for x in o.offices if x.opened]
    response = hbars(
        [
            (
                x.office,
                x.median_first_response_minutes or 0.0,
                minutes_text(x.median_first_response_minutes)
                if x.median_first_response_minutes is not None
                else "未答复",
            )
            for x in offices
        ],
        "各科室首次答复用时中位数",
    )
    sla = hbars(
        [
            (x.office, x.sla_share * 100, f"{x.sla_share:.0%}（{x.within_sla}/{x.within_sla + x.past_sla}）")
            for x in offices
        ],
        f"各科室按时答复率（时限 {o.sla_minutes} 个工作分钟）",
        GREEN,
    )
    office_rows = [
        [
            x.office,
            x.opened,
            x.answered,
            minutes_text(x.median_first_response_minutes)
            if x.median_first_response_minutes is not None
            else "—",
            x.within_sla,
            x.past_sla,
            _pct(x.within_sla, x.within_sla + x.past_sla),
        ]
        for x in o.offices
    ]
    satisfaction = share_bar([("有用", GREEN, o.helpful), ("没解决", RED, o.not_helpful)], "用户满意度")
    categories = hbars([(c, float(n), str(n)) for c, n in o.categories], "提问最多的分类", BLUE)
    unanswered = [[link(url("/console/try", q=q), q[:200]), n] for q, n in o.unanswered]
    content = join(
        [
            cards(o),
            _section(
                "每日提问（按结果）",
                per_day,
                table(["日期", "提问", "直接回答", "候选", "转人工"], day_rows, class_="days"),
            ),
            _section("回答率与转人工率", rates, table(["结果", "提问", "占比"], rate_rows)),
            _section(
                "各科室首次答复用时与按时答复率",
                join([response, sla]) if offices else tag("p", "（暂无工单）", class_="hint"),
                table(
                    ["科室", "工单", "已答复", "首次答复中位数", "按时", "超时", "按时率"],
                    office_rows,
                    class_="offices",
                ),
            ),
            _section(
                "用户满意度",
                satisfaction,
                table(["评价", "次数"], [["有用", o.helpful], ["没解决", o.not_helpful]]),
            ),
            _section(
                "提问最多的分类",
                categories if o.categories else tag("p", "（暂无）", class_="hint"),
                table(["分类", "提问"], [[c, n] for c, n in o.categories], class_="categories"),
            ),
            tag("h2", "最常见的未直接回答问题"),
            tag(
                "p", join(["按需求归组的完整列表见 ", link("/console/gaps", "知识缺口"), "。"]), class_="hint"
            ),
            table(["问题", "次数"], unanswered, class_="unanswered")
            if unanswered
            else tag("p", "（暂无）", class_="hint"),
        ]
    )
    return page("统计", content, staff(request), "overview")

"""HTML for the staff console: a page layout and small builders. Every value is escaped here.

Builders take plain text and return markup (``Markup``, a ``str`` subclass marking text as already
safe); ``e()`` escapes anything that is not ``Markup``. Pages load /static/console.css and /static/console.js (live updates).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.staff_accounts import ROLE_WORDS, StaffLogin


class Markup(str):
    """Text that is already HTML (built by these helpers from escaped parts)."""


def e(value: object) -> Markup:
    """Escape a value for HTML text or a quoted attribute (Markup passes through)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    """Concatenate escaped parts."""
    return Markup(sep.join(e(p) for p in parts))


def tag(element: str, content: object = "", /, **attrs: object) -> Markup:
    """``<element attrs>content</element>``; attribute names use ``_`` for ``-``, ``class_`` for class."""
    return Markup(f"<{element}{_attrs(attrs)}>{e(content)}</{element}>")


def void(element: str, /, **attrs: object) -> Markup:
    """A void element such as ``<input>``."""
    return Markup(f"<{element}{_attrs(attrs)}>")


def _attrs(attrs: dict[str, object]) -> str:
    out = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        out.append(f" {name}" if value is True else f' {name}="{e(value)}"')
    return "".join(out)


def link(href: str, text: object, /, **attrs: object) -> Markup:
    """An ``<a>`` element."""
    return tag("a", text, href=href, **attrs)


def entry_href(entry_id: str) -> str:
    """The console URL of a knowledge entry (ids may hold ``/`` and ``#``)."""
    return "/console/knowledge/e/" + quote(entry_id, safe="")


def url(path: str, **query: object) -> str:
    """A path with a query string (empty values left out)."""
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(q)}" if q else path


def csrf_field(login: StaffLogin) -> Markup:
    """The hidden CSRF input every console form carries."""
    return void("input", type="hidden", name="csrf", value=login.csrf_token)


def post_form(action: str, login: StaffLogin, content: object, **attrs: object) -> Markup:
    """A POST form with its CSRF token."""
    return tag("form", join([csrf_field(login), content]), method="post", action=action, **attrs)


def button(text: object, **attrs: object) -> Markup:
    """A submit button."""
    attrs.setdefault("type", "submit")
    attrs.setdefault("class_", "btn")
    return tag("button", text, **attrs)


def field_row(label: Markup | None, control: Markup, hint: object = "") -> Markup:
    """A form row: label, control (with the id the label names) and an optional hint."""
    hint_html = tag("p", hint, class_="hint") if hint else Markup("")
    return tag("div", join([label or Markup(""), control, hint_html]), class_="field")


def label(for_id: str, text: object) -> Markup:
    """A ``<label>``."""
    return tag("label", text, for_=for_id)


def table(headers: Sequence[object], rows: Iterable[Sequence[object]], **attrs: object) -> Markup:
    """A table; cells are escaped unless Markup."""
    head = tag("tr", join(tag("th", h, scope="col") for h in headers))
    # data-label: on a phone each row becomes a card whose cells name their column (console.css).
    names = [str(h) for h in headers]
    body = join(
        tag(
            "tr",
            join(tag("td", c, data_label=names[i] if i < len(names) else None) for i, c in enumerate(row)),
        )
        for row in rows
    )
    return tag("table", join([tag("thead", head), tag("tbody", body)]), **attrs)


def notice(text: object, kind: str = "info") -> Markup:
    """A message box (``info``, ``ok``, ``error``)."""
    role = "alert" if kind == "error" else "status"
    return tag("p", text, class_=f"notice notice-{kind}", role=role)


def pre(text: object) -> Markup:
    """Multi-line user or knowledge text, shown as is (escaped)."""
    return tag("div", text, class_="pre")


# The console's pages: (path, label, key, the role that sees it). A new page adds one line here.
NAV: list[tuple[str, str, str, str]] = [
    ("/console", "工单队列", "queue", "agent"),
    ("/console/broadcasts", "推送审核", "broadcasts", "agent"),
    ("/console/tickets", "工单查询", "tickets", "agent"),
    ("/console/knowledge", "知识库", "knowledge", "agent"),
    ("/console/review", "知识审核", "review", "agent"),
    ("/console/gaps", "知识缺口", "gaps", "agent"),
    ("/console/canned", "常用答复", "canned", "agent"),
    ("/console/hot", "热点问题", "hot", "agent"),
    ("/console/try", "试问", "try", "agent"),
    ("/console/overview", "统计", "overview", "agent"),
    ("/console/admin", "账号", "admin", "admin"),
]


def page(
    title: str, content: object, login: StaffLogin | None = None, active: str = "", status: int = 200
) -> web.Response:
    """A whole console page."""
    nav = Markup("")
    if login is not None:
        items = join(
            tag("li", link(href, text, aria_current="page" if key == active else None))
            for href, text, key, role in NAV
            if login.can(role)
        )
        logout = post_form("/console/logout", login, button("退出", class_="btn btn-small"), class_="logout")
        nav = tag(
            "nav",
            join([tag("ul", items), tag("span", _who(login), class_="who"), logout]),
            class_="console-nav",
            aria_label="工作台导航",
        )
    doc = join(
        [
            Markup('<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'),
            Markup('<meta name="viewport" content="width=device-width, initial-scale=1">\n'),
            tag("title", f"{title} · policybot 工作台"),
            Markup('\n<link rel="stylesheet" href="/static/console.css">\n'),
            Markup('<script src="/static/console.js" defer></script>\n</head>\n<body>\n'),
            tag(
                "header",
                join([tag("p", "鼓楼区商务局 · 政策咨询机器人", class_="brand"), nav]),
                class_="console-header",
            ),
            tag("main", join([tag("h1", title), content]), class_="console-main"),
            Markup("\n</body>\n</html>\n"),
        ]
    )
    return web.Response(text=doc, content_type="text/html", charset="utf-8", status=status)


def _who(login: StaffLogin) -> str:
    return f"已登录：{login.name}（{login.office or '未分科室'} · {ROLE_WORDS.get(login.role, login.role)}）"


def select_box(name: str, options: Sequence[tuple[str, str]], current: str = "", **attrs: object) -> Markup:
    """A ``<select>`` with (value, text) options."""
    opts = join(tag("option", text, value=value, selected=(value == current)) for value, text in options)
    return tag("select", opts, name=name, **attrs)


def redirect(location: str) -> web.Response:
    """303 See Other (after a successful POST); cookies can be set on it."""
    return web.Response(status=303, headers={"Location": location})


def minutes_text(minutes: float) -> str:
    """A waiting time in words: 5 分钟, 2 小时 10 分钟, 3 天 4 小时."""
    m = int(minutes)
    if m < 60:
        return f"{m} 分钟"
    if m < 24 * 60:
        return f"{m // 60} 小时 {m % 60} 分钟"
    return f"{m // (24 * 60)} 天 {(m % (24 * 60)) // 60} 小时"

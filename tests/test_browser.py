"""The chat page and the staff console in a real headless Chromium (Debian's, driven by Playwright).

The server runs in-process on 127.0.0.1, port 0. Screenshots go to tests/artifacts/ (gitignored).
Needs ``apt-get install -y chromium fonts-wqy-microhei`` (the font, or Chinese shows as boxes).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from bot.app import App
from bot.staff_accounts import create_account
from handlers.web import start_web

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STAFF, PASSWORD = "wang", "correct-horse-9"
ANSWERED = "鼓楼区商务局的电话是多少？"
SUGGESTED = "备案"
ESCALATED = "会议室周末能借用吗"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
UNKNOWN_FOR_LINKS = "火星上养骆驼需要什么许可"

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium fonts-wqy-microhei)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e .[test])"
)
expect = playwright_api.expect


@dataclass
class Site:
    """The running server and a launched browser."""

    app: App
    url: str
    browser: object
    dialogs: list[str]

    async def page(self, width: int = 1280, height: int = 860, mobile: bool = False):
        """A new page in a fresh browser context (its own localStorage and cookies)."""
        context = await self.browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": width, "height": height}, locale="zh-CN", is_mobile=mobile, has_touch=mobile
        )
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", lambda d: self.dialogs.append(d.message))
        return page


@pytest.fixture
async def site(app: App) -> AsyncIterator[Site]:
    """The web server of ``app`` on a free port with 1-second polling, and Chromium."""
    app.services.settings = app.settings.replace("web", port=0, poll_seconds=1)
    await create_account(
        app.services.sessions,
        STAFF,
        PASSWORD,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    url = await start_web(app)
    ARTIFACTS.mkdir(exist_ok=True)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield Site(app, url, browser, [])
        finally:
            await browser.close()


async def ask(page, question: str) -> None:
    """Type a question and send it."""
    await page.fill("#question", question)
    await page.click("#send")


async def shot(page, name: str, full_page: bool = False) -> None:
    """Save a screenshot to tests/artifacts/ (the chat's message list scrolls inside the viewport, and a
    full-page capture would reset that scroll position: use it for console pages only)."""
    await page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


async def test_visitor_asks_sees_answer_and_gives_feedback(site: Site) -> None:
    page = await site.page()
    await page.goto(site.url)
    await expect(page.locator(".msg-welcome")).to_be_visible()
    await ask(page, ANSWERED)
    answer = page.locator(".msg.kind-answer").last
    await expect(answer.locator(".msg-text")).to_contain_text("0591")
    await expect(answer.locator(".msg-source")).to_contain_text("来源：")
    await expect(page.locator(".msg-user .msg-text").last).to_have_text(ANSWERED)
    await answer.get_by_role("button", name="有用").click()
    await expect(page.locator(".msg-bot .msg-text").last).to_have_text("感谢您的反馈！")
    await shot(page, "chat-answer.png")
    # The conversation survives a reload (the visitor token is in localStorage).
    await page.reload()
    await expect(page.locator(".msg-user .msg-text").first).to_have_text(ANSWERED)
    await expect(page.locator(".msg.kind-answer")).to_have_count(1)


async def test_visitor_picks_a_candidate(site: Site) -> None:
    page = await site.page()
    await page.goto(site.url)
    await ask(page, SUGGESTED)
    suggestions = page.locator(".msg.kind-suggestions").last
    await expect(suggestions.locator("button.choice").first).to_be_visible()
    label = await suggestions.locator("button.choice").first.text_content()
    await suggestions.locator("button.choice").first.click()
    await expect(page.locator(".msg.kind-answer")).to_have_count(1)
    await expect(page.locator(".msg.kind-answer .msg-source")).to_contain_text("来源：")
    await expect(suggestions.locator("button.choice-chosen")).to_have_text(label or "")
    await shot(page, "chat-suggestions.png")


async def test_escalation_staff_reply_reaches_the_page_without_reload(site: Site) -> None:
    visitor = await site.page()
    await visitor.goto(site.url)
    await ask(visitor, ESCALATED)
    # No reliable answer: said so, the closest entries, and 转人工; no ticket until the visitor asks.
    no_answer = visitor.locator(".msg.kind-no_answer")
    await expect(no_answer.locator(".msg-text")).to_contain_text("这个问题我暂时还没有准确的答案")
    human = no_answer.get_by_role("button", name="转人工")
    await expect(human).to_have_class("choice choice-human")
    assert await site.app.tickets.queue() == []
    await shot(visitor, "chat-no-answer.png")
    await human.click()
    escalated = visitor.locator(".msg.kind-escalated")
    await expect(escalated).to_contain_text("已为您转人工，工单号 #")
    await expect(escalated.get_by_role("button", name="查看进度")).to_be_visible()
    await expect(escalated).not_to_contain_text("/status")
    await shot(visitor, "chat-no-answer-human.png")
    ticket_id = (await site.app.tickets.queue())[0].ticket.id

    staff = await site.page()
    await staff.goto(site.url + "console")
    await expect(staff.locator("h1")).to_have_text("工作台登录")  # 403 page with the login form
    await staff.fill("#name", STAFF)
    await staff.fill("#password", PASSWORD)
    await staff.get_by_role("button", name="登录").click()
    await expect(staff.locator("h1")).to_have_text("工单队列")
    await expect(staff.locator("table.queue")).to_contain_text(ESCALATED)
    await shot(staff, "console-queue.png", full_page=True)
    await staff.get_by_role("link", name=f"#{ticket_id}").click()
    await staff.get_by_role("button", name="认领").click()
    await expect(staff.locator(".notice-ok")).to_contain_text("已认领")
    await staff.fill("#reply-text", "会议室不对外出借，请见谅。")
    await staff.get_by_role("button", name="发送答复").click()
    await expect(staff.locator(".notice-ok")).to_contain_text("答复已发送")
    await shot(staff, "console-ticket.png", full_page=True)

    reply = visitor.locator(".msg-staff")
    await expect(reply).to_contain_text("会议室不对外出借", timeout=8_000)  # by polling, no reload
    await expect(reply.locator(".badge-staff")).to_have_text("人工答复")
    await shot(visitor, "chat-staff-reply.png")

    await staff.goto(site.url + "console/overview")
    await expect(staff.locator(".cards")).to_contain_text("工作人员已答复")
    await shot(staff, "console-overview.png", full_page=True)
    await staff.goto(site.url + "console/knowledge/e/guide-laundry-filing")
    await expect(staff.locator("#section-name-0")).to_have_value("事项名称")
    await shot(staff, "console-knowledge-edit.png", full_page=True)
    await staff.goto(site.url + "console/try?q=" + ANSWERED)
    await expect(staff.locator("table.explain")).to_be_visible()
    await shot(staff, "console-try.png", full_page=True)


async def test_xss_payload_shows_as_text_in_chat_and_console(site: Site) -> None:
    page = await site.page()
    await page.goto(site.url)
    await ask(page, XSS)
    await expect(page.locator(".msg-user .msg-text").last).to_have_text(XSS)
    await expect(page.locator("#log img")).to_have_count(0)
    await expect(page.locator("#log script")).to_have_count(0)
    await shot(page, "chat-xss.png")
    await page.locator(".msg.kind-no_answer").get_by_role("button", name="转人工").click()
    await expect(page.locator(".msg.kind-escalated")).to_contain_text("工单号 #")

    staff = await site.page()
    await staff.goto(site.url + "console/login")
    await staff.fill("#name", STAFF)
    await staff.fill("#password", PASSWORD)
    await staff.get_by_role("button", name="登录").click()
    await expect(staff.locator("table.queue .question").first).to_have_text(XSS)
    await expect(staff.locator("main img")).to_have_count(0)
    ticket_id = (await site.app.tickets.queue())[0].ticket.id
    await staff.goto(f"{site.url}console/tickets/{ticket_id}")
    await expect(staff.locator(".pre").first).to_have_text(XSS)
    await expect(staff.locator("main img")).to_have_count(0)
    await shot(staff, "console-xss.png", full_page=True)
    await page.wait_for_timeout(300)
    assert site.dialogs == []


LONG = "我想向鼓楼区商务局申请公开一份文件，怎么申请？"  # a long answer, with buttons under it


@pytest.mark.parametrize(("width", "height", "mobile"), [(1280, 560, False), (375, 640, True)])
async def test_the_question_stays_in_view_above_a_long_answer(
    site: Site, width: int, height: int, mobile: bool
) -> None:
    page = await site.page(width, height, mobile=mobile)
    await page.goto(site.url)
    for question in (ANSWERED, SUGGESTED, LONG):
        await ask(page, question)
        await expect(page.locator(".msg-user .msg-text").last).to_have_text(question)
    await expect(page.locator(".msg.kind-answer").last.locator(".msg-text")).to_contain_text("申请")
    await page.wait_for_timeout(200)
    box = await page.locator(".msg-user").last.bounding_box()
    log = await page.locator("#log").bounding_box()
    assert box is not None and log is not None
    assert max(0.0, log["y"]) - 1 <= box["y"] and box["y"] + box["height"] <= height, (box, log)
    await shot(page, f"chat-long-answer-{width}.png")


async def test_links_in_answers_are_links_other_schemes_text(site: Site) -> None:
    page = await site.page()
    await page.goto(site.url)
    await ask(page, UNKNOWN_FOR_LINKS)
    await page.locator(".msg.kind-no_answer").get_by_role("button", name="转人工").click()
    await expect(page.locator(".msg.kind-escalated")).to_contain_text("工单号 #")
    ticket_id = (await site.app.tickets.queue())[0].ticket.id
    text = "详见商务部网站 https://www.mofcom.gov.cn/zcfb/index.html。不要点 javascript:alert(1) 或 data:text/html,x"
    await site.app.tickets.reply(ticket_id, STAFF, text)
    reply = page.locator(".msg-staff").last
    await expect(reply).to_contain_text("javascript:alert(1)", timeout=8_000)
    links = reply.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://www.mofcom.gov.cn/zcfb/index.html")
    await expect(links).to_have_attribute("rel", "noopener")
    await expect(links).to_have_text("https://www.mofcom.gov.cn/zcfb/index.html")
    # the source line of an answer links its address too
    await ask(page, ANSWERED)
    source = page.locator(".msg.kind-answer .msg-source").last
    await expect(source.locator("a[rel=noopener]").first).to_have_attribute("href", re.compile(r"^https?://"))
    await shot(page, "chat-links.png")
    assert site.dialogs == []


async def test_phone_sized_screen(site: Site) -> None:
    page = await site.page(375, 740, mobile=True)
    await page.goto(site.url)
    await ask(page, ANSWERED)
    await expect(page.locator(".msg.kind-answer .msg-text")).to_contain_text("0591")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"horizontal scrolling on a phone: {width}px"
    send = await page.locator("#send").bounding_box()
    assert send is not None and send["x"] + send["width"] <= 375 and send["height"] >= 40
    await shot(page, "chat-phone.png", full_page=True)  # no inner scrolling on a phone
    # Browse the knowledge by category and read a whole guide.
    await page.get_by_role("tab", name="浏览政策与指南").click()
    await page.get_by_role("button", name="流通行业管理").click()
    await page.locator(".entry-link", has_text="洗染业经营者备案").click()
    await expect(page.locator("#entry .entry-title")).to_contain_text("洗染业经营者备案")
    await expect(page.locator("#entry .entry-section h4").first).to_have_text("事项名称")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await shot(page, "browse-phone.png", full_page=True)


async def test_widget_script_opens_the_chat_in_an_iframe(site: Site) -> None:
    host_page = f'<!doctype html><html lang="zh-CN"><body><h1>某政府网站</h1><script src="{site.url}static/widget.js"></script></body></html>'

    async def gov_site(request: web.Request) -> web.Response:
        return web.Response(text=host_page, content_type="text/html")

    # A second local server (another origin) stands in for the government site embedding the widget.
    host = web.Application()
    host.router.add_get("/", gov_site)
    async with TestServer(host, host="127.0.0.1", port=0) as server:
        page = await site.page(1024, 760)
        await page.goto(str(server.make_url("/")))
        await page.get_by_role("button", name="政策咨询").click()
        frame = page.frame_locator("iframe[title='政策咨询']")
        await frame.locator("#question").fill(ANSWERED)
        await frame.locator("#send").click()
        await expect(frame.locator(".msg.kind-answer .msg-text")).to_contain_text("0591")
        await shot(page, "widget-embedded.png")


async def test_visitor_subscribes_in_the_browser_and_a_push_reaches_the_page(site: Site) -> None:
    import dataclasses

    from knowledge.importers.base import ParsedEntry

    app = site.app
    sub = dataclasses.replace(app.settings.subscriptions, review=False)
    app.broadcasts.settings = app.broadcasts.scanner.settings = sub
    await app.push.run_once()  # the scanner's baseline
    page = await site.page()
    await page.goto(site.url)
    await page.click("#tab-browse")
    await page.get_by_role("button", name="外贸外资").click()
    await page.click("#subscribe-category")
    await expect(page.locator("#browse-status")).to_contain_text("已订阅「外贸外资」")
    await app.services.kb.write_entries(
        [ParsedEntry(id="faq-push-browser", kind="faq", question="跨境电商有新政策吗？",
                     answer="有。自2027年起跨境电商企业可申请专项补贴。", category="外贸外资")]
    )  # fmt: skip
    await app.push.run_once()
    await page.click("#tab-chat")
    push = page.locator(".msg.kind-broadcast").last
    await expect(push.locator(".msg-text")).to_contain_text("跨境电商有新政策吗？")
    await push.get_by_role("button", name="阅读全文").click()
    await expect(page.locator(".msg.kind-answer .msg-text").last).to_contain_text("专项补贴")
    await shot(page, "chat-push.png")
    await push.get_by_role("button", name="退订").click()
    await expect(page.locator(".msg-bot .msg-text").last).to_contain_text("已退订")

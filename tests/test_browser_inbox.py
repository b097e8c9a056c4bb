"""The staff inbox in a real headless Chromium: routing on a ticket, the live alert without reload,
answering with an entry, merging duplicates, the console on a phone. Screenshots in tests/artifacts/."""

from __future__ import annotations

from bot.messages import IncomingMessage
from tests import test_browser
from tests.test_browser import PASSWORD, STAFF, Site, expect, pytestmark, shot  # noqa: F401

site = test_browser.site  # the fixture: the web server and Chromium

HEALTH_Q = "公共卫生知识普及怎么做"  # a clause of 市场秩序科
PHONE_Q = "商务局的电话号码"


async def staff_page(site: Site, width: int = 1280, height: int = 860, mobile: bool = False):
    """A logged-in console page (live updates every second)."""
    site.app.services.settings = site.app.settings.replace("staff", live_seconds=1)
    page = await site.page(width, height, mobile=mobile)
    await page.goto(site.url + "console/login")
    await page.fill("#name", STAFF)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("h1")).to_have_text("工单队列")
    return page


async def hand_over(site: Site, text: str, chat: str, channel: str = "web") -> int:
    reply = await site.app.conversations.escalate(IncomingMessage(channel, chat, chat, ""), text=text)
    assert reply.ticket_id is not None
    return reply.ticket_id


async def test_a_new_ticket_arrives_live_with_its_routing(site: Site) -> None:
    page = await staff_page(site)
    await expect(page.locator("#live-state")).to_have_text("实时更新中")
    await expect(page.locator("#queue-empty")).to_be_visible()
    title = await page.title()
    tid = await hand_over(site, HEALTH_Q, "visitor-live-browser-0001")
    row = page.locator(f'#queue-body tr[data-ticket="{tid}"]')
    await expect(row).to_contain_text(HEALTH_Q)  # no reload: the event stream brought it
    await expect(row).to_contain_text("市场秩序科")
    await expect(page.locator("#new-alert")).to_contain_text(f"#{tid}")
    assert await page.title() == f"(1) {title}"
    await expect(page.locator("#queue-empty")).to_be_hidden()
    await shot(page, "inbox-live-alert.png", full_page=True)
    await row.get_by_role("link", name=f"#{tid}").click()
    await expect(page.locator("#ticket-routing")).to_contain_text("科室：市场秩序科")
    await expect(page.locator("#ticket-routing")).to_contain_text("条款的责任科室：市场秩序科")
    # The ticket page follows too: the visitor adds a message, it shows without reload.
    await site.app.conversations.handle(
        IncomingMessage("web", "visitor-live-browser-0001", "visitor-live-browser-0001", "我们是一家药店")
    )
    await expect(page.locator("#conversation")).to_contain_text("我们是一家药店")
    await page.fill("#note-text", "需要与市场监管部门确认")
    await page.get_by_role("button", name="保存备注").click()
    await expect(page.locator("#notes")).to_contain_text("需要与市场监管部门确认")
    await shot(page, "inbox-ticket-routing.png", full_page=True)


async def test_answer_with_an_entry_then_keep_the_phrasing(site: Site) -> None:
    tid = await hand_over(site, PHONE_Q, "visitor-entry-browser-0001")
    page = await staff_page(site)
    await page.goto(f"{site.url}console/tickets/{tid}")
    section = page.locator("section.answer-entry")
    await section.get_by_role("button", name="用此条答复并关闭").first.click()
    await expect(page.locator(".notice-ok")).to_contain_text("已用知识条目答复并关闭工单")
    await expect(page.locator("#ticket-facts")).to_contain_text("已关闭")
    offer = page.locator(".offer button")
    await expect(offer).to_contain_text("的另一种问法")
    await shot(page, "inbox-answer-with-entry.png", full_page=True)
    _, conv = await site.app.tickets.get(tid)
    history = await site.app.conversations.history(conv.channel, conv.chat_ref, conv.user_ref)
    assert history[-1].author == "staff" and "0591" in history[-1].text and "来源：" in history[-1].text
    await offer.click()
    await expect(page.locator(".notice-ok")).to_contain_text("已存入知识库")


async def test_merge_duplicates_and_answer_them_all(site: Site) -> None:
    a = await hand_over(site, "平行进口汽车怎么办理", "visitor-merge-browser-0001")
    b = await hand_over(site, "平行进口车怎么申请", "visitor-merge-browser-0002")
    page = await staff_page(site)
    await page.goto(f"{site.url}console/tickets/{a}")
    await page.locator(f"#merge-{b}").check()
    await page.get_by_role("button", name="把选中的工单合并到本工单").click()
    await expect(page.locator(".notice-ok")).to_contain_text("已合并")
    await expect(page.locator(".merged")).to_contain_text(f"#{b}")
    await shot(page, "inbox-merge.png", full_page=True)
    await page.fill("#reply-text", "平行进口汽车试点事项请咨询市商务局。")
    await page.get_by_role("button", name="发送答复").click()
    await expect(page.locator(".notice-ok")).to_contain_text("答复已发送")
    for tid in (a, b):
        _, conv = await site.app.tickets.get(tid)
        history = await site.app.conversations.history(conv.channel, conv.chat_ref, conv.user_ref)
        assert history[-1].author == "staff" and "市商务局" in history[-1].text


async def test_the_console_on_a_phone(site: Site) -> None:
    tid = await hand_over(site, HEALTH_Q, "visitor-phone-browser-0001")
    await hand_over(site, "今天天气怎么样", "visitor-phone-browser-0002")
    page = await staff_page(site, 390, 844, mobile=True)
    await expect(page.locator("#queue-body tr")).to_have_count(2)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    # Measured in one turn of the page's script: the live queue replaces its rows on every update, and
    # a row found, then replaced before it was measured, had no box (bounding_box gave None on PostgreSQL).
    width = await page.evaluate(
        "document.querySelector('#queue-body tr .question').getBoundingClientRect().width"
    )
    assert width > 150, width  # not one character wide
    await shot(page, "inbox-phone-queue.png", full_page=True)
    await page.goto(f"{site.url}console/tickets/{tid}")
    await expect(page.locator("#ticket-routing")).to_contain_text("市场秩序科")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, "inbox-phone-ticket.png", full_page=True)
    await page.goto(f"{site.url}console/tickets?status=all")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, "inbox-phone-search.png", full_page=True)


async def test_the_review_queue_shows_personal_data_masked(site: Site) -> None:
    from bot.knowledge_review import KnowledgeReview

    question = "我叫张伟，手机13812345678，想问外资企业年报怎么报"
    tid = await hand_over(site, question, "visitor-review-browser-0001")
    await site.app.tickets.reply(tid, STAFF, "通过国家企业信用信息公示系统报送，每年1月1日至6月30日。")
    review = KnowledgeReview(site.app.services.sessions, site.app.services.kb)
    await review.save_from_ticket(tid, "坐席小李", publish=False)
    page = await staff_page(site)
    await page.goto(site.url + "console/review")
    card = page.locator("article.proposal").first
    await expect(card).to_contain_text("检测到个人信息：姓名、电话号码")
    await expect(card.locator("textarea[name=question]")).to_have_value(
        "我叫张*，手机138****5678，想问外资企业年报怎么报"
    )
    assert "13812345678" not in await page.content()
    await shot(page, "inbox-review-masked.png", full_page=True)
    await card.get_by_role("button", name="批准并发布").click()
    await expect(page.locator(".notice-ok").first).to_contain_text("已批准并发布")
    entry = await site.app.services.kb.get(f"staff-{tid}")
    assert entry is not None and entry.status == "published" and "13812345678" not in entry.question


async def test_the_charts_and_the_gap_clusters(site: Site) -> None:
    for i, q in enumerate(
        [
            "跨境电商企业有没有补贴",
            "跨境电商补助怎么申请",
            "做跨境电商能申请什么扶持资金",
            "夜市摆摊要办什么手续",
            "夜市摊位怎么申请",
        ]
    ):
        chat = f"visitor-charts-browser-{i:03d}"
        await site.app.conversations.handle(IncomingMessage("web", chat, chat, q))
    await site.app.conversations.handle(
        IncomingMessage("web", "visitor-charts-x", "visitor-charts-x", "商务局电话")
    )
    tid = await hand_over(site, HEALTH_Q, "visitor-charts-browser-900")
    await site.app.tickets.reply(tid, STAFF, "请关注市场监管部门的科普。")
    page = await staff_page(site)
    await page.goto(site.url + "console/overview")
    charts = page.locator("svg.chart")
    await expect(charts).to_have_count(6)
    await expect(page.locator("table.offices")).to_contain_text("市场秩序科")
    await shot(page, "inbox-charts.png", full_page=True)
    await page.goto(site.url + "console/gaps")
    first = page.locator("article.gap").first
    await expect(first.locator(".gap-count")).to_have_text("3")
    await expect(first).to_contain_text("跨境电商补助怎么申请")
    await expect(page.locator("article.gap").nth(1)).to_contain_text("夜市摊位怎么申请")
    await shot(page, "inbox-gaps.png", full_page=True)
    phone = await staff_page(site, 390, 844, mobile=True)
    await phone.goto(site.url + "console/overview")
    await expect(phone.locator("svg.chart")).to_have_count(6)
    box = await phone.locator("svg.chart").first.bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] > 100
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(phone, "inbox-phone-charts.png", full_page=True)

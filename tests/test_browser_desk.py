"""Issue 15 in a real headless Chromium: the welcome's hot questions, a referral answer, a staff reply
rated with a comment, 留言 with a phone number and the ticket's reply page opened in another browser,
and the same on a phone (375x812). Screenshots go to each test's tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import DEFAULT_HOT
from knowledge.models import Rating, Ticket
from tests import test_browser
from tests.test_browser import Site, ask, expect

pytestmark = pytest.mark.browser

site = test_browser.site  # the server of ``app`` and a launched Chromium
PHONE_Q = "鼓楼区商务局的电话是多少？"  # the first shipped hot question
REFERRAL = "社保断缴三个月怎么补缴"  # another body's matter: 人社, 12333
FDI_Q = "外商投资法什么时候开始施行？"


async def shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 1000
    return path


async def staff_answers(site: Site, text: str) -> int:
    """Staff answer the newest ticket (as the console would); its number."""
    async with site.app.services.sessions() as s:
        ticket_id = await s.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
    assert ticket_id is not None
    await site.app.tickets.reply(int(ticket_id), "王科员", text)
    return int(ticket_id)


async def test_welcome_offers_the_hot_questions(site: Site, tmp_path: Path) -> None:
    page = await site.page()
    await page.goto(site.url)
    hot = page.locator(".msg-welcome .choice-hot")
    await expect(hot).to_have_count(len(DEFAULT_HOT))
    await expect(hot.first).to_have_text(PHONE_Q)
    await shot(page, tmp_path, "welcome-hot.png")
    await hot.first.click()
    answer = page.locator(".msg.kind-answer").last
    await expect(answer.locator(".msg-text")).to_contain_text("0591-87538464")

    await ask(page, FDI_Q)  # 相关问题 under an answer, and pressing one
    answer = page.locator(".msg.kind-answer").last
    related = answer.locator(".choices-related .choice-related")
    await expect(related.first).to_be_visible()
    await (
        answer.locator(".choices-related")
        .get_by_role("button", name="外商投资信息报告制度是怎么运作的？")
        .click()
    )
    await expect(page.locator(".msg.kind-answer").last.locator(".msg-text")).to_contain_text("企业登记系统")
    await shot(page, tmp_path, "related.png")


async def test_a_referral_answer(site: Site, tmp_path: Path) -> None:
    page = await site.page()
    await page.goto(site.url)
    await ask(page, REFERRAL)
    answer = page.locator(".msg.kind-answer").last
    await expect(answer.locator(".msg-text")).to_contain_text("12333")
    await expect(answer.locator(".msg-text")).to_contain_text("不在商务局的职责范围内")
    await shot(page, tmp_path, "referral.png")


async def test_a_staff_reply_is_rated_with_a_comment(site: Site, tmp_path: Path) -> None:
    page = await site.page()
    await page.goto(site.url)
    await page.fill("#question", "会议室周末能借用吗")
    await page.click("#send")
    await expect(page.locator(".msg-user")).to_have_count(1)
    await page.click("#human")
    await expect(page.locator(".msg.kind-escalated").last).to_contain_text("工单")
    await staff_answers(site, "会议室不对外出借，请见谅。")
    reply = page.locator(".msg-staff").last
    await expect(reply).to_contain_text("会议室不对外出借", timeout=8_000)  # by polling
    await reply.get_by_role("button", name="不满意").click()
    await expect(reply.locator(".rating-status")).to_contain_text("感谢您的评价（不满意）")
    await reply.get_by_role("button", name="满意", exact=True).click()  # rating again replaces it
    await expect(reply.locator(".rating-status")).to_contain_text("感谢您的评价（满意）")
    await reply.locator(".rating-comment textarea").fill("答复很快")
    await reply.get_by_role("button", name="提交意见").click()
    await expect(reply.locator(".rating-status")).to_contain_text("和意见")
    await shot(page, tmp_path, "rated-staff-reply.png")
    async with site.app.services.sessions() as s:
        ratings = (await s.scalars(select(Rating))).all()
    assert [(r.score, r.comment) for r in ratings] == [("good", "答复很快")]
    await page.reload()  # the rating is shown from the conversation
    await expect(page.locator(".msg-staff .rating-status").last).to_contain_text("满意（意见：答复很快）")
    await expect(page.locator(".msg-staff .choice-rate.choice-chosen")).to_have_text("满意")


async def test_leave_a_message_and_read_the_reply_page_in_another_browser(site: Site, tmp_path: Path) -> None:
    page = await site.page()
    await page.goto(site.url)
    await page.click("#leave-message")
    await page.fill("#message-text", "想预约周六借用会议室，请回电")
    await page.fill("#message-contact", "138123")  # not a phone number
    await page.click("#message-send")
    await expect(page.locator("#message-error")).to_contain_text("联系方式应为手机号")
    await page.fill("#message-contact", "138 1234 5678")
    await page.click("#message-send")
    link = page.locator("a.ticket-page-link")
    await expect(link).to_be_visible()
    await expect(page.locator(".msg.kind-escalated").last).to_contain_text("138****5678")
    await shot(page, tmp_path, "message-left.png")
    url = await link.get_attribute("href")
    assert url and "/t/" in url
    ticket_id = await staff_answers(site, "可以借用，请周五前到三楼登记。")

    other = await site.page()  # another browser: no visitor token
    await other.goto(url)
    await expect(other.locator("h1")).to_contain_text(f"工单 #{ticket_id}")
    await expect(other.locator(".ticket-status")).to_have_text("已答复")
    await expect(other.locator(".msg-staff")).to_contain_text("可以借用，请周五前到三楼登记。")
    await expect(other.locator(".ticket-facts")).to_contain_text("138****5678")
    assert "13812345678" not in await other.content()
    await shot(other, tmp_path, "ticket-page.png")
    wrong = await other.goto(url[:-1] + ("a" if not url.endswith("a") else "b"))
    assert wrong is not None and wrong.status == 404


async def test_on_a_phone(site: Site, tmp_path: Path) -> None:
    page = await site.page(width=375, height=812, mobile=True)
    await page.goto(site.url)
    await expect(page.locator(".msg-welcome .choice-hot").first).to_be_visible()
    await shot(page, tmp_path, "phone-welcome.png")
    await ask(page, FDI_Q)
    await expect(page.locator(".msg.kind-answer .choices-related").last).to_be_visible()
    await page.click("#leave-message")
    await expect(page.locator("#message-form")).to_be_visible()
    await shot(page, tmp_path, "phone-message.png")
    wide = await page.evaluate("document.scrollingElement.scrollWidth")
    assert wide <= 375, f"the page is {wide}px wide on a 375px phone"

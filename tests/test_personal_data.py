"""Personal data (issue 16, point 5; R11): phone, ID-card, bank-card numbers and e-mail addresses are
masked in the console's lists, the live queue, the statistics, exports, the command line and the logs,
and shown in full only on one ticket's page; secrets and visitor tokens never reach a log; the SQLite
file and its folder are created private."""

from __future__ import annotations

import asyncio
import io
import logging
import stat
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.app import App
from bot.config import Settings
from bot.logs import PrivacyFilter, secrets_of, setup_logging
from bot.messages import IncomingMessage
from bot.services import Services
from handlers.staff_live import queue_row
from knowledge.db import create_engine
from knowledge.models import Conversation
from knowledge.segment import Lexicon
from tests import test_staff_inbox
from tests.conftest import PG_URL
from tests.staff_fixtures import hand_over, login
from tests.test_cli import ok, policybot

client = test_staff_inbox.client  # the fixture: the console with an admin, an editor and two agents

PHONE, ID_CARD, CARD, MAIL = (
    "13812345678",
    "350102199001011234",
    "6222021234567890123",
    "zhangwei@example.com",
)
QUESTION = f"今天天气怎么样？我的电话{PHONE}，身份证{ID_CARD}，卡号{CARD}，邮箱{MAIL}"
CLEAR = (PHONE, ID_CARD, CARD, MAIL)


def clear_in(page: str) -> list[str]:
    return [v for v in CLEAR if v in page]


async def test_the_console_masks_lists_and_shows_the_full_question_only_on_the_ticket_page(
    app: App, client: TestClient
) -> None:
    tid = await hand_over(app, QUESTION, "visitor-pd-0001-abcdefgh")
    await app.conversations.handle(IncomingMessage("web", "visitor-pd-0002", "visitor-pd-0002", QUESTION))
    await login(client, "admin1")
    surfaces = {
        "queue page": await (await client.get("/console")).text(),
        "queue API": await (await client.get("/console/api/queue")).text(),
        "search page": await (await client.get("/console/tickets?status=all")).text(),
        "search API": await (await client.get("/console/api/tickets?status=all")).text(),
        "statistics": await (await client.get("/console/overview")).text(),
        "statistics API": await (await client.get("/console/api/stats")).text(),
        "gaps API": await (await client.get("/console/api/gaps")).text(),
        "export": (await (await client.get("/console/export.csv")).read()).decode("utf-8"),
        "conversations export": (
            await (await client.get("/console/export.csv?what=conversations")).read()
        ).decode("utf-8"),
    }
    leaks = {name: clear_in(page) for name, page in surfaces.items() if clear_in(page)}
    assert not leaks
    assert "138****5678" in surfaces["queue page"] and "138****5678" in surfaces["search API"]
    assert "138****5678" in surfaces["statistics API"]  # the unanswered question, masked
    (item,) = await app.tickets.queue()
    assert not clear_in(str(queue_row(item)))  # the live queue's rows
    # One ticket's page (and its JSON) is where staff see it in full.
    page = await (await client.get(f"/console/tickets/{tid}")).text()
    assert PHONE in page and ID_CARD in page
    # ... but not another visitor's: the merge choices on a ticket page list other tickets masked.
    other = await hand_over(app, "今天天气怎么样？我的手机13900001111", "visitor-pd-0003-abcdefgh")
    page = await (await client.get(f"/console/tickets/{tid}")).text()
    assert f"#{other}" in page and "13900001111" not in page and "139****1111" in page
    data = await (await client.get(f"/console/api/tickets/{tid}")).json()
    assert data["question"] == QUESTION
    # An admin may ask for an unmasked export, explicitly.
    unmasked = (await (await client.get("/console/export.csv?unmasked=1")).read()).decode("utf-8")
    assert PHONE in unmasked


def test_logs_mask_personal_data_and_hide_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings().replace(
        "telegram", token="123456789:AAE" + "x" * 32, webhook_secret="hook-secret-42"
    )
    setup_logging("INFO", "json", secrets_of(settings))
    log = logging.getLogger("policybot.test")
    log.info("question %s", QUESTION, extra={"text": f"call {PHONE}", "token": "visitor-token-abcdef0123"})
    log.warning("GET https://api.telegram.org/bot123456789:AAE%s/getUpdates failed", "x" * 32)
    try:
        raise RuntimeError(f"webhook hook-secret-42 refused for {MAIL}")
    except RuntimeError:
        log.exception("failed")
    out = capsys.readouterr().err
    assert not clear_in(out), out
    for secret in ("hook-secret-42", "visitor-token-abcdef0123", "AAE" + "x" * 32):
        assert secret not in out
    assert "138****5678" in out and '"token": "***"' in out and "z***@example.com" in out


def test_the_filter_masks_text_logs_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PrivacyFilter(["s3cret-value"]))
    log = logging.getLogger("policybot.test.text")
    log.addHandler(handler)
    try:
        log.warning("id %s secret %s", ID_CARD, "s3cret-value")
        log.warning(
            'GET /api/conversations/visitor-abcdefgh-0123?after=2 body {"token": "visitor-abcdefgh-0123"}'
        )
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert ID_CARD not in out and "s3cret-value" not in out and "visitor-abcdefgh-0123" not in out
    assert "/api/conversations/***" in out


async def test_a_failing_statement_does_not_carry_the_visitor_token(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    token = "secret-visitor-token-0123456789"
    async with services.sessions() as session, session.begin():
        session.add(Conversation(channel="web", chat_ref=token, user_ref=token))
    with pytest.raises(IntegrityError) as failed:
        async with services.sessions() as session, session.begin():
            session.add(Conversation(channel="web", chat_ref=token, user_ref=token))
    assert token not in str(failed.value)
    with pytest.raises(Exception) as bad:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table WHERE x = :t"), {"t": token})
    assert token not in str(bad.value)


@pytest.mark.skipif(bool(PG_URL) or sys.platform == "win32", reason="SQLite files only")
async def test_the_sqlite_file_and_folder_are_created_private(tmp_path: Path, lexicon: Lexicon) -> None:
    folder = tmp_path / "var"
    url = f"sqlite:///{folder}/policybot.db"
    services = await Services.start(
        Settings().replace("database", url=url), lexicon=lexicon, build_index=False
    )
    await services.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for f in folder.glob("policybot.db*"):
        if f.is_file():
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    assert stat.S_IMODE((folder / "policybot.db").stat().st_mode) == 0o600
    # A file the operator made is left as it is.
    mine = tmp_path / "mine.db"
    mine.touch(mode=0o640)
    mine.chmod(0o640)
    await create_engine(f"sqlite:///{mine}").dispose()
    assert stat.S_IMODE(mine.stat().st_mode) == 0o640


async def test_policybot_gaps_prints_questions_masked(app: App, tmp_path: Path) -> None:
    for i in range(2):
        chat = f"visitor-gp-000{i}"
        await app.conversations.handle(IncomingMessage("web", chat, chat, QUESTION))
    out = ok(
        await asyncio.to_thread(policybot, "--db", app.settings.database.url, "gaps", "--json", cwd=tmp_path)
    )
    assert "138****5678" in out and not clear_in(out)

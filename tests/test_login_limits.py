"""The console's login limit (issue 16, point 6): failures count per (address, account) and, looser, per
address; an attacker elsewhere cannot lock a staff member out, and the right password is let in from an
address whose limit holds unless that account itself failed there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.limits import LOGIN_ACCOUNT_FAILURES, LOGIN_ADDRESS_FAILURES
from bot.staff_accounts import create_account
from handlers.staff_auth import LOGIN_COOKIE
from handlers.web import build_web_app
from handlers.web_security import Handler
from tests.staff_fixtures import CHEAP, PASSWORD, login_token

ACCOUNTS = [f"member-{i}" for i in range(5)]


@web.middleware
async def remote_from_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The test plays clients at several addresses (``X-Test-Remote``), all on 127.0.0.1 really."""
    return await handler(request.clone(remote=request.headers.get("X-Test-Remote", request.remote)))


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    for name in ACCOUNTS:
        await create_account(app.services.sessions, name, PASSWORD, hasher=CHEAP)
    application = build_web_app(app)
    application.middlewares.insert(0, remote_from_header)
    c = TestClient(TestServer(application))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def attempt(client: TestClient, address: str, name: str, password: str) -> int:
    """One login through the form from ``address``; the status (303: logged in)."""
    client.session.cookie_jar.clear()
    token = await login_token(client)
    resp = await client.post(
        "/console/login",
        data={"csrf": token, "name": name, "password": password},
        headers={"X-Test-Remote": address},
        allow_redirects=False,
    )
    return resp.status


async def fail(client: TestClient, address: str, name: str, times: int) -> list[int]:
    return [await attempt(client, address, name, "wrong-password") for _ in range(times)]


async def test_an_attacker_elsewhere_cannot_lock_a_member_out(client: TestClient) -> None:
    statuses = await fail(client, "203.0.113.9", "member-0", LOGIN_ACCOUNT_FAILURES + 2)
    assert statuses[:LOGIN_ACCOUNT_FAILURES] == [401] * LOGIN_ACCOUNT_FAILURES
    assert statuses[-1] == 429  # that account, from that address: refused
    assert await attempt(client, "198.51.100.7", "member-0", PASSWORD) == 303  # the member, from her desk


async def test_the_right_password_is_let_in_from_an_address_whose_limit_holds(client: TestClient) -> None:
    attacker = "192.0.2.50"  # e.g. the office's NAT, or a proxy every request comes through
    for name in ACCOUNTS[:3]:
        await fail(client, attacker, name, LOGIN_ADDRESS_FAILURES // 3)
    assert await attempt(client, attacker, ACCOUNTS[3], "wrong-password") == 401
    # The address's limit holds now: an account that failed there lately is refused unchecked ...
    assert await attempt(client, attacker, ACCOUNTS[3], PASSWORD) == 429
    assert await attempt(client, attacker, ACCOUNTS[0], PASSWORD) == 429
    # ... but a colleague at the same address who has not failed logs in with the right password.
    assert await attempt(client, attacker, ACCOUNTS[4], PASSWORD) == 303
    assert await attempt(client, "198.51.100.8", ACCOUNTS[3], PASSWORD) == 303  # and from elsewhere


async def test_failures_for_one_account_do_not_refuse_another_from_the_same_address(
    client: TestClient,
) -> None:
    address = "192.0.2.60"
    assert (await fail(client, address, "member-1", LOGIN_ACCOUNT_FAILURES + 1))[-1] == 429
    assert await attempt(client, address, "member-2", PASSWORD) == 303
    assert await attempt(client, address, "member-1", PASSWORD) == 429  # refused, right password too


async def test_attempts_at_once_never_pass_the_limit_together(client: TestClient) -> None:
    """Wrong passwords sent all at once for one account from one address: each attempt counts before
    its password is checked, so no more of them are checked than the limit allows one at a time."""
    token = await login_token(client)
    address, tries = "203.0.113.77", LOGIN_ACCOUNT_FAILURES + 8

    async def one(session: aiohttp.ClientSession) -> int:
        resp = await session.post(
            client.make_url("/console/login"),
            data={"csrf": token, "name": "member-1", "password": "wrong-password"},
            headers={"X-Test-Remote": address, "Cookie": f"{LOGIN_COOKIE}={token}"},
            allow_redirects=False,
        )
        return resp.status

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        statuses = await asyncio.gather(*(one(session) for _ in range(tries)))
    assert sorted(statuses) == [401] * LOGIN_ACCOUNT_FAILURES + [429] * (tries - LOGIN_ACCOUNT_FAILURES)
    assert await attempt(client, address, "member-1", PASSWORD) == 429  # the account is refused there
    assert await attempt(client, "198.51.100.9", "member-1", PASSWORD) == 303  # not elsewhere

"""A fuzz test of the staff console's JSON API (``/console/api/...``), logged in as an admin: every
route the app registers there, with path parameters that match its pattern, hostile bodies and query
strings, never gets a 5xx and always gets JSON. The routes are read from the app's router, so a route
added later is fuzzed too. Runs on SQLite and, with POLICYBOT_TEST_DATABASE_URL, on PostgreSQL.

The residents' API is fuzzed from its OpenAPI description (tests/test_web_openapi.py)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bot.app import App
from bot.config import Settings
from bot.staff_accounts import create_account
from handlers.web import build_web_app
from knowledge.segment import Lexicon
from tests.staff_fixtures import CHEAP, NAME, PASSWORD, hand_over, login
from tests.test_web_openapi import HOSTILE_RAW, fuzzed_statuses, hostile, routes_under, segment

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARAM = re.compile(r"\{(\w+)\}")  # a path parameter in a route's formatter
GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")  # ... and its regex in the route's compiled pattern
# The console's body fields and query parameters (what its handlers read), for generated requests.
FIELDS = [
    "text", "title", "entry_id", "question", "questions", "answer", "alternates", "category", "office",
    "role", "name", "password", "mask", "mode", "colleague", "agent", "candidate", "ticket_ids", "status",
]  # fmt: skip
QUERY = ["days", "done", "entry", "error", "from", "to", "page", "q", "status", "ticket", "unmasked", "what"]
GOOD_TEXT = ["会议室周末能借用吗", "faq-bureau-002", "li.ming", "open", "agent", "1", "2026-12-01", ""]


def console_api_routes(application: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path template, each path parameter's regex) of every /console/api/ route the app
    registers (HEAD left out)."""
    routes = routes_under(application, "/console/api/")
    return [(method, path, dict(GROUP.findall(pattern))) for method, path, pattern in sorted(routes)]


def param_value(pattern: str | None) -> st.SearchStrategy[str]:
    """A path segment that matches the route's pattern, so the request reaches its handler: one of
    the words of an alternation, digits (huge ones too) for a number, anything for the rest."""
    if pattern and re.fullmatch(r"[\w-]+(\|[\w-]+)*", pattern):
        return st.sampled_from(pattern.split("|"))
    if pattern and pattern.startswith(r"\d"):
        digits = st.sampled_from(["0", "1", "2", "2147483648", "9223372036854775808", "9" * 30])
        return digits.filter(lambda d: re.fullmatch(pattern, d) is not None)
    return st.one_of(st.sampled_from(GOOD_TEXT[1:]), hostile.map(str)).map(lambda v: segment(v) or "x")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes that are no usable JSON object now and then; else an object of console fields with
    good or hostile values."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from(HOSTILE_RAW))
    names = draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True))
    good = st.one_of(st.sampled_from(GOOD_TEXT), st.integers(0, 3), st.lists(st.integers(0, 3), max_size=3))
    return json.dumps({n: draw(st.one_of(good, hostile)) for n in names}).encode()


def requests(
    routes: list[tuple[str, str, dict[str, str]]],
) -> st.SearchStrategy[tuple[str, str, bytes | None]]:
    """One request to one of ``routes``: (method, url, body)."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
        method, template, patterns = draw(st.sampled_from(routes))
        url = PARAM.sub(lambda m: draw(param_value(patterns.get(m.group(1)))), template)
        names = draw(st.lists(st.sampled_from(QUERY), max_size=3, unique=True))
        query = [f"{n}={segment(draw(st.one_of(st.sampled_from(GOOD_TEXT), hostile)))}" for n in names]
        if query:
            url += "?" + "&".join(query)
        return method, url, draw(bodies()) if method != "GET" else None

    return build()


def test_fuzz_every_console_api_route_never_5xx_always_json(
    runner: asyncio.Runner, db_url: str, lexicon: Lexicon
) -> None:
    async def start() -> tuple[App, TestClient, str]:
        app = await App.create(Settings().replace("database", url=db_url), lexicon=lexicon)
        await app.services.load_default_if_empty()
        await create_account(app.services.sessions, NAME, PASSWORD, hasher=CHEAP)  # the first: an admin
        for text in ("会议室周末能借用吗", "我的手机号是13912345678，想问补贴"):
            await hand_over(app, text)  # tickets 1 and 2 exist
        client = TestClient(TestServer(build_web_app(app)))
        await client.start_server()
        return app, client, await login(client)

    app, client, csrf = runner.run(start())
    routes = console_api_routes(client.server.app)
    assert len(routes) >= 20  # the router was read (the console's JSON API has two dozen routes)

    async def send(method: str, url: str, raw: bytes | None) -> tuple[int, str, str]:
        headers = {"X-CSRF-Token": csrf}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        resp = await client.request(method, url, data=raw, headers=headers, allow_redirects=False)
        return resp.status, resp.content_type, await resp.text()

    try:
        statuses = fuzzed_statuses(runner, FUZZ, requests(routes), send)
        assert 200 in statuses and 400 in statuses  # the generator reached the handlers and the checks
    finally:
        runner.run(client.close())
        runner.run(app.close())

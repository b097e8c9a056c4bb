"""The OpenAPI description of the residents' API (``GET /api/openapi.json``), and a fuzz test of every
operation it lists: generated bodies and parameters, hostile ones included (lone surrogates, NUL
bytes, huge integers, deep nesting, wrong types, bodies that are not JSON), never get a 5xx, and every
answer is JSON. Runs on SQLite and, with POLICYBOT_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.config import Settings
from handlers.web import build_web_app
from handlers.web_openapi import document
from knowledge.segment import Lexicon

TOKEN = "fuzz-visitor-token-0001"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values no endpoint should choke on: what the database cannot store, what json cannot hold, wrong types.
HOSTILE_TEXT = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "问\x00题",
    "\n",
    TOKEN + "\n",
    "x" * 5000,
    "%00",
    "../..",
    "😀",
]
HOSTILE_INT = [0, -1, 2**31 - 1, 2**31, 2**63, -(2**63) - 1, 10**30]
HOSTILE_RAW = [
    b"[" * 16000,
    b"{" * 3000,
    b'{"token": ' + b"9" * 5000 + b"}",
    b"\xff\xfe",
    b"",
    b"null",
    b"[]",
]
hostile = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(HOSTILE_INT),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=20),  # surrogates included
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=30),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def routes_under(application: Any, prefix: str) -> set[tuple[str, str, str]]:
    """(method, path, compiled pattern: "" for a plain path) of every route the app registers under
    ``prefix`` (HEAD left out)."""
    found = set()
    for route in application.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith(prefix) and route.method != "HEAD":
            found.add((route.method, path, info["pattern"].pattern if "pattern" in info else ""))
    return found


def registered_api_routes(application: Any) -> set[tuple[str, str]]:
    """(method, path) of every /api/ route the app registers, paths as OpenAPI writes them."""
    return {
        (method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path))
        for method, path, _ in routes_under(application, "/api/")
    }


# aiohttp's parser refuses a longer URL with its own plain-text 400 before any handler runs (LineTooLong).
MAX_URL_BYTES = 8190


def assert_json_reply(request: tuple[str, str, bytes | None], status: int, ctype: str, text: str) -> None:
    """What every fuzzed request must get: no 5xx, JSON, and an error's ``error`` and ``message``;
    a URL the HTTP parser refuses (``MAX_URL_BYTES``) gets its 400."""
    assert status < 500, (request, text)
    if len(request[1].encode()) > MAX_URL_BYTES:
        assert status == 400, (request, status, text)
        return
    assert ctype == "application/json", (request, status, text)
    data = json.loads(text)
    if status >= 400:
        assert isinstance(data["error"], str) and data["message"], (request, text)


def fuzzed_statuses(
    runner: asyncio.Runner,
    fuzz: settings,
    requests: st.SearchStrategy[tuple[str, str, bytes | None]],
    send: Callable[[str, str, bytes | None], Awaitable[tuple[int, str, str]]],
) -> set[int]:
    """Send every (method, url, body) that ``requests`` draws (``fuzz``'s settings) and check each
    reply (``assert_json_reply``); the statuses seen."""
    statuses: set[int] = set()

    @fuzz
    @given(requests)
    def check(request: tuple[str, str, bytes | None]) -> None:
        status, ctype, text = runner.run(send(*request))
        statuses.add(status)
        assert_json_reply(request, status, ctype, text)

    check()
    return statuses


async def test_openapi_is_served_and_lists_every_api_route(app: App) -> None:
    application = build_web_app(app)
    client = TestClient(TestServer(application))
    await client.start_server()
    try:
        resp = await client.get("/api/openapi.json")
        assert resp.status == 200 and resp.content_type == "application/json"
        served = await resp.json()
    finally:
        await client.close()
    assert served == json.loads(json.dumps(document())) and served["openapi"].startswith("3.1")
    described = {(method, path) for path, ops in served["paths"].items() for method in ops}
    assert described == registered_api_routes(application)


def valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a schema allows (roughly: types, enums, bounds), so the fuzz also reaches the handlers."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "pattern" in schema:  # the visitor token
        return st.sampled_from([TOKEN, "fuzz-visitor-token-0002"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.one_of(
            st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 50), 50)),
            st.sampled_from(
                ["商务局电话", "备案", "status", "human", "pick:1:0", "cancel", "entry:faq-bureau-002"]
            ),
        )
    return st.nothing()


def value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid(schema), hostile)


@st.composite
def bodies(draw: st.DrawFn, schema: dict[str, Any]) -> bytes:
    """A request body: an object with some of the schema's fields (good or hostile values), or raw
    bytes that are not a usable JSON object."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(HOSTILE_RAW))
    props = schema.get("properties", {})
    data = {}
    for name, sub in props.items():
        wanted = name in schema.get("required", []) or draw(st.booleans())
        if wanted and draw(st.integers(0, 9)) > 0:  # a required field is left out now and then
            data[name] = draw(value(sub))
    if draw(st.integers(0, 4)) == 0:
        data[draw(st.text(max_size=8))] = draw(hostile)
    return json.dumps(data).encode()  # ensure_ascii: surrogates travel as \ud800 escapes


def segment(text: Any) -> str:
    """A path segment or query value as a client would percent-encode it (surrogates too)."""
    return quote(str(text).encode("utf-8", "surrogatepass"), safe="")


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    """One request to one of the document's operations: (method, url, body)."""
    doc = document()
    path, ops = draw(st.sampled_from(sorted(doc["paths"].items())))
    method, op = draw(st.sampled_from(sorted(ops.items())))
    url = path
    query = []
    for param in op.get("parameters", []):
        raw = draw(value(param["schema"]))
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", segment(raw) or "x")
        elif draw(st.booleans()):
            query.append(f"{param['name']}={segment(raw)}")
    if query:
        url += "?" + "&".join(query)
    request_body = None
    if "requestBody" in op:
        request_body = draw(bodies(op["requestBody"]["content"]["application/json"]["schema"]))
    return method.upper(), url, request_body


def test_fuzz_every_operation_never_5xx_always_json(
    runner: asyncio.Runner, db_url: str, lexicon: Lexicon
) -> None:
    async def start() -> tuple[App, TestClient]:
        app = await App.create(Settings().replace("database", url=db_url), lexicon=lexicon)
        await app.services.load_default_if_empty()
        ws = dataclasses.replace(app.settings.web, rate_limit_per_minute=100_000)  # rate limits: elsewhere
        client = TestClient(TestServer(build_web_app(app, ws)))
        await client.start_server()
        return app, client

    app, client = runner.run(start())

    async def send(method: str, url: str, raw: bytes | None) -> tuple[int, str, str]:
        headers = {"Content-Type": "application/json"} if raw is not None else {}
        resp = await client.request(method, url, data=raw, headers=headers)
        return resp.status, resp.content_type, await resp.text()

    try:
        statuses = fuzzed_statuses(runner, FUZZ, requests(), send)
        assert 200 in statuses and 400 in statuses  # the generator reached the handlers and the checks
    finally:
        runner.run(client.close())
        runner.run(app.close())

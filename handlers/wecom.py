"""WeCom (企业微信) group robot: staff alerts posted to the staff group as markdown.

The ``wecom`` channel delivers the core's alerts (``bot.alerts``: new ticket, overdue ticket, daily
summary) to ``[wecom] webhook_url``. An alert about a ticket links to the ticket in the staff console.
WeCom's answer decides what the outbox does: ``errcode`` 0 is sent, 45009 (the robot's limit of 20
messages a minute) and HTTP 5xx are retried later, anything else is permanent.
"""

from __future__ import annotations

import logging

import aiohttp

from bot.app import App
from bot.channels import DeliveryError
from bot.messages import Reply

log = logging.getLogger("policybot.wecom")

CHANNEL = "wecom"
CHAT = "staff"  # one group per webhook
TIMEOUT = aiohttp.ClientTimeout(total=10)
RATE_LIMITED = 45009
MAX_BYTES = 4096  # WeCom's markdown content limit


def render_markdown(reply: Reply, console_url: str) -> str:
    """The first line as a heading, the others as a quote, and a link to the ticket in the console."""
    first, *rest = [line for line in reply.text.splitlines() if line.strip()] or ["…"]
    lines = [f"**{_escape(first)}**", *(f"> {_escape(line)}" for line in rest)]
    if reply.ticket_id is not None and console_url:
        lines.append(
            f"[在控制台查看工单 #{reply.ticket_id}]({console_url}/console/tickets/{reply.ticket_id})"
        )
    text = "\n".join(lines)
    while len(text.encode("utf-8")) > MAX_BYTES:
        text = text[: len(text) * 9 // 10]
    return text


FULL_WIDTH = str.maketrans("[]*`<>_", "［］＊｀＜＞＿")


def _escape(text: str) -> str:
    """Keep user text from forming markdown links, emphasis or tags (full-width look-alikes)."""
    return text.translate(FULL_WIDTH)


class WecomChannel:
    """Posts alerts to one WeCom group robot."""

    name = CHANNEL

    def __init__(self, webhook_url: str, console_url: str) -> None:
        self.webhook_url = webhook_url
        self.console_url = console_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, chat_ref: str, reply: Reply, reply_to: str | None = None) -> str | None:
        body = {"msgtype": "markdown", "markdown": {"content": render_markdown(reply, self.console_url)}}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            async with self._session.post(self.webhook_url, json=body) as resp:
                if resp.status >= 500:
                    raise DeliveryError(f"wecom http {resp.status}")
                if resp.status != 200:
                    raise DeliveryError(f"wecom http {resp.status}", permanent=True)
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryError(f"wecom unreachable: {type(exc).__name__}") from exc
        errcode = data.get("errcode", 0) if isinstance(data, dict) else -2
        if errcode == RATE_LIMITED:
            raise DeliveryError("wecom robot rate limit (45009)", retry_after=60.0)
        if errcode:
            log.warning("wecom refused an alert", extra={"errcode": errcode})
            raise DeliveryError(f"wecom errcode {errcode}", permanent=True)
        return None


def console_base(app: App) -> str:
    """Where staff reach the console: ``[web] public_url``, else the web server's own address."""
    web = app.settings.web
    if web.public_url:
        return web.public_url.rstrip("/")
    host = "127.0.0.1" if web.host in ("", "0.0.0.0") else web.host
    return f"http://{host}:{web.port}"


async def start_wecom(app: App) -> None:
    """Register the ``wecom`` channel and start the overdue / daily summary checks."""
    channel = WecomChannel(app.settings.wecom.webhook_url, console_base(app))
    app.registry.add(channel)
    app.alerts.start()

    async def stop() -> None:
        await app.alerts.stop()
        app.registry.remove(CHANNEL)
        await channel.close()

    app.stoppers.append(stop)

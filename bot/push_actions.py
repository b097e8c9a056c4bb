"""The subscription actions every channel offers, as button or command strings:

``subscribe`` (the categories as buttons), ``subscribe:<category>``, ``unsubscribe`` (the conversation's
subscriptions as buttons), ``unsubscribe:<category>``, ``subscriptions``, ``follow:<entry id>``,
``unfollow:<entry id>``, ``unsub:<subscription id>`` (the 退订 under a push), ``digest:on|off`` and
``read:<broadcast id>[:<n>]`` (阅读全文 under a push). A refusal is raised as ``Refusal``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from bot.messages import IncomingMessage, Reply
from bot.subscriptions import Refusal, SubscriptionService
from knowledge.models import Broadcast

NUMBER = re.compile(r"^[0-9]{1,12}$")
PREFIXES = ("subscribe", "unsubscribe", "subscriptions", "follow", "unfollow", "unsub", "digest", "read")

Show = Callable[[IncomingMessage, str], Awaitable[Reply]]


def is_push_action(action: str) -> bool:
    """Whether ``action`` is one of the subscription actions (the rest belong to the conversation core)."""
    return action.split(":", 1)[0] in PREFIXES


async def push_action(subs: SubscriptionService, show: Show, msg: IncomingMessage, action: str) -> Reply:
    """Run one subscription action for the conversation of ``msg``."""
    name, _, arg = action.partition(":")
    if name == "subscribe":
        return await (subs.subscribe(msg, arg) if arg.strip() else subs.choose(msg))
    if name == "unsubscribe":
        return await (subs.unsubscribe(msg, arg) if arg.strip() else subs.choose_unsubscribe(msg))
    if name == "subscriptions" and not arg:
        return await subs.overview(msg)
    if name == "follow" and arg:
        return await subs.follow(msg, arg)
    if name == "unfollow" and arg:
        return await subs.unfollow(msg, arg)
    if name == "unsub" and NUMBER.match(arg):
        return await subs.unsubscribe_id(msg, int(arg))
    if name == "digest" and arg in ("on", "off"):
        return await subs.set_mode(msg, "digest" if arg == "on" else "instant")
    if name == "read":
        return await _read(subs, show, msg, arg)
    raise Refusal("unknown_action", f"未知操作（unknown action {action[:80]!r}）")


async def _read(subs: SubscriptionService, show: Show, msg: IncomingMessage, arg: str) -> Reply:
    """阅读全文 under a push: the broadcast's entry (or the n-th of a batch) in full."""
    parts = arg.split(":")
    if not 1 <= len(parts) <= 2 or not all(NUMBER.match(p) for p in parts):
        raise Refusal("unknown_action", "未知操作（read needs a broadcast number）")
    async with subs.sessions() as session:
        b = await session.get(Broadcast, int(parts[0]))
    if b is None or b.status != "sent":
        raise Refusal("unknown_broadcast", "这条推送已不存在。", 404)
    entry_id = b.entry_id
    if len(parts) == 2:
        ids = b.payload.get("entry_ids", [])
        index = int(parts[1])
        entry_id = ids[index] if index < len(ids) else None
    if entry_id is None:
        raise Refusal("unknown_broadcast", "这条推送已不存在。", 404)
    return await show(msg, entry_id)

"""The subscription actions, run for the conversation core (``Conversations.act`` and ``.command``).

The actions are made and parsed in ``bot.protocol``: ``subscribe[:<category>]``, ``unsubscribe[:<category>]``,
``subscriptions``, ``follow:<entry id>``, ``unfollow:<entry id>``, ``unsub:<subscription id>`` (退订 under
every push), ``digest:on|off`` and ``read:<broadcast id>[:<n>]`` (阅读全文 under a push). A refusal is raised
as ``bot.subscriptions.Refusal``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.messages import IncomingMessage, Reply
from bot.protocol import Action
from bot.subscriptions import Refusal, SubscriptionService
from knowledge.models import Broadcast

Show = Callable[[IncomingMessage, str], Awaitable[Reply]]


async def push_act(subs: SubscriptionService, show: Show, msg: IncomingMessage, a: Action) -> Reply:
    """Run one subscription action for the conversation of ``msg``."""
    match a.kind:
        case "subscribe":
            return await (subs.subscribe(msg, a.arg) if a.arg else subs.choose(msg))
        case "unsubscribe":
            return await (subs.unsubscribe(msg, a.arg) if a.arg else subs.choose_unsubscribe(msg))
        case "subscriptions":
            return await subs.overview(msg)
        case "follow":
            return await subs.follow(msg, a.arg)
        case "unfollow":
            return await subs.unfollow(msg, a.arg)
        case "unsub":
            return await subs.unsubscribe_id(msg, a.ids[0])
        case "digest":
            return await subs.set_mode(msg, "digest" if a.arg == "on" else "instant")
        case "read":
            return await _read(subs, show, msg, a.ids)
    raise Refusal("unknown_action", f"未知操作（unknown action {a.kind!r}）")


async def push_command(subs: SubscriptionService, msg: IncomingMessage, name: str, args: str) -> Reply:
    """``/subscribe [category]``, ``/unsubscribe [category]``, ``/subscriptions``; a refusal is the reply."""
    try:
        if name == "subscribe":
            return await (subs.subscribe(msg, args) if args else subs.choose(msg))
        if name == "unsubscribe":
            return await (subs.unsubscribe(msg, args) if args else subs.choose_unsubscribe(msg))
        return await subs.overview(msg)
    except Refusal as exc:
        return exc.reply()


async def _read(subs: SubscriptionService, show: Show, msg: IncomingMessage, ids: tuple[int, ...]) -> Reply:
    """阅读全文 under a push: the broadcast's entry (or the n-th of a bulk-import summary) in full."""
    async with subs.sessions() as session:
        b = await session.get(Broadcast, ids[0])
    if b is None or b.status != "sent":
        raise Refusal("unknown_broadcast", "这条推送已不存在。", 404)
    entry_id = b.entry_id
    if len(ids) == 2:
        listed = b.payload.get("entry_ids", [])
        entry_id = listed[ids[1]] if ids[1] < len(listed) else None
    if entry_id is None:
        raise Refusal("unknown_broadcast", "这条推送已不存在。", 404)
    return await show(msg, entry_id)

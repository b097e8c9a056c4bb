"""Subscriptions: a conversation asks to hear of a category's new entries or of one entry's changes.

A subscription belongs to the conversation that asked (channel, chat and user), is confirmed in one reply,
and is ended in one tap (``unsub:<id>`` under every pushed message, or ``unsubscribe:<category>``).
Every refusal (unknown category, too many subscriptions, too many changes in an hour, someone else's
subscription) is a ``Refusal`` with a clear message; nothing is changed then. The pushes themselves are
made by ``bot.broadcasts``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SubscriptionSettings
from bot.messages import Button, IncomingMessage, Reply
from bot.protocol import (
    digest_action,
    fits_button,
    follow_action,
    subscribe_action,
    subscriptions_action,
    unsub_action,
)
from knowledge.models import Conversation, Entry, Subscription, SubscriptionEvent, utcnow
from knowledge.store import KnowledgeBase

CATEGORY = "c:"
ENTRY = "e:"
FOLLOWABLE = ("faq", "guide", "policy")
MODES = {"instant": "有更新即推送", "digest": "每日汇总推送一次"}

ConversationOf = Callable[[AsyncSession, IncomingMessage], Awaitable[Conversation]]


class Refusal(Exception):
    """A subscription action refused: ``code`` for APIs, ``message`` for the user, HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def reply(self) -> Reply:
        return Reply(self.message, kind="error")


def category_topic(category: str) -> str:
    return CATEGORY + category


def entry_topic(entry_id: str) -> str:
    return ENTRY + entry_id


@dataclass(frozen=True, slots=True)
class TopicView:
    """One subscription as the user sees it."""

    id: int
    topic: str
    label: str
    mode: str


class SubscriptionService:
    """Subscribe, unsubscribe, follow, list and choose instant or digest delivery."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        kb: KnowledgeBase,
        settings: SubscriptionSettings,
        conversation_of: ConversationOf,
    ) -> None:
        self.sessions = sessions
        self.kb = kb
        self.settings = settings
        self.conversation_of = conversation_of

    # -- categories ---------------------------------------------------------------------------------
    async def categories(self) -> list[str]:
        """The categories one can subscribe to: those with published entries."""
        return [name for name, _ in await self.kb.categories(topics_only=True)]

    async def check_category(self, category: str) -> str:
        """``category`` if it exists, else a refusal naming the ones that do."""
        category = category.strip()
        known = await self.categories()
        if category not in known:
            raise Refusal(
                "unknown_category",
                f"没有“{category[:40]}”这个分类。可以订阅的分类有：{'、'.join(known) or '（暂无）'}。",
            )
        return category

    async def subscribe(self, msg: IncomingMessage, category: str) -> Reply:
        """Subscribe to a category's new entries; confirmed in one reply."""
        category = await self.check_category(category)
        sub = await self._add(msg, category_topic(category))
        return Reply(
            f"已订阅「{category}」政策更新。该类有新的政策、办事指南或问答发布时，会推送给您"
            f"（{MODES[sub.mode]}）。\n随时可点“退订”或发送 /unsubscribe 取消。",
            buttons=[[Button("退订", unsub_action(sub.id)), Button("我的订阅", subscriptions_action())]],
            kind="info",
        )

    async def follow(self, msg: IncomingMessage, entry_id: str) -> Reply:
        """Follow one entry (a clause follows its document) for its revisions and expiry."""
        entry = await self._followable(entry_id)
        sub = await self._add(msg, entry_topic(entry.id))
        return Reply(
            f"已关注《{entry_label(entry)}》。它修订、失效或撤回时会通知您。",
            buttons=[[Button("取消关注", unsub_action(sub.id)), Button("我的订阅", subscriptions_action())]],
            kind="info",
        )

    async def unsubscribe(self, msg: IncomingMessage, category: str) -> Reply:
        """End a category subscription."""
        category = category.strip()
        if not await self._remove(msg, category_topic(category)):
            raise Refusal(
                "not_subscribed", f"您没有订阅“{category[:40]}”。发送 /subscriptions 查看您的订阅。"
            )
        return Reply(f"已退订「{category}」，不会再收到该类推送。", kind="info")

    async def unfollow(self, msg: IncomingMessage, entry_id: str) -> Reply:
        """Stop following an entry."""
        if not await self._remove(msg, entry_topic(entry_id)):
            raise Refusal("not_subscribed", "您没有关注这条内容。发送 /subscriptions 查看您的订阅。")
        return Reply("已取消关注，不会再收到这条内容的变更通知。", kind="info")

    async def unsubscribe_id(self, msg: IncomingMessage, sub_id: int) -> Reply:
        """The one-tap 退订 under a pushed message: only the conversation's own subscription."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation_of(session, msg)
            sub = await session.get(Subscription, sub_id)
            if sub is None:
                raise Refusal("unknown_subscription", "这项订阅已经取消了，不会再收到它的推送。", 404)
            if sub.conversation_id != conv.id:
                raise Refusal("not_yours", "这不是您的订阅，无法操作。", 403)
            label = await self._label(session, sub.topic)
            await session.delete(sub)
            session.add(SubscriptionEvent(conversation_id=conv.id, topic=sub.topic, action="unsubscribe"))
        return Reply(f"已退订「{label}」，不会再收到它的推送。", kind="info")

    async def set_mode(self, msg: IncomingMessage, mode: str) -> Reply:
        """Every subscription of the conversation pushed at once (``instant``) or in a daily digest."""
        if mode not in MODES:
            raise Refusal("bad_mode", "推送方式只能是即时（instant）或每日汇总（digest）。")
        async with self.sessions() as session, session.begin():
            conv = await self.conversation_of(session, msg)
            subs = list(
                await session.scalars(select(Subscription).where(Subscription.conversation_id == conv.id))
            )
            if not subs:
                raise Refusal("no_subscriptions", "您还没有订阅。发送 /subscribe 选择分类。")
            await self._check_flood(session, conv)
            for sub in subs:
                sub.mode = mode
            session.add(SubscriptionEvent(conversation_id=conv.id, topic="", action=mode))
        hour = self.settings.digest_hour
        when = f"每天 {hour}:00 汇总推送一次" if mode == "digest" else "有更新即推送"
        return Reply(f"已改为{when}。", kind="info")

    # -- reading ------------------------------------------------------------------------------------
    async def of(self, msg: IncomingMessage) -> list[TopicView]:
        """The conversation's subscriptions, oldest first."""
        async with self.sessions() as session, session.begin():
            conv = await self.conversation_of(session, msg)
            subs = list(
                await session.scalars(
                    select(Subscription)
                    .where(Subscription.conversation_id == conv.id)
                    .order_by(Subscription.id)
                )
            )
            return [TopicView(s.id, s.topic, await self._label(session, s.topic), s.mode) for s in subs]

    async def overview(self, msg: IncomingMessage) -> Reply:
        """``/subscriptions``: what the conversation receives, each with its 退订 button."""
        subs = await self.of(msg)
        if not subs:
            return Reply(
                "您还没有订阅任何政策更新。选择一个分类订阅：",
                buttons=await self.category_buttons(msg),
                kind="info",
            )
        lines = ["您的订阅："]
        buttons = []
        for s in subs:
            what = "分类" if s.topic.startswith(CATEGORY) else "关注"
            lines.append(f"· {what}：{s.label}")
            buttons.append([Button(f"退订 {s.label[:20]}", unsub_action(s.id))])
        mode = subs[0].mode
        lines.append(f"推送方式：{MODES[mode]}。")
        to_digest = mode != "digest"
        buttons.append([Button("改为每日汇总" if to_digest else "改为即时推送", digest_action(to_digest))])
        return Reply("\n".join(lines), buttons=buttons, kind="info")

    async def choose(self, msg: IncomingMessage) -> Reply:
        """``/subscribe`` without a category: the categories as buttons."""
        buttons = await self.category_buttons(msg)
        if not buttons:
            return Reply("目前还没有可订阅的分类。", kind="info")
        return Reply("请选择要订阅的政策分类（有新内容时推送给您）：", buttons=buttons, kind="info")

    async def choose_unsubscribe(self, msg: IncomingMessage) -> Reply:
        """``/unsubscribe`` without a category: the conversation's subscriptions as buttons."""
        subs = await self.of(msg)
        if not subs:
            return Reply("您还没有订阅任何政策更新。", kind="info")
        buttons = [[Button(f"退订 {s.label[:20]}", unsub_action(s.id))] for s in subs]
        return Reply("请选择要退订的内容：", buttons=buttons, kind="info")

    async def category_buttons(self, msg: IncomingMessage) -> list[list[Button]]:
        """One ``subscribe:<category>`` button a category, two a row; subscribed ones are ticked."""
        mine = {s.topic for s in await self.of(msg)}
        buttons = [
            Button(("✓ " if category_topic(c) in mine else "") + c, subscribe_action(c))
            for c in await self.categories()
        ]
        return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]

    async def answer_buttons(
        self, session: AsyncSession, entry_id: str, entry: Entry | None = None
    ) -> list[list[Button]]:
        """订阅此类政策更新 (the entry's category) and 关注此条 (the entry, or a clause's document) under
        an answer; an action too long for a button on every channel is left out. ``entry``: the entry,
        when the caller has read it already."""
        if not self.settings.enabled:
            return []
        if entry is None or entry.id != entry_id:
            entry = await session.get(Entry, entry_id)
        category = entry.category if entry is not None else ""
        if entry is not None and entry.parent_id:
            entry = await session.get(Entry, entry.parent_id)
        if entry is None or entry.kind not in FOLLOWABLE:
            return []
        row = []
        subscribe = subscribe_action(category or entry.category)
        if (category or entry.category) and fits_button(subscribe):
            row.append(Button("订阅此类政策更新", subscribe))
        if fits_button(follow_action(entry.id)):
            row.append(Button("关注此条", follow_action(entry.id)))
        return [row] if row else []

    # -- internals ----------------------------------------------------------------------------------
    async def _followable(self, entry_id: str) -> Entry:
        entry = await self.kb.get(entry_id.strip())
        if entry is not None and entry.parent_id:
            entry = await self.kb.get(entry.parent_id)
        if entry is None or entry.status != "published" or entry.kind not in FOLLOWABLE:
            raise Refusal("unknown_entry", "没有这条已发布的内容，无法关注。", 404)
        return entry

    async def _add(self, msg: IncomingMessage, topic: str) -> Subscription:
        try:
            async with self.sessions() as session, session.begin():
                conv = await self.conversation_of(session, msg)
                existing = await session.scalar(
                    select(Subscription).where(
                        Subscription.conversation_id == conv.id, Subscription.topic == topic
                    )
                )
                if existing is not None:
                    return existing  # subscribing twice is the same subscription, confirmed again
                await self._check_flood(session, conv)
                count = await session.scalar(
                    select(func.count())
                    .select_from(Subscription)
                    .where(Subscription.conversation_id == conv.id)
                )
                if int(count or 0) >= self.settings.max_per_visitor:
                    raise Refusal(
                        "too_many_subscriptions",
                        f"您已有 {count} 项订阅，达到上限（{self.settings.max_per_visitor} 项）。请先退订一些。",
                        429,
                    )
                mode = await session.scalar(
                    select(Subscription.mode).where(Subscription.conversation_id == conv.id).limit(1)
                )
                sub = Subscription(conversation_id=conv.id, topic=topic, mode=mode or "instant")
                session.add(sub)
                session.add(SubscriptionEvent(conversation_id=conv.id, topic=topic, action="subscribe"))
                await session.flush()
                return sub
        except IntegrityError:  # the same request twice at the same moment: the other one made it
            async with self.sessions() as session:
                conv = await self.conversation_of(session, msg)
                found = await session.scalar(
                    select(Subscription).where(
                        Subscription.conversation_id == conv.id, Subscription.topic == topic
                    )
                )
            if found is None:
                raise
            return found

    async def _remove(self, msg: IncomingMessage, topic: str) -> bool:
        async with self.sessions() as session, session.begin():
            conv = await self.conversation_of(session, msg)
            result = await session.execute(
                delete(Subscription).where(
                    Subscription.conversation_id == conv.id, Subscription.topic == topic
                )
            )
            if cast("CursorResult[Any]", result).rowcount != 1:
                return False
            session.add(SubscriptionEvent(conversation_id=conv.id, topic=topic, action="unsubscribe"))
            return True

    async def _check_flood(self, session: AsyncSession, conv: Conversation) -> None:
        """At most ``max_changes_per_hour`` subscription changes per conversation in an hour (ending one
        is never refused)."""
        since = utcnow() - timedelta(hours=1)
        recent = await session.scalar(
            select(func.count())
            .select_from(SubscriptionEvent)
            .where(SubscriptionEvent.conversation_id == conv.id, SubscriptionEvent.created_at >= since)
        )
        if int(recent or 0) >= self.settings.max_changes_per_hour:
            raise Refusal("subscription_flood", "订阅操作太频繁了，请一小时后再试。", 429)

    async def _label(self, session: AsyncSession, topic: str) -> str:
        if topic.startswith(CATEGORY):
            return topic[len(CATEGORY) :]
        entry = await session.get(Entry, topic[len(ENTRY) :])
        return entry_label(entry) if entry is not None else topic[len(ENTRY) :]


def entry_label(entry: Entry) -> str:
    """An entry's name in a sentence."""
    return (entry.title or entry.question or entry.id)[:60]

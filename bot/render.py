"""Decisions and replies as plain text: ``ask``, and the channels without buttons (WeChat, the
terminal); the others style replies their own way."""

from __future__ import annotations

from bot.messages import Decision, Reply
from bot.protocol import RATING_KINDS, ActionError, choices, command_hint, parse_action

# Heads the closest entries of a question without an answer (the chat's no-answer reply too).
NO_ANSWER_CLOSEST = "知识库里最接近的内容如下，供您参考："


def decision_text(d: Decision) -> str:
    """A human-readable rendering of a decision."""
    if d.status == "answered" and d.answer:
        return f"{d.answer}\n{d.citation}".strip()
    if d.status == "suggested":
        lines = ["您是不是想问："]
        lines += [f"  {i}. {s.title}" for i, s in enumerate(d.suggestions, 1)]
        return "\n".join(lines)
    text = d.notice or "这个问题知识库里还没有可靠的答案。"
    if d.suggestions:  # (a question without an answer: its closest entries, as the chat lists them)
        text += f"\n{NO_ANSWER_CLOSEST}\n" + "\n".join(
            f"  {i}. {s.title}" for i, s in enumerate(d.suggestions, 1)
        )
    return text


CHOOSE_HINT = "回复数字选择。"
RATE_HINT = "回复数字评价这条答复。"  # when every numbered line is a rating
SUBSCRIBE_HINT = "回复“订阅 分类名”订阅该类政策更新，例如：订阅 {example}"
UNSUBSCRIBE_HINT = "回复“退订 分类名”取消订阅，回复“我的订阅”查看您的订阅。"


def reply_text(reply: Reply, numbered: str = "{i}. {label}") -> str:
    """A reply as the text of a channel without buttons (WeChat, the terminal): body, source, the
    choices (questions, categories, entries, ratings: ``choices``) as numbered lines (``numbered``: their
    format) the user answers with a number, and the subscription buttons as the words to send."""
    lines = [reply.text.strip() or "…"]
    if reply.source_line.strip():
        lines += ["", reply.source_line.strip()]
    offered = choices(reply.buttons)
    if offered:
        lines.append("")
        lines += [numbered.format(i=i, label=b.label) for i, b in enumerate(offered, 1)]
        lines.append(RATE_HINT if all(b.action.startswith(RATING_KINDS) for b in offered) else CHOOSE_HINT)
    if hint := command_hint(reply.buttons, numbered=True):
        lines += ["", hint]
    return "\n".join(lines + _subscription_words(reply))


def _subscription_words(reply: Reply) -> list[str]:
    """Subscription buttons as the words to send: the categories offered, then how to unsubscribe."""
    offered = [
        b for row in reply.buttons for b in row if _kind(b.action) == "subscribe" and b.action != "subscribe"
    ]
    ending = any(_kind(b.action) in ("unsub", "unsubscribe") for row in reply.buttons for b in row)
    lines: list[str] = []
    if offered:
        # Each by its category (the button's, not its label: 订阅此类政策更新 under an answer), ticked
        # when subscribed already; the example names one not yet subscribed.
        named = [("✓ " if b.label.startswith("✓") else "", parse_action(b.action).arg) for b in offered]
        lines += ["", *(f"· {tick}{category}" for tick, category in named)]
        fresh = [category for tick, category in named if not tick] or [named[0][1]]
        lines.append(SUBSCRIBE_HINT.format(example=fresh[0]))
    if ending:
        lines += ["", UNSUBSCRIBE_HINT]
    return lines


def _kind(action: str) -> str | None:
    try:
        return parse_action(action).kind
    except ActionError:
        return None

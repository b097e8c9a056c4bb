"""WeChat rendering: a neutral ``Reply`` as the plain text of a WeChat message.

WeChat text messages have no buttons: the core's choices (suggested questions, 都不是，转人工, and the
ratings 有用 / 没解决 of an answer and 满意 / 一般 / 不满意 of a staff reply) become numbered lines the user
answers with a number; category and entry buttons are listed by name;
subscription buttons become the words to send instead (订阅 分类名, 退订 分类名, 我的订阅: see
``handlers.wechat.WORDS``). A text longer than one message is cut on line boundaries into parts of at
most ``PART_BYTES`` bytes of UTF-8.
"""

from __future__ import annotations

from bot.messages import Reply
from bot.protocol import RATING_KINDS, ActionError, choices, command_hint, parse_action

PART_BYTES = 2000  # WeChat's text messages hold 2048 bytes; keep a margin
CHOOSE_HINT = "回复数字选择。"
RATE_HINT = "回复数字评价这条答复。"  # when every numbered line is a rating
LISTED = ("cat", "entry")  # buttons listed by name (the user can ask about them in words)
SUBSCRIBE_HINT = "回复“订阅 分类名”订阅该类政策更新，例如：订阅 {example}"
UNSUBSCRIBE_HINT = "回复“退订 分类名”取消订阅，回复“我的订阅”查看您的订阅。"


def render_text(reply: Reply) -> str:
    """The whole reply as one text: body, source, numbered choices, listed categories or entries."""
    lines = [reply.text.strip() or "…"]
    if reply.source_line.strip():
        lines += ["", reply.source_line.strip()]
    numbered = choices(reply.buttons)
    if numbered:
        lines.append("")
        lines += [f"{i}. {b.label}" for i, b in enumerate(numbered, 1)]
        lines.append(RATE_HINT if all(b.action.startswith(RATING_KINDS) for b in numbered) else CHOOSE_HINT)
    listed = [b.label for row in reply.buttons for b in row if _kind(b.action) in LISTED]
    if listed:
        lines.append("")
        lines += [f"· {label}" for label in listed]
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
        lines += ["", *(f"· {b.label}" for b in offered)]
        # The example names a category (the button's, not its label: 订阅此类政策更新 under an answer).
        fresh = [b for b in offered if not b.label.startswith("✓")] or offered
        lines.append(SUBSCRIBE_HINT.format(example=parse_action(fresh[0].action).arg))
    if ending:
        lines += ["", UNSUBSCRIBE_HINT]
    return lines


def _kind(action: str) -> str | None:
    try:
        return parse_action(action).kind
    except ActionError:
        return None


def render_parts(replies: list[Reply], budget: int = PART_BYTES) -> list[str]:
    """The replies as message texts, each within ``budget`` bytes (replies joined by a blank line)."""
    text = "\n\n".join(render_text(r) for r in replies)
    return split_bytes(text, budget)


def split_bytes(text: str, budget: int = PART_BYTES) -> list[str]:
    """Cut ``text`` into pieces of at most ``budget`` UTF-8 bytes, on line ends where possible."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if _size(candidate) <= budget:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        while _size(line) > budget:
            cut = _fit(line, budget)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not parts:
        parts.append(current)
    return parts


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fit(text: str, budget: int) -> int:
    """How many characters of ``text`` fit in ``budget`` bytes (at least one)."""
    used = 0
    for i, ch in enumerate(text):
        used += len(ch.encode("utf-8"))
        if used > budget:
            return max(1, i)
    return len(text)

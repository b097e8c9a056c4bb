"""WeChat rendering: a neutral ``Reply`` as the plain text of a WeChat message.

WeChat text messages have no buttons: the core's choices (suggested questions, 都不是，转人工, hot
questions, categories and their entries, and the ratings 有用 / 没解决 of an answer and 满意 / 一般 / 不满意
of a staff reply) become numbered lines the user answers with a number; subscription buttons become the
words to send instead (订阅 分类名, 退订 分类名, 我的订阅, which the core reads as commands:
``bot.protocol``). The text is ``bot.render.reply_text``, as on the terminal. A text longer than one
message is cut on line boundaries into parts of at most ``PART_BYTES`` bytes of UTF-8.
"""

from __future__ import annotations

from bot.messages import Reply
from bot.render import CHOOSE_HINT, RATE_HINT, reply_text

__all__ = ["CHOOSE_HINT", "PART_BYTES", "RATE_HINT", "render_parts", "render_text", "split_bytes"]

PART_BYTES = 2000  # WeChat's text messages hold 2048 bytes; keep a margin


def render_text(reply: Reply) -> str:
    """The whole reply as one WeChat text (``bot.render.reply_text``: numbered choices)."""
    return reply_text(reply)


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

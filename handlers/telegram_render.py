"""Telegram rendering: a neutral ``Reply`` as Telegram HTML message texts and an inline keyboard.

Every piece of user or knowledge text is escaped; the source line is set in italics; buttons become an
inline keyboard (``callback_data`` is the button's action). Texts longer than one Telegram message are
split on paragraph, then line, then character boundaries.
"""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.messages import Button, Reply
from bot.protocol import command_hint

log = logging.getLogger("policybot.telegram")

MAX_MESSAGE = 4096  # Telegram's limit, in UTF-16 code units after entity parsing
PART_BUDGET = 4000  # what one part may use, measured on the escaped HTML (a safe upper bound)
MAX_CALLBACK_DATA = 64  # bytes


def esc(text: str) -> str:
    """Escape user or knowledge text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def render_parts(reply: Reply, budget: int = PART_BUDGET) -> list[str]:
    """The reply as one or more HTML message texts, each within Telegram's limit; the commands that do
    what its buttons do are hinted under the text (``/status``, ``/cancel``, ``/human``)."""
    text = reply.text.strip() or "…"
    if hint := command_hint(reply.buttons):
        text = f"{text}\n{hint}"
    parts = [esc(chunk) for chunk in split_text(text, budget)]
    line = reply.source_line.strip()[:500]
    if line:
        source = f"<i>{esc(line)}</i>"
        if _units(parts[-1]) + 2 + _units(source) <= budget:
            parts[-1] = f"{parts[-1]}\n\n{source}"
        else:
            parts.append(source)
    return parts


def split_text(text: str, budget: int = PART_BUDGET) -> list[str]:
    """Split plain text so each piece's escaped HTML fits ``budget``: paragraphs, then lines, then characters."""
    if _escaped_units(text) <= budget:
        return [text]
    for sep in ("\n\n", "\n"):
        if sep in text:
            return _pack(text.split(sep), sep, budget)
    return _hard_cut(text, budget)


def _pack(pieces: list[str], sep: str, budget: int) -> list[str]:
    out: list[str] = []
    current = ""
    for piece in pieces:
        for sub in split_text(piece, budget):
            candidate = f"{current}{sep}{sub}" if current else sub
            if _escaped_units(candidate) <= budget:
                current = candidate
                continue
            if current.strip():
                out.append(current.strip("\n"))
            current = sub
    if current.strip():
        out.append(current.strip("\n"))
    return out


def _hard_cut(text: str, budget: int) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        size = _escaped_units(ch)
        if used + size > budget:
            out.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    if current:
        out.append("".join(current))
    return out


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _escaped_units(text: str) -> int:
    return _units(esc(text))


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard; an action too long for ``callback_data`` is left out (and logged)."""
    keys: list[list[InlineKeyboardButton]] = []
    for row in rows:
        keep = [b for b in row if 1 <= len(b.action.encode()) <= MAX_CALLBACK_DATA]
        if len(keep) < len(row):
            log.warning("button action too long for Telegram, dropped", extra={"row": len(keys)})
        if keep:
            keys.append([InlineKeyboardButton(b.label, callback_data=b.action) for b in keep])
    return InlineKeyboardMarkup(keys) if keys else None

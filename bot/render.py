"""Decisions and replies as plain text (terminal and ``ask``); channels style them their own way."""

from __future__ import annotations

from bot.messages import Decision

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

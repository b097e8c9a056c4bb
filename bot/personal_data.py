"""Personal data still to be masked in texts that would become knowledge (over ``bot.privacy``)."""

from __future__ import annotations

from collections.abc import Iterable

from bot import privacy


def findings(text: str) -> list[tuple[str, str]]:
    """(label, masked value) of the personal data in ``text`` still to be masked (a name already
    masked to its surname, ``张*``, is not)."""
    out = []
    for f in privacy.find(text or ""):
        value = text[f.start : f.end]
        masked = privacy.mask_value(f.kind, value)
        if masked != value:
            out.append((privacy.KIND_LABELS[f.kind], masked))
    return out


def personal_data(texts: Iterable[str]) -> list[str]:
    """The kinds of personal data in these texts, in Chinese, each once."""
    kinds: list[str] = []
    for text in texts:
        for label, _ in findings(text):
            if label not in kinds:
                kinds.append(label)
    return kinds

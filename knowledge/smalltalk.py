"""Small talk (greetings, thanks, goodbyes...) found by its whole wording, however short.

Greetings are made of words the matcher drops as fillers (你好, 谢谢, 在吗), so a question like "你好"
has nothing to search with. Small-talk entries are found instead by the exact compact form of the
whole message (``Index.asked_as``), after forgiving the trimmings people add: trailing particles
(你好呀, 谢谢啦), a leading interjection (嗯好的), a word said twice (谢谢谢谢), emoji and punctuation.
"""

from __future__ import annotations

from knowledge.index import Index
from knowledge.text import compact

MAX_CHARS = 30  # longer messages are questions, not small talk
TRAILING = "啊呀呢吧哈啦嘛哦噢喔哟嘞咯呐"
LEADING = "嗯哦噢喔啊哈"


def phrasings(text: str) -> list[str]:
    """The compact forms a small-talk message is looked up by, the message itself first."""
    c = compact(text)
    if not c or len(c) > MAX_CHARS:
        return []
    forms = [c, c.rstrip(TRAILING), c.lstrip(LEADING), c.strip(LEADING + TRAILING)]
    for size in range(1, len(c) // 2 + 1):  # 谢谢谢谢 -> 谢谢, 你好你好 -> 你好
        unit = c[:size]
        if len(c) % size == 0 and unit * (len(c) // size) == c:
            forms.append(unit)
    return [f for f in dict.fromkeys(forms) if f]


def find_small_talk(index: Index, text: str) -> str | None:
    """The id of the small-talk entry the whole message is a phrasing of, or None."""
    forms = phrasings(text)
    if not forms:
        return None
    with index.reading():
        for form in forms:
            for d in index.asked_as(form):
                if index.docs[d].kind == "smalltalk":
                    return index.docs[d].entry_id
    return None

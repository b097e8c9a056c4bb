"""Small talk (greetings, thanks, goodbyes...) found by its whole wording, however short.

Greetings are made of words the matcher drops as fillers (你好, 谢谢, 在吗), so a question like "你好"
has nothing to search with. Small-talk entries are found instead by the exact compact form of the
whole message (``Index.asked_as``), after forgiving the trimmings people add: trailing particles
(你好呀, 谢谢啦), a leading interjection (嗯好的), name for the bot before or after what is said
(小助手，你能做什么; 谢谢小助手) or opening (请问你是机器人吗), 么 for 吗 (在么), 了没 for 了吗 (吃了没),
the pronoun left out (吃了吗 for 你吃了吗), a word said twice
(谢谢谢谢), emoji and punctuation;
or, when the whole message is two or more of them in a row (好的，明白了; 谢谢，再见), by the last.
Small talk said in a clause of its own beside other words (谢谢，帮大忙了; 你好，我想问一下) is found by
``said_apart``; whether those other words ask anything is for the caller to judge (bot/qa.py).
"""

from __future__ import annotations

import weakref

from knowledge.index import Index
from knowledge.text import compact, normalize

MAX_CHARS = 30  # longer messages are questions, not small talk
TRAILING = "啊呀呢吧呗哈啦嘛哦噢喔哟嘞咯呐"
PIECE_CHARS = 12  # the longest piece a message made of several small-talk phrasings is split into
LEADING = "嗯哦噢喔啊哈"
# How people call the bot, before or after what they say (你这机器人太笨了: 太笨了).
ADDRESSED = (
    "小助手",
    "助手",
    "机器人",
    "客服",
    "亲",
    "老师",
    *(
        f"{who}{this}{bot}"
        for who in ("", "你", "你们")
        for this in ("这", "这个")
        for bot in ("机器人", "智能客服")
    ),
)
OPENING = ("请问", "您好", "你好")  # how people open what they say (请问你是机器人吗 -> 你是机器人吗)
# Words ending in 么 that are no question particle (么 for 吗 in 在么, 是机器人么; 你能做什么 stays).
NOT_PARTICLE_ME = ("什么", "怎么", "那么", "这么", "多么", "要么", "为什么")


def phrasings(text: str) -> list[str]:
    """The compact forms a small-talk message is looked up by, the message itself first (a closing
    么, or 了没, read as 吗)."""
    c = compact(text)
    if not c or len(c) > MAX_CHARS:
        return []
    if c.endswith("么") and not c.endswith(NOT_PARTICLE_ME):  # 在么 -> 在吗
        c = c[:-1] + "吗"
    elif c.endswith(("了没", "了没有")):  # 吃了没 -> 吃了吗
        c = c[: c.rindex("了没")] + "了吗"
    forms = [c, c.rstrip(TRAILING), c.lstrip(LEADING), c.strip(LEADING + TRAILING)]
    if not c.startswith(("你", "您", *ADDRESSED, *OPENING)):  # the pronoun left out: 吃了吗 -> 你吃了吗
        forms.append("你" + c.strip(LEADING + TRAILING))
    for name in (*ADDRESSED, *OPENING):  # 小助手，你能做什么 -> 你能做什么
        rest = c[len(name) :]
        if c.startswith(name) and rest.strip(LEADING + TRAILING):  # (你好呀 is no opening of 呀)
            forms += [rest, rest.rstrip(TRAILING)]
    for name in ADDRESSED:  # 谢谢小助手, 你好啊机器人 -> 谢谢, 你好
        if c.endswith(name) and (rest := c[: -len(name)].rstrip(TRAILING)):
            forms.append(rest)
    for size in range(1, len(c) // 2 + 1):  # 谢谢谢谢 -> 谢谢, 你好你好 -> 你好
        unit = c[:size]
        if len(c) % size == 0 and unit * (len(c) // size) == c:
            forms.append(unit)
    return [f for f in dict.fromkeys(forms) if f]


def find_small_talk(index: Index, text: str) -> str | None:
    """The id of the small-talk entry the whole message is a phrasing of; else, when the message is
    several small-talk phrasings in a row (好的明白了, 谢谢再见), the last one's (what was said last is
    what the reply answers), or when each of its clauses is one (答非所问，你这机器人太笨了: a clause
    is looked up with its trimmings forgiven, 你这机器人 before 太笨了), the last one's; None otherwise."""
    forms = phrasings(text)
    if not forms:
        return None
    with index.reading():
        found = _phrasing_of(index, forms) or _last_of_several(index, forms[0])
    return found or _last_of_clauses(index, text)


def _last_of_clauses(index: Index, text: str) -> str | None:
    """The entry of the last clause when every clause of ``text`` (two or more) is small talk."""
    clauses = normalize(text).split()  # (punctuation is a space once normalized)
    if len(clauses) < 2:
        return None
    found = [find_small_talk(index, clause) for clause in clauses]
    return found[-1] if all(found) else None


def said_apart(index: Index, text: str) -> tuple[str, str] | None:
    """Small talk said in a clause of its own beside other clauses (谢谢，帮大忙了; 你好，我想问一下;
    好的 我再看看): the entry of the last clause that is small talk (what was said last is what the
    reply answers) and the other clauses, joined; None when no clause is, when every clause is
    (``find_small_talk`` finds those), or when the message is too long to be small talk."""
    if len(compact(text)) > MAX_CHARS:
        return None
    found: str | None = None
    rest: list[str] = []
    for clause in normalize(text).split():  # (punctuation is a space once normalized)
        if entry := find_small_talk(index, clause):
            found = entry
        else:
            rest.append(clause)
    return (found, " ".join(rest)) if found and rest else None


def _phrasing_of(index: Index, forms: list[str]) -> str | None:
    """The small-talk entry one of ``forms`` is a question of, or None (the caller holds the lock)."""
    texts = _small_talk_texts(index)[0]
    for form in forms:
        # (a form that is no small-talk question is no phrasing of one: a set lookup spares the
        # index's, which costs microseconds for each form of every question asked)
        if form not in texts:
            continue
        for d in index.asked_as(form):
            if index.docs[d].kind == "smalltalk":
                return index.docs[d].entry_id
    return None


def _last_of_several(index: Index, c: str) -> str | None:
    """The entry of the last piece when the compact message ``c`` splits wholly into small-talk
    phrasings (the caller holds the lock), None when it does not. The split is found against the
    small-talk questions held in a set (``_small_talk_texts``: a dictionary lookup a piece, where
    the index's would cost microseconds for every question asked), then each piece is looked up in
    the index. ``ends[j]``: where the last piece of the first split found of ``c[:j]`` starts (the
    longest last piece); only the positions a split reaches are looked from."""
    texts, firsts = _small_talk_texts(index)
    if not texts:
        return None
    ends: dict[int, int] = {0: 0}
    for i in range(len(c)):
        # A piece from here is looked up as itself, less its trailing particles (both begin with
        # c[i]), with 你 before (``firsts`` holds what follows a phrasing's 你) or less its leading
        # interjection (begins with c[i] unless it is one).
        if i not in ends or (c[i] not in firsts and c[i] not in LEADING):
            continue
        for j in range(i + 1, min(len(c), i + PIECE_CHARS) + 1):
            if j not in ends and any(f in texts for f in _piece_forms(c[i:j])):
                ends[j] = i
    if len(c) not in ends:
        return None
    last_first: list[str] = []
    j = len(c)
    while j:
        last_first.append(c[ends[j] : j])
        j = ends[j]
    found = [_phrasing_of(index, phrasings(piece)) for piece in last_first]
    return found[0] if all(found) else None


def _piece_forms(piece: str) -> tuple[str, ...]:
    """The forms a piece of a longer message is looked up by: itself, less its trailing particles or
    its leading interjection, and with the pronoun left out put back (早上好吃了吗: 你吃了吗)."""
    return (piece, piece.rstrip(TRAILING), piece.lstrip(LEADING), "你" + piece)


# The compact questions of an index's small-talk entries and the characters a piece of them begins with, with
# the state of the index they were read from (its documents list, how many documents, how many
# removed): a build, an added or edited entry or a removal changes it. Only a filter: every piece it
# passes is looked up in the index itself.
_Texts = tuple[frozenset[str], frozenset[str]]
_TEXTS: weakref.WeakKeyDictionary[Index, tuple[tuple[int, int, int], _Texts]] = weakref.WeakKeyDictionary()


def _small_talk_texts(index: Index) -> _Texts:
    state = (id(index.docs), len(index.docs), len(index.dead))
    cached = _TEXTS.get(index)
    if cached is not None and cached[0] == state:
        return cached[1]
    texts = frozenset(t for i in index.of_kind("smalltalk") for t in index.docs[i].question_texts)
    # (what begins a phrasing, and what follows the 你 it begins with: 吃了吗 is 你吃了吗 said without it)
    firsts = {t[0] for t in texts if t} | {t[1] for t in texts if t.startswith("你") and len(t) > 1}
    found = texts, frozenset(firsts)
    _TEXTS[index] = (state, found)
    return found

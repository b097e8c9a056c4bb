"""Text normalization for matching: width, script, case, numerals, punctuation and emoji.

The same function runs over the knowledge base and over every question, so both sides meet in one
form: half-width, simplified, lower-case, Arabic numerals where a Chinese number counts something,
and every run of punctuation, symbols or emoji turned into a single space.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUM_CHARS = "零〇一二两三四五六七八九十百千万"
# A Chinese number is rewritten only where it counts something (a unit follows, or 第 precedes it), so
# that words such as 六稳, 一次性 or 统一 keep their characters; nor after 几 (几十家: some tens, not 10).
_COUNTED = re.compile(
    rf"(?P<pre>第)?(?<!几)(?P<num>[{_NUM_CHARS}]+)"
    r"(?P<unit>(?:个)?(?:工作日|小时|分钟|点|日|天|周|月|年|元|件|页|条|项|次|家|岁|人|万元|亿元|个)|%)?"
)
# Ordinals that are words of their own (第三方 a third party, 第一时间 at once): jieba knows them whole,
# and 第3方 would fall apart into 第 / 3 / 方 glued to the next character (方要), a word nobody wrote.
_WORD_ORDINAL = re.compile(r"第(?:三方|三者|三人|一时间|一线|一手)")
_STRAY_MARK = re.compile(r"(?<!\d)[.%]|\.(?!\d)")
# (with lone surrogates: text from JSON may hold them, and OpenCC cannot encode them)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Invisible characters (zero-width spaces and joiners, direction marks, the soft hyphen, BOM) are not
# there for the reader: text copied from a web page carries them inside words (预\u200b付卡).
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (offline, OpenCC t2s)."""
    return _T2S.convert(text)


def chinese_number(text: str) -> int | None:
    """Value of a Chinese numeral up to 万 (``"十二"`` -> 12, ``"二十"`` -> 20); None if it is not one."""
    if not text or any(c not in _NUM_CHARS for c in text):
        return None
    if "万" in text:
        high, _, low = text.partition("万")
        hv = chinese_number(high) if high else 1
        lv = chinese_number(low) if low else 0
        return None if hv is None or lv is None else hv * 10000 + lv
    if len(text) > 1 and all(c in _DIGITS for c in text):
        return int("".join(str(_DIGITS[c]) for c in text))  # read positionally: 二〇二〇 -> 2020
    total, digit = 0, None
    for ch in text:
        if ch in _DIGITS:
            if digit is not None and digit != 0 and _DIGITS[ch] != 0:
                return None  # two digits in a row inside a unit numeral: not a number
            digit = _DIGITS[ch]
        else:
            total += (digit if digit is not None else 1) * _UNITS[ch]
            digit = None
    return total + (digit or 0)


def _replace_counted(m: re.Match[str]) -> str:
    num, pre, unit = m.group("num"), m.group("pre") or "", m.group("unit") or ""
    counts = bool(pre or unit)
    # A single 一 before a unit is usually a word (一次性, 一年来); keep it unless 第 makes it ordinal.
    if not counts or (num == "一" and not pre) or num in ("万",):
        return m.group(0)
    if pre and _WORD_ORDINAL.match(m.string, m.start()):
        return m.group(0)
    value = chinese_number(num)
    return m.group(0) if value is None else f"{pre}{value}{unit}"


# "Which N" (哪六个, 哪三化, 哪几次): the count belongs to the asking, as in 哪些; the matter is what is
# counted (六稳是哪六个稳: 六稳, not a 6 that its clause never writes).
_WHICH_N = re.compile(r"哪(?:[2-9]|[1-9]\d|[两二三四五六七八九十几])(?:个|项|种|类|条|件|位|次|样|档|方面)?")


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """The matching form of ``text`` (see the module docstring). Never raises on any string."""
    text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text).lower()
    text = _COUNTED.sub(_replace_counted, text).translate(_LETTERS_AND_DIGITS)
    text = _WHICH_N.sub("哪些", text)
    # A dot or a percent sign belongs to a number (3.5, 50%); elsewhere ("……" is NFKC "......") it is
    # punctuation and must not become a word of the question.
    text = _STRAY_MARK.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


class _KeptCharacters(dict[int, str]):
    """``str.translate``'s table for ``normalize``: a letter, a digit, ``%`` or ``.`` stays, any other
    character becomes a space. Filled as characters are met (a lookup in C instead of a loop over
    every character in Python: normalizing is a sixth of tokenizing a large import)."""

    LIMIT = 100_000  # characters remembered; rarer ones are worked out each time

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        kept = ch if unicodedata.category(ch)[0] in "LN" or ch in "%." else " "
        if len(self) < self.LIMIT:
            self[code] = kept
        return kept


_LETTERS_AND_DIGITS = _KeptCharacters()


def compact(text: str) -> str:
    """Normalized text with all spaces removed (for substring and fuzzy comparisons)."""
    return normalize(text).replace(" ", "")


def is_han(ch: str) -> bool:
    """True for a CJK unified ideograph."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


HAN_ONLY = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+")  # ``fullmatch``: every character ``is_han``


def has_han(text: str) -> bool:
    """True when the text contains at least one Chinese character."""
    return any(is_han(c) for c in text)


def clean_display(text: str, limit: int | None = None) -> str:
    """Text safe to echo back: control characters removed, whitespace folded, optionally cut."""
    text = re.sub(r"\s+", " ", _CONTROL.sub(" ", text)).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def storable(text: str) -> str:
    """Text any database accepts: NUL characters dropped, lone surrogates replaced (they cannot be
    encoded as UTF-8; PostgreSQL rejects the first, every driver the second)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text

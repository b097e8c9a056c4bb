"""Personal data in free text: find it, mask it.

Residents type their phone, ID-card and bank-card numbers, e-mail addresses and names into questions.
This module finds them (``find``) and masks them (``mask``) so that logs, lists, statistics, exports
and staff chat posts never show them in clear. It is pure (no I/O, no state) and never raises on any
``str`` (lone surrogates, NUL bytes included).

Kinds (``Kind``):

- ``phone``: mainland mobile numbers (``13812345678``, ``138 1234 5678``, ``+86 138-1234-5678``) and
  landlines written with their area code (``0591-87654321``, ``(0591)87654321``);
- ``id_card``: resident ID-card numbers, 18 characters (last one a digit or ``X``) or the old 15 digits,
  with a plausible birth date inside (the check digit is not required: a mistyped number is still
  personal data);
- ``bank_card``: 16-19 digits, optionally grouped by spaces or hyphens, that pass the Luhn check or
  start with ``62`` (UnionPay);
- ``email``: ``name@domain.tld``;
- ``name``: a name introduced by ``我叫`` / ``我的名字是`` / ``姓名：`` (any Han characters), or by
  ``本人`` followed by a common surname (so ``本人想咨询`` is not a name).

Full-width digits and letters (``１３８…``, ``＠``) are recognised like their ASCII forms.

API::

    find(text) -> list[Finding]        # sorted, non-overlapping spans with their kind
    mask(text) -> str                   # the text with every finding masked (``138****5678``)
    contains(text) -> bool              # any personal data at all
    mask_value(kind, value) -> str      # one value masked as ``mask`` would
    KIND_LABELS                         # Kind -> Chinese label, for messages to staff

``mask`` is idempotent (``mask(mask(t)) == mask(t)``) and changes nothing but the personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["KIND_LABELS", "Finding", "Kind", "contains", "find", "mask", "mask_value"]


class Kind(StrEnum):
    """What a finding is."""

    PHONE = "phone"
    ID_CARD = "id_card"
    BANK_CARD = "bank_card"
    EMAIL = "email"
    NAME = "name"


KIND_LABELS: dict[Kind, str] = {
    Kind.PHONE: "电话号码",
    Kind.ID_CARD: "身份证号",
    Kind.BANK_CARD: "银行卡号",
    Kind.EMAIL: "电子邮箱",
    Kind.NAME: "姓名",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: ``text[start:end]`` is of kind ``kind``."""

    kind: Kind
    start: int
    end: int


# Full-width ASCII (U+FF01-U+FF5E) and the ideographic space map one-to-one onto ASCII, so offsets in
# the folded text are offsets in the original.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_SEP = r"[ \-]?"
_DATE8 = r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_DATE6 = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z])",
    re.ASCII,
)
_ID_CARD = re.compile(
    rf"(?<![0-9A-Za-z])(?:[1-9]\d{{5}} ?{_DATE8} ?\d{{3}}[0-9Xx]|[1-9]\d{{5}}{_DATE6}\d{{3}})(?![0-9A-Za-z])",
    re.ASCII,
)
_DIGIT_RUN = re.compile(r"(?<![0-9])\d(?:[ \-]?\d){15,18}(?![0-9])", re.ASCII)
_MOBILE = re.compile(
    rf"(?<![0-9+])(?:(?:\+|00)?86{_SEP})?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}(?![0-9])", re.ASCII
)
_LANDLINE = re.compile(r"(?<![0-9])(?:\(0\d{2,3}\) ?|（0\d{2,3}）|0\d{2,3}-)[2-9]\d{6,7}(?![0-9])")

# Common surnames (single and compound) for ``本人…``; ``我叫…`` takes any Han characters.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练"
    "廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿"
    "鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
_COMPOUND = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "慕容",
    "令狐",
    "尉迟",
    "公孙",
    "夏侯",
    "长孙",
    "宇文",
    "司徒",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "万俟",
    "闻人",
)
# Characters that end a name: what usually follows one in a question (想问…, 是…, 的…, 电话…).
_NAME_STOP = set(
    "想要是的在住来请问咨今年身电手男女家现从和与跟有办申需打联我你他她了啊呢吗哦吧也就还已曾因为对向给被把让叫说去到能会可该先"
)
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_NAME_ANY = re.compile(rf"(?:我叫|我的名字(?:是|叫)|名字叫|姓名(?:是|为|[:：])\s?)({_HAN}{{1,4}})")
_NAME_SURNAME = re.compile(rf"本人(?:姓名)?[是叫:：]?\s?({_HAN}{{2,4}})")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _name_end(candidate: str, start: int) -> int:
    """How many characters of ``candidate`` (from ``start``) form the name: up to three in all."""
    end = start
    while end < len(candidate) and end < 3 and candidate[end] not in _NAME_STOP:
        end += 1
    return end


def _names(text: str) -> list[Finding]:
    found = []
    for m in _NAME_ANY.finditer(text):
        n = _name_end(m.group(1), 1)
        found.append(Finding(Kind.NAME, m.start(1), m.start(1) + n))
    for m in _NAME_SURNAME.finditer(text):
        cand = m.group(1)
        surname = 2 if cand[:2] in _COMPOUND else 1 if cand[0] in _SURNAMES else 0
        if not surname or len(cand) <= surname or cand[surname] in _NAME_STOP:
            continue
        n = _name_end(cand, surname) if surname == 1 else min(len(cand), surname + 2)
        found.append(Finding(Kind.NAME, m.start(1), m.start(1) + n))
    return found


def _candidates(folded: str) -> list[Finding]:
    found = [Finding(Kind.EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(folded)]
    found += [Finding(Kind.ID_CARD, m.start(), m.end()) for m in _ID_CARD.finditer(folded)]
    for m in _DIGIT_RUN.finditer(folded):
        digits = re.sub(r"\D", "", m.group())
        if _luhn(digits) or digits.startswith("62"):
            found.append(Finding(Kind.BANK_CARD, m.start(), m.end()))
    found += [Finding(Kind.PHONE, m.start(), m.end()) for m in _MOBILE.finditer(folded)]
    found += [Finding(Kind.PHONE, m.start(), m.end()) for m in _LANDLINE.finditer(folded)]
    return found + _names(folded)


_PRIORITY = {Kind.EMAIL: 0, Kind.ID_CARD: 1, Kind.BANK_CARD: 2, Kind.PHONE: 3, Kind.NAME: 4}


def find(text: str) -> list[Finding]:
    """Every piece of personal data in ``text``, sorted by position, never overlapping.

    Where two candidates overlap, the one starting first wins, then the longer, then the more specific
    kind (e-mail, ID card, bank card, phone, name)."""
    if not text:
        return []
    cands = sorted(
        _candidates(text.translate(_FOLD)), key=lambda f: (f.start, f.start - f.end, _PRIORITY[f.kind])
    )
    chosen: list[Finding] = []
    for f in cands:
        if not chosen or f.start >= chosen[-1].end:
            chosen.append(f)
    return chosen


def contains(text: str) -> bool:
    """Whether ``text`` holds any personal data."""
    return bool(find(text))


def _star_digits(value: str, keep_head: int, keep_tail: int) -> str:
    """Replace the digits (and ``X``) of ``value`` by ``*``, keeping the first/last few and separators."""
    positions = [i for i, ch in enumerate(value.translate(_FOLD)) if ch.isdigit() or ch in "Xx"]
    hidden = set(positions[keep_head : len(positions) - keep_tail])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def mask_value(kind: Kind, value: str) -> str:
    """``value`` (one finding of ``kind``) masked: ``138****5678``, ``35**************1X``,
    ``***************1234``, ``z***@example.com``, ``张**``."""
    if kind is Kind.PHONE:
        folded = value.translate(_FOLD)
        digits = sum(ch.isdigit() for ch in folded)
        if folded.lstrip("(（").startswith("0"):  # landline: the area code and the last 2 digits
            local = re.search(r"\d+$", folded)
            return _star_digits(value, digits - len(local.group()) if local else 0, 2)
        return _star_digits(value, digits - 8, 4)  # mobile: the prefix (+86), first 3 and last 4
    if kind is Kind.ID_CARD:
        return _star_digits(value, 2, 2)
    if kind is Kind.BANK_CARD:
        return _star_digits(value, 0, 4)
    if kind is Kind.EMAIL:
        at = value.translate(_FOLD).index("@")
        return value[:1] + "***" + value[at:]
    return value[:1] + "*" * (len(value) - 1)


def _mask_once(text: str) -> str:
    out, last = [], 0
    for f in find(text):
        out += [text[last : f.start], mask_value(f.kind, text[f.start : f.end])]
        last = f.end
    out.append(text[last:])
    return "".join(out)


def mask(text: str) -> str:
    """``text`` with every piece of personal data masked (see ``mask_value``); the rest unchanged.

    Masking runs again on its own result until nothing changes, so data hidden behind an overlapping
    finding (``138 1234 5678a.b@example.org``: the phone, then the address) is masked too."""
    for _ in range(8):
        masked = _mask_once(text)
        if masked == text:
            break
        text = masked
    return text

"""From a question to scored candidates: analyse, retrieve with BM25F, re-rank, score in [0, 1].

The score is built to mean "this entry says what the question asks": mostly how much of the
question's informative words the entry covers, then how literally it says them (rapidfuzz), then
how close the question is to one of the entry's own questions. A question that asks for a number or a
date which the entry does not contain is marked down.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.index import EMPTY_F, EMPTY_I, META_QUESTIONS, Index, IndexedDoc, distinct
from knowledge.segment import Memo
from knowledge.text import HAN_ONLY, compact, is_han, normalize

CANDIDATES = 24  # re-ranked per question: as good as 32 and 40 on the dev sets, and cheaper (BENCHMARKS.md)
FLOOR_SAMPLE = 2_000  # docs of the rarest words ranked first to find a floor for the rest
# Entries titled alike (``Candidate.peers``): enough found among the docs re-ranked to stop looking
# further (bot/decide.py's ``CROWDED``), and the most key postings read to look further.
PEERS_ENOUGH = 2
PEER_SCAN = 64
FRAGMENT_CANDIDATES = 6  # candidates added whose own question holds the whole question (``_retrieve``)
FRAGMENT_CHARS = (3, 40)  # the lengths of a question looked for inside entries' own questions
# The score's parts (``_score_parts``): coverage, literal phrasing, the entry's own question or title.
COVER_WEIGHT, PHRASE_WEIGHT, OWN_WEIGHT = 0.65, 0.20, 0.15
PHRASE_SPAN = 4000  # characters of a body aligned with the question
ANSWER_TYPE_PENALTY = 0.65  # asked for a number, date or place the entry does not state
SHARED_HEADING = 0.5  # a clause's word said only where its siblings say it too (``_told_apart``)
SEPARATING = "了过"  # said inside a separable verb (备过案: 备案), dropped (``Matcher._separated``)
# A run of 7 or more digits no entry holds is a phone, ID-card or bank-card number: whose it is,
# not what is asked (我手机13800138000，预付卡备案要带什么材料).
_PERSONAL_NUMBER = re.compile(r"\d{7,}x?")
PERSONAL_NUMBER_WEIGHT = 0.05
STORY_WEIGHT = 0.5  # a word no entry holds, said outside the clause that asks (``_story_weights``)
# Asked of another document than the entry: of a year it never names, its title naming another, or the
# date or text of a document by a number that is not its own (``other_year``, ``other_document``).
OTHER_DOCUMENT_PENALTY = ANSWER_TYPE_PENALTY
ASPECT_PENALTY = 0.7  # asked for a guide's section, from an entry that only mentions it (``_rerank``)
SAME_WORDS = 1.0 - 1e-9  # ``question_sim`` of an own question of the question's very words (``_rerank``)
FORM_PENALTY = 0.8  # an entry whose own questions all ask in another form than the question (``_rerank``)
FORM_MEMO = 50_000  # entries whose own questions' forms are remembered
# 几 asks for a number (几件, 几天), but not after a numeral or 好: 十几件, 二十几天, 好几趟 tell one, roughly
# (申请信息公开收费吗？我这个月可能要申请十几件 asks nothing of a number).
_ASKING_JI = r"(?<![十百千万\d好])几"


def _asking_ji(pattern: str) -> str:
    """``pattern`` with every 几 outside a character class asking only (``_ASKING_JI``)."""
    return re.sub(r"几(?![^\[]*\])", lambda _: _ASKING_JI, pattern)


_ASKS_NUMBER = re.compile(
    _asking_ji(
        r"多少|几[个点天年月日号项件次家岁位条]|多久|多长|哪[一]?天|何时|什么时候|哪年|几月|几号|日期|截止|期限|时限|号码|电话"
    )
)

# "How many X" asks for a number of X: an entry answers it only if it states a number of X, or of a
# unit that counts the same thing (the asked unit -> the units that answer it).
_COUNT_UNITS = {
    "钱": "元",
    "元": "元",
    "块": "元",
    "天": "天|日|工作日",
    "日": "日|天|工作日",
    "工作日": "工作日|日|天",
    "小时": "小时|时",
    "分钟": "分钟|分",
    "年": "年",
    "月": "月",
    "个月": "个月|月",
    "周": "周|星期|天|日",
    "星期": "周|星期|天|日",
    "人": "人|名|位",
    "名": "名|人|位",
    "位": "位|名|人",
    "项": "项|条|件|个|类|种",
    "条": "条|项|件|个",
    "件": "件|项|条|个|份",
    "篇": "篇|件|条|个",
    "份": "份|件|个",
    "种": "种|类|个",
    "类": "类|种|个",
    "字": "字",
    "岁": "岁",
    "次": "次|遍",
    "家": "家|户",  # (not 个: 多少家企业 is not answered by 3个工作日)
    "户": "户|家",
    "页": "页",
    "点": "点|时|:",
    "多久": "天|日|工作日|小时|分钟|周|星期|月|年",  # how long: a number of any unit of time
}
_ASKS_COUNT = re.compile(
    _asking_ji(r"(?:多少|几)个?(")
    + "|".join(sorted(_COUNT_UNITS, key=len, reverse=True))
    + ")|多久|多长时间|多长"
)
# Two kinds of number a question asks for in many words (几年 is how long, 哪年 when): an entry whose
# own question asks for the same kind in other words (何时 and 什么时候, 多久 and 多长时间) is asked its
# own question (``_rerank``). A count is asked of its unit (多少家 is not 多少钱), so only in the same words.
_NUMBER_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("duration", re.compile(_asking_ji(r"多久|多长时间|多长|几天|多少天|几个月|几年|多少年|期限|时限"))),
    ("time", re.compile(_asking_ji(r"什么时候|何时|啥时|几时|哪一?天|哪年|几月|几号|日期|截止"))),
)
_STATES_COUNT = {  # a number (digits or Chinese numerals: 一名) before one of the units
    unit: re.compile(r"[0-9一二两三四五六七八九十百千万](?:个|多|余)?(?:" + units + ")")
    for unit, units in _COUNT_UNITS.items()
}
# "How much does it cost" is answered by "free" as well as by a price.
_STATES_COUNT |= {
    unit: re.compile(_STATES_COUNT[unit].pattern + "|免费|不收|无需缴费") for unit in ("钱", "元", "块")
}
# What one is paid (``_ASKS_PAID``) is answered by a sum said to be paid (a price, a subsidy, a refund),
# never by "free", nor by a fine or a registered capital.
PAID = "价"
_STATES_COUNT[PAID] = re.compile(
    r"(?:价|补贴|补助|奖励|奖补|给予|支付|发放|退还|退款|返还|赔偿|赔付|收购)[^。；]{0,12}?"
    r"[0-9一二两三四五六七八九十百千万](?:个|多|余)?(?:元|块)"
)

# What comes of not doing something (没在12小时内转发会被通报吗, 没备案会罚多少): an entry answers only if
# it states a consequence (a fine, a penalty, an order to put it right...), not the duty alone.
_ASKS_CONSEQUENCE = re.compile(
    r"(?:没|不(?!是)|未|忘|逾期|超过|私自|私下|无证).{0,20}?(?:罚|处罚|处分|后果|会怎么|会怎样|会咋|会被|怎么处理|咋处理)"
)
_STATES_CONSEQUENCE = re.compile(
    r"罚|处分|通报|追究|法律责任|后果|约谈|问责|警告|吊销|撤销|整改|责令|列入|名录|不予|驳回|补正|视为|失效|取消|没收"
)

# Which of the bureau's sections (科, 科室) deals with something: an entry answers only if it names one
# (a clause's 责任科室, an FAQ saying 外资与外经科), not one explaining the matter alone.
_ASKS_OFFICE = re.compile(r"哪(?:一)?个?科(?![技学普研])")  # (not 哪个科技公司)

# A year a question names (2021年的方案, 2020年度), and any year an entry's title or number names
# (鼓商务〔2020〕123号): digits only once normalized.
_ASKS_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?=年)")
_NAMES_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_YEAR = re.compile(r"(?:19|20)\d\d")  # a word that is a year
# A document named by its number (国办发17号文, 鼓政办〔2020〕65号, 123号文; digits once normalized;
# not a day, 5月10号, nor a window, 第3号窗口), the number a document's key field gives it
# (鼓商务〔2020〕123号, 国务院令第711号; compact: 鼓商务2020123号), and what a question asks of a
# document itself: its date, text, validity, number.
_NAMES_DOC_NUMBER = re.compile(
    r"(?:[发办函字令]第?|(?<!\d)(?:19|20)\d\d\D?第?)(\d{1,4})号|(?<!\d)(\d{1,4})号(?=文|令|通知)"
)
_OWN_DOC_NUMBER = re.compile(r"(?:(?<!\d)(?:19|20)\d\d年?第?|第)(\d{1,4})号")
_ASKS_OF_DOCUMENT = re.compile(
    _asking_ji(
        r"什么时候|啥时|哪天|哪一天|哪年|哪一年|何时|日期|几号|全文|原文|内容|要点|讲了|讲的|说了|废止|失效|有效|作废|文号|编号"
    )
)

# A clause asked as A-not-A (公不公开, 收费不收费, 管不管) asks whether, of the verb once: jieba cut
# 公 | 不公开, whose synonym 不予公开 says the opposite of what is asked, and no form read "whether".
# Read as the verb and 吗 (``Matcher.analyse``). The modals' own A-not-A (能不能, 要不要, 是不是) are
# stop words already, read as whether, and stand before the verb (能不能网上办), not at the clause's end.
_A_NOT_A = re.compile(
    r"([\u4e00-\u9fff]{2})不\1(?=$|\s|[吗呢啊呀吧])"
    r"|([^\W\d能要是会可需该应想有])不(\2(?:(?![吗呢啊呀吧])[\u4e00-\u9fff])?)(?=$|\s|[吗呢啊呀吧])"
)

# The spellings of a place asked at a question's end (longest first: 在哪里 ends with no 在哪), and the
# particles closing a question that ask nothing (``Matcher._asked_as``).
_WHERE_SPELLINGS = (("在哪里", "在哪儿", "在哪"), ("去哪里", "去哪儿", "去哪"))
_CLOSING = "呢啊呀哈"

# A question asking where to go or where something is, which an entry answers only if it names a place.
_WHERE_MISTYPED = re.compile(r"(在|去|到)那(?=里|儿)")  # (哪 and 那 are both na; ``Matcher.analyse``)
_ASKS_PLACE = re.compile(
    r"(在|去|到)哪(里|儿)?(?=\s|$)|去哪(里|儿)?|(?<![换改变迁搬更])地址|什么位置|怎么走|在什么地方|(在|到)?哪条(路|街)"
)

# 多少钱 after a verb of being paid (能卖多少钱, 回收给多少钱, 补贴多少钱, 赔多少钱) asks what one gets, not
# a fee one pays (``_ASKS_PAID``): a guide's 收费标准 ("no fee") does not answer it.
_PAID = r"卖|拿|赔|值|退|补|补贴|回收给|收购给|能给|会给|给我"
_NOT_PAID = "".join(f"(?<!{v})" for v in _PAID.split("|"))
_ASKS_PAID = re.compile(rf"(?:{_PAID})(?:能|可以|会)?多少钱|回收价|收购价|(?:卖|值)几个钱")

# Guide aspects: words in a question -> the guide section that answers it. A question names its matter
# first and asks last (资格许可是依据啥文件来的: 依据, not 资格): the match that ends last wins
# (``asked_aspect``).
ASPECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "申请材料",
        re.compile(
            r"材料|资料|(?:带|准备|提交|交|拿).{0,2}(?:什么|啥|哪些)|(?:需要|要|得)(?:些)?(?:什么|啥|哪些)东西|证件|要件|复印件"
        ),
    ),
    ("办理条件", re.compile(r"条件|资格|门槛|谁可以|谁能办|什么人(?:能|可以)|(?:什么|啥)要求|能不能办|符合")),
    (
        "收费标准",
        re.compile(
            r"收费|费用|"
            + _NOT_PAID
            + r"多少钱|要钱|花钱|免费|交钱|收钱|交费|缴费|付费|给钱|掏钱|贵不贵|贵吗|多贵|花多少(?!时间|天|个?工作日|小时)|费.{0,4}(?:多少|标准|怎么算|咋算|怎么收)"
        ),
    ),
    (
        "办理时限",
        re.compile(
            _asking_ji(
                r"多久|多长时间|多少时间|几天|时限|期限|多少天|多少个工作日|办结|(?:什么|啥)时候(?:能)?(?:报|交|办|申报|提交|上报|拿到)(?:材料|资料)?"
            )
        ),
    ),
    (
        "办理地点与时间",
        re.compile(
            r"地点|在哪|哪里|哪儿|去哪|(?:上|到)哪(?:儿|里)?(?:去)?(?:办|交|报|申请|备案|领|递)|(?<![换改变迁搬更])地址|几点|上班时间|办公时间|窗口|找谁|向谁|(?:哪个|哪一?级|什么)(?:部门|单位|机关)"
            # (a place named, asked whether it deals with the matter: 鼓楼区能办吗, 在区商务局可以办理不)
            r"|(?:区|市|省|局|这里|这儿|这边|本地|当地|你们)(?:里|这里|这边)?(?:能|可以)(?:办|办理|受理|申请)(?:吗|不|嘛|么)"
        ),
    ),
    ("咨询电话", re.compile(r"电话(?!说|.{0,3}(?:打不通|不通|没人接|关机))|热线|联系方式|咨询")),
    (
        "在线办理",
        re.compile(
            r"网上|在线|线上|网办|网站|网址|系统|平台|小程序|app|手机上|手机(?:能|可以)|微信上|微信里"
        ),
    ),
    (
        "办理流程",
        re.compile(
            r"流程|步骤|程序|(?:怎么|如何|怎样|咋)(?:办理|申请)|怎么办|咋办|怎么弄|咋弄|怎么搞|咋搞|(?:怎么|咋)整(?![改治顿理合])|怎么操作|如何操作|手续"
        ),
    ),
    ("设定依据", re.compile(r"依据|根据什么|哪个文件|什么文件|啥文件|法规")),
)
ASPECT_RX = dict(ASPECTS)  # section name -> its pattern (does an entry's own question ask for it?)
# When the rules took effect (成品油流通管理办法哪天开始施行): a guide's basis section dates them, so a
# question asking it asks for 设定依据. An entry's own question asking it asks that date, not the basis
# (优化营商环境条例什么时候施行 answers no 是根据什么制定的: ``questions_aspects`` reads ``ASPECTS``),
# though it answers a question asking that date as well as the basis section does (``_rerank``).
_ASKS_EFFECT = re.compile(r"(?:哪天|哪一天|什么时候|啥时候?|何时|哪年)(?:开始|起)?(?:施行|实施|生效)")
QUESTION_ASPECTS = tuple(
    (name, re.compile(f"{rx.pattern}|{_ASKS_EFFECT.pattern}") if name == "设定依据" else rx)
    for name, rx in ASPECTS
)

# What kind of answer a question asks for, by its interrogative words: why, when, where or who, how
# much or many, how, what or which, yes or no. Two questions of the same matter asked in different
# forms (为什么要买 / 哪里买 / 什么时候买) are different questions, whichever words they share.
FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("why", re.compile(r"为什么|为何|为啥|怎么会")),
    (
        "when",
        re.compile(_asking_ji(r"什么时候|何时|啥时|哪天|哪年|几月|几号|几时|多久|多长时间|几天|多少天")),
    ),
    ("where", re.compile(r"哪里|哪儿|在哪|何处|去哪|找谁|谁")),
    ("much", re.compile(_asking_ji(r"多少|几[个项件次岁位家条种类章节款期批轮张份名]|多大|多高|多贵"))),
    ("how", re.compile(r"如何|怎么|怎样|咋")),
    # (哪6个方面: numerals are digits once normalized; 什么时候 asks when, not what, as does 啥时, said
    # for 啥时候)
    ("what", re.compile(r"什么(?!时候)|啥(?!时)|哪个|哪些|哪种|哪类|哪[一二两三四五六七八九十几0-9]")),
    # (colloquially, a clause ending in 不 or 没 asks whether too: 要钱不, 能网上办不, 备案了没; as does a
    # verb said either way within a clause, 办没办过, or in an entry's own questions, which ``_A_NOT_A``
    # does not rewrite as the question's clause-final 收不收 -> 收吗)
    (
        "whether",
        re.compile(
            r"吗|是否|能否|可否|可不可以|能不能|是不是|有没有|会不会|要不要|需不需要"
            r"|(?<=[\u4e00-\u9fff])(?:不|没|没有)(?=\s|$)|([\u4e00-\u9fff])[不没]\1"
        ),
    ),
)


def _clauses(pieces: list[str], stopwords: frozenset[str] | set[str]) -> list[int]:
    """The clause (0, 1, ...) of each word of ``Lexicon.words(pieces)``: punctuation and spaces, which
    ``normalize`` makes spaces, separate clauses."""
    out: list[int] = []
    clause, gap = 0, False
    for t in pieces:
        if not t.strip():
            gap = True
        elif t not in stopwords:
            if gap and out:
                clause += 1
            gap = False
            out.append(clause)
    return out


def _asking_clause(norm: str, word_clauses: list[int], asking: Asking) -> int | None:
    """The number ``_clauses`` gives a (normalized) question's last clause that asks (names a form,
    ``Asking.last``), when a clause after it asks nothing (防疫时候登记的个人信息咋处理的？我有点担心泄露);
    None when the last clause asks, none does, or the two numberings cannot be matched."""
    clauses = norm.split()
    last = asking.last
    if last is None or last == len(clauses) - 1 or not word_clauses:
        return None
    # (clauses of stop words alone have no words: number the clauses that have some)
    with_words = [i for i, c in enumerate(clauses) if any(ch.isalnum() for ch in c)]
    if len(with_words) != word_clauses[-1] + 1 or last not in with_words:
        return None
    return with_words.index(last)


def _last_match(norm: str, patterns: tuple[tuple[str, re.Pattern[str]], ...]) -> tuple[str | None, str]:
    """The name of the pattern whose match ends last in ``norm`` (of two ending together, the one
    starting first), and the words it matched (None and "": none matches)."""
    best, said, start, end = None, "", 0, -1
    for name, rx in patterns:
        for m in rx.finditer(norm):
            # (of two ending together, the longer: the phrase holding the other asks, 什么时候报材料)
            if m.end() > end or (m.end() == end and m.start() < start):
                best, said, start, end = name, m.group(), m.start(), m.end()
    return best, said


def _last_named(norm: str, patterns: tuple[tuple[str, re.Pattern[str]], ...]) -> str | None:
    """The name of the pattern whose match ends last in ``norm`` (None: none matches)."""
    return _last_match(norm, patterns)[0]


def asked_form(norm: str) -> str | None:
    """The form of a (normalized) question (``FORMS``): of the forms its words ask in, the one
    named last (怎么申请，要多久: when); None when it names none (a bare matter: 营业执照)."""
    return _last_named(norm, FORMS)


def asking_clauses(norm: str) -> int:
    """How many clauses of a (normalized) question ask, naming a form (``asked_form``): 两稳一促是哪
    两稳，啥时候出的 asks in two; 我开了家店，想发会员卡，要备案吗 in one."""
    return len(_asking(norm).clauses)


def asking_part(norm: str) -> str:
    """The question up to the end of its last clause that names a form (``FORMS``): clauses after
    it ask nothing, they tell the story (怎么查它有没有备过案，怕交了钱老板跑路: not the fee). The
    whole question when no clause names one (a bare matter) or the last does."""
    return _asking(norm).part


def asked_aspects(norm: str) -> tuple[str, ...]:
    """The guide sections the asking clauses of a (normalized) question ask for (those naming a form,
    ``asked_form``), each clause's last named (``asked_aspect``), in the order asked, once each:
    要带哪些材料 要多久 -> 申请材料, 办理时限. A clause asking nothing names its matter (向鼓楼区商务局
    咨询政策: the guide's title, not its phone)."""
    return _asking(norm).aspects


class Asking(NamedTuple):
    """What a question's clauses ask, read in one pass (``_asking``)."""

    part: str  # the question up to its last asking clause (``asking_part``)
    form: str | None  # the form that clause asks in (``asked_form``)
    aspects: tuple[str, ...]  # the sections its asking clauses ask for (``asked_aspects``)
    clauses: tuple[str, ...]  # its clauses that ask (naming a form), in order (``asking_clauses``)
    last: int | None = None  # the place of the last of them among all its clauses (``norm.split()``)


def _asking(norm: str) -> Asking:
    """One pass over a (normalized) question's clauses: its asking part, the form it asks in, the
    sections its asking clauses ask for, and those clauses."""
    clauses = norm.split()
    forms = [asked_form(c) for c in clauses]
    asking = [i for i, f in enumerate(forms) if f]
    if not asking:
        return Asking(norm, None, (), ())
    last = asking[-1]
    part = norm if last == len(clauses) - 1 else " ".join(clauses[: last + 1])
    aspects = tuple(dict.fromkeys(a for i in asking if (a := asked_aspect(clauses[i]))))
    return Asking(part, forms[last], aspects, tuple(clauses[i] for i in asking), last)


def asked_years(norm: str, asking: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The years a (normalized) question's clauses that ask (``Asking.clauses``, read again when not
    given) name, or the whole question when none asks: 2021年的方案出了吗 asks of 2021; 抽屉里还有张
    2018年办的登记表，现在还有用吗 tells when it was made, and asks of now."""
    if "年" not in norm:
        return ()
    if asking is None:
        asking = _asking(norm).clauses
    return tuple(dict.fromkeys(y for c in (asking or (norm,)) for y in _ASKS_YEAR.findall(c)))


def asked_aspect(norm: str) -> str | None:
    """The guide section a (normalized) question asks for: of the aspects it names, the one named
    last (哪个网站/网上 -> 在线办理, 多久 -> 办理时限, 要钱吗 -> 收费标准, 带什么 -> 申请材料); None
    when it names none."""
    return _last_named(norm, QUESTION_ASPECTS)


# What says how a question asks, not what about: its form, the guide section or number it asks for,
# where, or who deals with it (找谁处理, 怎么解决) (``asking_words``).
_ASKS_HANDLING = re.compile(
    r"(?:怎么|怎样|如何|咋|找谁|谁|哪里|去哪)(?:来|能|可以|给)?(?:处理|解决|受理|负责|管)"
)
ASKING = (
    *(rx for _, rx in FORMS),
    *(rx for _, rx in QUESTION_ASPECTS),
    _ASKS_NUMBER,
    _ASKS_COUNT,
    _ASKS_PLACE,
    _ASKS_HANDLING,
)


def _asking_mask(norm: str) -> bytearray:
    """1 for each character of a (normalized) question inside a phrase that asks (``ASKING``)."""
    asking = bytearray(len(norm))
    for rx in ASKING:
        for m in rx.finditer(norm):
            asking[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    return asking


def asking_words(norm: str, spans: list[tuple[int, int]], asking: bytearray | None = None) -> int:
    """Which of a question's words only say how it asks (bit i: word i), wholly inside the phrases
    that ask (``ASKING``: 找谁, 多少钱, 什么条件, 怎么申请): the rest name its matter. ``spans``: where
    each word starts and ends in the normalized question ``norm``; ``asking``: its ``_asking_mask``
    (found again when not given)."""
    if asking is None:
        asking = _asking_mask(norm)
    return sum(1 << i for i, (a, b) in enumerate(spans) if all(asking[a:b]))


def matter_weight(weights: list[float], asking: int) -> float:
    """The heaviest weight of a question's words that name its matter (not ``asking``: bit i, word i)."""
    return max((v for i, v in enumerate(weights) if not asking >> i & 1), default=0.0)


# A question word as ``_coverage`` checks it: the word, its weight, which candidates its postings
# show and hold in their key field (None: not looked up), its character pairs, half a pair's weight.
_WordPlan = tuple[str, float, list[bool] | None, list[bool] | None, list[str], float]


@dataclass(slots=True)
class Query:
    """A question analysed once: normalized, segmented, corrected, weighted."""

    raw: str
    norm: str
    core: str  # the informative words run together (stop words removed)
    words: list[str]  # canonical content words
    weights: list[float]
    tokens: list[str]  # canonical search tokens for BM25
    asks_number: bool
    count_of: str  # the unit it asks a number of ("多少字": 字; "" when none)
    asks_place: str  # the words that ask where ("" when it does not)
    aspect: str | None
    corrections: dict[str, str] = field(default_factory=dict)
    form: str | None = None  # the form it asks in (``asked_form``)
    number_asked: str = ""  # the words that ask for a number or date (多久, 几月): "" when none do
    aspect_said: str = ""  # the words that ask for ``aspect`` (要什么条件: 条件)
    # the sections its asking clauses ask for, in order (要带哪些材料，要多久: 申请材料, 办理时限)
    aspects: tuple[str, ...] = ()
    # the forms its asking clauses ask in, in order (怎么领，能不能一起用: how, whether)
    forms: tuple[str, ...] = ()
    asks_in: int = 0  # how many of its clauses ask (``asking_clauses``: 两稳一促是哪两稳，啥时候出的, 2)
    asking: int = 0  # which words only say how it asks (bit i: ``words[i]``; ``asking_words``)
    years: tuple[str, ...] = ()  # the years its asking clauses name (``asked_years``: 2021年的方案出了吗)
    # the numbers of the documents it asks the date, text or validity of (``asked_documents``: 国办发17号文的全文)
    doc_numbers: tuple[str, ...] = ()
    asks_consequence: bool = False  # what comes of not doing something (``_ASKS_CONSEQUENCE``)
    asks_office: bool = False  # which section of the bureau deals with it (``_ASKS_OFFICE``)

    @property
    def matter(self) -> float:
        """The heaviest weight of its words that name what it is about (``matter_weight``):
        符合条件吗, 要多久, 电话多少 name no matter (0.0 when no word is left)."""
        return matter_weight(self.weights, self.asking)


@dataclass(slots=True)
class Coverage:
    """What ``Matcher._coverage`` finds for each candidate (see there)."""

    cover: list[float]
    key_cover: list[float]
    missing: list[float]
    spec_cover: list[float]
    spec_missing: list[float]
    key_words: list[int]  # which of the question's words each holds in its key field (bit i: word i)
    said_words: list[int]  # which of the question's words each says in full, anywhere (bit i: word i)
    word_spec: list[float]  # each question word's specificity here (``_specificity``), for all of them


@dataclass(slots=True)
class Candidate:
    """One scored entry, with what the index knew of it when it was scored (a rebuild may replace
    the index's documents at any moment: read ``info``, never ``index.docs``)."""

    info: IndexedDoc
    entry_id: str
    score: float
    bm25: float
    coverage: float
    key_coverage: float
    phrase: float
    question_sim: float
    missing: float = 0.0  # the heaviest question word it lacks, relative to the heaviest of all
    factor: float = 1.0  # below 1: it does not state the number, place or section asked for
    spec_coverage: float = 0.0  # coverage with each word weighed by its idf here too
    spec_missing: float = 0.0  # missing, likewise
    closest: tuple[str, ...] = ()  # the words of its own question closest to the question
    # Each question word's specificity in this knowledge base (``Matcher._specificity``): one list
    # shared by the candidates of a search.
    word_spec: list[float] = field(default_factory=list)
    key_words: int = 0  # which question words its key field holds (bit i: ``Query.words[i]``)
    said_words: int = 0  # which question words it says in full, anywhere (bit i)
    asked: bool = False  # one of its own questions is the question, word for word (``_asked_first``)
    # Other entries of its kind titled with every question word its title holds (``Matcher._peers``;
    # 0 for an entry with questions of its own or a clause, whose key field is not a title).
    peers: int = 0
    # ``FORM_PENALTY`` when its own questions all ask in another form than the question (another
    # question: 什么时候到期 to 有什么支持政策), else 1: its score's form factor (``_rerank``).
    form: float = 1.0
    # ``unsaid`` of ``closest``, worked out when first read (``Matcher._unsaid``), and its value. (It
    # reads the question and the lexicon's weights, never the index: safe once the search is over.)
    said: Callable[[tuple[str, ...]], float] | None = field(default=None, repr=False, compare=False)
    _unsaid: float | None = field(default=None, repr=False, compare=False)

    @property
    def unsaid(self) -> float:
        """The heaviest word of its closest own question not asked (relative to that question's
        heaviest). Worked out when first read: the decision reads only the best candidate's."""
        if self._unsaid is None:
            self._unsaid = self.said(self.closest) if self.said is not None else 0.0
        return self._unsaid

    @unsaid.setter
    def unsaid(self, value: float) -> None:
        self._unsaid = value


class Matcher:
    """Question -> ranked candidates over an ``Index``."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.lex = index.lex
        self._weight = Memo(self.lex.informativeness)  # of the words of entries' own questions
        # Words that stand for others (synonyms): a doc may hold them without saying them.
        self._grouped = frozenset(v for k, v in self.lex.synonyms.items() if k != v)
        self._forms = Memo(question_forms, limit=FORM_MEMO)  # of entries' own questions
        self._aspects = Memo(questions_aspects, limit=FORM_MEMO)  # ... and the guide sections they ask
        self._number_kinds = Memo(questions_number_kinds, limit=FORM_MEMO)  # ... and numbers they ask
        self._scores = EMPTY_F  # BM25F scores of every doc (``_zeroed_scores``)

    # -- analysis -----------------------------------------------------------------------------------
    def analyse(self, question: str) -> Query:
        """Normalize, correct homophone typos against the knowledge vocabulary, segment and weigh."""
        norm = normalize(question)
        if asked_form(norm) is None:  # 在那里 in a question asking nothing else is 在哪里 mistyped
            norm = _WHERE_MISTYPED.sub(r"\1哪", norm)
        norm = _A_NOT_A.sub(lambda m: (m.group(1) or m.group(3)) + "吗", norm)
        pieces = self.lex.cut(norm)
        corrections: dict[str, str] = {}
        if len(norm) <= 300:
            fixed, corrections = self._correct(pieces)
            if corrections:
                norm, pieces = fixed, self.lex.cut(fixed)
        mask = _asking_mask(norm)
        pieces = self._split_guesses(pieces, mask)
        words = [self.lex.canonical(w) for w in self.lex.words(pieces)]
        asking = _asking(norm)
        word_clauses = _clauses(pieces, self.lex.stopwords)
        weights = self._story_weights(words, word_clauses, _asking_clause(norm, word_clauses, asking))
        # A one-character word repeating a character of another word of the question echoes it
        # (六稳是哪六个稳, 外资年报 啥时候报): it weighs nothing and is not searched, else the entries
        # saying it alone (稳 in the plan's preamble) outrank the one on the word it echoes.
        echoes = {w for w in words if len(w) == 1 and is_han(w) and any(len(o) > 1 and w in o for o in words)}
        if echoes:
            weights = [0.0 if w in echoes else v for w, v in zip(words, weights, strict=True)]
        unsaid_fee = self._paid_not_fee(norm)
        if unsaid_fee:  # (weighs nothing and is not searched, as an echo)
            weights = [0.0 if w == unsaid_fee else v for w, v in zip(words, weights, strict=True)]
        tokens = [
            t
            for t in map(self.lex.canonical, self.lex.search_tokens(pieces))
            if t not in echoes and t != unsaid_fee
        ]
        asks = asking.part
        aspect, aspect_said = _last_match(asks, QUESTION_ASPECTS)
        aspect_said = aspect_said.replace(" ", "")  # (compared with compact key texts)
        count = (m.group(1) or "多久") if (m := _ASKS_COUNT.search(asks)) else ""
        if count == "钱" and _ASKS_PAID.search(asks):
            count = PAID
        number_asked = m or _ASKS_NUMBER.search(asks)
        return Query(
            raw=question,
            norm=norm,
            core="".join(words),
            words=words,
            weights=weights,
            tokens=tokens,
            asks_number=bool(number_asked),
            count_of=count,
            asks_place=place.group() if (place := _ASKS_PLACE.search(asks)) else "",
            aspect=aspect,
            aspect_said=aspect_said,
            aspects=asking.aspects,
            forms=tuple(dict.fromkeys(f for c in asking.clauses if (f := asked_form(c)))),
            asks_in=len(asking.clauses),
            corrections=corrections,
            form=asking.form,
            number_asked=number_asked.group() if number_asked else "",
            asking=asking_words(norm, self.lex.word_spans(pieces), mask),
            years=asked_years(norm, asking.clauses),
            doc_numbers=asked_documents(asks),
            asks_consequence=bool(_ASKS_CONSEQUENCE.search(asks)),
            asks_office=bool(_ASKS_OFFICE.search(asks)),
        )

    def _paid_not_fee(self, norm: str) -> str:
        """The word 多少钱 stands for (收费, its synonym) when the question says it only of what one is
        paid (``_ASKS_PAID``: 报废车回收给多少钱): it names no fee, and an entry stating one (the guide's
        "no fee") does not answer; "" when the question names a fee, or asks no such thing."""
        if not _ASKS_PAID.search(norm) or ASPECT_RX["收费标准"].search(_ASKS_PAID.sub(" ", norm)):
            return ""
        return self.lex.canonical("多少钱")

    def _split_guesses(self, pieces: list[str], asking: bytearray) -> list[str]:
        """A word jieba guessed (in no dictionary, unknown here) that is a word of the knowledge base
        and one character more, cut in two: 洗染店 -> 洗染 | 店 (the knowledge says 洗染业, 洗染). And a
        character it glued to the stop word after it (查到, 文是 in 123号文是哪年发的, 文里): two words. As
        a word unknown to the dictionary the pair weighed as much as a rare term (0.85) that every entry
        lacks, and sank the entries that hold the question. Likewise a pair of which one character
        begins or ends a phrase that asks (``_asking_mask``: 要交 in 要交哪些材料, whose 交哪些 asks the
        materials): it straddles the asking and a word naming no matter (``_straddling``)."""
        out: list[str] = []
        at = 0
        for p in pieces:
            head = p[:-1]
            # (of a pair straddling an asking phrase's edge, the character outside the phrase)
            outside = (p[1] if asking[at] else p[0]) if len(p) == 2 and asking[at] != asking[at + 1] else ""
            at += len(p)
            if self._glued(p) or (outside and self._straddling(p, outside)):
                out += [p[0], p[1]]
            elif (
                len(p) >= 3
                and p not in self.lex.word_freq
                and HAN_ONLY.fullmatch(p)
                and not self.index.knows(self.lex.canonical(p))
                and self.index.knows(self.lex.canonical(head))
            ):
                out += [head, p[-1]]
            else:
                out.append(p)
        return out

    def _straddling(self, pair: str, outside: str) -> bool:
        """Whether a pair of characters straddling the edge of a phrase that asks, ``outside`` the one
        outside it, is a guess of jieba's HMM to cut: unknown to the dictionary, and joining a stop or
        light word to the asking (要交), so that neither half names a matter; cut even when entries
        hold the pair (their cut glued it the same way). A pair joining the asking to a word of the
        matter stays whole (咋领 in 消费券咋领的: cut, the entries whose own questions say it literally
        lost their lead)."""
        if self.lex.tokenizer.FREQ.get(pair) or HAN_ONLY.fullmatch(pair) is None:
            return False
        return outside in self.lex.stopwords or outside in self.lex.light_words

    def _glued(self, piece: str) -> bool:
        """Whether a piece of the cut is a character jieba's HMM glued to the stop word after it: two
        characters unknown together to the dictionary (stop and light words included) and to the
        knowledge base, the second a stop word (是, 到, 里, 了), the first not; or the second a light
        word (要, 办, 管, 去: 年底前要做到什么, 归哪个科管) and the first neither a stop nor a light word;
        or the first a demonstrative (这, 那) and the second no stop word (这钱 in 这钱还能要回来吗). Other
        glued pairs stay whole: content characters (栋楼 in 商务局在哪栋楼办公) or a light word and another (要用 in
        要用黑色笔还是蓝色笔) are often the only word saying a question is not about an entry (the
        seventeenth session's measures, BENCHMARKS), and a stop word before a character is mostly a
        modal or a preposition before the matter asked (会涨 in 股票明天会涨吗, 以旧 in 以旧换新): cut,
        the matter would weigh as a light single character, and a referral sharing one common word
        (明天) would answer."""
        stop, light = self.lex.stopwords, self.lex.light_words
        return (
            len(piece) == 2
            and (
                (piece[1] in stop and piece[0] not in stop)
                or (piece[1] in light and piece[0] not in stop and piece[0] not in light)
                or (piece[0] in "这那" and piece[1] not in stop)
            )
            and not self.lex.tokenizer.FREQ.get(piece)
            and HAN_ONLY.fullmatch(piece) is not None
            and not self.index.knows(self.lex.canonical(piece))
        )

    def _addresses(self, d: IndexedDoc, aspect: str, key: str) -> bool:
        """Whether an entry addresses a guide section asked: it has that section, or its own questions
        ask for it (an entry without own questions: its key field ``key`` asks for it)."""
        if aspect in d.aspects:
            return True
        if d.question_texts:
            return aspect in self._aspects[d.question_texts]
        return ASPECT_RX[aspect].search(key) is not None

    def _key_asked(self, q: Query, d: IndexedDoc, key_words: int) -> str:
        """An entry's key field as it names what a question asks of it: a policy's, without the
        questions every policy answers of itself (``META_QUESTIONS``: 依据哪些文件) when the question
        names a matter its key field lacks (a word of weight ``MATTER_WEIGHT`` or more, said in none of
        those questions, without its bit in ``key_words``): 预付卡备案依据的是哪个文件 asks the filing
        guide's 设定依据, not the basis of the judicial interpretation on prepaid consumption, whose
        title names no 备案; 外商投资法依据哪些文件 names the law's own matter only."""
        if d.kind != "policy":
            return d.key_text
        other = any(
            v >= MATTER_WEIGHT and w not in _META_TEXT and not key_words >> i & 1
            for i, (w, v) in enumerate(zip(q.words, q.weights, strict=True))
        )
        return _own_key(d) if other else d.key_text

    def _story_weights(self, words: list[str], clauses: list[int], asking: int | None = None) -> list[float]:
        """Each word's informativeness, by ``STORY_WEIGHT`` for a word that no entry holds said outside
        the clause that asks (the last, or ``asking``: the last naming a form, when clauses after it
        ask nothing, ``_asking_clause``): the story around the matter asked (楼下理发店老板跑路了，卡里
        还有两千块，怎么办; 个人信息咋处理的？我有点担心泄露), not the matter itself. In the asking
        clause such a word is what is asked, and an entry lacking it does not answer (驾照到期了怎么
        换证). A long number no entry holds (a phone or ID-card number) weighs next to nothing
        anywhere (``PERSONAL_NUMBER_WEIGHT``)."""
        asked = (clauses[-1] if clauses else 0) if asking is None else asking

        def weight(w: str, clause: int) -> float:
            if self.index.knows(w):
                return self.lex.informativeness(w)
            said = PERSONAL_NUMBER_WEIGHT if _PERSONAL_NUMBER.fullmatch(w) else self.lex.informativeness(w)
            return said * (STORY_WEIGHT if clause != asked else 1.0)

        return [weight(w, c) for w, c in zip(words, clauses, strict=True)]

    def _correct(self, pieces: list[str]) -> tuple[str, dict[str, str]]:
        """Replace runs of the cut that jieba broke into single characters (or an unknown word) by a
        same-pinyin word of the knowledge base: 备按 -> 备案, 制渡 -> 制度. Only a dictionary word
        far likelier than the run will do (``Lexicon.likelier_whole``): 里有 is two common words,
        not a typo of 理由. Returns the corrected text and the replacements (none: the text is left
        as it was)."""
        if not self.index.vocab_pinyin:
            return "", {}
        out: list[str] = []
        fixes: dict[str, str] = {}
        known = self.lex.word_freq
        i = 0
        while i < len(pieces):
            step, piece = 1, pieces[i]
            # A known word is not a broken run, and no run starts with a space, digit or letter; but
            # a known word and one character after it may be a longer word mistyped at its end
            # (预付|咔 -> 预付卡).
            if (len(piece) > 1 and piece in known) or not is_han(piece[0]):
                nxt = pieces[i + 1] if i + 1 < len(pieces) else ""
                fix = self._mistyped_end(piece, nxt) if len(piece) == 2 and len(nxt) == 1 else None
                if fix:
                    out.append(fix)
                    fixes[piece + nxt] = fix
                    i += 2
                    continue
                out.append(piece)
                i += 1
                continue
            if apart := self._separated(pieces, i):
                word, said, taken = apart
                out.append(word)
                fixes[said] = word
                i += taken
                continue
            for span in (3, 2, 1):
                group = pieces[i : i + span]
                text = "".join(group)
                if len(group) < span or not 2 <= len(text) <= 4:
                    continue
                # Broken: single characters (as many as pieces), or one word jieba does not know.
                broken = len(text) == span if span > 1 else text not in known
                if not broken or not HAN_ONLY.fullmatch(text) or text in known:
                    continue
                if self.index.knows(self.lex.canonical(text)):
                    continue
                options = self.index.vocab_pinyin.get(self.lex.pinyin_key(text) or "", [])
                options = [w for w in options if self._typed_for(w, text)]
                if options:
                    piece = fixes[text] = min(options, key=self._commonness)  # the most common such word
                    step = span
                    break
            out.append(piece)
            i += step
        return "".join(out), fixes

    def _typed_for(self, word: str, text: str) -> bool:
        """Whether ``text`` is a typo of the knowledge base's ``word`` (``Lexicon.likelier_whole``); for
        a synonym's other spelling (复议, 报废车), by jieba's own frequencies."""
        return self.lex.likelier_whole(word, text, own=self.lex.canonical(word) != word)

    def _commonness(self, word: str) -> float:
        """How rare a word of the knowledge base is (its group's idf): of the words a typo may be
        for, the most common is taken."""
        return self.index.idf(self.lex.canonical(word))

    def _separated(self, pieces: list[str], i: int) -> tuple[str, str, int] | None:
        """A word of the knowledge base said with 了 or 过 inside it (备过案, 备了案: a separable verb),
        as one piece of the cut or three single characters from ``pieces[i]``: the word, the text it
        replaces and the pieces it takes; None when there is none."""
        known = self.lex.word_freq
        for span in (1, 3):
            group = pieces[i : i + span]
            text = "".join(group)
            if len(group) == span and len(text) == 3 and text[1] in SEPARATING and HAN_ONLY.fullmatch(text):
                word = text[0] + text[2]
                if text not in known and word in known and self.index.knows(self.lex.canonical(word)):
                    return word, text, span
        return None

    def _mistyped_end(self, word: str, ch: str) -> str | None:
        """The knowledge base's word that a known two-character ``word`` and the character ``ch`` typed
        after it spell with the last character mistyped (预付 + 咔 -> 预付卡: same pinyin, beginning with
        ``word``, far likelier by jieba's dictionary; 消费 + 卷 -> 消费券: a character it is typed for,
        ``Lexicon.confusables``); None when there is none."""
        text = word + ch
        if not HAN_ONLY.fullmatch(text) or text in self.lex.word_freq:
            return None
        if self.index.knows(self.lex.canonical(text)):
            return None
        options = self.index.vocab_pinyin.get(self.lex.pinyin_key(text) or "", [])
        options = [w for w in options if w.startswith(word)]
        options += [
            w for c in self.lex.confusables.get(ch, "") if self.index.knows(self.lex.canonical(w := word + c))
        ]
        options = [w for w in options if self._typed_for(w, text)]
        return min(options, key=self._commonness) if options else None

    # -- retrieval ----------------------------------------------------------------------------------
    def search(self, question: str | Query, limit: int = 5) -> tuple[Query, list[Candidate]]:
        """Score the best entries for a question, best first."""
        with self.index.reading():  # one consistent index: a background build may swap it
            q = question if isinstance(question, Query) else self.analyse(question)
            return q, self._search(q, limit)

    def _search(self, q: Query, limit: int) -> list[Candidate]:
        asked = self._asked_as(compact(q.raw))
        top, bm25 = self._retrieve(q, asked)
        if not len(top):
            return []
        if not asked:
            return self._rerank(q, top, bm25, limit)
        # (the entries asked are kept whatever their rank: a cut at ``limit`` could drop them)
        kept = set(asked)
        return _asked_first(self._rerank(q, top, bm25, limit, kept), kept, self.index.by_id)[:limit]

    def _asked_as(self, text: str) -> list[int]:
        """The live docs one of whose own questions is ``text`` (compact) word for word, or but for
        how it spells the place it asks at its end (鼓楼区商务局在哪 is 鼓楼区商务局在哪里？) or a closing
        particle (呢, 啊): ``Index.asked_as``."""
        found = self.index.asked_as(text)
        if found:
            return found
        bare = text.rstrip(_CLOSING)
        if bare != text and (found := self.index.asked_as(bare)):
            return found
        for group in _WHERE_SPELLINGS:
            said = next((w for w in group if bare.endswith(w)), None)
            if said is None:
                continue
            stem = bare[: -len(said)]
            for other in group:
                if other != said and (found := self.index.asked_as(stem + other)):
                    return found
        return []

    def _retrieve(self, q: Query, asked: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``CANDIDATES`` live docs with the best BM25F scores, then any other live doc asked
        word for word by one of its own questions (``asked``: ``Index.asked_as`` of the question,
        looked up when not given), and their BM25F scores.

        Every doc a word touches is scored (one pass of array additions; a common word adds its
        dense weights, ``Index.dense_weights``, in one), but only those that can be among the best
        are ranked: the docs holding the rarest words are few, and the best ``CANDIDATES`` of them
        give a floor that every doc of the true best reaches."""
        idx = self.index
        terms = [(tok, idx.postings(tok)) for tok in set(q.tokens)]
        # Rarest first, then by the token: the float32 sums below then add in one order in every
        # process (a set's order follows the salted string hash, so a second worker or a restart
        # would score the same question a few ulps apart, and could decide otherwise at a tie).
        terms = sorted((t for t in terms if len(t[1][0])), key=lambda t: (len(t[1][0]), t[0]))
        if not terms:
            return EMPTY_I, EMPTY_F
        scores = self._zeroed_scores(len(idx.docs))
        for tok, (ids, ws) in terms:
            dense = idx.dense_weights(tok)
            if dense is None:
                # (numpy's add.at reads int64 positions quicker than it converts int32 ones itself)
                np.add.at(scores, ids.astype(np.intp), ws)
                continue
            scores[: len(dense)] += dense  # a common word: the same sums, one array addition
            # Docs added since the build are only in the postings. (Searched with a number of the
            # postings' own type: a Python int would make numpy copy them all to int64 first.)
            if ids[-1] >= len(dense):
                late = np.searchsorted(ids, ids.dtype.type(len(dense)))
                np.add.at(scores, ids[late:], ws[late:])
        scores[idx.dead] = 0.0
        floor = _floor(scores, [ids for _, (ids, _) in terms])
        docs = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
        top = docs[_best(scores[docs], CANDIDATES)]
        # An entry asked by one of its own questions, word for word, is a candidate whatever its rank;
        # so are the few whose own question holds the whole question (a fragment of it, typed by
        # a user, cut anywhere: its broken words leave the right entry among thousands of near
        # duplicates by BM25F alone).
        held = set(top.tolist())
        text = compact(q.raw)
        extra = list(idx.asked_as(text) if asked is None else asked)
        if FRAGMENT_CHARS[0] <= len(text) <= FRAGMENT_CHARS[1]:
            extra += idx.said_in(text, FRAGMENT_CANDIDATES)
        extra = [d for d in dict.fromkeys(extra) if d not in held]
        if extra:
            top = np.concatenate([top, np.asarray(extra, dtype=top.dtype)])
        return top, scores[top]

    def _zeroed_scores(self, n: int) -> np.ndarray:
        """``n`` zero scores in the array the last search used: searches hold the index's lock, one
        at a time, and a fresh array of 100k costs a page fault at each first write (BENCHMARKS.md)."""
        if len(self._scores) == n:
            self._scores.fill(0.0)
        else:
            self._scores = np.zeros(n, dtype=np.float32)
        return self._scores

    def _rerank(
        self, q: Query, top: np.ndarray, bm25: np.ndarray, limit: int, keep: set[int] | None = None
    ) -> list[Candidate]:
        """The best ``limit`` candidates by their full score (``_score_parts``), best first, and
        any of the docs ``keep`` among them wherever they rank (in rank order with the others).

        The literal phrasing (``_phrases``, the costliest feature on long texts) moves a score by at
        most ``PHRASE_WEIGHT``; it is computed only for the docs kept and the candidates that, phrased
        perfectly, could still beat what the ``limit``-th best of the others reaches phrased not at
        all."""
        docs = [self.index.docs[d] for d in top.tolist()]
        cov = self._coverage(q, top, docs)
        cover, key_cover, missing = (np.asarray(f) for f in (cov.cover, cov.key_cover, cov.missing))
        qsim, wording, closest = self._question_sims(q, docs)
        factor = np.ones(len(docs))
        numbered = np.zeros(len(docs), dtype=bool)  # states the number asked (see below)
        # Asked for a number, a date or a place the entry does not state: it cannot be the answer,
        # unless one of its own questions asks it in the same words (几月, 多久), or a time or how long
        # in any words (``_NUMBER_KINDS``): that is its question.
        if q.asks_number:
            states = _STATES_COUNT.get(q.count_of)  # a number of the unit asked (一名 too), when one is
            asked, kind = q.number_asked, _last_named(q.number_asked, _NUMBER_KINDS)
            off = [
                j
                for j, d in enumerate(docs)
                if not (states.search(d.body_text) or states.search(d.key_text) if states else d.has_number)
                and not (asked and any(asked in t for t in d.question_texts))
                and not (kind and kind in self._number_kinds[d.question_texts])
            ]
            factor[off] *= ANSWER_TYPE_PENALTY
            numbered[:] = True
            numbered[off] = False
        # A place, unless the entry says the asking words itself (the question quotes it) or one of
        # its own questions asks where in any words (应该去哪一级商务部门备案: that is its question).
        if q.asks_place:
            where = q.asks_place
            off = [
                j
                for j, d in enumerate(docs)
                if not d.has_place
                and where not in d.body_text
                and where not in d.key_text
                and "where" not in self._forms[d.question_texts]
            ]
            factor[off] *= ANSWER_TYPE_PENALTY
        # Asked of a year that an entry never names while its title or number names another (2021年的
        # 方案出了吗, of the 2020 plan): it is about another year, it cannot be the answer.
        if q.years:
            off = [j for j, d in enumerate(docs) if other_year(q.years, d)]
            factor[off] *= OTHER_DOCUMENT_PENALTY
        # Asked the date, text, validity or number of a document named by a number that is no entry's
        # own (国办发17号文的全文, 鼓政办65号文什么时候废止): only that document states it; the plan
        # numbered 123 that cites it, and its clause citing it, do not.
        if q.doc_numbers:
            off = [j for j, d in enumerate(docs) if other_document(q.doc_numbers, d)]
            factor[off] *= OTHER_DOCUMENT_PENALTY
        # Asked what comes of not doing something: an entry stating the duty alone does not answer it.
        if q.asks_consequence:
            off = [
                j
                for j, d in enumerate(docs)
                if d.kind != "referral"  # (another body's matter: ask that body)
                and not (_STATES_CONSEQUENCE.search(d.body_text) or _STATES_CONSEQUENCE.search(d.key_text))
            ]
            factor[off] *= ANSWER_TYPE_PENALTY
        # Asked which section of the bureau deals with it: an entry naming none does not answer it
        # (any 科 counts as naming one, 科技 too: the looser test holds back fewer entries).
        if q.asks_office:
            off = [
                j
                for j, d in enumerate(docs)
                if d.kind != "referral" and "科" not in d.body_text and "科" not in d.key_text
            ]
            factor[off] *= ANSWER_TYPE_PENALTY
        # Asked for a guide's section (materials, fees...) while a guide with it is a candidate: an
        # entry that neither has that section, nor says the words the question asked it with in its
        # key field, nor has an own question asking for it last (成品油零售资格在哪里办 asks where:
        # 资格 is in the matter's name) mentions it only in passing. An entry without own questions
        # asks for it when its key field names it at all. A referral answers any section asked of
        # another body's matter: ask that body (营业执照在哪里办，网上能办不: the market regulator).
        off_aspect = np.zeros(len(docs), dtype=bool)
        effect = _ASKS_EFFECT.search(q.aspect_said) is not None  # (when the rules took effect)
        if q.aspect and any(q.aspect in d.aspects for d in docs):
            off_aspect[
                [
                    j
                    for j, d in enumerate(docs)
                    if d.kind != "referral"
                    and q.aspect_said not in (key := self._key_asked(q, d, cov.key_words[j]))
                    and not self._addresses(d, q.aspect, key)
                    # (a clause stating the number asked answers it: 12小时内转发, asked 多长时间内转发)
                    and not (numbered[j] and d.kind == "clause")
                    and not (effect and any(_ASKS_EFFECT.search(t) for t in d.question_texts))
                ]
            ] = True
        # Asked for several sections that one guide among them holds all of (要交哪些材料，多久能办下来):
        # an entry whose key field (its own questions, its title) does not name them all answers a part
        # of the question (外资企业年报什么时候报、在哪报 names both of 啥时候报，在哪个网站).
        if len(q.aspects) >= 2 and any(all(a in d.aspects for a in q.aspects) for d in docs):
            off_aspect[
                [
                    j
                    for j, d in enumerate(docs)
                    if d.kind != "referral"
                    and not all(a in d.aspects or ASPECT_RX[a].search(d.key_text) for a in q.aspects)
                ]
            ] = True
        factor[off_aspect] *= ASPECT_PENALTY

        # Its own questions all ask in other forms (why, when, how...) than the question's clauses: they
        # ask another question. (Not a ``factor``: that says the entry lacks what is asked, ``off_type``.)
        form = np.ones(len(docs))
        form[other_form(q.forms or (q.form,), docs, self._forms.__getitem__)] = FORM_PENALTY

        covered, own = _score_parts(cover, key_cover, qsim)
        # Ties between full matches: how closely its own question was asked, in words, then as typed
        # (你可以随时取消… and 您可以随时取消…, the same words: the closer wording first).
        tie = 0.01 * (1.0 - qsim) + 0.001 * (1.0 - wording)

        def final(phrase: np.ndarray | float) -> np.ndarray:
            return np.minimum(1.0, (covered + PHRASE_WEIGHT * phrase + own) * factor * form) - tie

        kept = [j for j, d in enumerate(top.tolist()) if d in keep] if keep else []
        phrase = np.zeros(len(docs))
        worth = np.arange(len(docs))
        if len(docs) - len(kept) > limit:
            low = np.delete(final(0.0), kept) if kept else final(0.0)  # (the others')
            worth = np.flatnonzero(final(1.0) >= np.partition(low, len(low) - limit)[len(low) - limit])
            if kept:
                worth = np.union1d(worth, kept).astype(np.intp)
        phrase[worth] = _phrases(q.core, [docs[j] for j in worth.tolist()])
        phrase[_said_whole(q, docs)] = 1.0
        # One of its own questions says the question's very words (人寿保险有多少 and 人寿保险是多少:
        # a stop word apart): it says them literally, though its text holds more between them.
        phrase[qsim >= SAME_WORDS] = 1.0
        score = final(phrase)
        order = np.lexsort((-bm25, -score)).tolist()
        if kept:
            chosen = set(kept)
            chosen.update([j for j in order if j not in chosen][:limit])
            best = [j for j in order if j in chosen]
        else:
            best = order[:limit]
        # (Python floats from lists: quicker than numpy scalars one by one)
        s, b, c, k, p, o = (a.tolist() for a in (score, bm25, cover, key_cover, phrase, qsim))
        forms: list[float] = form.tolist()
        lack: list[float] = missing.tolist()
        shortfall: list[float] = factor.tolist()
        sc, sl = cov.spec_cover, cov.spec_missing
        said = functools.partial(self._unsaid, q)
        peers = self._peers(q, top, docs, cov.key_words, best)
        return [
            Candidate(
                docs[j],
                docs[j].entry_id,
                score=s[j],
                bm25=b[j],
                coverage=c[j],
                key_coverage=k[j],
                phrase=p[j],
                question_sim=o[j],
                missing=lack[j],
                factor=shortfall[j],
                spec_coverage=sc[j],
                spec_missing=sl[j],
                closest=closest(j),
                key_words=cov.key_words[j],
                said_words=cov.said_words[j],
                word_spec=cov.word_spec,
                said=said,
                peers=n_peers,
                form=forms[j],
            )
            for j, n_peers in zip(best, peers, strict=True)
        ]

    def _peers(
        self, q: Query, top: np.ndarray, docs: list[IndexedDoc], key_words: list[int], found: list[int]
    ) -> list[int]:
        """For each candidate ``found`` (positions in ``docs``, the docs re-ranked, numbered ``top``),
        how many other entries of its kind, titled too (no questions of their own, not a clause), hold
        in their key fields every question word its key field holds (``key_words``): 备案 is in the
        title of every filing guide. 0 for an entry that is not titled. Counted among the docs
        re-ranked (no index reads), and, while that finds fewer than ``PEERS_ENOUGH``, in the key
        postings of the question's word its key field holds that the fewest entries hold, when they
        are at most ``PEER_SCAN`` (a small knowledge base: its other filing guides may not be among
        the docs re-ranked)."""
        titled = {j for j, d in enumerate(docs) if is_titled(d) and key_words[j]}
        out: list[int] = []
        for j in found:
            if j not in titled:
                out.append(0)
                continue
            mask, kind = key_words[j], docs[j].kind
            near = {
                int(top[i]) for i in titled if i != j and docs[i].kind == kind and mask & ~key_words[i] == 0
            }
            if len(near) < PEERS_ENOUGH:
                near |= self._titled_alike(q, int(top[j]), kind, mask)
            out.append(len(near))
        return out

    def _titled_alike(self, q: Query, number: int, kind: str, mask: int) -> set[int]:
        """The live titled entries of ``kind`` but doc ``number`` whose key postings hold every
        question word of ``mask``, read only when the rarest of them is in at most ``PEER_SCAN``
        entries' key fields (none otherwise)."""
        # (postings ascending: binary searches, so that a word half the entries hold costs little)
        itself = np.asarray([number])
        lists = [self.index.key_postings(w) for i, w in enumerate(q.words) if mask >> i & 1]
        lists = [ids for ids in lists if _members(ids, itself)[0]]  # (a word its title says only literally)
        if not lists:
            return set()
        lists.sort(key=len)
        if len(lists[0]) > PEER_SCAN:
            return set()
        held = lists[0]
        for ids in lists[1:]:
            held = held[np.asarray(_members(ids, held), dtype=bool)]
        docs, alive = self.index.docs, self.index.alive
        return {
            e
            for e in held.tolist()
            if e != number and alive[e] and docs[e].kind == kind and is_titled(docs[e])
        }

    def _coverage(self, q: Query, top: np.ndarray, docs: list[IndexedDoc]) -> Coverage:
        """Weighted share of the question's words each candidate holds (anywhere; in its key field),
        the weight of the heaviest word it lacks, relative to the question's heaviest word, and the
        same two by specificity (``_specificity``: weight times idf in this knowledge base).
        A word counts when the doc says it literally or, for a word with synonyms, when the postings
        show it (the doc says a synonym); a word said only in a clause's parents' headings or its
        document's title counts too, but by ``SHARED_HEADING`` only when a candidate sharing them
        says it in its own heading or text (``_told_apart``): there, the word tells the siblings
        apart; one said only in an FAQ's category or tags (``IndexedDoc.document``: what it is asked
        within), of two Chinese characters or more, counts fully. A word of three characters or
        more that is not said counts half by the share of its
        character pairs the doc holds (another segmentation). A word without synonyms that the
        postings show for a doc is in its text, so only words with synonyms (and one-character
        words, for the key field, where a literal match inside a longer word would not do) are
        looked up in the postings. (Plain loops: for a few dozen candidates they are quicker than
        arrays.)"""
        plan = [self._word_plan(w, v, top) for w, v in zip(q.words, q.weights, strict=True)]
        apart = _told_apart(q.words, docs)
        spec = self._specificity(q.words, q.weights)
        spec_total, spec_top = sum(spec) or 1.0, max(spec, default=0.0) or 1.0
        # Each word's plan with its specificity, its bit in ``key_words`` and whether a literal
        # match in the key counts (not for one character: postings only).
        # ... and whether it may be said in an FAQ's category or tags: a word of two Chinese characters
        # or more (c of 计划C is no word of "insurance").
        rows = [
            (*p, sp, 1 << i, len(p[0]) > 1, len(p[0]) > 1 and is_han(p[0][0]))
            for i, (p, sp) in enumerate(zip(plan, spec, strict=True))
        ]
        cover: list[float] = []
        key_cover: list[float] = []
        missing: list[float] = []
        spec_cover: list[float] = []
        spec_missing: list[float] = []
        key_words: list[int] = []
        said_words: list[int] = []
        for j, doc in enumerate(docs):
            key, body = doc.key_text, doc.body_text  # (a word holds no space: never across the two)
            shared, document = doc.shared_key, doc.document  # a clause's, an FAQ's ("" for others)
            own = key[len(shared) :]
            c = k = lack = sc = s_lack = 0.0
            mask = said = 0
            for w, v, held, in_key, grams, half, sp, bit, literal, named in rows:
                said_in_key = w in key
                if said_in_key or w in body or (held is not None and held[j]):
                    # Said only in a heading the clause shares with a sibling that says it itself.
                    if shared and said_in_key and w not in own and w not in body and (w, shared) in apart:
                        got = SHARED_HEADING * v
                    else:
                        got = v
                elif document and w in document and (shared or doc.kind == "clause" or named):
                    # said only in its document's title (or an FAQ's category or tags): likewise
                    got = SHARED_HEADING * v if (w, document) in apart else v
                elif grams:  # partly said: the share of its character pairs, at half weight
                    got = half * sum([g in key or g in body for g in grams])
                else:
                    got = 0.0
                c += got
                if got < v:  # (comparisons, not max(): this runs for every word of every candidate)
                    if v - got > lack:
                        lack = v - got
                    share = got / v
                    if sp * (1.0 - share) > s_lack:
                        s_lack = sp * (1.0 - share)
                    sc += sp * share
                else:
                    sc += sp
                    said |= bit
                if (in_key is not None and in_key[j]) or (literal and said_in_key):
                    k += v
                    mask |= bit
            cover.append(c)
            key_words.append(mask)
            said_words.append(said)
            key_cover.append(k)
            missing.append(lack)
            spec_cover.append(sc / spec_total)
            spec_missing.append(s_lack / spec_top)
        total_w = sum(q.weights) or 1.0
        top_w = max(q.weights, default=0.0) or 1.0
        return Coverage(
            [c / total_w for c in cover],
            [k / total_w for k in key_cover],
            [m / top_w for m in missing],
            spec_cover,
            spec_missing,
            key_words,
            said_words,
            spec,
        )

    def _specificity(self, words: list[str], weights: list[float]) -> list[float]:
        """How much each question word tells entries of this knowledge base apart: its weight times
        its BM25 idf relative to a word no entry holds (a word of every entry says nothing here,
        whatever it says in general)."""
        idx = self.index
        top_idf = idx.idf("\x00") or 1.0  # a token of no entry
        return [v * min(1.0, idx.idf(w) / top_idf) for w, v in zip(words, weights, strict=True)]

    def _word_plan(self, w: str, v: float, top: np.ndarray) -> _WordPlan:
        """What ``_coverage`` needs of one question word: which candidates its postings show (words
        with synonyms) and hold in their key field (those and one-character words), and its
        character pairs (two-character words have none but themselves: not said, none are held)."""
        grouped = w in self._grouped
        held = _members(self.index.postings(w)[0], top) if grouped else None
        in_key = _members(self.index.key_postings(w), top) if grouped or len(w) == 1 else None
        grams = [w[i : i + 2] for i in range(len(w) - 1)] if len(w) > 2 else []
        return w, v, held, in_key, grams, v * 0.5 / len(grams) if grams else 0.0

    def _question_sims(
        self, q: Query, docs: list[IndexedDoc]
    ) -> tuple[np.ndarray, np.ndarray, Callable[[int], tuple[str, ...]]]:
        """How close the question is to one of each entry's own questions (0 when it has none): the
        share (by weight) of that question's words the question says, and the wording's edit ratios;
        the closest wording as typed alone (the edit ratio of the texts); and a function giving the
        words of a candidate's closest question (the first of its best), for ``_unsaid``, called only
        for the candidates returned."""
        core, said = q.core, q.norm.replace(" ", "")
        says = core.__contains__  # a word of an entry's question that the question says
        weight = self._weight.__getitem__
        # Every question of every candidate, flattened; ``owner`` maps each back to its candidate.
        owner: list[int] = []
        words: list[tuple[str, ...]] = []
        totals: list[float] = []
        texts: list[str] = []
        start: list[int] = []  # where each candidate's questions begin
        for j, doc in enumerate(docs):
            start.append(len(owner))
            if doc.questions:
                owner += [j] * len(doc.questions)
                words += doc.questions
                totals += doc.question_weights
                texts += doc.question_texts
        start.append(len(owner))
        sims, wording = np.zeros(len(docs)), np.zeros(len(docs))
        if not owner:
            return sims, wording, lambda j: ()
        held = [sum(map(weight, filter(says, ws))) / (t or 1.0) for ws, t in zip(words, totals, strict=True)]
        joined = ["".join(ws) for ws in words]
        by_words = process.cdist([core], joined, scorer=fuzz.ratio, dtype=np.float64)[0] / 100
        by_text = process.cdist([said], texts, scorer=fuzz.ratio, dtype=np.float64)[0] / 100
        both = np.maximum(0.6 * np.asarray(held) + 0.4 * by_words, by_text)
        if not all(words):  # a question of stop words only says nothing
            both[[i for i, ws in enumerate(words) if not ws]] = 0.0
        np.maximum.at(sims, owner, both)
        np.maximum.at(wording, owner, by_text)

        def closest(j: int) -> tuple[str, ...]:
            a, b = start[j], start[j + 1]
            if b - a < 2:
                return words[a] if b > a else ()
            return words[a + int(np.argmax(both[a:b]))]  # (the first of the best)

        return sims, wording, closest

    def _unsaid(self, q: Query, words: tuple[str, ...]) -> float:
        """The heaviest word of an entry's closest question (``words``) that the question does not
        say, relative to that question's heaviest word: what the entry asks that was not asked."""
        if not words:
            return 0.0
        weight = self._weight.__getitem__
        ws = [weight(w) for w in words]
        top = max(ws) or 1.0
        # A question that names no year asks of the matter whenever it was: the year an entry's own
        # question pins (2020年的惠聚榕城消费券怎么领) is not a matter it left unasked.
        undated = not _NAMES_YEAR.search(q.norm)
        return (
            max(
                (
                    v
                    for w, v in zip(words, ws, strict=True)
                    if w not in q.core and not (undated and _YEAR.fullmatch(w))
                ),
                default=0.0,
            )
            / top
        )


def question_forms(texts: tuple[str, ...]) -> frozenset[str | None]:
    """The forms an entry's own questions ask in: every form each one names (应该去哪一级商务部门备案:
    where and what), and for one that names none, None. A question is in another form only when none
    of them asks in its form (``other_form``): the one named last alone (``asked_form``) missed
    the where of 去哪一级."""
    return frozenset(name for t in texts for name, rx in FORMS if rx.search(t)) | frozenset(
        asked_form(t) for t in texts
    )


def questions_number_kinds(texts: tuple[str, ...]) -> frozenset[str]:
    """The kinds of number (``_NUMBER_KINDS``) an entry's own questions ask for: every kind each
    names, as ``question_forms`` reads forms (什么时候交，要多久 asks when and how long)."""
    return frozenset(kind for t in texts for kind, rx in _NUMBER_KINDS if rx.search(t))


def questions_aspects(texts: tuple[str, ...]) -> frozenset[str | None]:
    """The guide sections an entry's own questions ask for: the one each names last (``asked_aspect``,
    without the date rules took effect: ``QUESTION_ASPECTS``; 成品油零售资格在哪里办 asks where,
    whatever 资格 says)."""
    return frozenset(_last_named(t, ASPECTS) for t in texts)


def other_form(
    asked: tuple[str | None, ...],
    docs: list[IndexedDoc],
    forms_of: Callable[[tuple[str, ...]], frozenset[str | None]],
) -> list[int]:
    """The positions of the entries with questions of their own none of which asks in one of the
    forms ``asked`` (the forms of a question's clauses; ``forms_of`` their question texts,
    ``question_forms``): 营业执照在哪里办，网上能办不 asks where, then whether, and the referral asked
    where is in its form. None when no form is asked."""
    wanted = {f for f in asked if f is not None}
    if not wanted:
        return []
    return [j for j, d in enumerate(docs) if d.question_texts and not wanted & forms_of(d.question_texts)]


# The questions every policy's key field holds (``META_QUESTIONS``), as they are there (compact), and
# their words together; a word of the question this heavy names a matter (``Matcher._key_asked``).
_META_KEYS = tuple(compact(normalize(m)) for m in META_QUESTIONS)
_META_TEXT = "".join(_META_KEYS)
MATTER_WEIGHT = 0.3


def _own_key(d: IndexedDoc) -> str:
    """A policy's key field without the questions every policy answers of itself (``_META_KEYS``)."""
    key = d.key_text
    for m in _META_KEYS:
        key = key.replace(m, "")
    return key


def other_year(years: tuple[str, ...], d: IndexedDoc) -> bool:
    """Whether an entry is about another year than ``years`` (those a question names): its key field
    or its document's title names a year (鼓楼区商务局2020年政务公开工作实施方案, 鼓商务〔2020〕123号)
    and none of ``years`` is said anywhere in it."""
    if not (_NAMES_YEAR.search(d.key_text) or _NAMES_YEAR.search(d.document)):
        return False
    return not any(y in d.key_text or y in d.body_text or y in d.document for y in years)


def asked_documents(asks: str) -> tuple[str, ...]:
    """The numbers of the documents a question's asking part (``asking_part``) asks the date, text,
    validity or number of (国办发17号文的全文: 17); none when it asks nothing of a document itself (国办发
    17号文跟这个方案有关系吗, 鼓政办65号是什么通知: the document citing it says that)."""
    if "号" not in asks or not _ASKS_OF_DOCUMENT.search(asks):
        return ()
    return tuple(dict.fromkeys(a or b for a, b in _NAMES_DOC_NUMBER.findall(asks)))


def other_document(numbers: tuple[str, ...], d: IndexedDoc) -> bool:
    """Whether an entry is not the document a question names by ``numbers``: its key field gives it
    none of them as its own number (鼓商务〔2020〕123号; an entry without a number of its own cites
    documents at most)."""
    own = _OWN_DOC_NUMBER.findall(d.key_text)
    return not any(n in own for n in numbers)


def is_titled(d: IndexedDoc) -> bool:
    """An entry whose key field is its title alone (a guide, a policy): an FAQ's holds its questions,
    a clause's its headings."""
    return not d.questions and d.kind != "clause"


def _asked_first(cands: list[Candidate], asked: set[int], by_id: dict[str, int]) -> list[Candidate]:
    """The candidates asked word for word by one of their own questions first, each scored at least
    as high as the best of the others: the question *is* that entry's question, whatever near
    duplicate says its words as well. Entries that share the question are one tie, however their
    answers' wording differs, in the order of their ids (the same before and after a rebuild,
    which numbers docs in that order), unless one of them does not state what is asked (a number,
    a place, a section: its ``factor`` is lower) and follows them; ``decide`` then offers the tie
    together."""
    first = [c for c in cands if by_id.get(c.entry_id) in asked]
    rest = [c for c in cands if by_id.get(c.entry_id) not in asked]
    if not first:
        return cands
    best = max((c.score for c in rest), default=0.0)
    fit = max(c.factor for c in first)
    tie = [c for c in first if c.factor >= fit]
    top = max(best, max(c.score for c in tie))
    tied = sorted((dataclasses.replace(c, score=top, asked=True) for c in tie), key=lambda c: c.entry_id)
    apart = [dataclasses.replace(c, score=max(c.score, best), asked=True) for c in first if c.factor < fit]
    apart.sort(key=lambda c: (-c.score, c.entry_id))
    return tied + apart + rest


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, highest first."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
    return np.argsort(-scores, kind="stable")


def _floor(scores: np.ndarray, postings: list[np.ndarray]) -> float:
    """A score that at least ``CANDIDATES`` docs reach, so that every one of the best does: the
    ``CANDIDATES``-th best among up to ``FLOOR_SAMPLE`` docs of the rarest words (posting lists
    shortest first), whose scores are high. Any sample gives a true floor; zero when too few."""
    held: list[np.ndarray] = []
    size = 0
    for ids in postings:
        held.append(ids[: FLOOR_SAMPLE - size])
        size += len(held[-1])
        if size >= FLOOR_SAMPLE:
            break
    sample = scores[_union(held)]
    sample = sample[sample > 0]
    if len(sample) < CANDIDATES:
        return 0.0
    return float(np.partition(sample, len(sample) - CANDIDATES)[len(sample) - CANDIDATES])


def _union(lists: list[np.ndarray]) -> np.ndarray:
    """The doc numbers of several posting lists, ascending, each once."""
    return lists[0] if len(lists) == 1 else distinct(np.concatenate(lists))


def _told_apart(words: list[str], docs: list[IndexedDoc]) -> set[tuple[str, str]]:
    """(word, shared heading) and (word, document title) pairs for which a candidate clause says the
    word in its own heading or text: siblings that say it only in what they share are the weaker
    for it. Words in a heading or title that no candidate says itself count fully for every one.
    (Only clauses share these; an FAQ's category and tags are its own. Only words that some
    clause's heading or title holds are looked at: no other pair is ever asked for.)"""
    shared = [doc for doc in docs if doc.kind == "clause" and (doc.shared_key or doc.document)]
    contexts = {s for doc in shared for s in (doc.shared_key, doc.document) if s}
    asked = [w for w in words if any(w in s for s in contexts)]
    apart: set[tuple[str, str]] = set()
    for doc in shared if asked else ():
        own, body = doc.key_text[len(doc.shared_key) :], doc.body_text
        for w in asked:
            if w in own or w in body:
                apart.update((w, s) for s in (doc.shared_key, doc.document) if s)
    return apart


def _members(sorted_ids: np.ndarray, cands: np.ndarray) -> list[bool]:
    """Which of ``cands`` occur in a posting list (doc numbers ascending): a binary search each,
    so a word held by half of a large knowledge base costs no more than a rare one."""
    if not len(sorted_ids):
        return [False] * len(cands)
    # Numbers of the list's own type: searching int32 postings for int64 numbers would first copy
    # the whole list to int64 (9 us for 50k docs, against 1 us).
    cands = cands.astype(sorted_ids.dtype, copy=False)
    pos = np.minimum(np.searchsorted(sorted_ids, cands), len(sorted_ids) - 1)
    return (sorted_ids[pos] == cands).tolist()


def _said_whole(q: Query, docs: list[IndexedDoc]) -> list[int]:
    """The candidates one of whose own questions holds the whole question as typed (a fragment of it):
    phrased literally, though the question's stop words and broken words (异地怎么处: 怎么 dropped, 处理
    cut) leave its ``core`` unlike that question's."""
    said = q.norm.replace(" ", "")
    if not FRAGMENT_CHARS[0] <= len(said) <= FRAGMENT_CHARS[1]:
        return []
    # (Its questions joined by a character no normalized text holds: one search a candidate finds
    # what a search of each of its questions would.)
    return [j for j, d in enumerate(docs) if said in "\x00".join(d.question_texts)]


def _phrases(core: str, docs: list[IndexedDoc]) -> np.ndarray:
    """How literally each entry says the question's words: best partial alignment with its key text
    or its body, in [0, 1] (both lists in one ``cdist`` call)."""
    if not core or not docs:
        return np.zeros(len(docs))
    texts = [d.key_text for d in docs] + [d.body_text[:PHRASE_SPAN] for d in docs]
    scores = process.cdist([core], texts, scorer=fuzz.partial_ratio, dtype=np.float64)[0]
    return np.maximum(scores[: len(docs)], scores[len(docs) :]) / 100


def _score_parts(cover: np.ndarray, key_cover: np.ndarray, qsim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two terms of a score that do not depend on the phrasing; the score in [0, 1] adds
    ``PHRASE_WEIGHT * phrase`` between them (``_rerank``). Coverage dominates and full coverage is
    rewarded more than linearly; an entry's own question (FAQ) or its heading and title (clauses,
    guides) add the rest."""
    return COVER_WEIGHT * cover**1.5, OWN_WEIGHT * np.maximum(key_cover, qsim)


def question_compact(text: str) -> str:
    """Compact normalized form used to compare questions (exposed for tests and tools)."""
    return compact(text)

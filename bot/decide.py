"""Answer, suggest or escalate: pure functions of the scored candidates, the confidence model and the
configured precision."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.confidence import FEATURES, TIE, ConfidenceModel, features, offhand, shipped_model, thin, tied
from bot.config import MatchingSettings
from knowledge.retrieve import ASPECTS, PEERS_ENOUGH, SAME_WORDS, Candidate, Query, is_titled, question_forms
from knowledge.segment import LIGHT_WEIGHT
from knowledge.text import compact, is_han

OFFER_SHARE = 0.5  # a suggestion scores at least half as well as the best candidate
# How much closer a referral's own question must come to the question than the best entry's own
# question (0 without) for the referral's matter to be what is asked (``named_referral``).
REFERRAL_CLOSER = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision before it is rendered: status, best candidate, and the distinct alternatives."""

    status: str
    best: Candidate | None
    alternatives: list[Candidate]
    confidence: float = 0.0  # the probability that ``best`` answers the question
    features: list[float] | None = None  # what it was estimated from (``bot.confidence.FEATURES``)


def same_answer(x: Candidate, y: Candidate) -> bool:
    """Two entries that give one answer (same text, or a policy and its own Q&A)."""
    a, b = x.info, y.info
    return a.answer_sig == b.answer_sig or a.parent_id == b.entry_id or b.parent_id == a.entry_id


def distinct(cands: list[Candidate], limit: int) -> list[Candidate]:
    """The best candidates, one per answer."""
    out: list[Candidate] = []
    for c in cands:
        if all(not same_answer(c, o) for o in out):
            out.append(c)
        if len(out) == limit:
            break
    return out


CHILD_SLACK = 0.15  # a policy's own Q&A this close to the policy is the more specific answer


def most_specific(best: Candidate, cands: list[Candidate], q: Query) -> Candidate:
    """The best candidate, or its own Q&A child when that scores nearly as well. A document's clauses
    are its parts, not answers to questions about it: asked for its date or number, the document
    itself answers, so a clause never replaces it. Nor does a Q&A replace it for a question asking
    in several clauses (``asking_clauses``): each Q&A asks one thing, and the policy answers the
    whole (两稳一促是哪两稳，啥时候出的 was answered by 加强版是什么时候出的, 六稳六保到底指哪几样？跟商务局
    有啥关系 by the bureau's part in it)."""
    if q.asks_in >= 2:
        return best
    children = [
        c
        for c in cands
        if c.info.parent_id == best.entry_id
        and c.info.kind != "clause"
        and c.score >= best.score - CHILD_SLACK
    ]
    return max(children, key=lambda c: c.score) if children else best


def parent_for_parts(best: Candidate, cands: list[Candidate], q: Query) -> Candidate:
    """The policy, for a question asking in several clauses (``asking_clauses``) whose best answer is
    one of its own Q&As, not asked in the question's very words, when the policy scores nearly as well
    (``CHILD_SLACK``): each Q&A asks one thing, and the policy answers the whole (两稳一促是啥意思
    福建出了哪些措施: 两稳一促指什么 answers the first clause only). ``best`` otherwise."""
    parent = best.info.parent_id
    if q.asks_in < 2 or parent is None or best.info.kind == "clause" or best.question_sim >= SAME_WORDS:
        return best
    return next((c for c in cands if c.entry_id == parent and c.score >= best.score - CHILD_SLACK), best)


def whole_policy(best: Candidate, top: list[Candidate], cands: list[Candidate]) -> Candidate | None:
    """The policy whose own Q&As tie for the best answer (the runner-up a sibling within ``TIE``), none
    of them asked in the question's very words: the question asks about the policy as a whole
    (福建两稳一促是啥政策: 两稳一促指什么, 原文在哪里能看到 and 加强版是什么时候出的 all score alike, by
    the policy's title they share), and the policy answers it when it scores nearly as well
    (``CHILD_SLACK``, as in ``most_specific``); None otherwise."""
    parent = best.info.parent_id
    if parent is None or best.info.kind == "clause" or len(top) < 2 or best.question_sim >= SAME_WORDS:
        return None
    runner = top[1]
    if runner.info.parent_id != parent or best.score - runner.score >= TIE:
        return None
    return next((c for c in cands if c.entry_id == parent and c.score >= best.score - CHILD_SLACK), None)


def tied_pair(top: list[Candidate], x: list[float]) -> bool:
    """Whether the best and the runner-up tie (``tied``, ``x`` the best's features) within ``TIE``:
    what ``question_apart``, ``general_apart`` and ``literal_apart`` each set apart."""
    return len(top) >= 2 and top[1].score >= top[0].score - TIE and tied(x)


def question_apart(
    q: Query, top: list[Candidate], x: list[float], model: ConfidenceModel, m: MatchingSettings
) -> Verdict | None:
    """The runner-up, answered, when the best ties with it (``tied``) and the runner-up is set apart
    from the best by its own question (``tied`` reads its features as the best's: its question the
    closer by ``TIE``, or its key field): of two answers the match scores alike, the one whose own
    question was asked (拍买许可在哪里办: the FAQ asked 拍卖业务许可在哪里办, not the guide titled
    从事拍卖业务许可 a hair above it). None when it is not, or does not state the number, place or
    section asked (``Candidate.factor``: 报废车回收给多少钱, the FAQ on fines, asked 无证收报废车罚多少,
    states no sum one is paid), or is not confident (``m.precision``), or holds too little of the
    question (``thin``). ``x``: the best's features."""
    if not tied_pair(top, x) or top[1].factor < 1.0:
        return None
    swapped = [top[1], top[0], *top[2:]]
    return confident(q, swapped, model, m)


# A runner-up this close to the best (``closer_asked``), with an own question at least this close to the
# question and closer than the best's by this much.
CLOSER_SLACK = 0.1
CLOSER_SIM = 0.75
CLOSER_LEAD = 0.3


def closer_asked(
    q: Query, top: list[Candidate], model: ConfidenceModel, m: MatchingSettings
) -> Verdict | None:
    """The runner-up, answered, when it scores within ``CLOSER_SLACK`` of the best, one of its own
    questions is asked nearly in the question's words (``CLOSER_SIM``) and the best's are not
    (``CLOSER_LEAD``), and the model is confident of it in second place (its margin negative): a
    guide outscoring by a little, on words of the story, the FAQ whose own question was asked
    (我们是外资公司，实际控制人换了，要不要去商务局报告: the report guide above the FAQ asked
    外资企业实际控制人变了，要向商务部门报告吗)."""
    if len(top) < 2 or top[0].score - top[1].score >= CLOSER_SLACK:
        return None
    runner = top[1]
    if runner.question_sim < CLOSER_SIM or runner.question_sim - top[0].question_sim < CLOSER_LEAD:
        return None
    return confident(q, [runner, top[0], *top[2:]], model, m)


# Other entries titled alike that leave a question naming only their shared words vague (the matcher
# looks for that many: ``knowledge.retrieve.PEERS_ENOUGH``).
CROWDED = PEERS_ENOUGH


def crowded(c: Candidate) -> bool:
    """Whether at least ``CROWDED`` other entries of its kind are titled with every question word its
    title holds (``Candidate.peers``): the question names a kind of matter, not this entry
    (备案要带什么材料: every filing guide's title says 备案; the best by a hair of wording is a guess)."""
    return c.peers >= CROWDED


def titled(c: Candidate) -> bool:
    """A candidate whose key field is its title alone (``is_titled``: a guide, a policy)."""
    return is_titled(c.info)


_ASIDE = re.compile(r"[（(][^（()）]*[)）]")  # a bracketed aside of a title


def main_title(title: str) -> str:
    """A title without its bracketed asides (其他发卡企业，区级受理: whom it is for, where it is done),
    compact."""
    return compact(_ASIDE.sub("", title))


def inserted(short: str, long: str) -> str:
    """The characters ``long`` has besides ``short`` when ``short`` is ``long`` with some of them left
    out (its characters in the same order); "" when it is not, or the two are the same."""
    extra: list[str] = []
    i = 0
    for ch in long:
        if i < len(short) and ch == short[i]:
            i += 1
        else:
            extra.append(ch)
    return "".join(extra) if i == len(short) else ""


def general_apart(
    q: Query, top: list[Candidate], x: list[float], model: ConfidenceModel, m: MatchingSettings
) -> Verdict | None:
    """Of two tied answers (``tied``) titled alike, the general one, answered: one whose title is the
    other's with words left out that the question does not say (单用途商业预付卡发卡企业备案 and
    单用途商业预付卡规模、集团、品牌发卡企业备案, asked 预付卡备案要带什么材料: the question names no
    规模 or 集团, so the matter for every other issuer is asked; a title's bracketed asides are left
    out, ``main_title``). The words are compared by character, so a question saying any character
    of them (品牌, 集团发卡) is not taken for the general one. Entries with a title of their own only
    (guides, policies: ``titled``). None when neither title is the other's with unasked words left
    out, or the general one is not confident (``m.precision``) or holds too little of the question
    (``thin``). ``x``: the best's features."""
    if not tied_pair(top, x):
        return None
    best, runner = top[0], top[1]
    if not (titled(best) and titled(runner)):
        return None
    asked = compact(q.norm)
    for general, other in ((best, runner), (runner, best)):
        extra = inserted(main_title(general.info.title), main_title(other.info.title))
        words = [ch for ch in extra if is_han(ch)]
        if words and not any(ch in asked for ch in words):
            order = [general, other, *top[2:]]
            xg = features(q, general, order[1:])
            p = model.p_answer(general, xg)
            ok = p >= m.precision and not thin(q, xg) and not crowded(general)
            return Verdict("answered", general, order, p, xg) if ok else None
    return None


# A question this short (characters, compact) said word for word by an entry tells little.
LITERAL_LEAST = 5


def literal_apart(
    q: Query, top: list[Candidate], x: list[float], model: ConfidenceModel, m: MatchingSettings
) -> Verdict | None:
    """Of two tied answers (``tied``), the one whose text says the whole question word for word
    while the other does not, answered: a fragment typed from the text itself (培训的针对性: the
    clause on training says 增强培训的针对性; the clause titled 提高经济政策发布解读针对性精准性 says
    针对性 and 培训 apart). None when neither or both say it, the question is shorter than
    ``LITERAL_LEAST`` characters, or the one that says it is not confident (``m.precision``) or
    holds too little of the question (``thin``). ``x``: the best's features."""
    if not tied_pair(top, x):
        return None
    asked = compact(q.norm)
    if len(asked) < LITERAL_LEAST:
        return None
    says = [asked in c.info.key_text or asked in c.info.body_text for c in top[:2]]
    if says[0] == says[1]:
        return None
    order = top if says[0] else [top[1], top[0], *top[2:]]
    xs = features(q, order[0], order[1:])
    p = model.p_answer(order[0], xs)
    ok = p >= m.precision and not thin(q, xs) and not crowded(order[0])
    return Verdict("answered", order[0], order, p, xs) if ok else None


# An own question whose heaviest word the question does not say, by at least this share of the
# question's heaviest (``Candidate.unsaid``), asks another matter than the question.
UNSAID_APART = 0.9


def unsaid_apart(
    q: Query,
    top: list[Candidate],
    x: list[float],
    model: ConfidenceModel,
    m: MatchingSettings,
    cands: list[Candidate],
) -> Verdict | None:
    """Of the best and the answers scoring within ``TIE`` of it (tied by score, whether or not a closer
    own question sets one apart: ``tied``), the one whose own questions ask nothing the question does
    not say, answered, when each of the others has an own question asking chiefly about a word the
    question does not say (``UNSAID_APART``): they share the question's words but ask another matter
    (信息公开申请咋申请: the guide on applying, tied with the FAQ asked 信息公开申请被拒绝了（不予公开），我能
    怎么办, whose heaviest words the question does not say; 信息公开咋申请, the FAQ a hair above the
    guide). None when another reason ties them (the one does not state what is asked and another
    does: ``off_gap``; another's key field names the matter: ``outnamed``), or the one is not
    confident (``m.precision``) or another rule holds it back (``held_by``). ``x``: the best's
    features."""
    tied_ones = [c for c in top if c.score >= top[0].score - TIE]
    apart = [c for c in tied_ones if c.unsaid < UNSAID_APART]
    if len(apart) != 1:
        return None
    one = apart[0]
    order = [one, *(c for c in top if c is not one)]
    xo = x if one is top[0] else features(q, one, order[1:])
    if xo[FEATURES.index("off_gap")] or xo[FEATURES.index("outnamed")]:
        return None
    p = model.p_answer(one, xo)
    if p < m.precision or held_by(q, one, xo, cands, ties=False) is not None:
        return None
    return Verdict("answered", one, order, p, xo)


def answers_a_part(q: Query, c: Candidate, cands: list[Candidate]) -> bool:
    """Whether ``c`` is a policy's own Q&A none of whose own questions asks in one of the forms, or
    for one of the guide sections, of a question asked in several clauses (惠聚榕城消费券怎么领 能不能跟
    店里的优惠一起用: how, then whether; the Q&A on combining offers asks whether only. 能开不可抗力证明
    吗？要收费吗？: the Q&A asking whether one can be had names no fee): it answers a part of the
    question, and the policy, not it, answers the whole. A section counts only when another Q&A of
    the policy among the candidates ``cands`` asks for it (the one on the fee): a Q&A asking which
    firms count as hard hit answers what it takes to count, though its questions name no 条件."""
    if q.asks_in < 2 or c.info.parent_id is None or not c.info.question_texts:
        return False
    forms = question_forms(c.info.question_texts)
    if len(q.forms) >= 2 and any(f not in forms for f in q.forms):
        return True
    unasked = set(q.aspects) - _aspects_asked(c)
    return any(
        o.info.parent_id == c.info.parent_id and o.entry_id != c.entry_id and unasked & _aspects_asked(o)
        for o in cands
    )


def _aspects_asked(c: Candidate) -> set[str]:
    """The guide sections one of a candidate's own questions names (``ASPECTS``)."""
    return {name for t in c.info.question_texts for name, rx in ASPECTS if rx.search(t)}


def head_word(q: Query) -> int | None:
    """The index of the question's head: its last word naming a matter (more than a light word, not
    only asking, nor naming the guide section asked: 地点 of 在哪办). A Chinese question names the
    thing it asks about last (洗衣店营业执照在哪办: 营业执照, of a laundry). None when no word does."""
    heads = [
        i
        for i, w in enumerate(q.weights)
        if w > LIGHT_WEIGHT and not q.asking >> i & 1 and not any(rx.search(q.words[i]) for _, rx in ASPECTS)
    ]
    return heads[-1] if heads else None


def named_referral(q: Query, best: Candidate, cands: list[Candidate]) -> Candidate | None:
    """A referral among ``cands`` (to the body responsible for another matter) whose key field names
    the question's head (``head_word``) where ``best``'s key field does not, and whose own question
    comes much closer to the question than ``best``'s (``REFERRAL_CLOSER``): the question asks for
    that body's matter, which ``best`` names only in passing (洗衣店营业执照在哪办: the laundry filing
    guide says a business licence comes first; the licence is the market regulator's). None
    otherwise, or when ``best`` is itself a referral."""
    if best.info.kind == "referral":
        return None
    closer = [
        c
        for c in cands
        if c.info.kind == "referral" and c.question_sim >= best.question_sim + REFERRAL_CLOSER
    ]
    if not closer or (head := head_word(q)) is None or best.key_words >> head & 1:
        return None
    return next((c for c in closer if c.key_words >> head & 1), None)


def held_by(
    q: Query, c: Candidate, x: list[float], cands: list[Candidate] | None = None, ties: bool = True
) -> str | None:
    """The rule that holds back ``c``, the best candidate with features ``x``, however confident:
    a runner-up ties with it ("tied"), the question names only a kind of matter ("crowded"), it answers
    a part of the question ("part", ``answers_a_part``), it holds too little of it ("thin"), or the
    question asks for the matter of a referral among the other candidates ``cands`` ("referred",
    ``named_referral``); None when no rule does (``policybot ask --explain`` names the rule). With
    ``ties`` False, a tie is not read (``unsaid_apart`` has set the runners-up apart)."""
    if ties and tied(x):
        return "tied"
    if crowded(c):
        return "crowded"
    if answers_a_part(q, c, cands or []):
        return "part"
    if thin(q, x):
        return "thin"
    return "referred" if cands and named_referral(q, c, cands) is not None else None


def answerable(
    q: Query,
    c: Candidate,
    p: float,
    x: list[float],
    m: MatchingSettings,
    cands: list[Candidate] | None = None,
) -> bool:
    """Whether ``c``, the best candidate with confidence ``p`` and features ``x``, answers: the
    confidence reaches ``m.precision`` and no rule holds it back (``held_by``; ``cands``: the
    search's candidates)."""
    return p >= m.precision and held_by(q, c, x, cands) is None


def confident(
    q: Query,
    top: list[Candidate],
    model: ConfidenceModel,
    m: MatchingSettings,
    cands: list[Candidate] | None = None,
) -> Verdict | None:
    """``top[0]`` answered, the others its runners-up, when it is ``answerable`` (``cands``: the
    search's candidates); None otherwise."""
    x = features(q, top[0], top[1:])
    p = model.p_answer(top[0], x)
    return Verdict("answered", top[0], top, p, x) if answerable(q, top[0], p, x, m, cands) else None


def put_first(offered: list[Candidate], c: Candidate, limit: int) -> list[Candidate]:
    """``offered`` with ``c`` first (moved there if offered), at most ``limit``."""
    return [c, *(o for o in offered if o is not c)][:limit]


def put_second(offered: list[Candidate], c: Candidate, limit: int) -> list[Candidate]:
    """``offered`` with ``c`` right after the best (moved there if offered), at most ``limit``."""
    return [offered[0], c, *(o for o in offered[1:] if o is not c)][:limit]


def put_last(offered: list[Candidate], c: Candidate, limit: int) -> list[Candidate]:
    """``offered`` with ``c`` added, in the last of ``limit`` places when they are all taken."""
    return [*offered[: limit - 1], c] if len(offered) >= limit else [*offered, c]


def with_referral(q: Query, offered: list[Candidate], cands: list[Candidate], limit: int) -> list[Candidate]:
    """``offered`` with the referral second whose matter the question asks (``named_referral``) when
    the best offered names it only in passing: it may score far below the entries that mention it.
    First when the best's key field names no word of the question at all (an entry of its own that
    says the matter only in its body: 营业执照在哪办 ties every filing guide, each asking for a licence
    among its materials): the referral is then the one entry offered that is about it."""
    if limit < 2 or not offered or (ref := named_referral(q, offered[0], cands)) is None:
        return offered
    return (put_first if offhand(offered[0]) else put_second)(offered, ref, limit)


def with_closest_asked(offered: list[Candidate], cands: list[Candidate], limit: int) -> list[Candidate]:
    """``offered`` with the candidate whose own question comes closest to the question in the last
    place, when it comes as close as that of any entry offered after the best and is not among
    them: the offer goes by score, and an entry asked nearly so may score below entries whose long
    answers hold more of the question's words (医疗保险盖什么眼镜: Medigap做什么 and 医疗保险批准金额多少是
    眼镜 above 医疗保险什么时候支付眼镜). The best keeps its place whatever it is: its own question asked
    word for word (我可以切换Medigap计划吗 answered with 如何改变Medigap政策) is no reason to offer a
    farther second than the entry asked 随时可以更改Medigap计划吗."""
    if limit < 3 or len(offered) < 2:
        return offered  # (the best and its runner-up keep their places)
    closest = max(
        (c for c in cands if all(not same_answer(c, o) for o in offered)),
        key=lambda c: c.question_sim,
        default=None,
    )
    if closest is None or closest.question_sim == 0.0:
        return offered
    if closest.question_sim < max(o.question_sim for o in offered[1:]):
        return offered
    return put_last(offered, closest, limit)


def with_whole(q: Query, offered: list[Candidate], cands: list[Candidate], limit: int) -> list[Candidate]:
    """``offered`` with the policy second when the best offered is one of its own Q&As answering a
    part of the question (``answers_a_part``: 惠聚榕城消费券怎么领 能不能跟店里的优惠一起用, its Q&A on
    combining offers first): the policy answers the whole, and one Q&A of it (``same_answer``) had
    kept it out of the offer however well it scored."""
    if limit < 2 or not offered or not answers_a_part(q, offered[0], cands):
        return offered
    parent = next((c for c in cands if c.entry_id == offered[0].info.parent_id), None)
    return offered if parent is None else put_second(offered, parent, limit)


def with_overview(q: Query, offered: list[Candidate], cands: list[Candidate], limit: int) -> list[Candidate]:
    """``offered`` with the entry about the whole matter among them: when every one offered asks a
    question of its own (FAQs) and a candidate without own questions (a guide, a policy) names every
    word of the question in its title or headings, it takes the last place (a bare matter, 预付卡备案,
    is offered the guide beside its FAQs)."""
    if limit < 2 or not offered or any(not c.info.questions for c in offered):
        return offered  # (one place only: it stays the best's)
    every_word = (1 << len(q.words)) - 1  # (``Candidate.key_words``: bit i, the question's word i)
    for c in cands:
        about = not c.info.questions and c.key_words == every_word
        if about and all(not same_answer(c, o) for o in offered):
            return put_last(offered, c, limit)
    return offered


def decide(
    q: Query, cands: list[Candidate], m: MatchingSettings, model: ConfidenceModel | None = None
) -> Verdict:
    """``answered`` when the question is one of the best entry's own questions word for word
    (``Candidate.asked``: it *is* that entry's question; confidence 1) and no other answer is asked
    by it too, or when the confidence that the best entry answers the question reaches
    ``m.precision``, no other answer ties with it (``tied``), it holds enough of the question
    (``thin``), the question names more than a kind of matter (``crowded``) and does not ask for a
    referral's matter that it names only in passing (``named_referral``), or the runner-up it
    ties with, set apart by its own question, does so (``question_apart``), or a runner-up close
    behind whose own question was asked (``closer_asked``), or the general one of two tied entries
    titled alike (``general_apart``), or of answers tied by score the one not asking another matter
    (``unsaid_apart``), or the policy whose own Q&As tie for it does
    (``whole_policy``); ``suggested`` when a right entry is likely enough among the candidates
    offered (``m.suggest_confidence``), or the question is too vague to pick one (the best entry
    holds every word of it), FAQs offered with the entry on their matter (``with_overview``), a
    policy's Q&A answering a part with the policy after it (``with_whole``), an entry naming a
    referral's matter in passing with that referral after it (``with_referral``) and the entry
    asked closest in the last place (``with_closest_asked``);
    ``escalated`` otherwise (``bot/confidence.py``)."""
    model = model or shipped_model()
    top = distinct(cands, max(m.max_suggestions, 2))
    if not top:
        return Verdict("escalated", None, [])
    first = top[0]
    if not first.asked:  # (an entry asked word for word is the answer, not its Q&A child)
        top[0] = parent_for_parts(most_specific(first, cands, q), cands, q)
    best = top[0]
    x = features(q, best, top[1:])
    if best.asked and not any(c.asked for c in top[1:]):
        return Verdict("answered", best, top, 1.0, x)
    p, listed = model.p_answer(best, x), model.p_listed(best, x)
    if answerable(q, best, p, x, m, cands):
        return Verdict("answered", best, top, p, x)
    # A policy answered with confidence is not traded for its own Q&A that is not (2020年小规模纳税人
    # 增值税减按1%是怎么回事: the policy at 0.99, its Q&A asking when the relief ran at 0.37).
    if best.info.parent_id == first.entry_id and (kept := confident(q, [first, *top[1:]], model, m, cands)):
        return kept
    runner = (
        question_apart(q, top, x, model, m)
        or closer_asked(q, top, model, m)
        or general_apart(q, top, x, model, m)
        or literal_apart(q, top, x, model, m)
        or unsaid_apart(q, top, x, model, m, cands)
    )
    if runner is not None:
        return runner
    whole = whole_policy(best, top, cands)
    if whole is not None:
        # (its own Q&As give its answer: ``distinct`` leaves them out of the runners-up)
        w_top = distinct([whole, *(c for c in cands if c is not whole)], max(m.max_suggestions, 2))
        if (answered := confident(q, w_top, model, m, cands)) is not None:
            return answered
    # Offered too when the question is too vague to pick one: the best entry holds all its words.
    if max(p, listed) >= m.suggest_confidence or best.missing == 0.0:
        offered = [c for c in top if c.score >= OFFER_SHARE * best.score][: m.max_suggestions]
        offered = with_whole(q, offered, cands, m.max_suggestions)
        offered = with_referral(q, offered, cands, m.max_suggestions)
        offered = with_closest_asked(offered, cands, m.max_suggestions)
        return Verdict("suggested", best, with_overview(q, offered, cands, m.max_suggestions), p, x)
    return Verdict("escalated", best, top, p, x)

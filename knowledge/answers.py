"""Turn an entry into answer text and a citation line (channel-neutral plain text)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from knowledge.models import Entry
from knowledge.text import normalize

GUIDE_OVERVIEW = ("事项名称", "办理条件", "申请材料")
# A word said in more sections of a guide than this tells none apart (``telling_section``).
TELLING_SECTIONS = 2
# What a guide section says when it states a penalty (未按规定备案的，处1万元以上5万元以下罚款).
_STATES_PENALTY = re.compile(r"罚|处分|法律责任|吊销|追究")


def penalty_section(entry: Entry) -> str | None:
    """The first section of a guide that states a penalty: the answer to what comes of not doing
    what it describes (没备案就搞加盟会罚多少钱: its 说明, not its 收费标准, which 多少钱 names). None
    for other kinds, or when no section states one."""
    if entry.kind != "guide":
        return None
    return next((name for name, text in entry.sections if _STATES_PENALTY.search(text)), None)


def telling_section(
    entry: Entry, said: list[tuple[tuple[str, ...], float]], aspect: str | None
) -> str | None:
    """The section of a guide that says more of what the question's asking clauses name than the
    section they ask for (``aspect``; the overview when None), and all of what that one says: 报废机动车
    资质认定要专家现场验收吗，公示几天 asks 办理时限, but 办理流程 states both the experts' inspection and
    the days of notice. ``said``: each word of the asking clauses that names a matter, with its
    spellings (normalized) and weight; the guide's title words tell no section apart. None when no
    section says more, for other kinds, or when it would be the 事项名称 the overview shows."""
    if entry.kind != "guide" or not said:
        return None
    title = normalize(entry.title).replace(" ", "")
    words = [(spellings, w) for spellings, w in said if not any(s in title for s in spellings)]
    if not words:
        return None
    held: dict[str, set[int]] = {}
    for name, text in entry.sections:
        norm = normalize(text).replace(" ", "")
        held[name] = {i for i, (spellings, _) in enumerate(words) if any(s in norm for s in spellings)}
    # (a word said in most sections tells none apart)
    common = {i for i in range(len(words)) if sum(i in ids for ids in held.values()) > TELLING_SECTIONS}
    held = {name: ids - common for name, ids in held.items()}
    base = held.get(aspect, set()) if aspect else set()
    weight = {name: sum(words[i][1] for i in ids) for name, ids in held.items()}
    best = max(held, key=weight.__getitem__)  # (the first of the best, in the guide's order)
    if best == aspect or weight[best] <= sum(words[i][1] for i in base) or not held[best] >= base:
        return None
    # (the section naming the matter, first of a guide, says what it is and who deals with it: the
    # answer as asked, or the overview, shows it best)
    return None if best == "事项名称" else best


def answer_text(entry: Entry, aspect: str | None = None, asked: tuple[str, ...] = ()) -> str:
    """The answer an entry gives; for a guide, the section the question asks about (``aspect``), with
    the sections its other clauses ask about (``asked``, in the order asked: 要带哪些材料，要多久 asks
    申请材料 and 办理时限)."""
    if entry.kind == "guide":
        return _guide_answer(entry, aspect, asked)
    if entry.kind == "clause":
        return f"【{' > '.join(entry.heading_path)}】\n{_clause_text(entry)}"
    if entry.kind == "policy":
        return _policy_answer(entry)
    if entry.kind == "referral":
        return referral_answer(entry)
    return entry.answer


def section_answer(clauses: list[Entry]) -> str:
    """Clauses of one document under the same headings, answered together in document order under
    the section's heading (保障措施有哪些: 1.明确领导责任 and 2.强化培训工作)."""
    ordered = sorted(clauses, key=lambda c: _position(c.id))
    section = ordered[0].heading_path[:-1]
    if not section:  # (clauses straight under the document: each under its own heading)
        return "\n\n".join(answer_text(c) for c in ordered)
    return f"【{' > '.join(section)}】\n" + "\n\n".join(_clause_text(c) for c in ordered)


def _clause_text(clause: Entry) -> str:
    """A clause's text and the office responsible for it, when the document names one, under the
    document's own label (its section naming the office: 责任单位 where it says so)."""
    if not clause.office:
        return clause.answer
    return f"{clause.answer}\n（{office_label(clause) or '责任科室'}：{clause.office}）"


def office_label(clause: Entry) -> str | None:
    """The document's label for a clause's office (责任科室, 责任单位): the name of its section holding
    the office, as the importer puts it (knowledge/importers/policy_text.py); None without one."""
    if not clause.office:
        return None
    return next((name for name, text in clause.sections if text == clause.office), None)


def _position(entry_id: str) -> tuple[int, ...]:
    """A clause's place in its document from its id (doc-x/2.6.1 -> (2, 6, 1)); () when it has none."""
    tail = entry_id.rpartition("/")[2]
    return tuple(int(n) for n in tail.split(".")) if all(n.isdigit() for n in tail.split(".")) else ()


REFERRAL_FALLBACK = "如不确定由哪个部门负责，可拨打12345政务服务便民热线。"


def referral_answer(entry: Entry) -> str:
    """Another body's matter: who handles it and how to reach them, never advice in their remit."""
    sections = {name: text for name, text in entry.sections}
    parts = [
        f"【{entry.title}】",
        f"这类事项不在商务局的职责范围内，请联系：{sections.get('主管部门', '')}",
        f"联系方式：{sections.get('联系方式', '')}",
    ]
    if sections.get("说明"):
        parts.append(sections["说明"])
    if "12345" not in sections.get("联系方式", ""):
        parts.append(REFERRAL_FALLBACK)
    parts.append("商务领域的政策和办事问题，欢迎继续问我。")
    return "\n".join(parts)


def _guide_answer(entry: Entry, aspect: str | None, asked: tuple[str, ...] = ()) -> str:
    sections = {name: text for name, text in entry.sections}
    shown = [n for n in dict.fromkeys([*asked, aspect]) if n and n in sections]
    if aspect in shown and len(shown) > 1:  # several sections asked: each under its name
        others = [n for n in sections if n not in shown]
        body = "\n\n".join(f"{n}：\n{sections[n]}" for n in shown)
        more = f"\n\n本指南还包括：{'、'.join(others)}。" if others else ""
        return f"【{entry.title}｜{'、'.join(shown)}】\n{body}{more}"
    if aspect and aspect in sections:
        others = [n for n in sections if n != aspect]
        return f"【{entry.title}｜{aspect}】\n{sections[aspect]}\n\n本指南还包括：{'、'.join(others)}。可以接着问，例如“{entry.title}的{others[0]}”。"
    parts = [f"【{entry.title}】"]
    parts += [f"{name}：\n{sections[name]}" for name in GUIDE_OVERVIEW if name in sections]
    rest = [n for n in sections if n not in GUIDE_OVERVIEW]
    if rest:
        parts.append(f"本指南还包括：{'、'.join(rest)}。可以接着问，例如“{entry.title}要多久”。")
    return "\n\n".join(parts)


def _policy_answer(entry: Entry) -> str:
    if entry.answer:
        return f"{entry.answer}"
    sections = dict((n, t) for n, t in entry.sections)
    parts = [f"【{entry.title}】"]
    for name in ("摘要", "要点", "适用对象"):
        if name in sections:
            parts.append(f"{name}：\n{sections[name]}")
    if len(parts) == 1:
        parts += [f"{n}：\n{t}" for n, t in entry.sections[:2]]
    return "\n\n".join(parts)


def source_of(entry: Entry) -> dict[str, Any]:
    """The provenance object of an answer (``source`` in ``ask --json``)."""
    src = {k: v for k, v in (entry.source or {}).items() if v}
    if entry.kind == "clause" and entry.heading_path:
        src["clause"] = " > ".join(entry.heading_path)
    if entry.office:
        src["office"] = entry.office
    if entry.valid_until:
        src["valid_until"] = entry.valid_until
    if entry.illustrative:
        src["illustrative"] = True
    return src


def citation(entry: Entry, today: date | None = None, section: bool = False) -> str:
    """One line naming the source (title, number, date, clause) and warning when a policy expired;
    none for small talk (its own words, not a source's). ``section``: a clause answered with the
    others of its section (``section_answer``) cites the section."""
    if entry.kind == "smalltalk":
        return ""
    src = entry.source or {}
    parts: list[str] = []
    if src.get("title"):
        parts.append(f"《{src['title']}》")
    for key in ("number", "issuer", "date"):
        if src.get(key):
            parts.append(str(src[key]))
    path = entry.heading_path[:-1] if section else entry.heading_path
    if entry.kind == "clause" and path:
        parts.append("条款：" + " > ".join(path[-2:]))
    line = "来源：" + "，".join(parts) if parts else "来源：本局知识库"
    if src.get("url"):
        line += f"（{src['url']}）"
    if entry.illustrative:
        line += "。部分内容为示例，请以官方最新公布为准"
    elif entry.kind == "referral":
        line += "。号码和渠道以官方最新公布为准"
    if is_expired(entry, today):
        line += f"。⚠ 该政策有效期至{entry.valid_until}，已过期，仅供参考，请以现行规定为准"
    return line


def is_expired(entry: Entry, today: date | None = None) -> bool:
    """True when the entry has a valid-until date in the past."""
    if not entry.valid_until:
        return False
    try:
        return date.fromisoformat(entry.valid_until) < (today or date.today())
    except ValueError:
        return False

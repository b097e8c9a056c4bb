"""Policy documents as ``.txt`` (often extracted from a PDF) or ``.docx``, split into clauses.

PDF extraction breaks lines mid-sentence and leaves blank lines at page breaks, so the text is first
rejoined into one stream and then cut at the Chinese numbering that starts a line: ``一、`` (section),
``（一）`` (subsection) and ``1.`` (item). The head of the document gives its number (文号) and title,
the tail its issuing body and date. Each item's ``（责任科室：…）`` becomes the clause's office (and its
one section, under the document's label: 责任科室, or 责任单位 where it says so).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.importers.base import OUTLINE, ImportFailure, ParsedEntry, check_entry

_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,12}\s*[〔\[［(（]\s*\d{4}\s*[〕\]］)）]\s*\d+\s*号")
_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$")
_CN = "一二三四五六七八九十"
_SECTION = re.compile(rf"^([{_CN}]+)、")
_SUBSECTION = re.compile(rf"^[（(]([{_CN}]+)[）)]")
_ITEM = re.compile(r"^(\d{1,2})[.．、](?!\d)")
_OFFICE = re.compile(r"[（(](责任(?:科室|单位|部门))[:：]\s*((?:[^（）()]|[（(][^（）()]*[）)])+)[）)]\s*$")
_TITLE_WORDS = re.compile(
    r"方案|通知|意见|办法|规定|决定|公告|通告|报告|要点|细则|规划|计划|指南|条例|批复|函"
)
_TITLE_END = re.compile(rf"(?:{_TITLE_WORDS.pattern})$")
_ISSUER_END = re.compile(r"(局|委|办|厅|部|政府|中心|委员会|办公室|院|会|署|处|科|所|站)$")
_BASIS = re.compile(r"根据(.+?)等?文件(?:要求|精神|规定)")
_HAN_GAP = re.compile(
    r"(?<=[\u4e00-\u9fff，。、；：“”（）〔〕《》])\s+|\s+(?=[\u4e00-\u9fff，。、；：“”（）〔〕《》])"
)


@dataclass
class _Clause:
    path: list[str]
    label: str
    lines: list[str] = field(default_factory=list)
    line: int = 0


def read_docx(data: bytes, path: str) -> str:
    """The paragraphs of a .docx file as lines of text."""
    import io

    import docx  # python-docx; imported here so the CLI does not pay for it on every start

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several kinds for a broken package
        raise ImportFailure(path, None, f"not a readable .docx file ({type(exc).__name__})") from exc
    return "\n".join(p.text for p in document.paragraphs)


def tidy(text: str) -> str:
    """Drop the spaces PDF extraction puts between Chinese characters and numbers."""
    return _HAN_GAP.sub("", text).strip()


def parse_policy_text(text: str, path: str) -> list[ParsedEntry]:
    """Parse a policy document into its ``policy`` entry and one ``clause`` entry per numbered item."""
    raw_lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(i, ln) for i, ln in raw_lines if ln]  # page breaks and PDF blank lines go
    if not lines:
        raise ImportFailure(path, 1, "empty document")
    number, title, head_end = _head(lines)
    if not title:
        raise ImportFailure(path, lines[0][0], "no document title found before the first clause")
    issuer, date, tail_start = _tail(lines, head_end)
    body = lines[head_end:tail_start]
    if not any(_SECTION.match(ln) for _, ln in body):
        raise ImportFailure(path, body[0][0] if body else lines[0][0], "no numbered clauses (一、…) found")
    preamble, clauses = _split(body)
    doc_id = _doc_id(number, path)
    basis = _basis(" ".join(preamble.lines))
    entries = [_document_entry(doc_id, title, number, issuer, date, basis, preamble, path, _outline(clauses))]
    if preamble.lines:
        entries.append(_clause_entry(doc_id, "preamble", preamble, title, number, date, issuer, path, 0))
    for pos, clause in enumerate(clauses, 1):
        entries.append(_clause_entry(doc_id, clause.label, clause, title, number, date, issuer, path, pos))
    return [check_entry(e, path, None) for e in entries]


def _head(lines: list[tuple[int, str]]) -> tuple[str, str, int]:
    """Document number and title from the lines before the preamble or the first clause."""
    number, title_parts, i = "", [], 0
    titled = False
    while i < len(lines) and i < 12:
        ln = lines[i][1]
        if _SECTION.match(ln) or ln.startswith("根据") or ln.startswith("为"):
            break
        m = _NUMBER.search(ln)
        if m and not number and len(ln) < 40:
            number = tidy(m.group(0))
        elif titled:
            break  # the title is complete: the preamble starts here, whatever its first word
        elif len(ln) < 60 and not ln.endswith(("。", "，", "；")):
            title_parts.append(ln)
            titled = bool(_TITLE_END.search(ln))
        i += 1
    # A title broken over lines ends at the line naming the document type.
    title = ""
    for part in title_parts:
        title += part
        if _TITLE_WORDS.search(part):
            break
    return number, tidy(title), i


def _tail(lines: list[tuple[int, str]], head_end: int) -> tuple[str, str, int]:
    """Issuing body and date from the last short lines."""
    issuer, date, end = "", "", len(lines)
    while end > head_end:
        ln = lines[end - 1][1]
        m = _DATE.match(ln)
        if m and not date:
            date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        elif not issuer and len(ln) <= 30 and _ISSUER_END.search(ln) and not re.search(r"[。，；：]", ln):
            issuer = tidy(ln)
        else:
            break
        end -= 1
    return issuer, date, end


def _split(body: list[tuple[int, str]]) -> tuple[_Clause, list[_Clause]]:
    """Cut the body at numbered headings; rejoin broken lines inside each piece."""
    preamble = _Clause(["前言"], "前言")
    clauses: list[_Clause] = []
    section = sub = ""
    sec_n = sub_n = 0
    current = preamble
    pending_heading: _Clause | None = None  # a section or subsection whose heading may span lines
    for lineno, ln in body:
        if m := _SECTION.match(ln):
            sec_n, sub_n, section, sub = sec_n + 1, 0, ln, ""
            current = _Clause([section], f"{sec_n}", line=lineno)
            clauses.append(current)
            pending_heading = current
        elif m := _SUBSECTION.match(ln):
            sub_n += 1
            sub = ln
            current = _Clause([section, sub], f"{sec_n}.{sub_n}", line=lineno)
            clauses.append(current)
            pending_heading = current
        elif m := _ITEM.match(ln):
            current = _Clause([section, sub] if sub else [section], "", [ln], line=lineno)
            current.label = f"{sec_n}.{sub_n}.{m.group(1)}" if sub else f"{sec_n}.0.{m.group(1)}"
            clauses.append(current)
            pending_heading = None
        elif (
            pending_heading is not None and not pending_heading.lines and _continues_heading(pending_heading)
        ):
            # The heading line was broken by the PDF: glue the rest back onto it.
            pending_heading.path[-1] += ln
            if len(pending_heading.path) == 2:
                sub = pending_heading.path[-1]
            else:
                section = pending_heading.path[-1]
        else:
            current.lines.append(ln)
            pending_heading = None
    for c in clauses:
        c.path = [tidy(p) for p in c.path]
    # A heading with no text of its own (its items carry it) is not a clause.
    return preamble, [c for c in clauses if c.lines]


def _continues_heading(clause: _Clause) -> bool:
    # Headings are short phrases without a full stop; a long first line that ends mid-phrase goes on.
    head = clause.path[-1]
    return not head.endswith(("。", "：", ":")) and len(head) >= 20


def _doc_id(number: str, path: str) -> str:
    key = re.sub(r"\s+", "", number) if number else Path(path).stem
    return "doc-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _basis(preamble: str) -> str:
    m = _BASIS.search(preamble.replace(" ", ""))
    return tidy(m.group(1)) if m else ""


def _outline(clauses: list[_Clause]) -> str:
    """The document's parts as its headings number them, sections then their subsections, in order
    (一、总体要求；二、主要任务：（一）…；（二）…): what it is about, part by part."""
    parts: dict[str, list[str]] = {}
    for c in clauses:
        subs = parts.setdefault(c.path[0], [])
        if len(c.path) > 1 and c.path[1] not in subs:
            subs.append(c.path[1])
    return "；".join(f"{head}：{'；'.join(subs)}" if subs else head for head, subs in parts.items())


def _document_entry(
    doc_id: str,
    title: str,
    number: str,
    issuer: str,
    date: str,
    basis: str,
    preamble: _Clause,
    path: str,
    outline: str = "",
) -> ParsedEntry:
    facts = [f"《{title}》"]
    if number:
        facts.append(f"文号：{number}")
    if issuer:
        facts.append(f"发布机关：{issuer}")
    if date:
        y, m, d = date.split("-")
        facts.append(f"落款日期：{int(y)}年{int(m)}月{int(d)}日")
    if basis:
        facts.append(f"制定依据：{basis}")
    summary = tidy("".join(preamble.lines))
    # The document's own facts, then its preamble (why it was made), answer "what is this document".
    answer = "\n".join(facts) + (f"\n\n制定目的：{summary}" if summary else "")
    answer += f"\n\n{OUTLINE}：{outline}" if outline else ""
    return ParsedEntry(
        id=doc_id,
        kind="policy",
        title=title,
        answer=answer,
        sections=[["文件信息", "\n".join(facts)]]
        + ([["前言", summary]] if summary else [])
        + ([[OUTLINE, outline]] if outline else []),
        category="政策文件",
        tags=["文件信息"],
        source={
            k: v for k, v in {"title": title, "number": number, "date": date, "issuer": issuer}.items() if v
        },
        publish_date=date,
        origin=path,
    )


def _clause_entry(
    doc_id: str,
    label: str,
    clause: _Clause,
    title: str,
    number: str,
    date: str,
    issuer: str,
    path: str,
    position: int,
) -> ParsedEntry:
    text = tidy("".join(clause.lines))
    office, sections = "", []
    if m := _OFFICE.search(text):
        # (the office as the document labels it: 责任科室, or 责任单位 for some items)
        office = tidy(m.group(2))
        sections = [[m.group(1), office]]
        text = text[: m.start()].rstrip()
    heading = list(clause.path)
    if clause.lines and _ITEM.match(clause.lines[0]):
        first = re.split(r"(?<=。)", text, maxsplit=1)[0]
        heading.append(first.rstrip("。"))
    short = heading[-1]
    src = {"title": title, "number": number, "date": date, "issuer": issuer}
    return ParsedEntry(
        id=f"{doc_id}/{label}",
        kind="clause",
        title=short,
        answer=text,
        sections=sections,
        category="政策文件",
        source={k: v for k, v in src.items() if v},
        heading_path=heading,
        office=office,
        parent_id=doc_id,
        position=position,
        publish_date=date,
        origin=path,
    )

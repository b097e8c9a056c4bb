"""Guides and policy interpretations as Markdown with TOML front matter between ``+++`` lines.

``## `` headings are sections. A policy's ``## 问答`` section holds Q&A pairs: each ``### `` heading is
a question and the text under it the answer; they become FAQ entries ``<id>#qa<N>`` of the policy. A
line right under the question that starts with ``也问：`` lists other ways of asking it, separated by
``｜`` (or ``|``): the entry's alternates, as an FAQ file's.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from knowledge.importers.base import GUIDE_SECTIONS, ImportFailure, ParsedEntry, check_entry

_FRONT_KEYS = {
    "id", "kind", "title", "category", "tags", "status", "illustrative", "updated", "source",
    "number", "issuer", "publish_date", "valid_until", "alternates",
}  # fmt: skip
QA_SECTION = "问答"
ALSO_ASKED = re.compile(r"^也问[：:](.*)$")  # other ways of asking a Q&A's question, under it


def parse_markdown(text: str, path: str) -> list[ParsedEntry]:
    """Parse one guide or policy file into its entry (and a policy's Q&A entries)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "+++":
        raise ImportFailure(path, 1, "expected TOML front matter starting with a '+++' line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise ImportFailure(path, 1, "front matter is not closed by a '+++' line") from None
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise ImportFailure(path, _toml_line(exc), f"front matter is not valid TOML: {exc}") from exc
    unknown = set(meta) - _FRONT_KEYS
    if unknown:
        raise ImportFailure(path, 2, f"unknown front matter key(s) {', '.join(sorted(unknown))}")
    kind = meta.get("kind", "guide")
    if kind not in ("guide", "policy"):
        raise ImportFailure(path, 2, f"kind must be 'guide' or 'policy', got {kind!r}")
    if not isinstance(meta.get("id"), str):
        raise ImportFailure(path, 2, "front matter needs an id")
    sections = _sections(lines, end + 1, path)
    source = meta.get("source", {})
    if not isinstance(source, dict):
        raise ImportFailure(path, 2, "source must be a table")
    source = {k: str(v) for k, v in source.items()}
    if kind == "policy":
        source.setdefault("number", str(meta.get("number", "")))
        source.setdefault("issuer", str(meta.get("issuer", "")))
        source = {k: v for k, v in source.items() if v}
    entry = ParsedEntry(
        id=meta["id"],
        kind=kind,
        title=str(meta.get("title", "")),
        alternates=meta.get("alternates", []),
        category=str(meta.get("category", "")),
        tags=meta.get("tags", []),
        status=meta.get("status", "published"),
        source=source,
        illustrative=meta.get("illustrative", False),
        publish_date=_date(meta.get("publish_date", ""), path),
        valid_until=_date(meta.get("valid_until", ""), path),
        origin=path,
    )
    qa: list[tuple[int, str, list[str], str]] = []
    body: list[list[str]] = []
    for lineno, name, content in sections:
        if kind == "policy" and name == QA_SECTION:
            qa = _qa_pairs(content, lineno, path)
        else:
            body.append([name, content.strip()])
    entry.sections = body
    if kind == "guide":
        names = [n for n, _ in body]
        missing = [s for s in GUIDE_SECTIONS if s not in names]
        if missing:
            raise ImportFailure(path, end + 1, f"guide lacks section(s): {', '.join(missing)}")
        empty = [n for n, t in body if not t]
        if empty:
            raise ImportFailure(path, end + 1, f"empty section(s): {', '.join(empty)}")
    elif not body:
        raise ImportFailure(path, end + 1, "a policy needs at least one '## ' section (e.g. ## 摘要)")
    out = [check_entry(entry, path, 2)]
    for n, (lineno, question, also, answer) in enumerate(qa, 1):
        child = ParsedEntry(
            id=f"{entry.id}#qa{n}",
            kind="faq",
            title=entry.title,
            question=question,
            alternates=also,
            answer=answer,
            category=entry.category,
            tags=list(entry.tags),
            status=entry.status,
            source=dict(entry.source),
            illustrative=entry.illustrative,
            publish_date=entry.publish_date,
            valid_until=entry.valid_until,
            parent_id=entry.id,
            position=n,
            origin=path,
        )
        out.append(check_entry(child, path, lineno))
    return out


def _sections(lines: list[str], start: int, path: str) -> list[tuple[int, str, str]]:
    out: list[tuple[int, str, list[str]]] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if line.startswith("## "):
            name = line[3:].strip()
            if not name:
                raise ImportFailure(path, i + 1, "empty section heading")
            if any(n == name for _, n, _ in out):
                raise ImportFailure(path, i + 1, f"section {name!r} appears twice")
            out.append((i + 1, name, []))
        elif out:
            out[-1][2].append(line)
        elif line.strip():
            raise ImportFailure(path, i + 1, "text before the first '## ' section")
    return [(ln, n, "\n".join(body).strip()) for ln, n, body in out]


def _qa_pairs(content: str, first_line: int, path: str) -> list[tuple[int, str, list[str], str]]:
    """(line, question, its other wordings, answer) of each ``### `` pair of a ``## 问答`` section."""
    pairs: list[tuple[int, str, list[str], list[str]]] = []
    for offset, line in enumerate(content.splitlines(), 1):
        if line.startswith("### "):
            pairs.append((first_line + offset, line[4:].strip(), [], []))
        elif pairs and not "".join(pairs[-1][3]).strip() and (also := ALSO_ASKED.match(line.strip())):
            wordings = [w.strip() for w in re.split(r"[｜|]", also.group(1)) if w.strip()]
            if not wordings:
                raise ImportFailure(path, first_line + offset, "'也问：' lists no question")
            pairs[-1][2].extend(wordings)
        elif pairs:
            pairs[-1][3].append(line)
        elif line.strip():
            raise ImportFailure(path, first_line + offset, "Q&A text before the first '### ' question")
    out = [(ln, q, also, "\n".join(a).strip()) for ln, q, also, a in pairs]
    for ln, q, _, a in out:
        if not q or not a:
            raise ImportFailure(path, ln, "a Q&A pair needs a question and an answer")
    return out


def _date(value: Any, path: str) -> str:
    # TOML dates arrive as datetime.date; strings are checked by check_entry.
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def _toml_line(exc: tomllib.TOMLDecodeError) -> int:
    m = re.search(r"line (\d+)", str(exc))
    return int(m.group(1)) + 1 if m else 2

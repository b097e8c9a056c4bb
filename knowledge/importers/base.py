"""What every importer produces: validated ``ParsedEntry`` values, or an ``ImportFailure``."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("faq", "guide", "policy", "clause", "smalltalk", "referral")
DESK_KINDS = (
    "smalltalk",
    "referral",
)  # the front desk's replies (knowledge/data/desk), not the bureau's knowledge
STATUSES = ("published", "draft", "expired")
GUIDE_SECTIONS = (
    "事项名称",
    "设定依据",
    "办理条件",
    "申请材料",
    "办理流程",
    "办理时限",
    "收费标准",
    "办理地点与时间",
    "咨询电话",
    "在线办理",
)
# A parsed document's section listing its parts by their headings (knowledge/importers/policy_text.py);
# not indexed with it, as its clauses' own words (knowledge/index.py).
OUTLINE = "文件结构"
# A referral's sections: the body responsible and how to reach it are required, a note is optional.
REFERRAL_SECTIONS = ("主管部门", "联系方式", "说明")
REFERRAL_REQUIRED = REFERRAL_SECTIONS[:2]
SOURCE_KEYS = ("title", "number", "date", "issuer", "url", "note")
_ID = re.compile(r"^[^\s/\\?#<>\"'][^\s\\?<>\"']{0,199}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ImportFailure(ValueError):
    """A file that cannot be imported: ``file:line: reason``. Nothing from it is written."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


@dataclass
class ParsedEntry:
    """An entry as read from a file, before it meets the database."""

    id: str
    kind: str
    title: str = ""
    question: str = ""
    alternates: list[str] = field(default_factory=list)
    answer: str = ""
    sections: list[list[str]] = field(default_factory=list)
    category: str = ""
    tags: list[str] = field(default_factory=list)
    status: str = "published"
    source: dict[str, Any] = field(default_factory=dict)
    illustrative: bool = False
    publish_date: str = ""
    valid_until: str = ""
    parent_id: str | None = None
    heading_path: list[str] = field(default_factory=list)
    office: str = ""
    position: int = 0
    origin: str = ""

    def content_hash(self) -> str:
        """A digest of everything but the origin: equal hashes mean an unchanged entry. (The fields
        hold only strings, numbers, lists and dicts, so no deep copy through ``asdict`` is needed: it
        was a fifth of a large import's time in the main process, for the same digest.)"""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "origin"}
        return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()

    def as_record(self) -> dict[str, Any]:
        """The export form: every field, origin left out (it is where the file came from), its lists
        and dicts copied (``asdict``'s generic deep copy was most of the time a large import spent
        keeping revisions)."""
        return {f.name: _copied(getattr(self, f.name)) for f in fields(self) if f.name != "origin"}


def _copied(value: Any) -> Any:
    """A copy of a field's value: its lists and dicts copied at every level, the strings and numbers
    in them shared (immutable, where ``asdict`` deep-copies each one)."""
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


_MAX_CHARS = {"category": 100, "office": 200}  # the columns' lengths (knowledge/models.py)


def _texts(e: ParsedEntry) -> list[tuple[str, str]]:
    """Every piece of text of an entry with its field name (after the type checks)."""
    out = [(n, getattr(e, n)) for n in ("id", "title", "question", "answer", "category", "office")]
    out += [("parent_id", e.parent_id or "")]
    out += [("alternates", a) for a in e.alternates] + [("tags", t) for t in e.tags]
    out += [("sections", x) for s in e.sections for x in s] + [("heading_path", h) for h in e.heading_path]
    out += [("source", str(k)) for k in e.source] + [("source", v) for v in e.source.values()]
    return out


def check_entry(e: ParsedEntry, path: str, line: int | None) -> ParsedEntry:
    """Validate fields common to all kinds; raise ImportFailure with the reason."""

    def fail(reason: str) -> None:
        raise ImportFailure(path, line, reason)

    if not isinstance(e.id, str) or not _ID.match(e.id):
        fail(f"invalid id {e.id!r}: 1-200 characters, no spaces, quotes or \\ ? < >")
    if e.kind not in KINDS:
        fail(f"unknown kind {e.kind!r} (one of {', '.join(KINDS)})")
    if e.status not in STATUSES:
        fail(f"unknown status {e.status!r} (one of {', '.join(STATUSES)})")
    for name in ("title", "question", "answer", "category", "publish_date", "valid_until", "office"):
        if not isinstance(getattr(e, name), str):
            fail(f"{name} must be text")
    for name in ("publish_date", "valid_until"):
        value = getattr(e, name)
        if value and not _DATE.match(value):
            fail(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    if not isinstance(e.alternates, list) or not all(isinstance(a, str) for a in e.alternates):
        fail("alternates must be a list of text")
    if not isinstance(e.tags, list) or not all(isinstance(a, str) for a in e.tags):
        fail("tags must be a list of text")
    if not isinstance(e.source, dict):
        fail("source must be a table/object")
    unknown = set(e.source) - set(SOURCE_KEYS)
    if unknown:
        fail(f"unknown source key(s) {', '.join(sorted(unknown))} (known: {', '.join(SOURCE_KEYS)})")
    if not all(isinstance(v, str) for v in e.source.values()):
        fail("source values must be text")
    if not isinstance(e.illustrative, bool):
        fail("illustrative must be true or false")
    # The fields an export line may carry besides the FAQ ones: check them as strictly, so that a bad
    # value is reported here and not by the database (or the index) halfway through the write.
    if not isinstance(e.sections, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in e.sections
    ):
        fail("sections must be a list of [name, text] pairs")
    if not isinstance(e.heading_path, list) or not all(isinstance(h, str) for h in e.heading_path):
        fail("heading_path must be a list of text")
    if not isinstance(e.position, int) or isinstance(e.position, bool) or not -(2**31) <= e.position < 2**31:
        fail("position must be a whole number")
    if e.parent_id is not None and (not isinstance(e.parent_id, str) or not _ID.match(e.parent_id)):
        fail(f"invalid parent_id {e.parent_id!r}")
    for name, limit in _MAX_CHARS.items():
        if len(getattr(e, name)) > limit:
            fail(f"{name} longer than {limit} characters")
    for name, text in _texts(e):
        if "\x00" in text:
            fail(f"{name} contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            fail(f"{name} is not valid Unicode text (a lone surrogate)")
    if e.kind == "faq" and (not e.question.strip() or not e.answer.strip()):
        fail("an faq needs a non-empty question and answer")
    if e.kind in ("guide", "policy") and not e.title.strip():
        fail(f"a {e.kind} needs a title")
    if e.kind == "clause" and not (e.answer.strip() or e.sections):
        fail("a clause needs its text")
    if e.kind == "smalltalk" and (not e.question.strip() or not e.answer.strip()):
        fail("a smalltalk entry needs a non-empty question and answer")
    if e.kind == "referral":
        _check_referral(e, fail)
    e.alternates = [a.strip() for a in e.alternates if a.strip()]
    return e


def _check_referral(e: ParsedEntry, fail: Callable[[str], None]) -> None:
    """A referral names the matter (title, question), the body responsible and how to reach it."""
    if not e.title.strip() or not e.question.strip():
        fail("a referral needs a title (the matter) and a question")
    names = [n for n, _ in e.sections]
    missing = [s for s in REFERRAL_REQUIRED if s not in names]
    if missing:
        fail(f"a referral lacks section(s): {', '.join(missing)}")
    unknown = [n for n in names if n not in REFERRAL_SECTIONS]
    if unknown:
        fail(f"unknown referral section(s) {', '.join(unknown)} (known: {', '.join(REFERRAL_SECTIONS)})")
    if any(not t.strip() for _, t in e.sections):
        fail("a referral section is empty")

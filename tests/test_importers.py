"""Importers (knowledge/importers/) and the knowledge base's import path (knowledge/store.py).

Every file is parsed and validated before anything is written; a malformed one fails with
``file:line: reason`` and nothing of any file of that import is written. Re-importing is idempotent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from bot.services import Services
from knowledge.answers import answer_text
from knowledge.importers import ImportFailure, _columns, expand_paths, parse_file, parse_paths
from knowledge.importers.base import OUTLINE, ParsedEntry
from knowledge.index import entry_fields
from knowledge.models import Entry
from tests.conftest import seed_path

BAD = Path(__file__).parent / "data" / "bad"
DOC = "doc-7a78d0a404"  # the seed document's id (from its number 鼓商务〔2020〕123号)

# -- small well-formed files ------------------------------------------------------------------------

FAQ_JSONL = "\n".join(
    json.dumps(r, ensure_ascii=False)
    for r in [
        {
            "id": "t-faq-1",
            "question": "跨境电商综试区的企业怎么申请出口退税？",
            "answer": "跨境电商出口企业向主管税务机关申报出口退税，商务局不受理退税申请。",
            "alternates": ["跨境电商出口退税找谁", "综试区出口退税怎么办理"],
            "category": "外贸外资",
            "tags": ["跨境电商", "出口退税"],
            "source": {"title": "测试来源", "date": "2020-01-01"},
        },
        {
            "id": 42,
            "question": "展会补贴什么时候发放？",
            "answer": "展会补贴在展会结束后按批次审核发放。",
            "alternates": "展会补助何时发|参展补贴多久到账",
            "source": "某通知",
        },
    ]
)

FAQ_CSV = (
    "id,question,answer,alternates,category,illustrative,source\n"
    't-csv-1,夜间经济示范街区怎么申报？,向区商务局提交申报书和街区运营方案。,夜经济街区申报|夜市街区怎么报,消费促进,true,"{""title"": ""夜间经济通知"", ""date"": ""2021-05-06""}"\n'
    "t-csv-2,老字号认定需要什么条件？,企业品牌创立五十年以上并传承独特技艺。,,消费促进,,\n"
)

GUIDE_MD = """+++
id = "t-guide-exhibition"
kind = "guide"
title = "境外展会参展备案"
category = "外贸外资"
tags = ["展会", "参展"]
publish_date = 2021-03-04

[source]
title = "测试指南来源"
+++
## 事项名称
境外展会参展备案。

## 设定依据
某办法第三条。

## 办理条件
在本区注册的外贸企业。

## 申请材料
1. 参展申请表；
2. 营业执照复印件；
3. 展位确认函。

## 办理流程
网上提交，窗口审核。

## 办理时限
五个工作日。

## 收费标准
不收费。

## 办理地点与时间
区行政服务中心3楼商务窗口，工作日上午。

## 咨询电话
0591-00000000

## 在线办理
福建省网上办事大厅。
"""

POLICY_MD = """+++
id = "t-policy-night"
kind = "policy"
title = "夜间经济扶持政策解读"
number = "测商务〔2021〕7号"
issuer = "测试区商务局"
publish_date = 2021-05-06
valid_until = 2021-12-31
category = "消费促进"

[source]
title = "关于扶持夜间经济发展的通知"
date = "2021-05-06"
+++
## 摘要
对夜间经济示范街区给予一次性奖励。

## 问答
### 示范街区奖励多少钱？
每个示范街区一次性奖励二十万元。

### 谁来申报？
街区运营主体向区商务局申报。
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


# -- the seed document -------------------------------------------------------------------------------

SEED_LABELS = [
    "preamble",
    "1",
    "2.1.1", "2.1.2", "2.1.3",
    "2.2.1", "2.2.2",
    "2.3.1", "2.3.2", "2.3.3",
    "2.4.1", "2.4.2",
    "2.5.1", "2.5.2", "2.5.3",
    "2.6.1", "2.6.2",
]  # fmt: skip

SUBSECTIONS = {
    "2.1": "（一）围绕贯彻落实党的十九届四中全会精神加强用权公开",
    "2.2": "（二）围绕“六稳”、“六保”加强政策发布解读",
    "2.3": "（三）围绕优化营商环境加强政务信息公开",
    "2.4": "（四）围绕突发事件应对加强公共卫生信息公开",
    "2.5": "（五）围绕落实新修订的政府信息公开条例加强制度执行",
    "2.6": "（六）强化做好政务公开工作的各项保障措施",
}

ITEM_HEADINGS = {
    "2.1.1": "1.以权责清单为依托，加强权力配置信息公开",
    "2.1.2": "2.以基层政务公开标准化规范化为抓手，加强权力运行过程信息公开",
    "2.1.3": "3.以规范性文件为重点，加强政务信息管理",
    "2.2.1": "1.助力做好“六稳”工作",
    "2.2.2": "2.助力落实“六保”任务",
    "2.3.1": "1.提高市场监管规则和标准公开质量",
    "2.3.2": "2.提高政务服务透明度便利度",
    "2.3.3": "3.提高经济政策发布解读针对性精准性",
    "2.4.1": "1.加强公共卫生知识普及",
    "2.4.2": "2.严格依法保护各项法定权利",
    "2.5.1": "1.落实政府信息主动公开新要求",
    "2.5.2": "2.规范政府信息公开申请办理工作",
    "2.5.3": "3.加强政府网站与政务新媒体建设",
    "2.6.1": "1.明确领导责任",
    "2.6.2": "2.强化培训工作",
}

OFFICES = {
    "preamble": "",
    "1": "",
    "2.1.1": "办公室",
    "2.1.2": "各科室",
    "2.1.3": "各科室",
    "2.2.1": "各科室",
    "2.2.2": "各科室",  # "（责任科室：" and "各科室）" are on two lines of the source
    "2.3.1": "外资与外经科（行政审批科）",  # nested parentheses
    "2.3.2": "外资与外经科（行政审批科）",  # nested, and broken over two lines
    "2.3.3": "各科室",  # （责任单位：各科室）
    "2.4.1": "市场秩序科",
    "2.4.2": "各科室",
    "2.5.1": "办公室",
    "2.5.2": "办公室",
    "2.5.3": "各科室",
    "2.6.1": "",  # 明确领导责任 names no office
    "2.6.2": "",
}


@pytest.fixture(scope="module")
def seed_entries() -> dict[str, ParsedEntry]:
    return {e.id: e for e in parse_file(seed_path())}


def test_seed_document_facts(seed_entries: dict[str, ParsedEntry]) -> None:
    doc = seed_entries[DOC]
    assert doc.kind == "policy"
    assert doc.title == "鼓楼区商务局2020年政务公开工作实施方案"
    assert doc.source == {
        "title": "鼓楼区商务局2020年政务公开工作实施方案",
        "number": "鼓商务〔2020〕123号",
        "date": "2020-11-12",
        "issuer": "福州市鼓楼区商务局",
    }
    assert doc.publish_date == "2020-11-12"
    facts = dict(doc.sections)["文件信息"]
    assert "文号：鼓商务〔2020〕123号" in facts
    assert "发布机关：福州市鼓楼区商务局" in facts
    assert "落款日期：2020年11月12日" in facts
    basis = next(line for line in facts.splitlines() if line.startswith("制定依据："))
    for document in [
        "《国务院办公厅关于印发2020年政务公开工作要点的通知》（国办发〔2020〕17号）",
        "福州市人民政府办公厅关于贯彻《2020年政务公开工作要点》的通知",
        "《福州市鼓楼区人民政府办公室关于印发鼓楼区2020年政务公开工作要点的通知》（鼓政办〔2020〕65号）",
    ]:
        assert document in basis


def test_seed_document_lists_its_parts(seed_entries: dict[str, ParsedEntry]) -> None:
    """The document's outline: its sections, then each one's subsections, in order, as numbered."""
    outline = dict(seed_entries[DOC].sections)[OUTLINE]
    subsections = "；".join(SUBSECTIONS[k] for k in sorted(SUBSECTIONS))
    assert outline == f"一、总体要求；二、主要任务：{subsections}"
    assert seed_entries[DOC].answer.endswith(f"{OUTLINE}：{outline}")


def test_the_outline_is_not_indexed_with_the_document(seed_entries: dict[str, ParsedEntry]) -> None:
    """Its parts' headings are its clauses' own words: indexed with the document, they would draw
    every clause's question to it. The rest of its answer is indexed."""
    key, body, _ = entry_fields(Entry(**_columns(seed_entries[DOC])))
    assert "围绕优化营商环境加强政务信息公开" not in body
    assert "落款日期" in body and "主要内容" in key


def test_seed_document_is_split_into_every_clause(seed_entries: dict[str, ParsedEntry]) -> None:
    clauses = [e for e in seed_entries.values() if e.kind == "clause"]
    assert [e.id.split("/", 1)[1] for e in sorted(clauses, key=lambda e: e.position)] == SEED_LABELS
    assert [e.position for e in sorted(clauses, key=lambda e: e.position)] == list(range(len(SEED_LABELS)))
    for e in clauses:
        assert e.parent_id == DOC
        assert e.source["number"] == "鼓商务〔2020〕123号"
        assert e.answer and e.answer.endswith("。"), e.id
        # PDF gaps and line breaks are gone: no whitespace left inside the Chinese text
        assert not re.search(r"\s", e.answer), (e.id, e.answer)
        assert "责任科室" not in e.answer and "责任单位" not in e.answer, e.id


def test_seed_heading_paths_are_rejoined(seed_entries: dict[str, ParsedEntry]) -> None:
    assert seed_entries[f"{DOC}/preamble"].heading_path == ["前言"]
    assert seed_entries[f"{DOC}/1"].heading_path == ["一、总体要求"]
    assert seed_entries[f"{DOC}/1"].title == "一、总体要求"
    for label, item in ITEM_HEADINGS.items():
        e = seed_entries[f"{DOC}/{label}"]
        sub = SUBSECTIONS[label.rsplit(".", 1)[0]]
        assert e.heading_path == ["二、主要任务", sub, item], label
        assert e.title == item
        assert e.answer.startswith(item + "。")


def test_seed_offices(seed_entries: dict[str, ParsedEntry]) -> None:
    assert {e.id.split("/", 1)[1]: e.office for e in seed_entries.values() if e.kind == "clause"} == OFFICES


def test_an_office_is_shown_under_the_documents_own_label(seed_entries: dict[str, ParsedEntry]) -> None:
    """(三)3 names its office 责任单位, the others 责任科室: the answer quotes the document, not the
    importer's word for it (it had said 责任科室 for all)."""
    unit, office = seed_entries[f"{DOC}/2.3.3"], seed_entries[f"{DOC}/2.1.1"]
    assert (unit.office, unit.sections) == ("各科室", [["责任单位", "各科室"]])
    assert (office.office, office.sections) == ("办公室", [["责任科室", "办公室"]])
    assert answer_text(Entry(**_columns(unit))).endswith("增强解读回应实际效果。\n（责任单位：各科室）")
    assert answer_text(Entry(**_columns(office))).endswith("\n（责任科室：办公室）")


def test_seed_text_is_rejoined_across_page_breaks(seed_entries: dict[str, ParsedEntry]) -> None:
    overall = seed_entries[f"{DOC}/1"].answer
    assert "着力提升政务公开工作质量和实效，推动全局政务公开工作规范化、透明化、信息化" in overall
    assert "聚焦做好“六稳”工作、落实“六保”任务" in overall
    assert "要在12小时内转载转发" in seed_entries[f"{DOC}/2.5.3"].answer
    assert "2020年底前初步解决底数不清" in seed_entries[f"{DOC}/2.1.3"].answer
    assert "围绕全区经济工作会议精神和《政府工作报告》的要求" in seed_entries[f"{DOC}/2.2.1"].answer
    assert seed_entries[f"{DOC}/preamble"].answer.startswith(
        "根据《国务院办公厅关于印发2020年政务公开工作要点的通知》"
    )


async def test_seed_document_answers_its_number(seeded: Services) -> None:
    assert await seeded.kb.count() == 18
    d = await seeded.qa.ask("这个方案的文号是多少？")
    assert d.status == "answered"
    assert d.entry_id == DOC
    assert "鼓商务〔2020〕123号" in (d.answer or "")
    assert d.source is not None and d.source["number"] == "鼓商务〔2020〕123号"


def test_gb18030_text_document_reads_like_utf8(tmp_path: Path) -> None:
    text = seed_path().read_text(encoding="utf-8")
    gb = write(tmp_path, "seed-gb.txt", text, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        gb.read_bytes().decode("utf-8")  # really not UTF-8
    utf = write(tmp_path, "seed-utf8.txt", text)
    a, b = parse_file(gb), parse_file(utf)
    assert [e.as_record() for e in a] == [e.as_record() for e in b]
    assert len(a) == 18


def test_utf8_with_bom_and_crlf(tmp_path: Path) -> None:
    text = seed_path().read_text(encoding="utf-8").replace("\n", "\r\n")
    p = tmp_path / "seed-bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    entries = {e.id: e for e in parse_file(p)}
    assert entries[DOC].source["number"] == "鼓商务〔2020〕123号"
    assert len(entries) == 18


DOCX_PARAGRAPHS = [
    "测商务〔2021〕8号",
    "",
    "测试区商务局关于促进夜间经济发展的实施意见",
    "按照区委区政府关于扩大消费的部署，结合本区实际，制定本意见。",
    "一、工作目标",
    "到2022年底，建成两条夜间经济示范街区。",
    "二、重点任务",
    "（一）培育夜间消费场景",
    "1.打造特色夜市。支持街区引入特色餐饮和文创市集，延长营业时间至晚上十二点。（责任科室：市场秩序科）",
    "2.丰富夜间文旅活动。举办夜间演出和灯光秀。（责任单位：各科室）",
    "（二）完善配套服务",
    "1.优化夜间交通。增加夜间公交线路。",
    "测试区商务局",
    "2021年6月1日",
]


def build_docx(path: Path, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


def test_docx_policy_document(tmp_path: Path) -> None:
    path = build_docx(tmp_path / "夜间经济.docx", DOCX_PARAGRAPHS)
    entries = {e.id: e for e in parse_file(path)}
    doc = next(e for e in entries.values() if e.kind == "policy")
    assert doc.title == "测试区商务局关于促进夜间经济发展的实施意见"
    assert doc.source == {
        "title": "测试区商务局关于促进夜间经济发展的实施意见",
        "number": "测商务〔2021〕8号",
        "date": "2021-06-01",
        "issuer": "测试区商务局",
    }
    clauses = sorted((e for e in entries.values() if e.kind == "clause"), key=lambda e: e.position)
    assert [c.id.split("/", 1)[1] for c in clauses] == ["preamble", "1", "2.1.1", "2.1.2", "2.2.1"]
    by = {c.id.split("/", 1)[1]: c for c in clauses}
    # the preamble is kept although it does not start with 根据 or 为
    assert by["preamble"].answer == "按照区委区政府关于扩大消费的部署，结合本区实际，制定本意见。"
    assert by["1"].answer == "到2022年底，建成两条夜间经济示范街区。"
    assert by["2.1.1"].heading_path == ["二、重点任务", "（一）培育夜间消费场景", "1.打造特色夜市"]
    assert by["2.1.1"].office == "市场秩序科"
    assert by["2.1.2"].office == "各科室"
    assert by["2.2.1"].heading_path == ["二、重点任务", "（二）完善配套服务", "1.优化夜间交通"]
    assert by["2.2.1"].office == ""


async def test_docx_document_is_searchable(services: Services, tmp_path: Path) -> None:
    path = build_docx(tmp_path / "夜间经济.docx", DOCX_PARAGRAPHS)
    counts = await services.kb.import_paths([path])
    assert counts.added == 6
    d = await services.qa.ask("特色夜市营业时间延长到几点")
    assert d.status == "answered"
    assert d.entry_id is not None and d.entry_id.endswith("/2.1.1")
    assert "责任科室：市场秩序科" in (d.answer or "")


# -- FAQ and Markdown files --------------------------------------------------------------------------


def test_jsonl_faq(tmp_path: Path) -> None:
    entries = parse_file(write(tmp_path, "faq.jsonl", FAQ_JSONL + "\n\n"))
    a, b = entries
    assert (a.id, a.kind, a.category) == ("t-faq-1", "faq", "外贸外资")
    assert a.alternates == ["跨境电商出口退税找谁", "综试区出口退税怎么办理"]
    assert a.source == {"title": "测试来源", "date": "2020-01-01"}
    assert b.id == "42"  # numbered corpora keep their number as the id
    assert b.alternates == ["展会补助何时发", "参展补贴多久到账"]
    assert b.source == {"title": "某通知"}
    assert b.status == "published"


def test_csv_faq(tmp_path: Path) -> None:
    a, b = parse_file(write(tmp_path, "faq.csv", FAQ_CSV))
    assert a.id == "t-csv-1"
    assert a.alternates == ["夜经济街区申报", "夜市街区怎么报"]
    assert a.illustrative is True
    assert a.source == {"title": "夜间经济通知", "date": "2021-05-06"}
    assert b.alternates == [] and b.illustrative is False and b.source == {}


def test_csv_line_endings_and_quoted_line_breaks(tmp_path: Path) -> None:
    text = 'id,question,answer\r1,问题一？,答案一。\r2,"跨两行的\r\n问题？","答案，含逗号。"\r\n'
    path = tmp_path / "mac.csv"
    path.write_bytes(text.encode("utf-8"))
    a, b = parse_file(path)
    assert (a.id, a.question, a.answer) == ("1", "问题一？", "答案一。")
    assert (b.id, b.question, b.answer) == ("2", "跨两行的\r\n问题？", "答案，含逗号。")
    bad = tmp_path / "bad.csv"
    bad.write_bytes('id,question,answer\r1,"没有结束的引号,答\r'.encode())
    with pytest.raises(ImportFailure, match=r"bad\.csv:\d+: "):
        parse_file(bad)


def test_markdown_guide(tmp_path: Path) -> None:
    (g,) = parse_file(write(tmp_path, "guide.md", GUIDE_MD))
    assert (g.id, g.kind, g.title) == ("t-guide-exhibition", "guide", "境外展会参展备案")
    assert g.publish_date == "2021-03-04"  # a TOML date
    names = [n for n, _ in g.sections]
    assert names[:4] == ["事项名称", "设定依据", "办理条件", "申请材料"]
    assert dict(g.sections)["申请材料"].startswith("1. 参展申请表")


def test_markdown_policy_with_questions(tmp_path: Path) -> None:
    p, q1, q2 = parse_file(write(tmp_path, "policy.md", POLICY_MD))
    assert p.kind == "policy" and p.valid_until == "2021-12-31"
    assert p.source["number"] == "测商务〔2021〕7号" and p.source["issuer"] == "测试区商务局"
    assert [n for n, _ in p.sections] == ["摘要"]
    assert (q1.id, q1.kind, q1.parent_id, q1.position) == ("t-policy-night#qa1", "faq", p.id, 1)
    assert q1.question == "示范街区奖励多少钱？" and q1.answer == "每个示范街区一次性奖励二十万元。"
    assert q2.id == "t-policy-night#qa2" and q2.valid_until == "2021-12-31"
    assert q1.alternates == [] and q2.alternates == []


def test_a_policy_question_lists_other_ways_of_asking_it(tmp_path: Path) -> None:
    """A 也问： line right under a ### question lists its alternates (｜ or |, several lines allowed);
    one further down is answer text."""
    text = POLICY_MD.replace(
        "### 示范街区奖励多少钱？\n",
        "### 示范街区奖励多少钱？\n\n也问：街区奖励有多少｜示范街能拿几万 \n也问:奖多少钱|\n",
    ).replace("街区运营主体向区商务局申报。", "街区运营主体向区商务局申报。\n也问：这一行是答案")
    _, q1, q2 = parse_file(write(tmp_path, "policy.md", text))
    assert q1.alternates == ["街区奖励有多少", "示范街能拿几万", "奖多少钱"]
    assert q1.answer == "每个示范街区一次性奖励二十万元。"
    assert q2.alternates == [] and q2.answer.endswith("也问：这一行是答案")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "corpus.jsonl",
            '{"id": "u-1", "question": "问题？", "answer": "答案。", "url": "http://x", "label": 3}\n',
        ),
        ("corpus.csv", "id,question,answer,url,label\nu-1,问题？,答案。,http://x,3\n"),
        (
            "numbered.jsonl",
            '{"id": 7, "question": "问题？", "answer": "答案。", "category": 2, "url": "", "label": 3}\n',
        ),
    ],
)
def test_a_corpus_s_own_fields_are_ignored_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, text: str
) -> None:
    """A third-party FAQ corpus may carry fields of its own (and number its ids and categories): the
    entries import, and a warning names what was left out (a typo such as ``alternate`` would show)."""
    with caplog.at_level("WARNING", logger="policybot.import"):
        [e] = parse_file(write(tmp_path, name, text))
    assert (e.question, e.answer) == ("问题？", "答案。") and (e.id, e.category) in (("u-1", ""), ("7", "2"))
    assert "ignored unknown field(s) label (1 line), url (1 line)" in caplog.text


def test_an_export_line_with_an_unknown_field_is_rejected(tmp_path: Path) -> None:
    line = {"kind": "faq", "id": "u-1", "question": "问题？", "answer": "答案。", "colour": "red"}
    with pytest.raises(ImportFailure, match="unknown field"):
        parse_file(write(tmp_path, "export.jsonl", json.dumps(line, ensure_ascii=False) + "\n"))


# -- malformed files ---------------------------------------------------------------------------------

BAD_FILES = [
    ("faq_bad_json.jsonl", 2, "not valid JSON"),
    ("faq_missing_answer.jsonl", 3, "missing or empty 'answer'"),
    ("faq_bad_status.jsonl", 2, "unknown status 'live'"),
    ("faq_not_object.jsonl", 1, "must be a JSON object"),
    ("faq_bad_id.jsonl", 1, "invalid id 'has space'"),
    ("faq_nul_character.jsonl", 1, "NUL"),
    ("faq_lone_surrogate.jsonl", 1, "Unicode"),
    ("export_bad_sections.jsonl", 1, "sections"),
    ("export_bad_position.jsonl", 1, "position"),
    ("faq_missing_column.csv", 1, "missing column(s) answer"),
    ("faq_extra_values.csv", 3, "more values than columns"),
    ("faq_empty.csv", 1, "empty file"),
    ("guide_no_front_matter.md", 1, "expected TOML front matter"),
    ("guide_unclosed_front_matter.md", 1, "not closed"),
    ("guide_bad_toml.md", 3, "not valid TOML"),
    ("guide_missing_sections.md", 5, "guide lacks section(s): 设定依据"),
    ("guide_unknown_key.md", 2, "unknown front matter key(s) owner"),
    ("policy_qa_without_answer.md", 11, "needs a question and an answer"),
    ("policy_empty_also_asked.md", 10, "'也问：' lists no question"),
    ("policy_bad_date.md", 2, "valid_until must be a date YYYY-MM-DD, got '2020/12/31'"),
    ("policy_text_before_section.md", 6, "text before the first '## ' section"),
    ("document_no_clauses.txt", None, "no numbered clauses"),
    ("document_empty.txt", 1, "empty document"),
    ("binary.txt", None, "not a text file in UTF-8 or GB18030"),
    ("broken.docx", None, "not a readable .docx file"),
    ("notice.pdf", None, "unsupported file type .pdf"),
]


@pytest.mark.parametrize(("name", "line", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_malformed_file_names_file_line_and_reason(name: str, line: int | None, reason: str) -> None:
    path = BAD / name
    with pytest.raises(ImportFailure) as info:
        parse_file(path)
    message = str(info.value)
    if line is None:
        assert message.startswith(f"{path}:"), message
    else:
        assert message.startswith(f"{path}:{line}: "), message
    assert reason in message
    assert info.value.path == str(path)


def test_every_bad_fixture_is_checked() -> None:
    assert {p.name for p in BAD.iterdir()} == {b[0] for b in BAD_FILES}


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImportFailure, match="no such file"):
        parse_file(tmp_path / "nope.jsonl")
    (tmp_path / "dir.md").mkdir()
    with pytest.raises(ImportFailure, match="is a directory"):
        parse_file(tmp_path / "dir.md")


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.jsonl", FAQ_JSONL)
    b = write(tmp_path, "b.jsonl", FAQ_JSONL.splitlines()[0])
    with pytest.raises(ImportFailure, match=r"duplicate id 't-faq-1' \(also in .*a\.jsonl\)"):
        parse_paths([a, b])


def test_folders_are_expanded_recursively(tmp_path: Path) -> None:
    write(tmp_path, "b.jsonl", FAQ_JSONL)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "a.md", GUIDE_MD)
    write(tmp_path, "notes.pdf", "ignored")
    assert [p.name for p in expand_paths([tmp_path])] == ["b.jsonl", "a.md"]
    assert len(parse_paths([tmp_path])) == 3


# -- writing: all or nothing, idempotent, round trip -------------------------------------------------


async def test_import_counts_and_reimport_unchanged(services: Services, tmp_path: Path) -> None:
    files = [
        seed_path(),
        write(tmp_path, "faq.jsonl", FAQ_JSONL),
        write(tmp_path, "faq.csv", FAQ_CSV),
        write(tmp_path, "guide.md", GUIDE_MD),
        write(tmp_path, "policy.md", POLICY_MD),
    ]
    first = await services.kb.import_paths(files)
    assert (first.added, first.updated, first.unchanged, first.removed) == (26, 0, 0, 0)
    again = await services.kb.import_paths(files)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 26, 0)
    assert await services.kb.count() == 26
    assert len(services.kb.index) == 26
    faq = await services.kb.get("t-faq-1")
    assert faq is not None and faq.question == "跨境电商综试区的企业怎么申请出口退税？"


async def test_changed_file_updates_in_place_and_drops_vanished_children(
    services: Services, tmp_path: Path
) -> None:
    policy = write(tmp_path, "policy.md", POLICY_MD)
    faq = write(tmp_path, "faq.jsonl", FAQ_JSONL)
    await services.kb.import_paths([policy, faq])
    # the answer changes, one Q&A pair goes away
    policy.write_text(POLICY_MD.replace("二十万元", "三十万元").split("### 谁来申报？")[0], encoding="utf-8")
    counts = await services.kb.import_paths([policy, faq])
    assert (counts.added, counts.updated, counts.unchanged, counts.removed) == (0, 1, 3, 1)
    assert counts.changed_ids == ["t-policy-night#qa1"]
    assert counts.removed_ids == ["t-policy-night#qa2"]
    assert await services.kb.get("t-policy-night#qa2") is None
    d = await services.qa.ask("示范街区奖励多少钱")
    assert d.status == "answered" and d.entry_id == "t-policy-night#qa1"
    assert "三十万元" in (d.answer or "")


@pytest.mark.parametrize("bad", ["faq_bad_json.jsonl", "guide_missing_sections.md", "broken.docx"])
async def test_a_bad_file_writes_nothing_of_any_file(services: Services, tmp_path: Path, bad: str) -> None:
    await services.kb.import_paths([write(tmp_path, "faq.jsonl", FAQ_JSONL)])
    before = await services.kb.count()
    indexed = len(services.kb.index)
    good = [seed_path(), write(tmp_path, "guide.md", GUIDE_MD)]
    for order in ([*good, BAD / bad], [BAD / bad, *good]):
        with pytest.raises(ImportFailure, match=re.escape(bad)):
            await services.kb.import_paths(order)
        assert await services.kb.count() == before
        assert len(services.kb.index) == indexed
    assert await services.kb.get(DOC) is None
    assert await services.kb.get("t-guide-exhibition") is None


async def test_database_rejects_are_reported_and_roll_back(services: Services, tmp_path: Path) -> None:
    # Values only the database would refuse (too long for a column) must still come back as an
    # ImportFailure, with nothing written.
    record = {"id": "t-long", "question": "问题？", "answer": "答案。", "category": "类" * 150}
    path = write(tmp_path, "long.jsonl", FAQ_JSONL + "\n" + json.dumps(record, ensure_ascii=False))
    with pytest.raises(ImportFailure, match=r"long\.jsonl:3: .*category"):
        await services.kb.import_paths([path])
    assert await services.kb.count() == 0


async def test_export_imports_back_unchanged(services: Services, tmp_path: Path) -> None:
    files = [
        seed_path(),
        write(tmp_path, "faq.jsonl", FAQ_JSONL),
        write(tmp_path, "faq.csv", FAQ_CSV),
        write(tmp_path, "guide.md", GUIDE_MD),
        write(tmp_path, "policy.md", POLICY_MD),
    ]
    await services.kb.import_paths(files)
    await services.kb.set_status("t-csv-2", "draft")
    await services.kb.add_alternate("t-faq-1", "跨境电商怎么退税")
    lines = await services.kb.export_lines()
    assert len(lines) == 26
    assert all(json.loads(line)["id"] for line in lines)
    export = write(tmp_path, "export.jsonl", "\n".join(lines) + "\n")
    counts = await services.kb.import_paths([export])
    assert (counts.added, counts.updated, counts.unchanged) == (0, 0, 26)
    # and into an empty knowledge base it recreates every entry exactly
    entries = parse_file(export)
    assert {e.id for e in entries} == {json.loads(line)["id"] for line in lines}
    draft = next(e for e in entries if e.id == "t-csv-2")
    assert draft.status == "draft"


def test_content_hash_is_the_digest_stored_by_earlier_versions() -> None:
    # Databases keep each entry's hash: a new way of computing it must give the same digest, or the next
    # import would take every entry for changed.
    import hashlib
    import json
    from dataclasses import asdict

    entry = ParsedEntry(
        id="guide-x", kind="guide", title="某指南", sections=[["申请材料", "身份证"]], tags=["备案"],
        source={"title": "某通知", "pages": [1, 2]}, valid_until="2027-01-01", origin="a.jsonl",
    )  # fmt: skip
    data = asdict(entry)
    data.pop("origin")
    earlier = hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    assert entry.content_hash() == earlier
    assert ParsedEntry(**{**asdict(entry), "origin": "b.jsonl"}).content_hash() == earlier  # origin aside
    assert ParsedEntry(**{**asdict(entry), "title": "改了"}).content_hash() != earlier


def test_as_record_is_asdict_without_origin_and_a_copy() -> None:
    """as_record is the generic asdict (origin left out), built without its deep copy: the record
    can be changed without changing the entry."""
    entry = ParsedEntry(
        id="g1", kind="guide", title="备案", alternates=["怎么备案"], sections=[["申请材料", "营业执照"]],
        tags=["备案"], source={"title": "指南", "pages": [1]}, heading_path=["一"], origin="a.jsonl",
    )  # fmt: skip
    expected = dataclasses.asdict(entry)
    expected.pop("origin")
    record = entry.as_record()
    assert record == expected
    record["alternates"].append("x")
    record["sections"][0].append("x")
    record["source"]["title"] = "x"
    record["source"]["pages"].append(2)
    record["tags"].clear()
    assert entry.alternates == ["怎么备案"] and entry.sections == [["申请材料", "营业执照"]]
    assert entry.source == {"title": "指南", "pages": [1]} and entry.tags == ["备案"]

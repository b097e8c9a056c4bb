"""The front desk's knowledge: small talk found by its whole wording however short, referrals to other
bodies matched like any entry, both shipped as knowledge files and checked on import
(knowledge/smalltalk.py, knowledge/answers.py, knowledge/data/desk/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import App
from bot.services import Services
from knowledge.answers import answer_text, citation
from knowledge.importers import ImportFailure, parse_file
from knowledge.smalltalk import phrasings, said_apart
from knowledge.store import DEFAULT_KB
from tests.staff_fixtures import login
from tests.test_staff_console import client, post  # noqa: F401 (the client fixture)

DESK = DEFAULT_KB / "desk"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DESK / name).read_text(encoding="utf-8").splitlines() if line]


# -- small talk -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("你好", "smalltalk-hello"),
        ("您好！", "smalltalk-hello"),
        ("你好呀~", "smalltalk-hello"),
        ("你好你好", "smalltalk-hello"),
        ("Hello", "smalltalk-hello"),
        ("在吗？", "smalltalk-hello"),
        ("  你好😀 ", "smalltalk-hello"),
        ("謝謝", "smalltalk-thanks"),
        ("谢谢谢谢", "smalltalk-thanks"),
        ("谢谢啦！", "smalltalk-thanks"),
        ("好的，谢谢", "smalltalk-thanks"),
        ("再见", "smalltalk-bye"),
        ("拜拜～", "smalltalk-bye"),
        ("你是谁", "smalltalk-about"),
        ("你是機器人嗎", "smalltalk-about"),
        ("你能做什么？", "smalltalk-about"),
        ("你们能干啥", "smalltalk-about"),
        ("哈哈哈", "smalltalk-chitchat"),  # laughter: no question to hand over
        ("hhhh", "smalltalk-chitchat"),
        ("嗯嗯", "smalltalk-ok"),
        ("哦", "smalltalk-ok"),  # (an interjection alone: nothing to search, no question to hand over)
        ("哦哦，好的", "smalltalk-ok"),
        ("太好了！", "smalltalk-ok"),
        ("不用了", "smalltalk-bye"),
        ("你真笨啊", "smalltalk-abuse"),
        # asked whether a person answers: who the bot is, not the FAQ on reaching staff (可以。我答不了…)
        ("你是真人还是机器人", "smalltalk-about"),
        ("你是机器人还是真人？", "smalltalk-about"),
        ("垃圾机器人，啥都不懂", "smalltalk-abuse"),
        ("答非所问，你到底懂不懂啊", "smalltalk-abuse"),
        # the answer said to be wrong: an apology, not the FAQ on correcting a record (我的信息不对)
        ("不对", "smalltalk-abuse"),
        ("答案不对！", "smalltalk-abuse"),
        ("说的不是这个", "smalltalk-abuse"),
        ("这个回答没用", "smalltalk-abuse"),
        ("给我讲个笑话呗", "smalltalk-chitchat"),
        # not understood: asked to say it again, not escalated with nothing offered
        ("什么意思？", "smalltalk-unclear"),
        ("没听懂", "smalltalk-unclear"),
        ("能再说一遍吗", "smalltalk-unclear"),
        # several in a row: the last one said is answered
        ("好的，明白了", "smalltalk-ok"),
        ("好的明白", "smalltalk-ok"),
        ("谢谢，再见", "smalltalk-bye"),
        ("嗯嗯，好的，谢谢！", "smalltalk-thanks"),
        ("你好，你是机器人吗", "smalltalk-about"),
        # the bot called by a name first, or an opening
        ("小助手，你能回答哪些方面的问题", "smalltalk-about"),
        ("客服在吗", "smalltalk-hello"),
        ("請問你是機器人嗎", "smalltalk-about"),  # (traditional characters: 请问你是机器人吗)
        ("请问你能做什么", "smalltalk-about"),
        # everyday openings and closings
        ("早安", "smalltalk-hello"),
        ("有人在吗？", "smalltalk-hello"),
        ("不好意思打扰一下", "smalltalk-hello"),
        ("麻烦你了", "smalltalk-thanks"),
        ("3Q", "smalltalk-thanks"),
        ("晚安", "smalltalk-bye"),
        ("在么", "smalltalk-hello"),
        ("谢谢小助手", "smalltalk-thanks"),
        ("谢谢你的耐心解答！", "smalltalk-thanks"),
        ("辛苦辛苦", "smalltalk-thanks"),
        ("我知道了", "smalltalk-ok"),
        ("不好意思啊", "smalltalk-ok"),  # (as 抱歉: 好的。还有其他问题可以继续问我。)
        ("叫啥名字", "smalltalk-chitchat"),  # (你叫啥名字, the pronoun left out)
        ("你好，吃了没", "smalltalk-chitchat"),  # (你吃了吗, said in a row after the greeting)
        ("就这样吧", "smalltalk-bye"),
        ("你真棒", "smalltalk-praise"),
        ("好厉害啊", "smalltalk-praise"),
        ("你好笨", "smalltalk-abuse"),
        # (a complaint about the answers: 回答得不对 had been answered with the FAQ on correcting one's
        # records, 这个机器人答得啥也不是 with the one on reaching a human)
        ("回答得不对", "smalltalk-abuse"),
        ("你们答得不对", "smalltalk-abuse"),
        ("这个机器人答得啥也不是", "smalltalk-abuse"),  # (the bot called 这个机器人 before it)
        # (every clause small talk, one of them with its trimmings: 你这机器人 before 太笨了)
        ("答非所问，你这机器人太笨了", "smalltalk-abuse"),
        ("你们这个智能客服怎么这么笨，答非所问", "smalltalk-abuse"),
        ("在吗？有个问题想咨询", "smalltalk-hello"),  # (咨询 alone would ask for the phone)
        ("想请教一下", "smalltalk-hello"),
    ],
)
async def test_small_talk_is_answered_by_its_entry(default_kb: Services, text: str, entry_id: str) -> None:
    d = await default_kb.qa.ask(text)
    assert (d.status, d.kind, d.entry_id) == ("answered", "smalltalk", entry_id)
    assert d.answer and d.citation == ""  # its own words: no source line under a greeting


@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("多谢，帮了大忙", "smalltalk-thanks"),
        ("谢谢您 讲得很明白", "smalltalk-thanks"),
        ("谢谢，还有个问题", "smalltalk-thanks"),  # (不客气！还有其他问题，随时问我。)
        ("好 我知道了 谢谢", "smalltalk-thanks"),  # the last said is answered
        ("您好，想问一下", "smalltalk-hello"),
        ("好的 我回头再看看", "smalltalk-ok"),
        ("无聊 讲个笑话吧", "smalltalk-chitchat"),
        # (the whole matches an FAQ by the small talk's own words: 答非所问 asks it to reach a human)
        ("答非所问，气死我了", "smalltalk-abuse"),
    ],
)
async def test_small_talk_said_apart_from_words_asking_nothing(
    default_kb: Services, text: str, entry_id: str
) -> None:
    """A clause of small talk beside words that ask nothing the knowledge base knows: its reply, not
    a 您是不是想问 of entries sharing a light word (问题, 解决) or no answer at all."""
    d = await default_kb.qa.ask(text)
    assert (d.status, d.kind, d.entry_id) == ("answered", "smalltalk", entry_id)


@pytest.mark.parametrize(
    "text",
    [
        "你好，我想开个奶茶店要办什么手续",  # a matter the knowledge base knows (奶茶)
        "谢谢，那个是什么意思",  # asks what
        "好的，那要多久",  # asks for a section: a follow-up (bot/conversation.py)
        "好的，湖北呢",  # ...呢 asks about what it names
        "你们这些当官的就知道踢皮球",  # 知道 inside a clause is no small talk
        "答非所问，我要找人工",  # asks for a human: the FAQ on reaching one answers
    ],
)
async def test_small_talk_beside_a_question_is_not_its_answer(default_kb: Services, text: str) -> None:
    d = await default_kb.qa.ask(text)
    assert d.kind != "smalltalk"


async def test_said_apart_finds_the_last_clause_of_small_talk(default_kb: Services) -> None:
    index = default_kb.kb.index
    assert said_apart(index, "谢谢，帮了大忙") == ("smalltalk-thanks", "帮了大忙")
    assert said_apart(index, "好的，有点事，拜拜") == ("smalltalk-bye", "有点事")
    assert said_apart(index, "谢谢，再见") is None  # every clause small talk: find_small_talk's
    assert said_apart(index, "你们就知道踢皮球") is None
    assert said_apart(index, "谢谢" + "，帮大忙了" * 10) is None  # too long for small talk


@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("你好，请问预付卡备案需要什么材料", "guide-prepaid-card-filing"),
        ("谢谢，再问一下商务局的电话是多少？", "faq-bureau-002"),
    ],
)
async def test_a_greeting_around_a_question_does_not_hide_it(
    default_kb: Services, text: str, entry_id: str
) -> None:
    d = await default_kb.qa.ask(text)
    assert d.kind != "smalltalk" and d.entry_id == entry_id


@pytest.mark.parametrize(
    "text",
    [
        "垃圾分类",
        "垃圾",
        "笨重货物运输",
        "你好像没有回答我的备案问题",
        "好的，那备案要多久",
        "放管服是什么意思",
        "放管服，什么意思",
    ],
)
async def test_small_talk_words_never_draw_real_questions(default_kb: Services, text: str) -> None:
    """Small talk is found by its whole wording, or in a clause of its own beside words asking
    nothing: never answered or offered for other texts."""
    d = await default_kb.qa.ask(text)
    assert d.kind != "smalltalk"
    assert not any(s.entry_id.startswith("smalltalk-") for s in d.suggestions)
    assert not (d.entry_id or "").startswith("smalltalk-")


def test_phrasings_forgive_trimmings_only() -> None:
    assert phrasings("你好呀！") == ["你好呀", "你好"]
    assert "谢谢" in phrasings("谢谢谢谢")
    assert phrasings("") == [] and phrasings("。。。") == []
    assert phrasings("你" * 31) == []  # a long message is a question
    assert "你好" in phrasings("小助手，你好呀") and phrasings("机器人") == ["机器人"]
    assert "谢谢" in phrasings("谢谢小助手") and "你好" in phrasings("你好啊，机器人")  # the name after
    assert "太笨了" in phrasings("你这机器人太笨了") and "能做什么" in phrasings("这个机器人能做什么")
    assert "在吗" in phrasings("在么") and "是机器人吗" in phrasings("是机器人么")  # 么 for 吗
    assert phrasings("你能做什么") == ["你能做什么"]  # (什么 keeps its 么)
    assert "你吃了吗" in phrasings("吃了没")  # 了没 for 了吗, and the pronoun left out


async def test_small_talk_edits_reach_the_bot_at_once(default_kb: Services) -> None:
    from knowledge.importers import entry_to_parsed

    row = await default_kb.kb.get("smalltalk-thanks")
    assert row is not None
    edited = entry_to_parsed(row)
    edited.alternates.append("感恩")
    edited.answer = "不客气，随时为您服务。"
    await default_kb.kb.save_entry(edited)
    d = await default_kb.qa.ask("感恩！")
    assert (d.entry_id, d.answer) == ("smalltalk-thanks", "不客气，随时为您服务。")
    assert (await default_kb.qa.ask("好的，感恩")).entry_id == "smalltalk-thanks"  # in a row too
    await default_kb.kb.set_status("smalltalk-thanks", "expired")
    assert (await default_kb.qa.ask("谢谢")).kind != "smalltalk"
    assert (await default_kb.qa.ask("好的，再见")).entry_id == "smalltalk-bye"
    # its last piece is no small talk now, but asks nothing: the goodbye said apart is answered
    assert (await default_kb.qa.ask("再见，谢谢")).entry_id == "smalltalk-bye"


# -- referrals --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "entry_id", "says"),
    [
        ("社保断缴三个月怎么补缴", "ref-hrss", "12333"),
        ("房产证丢了怎么补办", "ref-realestate", "不动产登记"),
        ("明天福州会下雨吗", "ref-weather", "12121"),
        ("公积金贷款怎么申请", "ref-housing-fund", "12329"),
        ("医保异地就医怎么备案", "ref-medical", "12393"),
        ("个人所得税怎么申报", "ref-tax", "12366"),
        ("买到过期食品去哪投诉", "ref-samr", "12315"),
        ("我想开家公司，要办哪些手续", "ref-samr", "营业执照"),  # (not the FAQ on trading firms' first steps)
        ("公司要注销去哪办", "ref-samr", "营业执照"),
        # (registering a company is the market regulator's: not the FAQ on an auction firm's capital)
        ("注册个公司要花多少钱", "ref-samr", "营业执照"),
        ("身份证丢了怎么补办", "ref-police", "派出所"),
        ("出了交通事故怎么办", "ref-traffic", "122"),
        ("孩子转学怎么办理", "ref-education", "教育局"),
        ("小区噪音扰民找谁投诉", "ref-12345", "12345"),
    ],
)
async def test_other_bodies_matters_get_their_referral(
    default_kb: Services, text: str, entry_id: str, says: str
) -> None:
    d = await default_kb.qa.ask(text)
    # Answered, or offered first when the confidence falls short of [matching] precision.
    assert d.status != "escalated" and (d.kind, d.entry_id) == ("referral", entry_id), d
    entry = await default_kb.kb.get(entry_id)
    assert entry is not None
    answer = d.answer or answer_text(entry)
    assert says in answer
    assert "不在商务局的职责范围内" in answer
    assert "12345" in answer  # the fallback for anything unclear
    assert "以官方最新公布为准" in (d.citation or citation(entry))


async def test_the_bureaus_own_matters_are_not_referred(default_kb: Services) -> None:
    for text, entry_id in [
        ("外资企业年报什么时候报？", "faq-trade-004"),
        ("预付卡商家跑路了怎么投诉", "faq-cons-001"),
        ("商务局电话", "faq-bureau-002"),
    ]:
        d = await default_kb.qa.ask(text)
        assert d.status != "escalated" and d.entry_id == entry_id, d  # answered or offered first
        assert d.kind == "faq"


async def test_a_bare_word_one_referral_mentions_in_passing_is_not_referred(default_kb: Services) -> None:
    """补贴 alone (a commerce subsidy as likely as a job-seeker's) is offered, not answered, with the
    人社 referral, which names 补贴 only beside 稳岗 / 就业; asked with what makes it 人社's, it is referred."""
    for text in ("补贴", "有补贴吗"):
        assert (await default_kb.qa.ask(text)).status != "answered", text
    for text in ("就业补贴怎么领", "稳岗补贴找谁申请"):
        d = await default_kb.qa.ask(text)
        assert (d.status, d.entry_id) == ("answered", "ref-hrss"), text
    # 以旧换新 (a commerce programme the knowledge base lacks) is one word: cut in three by jieba, its
    # 以旧 missing weighed less than 补贴 and 申请 held, and the 人社 referral answered.
    assert (await default_kb.qa.ask("以旧换新补贴怎么申请")).status != "answered"


def test_shipped_referrals_are_sourced_and_dated() -> None:
    rows = _rows("referrals.jsonl")
    numbers = " ".join(t for r in rows for _, t in r["sections"])
    for number in ("12345", "12333", "12393", "12329", "12366", "12315", "122", "12121"):
        assert number in numbers
    for r in rows:
        sections = dict(r["sections"])
        assert sections["主管部门"] and sections["联系方式"]
        assert r["source"].get("title") and "以官方最新公布为准" in r["source"]["note"]
        assert "2026-12" in r["source"]["note"]  # when the facts were gathered
    assert {"ref-police", "ref-realestate", "ref-education"} <= {r["id"] for r in rows}


def test_every_shipped_small_talk_category_is_there() -> None:
    cats = {r["category"] for r in _rows("smalltalk.jsonl")}
    assert {"问候", "感谢", "告别", "介绍", "不文明用语", "澄清"} <= cats


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"id": "r1", "kind": "referral", "title": "社保", "question": "社保怎么交"},
            "lacks section(s): 主管部门",
        ),
        (
            {
                "id": "r2",
                "kind": "referral",
                "title": "社保",
                "question": "社保怎么交",
                "sections": [["主管部门", "人社局"], ["电话", "12333"]],
            },
            "lacks section(s): 联系方式",
        ),
        (
            {
                "id": "r3",
                "kind": "referral",
                "title": "社保",
                "question": "社保怎么交",
                "sections": [["主管部门", "人社局"], ["联系方式", "12333"], ["备注", "x"]],
            },
            "unknown referral section(s) 备注",
        ),
        (
            {
                "id": "r4",
                "kind": "referral",
                "question": "q",
                "sections": [["主管部门", "a"], ["联系方式", "b"]],
            },
            "needs a title",
        ),
        (
            {"id": "s1", "kind": "smalltalk", "question": "你好", "answer": " "},
            "non-empty question and answer",
        ),
        ({"id": "s2", "kind": "chitchat", "question": "你好", "answer": "您好"}, "unknown kind 'chitchat'"),
    ],
)
async def test_bad_desk_entries_are_refused_before_anything_is_written(
    services: Services, tmp_path: Path, record: dict, reason: str
) -> None:
    good = {"id": "ok-1", "kind": "smalltalk", "question": "早安", "answer": "早上好！"}
    path = tmp_path / "desk.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in (good, record)) + "\n", encoding="utf-8"
    )
    with pytest.raises(ImportFailure, match=re.escape(reason)):
        parse_file(path)
    with pytest.raises(ImportFailure):
        await services.kb.import_paths([path])
    assert await services.kb.count() == 0


async def test_referral_citation_names_its_source(default_kb: Services) -> None:
    row = await default_kb.kb.get("ref-12345")
    assert row is not None
    line = citation(row)
    assert "国办发〔2020〕53号" in line and "以官方最新公布为准" in line


# -- the staff console edits them like the rest ------------------------------------------------------------
async def test_console_edits_a_referral_and_a_small_talk_entry(client: TestClient, app: App) -> None:  # noqa: F811
    csrf = await login(client)
    page = await (await client.get("/console/knowledge/e/ref-hrss")).text()
    assert "他部门事项" in page and "主管部门" in page and 'name="alternates"' in page
    row = await app.services.kb.get("ref-hrss")
    assert row is not None
    names = [n for n, _ in row.sections]
    texts = [t for _, t in row.sections]
    texts[1] = "12333（测试号码）"
    form = [("csrf", csrf), ("title", row.title), ("question", row.question), ("category", row.category)]
    form += [("alternates", "\n".join([*row.alternates, "退休金领取资格认证"]))]
    form += [("section_name", n) for n in names] + [("section_text", t) for t in texts]
    resp = await client.post("/console/knowledge/e/ref-hrss", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    d = await app.services.qa.ask("退休金领取资格认证")
    assert d.entry_id == "ref-hrss" and "12333（测试号码）" in (d.answer or "")

    bad = [*form[: -len(names) * 2], ("section_name", "主管部门"), ("section_text", "人社局")]
    resp = await client.post("/console/knowledge/e/ref-hrss", data=bad, allow_redirects=False)
    assert resp.status == 400 and "lacks section(s): 联系方式" in await resp.text()

    resp = await post(
        client,
        "/console/knowledge/e/smalltalk-bye",
        csrf,
        question="再见",
        alternates="回头见",
        answer="再会！",
        category="告别",
    )
    assert resp.status == 303
    d = await app.services.qa.ask("回头见")
    assert (d.entry_id, d.answer) == ("smalltalk-bye", "再会！")

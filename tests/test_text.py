"""knowledge/text.py: the one normal form both questions and knowledge are matched in."""

from __future__ import annotations

import pytest

from knowledge.text import chinese_number, clean_display, compact, has_han, is_han, normalize, to_simplified


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # full-width letters, digits and punctuation -> half-width, lower case, punctuation -> space
        ("ＡＢＣ１２３？！", "abc123"),
        ("Ｈｅｌｌｏ　Ｗｏｒｌｄ", "hello world"),
        ("３．５％", "3.5%"),
        # traditional -> simplified
        ("申請政府資訊公開", "申请政府资讯公开"),
        ("這個方案的文號是多少", "这个方案的文号是多少"),
        # Chinese numerals that count something -> digits
        ("十二小时", "12小时"),
        ("二十个工作日内", "20个工作日内"),
        ("两个工作日", "2个工作日"),
        ("一百零五天", "105天"),
        ("三百元", "300元"),
        ("一千二百个", "1200个"),
        ("十万元", "100000元"),
        ("五十%", "50%"),
        ("三家企业", "3家企业"),
        ("二〇二〇年", "2020年"),
        ("第三条", "第3条"),
        ("第十一条", "第11条"),
        ("营业到晚上十二点", "营业到晚上12点"),  # a time of day answers 几点
        # ...but not inside words
        ("六稳六保", "六稳六保"),
        ("一次性告知", "一次性告知"),
        ("统一公开", "统一公开"),
        ("一年来", "一年来"),
        ("十", "十"),
        ("工作要点和重点", "工作要点和重点"),
        ("快一点", "快一点"),
        # an approximate number (几十家: some tens of) is no number: 十 alone is not its value
        ("几十家门店", "几十家门店"),
        ("好几百块", "好几百块"),
        # "which N" asks which ones: the count belongs to the asking (哪六个 -> 哪些)
        ("六稳是哪六个稳", "六稳是哪些稳"),
        ("全局政务公开要做到哪三化", "全局政务公开要做到哪些化"),
        ("要贯彻哪几次全会精神", "要贯彻哪些全会精神"),
        ("哪6个方面", "哪些方面"),
        ("哪一天截止", "哪一天截止"),  # which one: not a count
        ("哪个科室", "哪个科室"),
        # an ordinal that is a word of its own keeps its characters; one that counts is a number
        ("征求第三方意见", "征求第三方意见"),
        ("行政诉讼的第三人", "行政诉讼的第三人"),
        ("第一时间转发", "第一时间转发"),
        ("第三批名单", "第3批名单"),
        ("第三十三条", "第33条"),
        # emoji, symbols and punctuation runs -> one space, trimmed
        ("😀外资备案🎉", "外资备案"),
        ("外资🙏🙏备案", "外资 备案"),
        ("《条例》第3条：", "条例 第3条"),
        ("备案。，！？", "备案"),
        # control and zero-width characters
        ("a\x00b\x07c", "a b c"),
        ("备\u200b案", "备案"),  # invisible: copied from a page, inside a word
        ("预\u200d付\u00ad卡\u2060备\u200e案", "预付卡备案"),
        ("\ufeff备案", "备案"),
        ("备案\u2028材料", "备案 材料"),  # a line separator separates
        ("", ""),
        ("   \t\n ", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", ["备案……", "备案…", "怎么备案...", "备案。。。", "...备案", "备案.", "%备案"])
def test_ellipsis_and_stray_dots_are_punctuation(raw: str) -> None:
    # "……" is NFKC "......": a dot outside a number is punctuation, not a word of the question.
    assert normalize(raw).replace("怎么", "") == "备案"


@pytest.mark.parametrize(("raw", "expected"), [("3.5%", "3.5%"), ("0.5元", "0.5元"), ("第1.2条", "第1.2条")])
def test_decimal_point_and_percent_are_kept_inside_numbers(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw", ["申請政府資訊公開需要十二個工作日嗎？", "ＡＢＣ😀 第三条", "备案……", "a\x00\x1f b", "六稳 一次性"]
)
def test_normalize_is_idempotent(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十二", 12),
        ("二十", 20),
        ("十", 10),
        ("一百零五", 105),
        ("两千", 2000),
        ("一万二千", 12000),
        ("二〇二〇", 2020),
        ("三二", 32),
        ("abc", None),
        ("", None),
        ("十a", None),
    ],
)
def test_chinese_number(text: str, value: int | None) -> None:
    assert chinese_number(text) == value


def test_compact_removes_spaces_after_normalizing() -> None:
    assert compact("申 請 ！ 公開") == "申请公开"


def test_clean_display_folds_whitespace_drops_controls_and_cuts() -> None:
    assert clean_display("  a\n\tb\x00c  ") == "a b c"
    assert clean_display("一二三四五六", limit=4) == "一二三…"
    assert clean_display("短", limit=4) == "短"


def test_to_simplified_and_han_checks() -> None:
    assert to_simplified("政府資訊") == "政府资讯"
    assert is_han("案") and not is_han("a") and not is_han("。")
    assert has_han("abc备案") and not has_han("abc 123 😀")


def test_normalize_never_raises_on_odd_strings() -> None:
    odd = [
        "\ud7ff",
        "\ud800",
        "a\udfffb",
        "\U0010ffff",
        "𠀀𠀁",
        "\u0301\u0301",
        "ﷺ",
        "㍿",
        "Ⅻ",
        "①②",
        "\x85\u2028",
        "A" * 10000,
    ]
    for s in odd:
        assert isinstance(normalize(s), str)
    assert normalize("备案\ud800材料") == "备案 材料"  # a lone surrogate (from JSON) is a space

"""bot/privacy.py: personal data found and masked in free text."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import Kind, contains, find, mask, mask_value


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind.value, text[f.start : f.end]) for f in find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机13812345678，请回电", [("phone", "13812345678")]),
        ("电话 138 1234 5678", [("phone", "138 1234 5678")]),
        ("+86 138-1234-5678 联系", [("phone", "+86 138-1234-5678")]),
        ("座机0591-87654321", [("phone", "0591-87654321")]),
        ("座机（0591）87654321", [("phone", "（0591）87654321")]),
        ("全角１３８１２３４５６７８", [("phone", "１３８１２３４５６７８")]),
        ("身份证350102199001011234办理", [("id_card", "350102199001011234")]),
        ("身份证号35010219900101123X", [("id_card", "35010219900101123X")]),
        ("旧证350102900101123", [("id_card", "350102900101123")]),
        ("卡号6222 0212 3456 7890 123", [("bank_card", "6222 0212 3456 7890 123")]),
        ("卡号4111111111111111", [("bank_card", "4111111111111111")]),
        ("邮箱 zhang.san@example.com 谢谢", [("email", "zhang.san@example.com")]),
        ("邮箱13812345678@163.com", [("email", "13812345678@163.com")]),
        ("我叫张三，想问补贴", [("name", "张三")]),
        ("我叫王小明想问一下", [("name", "王小明")]),
        ("本人李四，身份证350102199001011234", [("name", "李四"), ("id_card", "350102199001011234")]),
        ("本人欧阳娜娜", [("name", "欧阳娜娜")]),
        ("姓名：陈晓", [("name", "陈晓")]),
    ],
)
def test_finds_each_kind(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "本人想咨询外贸补贴",  # 本人 + a verb, not a name
        "鼓商务〔2020〕123号文件",  # a document number
        "2020年11月12日发布",
        "联系电话：12345",  # a short service number
        "申请金额 1234567890123456 元",  # 16 digits, not Luhn, not 62…
        "商务局的地址是什么",
        "订单 20201112",
        "申请人的姓名或名称、身份证号码",  # the words 姓名 / 身份证 without any data
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert find(text) == []
    assert mask(text) == text
    assert not contains(text)


def test_masks_keep_what_identifies_the_kind_only() -> None:
    assert mask("手机13812345678") == "手机138****5678"
    assert mask("+86 138-1234-5678") == "+86 138-****-5678"
    assert mask("0591-87654321") == "0591-******21"
    assert mask("身份证35010219900101123X") == "身份证35**************3X"
    assert mask("6222 0212 3456 7890 123") == "**** **** **** ***0 123"
    assert mask("zhang.san@example.com") == "z***@example.com"
    assert mask("我叫王小明，电话13812345678") == "我叫王**，电话138****5678"
    assert mask_value(Kind.NAME, "欧阳娜娜") == "欧***"


def test_digits_glued_to_other_digits_are_not_split() -> None:
    # 12 digits starting with 1: not a mobile number inside a longer number
    assert find("编号138123456789") == []


def test_odd_strings_never_raise() -> None:
    for text in ["\ud800", "\x00138\x0012345678", "", "我叫", "本人", "@", "a@b.c", "1" * 5000]:
        mask(text)


_PIECES = st.sampled_from(
    [
        "13812345678",
        "138 1234 5678",
        "350102199001011234",
        "6222021234567890123",
        "a.b@example.org",
        "我叫张三",
        "本人王五",
        "，",
        " ",
        "补贴",
        "123",
        "X",
    ]
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=8).map("".join))
def test_mask_is_idempotent_and_leaves_no_number_behind(text: str) -> None:
    masked = mask(text)
    assert mask(masked) == masked
    for f in find(text):
        if f.kind in (Kind.PHONE, Kind.ID_CARD, Kind.BANK_CARD):
            assert sum(c.isdigit() for c in mask_value(f.kind, text[f.start : f.end])) <= 7
    numbers = (Kind.PHONE, Kind.ID_CARD, Kind.BANK_CARD, Kind.EMAIL)
    assert not [f for f in find(masked) if f.kind in numbers]


def test_findings_are_sorted_and_disjoint() -> None:
    text = "我叫张三 13812345678 zhang@example.com 350102199001011234 4111111111111111"
    found = find(text)
    assert [f.kind for f in found] == [Kind.NAME, Kind.PHONE, Kind.EMAIL, Kind.ID_CARD, Kind.BANK_CARD]
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))

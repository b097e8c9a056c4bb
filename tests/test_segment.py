"""knowledge/segment.py: jieba over the trimmed dictionary, stop words, synonyms, weights and pinyin."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.segment import DATA_DIR, Lexicon, cache_dir, read_synonyms
from knowledge.text import normalize


def test_domain_words_stay_whole(lexicon: Lexicon) -> None:
    assert "政府信息公开" in lexicon.query_words(normalize("政府信息公开申请多久答复"))
    assert "单用途预付卡" in lexicon.query_words(normalize("单用途预付卡备案"))
    assert "商业特许经营" in lexicon.query_words(normalize("商业特许经营备案的材料"))


def test_question_fillers_are_dropped(lexicon: Lexicon) -> None:
    words = lexicon.query_words(normalize("请问我想问一下外商投资企业怎么备案呢？"))
    assert words == ["外商投资", "企业", "备案"]
    assert not {"请问", "怎么", "呢", "我"} & set(words)


def test_what_is_it_about_is_a_question_word_however_said(lexicon: Lexicon) -> None:
    """咋回事 asks what 怎么回事 asks: 回事 is no word of the matter (it kept a policy from answering)."""
    plain = lexicon.query_words(normalize("增值税减按1%是怎么回事"))
    assert lexicon.query_words(normalize("增值税减按1%是咋回事")) == plain
    assert lexicon.query_words(normalize("增值税减按1%是怎么一回事")) == plain


def test_index_tokens_include_sub_words(lexicon: Lexicon) -> None:
    tokens = lexicon.index_tokens(normalize("外商投资企业备案"))
    assert {"外商", "投资", "外商投资", "企业", "备案"} <= set(tokens)


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("外商投资", "外资"),
        ("外国投资", "外资"),
        ("外资", "外资"),
        ("发文字号", "文号"),
        ("加盟", "特许经营"),
        ("单用途商业预付卡", "预付卡"),
        ("报废汽车", "报废机动车"),
        ("注册资金", "注册资本"),
        ("饭馆", "餐馆"),
        ("月工资", "工资"),
        ("降到", "减到"),
        ("备案", "备案"),  # not in any group: itself
    ],
)
def test_synonyms_map_to_the_first_word_of_their_group(lexicon: Lexicon, word: str, canonical: str) -> None:
    assert lexicon.canonical(word) == canonical


def test_informativeness_orders_words_sensibly(lexicon: Lexicon) -> None:
    inf = lexicon.informativeness
    assert inf("要求") == pytest.approx(0.15)  # a light word
    assert inf("政府信息公开") == pytest.approx(0.9)  # a domain word
    assert inf("的") < inf("备案") < inf("政府信息公开")
    assert inf("a") < inf("abc")
    for w in ["的", "备案", "外资", "鑫", "zzz额外", "办理", "12", "x"]:
        assert 0.0 < inf(w) <= 1.0


def test_pinyin_keys_are_toneless_and_han_only(lexicon: Lexicon) -> None:
    assert lexicon.pinyin_key("备案") == "bei an"
    assert lexicon.pinyin_key("备按") == lexicon.pinyin_key("备案")  # the homophone typo meets its word
    assert lexicon.pinyin_key("绿色") == "lv se"
    assert lexicon.pinyin_key("a备") is None


def test_a_typo_must_be_far_less_likely_than_the_word_it_garbles(lexicon: Lexicon) -> None:
    """``likelier_whole``: jieba's word frequencies decide whether a run of characters is a typo."""
    assert lexicon.likelier_whole("备案", "备按")  # 备 and 按 together: rare; 备案: common
    assert lexicon.likelier_whole("制度", "制渡")
    assert not lexicon.likelier_whole("理由", "里有")  # 里 and 有 are common on their own
    assert not lexicon.likelier_whole("回收", "会受")
    assert not lexicon.likelier_whole("业要", "也要")  # not a dictionary word at all
    # A character the dictionary does not know (㐀, U+3400) cannot be read as it is.
    assert lexicon.likelier_whole("备案", "备\u3400")


def test_read_synonyms_skips_comments(tmp_path: Path) -> None:
    f = tmp_path / "syn.txt"
    f.write_text("# comment\n跨境电商 跨境电子商务 CBEC  # trailing\n\n单字\n", encoding="utf-8")
    assert read_synonyms(f) == {"跨境电子商务": "跨境电商", "cbec": "跨境电商"}
    shipped = read_synonyms(DATA_DIR / "synonyms.txt")
    assert shipped["外商投资"] == "外资"


def test_site_specific_synonyms_and_words(tmp_path: Path, lexicon: Lexicon) -> None:
    syn = tmp_path / "syn.txt"
    syn.write_text("跨境电商 跨境电子商务\n", encoding="utf-8")
    words = tmp_path / "words.txt"
    words.write_text("鼓楼软件园\n", encoding="utf-8")
    lex = Lexicon.load(extra_synonyms=syn, extra_dict=words)
    assert lex.canonical("跨境电子商务") == "跨境电商"
    assert "鼓楼软件园" in lex.query_words(normalize("鼓楼软件园在哪"))
    assert lex.signature != lexicon.signature  # cached tokens are redone for a different lexicon
    # the shipped groups still apply
    assert lex.canonical("外商投资") == "外资"


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYBOT_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.sampled_from("外商投资企业备案政府信息公开申请单用途预付卡多久答复 12ab的了"), max_size=40
    )
)
def test_search_tokens_of_a_cut_equal_jiebas_search_cut(lexicon: Lexicon, text: str) -> None:
    # Questions and knowledge texts alike are cut once and their search tokens derived from the
    # pieces: what jieba's cut_for_search adds to its own cut, and nothing else.
    norm = normalize(text)
    searched = lexicon.tokenizer.cut_for_search(norm, HMM=True)
    expected = [t for t in searched if t.strip() and t not in lexicon.stopwords]
    assert lexicon.search_tokens(lexicon.tokenizer.lcut(norm, HMM=True)) == expected


def test_a_run_of_letters_and_digits_is_one_word(lexicon: Lexicon) -> None:
    # 12345 (the hotline) is a dictionary word; inside a phone number or a code it is none.
    assert lexicon.cut(normalize("我的电话是13912345678")) == ["我", "的", "电话", "是", "13912345678"]
    assert lexicon.tokenizer.lcut("13912345678") == ["139", "12345", "678"]  # (what jieba alone does)
    tokens = lexicon.index_tokens(normalize("座机0591-87612345，订单号A12345B"))
    assert {"87612345", "a12345b"} <= set(tokens) and "12345" not in tokens
    assert "12345" in lexicon.query_words(normalize("打12345能问商务局的事吗"))
    assert lexicon.cut(normalize("iPhone12多少钱")) == ["iphone12", "多少钱"]


def test_a_word_moved_between_stop_and_light_words_changes_the_signature(
    tmp_path: Path, lexicon: Lexicon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached tokens leave stop words out, so a word moved from the light words to the stop words
    (想, 来: the dictionary the same) must redo them: the signature names each word's role."""
    import shutil

    import knowledge.segment as segment

    data = tmp_path / "lexicon"
    shutil.copytree(DATA_DIR, data)
    light = (data / "light_words.txt").read_text(encoding="utf-8")
    assert " 讲 " in light
    (data / "light_words.txt").write_text(light.replace(" 讲 ", " ", 1), encoding="utf-8")
    with (data / "stopwords.txt").open("a", encoding="utf-8") as f:
        f.write("讲\n")
    monkeypatch.setattr(segment, "DATA_DIR", data)
    moved = Lexicon.load()
    assert "讲" in moved.stopwords and "讲" not in moved.light_words
    assert moved.signature != lexicon.signature


def test_a_word_moved_to_another_synonym_group_changes_the_signature(
    tmp_path: Path, lexicon: Lexicon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index snapshot holds each word as its synonym group's first word, so a word read as another
    (保障 as 支持: both words already in the dictionary, which is the same) must not leave it current:
    the signature names which word each synonym reads as."""
    import shutil

    import knowledge.segment as segment

    data = tmp_path / "lexicon"
    shutil.copytree(DATA_DIR, data)
    with (data / "synonyms.txt").open("a", encoding="utf-8") as f:
        f.write("支持 保障\n")
    monkeypatch.setattr(segment, "DATA_DIR", data)
    moved = Lexicon.load()
    assert moved.canonical("保障") == "支持" and lexicon.canonical("保障") == "保障"
    assert moved.signature != lexicon.signature

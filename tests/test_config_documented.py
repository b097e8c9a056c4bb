"""config.example.toml documents every setting with its default, and loads as it is."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from bot.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _fields() -> list[tuple[str, str, object]]:
    defaults = Settings()
    return [
        (section.name, f.name, getattr(getattr(defaults, section.name), f.name))
        for section in dataclasses.fields(Settings)
        for f in dataclasses.fields(getattr(defaults, section.name))
    ]


def _section_text(text: str, section: str) -> str:
    """The lines of one [section] of the file, comments included."""
    m = re.search(rf"^\[{re.escape(section)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, flags=re.S | re.M)
    assert m, f"config.example.toml has no [{section}] section"
    return m.group(1)


@pytest.fixture(scope="module")
def example() -> tuple[str, dict]:
    assert EXAMPLE.exists(), "config.example.toml is missing"
    text = EXAMPLE.read_text(encoding="utf-8")
    return text, tomllib.loads(text)


def test_the_example_loads_and_equals_the_defaults(example: tuple[str, dict]) -> None:
    assert load_settings(EXAMPLE, env={}) == Settings()


@pytest.mark.parametrize(("section", "key", "default"), _fields(), ids=[f"{s}.{k}" for s, k, _ in _fields()])
def test_every_setting_is_documented_with_its_default(
    example: tuple[str, dict], section: str, key: str, default: object
) -> None:
    text, parsed = example
    if default is None:
        # TOML has no null: a key without a value by default is shown commented out.
        assert key not in parsed.get(section, {})
        assert re.search(rf"^#\s*{re.escape(key)}\s*=", _section_text(text, section), flags=re.M), (
            f"[{section}] {key} is not shown (commented out) in config.example.toml"
        )
    else:
        assert section in parsed, f"config.example.toml lacks [{section}]"
        assert key in parsed[section], f"[{section}] {key} is not in config.example.toml"
        value = parsed[section][key]
        assert value == default and type(value) is type(default), (
            f"[{section}] {key} = {value!r} in config.example.toml, default is {default!r}"
        )


def test_every_key_has_a_comment(example: tuple[str, dict]) -> None:
    # Each section explains its keys: a comment line somewhere above each key within its section.
    text, parsed = example
    for section, keys in parsed.items():
        body = _section_text(text, section)
        assert re.search(r"^#", body, flags=re.M), f"[{section}] has no explanation"
        assert set(keys) <= {f.name for f in dataclasses.fields(getattr(Settings(), section))}

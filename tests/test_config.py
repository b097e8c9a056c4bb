"""bot/config.py: one TOML file validated into typed settings; bad values fail with the key and reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, settings_from_dict

ROOT = Path(__file__).resolve().parent.parent


def test_no_file_means_defaults() -> None:
    s = load_settings(None, env={})
    assert s == Settings()
    assert s.database.url == "sqlite:///var/policybot.db"
    assert s.telegram.mode == "polling"
    assert s.staff.chat_id is None and s.staff.user_ids == []


def test_a_valid_file(tmp_path: Path) -> None:
    f = tmp_path / "ok.toml"
    f.write_text(
        """
[database]
url = "postgresql://bot@db/policybot"

[matching]
precision = 0.95
suggest_confidence = 0.4
max_suggestions = 5

[telegram]
token = "123:abc"
mode = "webhook"
webhook_url = "https://bot.example.org/tg"
webhook_secret = "s3cret_-"

[staff]
chat_id = -1001234567890
user_ids = [11, 22]
working_hours = "Mon-Fri 09:00-17:00; Sat 09:00-12:00"
timezone = "Europe/Berlin"

[logging]
level = "debug"
format = "text"
""",
        encoding="utf-8",
    )
    s = load_settings(f, env={})
    assert s.database.url == "postgresql://bot@db/policybot"
    assert s.matching.precision == 0.95 and s.matching.max_suggestions == 5
    assert (
        s.matching.max_question_chars == Settings().matching.max_question_chars
    )  # untouched keys keep defaults
    assert s.telegram.mode == "webhook"
    assert s.staff.chat_id == -1001234567890 and s.staff.user_ids == [11, 22]
    assert s.staff.timezone == "Europe/Berlin"
    assert isinstance(s.matching.precision, float)


@pytest.mark.parametrize(
    ("raw", "where", "reason"),
    [
        ({"databse": {}}, "[databse]", "unknown section"),
        ({"matching": 3}, "[matching]", "must be a table"),
        ({"matching": {"answer_treshold": 0.5}}, "[matching] answer_treshold", "unknown key"),
        ({"web": {"port": "eighty"}}, "[web] port", "must be a whole number, got 'eighty'"),
        ({"web": {"port": 80.5}}, "[web] port", "must be a whole number"),
        ({"web": {"port": True}}, "[web] port", "must be a whole number"),
        ({"web": {"enabled": "yes"}}, "[web] enabled", "must be true or false"),
        ({"matching": {"precision": "high"}}, "[matching] precision", "must be a number"),
        ({"telegram": {"token": 123}}, "[telegram] token", "must be a string"),
        ({"staff": {"user_ids": 5}}, "[staff] user_ids", "must be a list"),
        ({"staff": {"user_ids": [1, "x"]}}, "[staff] user_ids[1]", "must be a whole number"),
        ({"telegram": {"mode": "poll"}}, "[telegram] mode", "must be one of polling, webhook, got 'poll'"),
        ({"matching": {"precision": 1.5}}, "[matching] precision", "between 0 and 1, got 1.5"),
        ({"matching": {"suggest_confidence": -0.1}}, "[matching] suggest_confidence", "between 0 and 1"),
        ({"matching": {"precision": float("nan")}}, "[matching] precision", "between 0 and 1"),
        (
            {"matching": {"precision": 0.3, "suggest_confidence": 0.5}},
            "[matching] suggest_confidence",
            "must not exceed precision",
        ),
        ({"matching": {"max_suggestions": 0}}, "[matching] max_suggestions", "between 1 and 10"),
        ({"matching": {"max_question_chars": 0}}, "[matching] max_question_chars", "must be positive"),
        ({"staff": {"working_hours": "weekdays 9-5"}}, "[staff] working_hours", "cannot read"),
        ({"staff": {"working_hours": "Mon-Fri 09:00-25:00"}}, "[staff] working_hours", "out of range"),
        ({"staff": {"working_hours": "Fri-Mon 09:00-17:00"}}, "[staff] working_hours", "runs backwards"),
        ({"staff": {"working_hours": "Mon 17:00-09:00"}}, "[staff] working_hours", "ends before it starts"),
        ({"staff": {"working_hours": "Mon-Fry 09:00-17:00"}}, "[staff] working_hours", "unknown day"),
        ({"staff": {"working_hours": " ; "}}, "[staff] working_hours", "no working hours"),
        ({"staff": {"timezone": "Mars/Olympus"}}, "[staff] timezone", "unknown time zone 'Mars/Olympus'"),
        ({"staff": {"timezone": ""}}, "[staff] timezone", "unknown time zone"),
        ({"staff": {"sla_minutes": 0}}, "[staff] sla_minutes", "must be positive"),
        ({"web": {"port": 70000}}, "[web] port", "between 0 and 65535"),
        ({"database": {"pool_size": 0}}, "[database] pool_size", "between 1 and 100"),
        ({"database": {"max_overflow": -1}}, "[database] max_overflow", "between 0 and 100"),
        ({"database": {"pool_size": 1, "max_overflow": 0}}, "[database] pool_size", "at least 2 connections"),
        ({"database": {"pool_timeout": 0}}, "[database] pool_timeout", "more than 0"),
        ({"telegram": {"port": -1}}, "[telegram] port", "between 0 and 65535"),
        ({"telegram": {"base_url": "ftp://x"}}, "[telegram] base_url", "http(s) URL"),
        (
            {"telegram": {"token": "1:a", "mode": "webhook"}},
            "[telegram] webhook_url",
            "required when mode = 'webhook'",
        ),
        (
            {
                "telegram": {
                    "token": "1:a",
                    "mode": "webhook",
                    "webhook_url": "https://x/y",
                    "webhook_secret": "a b",
                }
            },
            "[telegram] webhook_secret",
            "required in webhook mode",
        ),
        ({"logging": {"level": "LOUD"}}, "[logging] level", "must be DEBUG, INFO, WARNING or ERROR"),
        ({"logging": {"format": "xml"}}, "[logging] format", "must be json or text"),
        ({"web": {"max_body_bytes": 10}}, "[web] max_body_bytes", "at least 1024"),
    ],
)
def test_invalid_values_name_the_key_and_the_reason(raw: dict, where: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw, env={})
    message = str(info.value)
    assert message.startswith(f"{where}: "), message
    assert reason in message


def test_webhook_without_token_is_not_checked() -> None:
    # Telegram does not run without a token, so its webhook keys are not required then.
    assert settings_from_dict({"telegram": {"mode": "webhook"}}, env={}).telegram.mode == "webhook"


def test_env_overrides_secrets_and_database() -> None:
    env = {
        "POLICYBOT_TELEGRAM_TOKEN": "999:env",
        "POLICYBOT_WEBHOOK_SECRET": "envsecret",
        "POLICYBOT_DATABASE_URL": "postgresql://env@db/x",
        "POLICYBOT_WEB_SESSION_SECRET": "cookie-key",
        "UNRELATED": "x",
    }
    s = settings_from_dict(
        {"telegram": {"token": "from-file"}, "database": {"url": "sqlite:///f.db"}}, env=env
    )
    assert s.telegram.token == "999:env"  # the environment wins over the file
    assert s.telegram.webhook_secret == "envsecret"
    assert s.database.url == "postgresql://env@db/x"
    assert s.web.session_secret == "cookie-key"


def test_empty_env_values_do_not_override() -> None:
    s = settings_from_dict({"telegram": {"token": "from-file"}}, env={"POLICYBOT_TELEGRAM_TOKEN": ""})
    assert s.telegram.token == "from-file"


def test_env_values_are_validated_too() -> None:
    env = {"POLICYBOT_TELEGRAM_TOKEN": "1:a", "POLICYBOT_WEBHOOK_SECRET": "not allowed!"}
    raw = {"telegram": {"mode": "webhook", "webhook_url": "https://x/y"}}
    with pytest.raises(ConfigError, match=r"^\[telegram\] webhook_secret: "):
        settings_from_dict(raw, env=env)


def test_load_settings_uses_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYBOT_TELEGRAM_TOKEN", "42:from-env")
    f = tmp_path / "c.toml"
    f.write_text("[telegram]\nmode = 'polling'\n", encoding="utf-8")
    assert load_settings(f).telegram.token == "42:from-env"


def test_whole_numbers_from_strings_are_accepted() -> None:
    # values that arrive as text (the environment) are read where unambiguous
    s = settings_from_dict({"web": {"port": " 8081 "}, "staff": {"chat_id": "-100123"}}, env={})
    assert s.web.port == 8081 and s.staff.chat_id == -100123


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[telegram\nmode = 'polling'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[telegram]\ntoken = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(latin, env={})


def test_replace_returns_a_changed_copy() -> None:
    s = Settings()
    t = s.replace("matching", precision=0.95)
    assert t.matching.precision == 0.95 and s.matching.precision == 0.7
    assert t.telegram is s.telegram


def test_cli_stops_on_a_bad_config_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[telegram]\nmode = 'poll'\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "policybot", "--config", str(bad), "ask", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert "config error" in proc.stderr
    assert "[telegram] mode: must be one of polling, webhook, got 'poll'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "var").exists()  # nothing was opened or created

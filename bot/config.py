"""Settings: one TOML file validated into frozen dataclasses at start.

Every key has a default, so an empty file (or no file) is a valid configuration. Secrets can be
overridden by environment variables. An invalid file fails at start with a ``ConfigError`` that
names the key and the reason, e.g. ``[telegram] mode: must be one of polling, webhook``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DB_URL = "sqlite:///var/policybot.db"
TELEGRAM_API = "https://api.telegram.org/bot"
WECHAT_API = "https://api.weixin.qq.com"

# Environment variables that override secrets and deployment-specific keys.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "POLICYBOT_TELEGRAM_TOKEN": ("telegram", "token"),
    "POLICYBOT_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "POLICYBOT_DATABASE_URL": ("database", "url"),
    "POLICYBOT_WEB_SESSION_SECRET": ("web", "session_secret"),
    "POLICYBOT_WECHAT_TOKEN": ("wechat", "token"),
    "POLICYBOT_WECHAT_APP_SECRET": ("wechat", "app_secret"),
    "POLICYBOT_WECHAT_AES_KEY": ("wechat", "encoding_aes_key"),
    "POLICYBOT_WECOM_WEBHOOK_URL": ("wecom", "webhook_url"),
}


# The responsible offices named in the seed document (（责任科室：…）), plus 办公室.
DEFAULT_OFFICES = ("办公室", "外资与外经科", "市场秩序科")
DEFAULT_CATEGORY_OFFICES = {
    "外贸外资": "外资与外经科",
    "流通行业管理": "市场秩序科",
    "消费促进": "市场秩序科",
    "政府信息公开": "办公室",
    "机构信息": "办公室",
}


class ConfigError(ValueError):
    """An invalid configuration: the message names the key and the reason."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = DEFAULT_DB_URL
    echo: bool = False
    index_dir: str = ""
    index_poll_seconds: float = 0.5
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class MatchingSettings:
    precision: float = 0.7
    suggest_confidence: float = 0.5
    max_suggestions: int = 3
    max_question_chars: int = 2000
    synonyms_file: str = ""
    user_dict_file: str = ""


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str = ""
    base_url: str = TELEGRAM_API
    mode: str = "polling"
    webhook_url: str = ""
    webhook_secret: str = ""
    listen: str = "127.0.0.1"
    port: int = 8443
    rate_limit_messages: int = 8
    rate_limit_seconds: int = 30
    send_per_second: float = 25.0
    per_chat_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class StaffSettings:
    chat_id: int | None = None
    user_ids: list[int] = field(default_factory=list)
    sla_minutes: int = 120
    working_hours: str = "Mon-Fri 08:30-12:00,14:30-17:30"
    timezone: str = "Asia/Shanghai"
    # The responsible offices (责任科室) tickets are routed to, the office of anything unrouted, and the
    # office answering for each knowledge category when an entry names none.
    offices: list[str] = field(default_factory=lambda: list(DEFAULT_OFFICES))
    default_office: str = "办公室"
    category_offices: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_OFFICES))
    # Seconds between the live console's checks of the database (server-sent events).
    live_seconds: int = 3


@dataclass(frozen=True, slots=True)
class WebSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    session_secret: str = ""
    max_body_bytes: int = 16384
    rate_limit_per_minute: int = 30
    poll_seconds: int = 3


@dataclass(frozen=True, slots=True)
class WechatSettings:
    token: str = ""
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str = ""
    path: str = "/wechat"
    api_base_url: str = WECHAT_API
    reply_seconds: float = 4.0
    push_window_hours: float = 48.0


@dataclass(frozen=True, slots=True)
class WecomSettings:
    webhook_url: str = ""
    daily_summary_at: str = "17:45"


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    enabled: bool = True
    review: bool = True
    deadline_hours: int = 12
    scan_seconds: int = 15
    digest_hour: int = 9
    max_per_visitor: int = 20
    max_changes_per_hour: int = 30
    max_new_per_scan: int = 10


# The shipped knowledge base's most asked matters: the welcome's hot questions before there is history.
DEFAULT_HOT = (
    "faq-bureau-002",
    "guide-prepaid-card-filing",
    "guide-ogi-application",
    "guide-recycling-filing",
    "guide-fdi-annual-report",
    "faq-bureau-001",
)


@dataclass(frozen=True, slots=True)
class DeskSettings:
    hot_count: int = 6
    hot_days: int = 30
    hot_defaults: list[str] = field(default_factory=lambda: list(DEFAULT_HOT))
    related_count: int = 4
    reply_page_per_minute: int = 10


@dataclass(frozen=True, slots=True)
class HandoffSettings:
    # True: a question without a reliable answer opens a staff ticket at once (the behaviour before
    # issue 15); False: the visitor is offered 转人工 and the ticket opens only when asked.
    auto_escalate: bool = False


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    # Conversations, tickets, processed update ids and delivered outbox rows older than this many days
    # are deleted by ``policybot purge`` and the service's daily purge (their statistics are kept).
    retention_days: int = 180


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    matching: MatchingSettings = field(default_factory=MatchingSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    web: WebSettings = field(default_factory=WebSettings)
    wechat: WechatSettings = field(default_factory=WechatSettings)
    wecom: WecomSettings = field(default_factory=WecomSettings)
    subscriptions: SubscriptionSettings = field(default_factory=SubscriptionSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    desk: DeskSettings = field(default_factory=DeskSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def replace(self, section: str, **values: object) -> Settings:
        """Return a copy with some keys of one section changed (tests and CLI overrides)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})


_SECTION_TYPES = {
    "database": DatabaseSettings,
    "matching": MatchingSettings,
    "telegram": TelegramSettings,
    "staff": StaffSettings,
    "web": WebSettings,
    "wechat": WechatSettings,
    "wecom": WecomSettings,
    "subscriptions": SubscriptionSettings,
    "handoff": HandoffSettings,
    "desk": DeskSettings,
    "privacy": PrivacySettings,
    "logging": LoggingSettings,
}


def load_settings(path: str | Path | None = None, env: typing.Mapping[str, str] | None = None) -> Settings:
    """Read and validate the TOML file at ``path`` (None: defaults only), then apply env overrides."""
    raw: dict[str, object] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{p}: file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text") from exc
    return settings_from_dict(raw, env=os.environ if env is None else env)


def settings_from_dict(raw: dict[str, object], env: typing.Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed TOML document (plus env overrides) into ``Settings``."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for var, (section, key) in ENV_OVERRIDES.items():
        override = (env or {}).get(var)
        if override:
            raw.setdefault(section, {})
            if isinstance(raw[section], dict):
                raw[section][key] = override  # type: ignore[index]
    sections: dict[str, object] = {}
    for name, value in raw.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(_SECTION_TYPES)})")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}]: must be a table")
        sections[name] = _build_section(name, _SECTION_TYPES[name], value)
    settings = Settings(**sections)  # type: ignore[arg-type]
    _check_semantics(settings)
    return settings


def _build_section(name: str, cls: type, values: dict[str, object]) -> object:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{name}] {key}: unknown key (known: {', '.join(sorted(known))})")
        kwargs[key] = _coerce(f"[{name}] {key}", hints[key], value)
    return cls(**kwargs)


def _coerce(where: str, hint: object, value: object) -> object:
    """Check ``value`` against a simple type hint; env strings are converted where unambiguous."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(where, args[0], value)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list")
        return [_coerce(f"{where}[{i}]", item, v) for i, v in enumerate(value)]
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a table")
        return {
            _coerce(f"{where} key", key_type, k): _coerce(f"{where}.{k}", value_type, v)
            for k, v in value.items()
        }
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise ConfigError(f"{where}: must be a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: must be a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type")  # pragma: no cover - a programming error


def _check_semantics(s: Settings) -> None:
    if not 0 <= s.database.index_poll_seconds <= 60:
        raise ConfigError("[database] index_poll_seconds: must be between 0 (off) and 60")
    if not 1 <= s.database.pool_size <= 100:
        raise ConfigError("[database] pool_size: must be between 1 and 100")
    if not 0 <= s.database.max_overflow <= 100:
        raise ConfigError("[database] max_overflow: must be between 0 and 100")
    if s.database.pool_size + s.database.max_overflow < 2:
        # Starting on an empty database holds the migration lock on one connection while migrating
        # and loading the default knowledge on another.
        raise ConfigError("[database] pool_size: with max_overflow, at least 2 connections are needed")
    if not 0 < s.database.pool_timeout <= 600:
        raise ConfigError("[database] pool_timeout: must be more than 0 and at most 600 seconds")
    if not 0 < s.wechat.push_window_hours <= 48:
        raise ConfigError("[wechat] push_window_hours: must be more than 0 and at most 48 (WeChat's limit)")
    m = s.matching
    for key in ("precision", "suggest_confidence"):
        v = getattr(m, key)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"[matching] {key}: must be between 0 and 1, got {v}")
    if m.suggest_confidence > m.precision:
        raise ConfigError("[matching] suggest_confidence: must not exceed precision")
    if not 1 <= m.max_suggestions <= 10:
        raise ConfigError("[matching] max_suggestions: must be between 1 and 10")
    if m.max_question_chars < 1:
        raise ConfigError("[matching] max_question_chars: must be positive")
    t = s.telegram
    if t.mode not in ("polling", "webhook"):
        raise ConfigError(f"[telegram] mode: must be one of polling, webhook, got {t.mode!r}")
    if t.mode == "webhook" and t.token:
        if not t.webhook_url:
            raise ConfigError("[telegram] webhook_url: required when mode = 'webhook'")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", t.webhook_secret):
            raise ConfigError("[telegram] webhook_secret: required in webhook mode, 1-256 of A-Z a-z 0-9 _ -")
    if not t.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"[telegram] base_url: must be an http(s) URL, got {t.base_url!r}")
    for where, port in (("[telegram] port", t.port), ("[web] port", s.web.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{where}: must be between 0 and 65535")
    try:
        ZoneInfo(s.staff.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"[staff] timezone: unknown time zone {s.staff.timezone!r}") from exc
    from bot.hours import WorkingHours  # local import: hours imports nothing from config

    try:
        WorkingHours.parse(s.staff.working_hours, s.staff.timezone)
    except ValueError as exc:
        raise ConfigError(f"[staff] working_hours: {exc}") from exc
    if s.staff.sla_minutes < 1:
        raise ConfigError("[staff] sla_minutes: must be positive")
    _check_offices(s.staff)
    if s.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"[logging] level: must be DEBUG, INFO, WARNING or ERROR, got {s.logging.level!r}")
    if s.logging.format not in ("json", "text"):
        raise ConfigError(f"[logging] format: must be json or text, got {s.logging.format!r}")
    if s.web.max_body_bytes < 1024:
        raise ConfigError("[web] max_body_bytes: must be at least 1024")
    _check_wechat(s.wechat, s.web)
    _check_wecom(s.wecom)
    if not 0 < t.send_per_second <= 30:
        raise ConfigError("[telegram] send_per_second: must be above 0 and at most 30 (Telegram's limit)")
    if not 0 <= t.per_chat_seconds <= 60:
        raise ConfigError("[telegram] per_chat_seconds: must be between 0 and 60")
    _check_subscriptions(s.subscriptions)
    _check_desk(s.desk)
    if not 0 < s.privacy.retention_days <= 36600:
        raise ConfigError(
            f"[privacy] retention_days: must be a number of days above 0, got {s.privacy.retention_days}"
        )


def _check_desk(d: DeskSettings) -> None:
    if not 0 <= d.hot_count <= 12:
        raise ConfigError(f"[desk] hot_count: must be between 0 (none) and 12, got {d.hot_count}")
    if not 1 <= d.hot_days <= 365:
        raise ConfigError(f"[desk] hot_days: must be between 1 and 365, got {d.hot_days}")
    for i, entry_id in enumerate(d.hot_defaults):
        if not entry_id.strip() or len(entry_id) > 200:
            raise ConfigError(f"[desk] hot_defaults[{i}]: must be an entry id (1-200 characters)")
    if not 0 <= d.related_count <= 8:
        raise ConfigError(f"[desk] related_count: must be between 0 (none) and 8, got {d.related_count}")
    if not 1 <= d.reply_page_per_minute <= 600:
        raise ConfigError("[desk] reply_page_per_minute: must be between 1 and 600")


def _check_wechat(w: WechatSettings, web: WebSettings) -> None:
    if not w.api_base_url.startswith(("http://", "https://")):
        raise ConfigError(f"[wechat] api_base_url: must be an http(s) URL, got {w.api_base_url!r}")
    if not re.fullmatch(r"/[A-Za-z0-9_./-]{0,200}", w.path) or w.path.startswith(("/api/", "/console")):
        raise ConfigError(
            f"[wechat] path: must be a URL path like /wechat outside /api and /console, got {w.path!r}"
        )
    if not 0.5 <= w.reply_seconds <= 4.5:
        raise ConfigError("[wechat] reply_seconds: must be between 0.5 and 4.5 (WeChat waits 5 seconds)")
    if not w.token:
        return
    if not web.enabled:
        raise ConfigError(
            "[wechat] token: the WeChat channel is served by the web server; set [web] enabled = true"
        )
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", w.token):
        raise ConfigError(
            "[wechat] token: 3-32 letters or digits (as in the official account's server settings)"
        )
    if not w.app_id:
        raise ConfigError("[wechat] app_id: required when [wechat] token is set")
    if w.encoding_aes_key and not re.fullmatch(r"[A-Za-z0-9]{43}", w.encoding_aes_key):
        raise ConfigError("[wechat] encoding_aes_key: must be 43 letters or digits (empty: plaintext mode)")


def _check_wecom(w: WecomSettings) -> None:
    if w.webhook_url and not w.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"[wecom] webhook_url: must be an http(s) URL, got {w.webhook_url[:40]!r}")
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", w.daily_summary_at):
        raise ConfigError(f"[wecom] daily_summary_at: must be HH:MM, got {w.daily_summary_at!r}")


def _check_offices(staff: StaffSettings) -> None:
    offices = staff.offices
    if not offices:
        raise ConfigError("[staff] offices: must name at least one office")
    for name in offices:
        if not name.strip() or len(name) > 100:
            raise ConfigError(f"[staff] offices: office names must be 1-100 characters, got {name!r}")
    if len(set(offices)) != len(offices):
        raise ConfigError("[staff] offices: an office is named twice")
    if staff.default_office not in offices:
        raise ConfigError(f"[staff] default_office: {staff.default_office!r} is not one of [staff] offices")
    for category, office in staff.category_offices.items():
        if office not in offices:
            raise ConfigError(
                f"[staff] category_offices.{category}: {office!r} is not one of [staff] offices"
            )
    if not 1 <= staff.live_seconds <= 60:
        raise ConfigError("[staff] live_seconds: must be between 1 and 60")


def _check_subscriptions(sub: SubscriptionSettings) -> None:
    if not 1 <= sub.deadline_hours <= 168:
        raise ConfigError("[subscriptions] deadline_hours: must be between 1 and 168")
    if not 1 <= sub.scan_seconds <= 60:
        raise ConfigError(
            "[subscriptions] scan_seconds: must be between 1 and 60 (changes are noticed within a minute)"
        )
    if not 0 <= sub.digest_hour <= 23:
        raise ConfigError("[subscriptions] digest_hour: must be an hour between 0 and 23")
    for key in ("max_per_visitor", "max_changes_per_hour", "max_new_per_scan"):
        if getattr(sub, key) < 1:
            raise ConfigError(f"[subscriptions] {key}: must be positive")

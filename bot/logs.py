"""Structured logging: one JSON object a line (or plain text), with personal data kept out.

Every record passes ``PrivacyFilter`` on its way out: phone, ID-card and bank-card numbers, e-mail
addresses and names in the message, the ``extra`` fields and the traceback are masked
(``bot.privacy``), the configured secrets (the Telegram token, the webhook and session secrets, the
WeChat secrets), anything shaped like a Telegram bot token and visitor tokens in a poll URL or a
JSON ``"token"`` field are replaced by ``***``, and ``extra``
fields named like a secret (``token``, ``password``, ``secret``, ``cookie``) are never written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from bot import privacy

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JSONFormatter(logging.Formatter):
    """Render a record and its ``extra`` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STD})
        if record.exc_info:
            data["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


HIDDEN = "***"
# Extra fields never written, whatever their value: a visitor token, a password, a secret, a cookie.
SECRET_FIELDS = re.compile(r"token|passw|secret|cookie|credential|api_key", re.I)
# A Telegram bot token (``123456789:AAE…``), also inside a Bot API URL.
BOT_TOKEN = re.compile(r"\d{5,12}:[A-Za-z0-9_-]{30,}")
# A visitor token where it shows in text: the poll URL's path, or a JSON body's "token" field.
VISITOR_TOKEN = re.compile(r"""(/api/conversations/|["']token["']\s*:\s*["'])[A-Za-z0-9_-]{8,128}""")


class PrivacyFilter(logging.Filter):
    """Masks personal data and hides secrets in a record before any handler writes it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is hidden whole; short values are no secret.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def clean(self, text: str) -> str:
        """``text`` with the secrets hidden and personal data masked."""
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        text = VISITOR_TOKEN.sub(lambda m: m.group(1) + HIDDEN, BOT_TOKEN.sub(HIDDEN, text))
        return privacy.mask(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = self.clean(message), None
        for key, value in list(vars(record).items()):
            if key in _STD:
                continue
            if SECRET_FIELDS.search(key):
                setattr(record, key, HIDDEN)
            elif isinstance(value, str):
                setattr(record, key, self.clean(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


def setup_logging(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Send policybot's logs to stderr, personal data masked and ``secrets`` hidden; quiet the chatty
    libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(PrivacyFilter(secrets))
    handler.setFormatter(
        JSONFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic: a migration at start-up says nothing unless it fails (the address is what start-up prints)
    for name in ("httpx", "telegram", "apscheduler", "aiohttp.access", "jieba", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def pseudonym(value: object) -> str:
    """A stable, non-reversible tag for a user or chat id, for logs (never the id itself)."""
    return hashlib.sha256(f"policybot:{value}".encode()).hexdigest()[:12]


def secrets_of(settings: Any) -> list[str]:
    """The configured secrets, to hide wherever they would appear in a log."""
    return [
        settings.telegram.token,
        settings.telegram.webhook_secret,
        settings.web.session_secret,
        settings.wechat.token,
        settings.wechat.app_secret,
        settings.wechat.encoding_aes_key,
        settings.wecom.webhook_url,
    ]

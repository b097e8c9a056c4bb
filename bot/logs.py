"""Structured logging: one JSON object a line (or plain text), with personal data kept out."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from typing import Any

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
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send policybot's logs to stderr; quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
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

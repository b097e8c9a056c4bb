"""Typed state of the aiohttp application (``web.AppKey``; no string keys)."""

from __future__ import annotations

from aiohttp import web

from bot.app import App
from bot.config import WebSettings
from bot.limits import LoginLimits, RateLimiter

CORE = web.AppKey("policybot_core", App)
WEB_SETTINGS = web.AppKey("policybot_web_settings", WebSettings)
ASK_LIMITER = web.AppKey("policybot_ask_limiter", RateLimiter)
ADDRESS_LIMITER = web.AppKey("policybot_address_limiter", RateLimiter)
LOGIN_LIMITER = web.AppKey("policybot_login_limiter", LoginLimits)


def core(request: web.Request) -> App:
    """The policybot core behind this request's application."""
    return request.app[CORE]

"""create_app: the aiohttp application that brokers every call.

App-lifetime state hangs on ``web.AppKey``s; long-lived resources are opened and closed in ``cleanup_ctx``.
When no OpenAI key is configured the embedded local engine is mounted under ``/v1`` and this server is its
own upstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from voicebot import __version__
from voicebot.config import Settings, Upstream
from voicebot.server.capacity import (
    CALL_SLOTS,
    CallSlots,
    LoopLagMonitor,
    freeze_startup_heap,
    monitor_lifetime,
)

log = logging.getLogger("voicebot.server")

SETTINGS = web.AppKey("settings", Settings)
STARTED_AT = web.AppKey("started_at", float)
# The server's own base URL (``http://host:port``), known once the site is bound.
BASE_URL = web.AppKey("base_url", str)


def upstream_of(app: web.Application) -> Upstream:
    """The model upstream for calls served by ``app``."""
    return app[SETTINGS].upstream(app[BASE_URL])


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.monotonic() - app[STARTED_AT], 3),
            "upstream": "local" if settings.uses_local_engine else "openai",
        }
    )


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    app[STARTED_AT] = time.monotonic()
    settings = app[SETTINGS]
    log.info(
        "voicebot %s starting; upstream: %s",
        __version__,
        "embedded local engine" if settings.uses_local_engine else (settings.openai_base_url or "OpenAI"),
    )
    yield
    log.info("voicebot stopped")


def create_app(settings: Settings | None = None) -> web.Application:
    """Build the voicebot app. ``settings`` defaults to ``Settings()`` (environment variables)."""
    settings = settings or Settings()
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SETTINGS] = settings
    app[BASE_URL] = f"http://{settings.host}:{settings.port}"
    app.cleanup_ctx.append(_lifetime)
    app.router.add_get("/healthz", healthz)
    # one admission control for browser and phone calls: the cap, and load shedding on event-loop lag
    monitor = LoopLagMonitor() if settings.shed_load_lag_ms is not None else None
    app[CALL_SLOTS] = CallSlots(settings.max_calls, monitor=monitor, max_lag_ms=settings.shed_load_lag_ms)
    app.cleanup_ctx.append(monitor_lifetime)
    from voicebot.server.sessions import AGENT, preload_call_modules, resolve_agent

    app[AGENT] = resolve_agent(settings)
    preload_call_modules(settings)
    # browser calls (WebRTC signalling, call registry, demo page)
    from voicebot.server.routes_calls import setup_call_routes

    setup_call_routes(app)
    # phone calls over SIP/RTP (only when sip_port is set)
    from voicebot.server.sip import setup_sip
    from voicebot.server.sip_webhook import setup_openai_sip

    setup_sip(app)
    setup_openai_sip(app)  # OpenAI-native SIP webhook (only when openai_webhook_secret is set)
    if settings.uses_local_engine:
        from voicebot.local.app import create_engine_app

        app.add_subapp("/v1", create_engine_app(settings))
    app.on_startup.append(freeze_startup_heap)  # after every other startup step (the engine's models too)
    return app

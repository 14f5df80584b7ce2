"""The local engine's aiohttp sub-application, mounted under ``/v1``."""

from __future__ import annotations

import time

from aiohttp import web

from voicebot.config import Settings

ENGINE_SETTINGS = web.AppKey("engine_settings", Settings)

MODELS = ("gpt-realtime", "gpt-realtime-mini", "gpt-4o-mini-transcribe", "whisper-1", "gpt-4o-mini-tts", "tts-1")


async def list_models(request: web.Request) -> web.Response:
    now = int(time.time())
    data = [{"id": m, "object": "model", "created": now, "owned_by": "voicebot-local"} for m in MODELS]
    return web.json_response({"object": "list", "data": data})


def create_engine_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[ENGINE_SETTINGS] = settings
    app.router.add_get("/models", list_models)
    return app

"""The local engine's aiohttp sub-application, mounted under ``/v1``.

Routes: ``GET /models``, ``GET /models/{id}``, ``POST /responses`` (+ ``GET``/``DELETE /responses/{id}``),
``POST /audio/transcriptions``, ``POST /audio/speech``, ``POST /realtime/client_secrets``, the retired beta
``POST /realtime/sessions``, and the Realtime WebSocket. One speech stack and one brain live for the app's
lifetime (``cleanup_ctx``); an embedder may lend its own stack (or brain) by setting ``keys.SPEECH`` (or
``keys.BRAIN``) before startup; a lent stack stays open when the app stops.

Settings used at startup: ``local_rules_path`` (the brain's rules), ``local_stt`` / ``local_tts`` /
``local_vad`` (speech tiers), ``local_record_dir`` (record every Realtime session) and ``local_replay_path``
(replay one recording instead of emulating). A bad value fails startup with a ``ConfigError``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from voicebot.config import Settings
from voicebot.errors import ConfigError
from voicebot.local import keys
from voicebot.local.audio_api import add_audio_routes
from voicebot.local.client_secrets import add_realtime_rest_routes
from voicebot.local.http_errors import ApiError, add_engine_headers, engine_middleware
from voicebot.local.realtime.route import RECORD_DIR, REPLAY_PATH, add_realtime_routes
from voicebot.local.response_store import ResponseStore
from voicebot.local.responses import add_responses_routes
from voicebot.local.sip_calls import register_sip_call_routes

if TYPE_CHECKING:
    from voicebot.local.brain import Brain

log = logging.getLogger("voicebot.local")

ENGINE_SETTINGS = keys.ENGINE_SETTINGS  # kept importable from here

MODELS = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe",
    "whisper-1",
    "gpt-4o-mini-tts",
    "tts-1",
    "tts-1-hd",
    "gpt-4.1-mini",
    "gpt-5",
)
_MODELS_CREATED = 1_700_000_000  # a fixed date: the list does not change while the engine runs


def _model_object(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _MODELS_CREATED, "owned_by": "voicebot-local"}


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [_model_object(m) for m in MODELS]})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    if model_id not in MODELS:
        raise ApiError(
            f"The model '{model_id}' does not exist", status=404, param="model", code="model_not_found"
        )
    return web.json_response(_model_object(model_id))


def _load_brain(settings: Settings) -> Brain:
    """The brain with ``settings.local_rules_path``'s rules (none when unset); a bad file is a ConfigError."""
    from voicebot.local.brain import Brain, RulesConfig

    path = settings.local_rules_path
    if path is None:
        return Brain()
    try:
        rules = RulesConfig.load(path)
    except (OSError, ValueError) as exc:  # tomllib and json errors are ValueErrors
        raise ConfigError(f"cannot load the brain rules file {path}: {exc}") from exc
    log.info("local engine brain: %d rules from %s", len(rules.rules), path)
    return Brain(rules)


def _prepare_record_replay(app: web.Application) -> None:
    """Check ``local_record_dir`` / ``local_replay_path`` at startup: a typo fails before the first call."""
    record_dir = app.get(RECORD_DIR)
    if record_dir is not None:
        try:
            record_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the recording directory {record_dir}: {exc}") from exc
        log.info("local engine: recording Realtime sessions to %s", record_dir)
    replay = app.get(REPLAY_PATH)
    if replay is not None:
        if not replay.is_file():
            raise ConfigError(f"the replay file {replay} does not exist")
        log.info("local engine: replaying %s on every Realtime connection", replay)


async def _engine_resources(app: web.Application) -> AsyncIterator[None]:
    """Create the speech stack and the brain once; close the stack on shutdown."""
    settings = app[keys.ENGINE_SETTINGS]
    _prepare_record_replay(app)
    if keys.BRAIN not in app:
        app[keys.BRAIN] = _load_brain(settings)
    owned = keys.SPEECH not in app
    if owned:
        from voicebot.local.speech import SpeechStack

        started = time.monotonic()
        app[keys.SPEECH] = await SpeechStack.create(
            stt=settings.local_stt,
            tts=settings.local_tts,
            vad=settings.local_vad,
            tts_variation=settings.local_tts_variation,
        )
        log.info("local engine speech ready in %.1f s", time.monotonic() - started)
    app[keys.SPEECH_OWNED] = owned
    try:
        yield
    finally:
        if owned:
            await app[keys.SPEECH].close()


def create_engine_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024, middlewares=[engine_middleware])
    app[keys.ENGINE_SETTINGS] = settings
    app[keys.RESPONSES] = ResponseStore()
    app[keys.CLIENT_SECRETS] = {}
    app.on_response_prepare.append(add_engine_headers)
    app.cleanup_ctx.append(_engine_resources)
    app.router.add_get("/models", list_models)
    app.router.add_get("/models/{model_id}", get_model)
    add_responses_routes(app)
    add_audio_routes(app)
    add_realtime_rest_routes(app)
    add_realtime_routes(app, record_dir=settings.local_record_dir, replay=settings.local_replay_path)
    register_sip_call_routes(
        app
    )  # OpenAI-native SIP emulation: /realtime/calls/{id}/accept|reject|refer|hangup
    return app

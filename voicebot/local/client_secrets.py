"""Realtime REST routes of the local engine: ``POST /v1/realtime/client_secrets`` and the retired beta
``POST /v1/realtime/sessions``.

A client secret (``ek_`` + 32 hex) carries a full session, validated exactly like a Realtime
``session.update`` (``session.type`` required, unknown fields refused). Secrets are kept in
``keys.CLIENT_SECRETS`` until they expire, so a configured ``local_token`` also admits them and the WebRTC
route can read the session they carry.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from voicebot.local import keys
from voicebot.local.api_error import ApiError, invalid_type, unknown_parameter
from voicebot.local.http_errors import read_json
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.session_config import ConfigError, default_session, merge, validate_update

DEFAULT_TTL_S = 600
MIN_TTL_S, MAX_TTL_S = 10, 7200
DEFAULT_MODEL = "gpt-realtime"
BETA_MESSAGE = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


def _ttl(body: dict[str, Any]) -> int:
    raw = body.get("expires_after")
    if raw is None:
        return DEFAULT_TTL_S
    if not isinstance(raw, dict):
        raise invalid_type("expires_after", "an object", raw)
    for key in raw:
        if key not in ("anchor", "seconds"):
            raise unknown_parameter(f"expires_after.{key}")
    if raw.get("anchor", "created_at") != "created_at":
        raise ApiError(
            f"Invalid value: '{raw.get('anchor')}'. Supported values are: 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    seconds = raw.get("seconds", DEFAULT_TTL_S)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise invalid_type("expires_after.seconds", "an integer", seconds)
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise ApiError(
            f"Invalid 'expires_after.seconds': expected a value between {MIN_TTL_S} and {MAX_TTL_S}, got "
            f"{seconds}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return seconds


def session_for_secret(update: Any, session_id: str, expires_at: int) -> dict[str, Any]:
    """The effective session a secret carries: the defaults with ``update`` merged in (validated)."""
    if update is None:
        update = {"type": "realtime"}
    try:
        validate_update(update)
    except ConfigError as exc:
        raise ApiError(exc.message, param=exc.param, code=exc.code) from None
    if update["type"] == "transcription":
        base = default_session(session_id, DEFAULT_MODEL, expires_at)
        audio_in = base["audio"]["input"]
        session = {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "expires_at": expires_at,
            "audio": {"input": audio_in},
            "include": None,
        }
        return merge(session, {k: v for k, v in update.items() if k in ("audio", "include")})
    model = update.get("model") or DEFAULT_MODEL
    return merge(default_session(session_id, model, expires_at), update)


async def create_client_secret(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for key in body:
        if key not in ("expires_after", "session"):
            raise unknown_parameter(key)
    ttl = _ttl(body)
    now = int(time.time())
    expires_at = now + ttl
    session = session_for_secret(body.get("session"), IdFactory().make("sess_"), expires_at)
    value = "ek_" + secrets.token_hex(16)
    issued = request.config_dict[keys.CLIENT_SECRETS]
    for old in [k for k, v in issued.items() if v.expires_at <= now]:
        del issued[old]
    issued[value] = keys.IssuedSecret(value=value, expires_at=expires_at, session=session)
    return web.json_response({"value": value, "expires_at": expires_at, "session": session})


async def beta_sessions(request: web.Request) -> web.Response:
    raise ApiError(BETA_MESSAGE, code="beta_api_shape_disabled")


def add_realtime_rest_routes(app: web.Application) -> None:
    app.router.add_post("/realtime/client_secrets", create_client_secret)
    app.router.add_post("/realtime/sessions", beta_sessions)
    app.router.add_post("/realtime/transcription_sessions", beta_sessions)

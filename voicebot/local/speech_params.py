"""Validation of a ``POST /v1/audio/speech`` body (pure), with OpenAI's error wording.

The engine has one offline voice: every official voice name (and a custom ``{"id": "voice_…"}``) is accepted
and spoken by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voicebot.local.api_error import (
    ApiError,
    invalid_type,
    invalid_value,
    missing_parameter,
    unknown_parameter,
    unsupported,
)
from voicebot.local.audio_codec import SPEECH_FORMATS

VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin",
    "cedar",
)  # fmt: skip
MAX_INPUT_CHARS = 4096
MIN_SPEED, MAX_SPEED = 0.25, 4.0
_PARAMS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"})
_LEGACY_MODELS = ("tts-1", "tts-1-hd")


@dataclass(frozen=True, slots=True)
class SpeechParams:
    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    instructions: str | None = None
    stream_format: str = "audio"


def parse_speech_params(body: Any) -> SpeechParams:
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for key in body:
        if key not in _PARAMS:
            raise unknown_parameter(key)
    model = _required_str(body, "model")
    text = _required_str(body, "input")
    if not text:
        raise ApiError(
            "Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty "
            "string instead.",
            param="input",
            code="string_below_min_length",
        )
    if len(text) > MAX_INPUT_CHARS:
        raise ApiError(
            f"Invalid 'input': string too long. Expected a string with maximum length {MAX_INPUT_CHARS}, but "
            f"got a string with length {len(text)} instead.",
            param="input",
            code="string_above_max_length",
        )
    return SpeechParams(
        model=model,
        input=text,
        voice=_voice(body.get("voice")),
        response_format=_choice(body, "response_format", SPEECH_FORMATS, "mp3"),
        speed=_speed(body.get("speed", 1.0)),
        instructions=_instructions(body, model),
        stream_format=_stream_format(body, model),
    )


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise missing_parameter(key)
    if not isinstance(value, str):
        raise invalid_type(key, "a string", value)
    return value


def _voice(raw: Any) -> str:
    if raw is None:
        raise missing_parameter("voice")
    if isinstance(raw, dict):
        vid = raw.get("id")
        if not isinstance(vid, str) or not vid:
            raise missing_parameter("voice.id")
        return vid
    if not isinstance(raw, str):
        raise invalid_type("voice", "a string or an object", raw)
    if raw not in VOICES:
        supported = ", ".join(f"'{v}'" for v in VOICES)
        raise invalid_value("voice", f"Invalid value: '{raw}'. Supported values are: {supported}.")
    return raw


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(key, default)
    if value not in allowed:
        supported = ", ".join(f"'{v}'" for v in allowed)
        raise invalid_value(key, f"Invalid value: '{value}'. Supported values are: {supported}.")
    return str(value)


def _speed(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise invalid_type("speed", "a number", raw)
    if raw < MIN_SPEED:
        raise ApiError(
            f"Invalid 'speed': decimal below minimum value. Expected a value >= {MIN_SPEED}, but got {raw} "
            "instead.",
            param="speed",
            code="decimal_below_min_value",
        )
    if raw > MAX_SPEED:
        raise ApiError(
            f"Invalid 'speed': decimal above maximum value. Expected a value <= {MAX_SPEED}, but got {raw} "
            "instead.",
            param="speed",
            code="decimal_above_max_value",
        )
    return float(raw)


def _instructions(body: dict[str, Any], model: str) -> str | None:
    value = body.get("instructions")
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_type("instructions", "a string", value)
    if model in _LEGACY_MODELS and value:
        raise unsupported("instructions", f"Instructions are not supported with the model '{model}'.")
    return value


def _stream_format(body: dict[str, Any], model: str) -> str:
    value = _choice(body, "stream_format", ("audio", "sse"), "audio")
    if value == "sse" and model in _LEGACY_MODELS:
        raise unsupported("stream_format", f"stream_format 'sse' is not supported with the model '{model}'.")
    return value

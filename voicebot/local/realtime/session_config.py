"""The Realtime session object of the local engine: defaults, strict validation, deep merge (pure).

``session.update`` is validated like the GA server does: ``session.type`` is required, one unknown (for
example beta-named) field refuses the whole update, and bad values get ``invalid_type`` / ``invalid_value``
errors naming the parameter path. The merge is partial: objects merge key by key, while formats,
turn detection, transcription, noise reduction, tools and tool_choice are replaced whole (turn detection
filled with the server defaults of its type).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voicebot.local.api_error import json_type_name

DEFAULT_INSTRUCTIONS = (
    "You are voicebot's offline engine, a helpful and friendly voice assistant. Keep replies short; they are "
    "spoken aloud. You cannot browse or look things up."
)
DEFAULT_VOICE = "marin"
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
MAX_AUDIO_B64_CHARS = 15 * 1024 * 1024

SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
# Keys whose value replaces the old one whole instead of merging into it.
_REPLACE_WHOLE = frozenset(
    {
        "format",
        "turn_detection",
        "transcription",
        "noise_reduction",
        "tools",
        "tool_choice",
        "tracing",
        "truncation",
        "prompt",
        "include",
        "reasoning",
    }
)


@dataclass(frozen=True, slots=True)
class ConfigError(Exception):
    """A refused value: becomes an ``error`` event with these fields."""

    code: str
    message: str
    param: str | None


def default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    """The session echoed in ``session.created`` (GA defaults)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": DEFAULT_VOICE, "speed": 1.0},
        },
        "include": None,
    }


# --- value checks ------------------------------------------------------------------------------------------

Check = Callable[[Any, str], None]


def _type_error(param: str, expected: str, v: Any) -> ConfigError:
    return ConfigError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(v)} instead.",
        param,
    )


def _supported(values: tuple[Any, ...]) -> str:
    shown = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return (
        shown[0]
        if len(shown) == 1
        else ", ".join(shown[:-1]) + f"{',' if len(shown) > 2 else ''} and " + shown[-1]
    )


def invalid_value(param: str, v: Any, values: tuple[Any, ...]) -> ConfigError:
    shown = f"'{v}'" if isinstance(v, str) else repr(v)
    return ConfigError(
        "invalid_value", f"Invalid value: {shown}. Supported values are: {_supported(values)}.", param
    )


def string(nullable: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if not (isinstance(v, str) or (nullable and v is None)):
            raise _type_error(p, "a string", v)

    return check


def boolean(nullable: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if not (isinstance(v, bool) or (nullable and v is None)):
            raise _type_error(p, "a boolean", v)

    return check


def number(lo: float, hi: float, integer: bool = False, nullable: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if nullable and v is None:
            return
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok:
            raise _type_error(p, "an integer" if integer else "a decimal", v)
        word = "integer" if integer else "decimal"
        if v < lo:
            raise ConfigError(
                f"{word}_below_min_value",
                f"Invalid '{p}': {word} below minimum value. Expected "
                f"a value >= {lo:g}, but got {v} instead.",
                p,
            )
        if v > hi:
            raise ConfigError(
                f"{word}_above_max_value",
                f"Invalid '{p}': {word} above maximum value. Expected "
                f"a value <= {hi:g}, but got {v} instead.",
                p,
            )

    return check


def enum(*values: Any, nullable: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if nullable and v is None:
            return
        if v not in values or isinstance(v, bool) != any(isinstance(x, bool) for x in values):
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                raise _type_error(p, "a string", v)
            raise invalid_value(p, v, values)

    return check


def obj(
    fields: dict[str, Check], required: tuple[str, ...] = (), nullable: bool = False, extra_ok: bool = False
) -> Check:
    def check(v: Any, p: str) -> None:
        if nullable and v is None:
            return
        if not isinstance(v, dict):
            raise _type_error(p, "an object", v)
        for key in v:
            if key not in fields and not extra_ok:
                raise ConfigError("unknown_parameter", f"Unknown parameter: '{p}.{key}'.", f"{p}.{key}")
        for key in required:
            if key not in v:
                raise ConfigError(
                    "missing_required_parameter", f"Missing required parameter: '{p}.{key}'.", f"{p}.{key}"
                )
        for key, value in v.items():
            if key in fields:
                fields[key](value, f"{p}.{key}")

    return check


def array(item: Check, max_items: int = 1000, nullable: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if nullable and v is None:
            return
        if not isinstance(v, list):
            raise _type_error(p, "an array", v)
        if len(v) > max_items:
            raise ConfigError(
                "array_above_max_length",
                f"Invalid '{p}': array too long. Expected an array "
                f"with maximum length {max_items}, but got an array with length {len(v)} instead.",
                p,
            )
        for i, x in enumerate(v):
            item(x, f"{p}[{i}]")

    return check


def tagged(
    tag: str, variants: dict[str, Check], nullable: bool = False, literals: tuple[str, ...] = ()
) -> Check:
    """A union discriminated by ``tag`` (plus bare string literals such as ``"auto"``)."""

    def check(v: Any, p: str) -> None:
        if nullable and v is None:
            return
        if isinstance(v, str) and literals:
            if v not in literals:
                raise invalid_value(p, v, literals)
            return
        if not isinstance(v, dict):
            raise _type_error(p, "an object", v)
        if tag not in v:
            raise ConfigError(
                "missing_required_parameter", f"Missing required parameter: '{p}.{tag}'.", f"{p}.{tag}"
            )
        if v[tag] not in variants:
            raise invalid_value(f"{p}.{tag}", v[tag], tuple(variants))
        variants[v[tag]](v, p)

    return check


def audio_format() -> Check:
    return tagged(
        "type",
        {
            "audio/pcm": obj({"type": string(), "rate": enum(24000)}),
            "audio/pcmu": obj({"type": string()}),
            "audio/pcma": obj({"type": string()}),
        },
    )


def _tool(v: Any, p: str) -> None:
    tagged(
        "type",
        {
            "function": obj(
                {
                    "type": string(),
                    "name": string(),
                    "description": string(True),
                    "parameters": obj({}, extra_ok=True, nullable=True),
                },
                required=("name",),
                extra_ok=True,
            ),
            "mcp": obj(
                {"type": string(), "server_label": string()}, required=("server_label",), extra_ok=True
            ),
        },
    )(v, p)


_TURN_DETECTION = tagged(
    "type",
    {
        "server_vad": obj(
            {
                "type": string(),
                "threshold": number(0.0, 1.0, nullable=True),
                "prefix_padding_ms": number(0, 10_000, integer=True, nullable=True),
                "silence_duration_ms": number(0, 10_000, integer=True, nullable=True),
                "idle_timeout_ms": number(5_000, 30_000, integer=True, nullable=True),
                "create_response": boolean(True),
                "interrupt_response": boolean(True),
            }
        ),
        "semantic_vad": obj(
            {
                "type": string(),
                "eagerness": enum("low", "medium", "high", "auto", nullable=True),
                "create_response": boolean(True),
                "interrupt_response": boolean(True),
            }
        ),
    },
    nullable=True,
)

_TRANSCRIPTION = obj(
    {
        "model": string(),
        "language": string(True),
        "prompt": string(True),
        "languages": array(string(), 20, True),
        "keywords": array(string(), 100, True),
        "delay": enum("minimal", "low", "medium", "high", "xhigh", nullable=True),
    },
    nullable=True,
)

_TOOL_CHOICE = tagged(
    "type",
    {
        "function": obj({"type": string(), "name": string()}, required=("name",)),
        "mcp": obj(
            {"type": string(), "server_label": string(), "name": string(True)}, required=("server_label",)
        ),
    },
    literals=("auto", "none", "required"),
)


def _max_tokens(v: Any, p: str) -> None:
    if v == "inf":
        return
    if isinstance(v, str):
        raise invalid_value(p, v, ("inf",))
    number(1, 4096, integer=True)(v, p)


def _tracing(v: Any, p: str) -> None:
    if v is None or v == "auto":
        return
    if isinstance(v, str):
        raise invalid_value(p, v, ("auto",))
    obj(
        {
            "workflow_name": string(True),
            "group_id": string(True),
            "metadata": obj({}, extra_ok=True, nullable=True),
        }
    )(v, p)


def voice_check(v: Any, p: str) -> None:
    if not isinstance(v, str):
        obj({"id": string()}, required=("id",))(v, p)


def _modalities(v: Any, p: str) -> None:
    array(enum("text", "audio"), 1)(v, p)
    if not v:
        raise ConfigError(
            "invalid_value", f"Invalid '{p}': empty array. Expected one of 'audio' or 'text'.", p
        )


SESSION_FIELDS: dict[str, Check] = {
    "type": enum("realtime", "transcription"),
    "model": string(),
    "output_modalities": _modalities,
    "instructions": string(),
    "tools": array(_tool, 128),
    "tool_choice": _TOOL_CHOICE,
    "max_output_tokens": _max_tokens,
    "tracing": _tracing,
    "truncation": tagged(
        "type",
        {
            "retention_ratio": obj(
                {
                    "type": string(),
                    "retention_ratio": number(0.0, 1.0),
                    "token_limits": obj(
                        {"post_instructions": number(0, 10**9, integer=True, nullable=True)}, nullable=True
                    ),
                },
                required=("retention_ratio",),
            )
        },
        literals=("auto", "disabled"),
    ),
    "prompt": obj(
        {"id": string(), "version": string(True), "variables": obj({}, extra_ok=True, nullable=True)},
        required=("id",),
        nullable=True,
    ),
    "include": array(enum("item.input_audio_transcription.logprobs"), 1, nullable=True),
    "reasoning": obj(
        {"effort": enum("minimal", "low", "medium", "high", "xhigh", nullable=True)}, nullable=True
    ),
    "parallel_tool_calls": boolean(True),
    "audio": obj(
        {
            "input": obj(
                {
                    "format": audio_format(),
                    "transcription": _TRANSCRIPTION,
                    "noise_reduction": obj(
                        {
                            "type": enum("near_field", "far_field", nullable=True),
                            "strength": number(0.0, 1.0, nullable=True),
                        },
                        nullable=True,
                    ),
                    "turn_detection": _TURN_DETECTION,
                }
            ),
            "output": obj(
                {
                    "format": audio_format(),
                    "voice": voice_check,
                    "speed": number(0.25, 1.5),
                }
            ),
        }
    ),
}
_SESSION = obj(SESSION_FIELDS)


def validate_update(update: Any) -> None:
    """Raise ``ConfigError`` if ``update`` (the ``session`` of a ``session.update``) must be refused."""
    if not isinstance(update, dict):
        raise _type_error("session", "an object", update)
    for key in update:
        if key not in SESSION_FIELDS:
            raise ConfigError("unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}")
    if "type" not in update:
        raise ConfigError(
            "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
        )
    _SESSION(update, "session")


def _normalize(key: str, value: Any) -> Any:
    if key == "format" and isinstance(value, dict) and value.get("type") == "audio/pcm":
        return {"type": "audio/pcm", "rate": 24000}
    if key == "turn_detection" and isinstance(value, dict):
        base = SERVER_VAD_DEFAULTS if value["type"] == "server_vad" else SEMANTIC_VAD_DEFAULTS
        return {**base, **{k: v for k, v in value.items() if v is not None or k == "idle_timeout_ms"}}
    return copy.deepcopy(value)


def merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new session: ``update`` deep-merged into ``current`` (``current`` is not modified)."""
    out = copy.deepcopy(current)
    _merge_into(out, update)
    return out


def _merge_into(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and key not in _REPLACE_WHOLE and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = _normalize(key, value)

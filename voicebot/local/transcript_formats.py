"""``POST /v1/audio/transcriptions`` (pure): the form's parameters and the answer's shapes.

Formats: ``json`` (``{"text", "usage"}``), ``text``, ``srt``, ``vtt``, ``verbose_json`` (language, duration,
segments, and words with ``timestamp_granularities[]=word``), and the SSE events of ``stream=true``. As
upstream, the gpt-4o transcribe models answer ``json`` or ``text`` only, ``stream`` is ignored for
``whisper-1``, and ``timestamp_granularities[]`` needs ``verbose_json``. The per-segment decoder statistics
of ``verbose_json`` (``avg_logprob``, ``compression_ratio``, ``no_speech_prob``, ``tokens``) are neutral
placeholders: the engine's recognizer does not expose them. Usage: ``whisper-1`` reports seconds; the other
models report tokens (10 audio tokens per second, prompt words as text tokens).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicebot.local.api_error import ApiError, invalid_value, missing_parameter, unsupported
from voicebot.local.responses_core import count_tokens
from voicebot.local.speech.types import TranscriptionResult

FILE_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_JSON_ONLY_PREFIXES = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe", "gpt-live-transcribe")
_FORM_FIELDS = frozenset(
    {
        "file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]",
        "timestamp_granularities", "include[]", "include", "stream", "chunking_strategy",
    }
)  # fmt: skip
_LANGUAGES = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian", "nl": "dutch",
    "pt": "portuguese", "ru": "russian", "zh": "chinese", "ja": "japanese", "ko": "korean", "pl": "polish",
}  # fmt: skip
AUDIO_TOKENS_PER_SECOND = 10


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of the form (``data`` is cut at the size limit plus one byte, to detect oversize)."""

    filename: str
    data: bytes


# The multipart form: field name → every value given for it (strings, or ``Upload``s).
Form = Mapping[str, list[str | Upload]]


@dataclass(frozen=True, slots=True)
class TranscriptionParams:
    model: str
    filename: str
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    stream: bool = False

    @property
    def wants_words(self) -> bool:
        return "word" in self.granularities

    @property
    def reports_duration(self) -> bool:
        return self.model == "whisper-1"


def parse_transcription_form(form: Form, max_bytes: int) -> tuple[TranscriptionParams, bytes]:
    """Validate the multipart form; returns the parameters and the file's bytes."""
    for key in form:
        if key not in _FORM_FIELDS:
            raise ApiError(f"Unrecognized request argument supplied: {key}", param=key)
    upload = _first(form, "file")
    if upload is None:
        raise missing_parameter("file")
    if not isinstance(upload, Upload):
        raise ApiError("'file' must be a file upload, not a plain form field.", param="file")
    filename = upload.filename
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in FILE_EXTENSIONS:
        raise invalid_value(
            "file",
            f"Unrecognized file format. Supported formats: {list(FILE_EXTENSIONS)}",
        )
    data = upload.data
    if len(data) > max_bytes:
        raise ApiError(f"Maximum content size limit ({max_bytes}) exceeded.", status=413, param="file")
    if not data:
        raise invalid_value("file", "The audio file is empty.")
    model = _text(form, "model")
    if not model:
        raise missing_parameter("model")
    params = TranscriptionParams(
        model=model,
        filename=filename,
        language=_language(_text(form, "language")),
        prompt=_text(form, "prompt") or None,
        response_format=_response_format(_text(form, "response_format") or "json", model),
        granularities=_granularities(form),
        stream=_text(form, "stream").lower() == "true" and model != "whisper-1",
    )
    if params.granularities and params.response_format != "verbose_json":
        raise invalid_value(
            "timestamp_granularities",
            "timestamp_granularities[] is only supported with response_format 'verbose_json'.",
        )
    if any(v in ("logprobs",) for v in [*form.get("include[]", []), *form.get("include", [])]):
        raise unsupported("include", "The local engine's recognizer does not report logprobs.")
    return params, data


def _first(form: Form, key: str) -> str | Upload | None:
    values = form.get(key) or []
    return values[0] if values else None


def _text(form: Form, key: str) -> str:
    value = _first(form, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_value(key, f"'{key}' must be a plain form field.")
    return value.strip()


def _language(value: str) -> str | None:
    if not value:
        return None
    if len(value) != 2 or not value.isalpha():
        raise invalid_value(
            "language",
            f"Invalid language '{value}'. Language parameter must be specified in ISO-639-1 format.",
        )
    return value.lower()


def _response_format(value: str, model: str) -> str:
    if value == "diarized_json":
        raise unsupported("response_format", "The local engine does not diarize ('diarized_json').")
    if value not in RESPONSE_FORMATS:
        raise invalid_value(
            "response_format",
            f"Invalid value: '{value}'. Supported values are: "
            + ", ".join(f"'{f}'" for f in RESPONSE_FORMATS),
        )
    if model.startswith(_JSON_ONLY_PREFIXES) and value not in ("json", "text"):
        raise invalid_value(
            "response_format",
            f"response_format '{value}' is not compatible with model '{model}'. Use 'json' or 'text'.",
        )
    return value


def _granularities(form: Form) -> tuple[str, ...]:
    values = [*form.get("timestamp_granularities[]", []), *form.get("timestamp_granularities", [])]
    for v in values:
        if v not in ("word", "segment"):
            raise invalid_value(
                "timestamp_granularities",
                f"Invalid value: '{v}'. Supported values are: 'word' and 'segment'.",
            )
    return tuple(dict.fromkeys(str(v) for v in values))


# answers --------------------------------------------------------------------------------------------------
def usage_of(result: TranscriptionResult, params: TranscriptionParams) -> dict[str, Any]:
    if params.reports_duration:
        return {"type": "duration", "seconds": math.ceil(result.duration_s)}
    audio = math.ceil(result.duration_s * AUDIO_TOKENS_PER_SECOND)
    text = count_tokens(params.prompt or "")
    out = count_tokens(result.text)
    return {
        "type": "tokens",
        "input_tokens": audio + text,
        "input_token_details": {"text_tokens": text, "audio_tokens": audio},
        "output_tokens": out,
        "total_tokens": audio + text + out,
    }


def render_transcription(
    result: TranscriptionResult, params: TranscriptionParams
) -> tuple[dict[str, Any] | str, str]:
    """The body (a JSON object, or text) and its content type."""
    fmt = params.response_format
    if fmt == "text":
        return result.text + "\n", "text/plain"
    if fmt == "srt":
        return to_srt(result), "text/plain"
    if fmt == "vtt":
        return to_vtt(result), "text/plain"
    if fmt == "verbose_json":
        return verbose_json(result, params), "application/json"
    return {"text": result.text, "usage": usage_of(result, params)}, "application/json"


def verbose_json(result: TranscriptionResult, params: TranscriptionParams) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": _LANGUAGES.get(result.language, result.language),
        "duration": round(result.duration_s, 2),
        "text": result.text,
    }
    if not params.granularities or "segment" in params.granularities:
        body["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": round(s.start, 2),
                "end": round(s.end, 2),
                "text": s.text if s.text.startswith(" ") else " " + s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(_segments(result))
        ]
    if params.wants_words:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 2), "end": round(w.end, 2)} for w in result.words
        ]
    body["usage"] = {"type": "duration", "seconds": math.ceil(result.duration_s)}
    return body


def _segments(result: TranscriptionResult) -> list[Any]:
    if result.segments:
        return list(result.segments)
    if not result.text:
        return []
    from voicebot.local.speech.types import Segment

    return [Segment(0.0, result.duration_s, result.text)]


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(result: TranscriptionResult) -> str:
    blocks = [
        f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(_segments(result), start=1)
    ]
    return "\n".join(blocks) + ("\n" if blocks else "")


def to_vtt(result: TranscriptionResult) -> str:
    blocks = [
        f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n" for s in _segments(result)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks) + ("\n" if blocks else "")


def stream_transcript_events(
    result: TranscriptionResult, params: TranscriptionParams
) -> list[dict[str, Any]]:
    """``transcript.text.delta`` per word, then ``transcript.text.done`` with the usage."""
    from voicebot.local.responses_core import split_text

    events: list[dict[str, Any]] = [
        {"type": "transcript.text.delta", "delta": d} for d in split_text(result.text)
    ]
    usage = usage_of(result, params)
    events.append({"type": "transcript.text.done", "text": result.text, "usage": usage})
    return events

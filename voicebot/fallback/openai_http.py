"""The non-realtime upstream: one configured ``AsyncOpenAI`` client and the error discipline around it.

Every HTTP call of the fallback path (transcriptions, responses, speech, summaries) goes through the official
SDK, which owns timeouts and retries:

* timeouts: ``http_timeout_s`` overall per request attempt, ``http_connect_timeout_s`` to connect;
* retries: ``http_max_retries`` attempts after the first, on connection errors, 408, 409, 429 and 5xx only
  (or when the server sends ``x-should-retry: true``); ``retry-after-ms`` / ``retry-after`` up to 120 s are
  honoured, otherwise exponential backoff from 0.5 s to 8 s with jitter. Other 4xx are never retried.

Errors leave this module as our own tree (``voicebot.errors``), carrying the upstream's message, error code,
HTTP status and ``x-request-id``: ``RetryableHttpError`` (busy, rate limited, unreachable), ``FatalHttpError``
(bad key, no quota, no permission, unknown model) and ``RejectedHttpError`` (any other 4xx: the request
itself was refused).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import openai
from openai import AsyncOpenAI

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.wav import wav_bytes
from voicebot.config import Settings, Upstream
from voicebot.errors import FatalUpstreamError, RetryableUpstreamError, UpstreamError
from voicebot.realtime.errors import FATAL_CODES

log = logging.getLogger("voicebot.fallback")

SPEECH_RATE = 24_000  # response_format "pcm": raw 24 kHz s16le mono
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_FATAL_STATUS = frozenset({401, 403, 404})


class HttpErrorInfo:
    """What the upstream said about a failed request."""

    status: int | None = None
    request_id: str | None = None
    upstream_message: str = ""


class RetryableHttpError(RetryableUpstreamError, HttpErrorInfo):
    """Rate limited, overloaded, timed out or unreachable, after the SDK's own retries."""


class FatalHttpError(FatalUpstreamError, HttpErrorInfo):
    """This upstream cannot serve us (bad key, no quota, no permission, unknown model)."""


class RejectedHttpError(UpstreamError, HttpErrorInfo):
    """The upstream refused this request (a 4xx other than 408/409/429); retrying would not help."""

    http_status = 502


AnyHttpError = RetryableHttpError | FatalHttpError | RejectedHttpError
HTTP_ERRORS = (RetryableHttpError, FatalHttpError, RejectedHttpError)


def make_client(
    base_url: str,
    api_key: str,
    *,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 5.0,
    max_retries: int = 2,
) -> AsyncOpenAI:
    """An SDK client for ``base_url`` (ending in ``/v1``) with our timeout and retry policy."""
    return AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
        max_retries=max_retries,
    )


def client_for(settings: Settings, upstream: Upstream) -> AsyncOpenAI:
    """The client for the configured upstream (OpenAI, or the local engine when no key is set)."""
    return make_client(
        upstream.base_url,
        upstream.api_key,
        timeout_s=settings.http_timeout_s,
        connect_timeout_s=settings.http_connect_timeout_s,
        max_retries=settings.http_max_retries,
    )


def upstream_error(exc: openai.OpenAIError, what: str) -> AnyHttpError:
    """Our error for an SDK exception, with the upstream's message, code, status and request id."""
    status: int | None = None
    request_id: str | None = None
    code: str | None = None
    message = str(exc)
    if isinstance(exc, openai.APIError):
        code = exc.code or exc.type
        message = exc.message
    if isinstance(exc, openai.APIStatusError):
        status, request_id = exc.status_code, exc.request_id
        message = _body_message(exc.body) or message
    text = f"{what} failed"
    if status is not None:
        text += f": HTTP {status}"
    if code:
        text += f" ({code})"
    text += f": {message}"
    if request_id:
        text += f" [request id {request_id}]"
    err: AnyHttpError
    if status is None or status in _RETRYABLE_STATUS or status >= 500:
        err = (
            FatalHttpError(text, code=code)
            if code in FATAL_CODES
            else RetryableHttpError(text, code=code or "upstream_unavailable")
        )
    elif status in _FATAL_STATUS or code in FATAL_CODES:
        err = FatalHttpError(text, code=code or f"http_{status}")
    else:
        err = RejectedHttpError(text, code=code or f"http_{status}")
    err.status, err.request_id, err.upstream_message = status, request_id, message
    return err


def _body_message(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return None


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn SDK exceptions raised inside the block into our ``AnyHttpError`` (logged once, at WARNING)."""
    try:
        yield
    except openai.OpenAIError as exc:
        err = upstream_error(exc, what)
        log.warning("%s", err.message)
        raise err from exc


async def transcribe(
    client: AsyncOpenAI,
    audio: PcmChunk,
    *,
    model: str,
    language: str | None = None,
    prompt: str | None = None,
) -> str:
    """The text of one utterance (sent as a WAV file at its own rate)."""
    with translated("transcription"):
        result = await client.audio.transcriptions.create(
            model=model,
            file=("utterance.wav", wav_bytes(audio), "audio/wav"),
            language=language if language else openai.omit,
            prompt=prompt if prompt else openai.omit,
        )
    return " ".join(result.text.split())


async def speak(
    client: AsyncOpenAI,
    text: str,
    *,
    model: str,
    voice: str,
    speed: float | None = None,
    chunk_bytes: int = 4800,
) -> AsyncIterator[PcmChunk]:
    """Speech for ``text``, streamed as 24 kHz chunks while the upstream produces it."""
    with translated("speech"):
        async with client.audio.speech.with_streaming_response.create(
            model=model,
            voice=voice,
            input=text,
            response_format="pcm",
            speed=speed if speed is not None else openai.omit,
        ) as response:
            residual = b""
            async for data in response.iter_bytes(chunk_bytes):
                data = residual + data
                even = len(data) - len(data) % 2
                residual = data[even:]
                if even:
                    yield PcmChunk.from_bytes(data[:even], SPEECH_RATE)

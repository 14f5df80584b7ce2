"""``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech`` of the local engine.

Transcriptions take the official multipart form, decode the file with av and transcribe it with the engine's
speech stack; answers are ``json``, ``text``, ``srt``, ``verbose_json`` or ``vtt`` (shaped in
``transcript_formats``), or SSE ``transcript.text.delta`` … ``transcript.text.done`` with ``stream=true``.
Speech synthesizes sentence by sentence and sends each sentence as soon as it is ready (chunked transfer), in
the requested format, or as SSE ``speech.audio.delta`` … ``speech.audio.done``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
from typing import Any

from aiohttp import BodyPartReader, web

from voicebot.audio.chunk import PcmChunk
from voicebot.local import keys
from voicebot.local.api_error import ApiError
from voicebot.local.audio_codec import CONTENT_TYPES, AudioEncoder, decode_audio
from voicebot.local.http_errors import read_json
from voicebot.local.responses_core import count_tokens
from voicebot.local.speech_params import SpeechParams, parse_speech_params
from voicebot.local.transcript_formats import (
    Upload,
    parse_transcription_form,
    render_transcription,
    stream_transcript_events,
)

log = logging.getLogger("voicebot.local.audio")

STT_RATE = 16000
MAX_FILE_BYTES = 25 * 1024 * 1024


# transcriptions -------------------------------------------------------------------------------------------
async def create_transcription(request: web.Request) -> web.StreamResponse:
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError(
            f"Invalid Content-Type header ({request.content_type or 'none'}), expected multipart/form-data.",
            param="Content-Type",
        )
    params, data = parse_transcription_form(await _read_form(request), MAX_FILE_BYTES)
    audio = await asyncio.to_thread(decode_audio, data, rate=STT_RATE)
    stack = request.config_dict[keys.SPEECH]
    result = await stack.transcribe(
        audio, language=params.language, prompt=params.prompt, word_timestamps=params.wants_words
    )
    if params.stream:
        return await _send_sse(request, stream_transcript_events(result, params), named=False)
    body, content_type = render_transcription(result, params)
    if isinstance(body, str):
        return web.Response(text=body, content_type=content_type)
    return web.json_response(body)


async def _read_form(request: web.Request) -> dict[str, list[str | Upload]]:
    """The multipart form, read part by part into memory (no temporary files; files cut past the limit)."""
    fields: dict[str, list[str | Upload]] = {}
    try:
        reader = await request.multipart()
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError("Nested multipart bodies are not supported.")
            data = await _read_part(part, MAX_FILE_BYTES + 1 - total)
            total += len(data)
            value: str | Upload = (
                Upload(part.filename, data) if part.filename is not None else data.decode("utf-8", "replace")
            )
            fields.setdefault(part.name or "", []).append(value)
    except (ValueError, AssertionError) as exc:
        raise ApiError(f"The multipart body could not be read: {exc}") from None
    return fields


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := await part.read_chunk(64 * 1024)):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise ApiError(f"Maximum content size limit ({MAX_FILE_BYTES}) exceeded.", status=413, param="file")
    return b"".join(chunks)


# speech ---------------------------------------------------------------------------------------------------
async def create_speech(request: web.Request) -> web.StreamResponse:
    params = parse_speech_params(await read_json(request))
    stack = request.config_dict[keys.SPEECH]
    chunks = stack.synthesize(params.input, voice=params.voice, speed=params.speed)
    encoder = AudioEncoder(params.response_format)
    try:
        first = await anext(chunks, None)  # errors before the first audio still get a proper error body
        if params.stream_format == "sse":
            return await _speech_sse(request, params, chunks, first, encoder)
        return await _speech_audio(request, params, chunks, first, encoder)
    finally:
        encoder.close()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _speech_audio(
    request: web.Request, params: SpeechParams, chunks: Any, first: PcmChunk | None, encoder: AudioEncoder
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[params.response_format]})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        chunk = first
        while chunk is not None:
            data = await asyncio.to_thread(encoder.encode, chunk)
            if data:
                await response.write(data)
            chunk = await anext(chunks, None)
        await response.write(await asyncio.to_thread(encoder.finish))
        await response.write_eof()
    except ConnectionResetError:  # a failure after the headers is handled by the engine middleware
        log.debug("speech client went away")
    return response


async def _speech_sse(
    request: web.Request, params: SpeechParams, chunks: Any, first: PcmChunk | None, encoder: AudioEncoder
) -> web.StreamResponse:
    response = _sse_response()
    await response.prepare(request)
    seconds = 0.0
    try:
        chunk = first
        while chunk is not None:
            seconds += chunk.duration_ms / 1000
            data = await asyncio.to_thread(encoder.encode, chunk)
            if data:
                await _write_event(response, {"type": "speech.audio.delta", "audio": _b64(data)}, named=False)
            chunk = await anext(chunks, None)
        tail = await asyncio.to_thread(encoder.finish)
        if tail:
            await _write_event(response, {"type": "speech.audio.delta", "audio": _b64(tail)}, named=False)
        inp, out = count_tokens(params.input), math.ceil(seconds * 20)
        usage = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
        await _write_event(response, {"type": "speech.audio.done", "usage": usage}, named=False)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("speech SSE client went away")
    return response


# SSE helpers ----------------------------------------------------------------------------------------------
def _sse_response() -> web.StreamResponse:
    return web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )


async def _write_event(response: web.StreamResponse, event: dict[str, Any], *, named: bool) -> None:
    line = f"event: {event['type']}\n" if named else ""
    await response.write(f"{line}data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())


async def _send_sse(request: web.Request, events: list[dict[str, Any]], *, named: bool) -> web.StreamResponse:
    response = _sse_response()
    await response.prepare(request)
    try:
        for event in events:
            await _write_event(response, event, named=named)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("SSE client went away")
    return response


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def add_audio_routes(app: web.Application) -> None:
    app.router.add_post("/audio/transcriptions", create_transcription)
    app.router.add_post("/audio/speech", create_speech)

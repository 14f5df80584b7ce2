"""``voicebot transcribe`` and ``voicebot say``: the audio endpoints from the command line.

::

    voicebot transcribe FILE [--format text|json|srt|vtt] [--model M] [--language xx] [--chunk-s 120] [-o OUT]
    voicebot say TEXT -o FILE [--voice V] [--format wav|mp3|opus|aac|flac|pcm] [--model M] [--speed X]

Both take ``--base-url URL`` (``http://host:port/v1`` of a running voicebot or any OpenAI-compatible server)
and ``--api-key KEY``. Without ``--base-url`` they use the configured upstream: OpenAI when
``OPENAI_API_KEY`` is set, otherwise the embedded local engine, started in this process on 127.0.0.1 with a
free port for the duration of the command (loading its speech models takes a few seconds).

``transcribe`` decodes the file, cuts it at silences into pieces of at most ``--chunk-s`` seconds and sends
them one by one, printing progress to stderr; ``srt``/``vtt`` ask for ``verbose_json`` segments (so the
default model for them is ``whisper-1``) and shift their times to the whole file. ``say`` streams the audio
to the file; a text longer than one request (4096 characters) is sent in sentence-aligned parts (``wav``,
``pcm`` and ``mp3`` only, which can be joined).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TextIO, cast

from openai import AsyncOpenAI

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.wav import wav_bytes, write_wav
from voicebot.config import Settings
from voicebot.errors import BadRequest, VoicebotError
from voicebot.fallback.chunking import Cue, split_at_silences
from voicebot.fallback.chunking import render_srt as _srt
from voicebot.fallback.chunking import render_vtt as _vtt
from voicebot.fallback.openai_http import SPEECH_RATE, client_for, make_client, translated

COMMANDS = ("transcribe", "say")
SPEECH_FORMATS = ("wav", "mp3", "opus", "aac", "flac", "pcm")
MAX_SPEECH_CHARS = 4000  # one /audio/speech request takes at most 4096


def add_parsers(sub: Any) -> None:
    """Add ``transcribe`` and ``say`` to the ``voicebot`` subcommands."""
    t = sub.add_parser("transcribe", help="transcribe an audio file (audio endpoints of the upstream)")
    t.add_argument("file", help="audio file (wav, mp3, ogg, flac, m4a, webm, ...)")
    t.add_argument("--format", choices=["text", "json", "srt", "vtt"], default="text", help="output format")
    t.add_argument("--model", help="default: gpt-4o-mini-transcribe (text, json) or whisper-1 (srt, vtt)")
    t.add_argument("--language", help="ISO-639-1 code, e.g. en")
    t.add_argument("--chunk-s", type=float, default=120.0, help="longest piece sent at once (seconds)")
    t.add_argument("-o", "--output", help="write here instead of stdout")
    s = sub.add_parser("say", help="synthesize speech to a file (audio endpoints of the upstream)")
    s.add_argument("text", help="what to say ('-' reads stdin)")
    s.add_argument("-o", "--output", required=True, help="audio file to write")
    s.add_argument("--voice", help="voice (default: VOICEBOT_VOICE)")
    s.add_argument("--format", choices=SPEECH_FORMATS, help="default: from the file extension, else wav")
    s.add_argument("--model", help="default: VOICEBOT_FALLBACK_TTS_MODEL")
    s.add_argument("--speed", type=float, help="0.25 to 4.0")
    for p in (t, s):
        p.add_argument("--base-url", help="http://host:port/v1 of a running server (default: the upstream)")
        p.add_argument("--api-key", help="API key for --base-url (default: OPENAI_API_KEY, else sk-local)")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except VoicebotError as exc:
        print(f"voicebot: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with upstream_client(settings, args.base_url, args.api_key) as client:
        if args.command == "transcribe":
            return await transcribe_file(client, args)
        return await say_to_file(client, args, settings)


@asynccontextmanager
async def upstream_client(
    settings: Settings, base_url: str | None, api_key: str | None
) -> AsyncIterator[AsyncOpenAI]:
    """A client for ``base_url``, for OpenAI, or for a local engine started here for the command."""
    if base_url:
        key = api_key or _configured_key(settings) or "sk-local"
        client = make_client(base_url, key, timeout_s=600.0, max_retries=settings.http_max_retries)
        async with client:
            yield client
        return
    if not settings.uses_local_engine:
        async with client_for(settings, settings.upstream("http://127.0.0.1")) as client:
            yield client
        return
    async with _local_engine(settings) as base:
        upstream = settings.upstream(base)
        client = make_client(upstream.base_url, upstream.api_key, timeout_s=600.0, max_retries=0)
        async with client:
            yield client


def _configured_key(settings: Settings) -> str | None:
    key = settings.openai_api_key
    return key.get_secret_value() if key is not None and key.get_secret_value() else None


@asynccontextmanager
async def _local_engine(settings: Settings) -> AsyncIterator[str]:
    """The local engine on 127.0.0.1 and a free port, for as long as the block runs; yields its base URL."""
    from aiohttp import web

    from voicebot.local.app import create_engine_app

    print("starting the local engine (no OPENAI_API_KEY, no --base-url)...", file=sys.stderr, flush=True)
    root = web.Application()
    root.add_subapp("/v1", create_engine_app(settings))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# transcribe ---------------------------------------------------------------------------------------------


async def transcribe_file(client: AsyncOpenAI, args: argparse.Namespace) -> int:
    from voicebot.local.audio_codec import decode_audio

    path = Path(args.file)
    data = await asyncio.to_thread(path.read_bytes)
    audio = await asyncio.to_thread(decode_audio, data, rate=16000, max_seconds=12 * 3600)
    fmt = args.format
    model = args.model or ("whisper-1" if fmt in ("srt", "vtt") else "gpt-4o-mini-transcribe")
    pieces = split_at_silences(audio, max_s=args.chunk_s, search_s=min(20.0, args.chunk_s / 4))
    texts: list[str] = []
    cues: list[Cue] = []
    chunks: list[dict[str, Any]] = []
    for n, piece in enumerate(pieces, start=1):
        if len(pieces) > 1:
            span = f"{_clock(piece.start_s)}-{_clock(piece.end_s)}"
            print(f"[{n}/{len(pieces)}] transcribing {span}", file=sys.stderr, flush=True)
        text, piece_cues = await _transcribe_piece(client, piece.audio, model, args.language, fmt)
        texts.append(text)
        cues += [Cue(piece.start_s + c.start_s, piece.start_s + c.end_s, c.text) for c in piece_cues]
        chunks.append({"start_s": round(piece.start_s, 3), "end_s": round(piece.end_s, 3), "text": text})
    full = " ".join(t for t in texts if t)
    if fmt == "srt":
        out = _srt(cues)
    elif fmt == "vtt":
        out = _vtt(cues)
    elif fmt == "json":
        doc = {
            "text": full,
            "duration_s": round(audio.duration_ms / 1000, 3),
            "model": model,
            "chunks": chunks,
        }
        out = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    else:
        out = full + "\n"
    _write_text(out, args.output)
    return 0


async def _transcribe_piece(
    client: AsyncOpenAI, audio: PcmChunk, model: str, language: str | None, fmt: str
) -> tuple[str, list[Cue]]:
    file = ("audio.wav", wav_bytes(audio), "audio/wav")
    lang: Any = language if language else None
    extra = {"language": lang} if lang else {}
    with translated("transcription"):
        if fmt in ("srt", "vtt"):
            verbose = await client.audio.transcriptions.create(
                model=model, file=file, response_format="verbose_json", **extra
            )
            cues = [Cue(s.start, s.end, s.text) for s in (verbose.segments or [])]
            return verbose.text.strip(), cues
        result = await client.audio.transcriptions.create(model=model, file=file, **extra)
    return result.text.strip(), []


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _write_text(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
        return
    stream: TextIO = sys.stdout
    stream.write(text)
    stream.flush()


# say ----------------------------------------------------------------------------------------------------

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


def _write_audio(output: Path, fmt: str, data: bytes) -> int:
    if fmt == "wav":  # the parts came as raw 24 kHz PCM: one WAV file around all of them
        write_wav(output, PcmChunk.from_bytes(data[: len(data) - len(data) % 2], SPEECH_RATE))
    else:
        output.write_bytes(data)
    return output.stat().st_size


def split_text(text: str, limit: int = MAX_SPEECH_CHARS) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut after sentences (or at spaces if need be)."""
    sentences = [s for s in re.split(r"(?<=[.!?…])\s+", text.strip()) if s]
    parts: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                parts.append(current)
                current = ""
            parts.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            parts.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        parts.append(current)
    return parts


async def say_to_file(client: AsyncOpenAI, args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    output = Path(args.output)
    fmt = args.format or (output.suffix.lstrip(".").lower() if output.suffix else "wav")
    if fmt not in SPEECH_FORMATS:
        raise BadRequest(f"cannot write {fmt!r} audio; use --format with one of {', '.join(SPEECH_FORMATS)}")
    parts = split_text(text)
    if not parts:
        raise BadRequest("nothing to say: the text is empty")
    if len(parts) > 1 and fmt not in ("wav", "pcm", "mp3"):
        raise BadRequest(f"the text needs {len(parts)} requests; only wav, pcm and mp3 parts can be joined")
    options: dict[str, Any] = {"model": args.model or settings.fallback_tts_model}
    options["voice"] = args.voice or settings.voice
    if args.speed is not None:
        options["speed"] = args.speed
    wire: SpeechFormat = "pcm" if fmt == "wav" else cast(SpeechFormat, fmt)
    audio: list[bytes] = []
    for n, part in enumerate(parts, start=1):
        if len(parts) > 1:
            print(f"[{n}/{len(parts)}] synthesizing {len(part)} characters", file=sys.stderr, flush=True)
        with translated("speech"):
            async with client.audio.speech.with_streaming_response.create(
                input=part, response_format=wire, **options
            ) as response:
                async for data in response.iter_bytes(64 * 1024):
                    audio.append(data)
    size = await asyncio.to_thread(_write_audio, output, fmt, b"".join(audio))
    print(f"wrote {output} ({size} bytes)", file=sys.stderr)
    return 0

"""``/v1/audio/speech`` and ``/v1/audio/transcriptions`` of the local engine, with the official SDK as client.

Speech made by the engine is decoded independently (av) and checked for speech-level audio; transcription is
checked on that speech, in every container the API accepts and every response format.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import av
import jiwer
import numpy as np
import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI
from openai.types.audio import Transcription, TranscriptionStreamEvent, TranscriptionVerbose
from pydantic import TypeAdapter

from tests.local.http_support import Engine, parse_sse
from voicebot.audio.chunk import PcmChunk
from voicebot.local import audio_codec
from voicebot.local.audio_codec import AudioEncoder, decode_audio

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

SENTENCE = "The quick brown fox jumps over the lazy dog."
TWO_SENTENCES = "Good morning. The meeting has been moved to Thursday afternoon."


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


def assert_speech_level(chunk: PcmChunk, min_seconds: float) -> None:
    assert chunk.duration_ms / 1000 >= min_seconds
    assert chunk.rms() > 300, "audible speech, not silence"
    assert int(np.abs(chunk.samples).max()) < 32767, "not clipped flat"


def encode_file(pcm: PcmChunk, container: str, codec: str) -> bytes:
    """An audio file made with av (not with the engine's encoder), for the transcription tests."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=pcm.rate if codec != "libopus" else 48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(pcm.samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = pcm.rate
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def spoken(engine: Engine) -> AsyncIterator[PcmChunk]:
    """SENTENCE as 24 kHz PCM, made by the engine's own /v1/audio/speech."""
    async with engine.client() as c:
        audio = await c.audio.speech.create(
            model="gpt-4o-mini-tts", voice="marin", input=SENTENCE, response_format="pcm"
        )
    yield PcmChunk.from_bytes(audio.content, 24000)


# speech --------------------------------------------------------------------------------------------------
async def test_speech_pcm_is_24khz_speech(spoken: PcmChunk) -> None:
    assert_speech_level(spoken, 1.5)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "aac", "flac"])
async def test_speech_formats_decode_to_speech(client: AsyncOpenAI, fmt: str) -> None:
    audio = await client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=SENTENCE,
        response_format=fmt,  # type: ignore[arg-type]
    )
    decoded = decode_audio(audio.content, rate=24000)
    assert_speech_level(decoded, 1.5)
    if fmt == "wav":
        assert audio.content[:4] == b"RIFF" and audio.content[8:16] == b"WAVEfmt "


async def test_speech_default_format_is_mp3(client: AsyncOpenAI) -> None:
    raw = await client.audio.speech.with_raw_response.create(model="tts-1", voice="nova", input="Hello.")
    assert raw.headers["content-type"] == "audio/mpeg"
    assert raw.headers["x-request-id"].startswith("req_")
    data = raw.content
    assert data[:3] == b"ID3" or data[0] == 0xFF


async def test_speech_streams_sentence_by_sentence_in_chunks(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    body = {"model": "gpt-4o-mini-tts", "voice": "marin", "input": TWO_SENTENCES, "response_format": "wav"}
    async with http.post(f"{engine.base_url}/audio/speech", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Transfer-Encoding"] == "chunked"
        pieces = [piece async for piece, _ in resp.content.iter_chunks()]
    data = b"".join(pieces)
    assert len(pieces) >= 2
    assert data[4:8] == b"\xff\xff\xff\xff", "streamed WAV: size unknown in the header"
    assert_speech_level(PcmChunk.from_bytes(data[44:], 24000), 2.5)


async def test_speech_sse_deltas_then_done_with_usage(http: aiohttp.ClientSession, engine: Engine) -> None:
    body = {"model": "gpt-4o-mini-tts", "voice": "coral", "input": TWO_SENTENCES, "response_format": "pcm",
            "stream_format": "sse"}  # fmt: skip
    async with http.post(f"{engine.base_url}/audio/speech", json=body) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        frames = parse_sse(await resp.text())
    assert all(name is None for name, _ in frames), "speech SSE frames carry data lines only"
    events = [data for _, data in frames]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * (len(events) - 1) + ["speech.audio.done"]
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert_speech_level(PcmChunk.from_bytes(pcm, 24000), 2.5)


async def test_speech_speed_changes_the_duration(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    fast = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm", speed=2.0
    )
    assert len(fast.content) / 2 < spoken.num_samples * 0.75


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"voice": "alloy", "input": "hi"}, "model"),
        ({"model": "tts-1", "voice": "alloy", "input": ""}, "input"),
        ({"model": "tts-1", "voice": "alloy", "input": "x" * 4097}, "input"),
        ({"model": "tts-1", "voice": "robot", "input": "hi"}, "voice"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "response_format": "ogg"}, "response_format"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 4.5}, "speed"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 0.1}, "speed"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "stream_format": "sse"}, "stream_format"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "instructions": "whisper"}, "instructions"),
    ],
)
async def test_speech_validation_errors_are_400s(
    client: AsyncOpenAI, body: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.post("/audio/speech", body=body, cast_to=object)
    assert info.value.param == param


# transcription -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filename", "container", "codec"),
    [
        ("a.wav", "wav", "pcm_s16le"),
        ("a.mp3", "mp3", "libmp3lame"),
        ("a.ogg", "ogg", "libopus"),
        ("a.flac", "flac", "flac"),
        ("a.webm", "webm", "libopus"),
        ("a.m4a", "ipod", "aac"),
    ],
)
async def test_transcribes_every_accepted_container(
    client: AsyncOpenAI, spoken: PcmChunk, filename: str, container: str, codec: str
) -> None:
    data = encode_file(spoken, container, codec)
    result = await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=(filename, data))
    assert word_error_rate(SENTENCE, result.text) <= 0.2, result.text
    Transcription.model_validate(result.model_dump())
    assert result.usage is not None and result.usage.type == "tokens"


async def test_transcribes_the_engines_own_wav_and_mp3(client: AsyncOpenAI) -> None:
    for fmt in ("wav", "mp3"):
        speech = await client.audio.speech.create(
            model="tts-1",
            voice="echo",
            input=SENTENCE,
            response_format=cast(Any, fmt),
        )
        result = await client.audio.transcriptions.create(
            model="whisper-1", file=(f"s.{fmt}", speech.content)
        )
        assert word_error_rate(SENTENCE, result.text) <= 0.2, result.text
        assert result.usage is not None and result.usage.type == "duration"


async def test_text_srt_and_vtt_formats(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    wav = encode_file(spoken, "wav", "pcm_s16le")
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="text"
    )
    assert isinstance(text, str) and text.endswith("\n") and word_error_rate(SENTENCE, text) <= 0.2
    srt = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="srt"
    )
    assert re.fullmatch(r"(\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[^\n]+\n\n)+", srt), srt
    vtt = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="vtt"
    )
    assert re.fullmatch(r"WEBVTT\n\n(\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n[^\n]+\n\n)+", vtt), vtt
    assert normalize(" ".join(srt.split("\n")[2::4])) == normalize(text)


async def test_verbose_json_with_word_and_segment_timestamps(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    wav = encode_file(spoken, "wav", "pcm_s16le")
    result = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", wav, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    TranscriptionVerbose.model_validate(result.model_dump())
    assert result.language == "english"
    assert abs(result.duration - spoken.duration_ms / 1000) < 0.1
    assert result.words is not None and result.segments is not None
    assert [normalize(w.word) for w in result.words] == normalize(result.text).split()
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= result.duration + 0.05


async def test_stream_true_sends_text_deltas_then_done(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    wav = encode_file(spoken, "wav", "pcm_s16le")
    stream = await client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("a.wav", wav), stream=True
    )
    events: list[Any] = [event async for event in stream]
    adapter = TypeAdapter(TranscriptionStreamEvent)
    for event in events:
        adapter.validate_python(event.model_dump(exclude_none=True))
    assert [e.type for e in events] == ["transcript.text.delta"] * (len(events) - 1) + [
        "transcript.text.done"
    ]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1] if e.type == "transcript.text.delta") == done.text
    assert done.usage is not None and done.usage.total_tokens > 0
    assert word_error_rate(SENTENCE, done.text) <= 0.2


async def test_gpt4o_transcribe_refuses_srt_like_upstream(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(
            model="gpt-4o-transcribe",
            file=("a.wav", encode_file(spoken, "wav", "pcm_s16le")),
            response_format="srt",
        )
    assert info.value.param == "response_format"


async def test_transcription_errors_are_400s(
    client: AsyncOpenAI, http: aiohttp.ClientSession, engine: Engine
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(model="whisper-1", file=("noise.wav", b"\x01\x02" * 500))
    assert info.value.param == "file"
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"hello"))
    assert "Unrecognized file format" in info.value.message
    async with http.post(f"{engine.base_url}/audio/transcriptions", json={"model": "whisper-1"}) as resp:
        assert resp.status == 400
        assert "multipart/form-data" in (await resp.json())["error"]["message"]
    form = aiohttp.FormData()
    form.add_field("model", "whisper-1", content_type="text/plain")  # a multipart form without a file
    async with http.post(f"{engine.base_url}/audio/transcriptions", data=form) as resp:
        assert resp.status == 400
        body = json.loads(await resp.text())
    assert body["error"]["param"] == "file" and body["error"]["code"] == "missing_required_parameter"


# the encoder on its own ----------------------------------------------------------------------------------
async def test_encoder_output_round_trips_through_av(spoken: PcmChunk) -> None:
    for fmt in ("mp3", "opus", "aac", "flac"):
        encoder = AudioEncoder(fmt)
        half = spoken.num_samples // 2
        data = encoder.encode(PcmChunk(spoken.samples[:half], 24000))
        data += encoder.encode(PcmChunk(spoken.samples[half:], 24000)) + encoder.finish()
        decoded = decode_audio(data, rate=24000)
        assert abs(decoded.duration_ms - spoken.duration_ms) < 150, fmt


async def test_a_missing_encoder_is_a_clear_400(client: AsyncOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(audio_codec._AV_FORMATS, "aac", ("adts", "no_such_encoder", None))
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="aac")
    assert info.value.param == "response_format" and "cannot encode 'aac'" in info.value.message
    assert info.value.code == "unsupported_value"


async def test_uploads_over_the_root_apps_1mib_limit_are_read(client: AsyncOpenAI, spoken: PcmChunk) -> None:
    """The test server's root app keeps aiohttp's 1 MiB default; the engine raises its own limit."""
    padded = PcmChunk(np.concatenate([spoken.samples, np.zeros(24000 * 20, dtype=np.int16)]), 24000)
    wav = encode_file(padded, "wav", "pcm_s16le")
    assert len(wav) > 1024 * 1024
    result = await client.audio.transcriptions.create(model="whisper-1", file=("long.wav", wav))
    assert word_error_rate(SENTENCE, result.text) <= 0.2, result.text


async def test_an_upload_over_25_mib_is_a_413(http: aiohttp.ClientSession, engine: Engine) -> None:
    form = aiohttp.FormData()
    form.add_field("model", "whisper-1")
    big = io.BytesIO(bytes(25 * 1024 * 1024 + 1))
    form.add_field("file", big, filename="big.wav", content_type="audio/wav")
    async with http.post(f"{engine.base_url}/audio/transcriptions", data=form) as resp:
        assert resp.status == 413
        body = await resp.json()
    assert body["error"]["param"] == "file" and "Maximum content size" in body["error"]["message"]

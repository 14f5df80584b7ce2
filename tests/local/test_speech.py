"""The local engine's speech stack, end to end with the real models (TTS → STT round trips)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator

import jiwer
import numpy as np
import pytest
import pytest_asyncio
import soxr

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.errors import BadRequest, ConfigError
from voicebot.local.speech import SpeechBackendError, SpeechStack, describe_available

pytestmark = pytest.mark.asyncio(loop_scope="session")

WER_SENTENCES = [
    "set a timer for five minutes",
    "what is the weather like in paris",
    "turn off the lights in the kitchen",
    "call my mother on her mobile phone",
    "play some relaxing music please",
    "the meeting has been moved to thursday afternoon",
    "remind me to buy milk tomorrow morning",
    "how long does it take to drive to the airport",
    "send a message to john saying i am running late",
    "what time does the pharmacy close today",
]


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def stack() -> AsyncIterator[SpeechStack]:
    s = await SpeechStack.create()
    yield s
    await s.close()


async def speak(stack: SpeechStack, text: str) -> PcmChunk:
    return PcmChunk.concat([c async for c in stack.synthesize(text)], rate=24000)


def to_rate(chunk: PcmChunk, rate: int) -> PcmChunk:
    return PcmChunk(np.asarray(soxr.resample(chunk.samples, chunk.rate, rate), dtype=np.int16), rate)


async def test_stack_reports_best_available_tiers(stack: SpeechStack) -> None:
    available = describe_available()
    assert set(stack.info) >= {"vad", "stt", "tts"}
    assert available["vad"][0] == "silero-v6-onnx" and stack.info["vad"] == "silero-v6-onnx"
    assert available["stt"][0] == "faster-whisper" and stack.info["stt"] == "faster-whisper tiny.en int8"
    assert available["tts"][0] == "piper" and stack.info["tts"] == "piper en_US-joe-medium"
    assert len(stack.tts_worker_pids) == 1 and stack.tts_worker_pids[0] != os.getpid()


async def test_tts_yields_24k_speech(stack: SpeechStack) -> None:
    chunks = [c async for c in stack.synthesize("The weather today is sunny with a light breeze outside.")]
    assert chunks and all(c.rate == 24000 for c in chunks)
    audio = PcmChunk.concat(chunks)
    assert 1.5 < audio.duration_ms / 1000 < 6.0
    assert audio.rms() > 1000  # speech, not silence (full scale is 32768)


async def test_tts_first_sentence_arrives_before_the_rest_is_done(stack: SpeechStack) -> None:
    text = (
        "Good morning, here is your briefing for today. "
        "Your first meeting with the design team starts at half past nine in the large room. "
        "After lunch you have two calls and a review of the quarterly budget numbers."
    )
    t0 = time.perf_counter()
    arrivals: list[float] = []
    async for _chunk in stack.synthesize(text):
        arrivals.append(time.perf_counter() - t0)
    assert len(arrivals) == 3  # one chunk per sentence
    total = arrivals[-1]
    assert arrivals[0] < 0.75 * total, arrivals


async def test_tts_cache_makes_repeats_free(stack: SpeechStack) -> None:
    text = "Your order number is on its way."
    first = await speak(stack, text)
    hits = stack.cache_stats["hits"]
    t0 = time.perf_counter()
    second = await speak(stack, text)
    elapsed = time.perf_counter() - t0
    assert stack.cache_stats["hits"] == hits + 1
    np.testing.assert_array_equal(first.samples, second.samples)
    assert elapsed < 0.05


async def test_tts_variation_zero_repeats_exactly_and_the_trained_voice_varies(stack: SpeechStack) -> None:
    text = "Please hold while I check that for you."
    stack.clear_cache()
    first = await speak(stack, text)  # the suite runs with VOICEBOT_LOCAL_TTS_VARIATION=0
    stack.clear_cache()
    np.testing.assert_array_equal(first.samples, (await speak(stack, text)).samples)

    from voicebot.local.speech.tts_engines import PiperEngine

    trained = await asyncio.to_thread(PiperEngine, 1.0)
    a, b = [await asyncio.to_thread(trained.synthesize, text, None, 1.0) for _ in range(2)]
    assert a.shape != b.shape or not np.array_equal(a, b)


@pytest.mark.parametrize("raw", ["loud", "1.5", "-0.1"])
async def test_a_bad_tts_variation_in_the_environment_is_refused(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_LOCAL_TTS_VARIATION", raw)
    with pytest.raises(ConfigError, match="VOICEBOT_LOCAL_TTS_VARIATION"):
        await SpeechStack.create()


async def test_abandoned_stream_frees_the_worker_and_streams_share_it(stack: SpeechStack) -> None:
    text = "This is the first sentence. This one is never heard. Neither is this one."
    async with contextlib.aclosing(stack.synthesize(text)) as stream:
        async for first in stream:
            assert first.rms() > 1000
            break  # barge-in: the listener stops after the first sentence
    a, b = await asyncio.wait_for(
        asyncio.gather(speak(stack, "Two streams at once. One worker."), speak(stack, "The other stream.")),
        20,
    )
    assert a.rms() > 1000 and b.rms() > 1000


async def test_stt_of_tts_matches(stack: SpeechStack) -> None:
    audio = await speak(stack, "What is the weather like in Paris?")
    result = await stack.transcribe(audio)
    assert normalize(result.text) == "what is the weather like in paris"
    assert result.language == "en"
    assert result.duration_s == pytest.approx(audio.duration_ms / 1000, abs=0.01)
    assert [normalize(w.word) for w in result.words] == [
        "what",
        "is",
        "the",
        "weather",
        "like",
        "in",
        "paris",
    ]
    assert all(0 <= w.start <= w.end <= result.duration_s for w in result.words)
    assert result.segments and result.segments[0].start == 0.0


@pytest.mark.slow
async def test_wer_of_tts_round_trip_is_low(stack: SpeechStack) -> None:
    hypotheses = []
    for sentence in WER_SENTENCES:
        result = await stack.transcribe(await speak(stack, sentence), word_timestamps=False)
        hypotheses.append(normalize(result.text.replace("5", "five")))
    wer = jiwer.wer(WER_SENTENCES, hypotheses)
    assert wer <= 0.20, list(zip(WER_SENTENCES, hypotheses, strict=True))


@pytest.mark.parametrize("rate", [8000, 48000])
async def test_transcribe_accepts_other_rates(stack: SpeechStack, rate: int) -> None:
    audio = to_rate(await speak(stack, "Turn off the lights in the kitchen."), rate)
    result = await stack.transcribe(audio)
    assert normalize(result.text) == "turn off the lights in the kitchen"
    assert result.duration_s == pytest.approx(audio.num_samples / rate, abs=0.01)


async def test_transcribe_short_or_empty_audio_gives_empty_text(stack: SpeechStack) -> None:
    result = await stack.transcribe(PcmChunk(np.zeros(0, dtype=np.int16), 16000))
    assert result.text == "" and result.duration_s == 0.0
    with pytest.raises(BadRequest):
        await stack.transcribe(PcmChunk.silence(601_000, 8000))


async def test_vad_finds_speech_in_tts_and_none_in_silence_or_low_noise(stack: SpeechStack) -> None:
    speech = to_rate(await speak(stack, "Please call me back when you have a minute."), 16000)
    vad = stack.new_vad()
    splitter = FrameSplitter(vad.rate, 1000 * vad.frame_samples // vad.rate)
    assert splitter.frame_samples == vad.frame_samples
    probs = [vad.speech_prob(f) for f in splitter.push(speech)]
    assert np.mean(np.array(probs) > 0.5) > 0.5

    rng = np.random.default_rng(7)
    vad.reset()
    quiet = [PcmChunk.silence(2000, 16000), PcmChunk((rng.normal(0, 30, 32000)).astype(np.int16), 16000)]
    for chunk in quiet:
        splitter = FrameSplitter(vad.rate, 1000 * vad.frame_samples // vad.rate)
        assert max(vad.speech_prob(f) for f in splitter.push(chunk)) < 0.5


async def test_vad_rejects_wrong_frames(stack: SpeechStack) -> None:
    vad = stack.new_vad()
    with pytest.raises(ValueError, match="samples"):
        vad.speech_prob(PcmChunk.silence(10, 16000))


async def test_tts_rejects_bad_speed_and_ignores_empty_text(stack: SpeechStack) -> None:
    with pytest.raises(BadRequest):
        [c async for c in stack.synthesize("hello", speed=10.0)]
    assert [c async for c in stack.synthesize("   \n ")] == []


async def test_faster_speed_gives_shorter_audio(stack: SpeechStack) -> None:
    text = "This sentence is spoken at two different speeds."
    normal = PcmChunk.concat([c async for c in stack.synthesize(text)])
    fast = PcmChunk.concat([c async for c in stack.synthesize(text, speed=1.5)])
    assert fast.num_samples < 0.85 * normal.num_samples, (fast.num_samples, normal.num_samples)


async def test_event_loop_keeps_ticking_during_transcription(stack: SpeechStack) -> None:
    audio = await speak(stack, "How long does it take to drive to the airport from the city centre tonight?")
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    t0 = loop.time()
    result = await stack.transcribe(audio)
    elapsed = loop.time() - t0
    done.set()
    await tick
    assert "airport" in normalize(result.text)
    assert len(gaps) >= elapsed / 0.03  # it ticked throughout
    assert max(gaps) < 0.1, (
        f"max gap {max(gaps) * 1000:.0f} ms during a {elapsed * 1000:.0f} ms transcription"
    )


async def test_dead_worker_fails_its_request_and_restarts(stack: SpeechStack) -> None:
    # killed while idle: the next request restarts it transparently
    (pid,) = stack.tts_worker_pids
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)  # let it finish dying, so it is dead *before* the next request
    audio = await speak(stack, "The worker was restarted after it was killed.")
    assert audio.rms() > 1000
    (new_pid,) = stack.tts_worker_pids
    assert new_pid != pid and process_gone(pid)

    # killed during a request: that request fails clearly, the next one works
    long = " ".join(["one two three four five six seven eight nine ten"] * 3) + " and counting"

    async def consume() -> None:
        async for _ in stack.synthesize(long):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    os.kill(new_pid, signal.SIGKILL)
    with pytest.raises(SpeechBackendError, match="died"):
        await task
    assert (await speak(stack, "Back in business.")).rms() > 1000


async def test_fallback_tiers_and_close_ends_the_worker() -> None:
    lite = await SpeechStack.create(stt="pocketsphinx", tts="espeak", vad="webrtc", tts_workers=2)
    try:
        assert lite.info == {
            "vad": "webrtcvad mode 3 20ms",
            "stt": "pocketsphinx en-us",
            "tts": "espeak-ng en-us",
        }
        pids = lite.tts_worker_pids
        assert len(pids) == 2 and not any(process_gone(p) for p in pids)
        audio = await speak(lite, "What is the weather like in Paris?")
        assert audio.rate == 24000 and audio.rms() > 1000
        words = set(normalize((await lite.transcribe(audio)).text).split())
        assert len(words & {"what", "is", "the", "weather", "like", "in", "paris"}) >= 3
        vad = lite.new_vad()
        assert (vad.rate, vad.frame_samples) == (16000, 320)
    finally:
        await lite.close()
    assert all(process_gone(p) for p in pids)
    assert lite.tts_worker_pids == []
    with pytest.raises(SpeechBackendError, match="closed"):
        await lite.transcribe(PcmChunk.silence(100, 16000))

"""Benchmark of the speech stack: ``python -m voicebot.local.speech.bench [--stt ..] [--tts ..] [--vad ..]``.

Prints model load times, STT latency for a 2 s utterance (median of 5), TTS time to first audio and total
for a 10-word sentence (median of 5, cold and cached), and the VAD cost per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
import soxr

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.local.speech.stack import SpeechStack

TEN_WORDS = "The weather today is sunny with a light breeze outside."
UTTERANCE = "Please set a timer for five minutes."
RUNS = 5


async def _tts_once(stack: SpeechStack, text: str) -> tuple[float, float, PcmChunk]:
    t0 = time.perf_counter()
    first = 0.0
    chunks: list[PcmChunk] = []
    async for chunk in stack.synthesize(text):
        if not chunks:
            first = time.perf_counter() - t0
        chunks.append(chunk)
    return first, time.perf_counter() - t0, PcmChunk.concat(chunks, rate=24000)


def _ms(values: list[float]) -> str:
    lo, hi = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:7.1f} ms (min {lo:.1f}, max {hi:.1f})"


async def _bench_tts(stack: SpeechStack) -> None:
    first, total, _ = await _tts_once(stack, TEN_WORDS)
    print(f"TTS first call after load   first audio {first * 1000:7.1f} ms, total {total * 1000:.1f} ms")
    cold_first: list[float] = []
    cold_total: list[float] = []
    cached_first: list[float] = []
    cached_total: list[float] = []
    for _ in range(RUNS):
        stack.clear_cache()
        f, t, _ = await _tts_once(stack, TEN_WORDS)
        cold_first.append(f)
        cold_total.append(t)
    for _ in range(RUNS):
        f, t, _ = await _tts_once(stack, TEN_WORDS)
        cached_first.append(f)
        cached_total.append(t)
    print(f"TTS 10 words, cold          first audio {_ms(cold_first)}   total {_ms(cold_total)}")
    print(f"TTS 10 words, cached        first audio {_ms(cached_first)}   total {_ms(cached_total)}")


async def _bench_stt(stack: SpeechStack) -> None:
    _, _, speech = await _tts_once(stack, UTTERANCE)
    n = 2 * speech.rate  # exactly 2 s: pad with silence (the sentence is shorter)
    samples = np.zeros(n, dtype=np.int16)
    samples[: min(n, speech.num_samples)] = speech.samples[:n]
    audio = PcmChunk(np.asarray(soxr.resample(samples, speech.rate, 16000), dtype=np.int16), 16000)
    for words in (True, False):
        times: list[float] = []
        text = ""
        for _ in range(RUNS):
            t0 = time.perf_counter()
            text = (await stack.transcribe(audio, word_timestamps=words)).text
            times.append(time.perf_counter() - t0)
        label = "with word times" if words else "text only      "
        print(f"STT 2 s utterance, {label}  {_ms(times)}   -> {text!r}")


def _bench_vad(stack: SpeechStack) -> None:
    vad = stack.new_vad()
    rng = np.random.default_rng(0)
    audio = PcmChunk(rng.normal(0, 2000, 16000 * 5).astype(np.int16), 16000)
    frames = FrameSplitter(vad.rate, 1000 * vad.frame_samples // vad.rate).push(audio)
    t0 = time.perf_counter()
    for frame in frames:
        vad.speech_prob(frame)
    per = (time.perf_counter() - t0) / len(frames)
    print(f"VAD {stack.info['vad']}: {per * 1e6:.1f} µs per {vad.frame_samples}-sample frame")


async def run(stt: str, tts: str, vad: str) -> None:
    t0 = time.perf_counter()
    stack = await SpeechStack.create(stt=stt, tts=tts, vad=vad)
    total = time.perf_counter() - t0
    try:
        print(f"tiers: {stack.info}")
        loads = ", ".join(f"{k} {v:.2f} s" for k, v in stack.load_times_s.items())
        print(f"load: {loads} (concurrently; create() took {total:.2f} s)")
        await _bench_stt(stack)
        await _bench_tts(stack)
        _bench_vad(stack)
    finally:
        await stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stt", default="auto", help="auto, whisper or pocketsphinx")
    parser.add_argument("--tts", default="auto", help="auto, piper or espeak")
    parser.add_argument("--vad", default="auto", help="auto, silero, webrtc or energy")
    args = parser.parse_args()
    asyncio.run(run(args.stt, args.tts, args.vad))


if __name__ == "__main__":
    main()

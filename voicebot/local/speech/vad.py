"""Frame VADs for the local engine: silero v6 (ONNX), webrtcvad, and a numpy energy detector.

Each detector is one stream's state; the heavy part (the ONNX session) is loaded once per stack and shared
by all streams (``InferenceSession.run`` is thread-safe). A silero frame costs about 65 µs and a webrtcvad
frame about 2 µs, so callers may run them inline.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

from voicebot.audio.chunk import PcmChunk

log = logging.getLogger("voicebot.local.speech")

VAD_RATE = 16000


def _check(frame: PcmChunk, rate: int, frame_samples: int) -> None:
    if frame.rate != rate or frame.num_samples != frame_samples:
        raise ValueError(
            f"VAD wants frames of {frame_samples} samples at {rate} Hz, "
            f"got {frame.num_samples} samples at {frame.rate} Hz"
        )


# silero ---------------------------------------------------------------------------------------------------
def silero_model_path() -> str:
    """The silero v6 ONNX file that faster-whisper ships (raises ImportError when it is missing)."""
    import importlib.util

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("faster_whisper is not installed (it ships the silero VAD model)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "assets", "silero_vad_v6.onnx")
    if not os.path.isfile(path):
        raise ImportError(f"silero VAD model not found at {path}")
    return path


def load_silero_session() -> Any:
    """An onnxruntime session for silero v6, single-threaded (one frame is far too small to split)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(
        silero_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
    )


class SileroVad:
    """Silero v6 (sequence variant): 512-sample frames at 16 kHz with 64 samples of carried context."""

    rate = VAD_RATE
    frame_samples = 512
    _context = 64

    def __init__(self, session: Any) -> None:
        self._session = session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._ctx = np.zeros(self._context, dtype=np.float32)

    def speech_prob(self, frame: PcmChunk) -> float:
        _check(frame, self.rate, self.frame_samples)
        x = frame.samples.astype(np.float32) / 32768.0
        inp = np.concatenate([self._ctx, x])[np.newaxis, :]
        out, self._h, self._c = self._session.run(None, {"input": inp, "h": self._h, "c": self._c})
        self._ctx = x[-self._context :]
        return float(np.asarray(out).reshape(-1)[0])


# webrtcvad ------------------------------------------------------------------------------------------------
class WebRtcVad:
    """webrtcvad, mode 3, 20 ms frames; its yes/no becomes 1.0/0.0."""

    frame_samples: int

    def __init__(self, rate: int = VAD_RATE, mode: int = 3) -> None:
        import webrtcvad

        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad supports 8, 16, 32 or 48 kHz, not {rate}")
        self.rate = rate
        self.frame_samples = rate // 50
        self._vad = webrtcvad.Vad(mode)

    def reset(self) -> None:
        pass  # webrtcvad keeps only slow-adapting noise statistics; a fresh stream may reuse them

    def speech_prob(self, frame: PcmChunk) -> float:
        _check(frame, self.rate, self.frame_samples)
        return 1.0 if self._vad.is_speech(frame.to_bytes(), self.rate) else 0.0


# energy ---------------------------------------------------------------------------------------------------
class EnergyVad:
    """The no-dependency last resort: frame level against a minimum-following noise floor.

    The floor drops at once to quieter frames and rises by ``rise_db_per_frame`` otherwise. A frame is
    speech when it is loud enough in absolute terms and well above the floor; the probability is a
    logistic in the margin, so callers' hysteresis thresholds (0.5 / 0.35) behave sensibly.
    """

    frame_samples: int

    def __init__(
        self,
        rate: int = VAD_RATE,
        *,
        margin_db: float = 9.0,
        gate_dbfs: float = -55.0,
        rise_db_per_frame: float = 0.05,
    ) -> None:
        self.rate = rate
        self.frame_samples = rate // 50
        self._margin = margin_db
        self._gate = gate_dbfs
        self._rise = rise_db_per_frame
        self.reset()

    def reset(self) -> None:
        self._floor: float | None = None

    def speech_prob(self, frame: PcmChunk) -> float:
        _check(frame, self.rate, self.frame_samples)
        rms = frame.rms()
        level = 20.0 * math.log10(max(rms, 1e-3) / 32768.0)
        if self._floor is None:
            self._floor = min(level, -50.0)  # assume a stream may start with speech
        elif level < self._floor:
            self._floor = level
        else:
            self._floor = min(self._floor + self._rise, level)
        if level < self._gate:
            return 0.0
        margin = level - self._floor - self._margin
        return 1.0 / (1.0 + math.exp(-margin / 1.5))

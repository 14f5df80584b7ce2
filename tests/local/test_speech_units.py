"""Pure parts of the speech stack: sentence splitting and the fallback VADs (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.errors import ConfigError
from voicebot.local.speech.stack import load_vad
from voicebot.local.speech.text import MAX_SENTENCE_WORDS, split_sentences
from voicebot.local.speech.vad import EnergyVad, WebRtcVad


def test_split_sentences_on_terminators_and_lines() -> None:
    text = "Hello there!  How are you?\nI am fine. Thanks…  Bye"
    assert split_sentences(text) == ["Hello there!", "How are you?", "I am fine.", "Thanks…", "Bye"]


def test_split_sentences_keeps_abbreviations_together() -> None:
    assert split_sentences("Dr. Smith is in. Call Mr. Jones.") == ["Dr. Smith is in.", "Call Mr. Jones."]


def test_split_sentences_cuts_very_long_runs() -> None:
    words = [f"word{i}" for i in range(100)]
    parts = split_sentences(" ".join(words))
    assert len(parts) > 1
    assert all(len(p.split()) <= MAX_SENTENCE_WORDS for p in parts)
    assert " ".join(parts).split() == words


def test_split_sentences_of_blank_text_is_empty() -> None:
    assert split_sentences("  \n\t ") == []


def tone(ms: int, rate: int, amplitude: float, freq: float = 220.0) -> PcmChunk:
    t = np.arange(rate * ms // 1000) / rate
    # a harmonic-rich "voiced" signal with a 4 Hz syllable-like envelope
    sig = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 8))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return PcmChunk((amplitude * env * sig / 2).astype(np.int16), rate)


def probs(vad: EnergyVad | WebRtcVad, chunk: PcmChunk) -> list[float]:
    splitter = FrameSplitter(vad.rate, 1000 * vad.frame_samples // vad.rate)
    return [vad.speech_prob(f) for f in splitter.push(chunk)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_energy_vad_separates_loud_from_quiet(rate: int) -> None:
    vad = EnergyVad(rate)
    rng = np.random.default_rng(1)
    noise = PcmChunk(rng.normal(0, 20, rate).astype(np.int16), rate)
    assert max(probs(vad, noise)) < 0.5
    loud = probs(vad, tone(1000, rate, 8000))
    assert np.mean(np.array(loud) > 0.5) > 0.9
    vad.reset()
    assert max(probs(vad, PcmChunk.silence(500, rate))) == 0.0


def test_webrtc_vad_at_8k_and_16k() -> None:
    for rate in (8000, 16000):
        vad = WebRtcVad(rate)
        assert vad.frame_samples == rate // 50
        assert max(probs(vad, PcmChunk.silence(500, rate))) == 0.0
    with pytest.raises(ValueError):
        WebRtcVad(11025)


def test_vad_tiers_by_name() -> None:
    name, factory = load_vad("energy")
    assert name == "energy" and isinstance(factory(), EnergyVad)
    name, factory = load_vad("webrtc")
    assert name.startswith("webrtcvad") and isinstance(factory(), WebRtcVad)
    with pytest.raises(ConfigError):
        load_vad("nonsense")

"""The load tester's pure parts: the microphone player, the summary, argument checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import BadRequest
from voicebot.loadtest.common import LoadTestConfig
from voicebot.loadtest.media import Player, load_utterances, make_utterance
from voicebot.loadtest.report import CallResult, format_report, summarize
from voicebot.loadtest.runner import loopback_host, validate
from voicebot.loadtest.sip_caller import check_sip_target


def _voiced_then_quiet(rate: int, voiced_ms: int, quiet_ms: int) -> PcmChunk:
    t = np.arange(rate * voiced_ms // 1000) / rate
    voice = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    return PcmChunk(np.concatenate([voice, np.zeros(rate * quiet_ms // 1000, dtype=np.int16)]), rate)


def test_player_marks_the_end_of_speech_and_the_end_of_the_utterance() -> None:
    utt = make_utterance("u", _voiced_then_quiet(16000, 100, 50), 8000)  # resampled to 8 kHz
    assert utt.rate == 8000 and utt.samples.shape[0] == 1200
    assert utt.speech_end == 800  # the last voiced 20 ms frame ends at 100 ms
    player = Player(8000)
    player.queue(utt)
    frames = [player.next_frame() for _ in range(9)]
    assert [f.speech_ended for f in frames] == [False] * 4 + [True] + [False] * 4
    assert [f.drained for f in frames] == [False] * 7 + [True, False]
    assert all(f.samples.shape == (160,) for f in frames)
    assert not frames[8].samples.any() and player.idle  # silence once the queue is empty


def test_summary_counts_reasons_and_latency_percentiles() -> None:
    results = [CallResult(i + 1, "webrtc") for i in range(4)]
    for r, lat in zip(results[:2], ([100.0, 300.0], [200.0]), strict=True):
        r.outcome = "answered"
        r.latencies_ms = lat
        r.audio.add(np.full(480, 1000, dtype=np.int16), 24000)
    results[2].fail("503 full")
    report = summarize(results, transport="webrtc", target="http://x", concurrency=2, wall_s=1.0)
    assert (report.attempted, report.answered, report.failed, report.not_started) == (3, 2, 1, 1)
    assert report.failure_reasons == {"503 full": 1}
    assert report.latency_ms["turns"] == 3
    assert report.latency_ms["median"] == 200.0 and report.latency_ms["max"] == 300.0
    assert report.audio_s["median"] == pytest.approx(0.02) and report.silent_calls == 0
    assert not report.ok
    text = format_report(report)
    assert "503 full ×1" in text and "NOT OK" in text and "not started 1" in text


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="--url"):
        validate(LoadTestConfig(url=None))
    with pytest.raises(BadRequest, match="--sip-target"):
        validate(LoadTestConfig(transport="sip"))
    with pytest.raises(BadRequest, match="--calls"):
        validate(LoadTestConfig(url="http://127.0.0.1:1", calls=0))
    with pytest.raises(BadRequest, match="no such audio file"):
        load_utterances([tmp_path / "missing.wav"], 48000)
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(BadRequest, match="cannot read it as WAV"):
        load_utterances([tmp_path / "junk.wav"], 48000)
    with pytest.raises(BadRequest, match="sip:bot@HOST:PORT"):
        check_sip_target("bot@127.0.0.1")
    assert check_sip_target("sip:bot@127.0.0.1:5070").port == 5070
    assert loopback_host("127.0.0.1") == "127.0.0.1" and loopback_host("[::1]") == "::1"
    assert loopback_host("localhost") == "127.0.0.1" and loopback_host("192.0.2.1") is None

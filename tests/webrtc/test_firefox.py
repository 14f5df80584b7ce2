"""End to end in Firefox: Debian's firefox-esr, headless, driven over WebDriver BiDi, talks to ``voicebot serve``.

Firefox cannot play a file as its fake microphone (Chromium's ``--use-file-for-fake-audio-capture``), so a
preload script hands the page a microphone stream that plays the engine-synthesized question through
WebAudio. Everything else is Firefox's own: the page, its WebRTC stack (ICE on loopback, DTLS, Opus), the
playback of the agent's voice. Like every WebRTC test it runs in a private network namespace.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.webrtc.bidi import FIREFOX, PULSEAUDIO, firefox_bidi, null_audio_server
from tests.webrtc.test_browser import (
    ANSWERED_JS,
    INBOUND_STATS_JS,
    PHRASE,
    QUESTION_AND_ANSWER_JS,
    voicebot_serve,
    wait_no_calls,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not Path(FIREFOX).exists(), reason="Debian firefox-esr is not installed (apt-get install firefox-esr)"
    ),
    pytest.mark.skipif(
        not Path(PULSEAUDIO).exists(),
        reason="Debian pulseaudio is not installed (apt-get install pulseaudio)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("voicebot.server.sessions") is None, reason="voicebot serve is missing"
    ),
]

# Wraps getUserMedia before the page's own script runs: Firefox opens its fake device (so the page holds a
# capture permission, as with a real microphone), and the page gets a stream that plays the WAV once.
FAKE_MIC_JS = """() => {
  const wav = Uint8Array.from(atob("%s"), (c) => c.charCodeAt(0)).buffer;
  const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    // Firefox's own (fake) capture first: a page with a live microphone may gather host ICE candidates
    const device = await realGetUserMedia(constraints);
    const ctx = new AudioContext({ sampleRate: 48000 });
    const buffer = await ctx.decodeAudioData(wav.slice(0));
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    const out = ctx.createMediaStreamDestination();
    source.connect(out);
    source.start();
    window.fakeMic = { ctx, source, device, seconds: buffer.duration };
    return out.stream;
  };
}"""


async def question_wav_bytes() -> bytes:
    """The caller's question spoken by the engine's TTS, 16 kHz mono, with a second of silence around it."""
    from voicebot.audio.chunk import PcmChunk
    from voicebot.audio.resample import resample
    from voicebot.local.speech import SpeechStack

    stack = await SpeechStack.create()
    try:
        chunks = [c async for c in stack.synthesize(PHRASE)]
    finally:
        await stack.close()
    speech = resample(PcmChunk.concat(chunks), 16000).samples
    silence = np.zeros(16000, dtype=np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate([silence, speech, silence, silence, silence]).tobytes())
    return buf.getvalue()


def route_default_to_loopback() -> None:
    """Firefox gathers ICE candidates only on the "default" interface (the one a UDP socket connected to a
    public address would use) unless the page holds a granted microphone permission, which a fake device with
    the prompt disabled is not; in the bare namespace there is no such route and it gathers nothing. A default route onto ``lo`` makes that interface loopback. The
    namespace is the test's own and has no other interface: nothing can leave it."""
    subprocess.run(
        ["ip", "route", "replace", "default", "dev", "lo", "src", "127.0.0.1"],
        check=True,
        capture_output=True,
    )


async def test_firefox_talks_to_the_local_engine(tmp_path: Path, _loopback_only_netns: str) -> None:
    route_default_to_loopback()
    wav = await question_wav_bytes()
    async with (
        voicebot_serve(tmp_path / "server.log") as base,
        null_audio_server(tmp_path / "pulse") as pulse,
        firefox_bidi(tmp_path / "profile", pulse) as ff,
    ):
        await ff.call(
            "script.addPreloadScript", functionDeclaration=FAKE_MIC_JS % base64.b64encode(wav).decode()
        )
        await ff.call("browsingContext.navigate", context=ff.context, url=base + "/", wait="complete")
        assert await ff.evaluate("document.title") == "voicebot — talk to the agent"
        assert await ff.evaluate("navigator.userAgent.includes('Firefox')")
        await ff.click("#connect")
        try:
            # (an error shown on the page ends the wait at once)
            await ff.wait_for(
                f"({ANSWERED_JS}) || !document.querySelector('#alert').hidden", 120, "the answer"
            )
            assert await ff.evaluate("document.querySelector('#alert').hidden")
        except (TimeoutError, AssertionError) as exc:
            bubbles = await ff.evaluate(
                "[...document.querySelectorAll('#messages li')].map(li => li.innerText)"
            )
            alert = await ff.evaluate("document.querySelector('#alert').innerText")
            mic = await ff.evaluate("window.fakeMic && [window.fakeMic.ctx.state, window.voicebot.micRms]")
            events = await ff.evaluate(
                "window.voicebot.events.map(e => e.type + ':' + (e.state || e.text || ''))"
            )
            raise AssertionError(
                f"no answer in Firefox; page alert {alert!r}, conversation {bubbles}, mic {mic}, events {events}"
            ) from exc
        await ff.wait_for(
            "(() => { const s = window.voicebot.events.filter(e => e.type === 'state').map(e => e.state);"
            " const i = s.indexOf('speaking'); return i >= 0 && s.slice(i).includes('listening'); })()",
            60,
            "listening after the answer",
        )
        user, agent = await ff.evaluate(f"({QUESTION_AND_ANSWER_JS})()")
        stats = await ff.evaluate(f"({INBOUND_STATS_JS})()")
        rms = await ff.evaluate("window.voicebot.maxOutputRms")
        latency = await ff.evaluate("document.querySelector('#latency-last').innerText")
        codec = await ff.evaluate("document.querySelector('#codec').innerText")
        events = await ff.evaluate("window.voicebot.events")
        print(f"\nFIREFOX user={user!r} agent={agent!r} stats={stats} rms={rms:.3f} latency={latency}")
        await ff.screenshot(tmp_path / "webrtc-demo-firefox.png")

        assert "time" in user.lower(), f"the engine heard {user!r}"
        assert agent.strip(), "the agent's answer has no text"
        assert stats["packets"] > 50 and stats["bytes"] > 3_000, stats
        assert rms > 0.02, f"the agent's audio was silent in Firefox (RMS {rms})"
        assert re.fullmatch(r"\d+ ms", latency), latency
        assert codec == "OPUS"
        assert any(e["type"] == "state" and e["state"] == "speaking" for e in events), json.dumps(events)

        await ff.click("#connect")  # hang up
        assert await wait_no_calls(base, 10) == []
        assert await ff.evaluate("document.querySelector('#status-text').innerText") == "Call ended"

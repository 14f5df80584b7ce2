"""End to end: headless Chromium (Playwright) with a fake microphone talks to ``voicebot serve`` (local engine).

Everything runs in the test's private network namespace: the server and the browser are child processes of
the namespaced thread, ICE is restricted to 127.0.0.1 on both sides, and no other interface exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientSession

from tests.webrtc.bidi import stop_process

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
PHRASE = "What time is it right now?"  # one sentence: the engine's VAD must not split it into two turns

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="pip package playwright is missing"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("voicebot.server.sessions") is None,
        reason="voicebot.server.sessions (the model session factory of `voicebot serve`) does not exist yet",
    ),
]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]

# The caller's question (a user bubble mentioning "time") followed by a final assistant answer.
QUESTION_AND_ANSWER_JS = """() => {
  const lis = [...document.querySelectorAll('#messages li')];
  const u = lis.findIndex((li) => li.classList.contains('user') && /time/i.test(li.innerText));
  if (u < 0) return null;
  const a = lis.slice(u + 1).find((li) => li.classList.contains('assistant') && !li.classList.contains('partial'));
  return a ? [lis[u].querySelector('.text').innerText, a.querySelector('.text').innerText] : null;
}"""
ANSWERED_JS = f"({QUESTION_AND_ANSWER_JS})() !== null"

INBOUND_STATS_JS = """async () => {
  const stats = await window.voicebot.pc.getStats();
  let out = null;
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') out = s; });
  return out && {bytes: out.bytesReceived, packets: out.packetsReceived, lost: out.packetsLost};
}"""


async def speech_wav(path: Path) -> Path:
    """The caller's words, spoken by the local engine's own TTS, as a 48 kHz mono s16 WAV for Chromium."""
    from voicebot.audio.chunk import PcmChunk
    from voicebot.audio.resample import resample
    from voicebot.local.speech import SpeechStack

    stack = await SpeechStack.create()
    try:
        chunks = [c async for c in stack.synthesize(PHRASE)]
    finally:
        await stack.close()
    speech = resample(PcmChunk.concat(chunks), 48000).samples
    silence = np.zeros(48000, dtype=np.int16)
    data = np.concatenate([silence, speech, silence, silence, silence])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(data.tobytes())
    return path


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


@contextlib.asynccontextmanager
async def voicebot_serve(log_path: Path) -> AsyncIterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICEBOT_", "OPENAI_"))}
    env["VOICEBOT_ICE_HOST_ADDRESSES"] = '["127.0.0.1"]'
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voicebot", "serve", "--host", "127.0.0.1", "--port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=log, env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            m = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", line)
            assert m, f"voicebot serve did not start: {line!r}\n{tail(log_path)}"
            yield m.group(1).decode()
        finally:
            await stop_process(proc, 20)


async def wait_no_calls(base: str, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    async with ClientSession() as http:
        while True:
            async with http.get(f"{base}/api/calls") as r:
                calls: list[Any] = (await r.json())["calls"]
            if not calls or time.monotonic() > deadline:
                return calls
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("phone_quality", [False, True], ids=["opus", "phone-quality"])
async def test_chromium_talks_to_the_local_engine(tmp_path: Path, phone_quality: bool) -> None:
    from playwright.async_api import async_playwright

    wav = await speech_wav(tmp_path / "caller.wav")
    async with voicebot_serve(tmp_path / "server.log") as base, async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(base + "/")
            assert await page.title() == "voicebot — talk to the agent"
            if phone_quality:
                await page.click("label:has(#phone)")
            await page.click("#connect")
            try:
                await page.wait_for_function(ANSWERED_JS, timeout=120_000)
            except Exception as exc:
                bubbles = await page.eval_on_selector_all(
                    "#messages li", "lis => lis.map(li => li.innerText)"
                )
                raise AssertionError(f"no answer to the caller's question; conversation: {bubbles}") from exc
            # the agent finished its answer: speaking, then listening again
            await page.wait_for_function(
                "(() => { const s = window.voicebot.events.filter(e => e.type === 'state').map(e => e.state);"
                " const i = s.indexOf('speaking'); return i >= 0 && s.slice(i).includes('listening'); })()",
                timeout=60_000,
            )
            user, agent = await page.evaluate(QUESTION_AND_ANSWER_JS)
            stats = await page.evaluate(INBOUND_STATS_JS)
            rms = await page.evaluate("window.voicebot.maxOutputRms")
            latency = await page.inner_text("#latency-last")
            events = await page.evaluate("window.voicebot.events")
            print(f"\nE2E user={user!r} agent={agent!r} stats={stats} rms={rms:.3f} latency={latency}")
            await page.screenshot(path=str(tmp_path / "webrtc-demo.png"))
            codec = await page.inner_text("#codec")
            if os.environ.get("VOICEBOT_UPDATE_SCREENSHOT") == "1" and not phone_quality:
                shutil.copy(tmp_path / "webrtc-demo.png", ROOT / "docs" / "webrtc-demo.png")

            assert "time" in user.lower(), f"the engine heard {user!r}"
            assert agent.strip(), "the agent's answer has no text"
            # a second of speech is 8 kB in G.711, about 12 kB in aiortc's Opus (whose silence packets are tiny)
            assert stats["packets"] > 50 and stats["bytes"] > 10_000 and stats["lost"] == 0, stats
            assert rms > 0.02, f"the agent's audio was silent in the browser (RMS {rms})"
            assert re.fullmatch(r"\d+ ms", latency), latency
            assert codec == ("PCMU" if phone_quality else "OPUS")
            assert any(e["type"] == "state" and e["state"] == "speaking" for e in events), json.dumps(events)

            await page.click("#connect")  # hang up
            assert await wait_no_calls(base, 10) == []
            assert await page.inner_text("#status-text") == "Call ended"
        finally:
            await browser.close()

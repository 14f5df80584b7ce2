"""sipp calls with media against the bot and the local engine: speech in, speech out; DTMF; the bot hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.sip_e2e.capture import RtpCapture, capture_unavailable, loud_ms
from tests.sip_e2e.conftest import Bot, speech_ulaw
from tests.sip_e2e.sipp import DTMF_PCAPS, free_even_udp_port, run_sipp, scenario
from voicebot.audio.chunk import PcmChunk
from voicebot.local.speech import SpeechStack

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(capture_unavailable() is not None, reason=str(capture_unavailable())),
]


async def finished(bot: Bot, limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while bot.service.legs or not bot.service.finished:
            await asyncio.sleep(0.02)


def stream(path: Path, payload_type: int = 0) -> str:
    return f'<nop><action><exec rtp_stream="{path},1,{payload_type}"/></action></nop>'


def pcap(name: str) -> str:
    return f'<nop><action><exec play_pcap_audio="{DTMF_PCAPS / name}"/></action></nop>'


async def test_caller_speech_is_answered_with_speech(bot: Bot, speech: SpeechStack, tmp_path: Path) -> None:
    hello = await speech_ulaw(speech, "Hello there. What is your name?", tmp_path / "hello.ulaw")
    speech_ms = hello.stat().st_size // 8
    media = free_even_udp_port()
    xml = scenario("uac_call.xml", tmp_path, codecs="0 8", media=stream(hello), talk_ms=speech_ms + 9000)
    async with RtpCapture(media) as cap:
        result = await run_sipp(xml, bot.sip_address, cwd=tmp_path, media_port=media)
    assert result.rc == 0, result.explain()
    await finished(bot)
    record = bot.service.finished[-1]
    assert record.codec == "PCMU" and record.end_reason == "remote_bye"
    assert record.rtp_stats["jitter_received"] >= speech_ms // 20 - 5, record.rtp_stats

    assert {c.packet.payload_type for c in cap.packets} == {0}
    pcm = RtpCapture.audio(cap.packets)
    assert loud_ms(pcm) >= 1000, f"the bot's RTP held {loud_ms(pcm)} ms of audible audio"
    heard = await speech.transcribe(PcmChunk(pcm, 8000))
    words = heard.text.lower()
    assert any(w in words for w in ("robin", "name", "robot", "phone")), f"the bot said {heard.text!r}"


async def test_rfc4733_digits_reach_the_model_and_its_tools(bot: Bot, tmp_path: Path) -> None:
    media = free_even_udp_port()
    actions = "\n".join(
        [pcap("dtmf_2833_1.pcap"), '<pause milliseconds="300"/>', pcap("dtmf_2833_pound.pcap")]
    )
    xml = scenario("uac_call.xml", tmp_path, codecs="0 8", media=actions, talk_ms=3000)
    result = await run_sipp(xml, bot.sip_address, cwd=tmp_path, media_port=media)
    assert result.rc == 0, result.explain()
    await finished(bot)
    assert bot.service.finished[-1].dtmf == "1#"
    assert bot.digits == ["1 #"], "the model turned 'The caller pressed 1 #' into a record_digits call"
    assert bot.keypad == ["1#"], "the tool read the keys from the call itself (ToolContext.dtmf_received)"


async def test_bot_hangs_up_through_the_end_call_tool(bot: Bot, speech: SpeechStack, tmp_path: Path) -> None:
    words = await speech_ulaw(speech, "Thank you. Please hang up now.", tmp_path / "bye.alaw", alaw=True)
    xml = scenario("uac_bot_hangs_up.xml", tmp_path, codecs="8 0", speech=words, pt=8, bye_timeout_ms=20000)
    result = await run_sipp(xml, bot.sip_address, cwd=tmp_path, media_port=free_even_udp_port())
    assert result.rc == 0, result.explain()  # sipp got our BYE and answered it
    await finished(bot)
    record = bot.service.finished[-1]
    assert record.end_reason == "asked", record
    assert record.codec == "PCMA", "the answer follows the offer's codec order"

"""baresip (Debian baresip-core) as a second, independent SIP peer: it dials the bot, speaks from a WAV file,
and hangs up when the file ends. Its sndfile module dumps the audio it decoded, which must hold the bot's
spoken answer."""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from tests.sip_e2e.capture import loud_ms
from tests.sip_e2e.conftest import Bot
from tests.sip_e2e.sipp import free_udp_port
from voicebot.local.speech import SpeechStack

BARESIP = shutil.which("baresip")
pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(BARESIP is None, reason="baresip is not installed (Debian package baresip-core)"),
]

CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
call_max_calls 1
audio_source aufile,{source}
audio_player aubridge,nowhere
audio_alert aubridge,nowhere
rtp_ports {rtp_min}-{rtp_max}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
snd_path {dump_dir}
module_tmp account.so
module_app menu.so
"""


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.astype("<i2").tobytes())


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


async def test_baresip_completes_a_call_and_hears_the_bot(
    bot: Bot, speech: SpeechStack, tmp_path: Path
) -> None:
    parts = [c async for c in speech.synthesize("Hello. What is your name?")]
    pcm24 = np.concatenate([c.samples for c in parts]).astype(np.float32) / 32768.0
    pcm8 = (soxr.resample(pcm24, parts[0].rate, 8000) * 32767).astype(np.int16)
    pcm8 = np.concatenate([pcm8, np.zeros(8000 * 8, dtype=np.int16)])  # 8 s to listen to the answer
    cfg, dumps = tmp_path / "baresip", tmp_path / "dumps"
    cfg.mkdir()
    dumps.mkdir()
    await asyncio.to_thread(_write_wav, tmp_path / "caller.wav", pcm8)
    rtp_min = free_udp_port() // 2 * 2
    config = CONFIG.format(
        sip_port=free_udp_port(),
        source=tmp_path / "caller.wav",
        dump_dir=dumps,
        rtp_min=rtp_min,
        rtp_max=rtp_min + 10,
    )
    (cfg / "config").write_text(config)
    (cfg / "accounts").write_text("<sip:baresip@127.0.0.1>;regint=0\n")
    host, port = bot.sip_address
    assert BARESIP is not None
    proc = await asyncio.create_subprocess_exec(
        BARESIP,
        "-f",
        str(cfg),
        "-e",
        f"/dial sip:bot@{host}:{port}",
        "-t",
        "25",
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(40):
            while not bot.service.finished:  # the call ends when the file does
                await asyncio.sleep(0.1)
    finally:
        if proc.returncode is None:
            proc.terminate()
        out, _ = await proc.communicate()
    log = out.decode(errors="replace")
    record = bot.service.finished[-1]
    assert record.answered, log[-3000:]
    assert record.end_reason == "remote_bye", "baresip hung up when its file ended"
    assert record.codec in ("PCMU", "PCMA")
    assert record.rtp_stats.get("jitter_received", 0) > 300, (record, log[-3000:])
    decoded = sorted(dumps.glob("dump-*-dec.wav"))
    assert decoded, f"baresip wrote no decoded-audio dump: {sorted(p.name for p in dumps.iterdir())}"
    heard = await asyncio.to_thread(_read_wav, decoded[-1])
    assert loud_ms(heard) >= 1000, f"baresip heard {loud_ms(heard)} ms of audible audio from the bot"

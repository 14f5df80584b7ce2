"""``voicebot loadtest`` against a real server (create_app + local engine) in a loopback-only namespace."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.loadtest.conftest import ServerFactory
from voicebot.loadtest import LoadTestConfig, run_loadtest

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.usefixtures("loopback_only_netns"),
]


def _quiet(_line: str) -> None:
    return None


@pytest.mark.slow
async def test_webrtc_calls_report_answers_latency_and_audio(
    make_server: ServerFactory, question_wav: Path, tmp_path: Path
) -> None:
    server = await make_server()
    lines: list[str] = []
    out = tmp_path / "report.json"
    cfg = LoadTestConfig(url=server.url, calls=2, audio=[question_wav], max_s=40, json_path=out)
    report = await run_loadtest(cfg, progress=lines.append)

    assert (report.attempted, report.answered, report.failed) == (2, 2, 0), report.calls
    assert report.ok
    for call in report.calls:
        assert call.turns_played == 1 and call.end_reason == "done", call
        assert len(call.latencies_ms) == 1 and 0 < call.latencies_ms[0] < 10000, call
        assert call.audio.loud_seconds > 0.5, "the agent's spoken answer came back"
        assert call.audio.rms > 100
        assert any(t.startswith("assistant: ") for t in call.transcripts), call.transcripts
    assert report.latency_ms["turns"] == 2 and report.latency_ms["median"] is not None
    assert any("answered 2" in line for line in lines), lines
    saved = json.loads(out.read_text())
    assert saved["answered"] == 2 and saved["ok"] is True and len(saved["calls"]) == 2
    assert saved["calls"][0]["latencies_ms"] == report.calls[0].latencies_ms


async def test_unreachable_server_fails_every_call_quickly() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    report = await run_loadtest(LoadTestConfig(url=url, calls=2, max_s=20), progress=_quiet)
    assert time.monotonic() - started < 5
    assert (report.attempted, report.answered, report.failed) == (2, 0, 2)
    assert list(report.failure_reasons) == ["connect error: ClientConnectorError"]
    assert not report.ok


async def test_cli_reports_one_503_when_the_server_takes_one_call(
    make_server: ServerFactory, question_wav: Path, tmp_path: Path
) -> None:
    server = await make_server(max_calls=1)
    out = tmp_path / "report.json"
    args = ["-m", "voicebot", "loadtest", "--url", server.url, "--calls", "2", "--concurrency", "2"]
    args += ["--audio", str(question_wav), "--duration-s", "1.5", "--max-s", "30", "--json", str(out)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 40)
    text = stdout.decode()
    assert proc.returncode == 1, (text, stderr.decode())
    assert "answered 1, failed 1" in text and "503 full ×1" in text, text
    assert "started 2/2" in stderr.decode()  # progress lines
    saved = json.loads(out.read_text())
    assert saved["failure_reasons"] == {"503 full": 1} and saved["answered"] == 1
    answered = next(c for c in saved["calls"] if c["outcome"] == "answered")
    assert answered["end_reason"] == "duration reached" and answered["audio"]["seconds"] > 0.5


@pytest.mark.slow
async def test_sip_call_reports_rtp_latency_and_audio(make_server: ServerFactory, question_wav: Path) -> None:
    server = await make_server()
    cfg = LoadTestConfig(
        transport="sip", sip_target=f"sip:bot@127.0.0.1:{server.sip_port}", audio=[question_wav], max_s=40
    )
    report = await run_loadtest(cfg, progress=_quiet)
    assert (report.answered, report.failed) == (1, 0), report.calls
    call = report.calls[0]
    assert call.turns_played == 1 and call.end_reason == "done", call
    assert len(call.latencies_ms) == 1 and 0 < call.latencies_ms[0] < 10000, call
    assert call.audio.loud_seconds > 0.5 and call.audio.rms > 100, call.audio

"""`voicebot serve` with SIP on (VOICEBOT_SIP_PORT) answers sipp; without it nothing listens for SIP."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.sip_e2e.conftest import require_sipp
from tests.sip_e2e.sipp import free_udp_port, run_sipp, scenario

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def test_voicebot_serve_listens_for_sip_when_asked(tmp_path: Path) -> None:
    require_sipp()
    sip_port = free_udp_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VOICEBOT_", "OPENAI_"))},
        "VOICEBOT_SIP_PORT": str(sip_port),
        "VOICEBOT_RTP_PORT_MIN": "44000",
        "VOICEBOT_RTP_PORT_MAX": "44099",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicebot",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while not (line := await proc.stdout.readline()).startswith(b"voicebot listening on"):
                assert line, "voicebot serve exited before listening"
        result = await run_sipp(
            scenario("options.xml", tmp_path), ("127.0.0.1", sip_port), cwd=tmp_path, keys={"ua": "sipp"}
        )
        assert result.rc == 0, result.explain()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0, "SIGTERM stops the server cleanly"

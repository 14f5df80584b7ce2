"""The app factory, /healthz and the CLI, from the outside."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from aiohttp.test_utils import TestClient

from voicebot import __version__, create_app
from voicebot.config import Settings


async def test_healthz(aiohttp_client: object) -> None:
    client: TestClient = await aiohttp_client(create_app(Settings(openai_api_key=None)))  # type: ignore[operator]
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["upstream"] == "local"


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "voicebot", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"voicebot {__version__}"


def test_bad_agent_is_a_clear_startup_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "voicebot", "serve", "--port", "0", "--agent", "no_such_pkg.mod:agent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "no module named 'no_such_pkg'" in out.stderr


@pytest.mark.slow
async def test_serve_starts_and_answers_healthz() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicebot", "serve", "--host", "127.0.0.1", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        body = await asyncio.to_thread(
            lambda: json.loads(urllib.request.urlopen(m.group(1) + "/healthz", timeout=10).read())
        )
        assert body["status"] == "ok"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_one_call_cap_covers_browser_and_phone_calls(aiohttp_client: object) -> None:
    from tests.webrtc.test_sdp import CHROME_LIKE
    from voicebot.server.capacity import CALL_SLOTS

    app = create_app(Settings(openai_api_key=None, max_calls=1))
    client: TestClient = await aiohttp_client(app)  # type: ignore[operator]
    app[CALL_SLOTS].acquire()  # a phone call is in progress
    resp = await client.post("/api/calls", json={"sdp": CHROME_LIKE, "type": "offer"})
    assert resp.status == 503
    assert "full" in (await resp.json())["error"]["message"]
    assert resp.headers.get("Retry-After")
    app[CALL_SLOTS].release()
    assert app[CALL_SLOTS].in_use == 0


def test_the_app_imports_what_calls_need_before_the_first_call() -> None:
    """The fallback wiring pulls in the openai SDK (about 0.3 s): create_app imports it, so the first call does
    not stall the event loop importing it. Checked in a fresh interpreter."""
    code = (
        "import sys\n"
        "from voicebot import create_app\n"
        "from voicebot.config import Settings\n"
        "before = 'openai' in sys.modules\n"
        "create_app(Settings(port=0, fallback_enabled=True, openai_api_key='sk-x'))\n"
        "print(before, 'voicebot.fallback.wiring' in sys.modules, 'openai' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICEBOT_", "OPENAI_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    assert out.stdout.split() == ["False", "True", "True"], out.stdout + out.stderr

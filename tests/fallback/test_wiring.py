"""The server's hooks: ``create_failover_session`` builds the per-call session from the app's settings and agent
(Realtime first, the cascade when Realtime is refused, plain Realtime with fallback disabled), and
``finish_call`` stores a finished call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fallback.conftest import Engine
from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call, TranscriptLine
from voicebot.config import Settings
from voicebot.events import Notice
from voicebot.fallback.failover import FailoverModelSession
from voicebot.fallback.wiring import create_failover_session, finish_call
from voicebot.fileport import FileAudioPort
from voicebot.realtime.client import RealtimeModelSession
from voicebot.server.app import BASE_URL, SETTINGS
from voicebot.server.sessions import AGENT, default_agent

pytestmark = [pytest.mark.asyncio(loop_scope="package")]


def app_for(engine: Engine, **settings: Any) -> web.Application:
    s = Settings(openai_api_key=None, fallback_open_timeout_s=1.0, reconnect_backoff_s=0.05, **settings)
    app = web.Application()
    app[SETTINGS] = s
    app[BASE_URL] = f"http://127.0.0.1:{engine.port}"
    app[AGENT] = default_agent(s)
    return app


async def test_the_session_starts_on_realtime_with_the_agents_tools(engine: Engine) -> None:
    session = create_failover_session(app_for(engine), caller="test")
    assert isinstance(session, FailoverModelSession)
    await session.start()
    try:
        assert session.mode == "realtime" and session.failovers == 0
        primary = session.active
        assert isinstance(primary, RealtimeModelSession)
        assert sorted(t["name"] for t in primary.core.config.tools) == ["end_call", "get_current_time"]
    finally:
        await session.close()


async def test_refused_realtime_means_the_cascade_from_the_first_word(engine: Engine) -> None:
    engine.realtime_faults.refuse_connections = 1000
    session = create_failover_session(app_for(engine, fallback_switch_line=""), caller="test")
    assert isinstance(session, FailoverModelSession)
    await session.start()
    try:
        assert session.mode == "cascade" and session.failovers == 1
        event = await anext(session.events())
        assert isinstance(event, Notice) and event.kind == "failover"
        assert "realtime unavailable" in str(event.detail["reason"])
    finally:
        await session.close()


async def test_fallback_disabled_gives_the_plain_realtime_session(engine: Engine) -> None:
    session = create_failover_session(
        app_for(engine, fallback_enabled=False), caller="test", audio_format="audio/pcmu"
    )
    assert isinstance(session, RealtimeModelSession)
    assert session.input_rate == 8000


async def test_finish_call_stores_the_call(engine: Engine, tmp_path: Path) -> None:
    app = app_for(engine, calls_dir=tmp_path)
    call = Call(
        FileAudioPort(PcmChunk.silence(20, 24000)), create_failover_session(app, caller="x"), call_id="c1"
    )
    call.stats.started_at, call.stats.ended_at = 10.0, 20.0
    call.transcript.append(TranscriptLine("user", "Hello, I need help with my order.", "u1", 11.0))
    record = await finish_call(app, call)
    assert json.loads((tmp_path / "c1.json").read_text()) == record
    assert record["summary"]["reason_for_call"]
    assert (tmp_path / "c1.txt").read_text() == "[00:01] caller: Hello, I need help with my order.\n"

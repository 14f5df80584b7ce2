"""Record a live Realtime session to JSONL, then replay it as the upstream: the replaying server must send
exactly the recorded server frames, in order, paced by the client's frames."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.local.realtime_helpers import SERVER_EVENT, Served, connect, serve_engine, types_of
from voicebot.config import Settings
from voicebot.local.record import Entry, Recording, Replayer
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]


async def _text_turn(served: Served) -> list[str]:
    """One text turn; returns the raw server frames received."""
    async with connect(served) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]}
        )
        await events.until("conversation.item.done")
        await conn.response.create(response={"output_modalities": ["text"]})
        await events.until("rate_limits.updated")
        return [json.dumps(e) for e in events.seen]


@pytest.mark.asyncio(loop_scope="session")
async def test_record_then_replay(speech_stack: SpeechStack, tmp_path: Path) -> None:
    live = await serve_engine(Settings(), speech_stack, record_dir=tmp_path)
    try:
        await _text_turn(live)
    finally:
        await live.runner.cleanup()
    files = await asyncio.to_thread(lambda: list(tmp_path.glob("sess_*.jsonl")))
    assert len(files) == 1
    recording = Recording.load(files[0])
    assert recording.meta["query"] == {"model": "gpt-realtime"} and recording.meta["version"] == 1
    server = [json.loads(t) for t in recording.server_frames()]
    for event in server:
        SERVER_EVENT.validate_python(event)
    assert server[0]["type"] == "session.created" and files[0].stem == server[0]["session"]["id"]
    assert types_of(server)[-2:] == ["response.done", "rate_limits.updated"]
    assert [json.loads(t)["type"] for t in recording.client_frames()] == [
        "conversation.item.create",
        "response.create",
    ]
    times = [e.t for e in recording.entries]
    assert times == sorted(times) and times[0] >= 0

    replay = await serve_engine(Settings(), speech_stack, replay=files[0])  # the stack stays unused
    try:
        received = await _text_turn(replay)
    finally:
        await replay.runner.cleanup()
    assert [json.loads(t) for t in received] == server


def test_replayer_paces_by_client_frames() -> None:
    text = "\n".join(
        json.dumps(x)
        for x in [
            {"kind": "meta", "version": 1},
            {"kind": "frame", "t": 0.0, "dir": "server", "text": '{"type":"a"}'},
            {"kind": "frame", "t": 0.1, "dir": "client", "text": '{"type":"c1"}'},
            {"kind": "frame", "t": 0.2, "dir": "server", "text": '{"type":"b"}'},
            {"kind": "frame", "t": 0.3, "dir": "server", "text": '{"type":"c"}'},
            {"kind": "frame", "t": 0.4, "dir": "client", "text": '{"type":"c2"}'},
            {"kind": "frame", "t": 0.5, "dir": "client", "text": '{"type":"c3"}'},
            {"kind": "close", "t": 0.6, "dir": "server", "code": 1001, "reason": "cap"},
        ]
    )
    r = Replayer(Recording.parse(text))
    assert [e.text for e in r.start()] == ['{"type":"a"}']
    assert [e.text for e in r.on_client_frame('{"type":"c1"}')] == ['{"type":"b"}', '{"type":"c"}']
    assert r.on_client_frame('{"type":"other"}') == []
    assert r.mismatches == 1
    assert r.on_client_frame('{"type":"c3"}') == [Entry("close", 0.6, "server", "", 1001, "cap")]
    assert r.finished


def test_bad_recordings_are_refused() -> None:
    with pytest.raises(ValueError, match="line 1"):
        Recording.parse("not json")
    with pytest.raises(ValueError, match="line 2"):
        Recording.parse('{"kind":"meta","version":1}\n{"kind":"frame","t":0,"dir":"sideways","text":""}')
    with pytest.raises(ValueError, match="version"):
        Recording.parse('{"kind":"meta","version":99}')

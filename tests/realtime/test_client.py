"""RealtimeModelSession against a small scripted aiohttp WebSocket server on 127.0.0.1.

The server here is a fake of the other side (the real local engine is exercised elsewhere): each connection
runs a script. Every frame it sends validates against ``RealtimeServerEvent``; every frame it receives from
the session validates against ``RealtimeClientEvent`` (no unknown fields).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.realtime import make_golden as g
from tests.realtime.helpers import tone, validate_client_event, validate_server_event
from voicebot.errors import FatalUpstreamError
from voicebot.events import (
    AudioOut,
    ModelError,
    ModelEvent,
    Notice,
    ResponseDone,
    SessionEnded,
    Transcript,
)
from voicebot.ports import ModelSession
from voicebot.realtime.client import ConnectOptions, RealtimeModelSession
from voicebot.realtime.wire import SessionConfig

STEP = 5.0  # seconds any single wait may take before the test fails


class Conn:
    """One server-side WebSocket connection: frames received, and helpers to script the server."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, index: int) -> None:
        self.ws = ws
        self.index = index
        self.headers = dict(request.headers)
        self.query = dict(request.query)
        self.frames: list[dict[str, Any]] = []
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.n = 0

    async def send(self, event: dict[str, Any]) -> None:
        self.n += 1
        event = {"event_id": f"event_S{self.index}x{self.n:016d}"} | event
        validate_server_event(event)
        await self.ws.send_str(json.dumps(event))

    async def send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.send(event)

    async def expect(self, type_: str) -> dict[str, Any]:
        """The next received frame that is not an audio append; it must have ``type_``."""
        async with asyncio.timeout(STEP):
            while True:
                frame = await self.inbox.get()
                if frame["type"] != "input_audio_buffer.append":
                    assert frame["type"] == type_, f"expected {type_}, got {frame}"
                    return frame

    async def wait_for(self, type_: str, count: int = 1) -> None:
        async with asyncio.timeout(STEP):
            while True:
                if len(self.of_type(type_)) >= count:
                    return
                await asyncio.sleep(0.01)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == type_]


Script = Callable[[Conn], Coroutine[Any, Any, None]]


class FakeRealtime:
    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.connections: list[Conn] = []
        self.key_header = "authorization"
        self.refuse_from: int | None = None  # connection index from which the upgrade gets HTTP 503

    async def handler(self, request: web.Request) -> web.StreamResponse:
        key = (
            request.headers.get("api-key")
            if self.key_header == "api-key"
            else request.headers.get("Authorization")
        )
        if key != ("sk-test" if self.key_header == "api-key" else "Bearer sk-test"):
            return web.json_response(
                {
                    "error": {
                        "message": "bad key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if self.refuse_from is not None and len(self.connections) >= self.refuse_from:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Conn(ws, request, len(self.connections))
        self.connections.append(conn)
        script = self.scripts[min(conn.index, len(self.scripts) - 1)]
        async with asyncio.TaskGroup() as group:
            task = group.create_task(script(conn))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    validate_client_event(frame)
                    conn.frames.append(frame)
                    conn.inbox.put_nowait(frame)
            conn.closed.set()
            task.cancel()
        return ws


@pytest.fixture
async def fake() -> Any:
    holder: dict[str, Any] = {}

    async def start(scripts: list[Script]) -> tuple[FakeRealtime, str]:
        server = FakeRealtime(scripts)
        app = web.Application()
        app.router.add_get("/v1/realtime", server.handler)
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server()
        holder["server"] = test_server
        return server, f"ws://127.0.0.1:{test_server.port}/v1"

    yield start
    if "server" in holder:
        await holder["server"].close()


def session_object(sess: str) -> dict[str, Any]:
    return g.session_object(sess, expires_at=int(time.time()) + 3600)


def server_events(build: Callable[[g.Log], None]) -> list[dict[str, Any]]:
    """Server frames from the golden-log builders (without their event ids; Conn adds fresh ones)."""
    log = g.Log("x", "")
    build(log)
    events = [dict(line["event"]) for line in log.lines if line["dir"] == "server"]
    for event in events:
        event.pop("event_id")
    return events


async def handshake(conn: Conn, sess: str, *, hold_ms: int = 0) -> dict[str, Any]:
    await conn.send({"type": "session.created", "session": session_object(sess)})
    update = await conn.expect("session.update")
    if hold_ms:
        await asyncio.sleep(hold_ms / 1000)
        assert not conn.of_type("input_audio_buffer.append"), "audio arrived before session.updated"
    await conn.send({"type": "session.updated", "session": g.updated_session(sess, update["session"])})
    return update


def voice_turn(
    u: str, prev: str | None, said: str, r: str, a: str, words: list[str], chunks: list[int]
) -> Any:
    def build(log: g.Log) -> None:
        g.user_voice_turn(log, u, prev, said, 1000)
        g.spoken_response(log, r, a, u, words, chunks)

    return server_events(build)


async def collect(session: RealtimeModelSession, until: Callable[[ModelEvent], bool]) -> list[ModelEvent]:
    got: list[ModelEvent] = []
    async with asyncio.timeout(STEP):
        async for event in session.events():
            got.append(event)
            if until(event):
                break
    return got


def make_session(url: str, **kw: Any) -> RealtimeModelSession:
    options = ConnectOptions(url, "sk-test", proxy=None)
    return RealtimeModelSession(options, SessionConfig(), reconnect_backoff_s=0.01, **kw)


def done_completed(event: ModelEvent) -> bool:
    return isinstance(event, ResponseDone) and event.status == "completed"


async def test_normal_turn(fake: Any) -> None:
    async def script(conn: Conn) -> None:
        await handshake(conn, "sess_N1aA2bB3cC4dD5eE6fF7g", hold_ms=80)
        await conn.wait_for("input_audio_buffer.append")
        words = ["Hello", " there."]
        await conn.send_all(voice_turn("item_N1", None, "Hi!", "resp_N1", "item_N2", words, [2400, 1200]))
        await conn.closed.wait()

    server, url = await fake([script])
    session = make_session(url)
    await session.start()
    await session.send_audio(tone(480, 100))  # before session.updated: held by the core
    events = await collect(session, done_completed)
    await session.close()

    conn = server.connections[0]
    assert conn.headers["Authorization"] == "Bearer sk-test"
    assert conn.query == {"model": "gpt-realtime"}
    assert conn.frames[0]["type"] == "session.update"
    assert len(conn.of_type("input_audio_buffer.append")) == 1
    audio = [e for e in events if isinstance(e, AudioOut)]
    assert [e.chunk.num_samples for e in audio] == [2400, 1200]
    assert all(e.chunk.rate == 24_000 and e.item_id == "item_N2" for e in audio)
    finals = [(e.role, e.text) for e in events if isinstance(e, Transcript) and e.final]
    assert finals == [("user", "Hi!"), ("assistant", "Hello there.")]
    assert session.connections == 1


async def test_events_end_after_close(fake: Any) -> None:
    async def script(conn: Conn) -> None:
        await handshake(conn, "sess_N2aA2bB3cC4dD5eE6fF7g")
        await conn.closed.wait()

    server, url = await fake([script])
    session = make_session(url)
    await session.start()
    await session.close()
    events = await collect(session, lambda e: False)
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "closed"
    async with asyncio.timeout(STEP):
        await server.connections[0].closed.wait()


async def test_server_drop_mid_response_reconnects_and_replays(fake: Any) -> None:
    async def first(conn: Conn) -> None:
        await handshake(conn, "sess_D1aA2bB3cC4dD5eE6fF7g")
        events = voice_turn("item_D1", None, "Book a table.", "resp_D1", "item_D2", ["Sure,", " for"], [2400])
        cut = next(i for i, e in enumerate(events) if e["type"] == "response.output_audio.done")
        await conn.send_all(events[:cut])  # mid-response: transcript and audio so far
        await conn.ws.close(code=1011, message=b"server error")

    async def second(conn: Conn) -> None:
        await conn.send({"type": "session.created", "session": session_object("sess_D2aA2bB3cC4dD5eE6fF7g")})
        update = await conn.expect("session.update")
        await conn.expect("conversation.item.create")
        await conn.expect("conversation.item.create")
        await conn.send(
            {"type": "session.updated", "session": g.updated_session("sess_x", update["session"])}
        )
        turn = voice_turn("item_D3", None, "Friday.", "resp_D2", "item_D4", ["Booked."], [1200])
        await conn.send_all(turn)
        await conn.closed.wait()

    server, url = await fake([first, second])
    session = make_session(url)
    await session.start()
    events = await collect(session, done_completed)
    await session.close()

    assert len(server.connections) == 2
    replayed = [f["item"] for f in server.connections[1].of_type("conversation.item.create")]
    assert [(i["role"], i["content"]) for i in replayed] == [
        ("user", [{"type": "input_text", "text": "Book a table."}]),
        ("assistant", [{"type": "output_text", "text": "Sure, for"}]),
    ]
    lost = [e for e in events if isinstance(e, ResponseDone) and e.status == "failed"]
    assert lost == [ResponseDone("resp_D1", "failed", "connection_lost")]
    kinds = [e.kind for e in events if isinstance(e, Notice)]
    assert kinds == ["disconnected", "reconnecting", "reconnected"]
    finals = [e.text for e in events if isinstance(e, Transcript) and e.final and e.role == "assistant"]
    assert finals == ["Booked."]
    assert not any(isinstance(e, SessionEnded) for e in events)


async def test_fatal_error_ends_the_session(fake: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def script(conn: Conn) -> None:
        await conn.send({"type": "session.created", "session": session_object("sess_F1aA2bB3cC4dD5eE6fF7g")})
        await conn.expect("session.update")
        error = {
            "type": "invalid_request_error",
            "code": "insufficient_quota",
            "param": None,
            "event_id": None,
            "message": "You exceeded your current quota, please check your plan and billing details.",
        }
        await conn.send({"type": "error", "error": error})
        await conn.closed.wait()

    server, url = await fake([script])
    session = make_session(url)
    await session.start()
    with caplog.at_level(logging.ERROR, logger="voicebot.realtime"):
        events = await collect(session, lambda e: False)  # ends by itself after SessionEnded
    assert isinstance(events[-2], ModelError) and events[-2].code == "insufficient_quota"
    assert isinstance(events[-1], SessionEnded) and events[-1].error == events[-2]
    assert "realtime session ended" in caplog.text and "insufficient_quota" in caplog.text
    async with asyncio.timeout(STEP):
        await server.connections[0].closed.wait()  # the session hung up by itself
    assert len(server.connections) == 1
    await session.close()


async def test_bad_key_on_upgrade_is_fatal(fake: Any) -> None:
    _, url = await fake([handshake_only])
    session = RealtimeModelSession(ConnectOptions(url, "sk-wrong", proxy=None), SessionConfig())
    with pytest.raises(FatalUpstreamError, match="HTTP 401"):
        await session.start()


async def handshake_only(conn: Conn) -> None:
    await handshake(conn, "sess_H1aA2bB3cC4dD5eE6fF7g")
    await conn.closed.wait()


async def test_reconnect_gives_up_after_the_configured_attempts(fake: Any) -> None:
    async def first(conn: Conn) -> None:
        await handshake(conn, "sess_G1aA2bB3cC4dD5eE6fF7g")
        await conn.ws.close(code=1011)

    server, url = await fake([first])
    server.refuse_from = 1
    session = make_session(url, reconnect_attempts=3)
    await session.start()
    events = await collect(session, lambda e: False)
    await session.close()
    assert [e.detail["attempt"] for e in events if isinstance(e, Notice) and e.kind == "reconnecting"] == [
        1,
        2,
        3,
    ]
    end = events[-1]
    assert isinstance(end, SessionEnded) and end.error is not None and end.error.code == "reconnect_failed"


async def test_rollover_switches_connections_without_losing_events(fake: Any) -> None:
    async def first(conn: Conn) -> None:
        await handshake(conn, "sess_R1aA2bB3cC4dD5eE6fF7g")
        await conn.send_all(voice_turn("item_R1", None, "One.", "resp_R1", "item_R2", ["First."], [480]))
        await conn.closed.wait()

    async def second(conn: Conn) -> None:
        await conn.send({"type": "session.created", "session": session_object("sess_R2aA2bB3cC4dD5eE6fF7g")})
        update = await conn.expect("session.update")
        await conn.expect("conversation.item.create")
        await conn.expect("conversation.item.create")
        await conn.send(
            {"type": "session.updated", "session": g.updated_session("sess_R2", update["session"])}
        )
        await conn.send_all(voice_turn("item_R3", None, "Two.", "resp_R2", "item_R4", ["Second."], [480]))
        await conn.closed.wait()

    server, url = await fake([first, second])
    session = make_session(url, session_rollover_s=0.3)
    await session.start()
    events = await collect(session, lambda e: isinstance(e, ResponseDone) and e.response_id == "resp_R2")
    # audio sent during and after the switch goes to the new connection
    await session.send_audio(tone(480, 7))
    await server.connections[1].wait_for("input_audio_buffer.append")
    await session.close()

    assert len(server.connections) == 2
    assert server.connections[0].closed.is_set()  # the old connection was closed by the switch
    finals = [e.text for e in events if isinstance(e, Transcript) and e.final and e.role == "assistant"]
    assert finals == ["First.", "Second."]
    kinds = [e.kind for e in events if isinstance(e, Notice)]
    assert kinds == ["rollover"]
    replayed = [
        f["item"]["content"][0]["text"] for f in server.connections[1].of_type("conversation.item.create")
    ]
    assert replayed == ["One.", "First."]


def test_session_implements_the_model_session_protocol() -> None:
    session = RealtimeModelSession(
        ConnectOptions(
            "ws://127.0.0.1:9/v1",
            "sk-test",
            api_key_header="api-key",
            extra_query={"api-version": "2025-08-28"},
        ),
        SessionConfig(),
    )
    assert isinstance(session, ModelSession)
    assert (session.input_rate, session.output_rate) == (24_000, 24_000)
    assert session.url == "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime&api-version=2025-08-28"


async def test_api_key_header_option_is_sent(fake: Any) -> None:
    server, url = await fake([handshake_only])
    server.key_header = "api-key"
    session = RealtimeModelSession(
        ConnectOptions(url, "sk-test", api_key_header="api-key", proxy=None), SessionConfig()
    )
    await session.start()
    await server.connections[0].wait_for("session.update")
    await session.close()
    assert server.connections[0].headers["api-key"] == "sk-test"
    assert "Authorization" not in server.connections[0].headers


async def test_input_batches_whole_and_a_partial_batch_leaves_when_audio_stops(fake: Any) -> None:
    ready = asyncio.Event()

    async def script(conn: Conn) -> None:
        await handshake(conn, "sess_N9aA2bB3cC4dD5eE6fF7g")
        ready.set()
        await conn.closed.wait()

    server, url = await fake([script])
    options = ConnectOptions(url, "sk-test", proxy=None)
    session = RealtimeModelSession(options, SessionConfig(input_audio_batch_ms=60), reconnect_backoff_s=0.01)
    await session.start()
    async with asyncio.timeout(STEP):
        await ready.wait()
        while not session.core._ready:  # session.updated reached the core
            await asyncio.sleep(0.005)
    conn = server.connections[0]
    chunks = [tone(480, value) for value in (1, 2, 3, 4)]
    for chunk in chunks[:3]:
        await session.send_audio(chunk)
    async with asyncio.timeout(STEP):
        await conn.wait_for("input_audio_buffer.append")
    first = conn.of_type("input_audio_buffer.append")
    assert [len(base64.b64decode(f["audio"])) for f in first] == [3 * 960]  # one message, 60 ms

    started = time.monotonic()
    await session.send_audio(chunks[3])  # then the caller goes quiet: the timer sends the rest
    async with asyncio.timeout(STEP):
        await conn.wait_for("input_audio_buffer.append", 2)
    waited = time.monotonic() - started
    last = conn.of_type("input_audio_buffer.append")[1]
    assert base64.b64decode(last["audio"]) == chunks[3].to_bytes()
    assert waited < 1.0, f"the partial batch waited {waited:.3f} s"
    await session.close()

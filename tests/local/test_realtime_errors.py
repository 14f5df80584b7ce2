"""Realtime errors against the local engine (official SDK client): session.update validation, commits,
auth, the beta header, the session cap, bad input, response races. After each error the session must stay
usable, and every frame must validate against the SDK's server-event union."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import websockets
from pydantic import SecretStr

from tests.local.realtime_helpers import (
    SERVER_EVENT,
    TEST_RULES,
    Events,
    Served,
    b64,
    connect,
    serve_engine,
    silence,
    types_of,
)
from voicebot.config import Settings
from voicebot.local.brain import Brain
from voicebot.local.realtime.session_config import MAX_AUDIO_B64_CHARS
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

MANUAL: Any = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def rt(speech_stack: SpeechStack) -> AsyncIterator[Served]:
    served = await serve_engine(Settings(local_token=None), speech_stack, brain=Brain(TEST_RULES))
    yield served
    await served.runner.cleanup()


async def _error_for(conn: Any, events: Events, event: dict[str, Any]) -> dict[str, Any]:
    await conn.send(event)
    got = await events.until("error")
    err: dict[str, Any] = got[-1]["error"]
    assert err["type"] == "invalid_request_error"
    return err


async def _still_usable(conn: Any, events: Events) -> None:
    """A text round trip still works after an error."""
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]}
    )
    await conn.response.create(response={"output_modalities": ["text"]})
    got = await events.until("response.done")
    assert got[-1]["response"]["status"] == "completed"
    await events.until("rate_limits.updated")


@pytest.mark.parametrize(
    ("session", "code", "param", "message"),
    [
        (
            {"instructions": "hi"},
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        ),
        (
            {"type": "realtime", "modalities": ["text"], "instructions": "x"},
            "unknown_parameter",
            "session.modalities",
            "Unknown parameter: 'session.modalities'.",
        ),
        (
            {"type": "realtime", "voice": "alloy"},
            "unknown_parameter",
            "session.voice",
            "Unknown parameter: 'session.voice'.",
        ),
        (
            {"type": "realtime", "temperature": 0.8},
            "unknown_parameter",
            "session.temperature",
            "Unknown parameter: 'session.temperature'.",
        ),
        (
            {"type": "realtime", "audio": {"input": {"input_audio_noise_reduction": None}}},
            "unknown_parameter",
            "session.audio.input.input_audio_noise_reduction",
            "Unknown parameter: 'session.audio.input.input_audio_noise_reduction'.",
        ),
        (
            {"type": "session"},
            "invalid_value",
            "session.type",
            "Invalid value: 'session'. Supported values are: 'realtime' and 'transcription'.",
        ),
        ({"type": "realtime", "instructions": 5}, "invalid_type", "session.instructions", None),
        (
            {"type": "realtime", "audio": {"output": {"speed": 3}}},
            "decimal_above_max_value",
            "session.audio.output.speed",
            None,
        ),
        (
            {"type": "transcription"},
            "invalid_value",
            "session.type",
            "Passing a transcription session update event to a realtime session is not allowed.",
        ),
    ],
)
async def test_session_update_refused_whole(
    rt: Served, session: dict[str, Any], code: str, param: str, message: str | None
) -> None:
    async with connect(rt) as (conn, events):
        before = (await events.until("session.created"))[-1]["session"]
        err = await _error_for(conn, events, {"type": "session.update", "session": session, "event_id": "e1"})
        assert (err["code"], err["param"], err["event_id"]) == (code, param, "e1")
        if message is not None:
            assert err["message"] == message
        # nothing applied: an empty-but-valid update echoes the unchanged session
        await conn.session.update(session={"type": "realtime"})
        after = (await events.until("session.updated"))[-1]["session"]
        assert after == before


async def test_session_update_deep_merges(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.session.update(
            session={"type": "realtime", "instructions": "Be brief.", "audio": {"output": {"voice": "cedar"}}}
        )
        s = (await events.until("session.updated"))[-1]["session"]
        assert s["instructions"] == "Be brief." and s["audio"]["output"]["voice"] == "cedar"
        assert s["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}  # kept
        assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}},
            }
        )
        s = (await events.until("session.updated"))[-1]["session"]
        assert s["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "eagerness": "high",
            "create_response": True,
            "interrupt_response": True,
        }
        assert s["instructions"] == "Be brief."


async def test_voice_change_after_audio_is_refused(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        )
        await conn.response.create()
        await events.until("rate_limits.updated")
        err = await _error_for(
            conn,
            events,
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"output": {"voice": "echo"}}},
            },
        )
        assert err["code"] == "cannot_update_voice"


async def test_manual_commit_errors_and_clear(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.session.update(session=MANUAL)
        await events.until("session.updated")
        err = await _error_for(conn, events, {"type": "input_audio_buffer.commit"})
        assert err["code"] == "input_audio_buffer_commit_empty"
        assert err["message"] == (
            "Error committing input audio buffer: buffer too small. Expected at least "
            "100ms of audio, but buffer only has 0.00ms of audio."
        )
        await conn.input_audio_buffer.append(audio=b64(silence(50)))
        err = await _error_for(conn, events, {"type": "input_audio_buffer.commit"})
        assert err["message"].endswith("but buffer only has 50.00ms of audio.")
        await conn.input_audio_buffer.clear()
        assert types_of(await events.until("input_audio_buffer.cleared")) == ["input_audio_buffer.cleared"]
        await conn.input_audio_buffer.append(audio=b64(silence(150)))
        await conn.input_audio_buffer.commit()
        got = await events.until("conversation.item.done")
        assert types_of(got) == [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert got[0]["previous_item_id"] is None
        # a second commit right after: the buffer is empty again
        err = await _error_for(conn, events, {"type": "input_audio_buffer.commit"})
        assert err["code"] == "input_audio_buffer_commit_empty"
        # manual mode never answers by itself; a response is requested explicitly
        await conn.response.create(response={"output_modalities": ["text"]})
        done = (await events.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"


async def test_bad_input_keeps_session_usable(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.send_raw("this is not json")
        err = (await events.until("error"))[-1]["error"]
        assert err["code"] == "invalid_json"
        err = await _error_for(conn, events, {"type": "scooby.dooby.doo", "event_id": "e2"})
        assert (err["code"], err["param"], err["event_id"]) == ("invalid_value", "type", "e2")
        assert err["message"].startswith("Invalid value: 'scooby.dooby.doo'. Supported values are: ")
        err = await _error_for(
            conn, events, {"type": "input_audio_buffer.append", "audio": "%%%not base64%%%"}
        )
        assert (err["code"], err["param"]) == ("invalid_value", "audio")
        big = "A" * (MAX_AUDIO_B64_CHARS + 4)
        err = await _error_for(conn, events, {"type": "input_audio_buffer.append", "audio": big})
        assert (err["code"], err["param"]) == ("string_above_max_length", "audio")
        err = await _error_for(
            conn,
            events,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "output_text", "text": "x"}],
                },
            },
        )
        assert (err["code"], err["param"]) == ("invalid_value", "item.content[0].type")
        err = await _error_for(
            conn,
            events,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "input_audio", "audio": "AAAA"}],
                },
            },
        )
        assert err["param"] == "item.content[0].type"
        err = await _error_for(
            conn, events, {"type": "conversation.item.create", "item": {"type": "message"}}
        )
        assert (err["code"], err["param"]) == ("missing_required_parameter", "item.role")
        err = await _error_for(conn, events, {"type": "input_audio_buffer.append", "audio": "AAAA", "foo": 1})
        assert (err["code"], err["param"]) == ("unknown_parameter", "foo")
        err = await _error_for(
            conn, events, {"type": "response.create", "response": {"modalities": ["text"]}}
        )
        assert (err["code"], err["param"]) == ("unknown_parameter", "response.modalities")
        await _still_usable(conn, events)


async def test_one_active_response_and_cancel(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "a long story please"}],
            }
        )
        await conn.response.create()
        created = (await events.until("response.created"))[-1]["response"]
        err = await _error_for(conn, events, {"type": "response.create"})
        assert err["code"] == "conversation_already_has_active_response"
        assert created["id"] in err["message"]
        # an out-of-band response may run alongside
        await conn.response.create(
            response={
                "conversation": "none",
                "output_modalities": ["text"],
                "metadata": {"topic": "side"},
                "input": [],
            }
        )
        oob: list[dict[str, Any]] = []
        while not oob or oob[-1]["type"] != "response.done" or oob[-1]["response"]["id"] == created["id"]:
            oob.append(await events.next())
        side = oob[-1]["response"]
        assert side["conversation_id"] is None and side["metadata"] == {"topic": "side"}
        side_items = {o["id"] for o in side["output"]}
        assert side_items, "the out-of-band response produced an item"
        assert not [
            e for e in oob if e["type"].startswith("conversation.item.") and e["item"]["id"] in side_items
        ]
        await conn.response.cancel(event_id="cancel1")
        got = await events.until("response.done")
        done = got[-1]["response"]
        assert done["id"] == created["id"] and done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "client_cancelled"
        await events.until("rate_limits.updated")
        err = await _error_for(conn, events, {"type": "response.cancel"})
        assert (err["code"], err["message"]) == (
            "response_cancel_not_active",
            "Cancellation failed: no active response found",
        )
        await _still_usable(conn, events)


async def test_item_create_retrieve_delete(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={
                "id": "item_b",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "second"}],
            }
        )
        await events.until("conversation.item.done")
        await conn.conversation.item.create(
            previous_item_id="root",
            item={
                "id": "item_a",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "first"}],
            },
        )
        added = (await events.until("conversation.item.done"))[0]
        assert added["previous_item_id"] is None and added["item"]["id"] == "item_a"
        err = await _error_for(
            conn,
            events,
            {
                "type": "conversation.item.create",
                "previous_item_id": "nope",
                "item": {"type": "message", "role": "user", "content": []},
            },
        )
        assert err["param"] == "previous_item_id"
        await conn.conversation.item.retrieve(item_id="item_b")
        got = (await events.until("conversation.item.retrieved"))[-1]["item"]
        assert got["content"] == [{"type": "input_text", "text": "second"}]
        await conn.conversation.item.delete(item_id="item_b")
        assert (await events.until("conversation.item.deleted"))[-1]["item_id"] == "item_b"
        err = await _error_for(conn, events, {"type": "conversation.item.retrieve", "item_id": "item_b"})
        assert err["param"] == "item_id"
        err = await _error_for(
            conn,
            events,
            {
                "type": "conversation.item.truncate",
                "item_id": "item_a",
                "content_index": 0,
                "audio_end_ms": 0,
            },
        )
        assert err["param"] == "content_index"


async def test_beta_header_gets_error_then_4000(rt: Served) -> None:
    client = rt.client()
    async with client.beta.realtime.connect(model="gpt-realtime") as conn:
        event = json.loads(await conn.recv_bytes())
        SERVER_EVENT.validate_python(event)
        assert event["error"]["code"] == "beta_api_shape_disabled"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv_bytes()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    await client.close()


async def test_missing_model_is_400(rt: Served) -> None:
    with pytest.raises(websockets.InvalidStatus) as exc:
        async with websockets.connect(
            f"ws://127.0.0.1:{rt.port}/v1/realtime", additional_headers={"Authorization": "Bearer sk-test"}
        ):
            pass
    assert exc.value.response.status_code == 400
    body = json.loads(exc.value.response.body or b"{}")
    assert body["error"]["code"] == "missing_required_parameter"


async def test_bad_bearer_with_configured_token_is_401(speech_stack: SpeechStack) -> None:
    served = await serve_engine(Settings(local_token=SecretStr("sk-right")), speech_stack)
    try:
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with connect(served, api_key="sk-wrong"):
                pass
        assert exc.value.response.status_code == 401
        body = json.loads(exc.value.response.body or b"{}")
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert (body["error"]["type"], body["error"]["code"]) == ("invalid_request_error", "invalid_api_key")
        with pytest.raises(websockets.InvalidStatus) as missing:
            async with websockets.connect(f"ws://127.0.0.1:{served.port}/v1/realtime?model=gpt-realtime"):
                pass
        assert missing.value.response.status_code == 401
        async with connect(served, api_key="sk-right") as (_conn, events):
            assert (await events.next())["type"] == "session.created"
    finally:
        await served.runner.cleanup()


async def test_session_cap_closes_1001(speech_stack: SpeechStack) -> None:
    served = await serve_engine(Settings(local_max_session_s=0.5), speech_stack)
    try:
        async with connect(served) as (conn, events):
            created = (await events.next())["session"]
            assert created["expires_at"] > 0
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(conn.recv_bytes(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
            assert closed.value.rcvd.reason == "Your session hit the maximum duration of 60 minutes."
    finally:
        await served.runner.cleanup()

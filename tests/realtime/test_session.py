"""RealtimeCore unit tests: each feeds server frames and commands and asserts the frames and events out.
Every frame the core sends is validated against the SDK's ``RealtimeClientEvent`` (``helpers.sent``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from tests.realtime import make_golden as g
from tests.realtime.helpers import drain, sent, tone
from voicebot.audio.g711 import ulaw_encode
from voicebot.errors import LocalError, ProtocolError
from voicebot.events import (
    AudioOut,
    ClearAudio,
    ErrorKind,
    ModelError,
    Notice,
    ResponseDone,
    ToolCall,
    Transcript,
)
from voicebot.realtime.session import RealtimeCore
from voicebot.realtime.wire import SemanticVad, SessionConfig


def feed(core: RealtimeCore, type_: str, **fields: Any) -> None:
    core.receive_message(json.dumps({"type": type_, "event_id": "event_T"} | fields))


def ready_core(**config: Any) -> RealtimeCore:
    core = RealtimeCore(SessionConfig(**config))
    core.connection_opened()
    feed(core, "session.updated", session={})
    sent(core)
    drain(core)
    return core


def audio_delta(core: RealtimeCore, data: bytes) -> None:
    """One ``response.output_audio.delta`` of raw wire bytes for item ``a`` of response ``r``."""
    ids = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    feed(core, "response.output_audio.delta", **ids, delta=base64.b64encode(data).decode())


def assistant_audio(core: RealtimeCore, resp: str, item: str, samples: list[int], *, done: bool) -> None:
    feed(core, "response.created", response={"id": resp, "status": "in_progress"})
    feed(
        core,
        "response.output_item.added",
        response_id=resp,
        output_index=0,
        item=g.assistant_item(item, "in_progress", None),
    )
    ids = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    feed(core, "response.output_audio_transcript.delta", **ids, delta="one two three four")
    for n in samples:
        feed(core, "response.output_audio.delta", **ids, delta=g.pcm_b64(n))
    if done:
        feed(core, "response.output_audio.done", **ids)
        feed(core, "response.done", response={"id": resp, "status": "completed", "output": []})


# audio before session.updated ----------------------------------------------------------------------------


def test_audio_waits_for_the_first_session_updated() -> None:
    core = RealtimeCore()
    core.connection_opened()
    assert [f["type"] for f in sent(core)] == ["session.update"]
    core.append_audio(tone(480, 5))
    feed(core, "session.created", session=g.session_object("sess_x"))
    assert sent(core) == []
    feed(core, "session.updated", session={})
    frames = sent(core)
    assert [f["type"] for f in frames] == ["input_audio_buffer.append"]
    assert base64.b64decode(frames[0]["audio"]) == tone(480, 5).to_bytes()


def test_held_audio_is_bounded_and_drops_the_oldest() -> None:
    core = RealtimeCore(SessionConfig(max_buffered_audio_ms=100))
    core.connection_opened()
    sent(core)
    for value in range(1, 8):  # 7 x 20 ms, only the newest 100 ms survive
        core.append_audio(tone(480, value))
    feed(core, "session.updated", session={})
    values = [np.frombuffer(base64.b64decode(f["audio"]), "<i2")[0] for f in sent(core)]
    assert values == [3, 4, 5, 6, 7]
    assert core.dropped_audio_ms == 40


def test_a_refused_session_update_does_not_block_audio_forever() -> None:
    core = RealtimeCore()
    core.connection_opened()
    sent(core)
    core.append_audio(tone(480, 1))
    error = {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.x'.",
        "param": "session.x",
        "event_id": None,
    }
    feed(core, "error", error=error)
    assert [f["type"] for f in sent(core)] == ["input_audio_buffer.append"]
    assert drain(core) == [
        ModelError(ErrorKind.INVALID, "unknown_parameter", "Unknown parameter: 'session.x'.")
    ]


def test_append_rejects_audio_at_the_wrong_rate() -> None:
    core = ready_core()
    with pytest.raises(LocalError, match="24000 Hz"):
        core.append_audio(tone(160, 1, rate=8000))


# G.711 ---------------------------------------------------------------------------------------------------


def test_g711_session_encodes_and_decodes_at_8k() -> None:
    core = ready_core(input_format="audio/pcmu", output_format="audio/pcma")
    assert (core.input_rate, core.output_rate) == (8000, 8000)
    core.connection_lost()
    core.connection_opened()
    update = sent(core)[0]["session"]["audio"]
    assert update["input"]["format"] == {"type": "audio/pcmu"}
    assert update["output"]["format"] == {"type": "audio/pcma"}
    feed(core, "session.updated", session={})
    chunk = tone(160, 1000, rate=8000)
    core.append_audio(chunk)
    assert base64.b64decode(sent(core)[0]["audio"]) == ulaw_encode(chunk.samples)
    audio_delta(core, bytes([0xD5]) * 160)  # A-law code of (near) silence
    out = [e for e in drain(core) if isinstance(e, AudioOut)]
    assert out[0].chunk.rate == 8000 and out[0].chunk.num_samples == 160
    assert int(np.abs(out[0].chunk.samples).max()) <= 8


# responses -----------------------------------------------------------------------------------------------


def test_response_create_is_queued_while_active_and_identical_requests_collapse() -> None:
    core = ready_core()
    core.create_response()
    assert [f["type"] for f in sent(core)] == ["response.create"]
    core.create_response()  # requested, not yet created: still counts as active
    core.create_response()
    assert sent(core) == []
    feed(core, "response.created", response={"id": "resp_1"})
    feed(core, "response.done", response={"id": "resp_1", "status": "completed", "output": []})
    assert [f["type"] for f in sent(core)] == ["response.create"]
    feed(core, "response.created", response={"id": "resp_2"})
    feed(core, "response.done", response={"id": "resp_2", "status": "completed", "output": []})
    assert sent(core) == []


def test_create_response_overrides_use_the_ga_shape() -> None:
    core = ready_core()
    core.create_response(instructions="Greet.", voice="cedar", output_modalities="text")
    frame = sent(core)[0]
    assert frame["response"] == {
        "instructions": "Greet.",
        "output_modalities": ["text"],
        "audio": {"output": {"voice": "cedar"}},
    }
    with pytest.raises(LocalError):
        core.create_response(temperature=0.3)


def test_update_session_sends_a_partial_ga_update() -> None:
    core = ready_core()
    core.update_session(
        instructions="Speak French.", voice="cedar", turn_detection=SemanticVad(eagerness="low")
    )
    session = sent(core)[0]["session"]
    assert session == {
        "type": "realtime",
        "instructions": "Speak French.",
        "audio": {
            "output": {"voice": "cedar"},
            "input": {
                "turn_detection": {
                    "type": "semantic_vad",
                    "eagerness": "low",
                    "create_response": True,
                    "interrupt_response": True,
                }
            },
        },
    }
    core.update_session(turn_detection=None)
    assert sent(core)[0]["session"] == {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    with pytest.raises(LocalError, match="model"):
        core.update_session(model="gpt-realtime-mini")


def test_malformed_frames_raise_protocol_error_and_unknown_types_are_ignored() -> None:
    core = ready_core()
    with pytest.raises(ProtocolError):
        core.receive_message("not json")
    with pytest.raises(ProtocolError):
        core.receive_message("[1, 2]")
    feed(core, "some.future.event", anything=1)
    assert drain(core) == [] and sent(core) == []


def test_bad_base64_audio_is_a_protocol_error() -> None:
    core = ready_core()
    with pytest.raises(ProtocolError, match="base64"):
        feed(
            core,
            "response.output_audio.delta",
            response_id="r",
            item_id="a",
            output_index=0,
            content_index=0,
            delta="@@@",
        )


def test_odd_pcm_bytes_carry_over_to_the_next_delta() -> None:
    core = ready_core()
    data = np.arange(5, dtype="<i2").tobytes()
    ids = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    feed(core, "response.output_audio.delta", **ids, delta=base64.b64encode(data[:3]).decode())
    feed(core, "response.output_audio.delta", **ids, delta=base64.b64encode(data[3:]).decode())
    chunks = [e.chunk for e in drain(core) if isinstance(e, AudioOut)]
    assert np.concatenate([c.samples for c in chunks]).tolist() == [0, 1, 2, 3, 4]


# tools ---------------------------------------------------------------------------------------------------


def function_call(core: RealtimeCore, resp: str, item: str, call: str, index: int) -> None:
    feed(
        core,
        "response.output_item.added",
        response_id=resp,
        output_index=index,
        item=g.function_call_item(item, call, "lookup", "", "in_progress"),
    )
    feed(
        core,
        "response.function_call_arguments.done",
        response_id=resp,
        item_id=item,
        output_index=index,
        call_id=call,
        name="lookup",
        arguments='{"q": 1}',
    )


def test_cancelled_response_outputs_become_items_without_a_new_response() -> None:
    core = ready_core()
    feed(core, "response.created", response={"id": "resp_1"})
    function_call(core, "resp_1", "item_f1", "call_1", 0)
    assert next(e for e in drain(core) if isinstance(e, ToolCall)).call_id == "call_1"
    feed(
        core,
        "response.done",
        response={
            "id": "resp_1",
            "status": "cancelled",
            "output": [],
            "status_details": {"type": "cancelled", "reason": "turn_detected"},
        },
    )
    assert core.submit_tool_output("call_1", "42")
    frames = sent(core)
    assert [f["type"] for f in frames] == ["conversation.item.create"]
    assert frames[0]["item"]["type"] == "function_call_output" and frames[0]["item"]["output"] == "42"
    assert not core.submit_tool_output("call_1", "again")
    assert not core.submit_tool_output("call_unknown", "x")


def test_tool_outputs_wait_for_every_call_and_response_done() -> None:
    core = ready_core()
    feed(core, "response.created", response={"id": "resp_1"})
    function_call(core, "resp_1", "item_f1", "call_1", 0)
    function_call(core, "resp_1", "item_f2", "call_2", 1)
    assert core.submit_tool_output("call_2", "b")
    assert core.submit_tool_output("call_1", "a")
    assert sent(core) == []  # response still active
    feed(core, "response.done", response={"id": "resp_1", "status": "completed", "output": []})
    frames = sent(core)
    assert [(f["type"], f.get("item", {}).get("call_id")) for f in frames] == [
        ("conversation.item.create", "call_1"),
        ("conversation.item.create", "call_2"),
        ("response.create", None),
    ]


def test_response_done_output_completes_a_call_whose_arguments_done_was_missed() -> None:
    core = ready_core()
    feed(core, "response.created", response={"id": "resp_1"})
    done_item = g.function_call_item("item_f1", "call_1", "lookup", "{}", "completed")
    feed(core, "response.done", response={"id": "resp_1", "status": "completed", "output": [done_item]})
    calls = [e for e in drain(core) if isinstance(e, ToolCall)]
    assert calls == [ToolCall("call_1", "lookup", "{}", "", "resp_1")]


# barge-in and truncate -----------------------------------------------------------------------------------


def barge_in(core: RealtimeCore, user_item: str = "item_u") -> list[Any]:
    feed(core, "input_audio_buffer.speech_started", audio_start_ms=1000, item_id=user_item)
    return drain(core)


def test_truncate_clamps_to_received_audio() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400, 2400], done=True)  # 200 ms
    drain(core)
    assert barge_in(core)[-1] == ClearAudio("item_a")
    core.truncate("item_a", 180)
    assert sent(core)[0] | {"event_id": ""} == {
        "type": "conversation.item.truncate",
        "event_id": "",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 180,
    }


def test_truncate_at_zero_deletes_the_item() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400], done=True)
    barge_in(core)
    core.truncate("item_a", 0)
    frames = sent(core)
    assert [(f["type"], f["item_id"]) for f in frames] == [("conversation.item.delete", "item_a")]
    assert core.conversation.get("item_a") is None


def test_fully_heard_item_sends_nothing_and_truncate_runs_once() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400], done=True)
    barge_in(core)
    core.truncate("item_a", 5000)  # wall clock outran the 100 ms received; generation finished
    assert sent(core) == []
    assert barge_in(core, "item_u2")[-1] == ClearAudio(None)
    core.truncate("item_a", 10)
    assert sent(core) == []


def test_played_beyond_received_while_generating_truncates_at_received() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400, 1199], done=False)  # 149.96 ms → floor 149
    barge_in(core)
    core.truncate("item_a", 400)
    assert sent(core)[0]["audio_end_ms"] == 149


def test_audio_after_barge_in_is_muted_but_counted() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400], done=False)
    drain(core)
    barge_in(core)
    ids = {"response_id": "resp_1", "item_id": "item_a", "output_index": 0, "content_index": 0}
    feed(core, "response.output_audio.delta", **ids, delta=g.pcm_b64(2400))
    feed(core, "response.output_audio_transcript.delta", **ids, delta=" five")
    assert drain(core) == []
    item = core.conversation.get("item_a")
    assert item is not None and item.audio_ms == 200


def test_no_clear_audio_when_turn_detection_does_not_interrupt() -> None:
    core = ready_core(turn_detection=g_server_vad(interrupt_response=False))
    assistant_audio(core, "resp_1", "item_a", [2400], done=False)
    events = barge_in(core)
    assert not any(isinstance(e, ClearAudio) for e in events)


def g_server_vad(**kw: Any) -> Any:
    from voicebot.realtime.wire import ServerVad

    return ServerVad(**kw)


def test_truncate_cuts_the_stored_transcript_at_a_word_boundary() -> None:
    core = ready_core()
    assistant_audio(core, "resp_1", "item_a", [2400, 2400], done=True)
    drain(core)
    barge_in(core)
    core.truncate("item_a", 100)  # half of "one two three four" → "one two"
    assert Transcript("assistant", "item_a", "one two", True) in drain(core)
    item = core.conversation.get("item_a")
    assert item is not None and item.text == "one two"


# reconnect -----------------------------------------------------------------------------------------------


def test_lost_response_without_output_is_requested_again_after_replay() -> None:
    core = ready_core()
    core.send_text("Hello?")
    frames = sent(core)
    assert [f["type"] for f in frames] == ["conversation.item.create", "response.create"]
    feed(core, "response.created", response={"id": "resp_1"})
    core.connection_lost()
    assert ResponseDone("resp_1", "failed", "connection_lost") in drain(core)
    core.connection_opened()
    frames = sent(core)
    assert [f["type"] for f in frames] == ["session.update", "conversation.item.create"]
    assert frames[1]["item"]["content"] == [{"type": "input_text", "text": "Hello?"}]
    assert frames[1]["item"]["id"] != frames[0].get("id")
    assert Notice("reconnected", {"connection": 2, "replayed_items": 1}) in drain(core)
    feed(core, "session.updated", session={})
    assert [f["type"] for f in sent(core)] == ["response.create"]


def test_commands_while_disconnected_are_replayed_not_lost() -> None:
    core = ready_core()
    core.connection_lost()
    core.send_text("typed while offline", respond=False)
    assert sent(core) == []
    core.connection_opened()
    frames = sent(core)
    assert frames[1]["item"]["content"][0]["text"] == "typed while offline"


def test_items_without_text_are_skipped_in_replay() -> None:
    core = ready_core()
    feed(core, "conversation.item.added", previous_item_id=None, item=g.user_audio_item("item_u1"))
    feed(core, "conversation.item.added", previous_item_id="item_u1", item=g.user_audio_item("item_u2"))
    feed(
        core,
        "conversation.item.input_audio_transcription.completed",
        item_id="item_u2",
        content_index=0,
        transcript="second",
        usage=g.transcription_usage(),
    )
    core.connection_lost()
    core.connection_opened()
    items = [f["item"] for f in sent(core) if f["type"] == "conversation.item.create"]
    assert [i["content"][0]["text"] for i in items] == ["second"]
    assert core.resolve_item_id("item_u2") == items[0]["id"]
    assert core.conversation.get("item_u1") is None


def test_previous_item_id_orders_the_conversation() -> None:
    core = ready_core()
    feed(core, "conversation.item.added", previous_item_id=None, item=g.user_audio_item("item_b"))
    feed(core, "conversation.item.added", previous_item_id=None, item=g.user_audio_item("item_a"))
    feed(core, "conversation.item.added", previous_item_id="item_a", item=g.user_audio_item("item_c"))
    assert core.conversation.ids() == ["item_a", "item_c", "item_b"]


def test_fatal_error_stops_everything() -> None:
    core = ready_core()
    error = {
        "type": "invalid_request_error",
        "code": "model_not_found",
        "message": "no such model",
        "event_id": None,
    }
    feed(core, "error", error=error)
    events = drain(core)
    assert [type(e).__name__ for e in events] == ["ModelError", "SessionEnded"]
    core.create_response()
    core.append_audio(tone(480, 1))
    assert sent(core) == [] and core.ended


def test_say_asks_for_exact_words_without_tools_and_waits_for_the_active_response() -> None:
    core = ready_core()
    feed(core, "response.created", response={"id": "resp_1"})
    core.say('One moment, "please".')
    assert sent(core) == []
    feed(core, "response.done", response={"id": "resp_1", "status": "completed", "output": []})
    frame = sent(core)[0]
    assert frame["type"] == "response.create"
    assert frame["response"]["tool_choice"] == "none"
    assert frame["response"]["instructions"].endswith('"One moment, \\"please\\"."')


# input batching and G.711 passthrough --------------------------------------------------------------------


def test_batched_input_goes_out_once_the_batch_is_whole() -> None:
    core = ready_core(input_audio_batch_ms=60)
    chunks = [tone(480, value) for value in (1, 2, 3, 4)]  # 20 ms each at 24 kHz
    core.append_audio(chunks[0])
    core.append_audio(chunks[1])
    assert sent(core) == [] and core.batched_input_samples == 960
    core.append_audio(chunks[2])
    frames = sent(core)
    assert [f["type"] for f in frames] == ["input_audio_buffer.append"]
    assert base64.b64decode(frames[0]["audio"]) == b"".join(c.to_bytes() for c in chunks[:3])
    core.append_audio(chunks[3])
    core.flush_input_audio()  # what the adapter's timer does when audio stops mid-batch
    assert base64.b64decode(sent(core)[0]["audio"]) == chunks[3].to_bytes()
    assert core.input_batches_sent == 2 and core.batched_input_samples == 0


def test_any_other_command_sends_the_batched_audio_first() -> None:
    core = ready_core(input_audio_batch_ms=100, turn_detection=None)
    core.append_audio(tone(480, 7))
    core.send_text("hello", respond=False)
    frames = sent(core)
    assert [f["type"] for f in frames] == ["input_audio_buffer.append", "conversation.item.create"]


def test_batched_audio_survives_a_dropped_connection() -> None:
    core = ready_core(input_audio_batch_ms=100)
    chunk = tone(480, 9)
    core.append_audio(chunk)
    core.connection_lost()
    core.connection_opened()
    assert all(f["type"] != "input_audio_buffer.append" for f in sent(core))  # not ready yet: held
    feed(core, "session.updated", session={})
    appends = [f for f in sent(core) if f["type"] == "input_audio_buffer.append"]
    assert [base64.b64decode(f["audio"]) for f in appends] == [chunk.to_bytes()]


def test_batch_setting_is_validated() -> None:
    with pytest.raises(LocalError, match="input_audio_batch_ms"):
        SessionConfig(input_audio_batch_ms=-1)


def test_g711_from_the_phone_reaches_the_wire_byte_for_byte() -> None:
    """µ-law has two codes for zero (0x7F and 0xFF): a decode and re-encode would turn 0x7F into 0xFF, the
    passthrough keeps the caller's bytes exactly."""
    from voicebot.audio.g711 import alaw_to_chunk, ulaw_to_chunk

    payload = bytes([0x7F, 0xFF, 0x00, 0x80] * 40)
    assert ulaw_encode(ulaw_to_chunk(payload).samples) != payload  # the lossy way would change it
    core = ready_core(input_format="audio/pcmu", input_audio_batch_ms=0)
    core.append_audio(ulaw_to_chunk(payload))
    assert base64.b64decode(sent(core)[0]["audio"]) == payload
    # a chunk of the other law is encoded from its samples
    alaw = alaw_to_chunk(bytes([0xD5]) * 160)
    core.append_audio(alaw)
    assert base64.b64decode(sent(core)[0]["audio"]) == ulaw_encode(alaw.samples)


def test_g711_from_the_model_keeps_its_bytes_through_framing() -> None:
    from voicebot.audio.chunk import FrameSplitter
    from voicebot.audio.g711 import chunk_to_ulaw

    core = ready_core(output_format="audio/pcmu")
    payload = bytes(range(256)) + bytes([0x7F]) * 94  # 350 bytes: two frames and a 30-byte tail
    audio_delta(core, payload)
    chunk = next(e for e in drain(core) if isinstance(e, AudioOut)).chunk
    splitter = FrameSplitter(8000)
    frames = splitter.push(chunk) + splitter.flush(pad=True)
    assert [f.num_samples for f in frames] == [160, 160, 160]
    sent_bytes = b"".join(chunk_to_ulaw(f) for f in frames)
    assert sent_bytes == payload + b"\xff" * 130  # the pad is µ-law silence

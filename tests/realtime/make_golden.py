"""Writes the golden event logs in tests/data/realtime/ (``.venv/bin/python -m tests.realtime.make_golden``).

The server frames follow the GA wire reference (shared/reference/realtime-protocol.md, sections 3.2-3.5):
event order, field names, id prefixes, ``part.type`` "audio" in content parts, ``obfuscation`` on deltas.
The expected client frames and model events are written down here by hand from the rules the client core
must keep; nothing is recorded from the core itself.

Format: one JSON object per line, with ``dir``:

* ``note``: a comment (``text``); ``config``: the ``SessionConfig`` keyword arguments of the run (line 2)
* ``server``: ``event`` is a frame the server sends; the test feeds it to ``RealtimeCore.receive_message``
* ``call``: ``op`` and ``args`` of a command the call issues (``connection_opened``, ``connection_lost``,
  ``append_audio`` {samples, value}, ``send_text``, ``create_response``, ``submit_tool_output``, ``truncate``)
* ``client``: a frame the core must send (compared exactly, except its ``event_id``)
* ``model``: a ``voicebot.events`` event the core must emit (``type`` is the class name; ``AudioOut`` is
  written as item_id, samples and rate)

The ``client`` and ``model`` lines after an input line are everything that input must produce, in order.
Strings starting with ``$`` stand for ids the client chooses: bound at first sight, equal afterwards.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "realtime"
CONV = "conv_CdulSkgwnvcvHPA8FsqBM"


class Log:
    def __init__(self, name: str, note: str, **config: Any) -> None:
        self.name = name
        self.lines: list[dict[str, Any]] = [
            {"dir": "note", "text": note},
            {"dir": "config", "config": config},
        ]
        self.n = 0

    def note(self, text: str) -> None:
        self.lines.append({"dir": "note", "text": text})

    def server(self, type_: str, **fields: Any) -> None:
        self.n += 1
        event = {"type": type_, "event_id": f"event_G{self.name[:6].replace('_', 'x')}{self.n:014d}"}
        self.lines.append({"dir": "server", "event": event | fields})

    def client(self, type_: str, **fields: Any) -> None:
        self.lines.append({"dir": "client", "event": {"type": type_} | fields})

    def model(self, type_: str, **fields: Any) -> None:
        self.lines.append({"dir": "model", "event": {"type": type_} | fields})

    def call(self, op: str, **args: Any) -> None:
        self.lines.append({"dir": "call", "op": op, "args": args})

    def write(self) -> None:
        path = OUT / f"{self.name}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in self.lines))


# shapes from the reference -------------------------------------------------------------------------------


def session_object(sess_id: str, **changes: Any) -> dict[str, Any]:
    """A full session object as in session.created (TRACE defaults, section 1.2)."""
    session: dict[str, Any] = {
        "type": "realtime",
        "object": "realtime.session",
        "id": sess_id,
        "model": "gpt-realtime-2025-08-28",
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 1767225600,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
        "include": None,
    }
    return session | changes


def ga_session(
    *,
    tools: list[dict[str, Any]] | None = None,
    instructions: str | None = None,
    silence_ms: int = 500,
    transcribe: bool = True,
) -> dict[str, Any]:
    """The session.update the client must send, written out by hand (GA shape, reference 1.2-1.4, 4):
    type realtime, one output modality, full server_vad object, pcm 24 kHz both ways, voice marin."""
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-mini-transcribe"} if transcribe else None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": silence_ms,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
    }
    if instructions is not None:
        session["instructions"] = instructions
    session["tools"] = tools or []
    session["tool_choice"] = "auto"
    return session


def updated_session(sess_id: str, ours: dict[str, Any]) -> dict[str, Any]:
    """The full effective session echoed in session.updated after our update."""
    ours = json.loads(json.dumps(ours))
    audio = ours["audio"]
    audio["input"]["noise_reduction"] = None
    audio["output"]["speed"] = 1.0
    return session_object(sess_id, **{k: v for k, v in ours.items() if k != "type"})


def pcm_b64(samples: int, value: int = 1200) -> str:
    return base64.b64encode(np.full(samples, value, dtype="<i2").tobytes()).decode()


def user_audio_item(item_id: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "object": "realtime.item",
        "status": status,
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }


def assistant_item(item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
    content = [] if transcript is None else [{"type": "output_audio", "transcript": transcript}]
    return {
        "id": item_id,
        "type": "message",
        "object": "realtime.item",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "object": "realtime.item",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response(
    resp_id: str, status: str, output: list[dict[str, Any]], reason: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "realtime.response",
        "id": resp_id,
        "status": status,
        "status_details": None,
        "output": output,
        "conversation_id": CONV,
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": None,
        "metadata": None,
    }
    if status != "in_progress":
        body["usage"] = {
            "total_tokens": 253,
            "input_tokens": 180,
            "output_tokens": 73,
            "input_token_details": {
                "text_tokens": 120,
                "audio_tokens": 60,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": 20, "audio_tokens": 53},
        }
    if status == "cancelled":
        body["status_details"] = {"type": "cancelled", "reason": reason}
    elif status == "completed":
        body["status_details"] = {"type": "completed"}
    return body


def transcription_usage() -> dict[str, Any]:
    return {
        "type": "tokens",
        "input_tokens": 26,
        "output_tokens": 8,
        "total_tokens": 34,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 26},
    }


def rate_limits(log: Log) -> None:
    limits = [{"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}]
    log.server("rate_limits.updated", rate_limits=limits)


def start(log: Log, sess: str, ours: dict[str, Any]) -> None:
    """Connection opens; session.update; session.created; session.updated."""
    log.call("connection_opened")
    log.client("session.update", session=ours)
    log.server("session.created", session=session_object(sess))
    log.server("session.updated", session=updated_session(sess, ours))


def user_voice_turn(log: Log, item: str, prev: str | None, transcript: str | None, at_ms: int) -> None:
    log.server("input_audio_buffer.speech_started", audio_start_ms=at_ms, item_id=item)
    log.model("SpeechStarted", item_id=item)
    log.model("ClearAudio", item_id=None)
    user_voice_tail(log, item, prev, transcript, at_ms + 1500)


def user_voice_tail(log: Log, item: str, prev: str | None, transcript: str | None, end_ms: int) -> None:
    log.server("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item)
    log.model("SpeechStopped", item_id=item)
    log.server("input_audio_buffer.committed", item_id=item, previous_item_id=prev)
    log.server("conversation.item.added", previous_item_id=prev, item=user_audio_item(item))
    log.server("conversation.item.done", previous_item_id=prev, item=user_audio_item(item))
    if transcript is not None:
        log.server(
            "conversation.item.input_audio_transcription.completed",
            item_id=item,
            content_index=0,
            transcript=transcript,
            usage=transcription_usage(),
        )
        log.model("Transcript", role="user", item_id=item, text=transcript, final=True)


def spoken_response(
    log: Log, resp: str, item: str, prev: str, words: list[str], chunks: list[int], *, finish: bool = True
) -> None:
    """A complete (or, without ``finish``, still generating) audio answer; chunks are sample counts."""
    log.server("response.created", response=response(resp, "in_progress", []))
    log.model("ResponseStarted", response_id=resp)
    log.server(
        "response.output_item.added",
        response_id=resp,
        output_index=0,
        item=assistant_item(item, "in_progress", None),
    )
    log.server(
        "conversation.item.added", previous_item_id=prev, item=assistant_item(item, "in_progress", None)
    )
    part = {"type": "audio", "transcript": ""}
    ids = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    log.server("response.content_part.added", **ids, part=part)
    for i in range(max(len(words), len(chunks))):
        if i < len(words):
            log.server("response.output_audio_transcript.delta", **ids, delta=words[i], obfuscation="Xq3")
            log.model("Transcript", role="assistant", item_id=item, text=words[i], final=False)
        if i < len(chunks):
            log.server("response.output_audio.delta", **ids, delta=pcm_b64(chunks[i]))
            log.model("AudioOut", item_id=item, samples=chunks[i], rate=24000)
    if finish:
        finish_response(log, resp, item, "".join(words))


def finish_response(log: Log, resp: str, item: str, text: str, *, limits: bool = True) -> None:
    ids = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    log.server("response.output_audio.done", **ids)
    log.server("response.output_audio_transcript.done", **ids, transcript=text)
    log.model("Transcript", role="assistant", item_id=item, text=text, final=True)
    log.server("response.content_part.done", **ids, part={"type": "audio", "transcript": text})
    done = assistant_item(item, "completed", text)
    log.server("response.output_item.done", response_id=resp, output_index=0, item=done)
    log.server("conversation.item.done", item=done)
    log.server("response.done", response=response(resp, "completed", [done]))
    log.model("ResponseDone", response_id=resp, status="completed", reason=None)
    if limits:
        rate_limits(log)


# the scenarios -------------------------------------------------------------------------------------------


def voice_turn() -> Log:
    log = Log("voice_turn", "Server-VAD voice turn (reference 3.2): audio before session.updated is held.")
    cfg = ga_session()
    log.call("connection_opened")
    log.client("session.update", session=cfg)
    log.call("append_audio", samples=480, value=300)
    log.note("no append yet: the session.update has not been confirmed (first-turn race)")
    log.server("session.created", session=session_object("sess_C9G5QPteg4UIbotdKLoYQ"))
    log.call("append_audio", samples=480, value=301)
    log.server("session.updated", session=updated_session("sess_C9G5QPteg4UIbotdKLoYQ", cfg))
    log.client("input_audio_buffer.append", audio=pcm_b64(480, 300))
    log.client("input_audio_buffer.append", audio=pcm_b64(480, 301))
    log.call("append_audio", samples=480, value=302)
    log.client("input_audio_buffer.append", audio=pcm_b64(480, 302))
    user_voice_turn(log, "item_Ct1OWkHXc3Rk8Lh1VfNnA", None, "What's the weather like today?", 11956)
    words = ["It's", " sunny", " and", " warm."]
    spoken_response(
        log,
        "resp_Ct1OXnHd2XqN9xG1vZ0pA",
        "item_Ct1OXoTSA9lIeFjP8sxTB",
        "item_Ct1OWkHXc3Rk8Lh1VfNnA",
        words,
        [2400, 2400, 1200],
    )
    return log


def tool_calls() -> Log:
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    log = Log(
        "tool_calls",
        "Two function calls in one response (reference 3.3); queued response.create.",
        tools=[weather],
        instructions="Be brief.",
    )
    cfg = ga_session(tools=[weather], instructions="Be brief.")
    start(log, "sess_D1aA2bB3cC4dD5eE6fF7g", cfg)
    log.call("send_text", text="Weather in Paris and Rome?")
    text_item = {
        "id": "$u1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}],
    }
    log.client("conversation.item.create", item=text_item)
    log.client("response.create")
    server_item = {
        "id": "$u1",
        "type": "message",
        "object": "realtime.item",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}],
    }
    log.server("conversation.item.added", previous_item_id=None, item=server_item)
    log.server("conversation.item.done", previous_item_id=None, item=server_item)
    resp = "resp_D2bB3cC4dD5eE6fF7gG8h"
    log.server("response.created", response=response(resp, "in_progress", []))
    log.model("ResponseStarted", response_id=resp)
    calls = [
        ("item_F1cX0Ie3ZhIb6pcAEMf9o", "call_PaR1s0aBcD3eF4gH", '{"city":', ' "Paris"}'),
        ("item_F2dY1Jf4AiJc7qdBFNg0p", "call_R0mE1aBcD3eF4gHi", '{"city": "R', 'ome"}'),
    ]
    done_items = []
    prev = "$u1"
    for index, (item, call, a, b) in enumerate(calls):
        log.server(
            "response.output_item.added",
            response_id=resp,
            output_index=index,
            item=function_call_item(item, call, "get_weather", "", "in_progress"),
        )
        log.server(
            "conversation.item.added",
            previous_item_id=prev,
            item=function_call_item(item, call, "get_weather", "", "in_progress"),
        )
        ids = {"response_id": resp, "item_id": item, "output_index": index, "call_id": call}
        log.server("response.function_call_arguments.delta", **ids, delta=a)
        log.server("response.function_call_arguments.delta", **ids, delta=b)
        log.server("response.function_call_arguments.done", **ids, name="get_weather", arguments=a + b)
        log.model(
            "ToolCall", call_id=call, name="get_weather", arguments=a + b, item_id=item, response_id=resp
        )
        done = function_call_item(item, call, "get_weather", a + b, "completed")
        done_items.append(done)
        log.server("response.output_item.done", response_id=resp, output_index=index, item=done)
        log.server("conversation.item.done", previous_item_id=prev, item=done)
        prev = item
        if index == 0:
            log.note("the first tool finishes early: its output is held until response.done and the second")
            log.call("submit_tool_output", call_id=call, output='{"temp_c": 21}')
    log.server("response.done", response=response(resp, "completed", done_items))
    log.model("ResponseDone", response_id=resp, status="completed", reason=None)
    rate_limits(log)
    log.note("response done, but call 2 has no output yet: still nothing to send")
    log.call("submit_tool_output", call_id=calls[1][1], output='{"temp_c": 24}')
    log.client(
        "conversation.item.create",
        item={
            "id": "$o1",
            "type": "function_call_output",
            "call_id": calls[0][1],
            "output": '{"temp_c": 21}',
        },
    )
    log.client(
        "conversation.item.create",
        item={
            "id": "$o2",
            "type": "function_call_output",
            "call_id": calls[1][1],
            "output": '{"temp_c": 24}',
        },
    )
    log.client("response.create")
    for oid, (_, call, _, _), out in (
        ("$o1", calls[0], '{"temp_c": 21}'),
        ("$o2", calls[1], '{"temp_c": 24}'),
    ):
        fco = {
            "id": oid,
            "type": "function_call_output",
            "object": "realtime.item",
            "status": "completed",
            "call_id": call,
            "output": out,
        }
        log.server("conversation.item.added", previous_item_id=prev, item=fco)
        log.server("conversation.item.done", previous_item_id=prev, item=fco)
        prev = oid
    resp2, a2 = "resp_D3cC4dD5eE6fF7gG8hH9i", "item_F3eZ2Kg5BjKd8reCGOh1q"
    spoken_response(log, resp2, a2, "$o2", ["Paris 21,", " Rome 24."], [2400], finish=False)
    log.note("a second response.create while one is active is queued, not sent")
    log.call("create_response", instructions="Now say goodbye.")
    finish_response(log, resp2, a2, "Paris 21, Rome 24.", limits=False)
    log.client("response.create", response={"instructions": "Now say goodbye."})
    rate_limits(log)
    return log


def barge_in_generating() -> Log:
    log = Log("barge_in_generating", "Barge-in while the response is still generating (reference 3.4).")
    cfg = ga_session()
    start(log, "sess_E1aA2bB3cC4dD5eE6fF7g", cfg)
    u1, a1, r1 = "item_G1aB2cD3eF4gH5iJ6kL7m", "item_G2bC3dE4fG5hI6jK7lM8n", "resp_G3cD4eF5gH6iJ7kL8mN9o"
    user_voice_turn(log, u1, None, "Tell me a story.", 2000)
    spoken_response(log, r1, a1, u1, ["Once upon", " a time", " there"], [2400, 2400], finish=False)
    log.note("200 ms received; the user starts talking: clear playback, mute the rest of R1")
    u2 = "item_G4dE5fG6hI7jK8lM9nO0p"
    log.server("input_audio_buffer.speech_started", audio_start_ms=5300, item_id=u2)
    log.model("SpeechStarted", item_id=u2)
    log.model("ClearAudio", item_id=a1)
    log.note("the port's wall clock says 250 ms, but only 200 ms arrived: clamp (never 'already shorter')")
    log.call("truncate", item_id=a1, played_ms=250)
    log.client("conversation.item.truncate", item_id=a1, content_index=0, audio_end_ms=200)
    log.note("all 200 received ms were heard, so the whole transcript so far stays (it may run ahead)")
    log.model("Transcript", role="assistant", item_id=a1, text="Once upon a time there", final=True)
    ids = {"response_id": r1, "item_id": a1, "output_index": 0, "content_index": 0}
    log.note("audio already in flight for the cancelled response is not played")
    log.server("response.output_audio.delta", **ids, delta=pcm_b64(2400))
    log.server("response.output_audio.done", **ids)
    log.server("response.output_audio_transcript.done", **ids, transcript="Once upon a time there")
    log.server(
        "response.content_part.done", **ids, part={"type": "audio", "transcript": "Once upon a time there"}
    )
    partial = assistant_item(a1, "incomplete", "Once upon a time there")
    log.server("response.output_item.done", response_id=r1, output_index=0, item=partial)
    log.server("conversation.item.done", item=partial)
    log.server("response.done", response=response(r1, "cancelled", [partial], "turn_detected"))
    log.model("ResponseDone", response_id=r1, status="cancelled", reason="turn_detected")
    log.server("conversation.item.truncated", item_id=a1, content_index=0, audio_end_ms=200)
    log.note("truncate runs at most once per item")
    log.call("truncate", item_id=a1, played_ms=300)
    user_voice_tail(log, u2, a1, "Actually, never mind.", 6100)
    spoken_response(log, "resp_G5eF6gH7iJ8kL9mN0oP1q", "item_G6fG7hI8jK9lM0nO1pQ2r", u2, ["Okay!"], [1200])
    return log


def barge_in_playing() -> Log:
    log = Log("barge_in_playing", "Barge-in after the response finished generating, while audio still plays.")
    cfg = ga_session()
    start(log, "sess_H1aA2bB3cC4dD5eE6fF7g", cfg)
    u1, a1 = "item_H1aB2cD3eF4gH5iJ6kL7m", "item_H2bC3dE4fG5hI6jK7lM8n"
    user_voice_turn(log, u1, None, "Can you book a table?", 1000)
    spoken_response(
        log, "resp_H3cD4eF5gH6iJ7kL8mN9o", a1, u1, ["Sure,", " which", " evening?"], [2400, 2400, 2400]
    )
    log.note("generation finished (300 ms received); the listener has heard 120 ms when the user talks")
    u2 = "item_H4dE5fG6hI7jK8lM9nO0p"
    log.server("input_audio_buffer.speech_started", audio_start_ms=4000, item_id=u2)
    log.model("SpeechStarted", item_id=u2)
    log.model("ClearAudio", item_id=a1)
    log.call("truncate", item_id=a1, played_ms=120)
    log.client("conversation.item.truncate", item_id=a1, content_index=0, audio_end_ms=120)
    log.model("Transcript", role="assistant", item_id=a1, text="Sure,", final=True)
    log.server("conversation.item.truncated", item_id=a1, content_index=0, audio_end_ms=120)
    user_voice_tail(log, u2, a1, "Friday.", 4800)
    a2 = "item_H6fG7hI8jK9lM0nO1pQ2r"
    spoken_response(log, "resp_H5eF6gH7iJ8kL9mN0oP1q", a2, u2, ["For how many?"], [2400])
    log.note("the user interrupts before any of A2 was heard: 0 ms -> delete the item instead")
    u3 = "item_H7gH8iJ9kL0mN1oP2qR3s"
    log.server("input_audio_buffer.speech_started", audio_start_ms=6000, item_id=u3)
    log.model("SpeechStarted", item_id=u3)
    log.model("ClearAudio", item_id=a2)
    log.call("truncate", item_id=a2, played_ms=0)
    log.client("conversation.item.delete", item_id=a2)
    log.model("Transcript", role="assistant", item_id=a2, text="", final=True)
    log.server("conversation.item.deleted", item_id=a2)
    user_voice_tail(log, u3, u2, "Four people.", 6900)
    a3 = "item_H9iJ0kL1mN2oP3qR4sT5u"
    spoken_response(log, "resp_H8hI9jK0lM1nO2pQ3rS4t", a3, u3, ["Booked."], [2400])
    log.note("A3 was heard completely (100 ms of 100 ms): nothing to truncate")
    u4 = "item_I0jK1lM2nO3pQ4rS5tU6v"
    log.server("input_audio_buffer.speech_started", audio_start_ms=9000, item_id=u4)
    log.model("SpeechStarted", item_id=u4)
    log.model("ClearAudio", item_id=a3)
    log.call("truncate", item_id=a3, played_ms=100)
    log.note("a later barge-in has nothing left to clear")
    log.server("input_audio_buffer.speech_stopped", audio_end_ms=9400, item_id=u4)
    log.model("SpeechStopped", item_id=u4)
    u5 = "item_I1kL2mN3oP4qR5sT6uV7w"
    log.server("input_audio_buffer.speech_started", audio_start_ms=9900, item_id=u5)
    log.model("SpeechStarted", item_id=u5)
    log.model("ClearAudio", item_id=None)
    return log


def reconnect() -> Log:
    book = {
        "type": "function",
        "name": "book_table",
        "description": "Book a table.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
    }
    log = Log(
        "reconnect",
        "The socket drops mid-response; a new connection gets the conversation replayed.",
        tools=[book],
    )
    cfg = ga_session(tools=[book])
    start(log, "sess_J1aA2bB3cC4dD5eE6fF7g", cfg)
    u1, a1 = "item_J1aB2cD3eF4gH5iJ6kL7m", "item_J2bC3dE4fG5hI6jK7lM8n"
    user_voice_turn(log, u1, None, "Book a table for two.", 1000)
    spoken_response(log, "resp_J3cD4eF5gH6iJ7kL8mN9o", a1, u1, ["Which", " evening?"], [2400])
    u2 = "item_J4dE5fG6hI7jK8lM9nO0p"
    log.server("input_audio_buffer.speech_started", audio_start_ms=4000, item_id=u2)
    log.model("SpeechStarted", item_id=u2)
    log.model("ClearAudio", item_id=a1)
    log.call("truncate", item_id=a1, played_ms=100)
    user_voice_tail(log, u2, a1, "Friday at eight.", 5000)
    r2, f1, call = "resp_J5eF6gH7iJ8kL9mN0oP1q", "item_J6fG7hI8jK9lM0nO1pQ2r", "call_B00k1nGfR1d4yX"
    log.server("response.created", response=response(r2, "in_progress", []))
    log.model("ResponseStarted", response_id=r2)
    log.server(
        "response.output_item.added",
        response_id=r2,
        output_index=0,
        item=function_call_item(f1, call, "book_table", "", "in_progress"),
    )
    log.server(
        "conversation.item.added",
        previous_item_id=u2,
        item=function_call_item(f1, call, "book_table", "", "in_progress"),
    )
    args = '{"day": "friday"}'
    ids = {"response_id": r2, "item_id": f1, "output_index": 0, "call_id": call}
    log.server("response.function_call_arguments.delta", **ids, delta=args)
    log.server("response.function_call_arguments.done", **ids, name="book_table", arguments=args)
    log.model("ToolCall", call_id=call, name="book_table", arguments=args, item_id=f1, response_id=r2)
    done = function_call_item(f1, call, "book_table", args, "completed")
    log.server("response.output_item.done", response_id=r2, output_index=0, item=done)
    log.server("conversation.item.done", previous_item_id=u2, item=done)
    log.server("response.done", response=response(r2, "completed", [done]))
    log.model("ResponseDone", response_id=r2, status="completed", reason=None)
    log.call("submit_tool_output", call_id=call, output='{"ok": true}')
    log.client(
        "conversation.item.create",
        item={"id": "$o1", "type": "function_call_output", "call_id": call, "output": '{"ok": true}'},
    )
    log.client("response.create")
    fco = {
        "id": "$o1",
        "type": "function_call_output",
        "object": "realtime.item",
        "status": "completed",
        "call_id": call,
        "output": '{"ok": true}',
    }
    log.server("conversation.item.added", previous_item_id=f1, item=fco)
    log.server("conversation.item.done", previous_item_id=f1, item=fco)
    r3, a3 = "resp_J7gH8iJ9kL0mN1oP2qR3s", "item_J8hI9jK0lM1nO2pQ3rS4t"
    spoken_response(log, r3, a3, "$o1", ["Your table", " is booked", " for"], [2400], finish=False)
    log.note("the socket closes mid-response (no frames after this)")
    log.call("connection_lost")
    log.model("ResponseDone", response_id=r3, status="failed", reason="connection_lost")
    log.call("append_audio", samples=480, value=500)
    log.call("connection_opened")
    log.client("session.update", session=cfg)
    msg = {"type": "message"}
    log.client(
        "conversation.item.create",
        item={"id": "$r1"}
        | msg
        | {"role": "user", "content": [{"type": "input_text", "text": "Book a table for two."}]},
    )
    log.client(
        "conversation.item.create",
        item={"id": "$r2"}
        | msg
        | {"role": "assistant", "content": [{"type": "output_text", "text": "Which evening?"}]},
    )
    log.client(
        "conversation.item.create",
        item={"id": "$r3"}
        | msg
        | {"role": "user", "content": [{"type": "input_text", "text": "Friday at eight."}]},
    )
    log.client(
        "conversation.item.create",
        item={"id": "$r4", "type": "function_call", "call_id": call, "name": "book_table", "arguments": args},
    )
    log.client(
        "conversation.item.create",
        item={"id": "$r5", "type": "function_call_output", "call_id": call, "output": '{"ok": true}'},
    )
    log.client(
        "conversation.item.create",
        item={"id": "$r6"}
        | msg
        | {"role": "assistant", "content": [{"type": "output_text", "text": "Your table is booked for"}]},
    )
    log.model("Notice", kind="reconnected", detail={"connection": 2, "replayed_items": 6})
    sess2 = "sess_J9iJ0kL1mN2oP3qR4sT5u"
    log.server("session.created", session=session_object(sess2))
    log.server("session.updated", session=updated_session(sess2, cfg))
    log.client("input_audio_buffer.append", audio=pcm_b64(480, 500))
    log.note("the replayed items are echoed by the new session")
    prev: str | None = None
    for rid in ("$r1", "$r2", "$r3", "$r4", "$r5", "$r6"):
        echo = next(
            line["event"]["item"]
            for line in log.lines
            if line["dir"] == "client" and line["event"].get("item", {}).get("id") == rid
        )
        echoed = dict(echo) | {"object": "realtime.item", "status": "completed"}
        log.server("conversation.item.added", previous_item_id=prev, item=echoed)
        log.server("conversation.item.done", previous_item_id=prev, item=echoed)
        prev = rid
    log.note("the listener heard 60 of the 100 ms of the lost answer: its replayed text is replaced")
    u3 = "item_K0jK1lM2nO3pQ4rS5tU6v"
    log.server("input_audio_buffer.speech_started", audio_start_ms=700, item_id=u3)
    log.model("SpeechStarted", item_id=u3)
    log.model("ClearAudio", item_id=a3)
    log.call("truncate", item_id=a3, played_ms=60)
    log.client("conversation.item.delete", item_id="$r6")
    cut = {
        "id": "$r7",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Your table is"}],
    }
    log.client("conversation.item.create", previous_item_id="$r5", item=cut)
    log.model("Transcript", role="assistant", item_id=a3, text="Your table is", final=True)
    log.server("conversation.item.deleted", item_id="$r6")
    log.server(
        "conversation.item.added",
        previous_item_id="$r5",
        item=cut | {"object": "realtime.item", "status": "completed"},
    )
    user_voice_tail(log, u3, "$r7", "Thanks!", 1500)
    spoken_response(
        log, "resp_K1kL2mN3oP4qR5sT6uV7w", "item_K2lM3nO4pQ5rS6tU7vW8x", u3, ["You're welcome."], [2400]
    )
    return log


def errors() -> Log:
    log = Log(
        "errors",
        "One error of each class (reference 3.5); the fatal one ends the session.",
        turn_detection={"silence_duration_ms": 400},
        transcription_model=None,
    )
    cfg = ga_session(silence_ms=400, transcribe=False)
    start(log, "sess_L1aA2bB3cC4dD5eE6fF7g", cfg)

    def error(type_: str, code: str | None, message: str, param: str | None = None) -> None:
        log.server(
            "error", error={"type": type_, "code": code, "message": message, "param": param, "event_id": None}
        )

    error(
        "invalid_request_error", "response_cancel_not_active", "Cancellation failed: no active response found"
    )
    log.model(
        "ModelError",
        kind="benign",
        code="response_cancel_not_active",
        message="Cancellation failed: no active response found",
    )
    error(
        "invalid_request_error",
        "unknown_parameter",
        "Unknown parameter: 'session.temperature'.",
        "session.temperature",
    )
    log.model(
        "ModelError",
        kind="invalid",
        code="unknown_parameter",
        message="Unknown parameter: 'session.temperature'.",
    )
    error("server_error", None, "The server had an error while processing your request. Sorry about that!")
    log.model(
        "ModelError",
        kind="retryable",
        code="server_error",
        message="The server had an error while processing your request. Sorry about that!",
    )
    log.note("a response.create that races a VAD response is refused (benign) and must not wedge the queue")
    log.call("create_response")
    log.client("response.create")
    busy = (
        "Conversation already has an active response in progress: resp_CdulSkgwnvcvHPA8FsqBM. "
        "Wait until the response is finished before creating a new one."
    )
    error("invalid_request_error", "conversation_already_has_active_response", busy)
    log.model("ModelError", kind="benign", code="conversation_already_has_active_response", message=busy)
    log.call("create_response", instructions="Say hello.")
    log.client("response.create", response={"instructions": "Say hello."})
    log.server("response.created", response=response("resp_L2bB3cC4dD5eE6fF7gG8h", "in_progress", []))
    log.model("ResponseStarted", response_id="resp_L2bB3cC4dD5eE6fF7gG8h")
    error("invalid_request_error", "rate_limit_exceeded", "Rate limit reached for tokens per min (TPM).")
    log.model(
        "ModelError",
        kind="retryable",
        code="rate_limit_exceeded",
        message="Rate limit reached for tokens per min (TPM).",
    )
    bad_key = "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys."
    error("invalid_request_error", "invalid_api_key", bad_key)
    log.model("ModelError", kind="fatal", code="invalid_api_key", message=bad_key)
    log.model(
        "SessionEnded",
        reason="fatal upstream error: invalid_api_key",
        error={"kind": "fatal", "code": "invalid_api_key", "message": bad_key},
    )
    log.note("after a fatal error nothing more is sent or emitted")
    log.call("send_text", text="hello?")
    log.call("append_audio", samples=480, value=1)
    log.server("response.done", response=response("resp_L2bB3cC4dD5eE6fF7gG8h", "completed", []))
    return log


def beta_shape() -> Log:
    log = Log(
        "beta_shape", "A beta-shaped connection is refused (reference section 0): fatal, then close 4000."
    )
    log.call("connection_opened")
    log.client("session.update", session=ga_session())
    message = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    log.server(
        "error",
        error={
            "type": "invalid_request_error",
            "code": "beta_api_shape_disabled",
            "message": message,
            "param": None,
            "event_id": None,
        },
    )
    log.model("ModelError", kind="fatal", code="beta_api_shape_disabled", message=message)
    log.model(
        "SessionEnded",
        reason="fatal upstream error: beta_api_shape_disabled",
        error={"kind": "fatal", "code": "beta_api_shape_disabled", "message": message},
    )
    return log


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (
        voice_turn,
        tool_calls,
        barge_in_generating,
        barge_in_playing,
        reconnect,
        errors,
        beta_shape,
    ):
        make().write()


if __name__ == "__main__":
    main()

"""Shared test helpers: strict validation of Realtime events against the official SDK types, and a driver
that runs golden event logs through the client core."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, Field, TypeAdapter

from voicebot.audio.chunk import PcmChunk
from voicebot.events import AudioOut, ModelEvent
from voicebot.realtime.session import RealtimeCore
from voicebot.realtime.wire import ServerVad, SessionConfig

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "realtime"

CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeClientEvent, Field(discriminator="type")])
SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])


def _no_extras(model: Any, path: str) -> None:
    """The SDK models allow unknown keys; the GA server rejects them. Walk the model and refuse extras."""
    if isinstance(model, BaseModel):
        extra = model.model_extra or {}
        assert not extra, f"unknown field(s) {sorted(extra)} at {path or 'top level'}"
        for name in type(model).model_fields:
            _no_extras(getattr(model, name), f"{path}.{name}" if path else name)
    elif isinstance(model, list | tuple):
        for i, value in enumerate(model):
            _no_extras(value, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            _no_extras(value, f"{path}.{key}")


def validate_client_event(event: dict[str, Any] | str) -> Any:
    """A client frame as the GA ``RealtimeClientEvent`` union sees it, with no unknown fields anywhere."""
    data = json.loads(event) if isinstance(event, str) else event
    model = CLIENT_EVENT.validate_python(data)
    _no_extras(model, "")
    return model


def validate_server_event(event: dict[str, Any] | str) -> Any:
    """A server frame as the Agents SDK validates it (``RealtimeServerEvent``, discriminated by type)."""
    data = json.loads(event) if isinstance(event, str) else event
    return SERVER_EVENT.validate_python(data)


def sent(core: RealtimeCore) -> list[dict[str, Any]]:
    """Drain and validate the core's outgoing frames."""
    frames = core.messages_to_send()
    for frame in frames:
        validate_client_event(frame)
    return [json.loads(f) for f in frames]


def drain(core: RealtimeCore) -> list[ModelEvent]:
    events: list[ModelEvent] = []
    while (event := core.next_event()) is not None:
        events.append(event)
    return events


def event_dict(event: ModelEvent) -> dict[str, Any]:
    """A model event as the golden logs write it (AudioOut as item_id, samples and rate)."""
    if isinstance(event, AudioOut):
        return {
            "type": "AudioOut",
            "item_id": event.item_id,
            "samples": event.chunk.num_samples,
            "rate": event.chunk.rate,
        }
    data = dataclasses.asdict(event)

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {"type": type(event).__name__} | {k: plain(v) for k, v in data.items()}


def tone(samples: int, value: int, rate: int = 24_000) -> PcmChunk:
    return PcmChunk(np.full(samples, value, dtype=np.int16), rate)


def config_from(data: dict[str, Any]) -> SessionConfig:
    """A SessionConfig from a golden log's config line (tools as a list, turn_detection as kwargs)."""
    values = dict(data)
    if "tools" in values:
        values["tools"] = tuple(values["tools"])
    if isinstance(values.get("turn_detection"), dict):
        values["turn_detection"] = ServerVad(**values["turn_detection"])
    return SessionConfig(**values)


class Bindings:
    """``$name`` placeholders in golden logs: bound to the first value the core produces, equal after that."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def substitute(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            assert value in self.values, f"placeholder {value} used by the server before the client bound it"
            return self.values[value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        return value

    def match(self, expected: Any, actual: Any, where: str) -> None:
        if isinstance(expected, str) and expected.startswith("$"):
            assert isinstance(actual, str), f"{where}: expected an id for {expected}, got {actual!r}"
            bound = self.values.setdefault(expected, actual)
            assert bound == actual, f"{where}: {expected} was {bound!r}, now {actual!r}"
            return
        if isinstance(expected, dict):
            assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
            assert set(expected) == set(actual), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
            for key in expected:
                self.match(expected[key], actual[key], f"{where}.{key}")
            return
        if isinstance(expected, list):
            assert isinstance(actual, list) and len(actual) == len(expected), (
                f"{where}: {actual!r} != {expected!r}"
            )
            for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
                self.match(e, a, f"{where}[{i}]")
            return
        assert expected == actual, f"{where}: {actual!r} != {expected!r}"


def load_golden(name: str) -> list[dict[str, Any]]:
    path = GOLDEN / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_command(core: RealtimeCore, op: str, args: dict[str, Any], bindings: Bindings) -> None:
    args = bindings.substitute(args)
    if op == "connection_opened":
        core.connection_opened()
    elif op == "connection_lost":
        core.connection_lost()
    elif op == "append_audio":
        core.append_audio(tone(args["samples"], args["value"], core.input_rate))
    elif op == "send_text":
        core.send_text(args["text"])
    elif op == "create_response":
        core.create_response(**args)
    elif op == "submit_tool_output":
        assert core.submit_tool_output(args["call_id"], args["output"]) or core.ended
    elif op == "truncate":
        core.truncate(args["item_id"], args["played_ms"])
    else:
        raise AssertionError(f"unknown golden op {op}")


def run_golden(name: str, lines: list[dict[str, Any]] | None = None) -> tuple[RealtimeCore, int, int]:
    """Drive a core through a golden log. Returns the core and the counts of client frames and model events
    checked. Every input line's outputs must equal the client/model lines that follow it, exactly."""
    lines = load_golden(name) if lines is None else lines
    assert lines[1]["dir"] == "config", f"{name}: the second line must be the config line"
    core = RealtimeCore(config_from(lines[1]["config"]))
    bindings = Bindings()
    checked_frames = checked_events = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line["dir"] in ("note", "config"):
            continue
        assert line["dir"] in ("server", "call"), f"line {i}: output line without an input before it"
        if line["dir"] == "server":
            core.receive_message(json.dumps(bindings.substitute(line["event"])))
        else:
            run_command(core, line["op"], line.get("args", {}), bindings)
        expected_frames: list[dict[str, Any]] = []
        expected_events: list[dict[str, Any]] = []
        while i < len(lines) and lines[i]["dir"] in ("client", "model", "note"):
            if lines[i]["dir"] == "client":
                expected_frames.append(lines[i]["event"])
            elif lines[i]["dir"] == "model":
                expected_events.append(lines[i]["event"])
            i += 1
        frames = sent(core)
        for frame in frames:
            assert isinstance(frame.pop("event_id", ""), str)
        events = [event_dict(e) for e in drain(core)]
        assert len(frames) == len(expected_frames), (
            f"{name} line {i}: sent {frames}, expected {expected_frames}"
        )
        for n, (exp, act) in enumerate(zip(expected_frames, frames, strict=True)):
            bindings.match(exp, act, f"{name} line {i} frame {n}")
        assert len(events) == len(expected_events), (
            f"{name} line {i}: emitted {events}, expected {expected_events}"
        )
        for n, (exp, act) in enumerate(zip(expected_events, events, strict=True)):
            bindings.match(exp, act, f"{name} line {i} event {n}")
        checked_frames += len(frames)
        checked_events += len(events)
    return core, checked_frames, checked_events

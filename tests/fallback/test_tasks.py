"""Post-call tasks: the strict summary schema, the summary through /v1/responses (json_schema, strict) on the
local engine, transcript export, and storing a call record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.fallback.conftest import Engine
from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call, TranscriptLine
from voicebot.fallback.cascade import CascadeModelSession
from voicebot.fallback.tasks import (
    SUMMARY_SCHEMA,
    CallSummary,
    post_call,
    summarize,
    transcript_lines,
    transcript_text,
)
from voicebot.fileport import FileAudioPort

on_engine = pytest.mark.asyncio(loop_scope="package")


def finished_call(engine: Engine) -> Call:
    """A call that is over, with the transcript a weather call leaves behind (barge-in included)."""
    port = FileAudioPort(PcmChunk.silence(20, 24000))
    call = Call(port, CascadeModelSession(engine.client()), call_id="call_test/1", caller="+15550100")
    call.stats.started_at, call.stats.ended_at, call.stats.end_reason = 100.0, 142.5, "caller hung up"
    call.transcript += [
        TranscriptLine("user", "What is the weather like in Paris?", "u1", 102.0),
        TranscriptLine("assistant", "It is 18 degrees and partly cloudy in Paris.", "a1", 104.5),
        TranscriptLine("assistant", "It is 18 degrees", "a1", 105.0),  # cut by a barge-in
        TranscriptLine("user", "Please send me the forecast by email tomorrow.", "u2", 106.0),
        TranscriptLine("assistant", "", "a2", 107.0),  # an answer that was never heard
    ]
    return call


def objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += objects(value)
    elif isinstance(node, list):
        for value in node:
            found += objects(value)
    return found


def test_the_summary_schema_is_strict() -> None:
    jsonschema.Draft202012Validator.check_schema(SUMMARY_SCHEMA)
    objs = objects(SUMMARY_SCHEMA)
    assert len(objs) == 2  # CallSummary and FollowUp
    for obj in objs:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    assert set(SUMMARY_SCHEMA["properties"]) == set(CallSummary.model_fields)


@on_engine
async def test_transcript_export_keeps_what_was_heard(engine: Engine) -> None:
    call = finished_call(engine)
    items = transcript_lines(call)
    assert [(i["role"], i["text"]) for i in items] == [
        ("user", "What is the weather like in Paris?"),
        ("assistant", "It is 18 degrees"),
        ("user", "Please send me the forecast by email tomorrow."),
    ]
    assert [i["at_s"] for i in items] == [2.0, 4.5, 6.0]
    assert transcript_text(call).splitlines() == [
        "[00:02] caller: What is the weather like in Paris?",
        "[00:04] agent: It is 18 degrees",
        "[00:06] caller: Please send me the forecast by email tomorrow.",
    ]


@on_engine
async def test_summary_through_the_responses_api_validates_against_its_schema(engine: Engine) -> None:
    client = engine.client()
    summary = await summarize(client, transcript_text(finished_call(engine)), model="gpt-4.1-mini")
    await client.close()
    assert isinstance(summary, CallSummary)
    jsonschema.validate(summary.model_dump(), SUMMARY_SCHEMA)
    assert summary.reason_for_call  # the engine fills strings from the conversation's text
    assert engine.http_faults.count("/responses") == 1


@on_engine
async def test_post_call_stores_the_record_and_the_text(engine: Engine, tmp_path: Path) -> None:
    call = finished_call(engine)
    client = engine.client()
    record = await post_call(call, client, model="gpt-4.1-mini", calls_dir=tmp_path / "calls")
    await client.close()
    stored = json.loads((tmp_path / "calls" / "call_test_1.json").read_text())
    assert stored == record
    assert stored["call_id"] == "call_test/1" and stored["caller"] == "+15550100"
    assert stored["duration_s"] == 42.5 and stored["end_reason"] == "caller hung up"
    assert len(stored["transcript"]) == 3
    CallSummary.model_validate(stored["summary"])
    text = (tmp_path / "calls" / "call_test_1.txt").read_text()
    assert text == transcript_text(call)


@on_engine
async def test_a_failed_summary_does_not_fail_the_record(engine: Engine) -> None:
    from voicebot.local.faults import HttpFault

    engine.http_faults.add(HttpFault("/responses", 400, message="No summaries today."))
    call = finished_call(engine)
    client = engine.client()
    record = await post_call(call, client, model="gpt-4.1-mini")
    await client.close()
    assert record["summary"] is None
    assert "No summaries today." in record["summary_error"]
    assert len(record["transcript"]) == 3

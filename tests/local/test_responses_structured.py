"""Structured output (``text.format`` json_schema) of the local engine's Responses API.

The brain cannot reason, so the engine fills the schema deterministically from the user's text; these tests
check that what comes back always validates against the schema the client sent (checked with the
independent ``jsonschema`` validator), including through the SDK's ``responses.parse``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSCRIPT = (
    "Caller: Hi, this is Maria Lopez. My internet has been down since Monday and I need a technician. "
    "Agent: I have booked a technician visit for Thursday morning."
)
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 60},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "resolved": {"type": "boolean"},
        "follow_up_days": {"type": "integer", "minimum": 1, "maximum": 30},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "action_items": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 2},
        "caller": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
        "callback": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": [
        "summary", "sentiment", "resolved", "follow_up_days", "score", "action_items", "tags", "caller",
        "callback",
    ],
    "additionalProperties": False,
    "$defs": {
        "tag": {"type": "string", "enum": ["billing", "outage", "other"]},
        "person": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3},
                "email": {"type": "string", "format": "email"},
            },
            "required": ["name", "email"],
            "additionalProperties": False,
        },
    },
}  # fmt: skip


class CallSummary(BaseModel):
    summary: str
    sentiment: Literal["positive", "neutral", "negative"]
    follow_up_needed: bool
    action_items: list[str]


async def test_json_schema_output_validates_against_the_schema(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-5",
        instructions="Summarize this call.",
        input=TRANSCRIPT,
        text={
            "format": {
                "type": "json_schema",
                "name": "call_summary",
                "schema": SUMMARY_SCHEMA,
                "strict": True,
            }
        },
    )
    data = json.loads(response.output_text)
    jsonschema.validate(data, SUMMARY_SCHEMA)
    assert data["summary"] == TRANSCRIPT[:60].rstrip()  # strings come from the user's words
    assert data["sentiment"] == "positive"  # enums: their first value
    assert data["tags"] == ["billing", "billing"]
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


async def test_sdk_parse_returns_the_pydantic_model(client: AsyncOpenAI) -> None:
    parsed = await client.responses.parse(model="gpt-5", input=TRANSCRIPT, text_format=CallSummary)
    summary = parsed.output_parsed
    assert isinstance(summary, CallSummary)
    assert "Maria Lopez" in summary.summary
    assert summary.action_items == [] and summary.follow_up_needed is False


async def test_streamed_structured_output_is_the_same_json(client: AsyncOpenAI) -> None:
    fmt: Any = {"type": "json_schema", "name": "call_summary", "schema": SUMMARY_SCHEMA, "strict": True}
    stream = await client.responses.create(model="gpt-5", input=TRANSCRIPT, text={"format": fmt}, stream=True)
    events: list[Any] = [e async for e in stream]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    jsonschema.validate(json.loads("".join(deltas)), SUMMARY_SCHEMA)


async def test_strict_schema_without_additional_properties_false_is_refused(client: AsyncOpenAI) -> None:
    schema: Any = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="gpt-5",
            input="hi",
            text={"format": {"type": "json_schema", "name": "x", "schema": schema, "strict": True}},
        )
    assert "Invalid schema for response_format 'x'" in info.value.message
    assert "additionalProperties" in info.value.message
    assert info.value.param == "text.format.schema"


async def test_json_object_needs_the_word_json(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hello", text={"format": {"type": "json_object"}})
    assert "json" in info.value.message
    ok = await client.responses.create(
        model="gpt-5", input="answer in JSON", text={"format": {"type": "json_object"}}
    )
    assert isinstance(json.loads(ok.output_text), dict)

"""Pure parts of the Responses emulation: the structured-output filler, the strict-schema check, request
validation and the event spelling, without a server."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from voicebot.local.api_error import ApiError
from voicebot.local.brain import Brain
from voicebot.local.responses_core import answer, conversation_for, split_text, stream_events
from voicebot.local.responses_request import parse_request
from voicebot.local.structured import fill_schema, strict_schema_problem


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "exclusiveMinimum": 5, "multipleOf": 4},
        {"type": "number", "minimum": -3.5, "maximum": -1},
        {"type": "string", "minLength": 200},
        {"type": "string", "pattern": "^[a-z ]+$", "maxLength": 5},
        {"type": "array", "items": {"type": "integer", "minimum": 7}, "minItems": 3},
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"const": 1}}},
                {"properties": {"b": {"type": "boolean"}}},
            ]
        },
        {
            "type": "object",
            "properties": {"d": {"type": "string", "format": "date"}, "u": {"format": "uuid"}},
        },
        {
            "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}},
            "$ref": "#/$defs/n",
        },
    ],
)
def test_fill_schema_always_validates(schema: dict[str, Any]) -> None:
    jsonschema.validate(fill_schema(schema, "hello world"), schema)


def test_strict_schema_problem_names_the_missing_required_key() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    problem = strict_schema_problem(schema)
    assert problem is not None and "Missing 'b'" in problem
    schema["required"] = ["a", "b"]
    assert strict_schema_problem(schema) is None


@pytest.mark.parametrize("text", ["", "one", " lead and trail ", "a  b\n\nc\t", "x,y.  z!"])
def test_split_text_concatenates_back_exactly(text: str) -> None:
    parts = split_text(text)
    assert "".join(parts) == text
    assert all(p.strip() for p in parts[:-1])


def test_incomplete_response_streams_as_response_incomplete() -> None:
    req = parse_request({"model": "m", "input": "please repeat " + "word " * 40, "max_output_tokens": 16})
    final = answer(Brain(), req, conversation_for((), req), response_id="resp_x", now=1000.0)
    events = stream_events(final, obfuscate=False)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "m", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k"),
        ({"model": "m", "temperature": 3}, "temperature"),
        ({"model": "m", "conversation": "conv_1"}, "conversation"),
        ({"model": "m", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_request(body)
    assert info.value.param == param


def test_orphan_function_call_output_is_refused() -> None:
    req = parse_request(
        {"model": "m", "input": [{"type": "function_call_output", "call_id": "c1", "output": ""}]}
    )
    with pytest.raises(ApiError, match="No tool call found for function call output with call_id c1"):
        conversation_for((), req)

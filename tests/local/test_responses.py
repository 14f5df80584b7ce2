"""``POST /v1/responses`` of the local engine, driven by the official SDK (and raw HTTP for the SSE bytes)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.local.http_support import Engine, parse_sse

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER_TOOL: Any = {  # typed loosely: the SDK types it as a TypedDict union
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TEXT_ORDER_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
TEXT_ORDER_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def as_call(item: object) -> ResponseFunctionToolCall:
    assert isinstance(item, ResponseFunctionToolCall), item
    return item


async def raw_stream(
    http: aiohttp.ClientSession, engine: Engine, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """POST with ``stream: true`` and return every SSE payload, checking the framing and the SDK types."""
    async with http.post(f"{engine.base_url}/responses", json={**body, "stream": True}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    assert "[DONE]" not in text
    frames = parse_sse(text)
    payloads = []
    for seq, (name, data) in enumerate(frames):
        assert name == data["type"]
        assert data["sequence_number"] == seq
        STREAM_EVENT.validate_python(data)
        payloads.append(data)
    return payloads


# the platform quickstart -----------------------------------------------------------------------------------
async def test_quickstart_snippet_answers_with_output_text(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-5", input="Write a one-sentence bedtime story about a unicorn."
    )
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert isinstance(response.output_text, str) and response.output_text.strip()
    assert response.model == "gpt-5"


async def test_plain_response_validates_strictly_and_carries_usage(client: AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(
        model="gpt-4.1-mini", input="hello", instructions="Your name is Ada.", metadata={"call": "42"}
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-remaining-requests"].isdigit()
    body = json.loads(raw.http_response.text)
    response = Response.model_validate(body, strict=False)
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["instructions"] == "Your name is Ada." and body["metadata"] == {"call": "42"}
    message = body["output"][0]
    assert (
        message["type"] == "message" and message["role"] == "assistant" and message["id"].startswith("msg_")
    )
    assert message["content"][0]["type"] == "output_text" and message["content"][0]["annotations"] == []
    usage = body["usage"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert response.output_text == message["content"][0]["text"] != ""


# streaming -----------------------------------------------------------------------------------------------
async def test_text_stream_follows_the_official_event_order(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    events = await raw_stream(http, engine, {"model": "gpt-5", "input": "hello there, how are you?"})
    types = [e["type"] for e in events]
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert deltas
    assert types == TEXT_ORDER_HEAD + ["response.output_text.delta"] * len(deltas) + TEXT_ORDER_TAIL
    assert all(d["logprobs"] == [] for d in deltas)
    done = events[-4]
    assert "".join(d["delta"] for d in deltas) == done["text"]
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == done["text"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert events[0]["response"]["id"] == final["id"]


async def test_function_call_stream_follows_the_official_event_order(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    events = await raw_stream(
        http, engine, {"model": "gpt-5", "input": "What's the weather in Paris?", "tools": [WEATHER_TOOL]}
    )
    types = [e["type"] for e in events]
    n = types.count("response.function_call_arguments.delta")
    assert n >= 1
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * n,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2]["item"]
    assert added["type"] == "function_call" and added["arguments"] == "" and added["status"] == "in_progress"
    args = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert events[-3]["arguments"] == args and events[-3]["name"] == "get_weather"
    assert json.loads(args)["city"].lower() == "paris"
    call = events[-1]["response"]["output"][0]
    assert call["call_id"].startswith("call_") and call["id"].startswith("fc_") and call["arguments"] == args


async def test_sdk_stream_yields_typed_events(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model="gpt-5", input="What's the weather in Paris?", tools=[WEATHER_TOOL], stream=True
    )
    seen: list[Any] = [event async for event in stream]
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert seen[-1].type == "response.completed"
    calls = [o for o in seen[-1].response.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]


async def test_stream_is_chosen_by_the_body_not_the_accept_header(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    headers = {"Accept": "text/event-stream"}
    async with http.post(
        f"{engine.base_url}/responses", json={"model": "m", "input": "hi"}, headers=headers
    ) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        assert (await r.json())["object"] == "response"


# tool round trip -----------------------------------------------------------------------------------------
async def test_function_call_round_trip_with_previous_response_id(client: AsyncOpenAI) -> None:
    first = await client.responses.create(
        model="gpt-5", input="What's the weather in Paris?", tools=[WEATHER_TOOL]
    )
    call = as_call(first.output[0])
    second = await client.responses.create(
        model="gpt-5",
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"temperature_c": 18}),
            }
        ],
    )
    assert second.previous_response_id == first.id
    assert second.output[0].type == "message"
    assert "18" in second.output_text


async def test_function_call_round_trip_with_full_history(client: AsyncOpenAI) -> None:
    history: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = await client.responses.create(model="gpt-5", input=history, tools=[WEATHER_TOOL])
    history += [item.model_dump(exclude_none=True) for item in first.output]
    call_id = as_call(first.output[0]).call_id
    history.append({"type": "function_call_output", "call_id": call_id, "output": "sunny"})
    final = await client.responses.create(model="gpt-5", input=history, tools=[WEATHER_TOOL], store=False)
    assert "sunny" in final.output_text


async def test_function_call_without_its_output_is_refused(client: AsyncOpenAI) -> None:
    first = await client.responses.create(
        model="gpt-5", input="What's the weather in Paris?", tools=[WEATHER_TOOL]
    )
    call_id = as_call(first.output[0]).call_id
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="gpt-5", previous_response_id=first.id, input="never mind", tools=[WEATHER_TOOL]
        )
    assert info.value.message.endswith(f"No tool output found for function call {call_id}.")
    assert info.value.body == {
        "message": f"No tool output found for function call {call_id}.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }


async def test_unknown_previous_response_id_is_a_400(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_nope")
    assert info.value.code == "previous_response_not_found"
    assert info.value.param == "previous_response_id"


async def test_previous_response_with_store_false_cannot_be_continued(client: AsyncOpenAI) -> None:
    first = await client.responses.create(model="gpt-5", input="hi", store=False)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="gpt-5", input="again", previous_response_id=first.id)


async def test_stored_response_can_be_retrieved_and_deleted(client: AsyncOpenAI) -> None:
    first = await client.responses.create(model="gpt-5", input="hi")
    again = await client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text
    await client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.id)


# tool choice and limits ----------------------------------------------------------------------------------
async def test_tool_choice_required_always_calls_a_tool(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-5", input="tell me a joke", tools=[WEATHER_TOOL], tool_choice="required"
    )
    assert [o.type for o in response.output] == ["function_call"]
    assert set(json.loads(as_call(response.output[0]).arguments)) == {"city"}


async def test_tool_choice_none_answers_in_text(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-5", input="What's the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert [o.type for o in response.output] == ["message"]


async def test_tool_choice_naming_an_unknown_function_is_a_400(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="gpt-5", input="hi", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "nope"}
        )
    assert "nope" in info.value.message


async def test_max_output_tokens_cuts_the_answer_and_marks_it_incomplete(client: AsyncOpenAI) -> None:
    long_input = "please repeat " + " ".join(f"word{i}" for i in range(60))
    response = await client.responses.create(model="gpt-5", input=long_input, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens <= 16


async def test_max_output_tokens_below_16_is_refused(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", max_output_tokens=5)
    assert info.value.param == "max_output_tokens"


async def test_chat_completions_tool_shape_is_refused_like_upstream(client: AsyncOpenAI) -> None:
    nested: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", tools=[nested])
    assert info.value.message.endswith("Missing required parameter: 'tools[0].name'.")


async def test_unknown_parameter_is_refused(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", extra_body={"frobnicate": True})
    assert info.value.code == "unknown_parameter" and info.value.param == "frobnicate"


async def test_json_bodies_over_the_root_apps_1mib_limit_are_read(client: AsyncOpenAI) -> None:
    big = "hello " + "word " * 300_000
    response = await client.responses.create(model="gpt-5", input=big)
    assert response.status == "completed" and response.usage is not None
    assert response.usage.input_tokens > 300_000


async def test_invalid_json_body_is_a_400(http: aiohttp.ClientSession, engine: Engine) -> None:
    async with http.post(
        f"{engine.base_url}/responses", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "could not parse the JSON body" in body["error"]["message"]


# unsupported parts ---------------------------------------------------------------------------------------
async def test_web_search_quickstart_fails_cleanly(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="gpt-5", tools=[{"type": "web_search"}], input="What was a positive news story from today?"
        )
    assert "web_search" in info.value.message
    assert info.value.param == "tools[0].type"


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"},
        {"type": "web_search_preview"},
    ],
)
async def test_hosted_tools_are_refused_by_name(client: AsyncOpenAI, tool: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", tools=[WEATHER_TOOL, tool])
    assert f"'{tool['type']}'" in info.value.message
    assert info.value.param == "tools[1].type"


async def test_image_input_by_url_is_refused_by_name(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="gpt-5",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is in this image?"},
                        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
                    ],
                }
            ],
        )
    assert "'input_image'" in info.value.message and "by URL" in info.value.message
    assert info.value.param == "input[0].content[1].type"


async def test_sdk_stream_helper_accumulates_the_final_response(client: AsyncOpenAI) -> None:
    async with client.responses.stream(model="gpt-5", input="hello there") as stream:
        texts = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(texts) != ""
    async with client.responses.stream(
        model="gpt-5", input="What's the weather in Paris?", tools=[WEATHER_TOOL]
    ) as stream:
        final = await stream.get_final_response()
    assert as_call(final.output[0]).name == "get_weather"

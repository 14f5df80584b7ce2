"""The Agents SDK (a real peer we did not write) running agents on the local engine's Responses API:
a tool round trip, streamed, and structured output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI
from pydantic import BaseModel

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    CALLS.append(city)
    return f"It is sunny in {city}."


class CallSummary(BaseModel):
    summary: str
    follow_up: bool


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    CALLS.clear()
    yield


async def test_agent_calls_the_tool_and_answers_with_its_result(client: AsyncOpenAI) -> None:
    agent = Agent(name="weather", tools=[get_weather], model=OpenAIResponsesModel("gpt-5", client))
    result = await Runner.run(agent, "What's the weather in Paris?")
    assert CALLS == ["Paris"]
    assert "sunny in Paris" in str(result.final_output)


async def test_streamed_agent_run(client: AsyncOpenAI) -> None:
    agent = Agent(name="weather", tools=[get_weather], model=OpenAIResponsesModel("gpt-5", client))
    run = Runner.run_streamed(agent, "What's the weather in Rome?")
    kinds = {event.type async for event in run.stream_events()}
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert CALLS == ["Rome"] and "sunny in Rome" in str(run.final_output)


async def test_agent_structured_output(client: AsyncOpenAI) -> None:
    agent = Agent(name="summarizer", output_type=CallSummary, model=OpenAIResponsesModel("gpt-5", client))
    result = await Runner.run(agent, "The caller wants a refund for order 1234.")
    assert isinstance(result.final_output, CallSummary)
    assert result.final_output.summary == "The caller wants a refund for order 1234."

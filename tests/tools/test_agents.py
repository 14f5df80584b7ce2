from __future__ import annotations

import pytest

from tests.tools.strict_checker import strict_problems
from voicebot.errors import ToolDefinitionError
from voicebot.tools import Agent, tool
from voicebot.tools.agents import snake_case


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Spanish agent", "spanish_agent"), ("BillingAgent", "billing_agent"),
     ("  Tech-Support 2 ", "tech_support_2"), ("FAQ bot", "faq_bot"), ("é", "")],
)  # fmt: skip
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def plain(city: str) -> str:
    """Look up a city."""
    return city


def test_plain_functions_are_wrapped_and_session_config_lists_tools_and_handoffs() -> None:
    english = Agent("English agent", "English.", handoff_description="Speaks English.")
    agent = Agent("Main", "Be brief.", tools=[plain], voice="marin", handoffs=[english])
    config = agent.session_config()
    assert config["instructions"] == "Be brief." and config["voice"] == "marin"
    assert config["tools"][1] == {
        "type": "function",
        "name": "transfer_to_english_agent",
        "description": "Hand the conversation to the English agent. Speaks English.",
        "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    }
    assert config["tools"][0]["name"] == "plain"
    for definition in agent.tool_definitions("responses"):
        assert definition["strict"] is True
        assert strict_problems(definition["parameters"]) == []
    with pytest.raises(ValueError, match="api"):
        agent.tool_definitions("chat")


def test_duplicate_tool_names_are_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="two tools are named 'plain'"):
        Agent("A", "x", tools=[plain, tool(plain)])
    other = Agent("B", "y")
    agent = Agent("A", "x", handoffs=[other])
    agent.handoffs.append(Agent("b", "z"))  # same snake_case name as "B"
    with pytest.raises(ToolDefinitionError, match="transfer_to_b"):
        agent.tools_by_name()


def test_agent_needs_a_usable_name() -> None:
    with pytest.raises(ToolDefinitionError, match="agent name"):
        Agent("!!!", "x")


def test_definitions_match_the_openai_sdk_types() -> None:
    from openai.types.realtime import RealtimeSessionCreateRequest
    from openai.types.realtime.realtime_function_tool import RealtimeFunctionTool
    from openai.types.responses import FunctionTool

    from examples.restaurant_agent import agent as restaurant
    from examples.triage_agent import triage_agent

    for agent in (restaurant, triage_agent):
        for definition in agent.tool_definitions():
            parsed = RealtimeFunctionTool.model_validate(definition)
            assert parsed.model_dump(exclude_none=True) == definition
        for definition in agent.tool_definitions("responses"):
            assert FunctionTool.model_validate(definition).strict is True
        session = RealtimeSessionCreateRequest.model_validate(
            {"type": "realtime", "instructions": agent.instructions, "tools": agent.session_config()["tools"]}
        )
        tools = session.tools or []
        assert all(isinstance(t, RealtimeFunctionTool) for t in tools)
        assert [getattr(t, "name", None) for t in tools] == [t["name"] for t in agent.tool_definitions()]

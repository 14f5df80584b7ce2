"""The rule-based brain: tool choice, argument filling from the JSON schema, replies after tool output, small
talk, rules files, determinism and speed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from voicebot.local.brain import CANT_LOOK_UP, DEFAULT_RULES_PATH, Brain, Reply, RulesConfig, Turn

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
TIMER: dict[str, Any] = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer",
    "parameters": {
        "type": "object",
        "properties": {"minutes": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["minutes"],
    },
}
LIGHTS: dict[str, Any] = {
    "type": "function",
    "name": "switch_lights",
    "description": "Turn the lights in a room on or off",
    "parameters": {
        "type": "object",
        "properties": {
            "room": {"type": "string", "enum": ["kitchen", "living room", "bedroom"]},
            "on": {"type": "boolean"},
            "brightness": {"type": "number"},
        },
        "required": ["room", "on"],
    },
}
TOOLS = [WEATHER, TIMER, LIGHTS]


def ask(text: str, tools: list[dict[str, Any]] | None = None, **kw: Any) -> Reply:
    return Brain().respond([Turn.user(text)], TOOLS if tools is None else tools, "", **kw)


def call_of(reply: Reply) -> tuple[str, dict[str, Any]]:
    assert reply.is_call and len(reply.calls) == 1, reply
    return reply.calls[0].name, json.loads(reply.calls[0].arguments)


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("What is the weather like in Paris?", "get_weather", {"city": "Paris"}),
        (
            "what's the weather in new york today in fahrenheit",
            "get_weather",
            {"city": "New York", "unit": "fahrenheit"},
        ),
        ("Is it raining in San Francisco right now?", "get_weather", {"city": "San Francisco"}),
        ("Set a timer for twenty five minutes", "set_timer", {"minutes": 25}),
        ("set a timer for 10 minutes called pasta", "set_timer", {"minutes": 10, "label": "pasta"}),
        ("Please start a countdown of a hundred and five minutes", "set_timer", {"minutes": 105}),
        ("turn on the lights in the living room", "switch_lights", {"room": "living room", "on": True}),
        ("switch the kitchen lights off", "switch_lights", {"room": "kitchen", "on": False}),
        (
            "bedroom lights on at brightness 0.5",
            "switch_lights",
            {"room": "bedroom", "on": True, "brightness": 0.5},
        ),
    ],
)
def test_tool_choice_and_arguments(text: str, name: str, args: dict[str, Any]) -> None:
    assert call_of(ask(text)) == (name, args)


def test_missing_required_argument_asks_then_uses_the_answer() -> None:
    brain = Brain()
    first = brain.respond([Turn.user("What's the weather?")], TOOLS, "")
    assert not first.is_call and first.text == "Which city?"
    history = [Turn.user("What's the weather?"), Turn.assistant(first.text), Turn.user("Berlin.")]
    assert call_of(brain.respond(history, TOOLS, "")) == ("get_weather", {"city": "Berlin"})
    timer = brain.respond([Turn.user("set a timer")], TOOLS, "")
    assert timer.text == "How many minutes?"
    history = [Turn.user("set a timer"), Turn.assistant(timer.text), Turn.user("five please")]
    assert call_of(brain.respond(history, TOOLS, "")) == ("set_timer", {"minutes": 5})


def test_reply_after_function_output_uses_the_result() -> None:
    history = [
        Turn.user("weather in Paris?"),
        Turn.call("get_weather", '{"city": "Paris"}', "call_1"),
        Turn.output("call_1", json.dumps({"temperature_c": 21, "conditions": "sunny", "windy": False})),
    ]
    reply = Brain().respond(history, TOOLS, "")
    assert not reply.is_call
    assert (
        reply.text == "Here's the weather result: temperature c is 21, conditions is sunny and windy is no."
    )
    plain = [Turn.call("set_timer", "{}", "c2"), Turn.output("c2", "Timer started.")]
    assert Brain().respond(plain, TOOLS, "").text == "Here's the set timer result: Timer started."
    failed = [Turn.call("get_weather", "{}", "c3"), Turn.output("c3", '{"error": "city unknown"}')]
    assert Brain().respond(failed, TOOLS, "").text == "Sorry, weather failed: city unknown."


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Hello!", "Hello! How can I help you today?"),
        ("Thanks a lot", "You're welcome!"),
        ("Who are you?", "I'm voicebot's offline engine, a small rule-based assistant."),
        ("How are you doing?", "I'm doing well, thanks for asking!"),
        ("What's the capital of Peru?", CANT_LOOK_UP),
        ("Goodbye", "Goodbye! Talk to you soon."),
    ],
)
def test_small_talk(text: str, reply: str) -> None:
    assert ask(text, tools=[]).text == reply


def test_small_talk_wins_over_weak_tool_matches_and_tool_choice() -> None:
    assert not ask("hello there").is_call
    assert ask("turn on the kitchen lights", tool_choice="none").text.startswith("You said:")
    forced = ask("do something", tool_choice={"type": "function", "name": "set_timer"})
    assert forced.text == "How many minutes?"
    assert "help with weather" in ask("what can you do?").text.replace("get weather", "weather")


def test_instructions_name_the_assistant() -> None:
    brain = Brain()
    assert brain.respond([], [], "Your name is Ada.").text == "Hello, I'm Ada! How can I help you today?"
    assert brain.respond([Turn.user("who are you")], [], "Your name is Ada.").text.startswith("I'm Ada,")
    assert brain.respond([Turn.user("")], [], "").text == "Are you still there?"


def test_rules_from_json_and_toml(tmp_path: Path) -> None:
    rules = {
        "rules": [
            {
                "pattern": r"order (?P<n>\d+) (?P<item>\w+)",
                "tool": "order",
                "arguments": {"item": "{item}", "qty": 1},
            },
            {"pattern": r"\bping\b", "reply": "pong"},
        ]
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    brain = Brain(RulesConfig.load(path))
    order = {"type": "function", "name": "order", "parameters": {"type": "object", "properties": {}}}
    assert call_of(brain.respond([Turn.user("please order 3 pizzas")], [order], "")) == (
        "order",
        {"item": "pizzas", "qty": 1},
    )
    assert brain.respond([Turn.user("order 3 pizzas")], [], "").text.startswith(
        "You said"
    )  # tool not offered
    assert brain.respond([Turn.user("Ping!")], [], "").text == "pong"
    toml = Brain(RulesConfig.load(DEFAULT_RULES_PATH))
    assert toml.respond([Turn.user("Tell me a joke")], [], "").text.startswith("Why did the developer")
    assert toml.respond([Turn.user("my name is Sam")], [], "").text == "Nice to meet you, Sam!"
    with pytest.raises(ValueError, match="exactly one"):
        RulesConfig.from_dict({"rules": [{"pattern": "x"}]})
    with pytest.raises(ValueError, match="bad pattern"):
        RulesConfig.from_dict({"rules": [{"pattern": "(", "reply": "x"}]})


def test_deterministic_and_fast() -> None:
    brain = Brain(RulesConfig.load(DEFAULT_RULES_PATH))
    history = [
        Turn.system("be nice"),
        Turn.user("hello"),
        Turn.assistant("Hi!"),
        Turn.user("What is the weather like in Paris?"),
    ]
    first = brain.respond(history, TOOLS, "")
    assert all(brain.respond(history, TOOLS, "") == first for _ in range(20))
    n = 300
    t0 = time.perf_counter()
    for _ in range(n):
        brain.respond(history, TOOLS, "")
    per_turn_ms = (time.perf_counter() - t0) * 1000 / n
    assert per_turn_ms < 2.0, f"{per_turn_ms:.3f} ms per turn"


# --- language triage and directives ---------------------------------------------------------------------

TRIAGE_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "transfer_to_spanish_agent", "description": "Speaks Spanish with callers.",
     "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}},
    {"type": "function", "name": "transfer_to_english_agent", "description": "Speaks English with callers.",
     "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}},
]  # fmt: skip


@pytest.mark.parametrize(
    ("said", "tool"),
    [
        ("Hola, necesito ayuda por favor", "transfer_to_spanish_agent"),
        ("Buenos días, quiero hablar con alguien", "transfer_to_spanish_agent"),
        ("Hello, I need some help with my order", "transfer_to_english_agent"),
    ],
)
def test_triage_hands_off_by_the_language_spoken(said: str, tool: str) -> None:
    reply = Brain().respond([Turn.user(said)], TRIAGE_TOOLS, "Hand off based on the caller's language.")
    assert [c.name for c in reply.calls] == [tool]


def test_after_a_handoff_the_new_agent_greets_in_its_language() -> None:
    history = [
        Turn.user("Hola, necesito ayuda"),
        Turn("function_call", name="transfer_to_spanish_agent", arguments="{}", call_id="c1"),
        Turn("function_call_output", text='{"assistant": "Spanish agent"}', call_id="c1"),
    ]
    reply = Brain().respond(history, [], "You only speak Spanish. Be brief.")
    assert reply.text == "¡Hola! ¿En qué puedo ayudarle?"


def test_an_agent_told_to_speak_spanish_does_not_hand_off_to_itself() -> None:
    reply = Brain().respond([Turn.user("Hola, gracias")], TRIAGE_TOOLS, "You only speak Spanish.")
    assert reply.calls == () and reply.text == "¡De nada!"


def test_say_exactly_directive_speaks_the_given_words() -> None:
    instructions = 'Say exactly this, word for word, and nothing else: "One moment, please."'
    reply = Brain().respond([Turn.user("what is the weather in Paris")], TRIAGE_TOOLS, instructions, "none")
    assert reply.text == "One moment, please." and reply.calls == ()


def test_a_result_with_a_spoken_field_is_said_as_is() -> None:
    history = [
        Turn.user("what time is it"),
        Turn("function_call", name="get_current_time", arguments="{}", call_id="c1"),
        Turn(
            "function_call_output",
            text='{"iso": "2026-11-25T12:41:37", "spoken": "It is 12:41"}',
            call_id="c1",
        ),
    ]
    assert Brain().respond(history, []).text == "It is 12:41."

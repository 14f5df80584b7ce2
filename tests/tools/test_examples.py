"""The example agents, driven through the runner the way a call drives them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from examples import restaurant_agent, triage_agent, weather_agent
from tests.tools.conftest import FakeCall
from tests.tools.strict_checker import strict_problems
from voicebot.events import ToolCall
from voicebot.tools import ToolRunner


def call(name: str, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(call_id="call_e", name=name, arguments=json.dumps(arguments or {}))


def test_every_example_schema_is_strict() -> None:
    for agent in (weather_agent.agent, restaurant_agent.agent, triage_agent.triage_agent,
                  triage_agent.spanish_agent, triage_agent.english_agent):  # fmt: skip
        for definition in agent.tool_definitions():
            assert strict_problems(definition["parameters"]) == [], definition["name"]


async def test_weather_fake_data(control: FakeCall) -> None:
    runner = ToolRunner(weather_agent.agent)
    paris = json.loads(await runner.run(call("get_weather", {"city": "paris", "units": None}), control))
    assert paris == {"city": "Paris", "temperature": 18, "units": "celsius", "conditions": "partly cloudy"}
    f = json.loads(await runner.run(call("get_weather", {"city": "Paris", "units": "fahrenheit"}), control))
    assert f["temperature"] == 64
    other = [json.loads(await runner.run(call("get_weather", {"city": "Lyon", "units": None}), control))
             for _ in range(2)]  # fmt: skip
    assert other[0] == other[1] and other[0]["city"] == "Lyon"
    assert "error" in json.loads(await runner.run(call("get_weather", {"city": " ", "units": None}), control))


async def test_restaurant_booking(control: FakeCall) -> None:
    runner = ToolRunner(restaurant_agent.agent)
    day = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    booking = {"party_size": 4, "date": day, "time": "19:30", "name": "Okafor", "notes": None}
    out = json.loads(await runner.run(call("book_table", booking), control))
    assert out["confirmed"] is True and "4 people" in out["summary"] and "19:30" in out["summary"]
    assert out["caller"] == control.caller
    too_many = json.loads(await runner.run(call("book_table", {**booking, "party_size": 40}), control))
    assert too_many["details"][0]["field"] == "party_size"
    late = json.loads(await runner.run(call("book_table", {**booking, "time": "23:30"}), control))
    assert "12:00 to 22:00" in late["error"]
    bad_date = json.loads(await runner.run(call("book_table", {**booking, "date": "next friday"}), control))
    assert bad_date["details"][0]["field"] == "date"


async def test_language_triage_hands_off_and_back(control: FakeCall) -> None:
    runner = ToolRunner(triage_agent.triage_agent)
    names = [t["name"] for t in runner.session_config()["tools"]]
    assert names == ["transfer_to_spanish_agent", "transfer_to_english_agent"]
    await runner.run(call("transfer_to_spanish_agent"), control)
    assert runner.agent is triage_agent.spanish_agent
    update = control.actions[-1][1]
    assert update["instructions"].startswith("You only speak Spanish")
    assert [t["name"] for t in update["tools"]] == [
        "get_current_time",
        "end_call",
        "transfer_to_triage_agent",
    ]
    await runner.run(call("transfer_to_triage_agent"), control)
    assert runner.agent is triage_agent.triage_agent
